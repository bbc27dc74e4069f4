// GroupManager: the sans-I/O handler of the KDC's /ace-group interface (seed
// draft draft-ietf-ace-key-groupcomm-05 §4.1, numbers and choices of
// docs/profile.md).
//
// The caller (the CoAP/OSCORE binding) authenticates the request, looks up the
// client's identity and granted scope (ACE layer) and hands both in with the
// method, the Uri-Path segments, the payload and `now`; the manager answers with
// a CoAP code, Content-Format, payload and Location-Path. All state lives in a
// kdc::Store; the manager keeps none between requests (several KDC nodes can
// share one store). On every error response nothing was changed in the store
// (the one exception, OPT8 kRekeyGroup on PUT nodes/NODENAME, is documented there).
//
// Resources (seed §4.1):
//   /ace-group/GROUPNAME                POST join (2.01 + Location-Path), GET keys
//   /ace-group/GROUPNAME/pub-key        GET, FETCH
//   /ace-group/GROUPNAME/policies       GET
//   /ace-group/GROUPNAME/ctx-num        GET
//   /ace-group/GROUPNAME/nodes/NODE     GET, PUT (new Sender ID), DELETE (leave)
//   /ace-group/GROUPNAME/nodes/NODE/pub-key  POST (public key update)
// Order of checks: 4.04 for a path that names no resource kind, 4.05 for a
// method the resource does not have, 4.01 when no token of the requester covers
// GROUPNAME (before revealing whether the group exists), 4.04 unknown group,
// 4.01 for a NODENAME that is not the requester's (or a group-key GET by a
// non-member), 4.15 for a payload not in Content-Format 261, 4.00 for a payload
// that does not parse or a request that breaks a rule (text diagnostic payload).
// Store failures are 5.03 (kBusy/kIo: try again) or 5.00.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ace/scope.h"
#include "core/bytes.h"
#include "core/random.h"
#include "crypto/provider.h"
#include "groupcomm/params.h"
#include "kdc/store.h"

namespace acekdc::groupcomm {

// Requester: who sent the request, as the ACE layer established it.
struct Requester {
  // client_id: the client's identity at the KDC; matched against the
  // client_id of the TokenRecord that authorized a member's join.
  std::string client_id;
  // token_id: the token that authorizes this request (stored as Member::token_id).
  Bytes token_id;
  // scope: what the client's valid token(s) grant.
  ace::Scope scope;
  // rsnonce: N_S, the last rsnonce the KDC sent to this client (REQ17); empty if none.
  Bytes rsnonce;
};

struct Request {
  uint8_t method = 0;                  // cp::coap::code::kGet ...
  std::vector<std::string_view> path;  // Uri-Path segments, e.g. {"ace-group", "g1", "ctx-num"}
  std::optional<uint16_t> content_format;
  ByteView payload;
};

struct Response {
  uint8_t code = 0;                     // cp::coap::code::*
  std::optional<uint16_t> content_format;  // unset: no Content-Format option (diagnostic text)
  Bytes payload;
  std::vector<std::string> location_path;  // set on a successful join
  // new_rsnonce: when non-empty the manager sent this N_S to the client (REQ17);
  // the caller must remember it as the client's rsnonce for its next request.
  Bytes new_rsnonce;
};

// RekeyEvent: the group's keying material was renewed; the caller must push it to
// the members (not done here).
struct RekeyEvent {
  // kExpiry: the material's 'exp' was near (tick); kBatched: membership changes
  // that a batched policy (min_interval_s / batch_changes) had held back (tick);
  // kEviction: a member was evicted because its tokens expired (tick).
  enum class Reason : uint8_t { kJoin, kLeave, kRenewal, kManual, kExpiry, kBatched, kEviction };
  std::string group;
  uint64_t num = 0;  // the new version
  Reason reason = Reason::kManual;
  // departures: members that left (or were evicted) since the previous rekey of the
  // group, as the store counted them (leaves_since_rekey just before this one). 0
  // means every member of the previous version is still a member.
  uint64_t departures = 0;
};

// Eviction: a member that tick() removed because no token of its client still
// covers the group (seed §5: eviction on token expiry). The caller may tell the
// node (a DELETE to its control_path); it gets no new keying material.
struct Eviction {
  std::string group;
  std::string node_name;
  Bytes sender_id;
  std::string control_path;
};

// TickReport: what one tick() did, and when the next one has work.
struct TickReport {
  size_t num_rekeys = 0;
  size_t num_evicted = 0;
  size_t num_purged = 0;  // departed keys / retired Sender IDs dropped (REQ13 retention over)
  // next_deadline: unix time of the next timed duty (GroupManager::kNever: none).
  int64_t next_deadline = 0;
};

struct ManagerOptions {
  Limits limits;
  // expiry_margin_s: with RekeyPolicy::on_expiry, rekey this long before 'exp'.
  int64_t expiry_margin_s = 60;
  size_t master_secret_len = 16;
  size_t master_salt_len = 8;
  size_t group_id_len = 4;
  size_t rsnonce_len = 8;
  int max_attempts = 8;  // retries on kConflict / kNameTaken
};

class GroupManager {
 public:
  // The references must outlive the manager.
  GroupManager(kdc::Store& store, crypto::Provider& provider, Random& rng,
               ManagerOptions options = {});

  // handle processes one request. `who` is null when the request carries no
  // valid token (then every resource answers 4.01). `now` is unix seconds.
  Response handle(const Requester* who, const Request& req, int64_t now);

  // rekey installs new keying material (num + 1, fresh master secret, salt and a
  // Group ID never used in the group) and records a RekeyEvent. Returns the new num.
  Expected<uint64_t, kdc::StoreError> rekey(std::string_view group, int64_t now,
                                            RekeyEvent::Reason reason = RekeyEvent::Reason::kManual);

  // take_events returns and clears the rekey events since the last call.
  std::vector<RekeyEvent> take_events();
  // take_evictions returns and clears the evictions since the last call.
  std::vector<Eviction> take_evictions();

  // kNever: no deadline.
  static constexpr int64_t kNever = INT64_MAX;

  // tick runs the timed duties of every group; the serve loop calls it when
  // next_deadline() has passed (calling it earlier is harmless, only slower):
  //  - eviction: a member whose token, and every other stored token of the same
  //    client, expired or no longer covers the group is removed (its key kept as
  //    a departed key when REQ13 retention is on), counted as a leave, and the
  //    group is rekeyed per its policy (RekeyEvent::kEviction). A member whose
  //    token record is gone is evicted too; one without a token id (added by an
  //    operator) never is. Store read errors keep the member and retry next tick.
  //  - rekey on expiry: material whose exp - expiry_margin_s has passed is renewed
  //    (kExpiry) when the policy has on_expiry.
  //  - batched rekeying: membership changes held back by min_interval_s or
  //    batch_changes are rekeyed once the policy allows (kBatched).
  //  - REQ13: departed keys past the group's retention are purged.
  // The first tick after construction checks everything. A group scan loads each
  // group (O(members)); token checks are one store read per distinct client.
  TickReport tick(int64_t now);
  // next_deadline returns the unix time at which tick() has work next (kNever if
  // none). It only moves earlier between ticks (joins, leaves, batched changes).
  int64_t next_deadline() const { return std::min(group_check_at_, eviction_check_at_); }
  // recheck_tokens makes the next tick() check every member's tokens now (a token
  // found inactive at the AS or revoked: mark it dead in the store, e.g. exp = now,
  // then tick() evicts whoever it no longer covers, as on expiry).
  void recheck_tokens() { eviction_check_at_ = INT64_MIN; }

 private:
  // join works from the store's shared snapshot `snap` (no copy of the group);
  // it drops it before each write so the store can update its cache in place.
  Response join(const Requester& who, std::shared_ptr<const kdc::GroupState> snap,
                const Request& req, int64_t now);
  // add_member_new_sender_id allocates a Sender ID from `snap` and adds `m` with it;
  // on kConflict (the snapshot was stale) it takes a fresh snapshot and retries.
  // `snap` is released before the write. Returns the Sender ID.
  Expected<Bytes, kdc::StoreError> add_member_new_sender_id(
      std::string_view group, std::shared_ptr<const kdc::GroupState> snap, kdc::Member m,
      int64_t now);
  Response get_keys(const Requester& who, const kdc::GroupState& g);
  Response pub_key_get(const kdc::GroupState& g);
  Response pub_key_fetch(const kdc::GroupState& g, const Request& req, int64_t now);
  Response node_get(const kdc::GroupState& g, const kdc::Member& m);
  Response node_put(const kdc::GroupState& g, const kdc::Member& m, const Request& req, int64_t now);
  Response node_delete(const kdc::GroupState& g, const kdc::Member& m, const Request& req, int64_t now);
  Response node_pub_key(const Requester& who, const kdc::GroupState& g, const kdc::Member& m,
                        const Request& req, int64_t now);
  // owns: whether member `m` was joined by `who` (same token, or a token of the
  // same client_id).
  bool owns(const Requester& who, const kdc::Member& m);
  // find_own_member returns the requester's member of `g`, or nullptr (one store
  // read, not one per member).
  const kdc::Member* find_own_member(const Requester& who, const kdc::GroupState& g);
  // rekey_after runs the group's rekey policy after a membership change.
  // It reads the group through Store::group_snapshot (no copy with a caching store;
  // the store still checks everything: on kStale / kConflict it is read again).
  // A join in a store round (Store::batch_round) in which the group was already
  // rekeyed gets that round's key without another rekey: nobody holds that key
  // before the round commits, so the joiner still gets no key that protected
  // anything before its join (docs/kdc-state.md, rekey policies).
  Expected<void, kdc::StoreError> rekey_after(std::string_view group, int64_t now,
                                              RekeyEvent::Reason reason);
  Response ask_for_new_nonce();

  // evict_expired removes members without a live covering token; returns how many.
  size_t evict_expired(int64_t now);
  // check_group applies the rekey policy and retention to one group.
  void check_group(std::string_view group, int64_t now, TickReport& report);
  void schedule_group_check(int64_t at) { group_check_at_ = std::min(group_check_at_, at); }

  // RoundRekey: the last rekey of a group in a store round (Store::batch_round),
  // and whether joins after it in that round were left to it (covered_num: the
  // version that covers them, 0 if none).
  struct RoundRekey {
    uint64_t round = 0;
    uint64_t num = 0;
    uint64_t covered_num = 0;
  };
  // joins_covered: with an immediate on_join policy, the group's only pending
  // changes are joins that its current key, made in their round, already covers
  // (tick() then has no join to rekey for).
  bool joins_covered(const kdc::GroupState& g, int64_t now) const;

  kdc::Store& store_;
  crypto::Provider& provider_;
  Random& rng_;
  ManagerOptions options_;
  std::vector<RekeyEvent> events_;
  std::vector<Eviction> evictions_;
  std::map<std::string, RoundRekey, std::less<>> round_rekeys_;
  // Unix times of the next group scan (rekey policy, retention) and token scan.
  int64_t group_check_at_ = INT64_MIN;
  int64_t eviction_check_at_ = INT64_MIN;
};

}  // namespace acekdc::groupcomm
