// The KDC's data model (seed draft §4-§5 and docs/profile.md): group configuration,
// group keying material with its version 'num', members, access tokens, the
// client-KDC OSCORE contexts and the keys of departed members (REQ13).
//
// These are plain values. GroupState additionally holds the rules every backend
// must enforce (unique node names and Sender IDs, num advancing by one, Group IDs
// never reused), so that MemoryStore and the KDC's in-memory copy apply exactly
// what the SQL of SqliteStore checks.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "kdc/error.h"

namespace acekdc::kdc {

// RoleSet has the bit layout of ace::RoleSet (src/ace/scope.h): bit (1 << role)
// for role in cp::role, i.e. requester 1<<1, responder 1<<2, monitor 1<<3.
using RoleSet = uint8_t;

// BytesLess orders byte strings (Sender IDs, Group IDs) and allows lookup by view.
struct BytesLess {
  using is_transparent = void;
  bool operator()(ByteView a, ByteView b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  }
};

// SignInfo is one sign_info entry (REQ3-REQ5): [sign_alg, sign_parameters,
// sign_key_parameters].
struct SignInfo {
  int sign_alg = cp::alg::kEdDSA;
  std::vector<int> sign_params{cp::kty::kOKP};
  std::vector<int> sign_key_params{cp::kty::kOKP, cp::crv::kEd25519};
  friend bool operator==(const SignInfo&, const SignInfo&) = default;
};
// sign_info_eddsa: EdDSA [-8, [1], [1, 6]] (the profile's default).
SignInfo sign_info_eddsa();
// sign_info_es256: ES256 [-7, [2], [2, 1]].
SignInfo sign_info_es256();

// GroupPolicies: the group_policies map (REQ14).
struct GroupPolicies {
  int seq_sync_method = cp::gc::kSeqSyncBaseline;  // 1 best effort, 2 baseline, 3 echo
  uint32_t key_update_check_interval_s = 3600;
  uint32_t expiration_delta_s = 0;
  friend bool operator==(const GroupPolicies&, const GroupPolicies&) = default;
};

// RekeyPolicy: when the KDC renews the group keying material (seed §5, §7; the
// review thread's rate-limited rekeying). With min_interval_s == 0 and
// batch_changes == 0 every counted membership change triggers a rekey at once.
struct RekeyPolicy {
  bool on_join = true;    // backward security
  bool on_leave = true;   // forward security
  bool on_expiry = true;  // renew before the keying material's exp
  // min_interval_s: at most one membership-change rekey per interval; changes in
  // between are batched into the next one.
  uint32_t min_interval_s = 0;
  // batch_changes: rekey as soon as this many counted changes accumulated (even
  // within min_interval_s); 0 disables the count trigger.
  uint32_t batch_changes = 0;
  friend bool operator==(const RekeyPolicy&, const RekeyPolicy&) = default;
};

// KeyRenewal (OPT8): what a Key Renewal Request (PUT nodes/NODENAME) does.
enum class KeyRenewal : uint8_t {
  kNewSenderId = 0,   // give the node a new Sender ID (the profile default)
  kRekeyGroup = 1,    // answer with an error and rekey the whole group
};

struct GroupConfig {
  std::string name;  // GROUPNAME (REQ1)
  int aead_alg = cp::alg::kAES_CCM_16_64_128;
  int hkdf_alg = cp::alg::kHMAC256_256;  // HKDF SHA-256, written as 5 (profile.md)
  SignInfo sign_info;
  int pub_key_enc = cp::gc::kPubKeyEncCoseKey;  // REQ6
  GroupPolicies policies;
  RekeyPolicy rekey;
  // key_lifetime_s: new keying material expires this long after it is made ('exp').
  uint32_t key_lifetime_s = 86400;
  // departed_key_retention_s (REQ13): how long a departed member's public key is
  // still served by FETCH pub-key; 0 = identifiers of non-members are ignored.
  uint32_t departed_key_retention_s = 0;
  // sender_id_reuse_delay_s: a Sender ID freed by a leave is preferably not handed
  // out again before this delay (it is never reused under the same keying material).
  uint32_t sender_id_reuse_delay_s = 3600;
  uint32_t max_members = 10000;
  std::string multicast_address;  // may be empty (no multicast rekeying / unknown)
  KeyRenewal key_renewal = KeyRenewal::kNewSenderId;
  friend bool operator==(const GroupConfig&, const GroupConfig&) = default;
};

// GroupKeyMaterial: one version of the group keying material (REQ7 fields the KDC
// generates; alg/hkdf/sign info come from the GroupConfig).
struct GroupKeyMaterial {
  uint64_t num = 0;     // version, 0 for the first, +1 per rekey (seed §4.1.2.1)
  Bytes master_secret;  // secret: never logged
  Bytes master_salt;
  Bytes group_id;       // Group ID = OSCORE ID Context (contextId 6)
  int64_t exp = 0;      // unix seconds
  int64_t established_at = 0;  // unix seconds when this version was stored
  friend bool operator==(const GroupKeyMaterial&, const GroupKeyMaterial&) = default;
};

struct Member {
  std::string node_name;  // NODENAME of /ace-group/GROUPNAME/nodes/NODENAME
  Bytes sender_id;        // OSCORE Sender ID, the member identifier (REQ9)
  RoleSet roles = 0;
  Bytes public_key;       // COSE_Key bytes; empty for a monitor
  std::string control_path;
  int64_t joined_at = 0;  // unix seconds
  Bytes token_id;         // the access token that authorized the join (TokenRecord::token_id)
  friend bool operator==(const Member&, const Member&) = default;
};

// DepartedKey: a public key kept after its member left (REQ13), served until
// departed_at + departed_key_retention_s.
struct DepartedKey {
  Bytes sender_id;
  std::string node_name;
  RoleSet roles = 0;
  Bytes public_key;
  int64_t departed_at = 0;
  friend bool operator==(const DepartedKey&, const DepartedKey&) = default;
};

// RetiredSenderId: a Sender ID that a member gave up (leave or new Sender ID).
// retired_num is the keying material version current at that time: the ID must
// not be given to anyone else while that version is current (nonce reuse).
struct RetiredSenderId {
  Bytes sender_id;
  int64_t retired_at = 0;
  uint64_t retired_num = 0;
  friend bool operator==(const RetiredSenderId&, const RetiredSenderId&) = default;
};

// TokenRecord: an access token the KDC stores (seed §3.3, §4).
struct TokenRecord {
  Bytes token_id;         // cti, or a hash of the token when it has none
  std::string client_id;  // the client's identity as the KDC knows it
  Bytes scope;            // the scope claim (bstr contents)
  int64_t exp = 0;        // unix seconds; 0 = no expiry claim
  friend bool operator==(const TokenRecord&, const TokenRecord&) = default;
};

// ContextKey names a client-KDC OSCORE context the way an incoming request does:
// the kid context (may be empty) and the KDC's Recipient ID (the request's kid).
struct ContextKey {
  Bytes id_context;
  Bytes recipient_id;
  friend bool operator==(const ContextKey&, const ContextKey&) = default;
  friend bool operator<(const ContextKey& a, const ContextKey& b) {
    BytesLess less;
    if (less(a.id_context, b.id_context)) return true;
    if (less(b.id_context, a.id_context)) return false;
    return less(a.recipient_id, b.recipient_id);
  }
};

// OscoreContextRecord: the input of one client-KDC OSCORE security context
// (RFC 9203) and the persisted Sender Sequence Number reservation (RFC 8613
// Appendix B.1.1): every number below seq_reserved may have been used.
struct OscoreContextRecord {
  ContextKey key;
  Bytes sender_id;      // the KDC's Sender ID in this context
  Bytes master_secret;  // secret: never logged
  Bytes master_salt;
  int aead_alg = cp::alg::kAES_CCM_16_64_128;
  int hkdf_alg = cp::alg::kHMAC256_256;
  Bytes token_id;       // the token the context was derived from
  uint64_t seq_reserved = 0;
  friend bool operator==(const OscoreContextRecord&, const OscoreContextRecord&) = default;
};

// GroupState: one group with everything stored about it. The mutating functions
// apply the same checks as a Store and leave the state unchanged on error.
struct GroupState {
  GroupConfig config;
  GroupKeyMaterial key;  // the current version
  std::map<std::string, Member, std::less<>> members;       // by node name
  std::map<Bytes, std::string, BytesLess> by_sender_id;     // Sender ID -> node name
  std::map<Bytes, uint64_t, BytesLess> used_group_ids;      // Group ID -> num it came with
  std::map<Bytes, DepartedKey, BytesLess> departed;         // by Sender ID
  std::map<Bytes, RetiredSenderId, BytesLess> retired;      // by Sender ID
  // by_token: (token_id_hash(Member::token_id), node name) for every member with a
  // token id (derived from `members`; kept by add_member / remove_member /
  // index_member). A hash collision is possible: compare Member::token_id.
  std::set<std::pair<uint64_t, std::string>> by_token;
  // held_by_len[n]: members' Sender IDs of n bytes (n = 1..8; 0 counts longer ones),
  // derived from by_sender_id like by_token (lets Sender ID allocation skip a length
  // whose every ID is held without scanning it).
  std::array<uint32_t, 9> held_by_len{};
  // Membership changes since the current keying material was stored.
  uint64_t joins_since_rekey = 0;
  uint64_t leaves_since_rekey = 0;

  // create: a new group at num 0. kInvalid if key.num != 0, the name or
  // Group ID is empty.
  static Expected<GroupState, StoreError> create(GroupConfig config, GroupKeyMaterial key);

  const Member* find_member(std::string_view node_name) const;
  const Member* find_by_sender_id(ByteView sender_id) const;
  // find_by_token returns the member whose join `token_id` authorized (the first
  // by node name if several), or nullptr; O(log members). An empty id finds none.
  const Member* find_by_token(ByteView token_id) const;
  // index_member adds an existing entry of `members` to by_token and held_by_len
  // (for code that fills `members` directly, e.g. a store loading a group).
  void index_member(const Member& m);
  // sender_id_available: not held by a member and not retired under the current num.
  bool sender_id_available(ByteView sender_id) const;

  // add_member: kNameTaken, kConflict (Sender ID not available), kFull, kInvalid
  // (empty node name or Sender ID).
  Expected<void, StoreError> add_member(Member m);
  // remove_member: returns the removed member; retires its Sender ID and keeps
  // its key when departed_key_retention_s > 0. kNotFound.
  Expected<Member, StoreError> remove_member(std::string_view node_name, int64_t now);
  // update_member_key replaces the public key. kNotFound.
  Expected<void, StoreError> update_member_key(std::string_view node_name, Bytes public_key);
  // update_member_sender_id gives a member a new Sender ID (REQ15/OPT8); the old
  // one is retired (and its key kept as a departed key, if retention is on).
  // kNotFound, kConflict, kInvalid.
  Expected<void, StoreError> update_member_sender_id(std::string_view node_name, Bytes sender_id,
                                                     int64_t now);
  // put_key_material installs version key.num, which must be current + 1 (else
  // kStale), with a Group ID never used in this group (else kConflict).
  Expected<void, StoreError> put_key_material(GroupKeyMaterial key);
  // purge_departed drops departed keys older than the retention, then retired
  // Sender IDs that are past the reuse delay, from an older num and without a
  // departed key. Returns the number of entries removed.
  size_t purge_departed(int64_t now);

  friend bool operator==(const GroupState&, const GroupState&) = default;
};

// token_id_hash: the key of GroupState::by_token (FNV-1a 64 of the bytes).
uint64_t token_id_hash(ByteView token_id);

// RekeyDecision: whether the group needs new keying material now, and otherwise
// the unix time at which to ask again (0: only after the next membership change).
struct RekeyDecision {
  bool rekey_now = false;
  int64_t check_again_at = 0;
};
// rekey_due applies the group's RekeyPolicy to its counters and keying material.
// expiry_margin_s: rekey this long before 'exp'.
RekeyDecision rekey_due(const GroupState& g, int64_t now, int64_t expiry_margin_s = 60);

// encode_group_config / decode_group_config: the CBOR form stored by SqliteStore.
// decode fails with kCorrupt on anything it does not recognize.
Bytes encode_group_config(const GroupConfig& c);
Expected<GroupConfig, StoreError> decode_group_config(ByteView in);

// encode_group_policies writes the group_policies map (REQ14 labels).
Bytes encode_group_policies(const GroupPolicies& p);

}  // namespace acekdc::kdc
