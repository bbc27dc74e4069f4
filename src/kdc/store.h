// Store: the KDC's durable state behind one interface, so that the KDC runs on an
// embedded SQLite file (SqliteStore, the default), in memory for tests
// (MemoryStore), and later on a shared database with several KDC nodes.
//
// Every operation is one transaction: it either happens completely or not at all,
// and when it returns success the change is durable (survives a crash of the
// process; with SqliteStore and synchronous=FULL also a power loss, as far as the
// disk honours fsync). The store checks the model's rules itself (GroupState's
// functions document them) instead of trusting the caller's in-memory copy, so
// two KDC nodes working from stale copies cannot both win: one of them gets
// kConflict / kNameTaken / kStale and must reload.
//
// `now` arguments are unix seconds supplied by the caller (the store has no clock).
// Implementations are safe to call from several threads.
//
// Group commit: between begin_batch() and commit_batch() every operation (from any
// thread) still succeeds or fails on its own, but it becomes durable only when
// commit_batch() returns success: all of them share one transaction and one fsync.
// A caller that batches must not acknowledge anything to anyone (send a response,
// use a reserved sequence number on the wire) before commit_batch() succeeded; if
// it fails, every operation of the batch is rolled back together.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "kdc/error.h"
#include "kdc/model.h"

namespace acekdc::kdc {

// KdcState: everything a KDC loads at startup.
struct KdcState {
  std::vector<GroupState> groups;  // ordered by name
  std::vector<TokenRecord> tokens;
  std::vector<OscoreContextRecord> contexts;
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- groups ----
  // create_group stores a new group with its first keying material (num 0).
  // kConflict if the group exists, kInvalid (see GroupState::create).
  virtual Expected<void, StoreError> create_group(const GroupConfig& config,
                                                  const GroupKeyMaterial& key) = 0;
  // update_group_config replaces the configuration of an existing group (name
  // unchanged). kNotFound. Existing members are kept even above max_members.
  virtual Expected<void, StoreError> update_group_config(const GroupConfig& config) = 0;
  // load_group returns the stored state of one group. kNotFound.
  virtual Expected<GroupState, StoreError> load_group(std::string_view name) = 0;
  // group_snapshot returns the stored state of one group as a shared immutable
  // snapshot: later writes never change it (a backend that keeps a cache copies
  // its cached state on write while a snapshot is held, so callers should drop
  // theirs before writing). The default copies load_group. kNotFound.
  virtual Expected<std::shared_ptr<const GroupState>, StoreError> group_snapshot(
      std::string_view name) {
    auto g = load_group(name);
    if (!g) return unexpected(g.error());
    return std::shared_ptr<const GroupState>(std::make_shared<GroupState>(std::move(*g)));
  }
  // list_groups returns the group names, sorted.
  virtual Expected<std::vector<std::string>, StoreError> list_groups() = 0;

  // ---- members ----
  // add_member: kNotFound (group), then GroupState::add_member's errors.
  virtual Expected<void, StoreError> add_member(std::string_view group, const Member& m) = 0;
  // remove_member returns the removed member. kNotFound.
  virtual Expected<Member, StoreError> remove_member(std::string_view group,
                                                     std::string_view node_name,
                                                     int64_t now) = 0;
  virtual Expected<void, StoreError> update_member_key(std::string_view group,
                                                       std::string_view node_name,
                                                       ByteView public_key) = 0;
  virtual Expected<void, StoreError> update_member_sender_id(std::string_view group,
                                                             std::string_view node_name,
                                                             ByteView sender_id,
                                                             int64_t now) = 0;
  // purge_departed: GroupState::purge_departed on the stored group; returns the
  // number of entries removed. kNotFound.
  virtual Expected<size_t, StoreError> purge_departed(std::string_view group, int64_t now) = 0;

  // ---- keying material ----
  // put_key_material stores version key.num of the group's keying material; it
  // must be exactly current + 1 (kStale otherwise) and its Group ID must never
  // have been used in this group (kConflict). Resets the change counters.
  virtual Expected<void, StoreError> put_key_material(std::string_view group,
                                                      const GroupKeyMaterial& key) = 0;

  // ---- access tokens ----
  // put_token inserts or replaces the token with the same token_id.
  virtual Expected<void, StoreError> put_token(const TokenRecord& t) = 0;
  // get_token: kNotFound.
  virtual Expected<TokenRecord, StoreError> get_token(ByteView token_id) = 0;
  // tokens_for_client returns every stored token of a client (possibly none).
  virtual Expected<std::vector<TokenRecord>, StoreError> tokens_for_client(
      std::string_view client_id) = 0;
  // delete_token: kNotFound.
  virtual Expected<void, StoreError> delete_token(ByteView token_id) = 0;
  // purge_expired_tokens deletes tokens with 0 < exp <= now; returns how many.
  virtual Expected<size_t, StoreError> purge_expired_tokens(int64_t now) = 0;

  // ---- client-KDC OSCORE contexts ----
  // put_context inserts or replaces the context with the same key. When it
  // replaces a context with the same master secret, salt and Sender ID, the
  // stored seq_reserved never decreases (a re-put cannot reopen used numbers).
  virtual Expected<void, StoreError> put_context(const OscoreContextRecord& c) = 0;
  // get_context: kNotFound.
  virtual Expected<OscoreContextRecord, StoreError> get_context(const ContextKey& key) = 0;
  // delete_context: kNotFound.
  virtual Expected<void, StoreError> delete_context(const ContextKey& key) = 0;
  // reserve_sequence durably raises the context's reservation to `upto` before it
  // returns: the caller may then use Sender Sequence Numbers below `upto`.
  // kStale if upto is below the stored value (equal is accepted), kNotFound.
  virtual Expected<void, StoreError> reserve_sequence(const ContextKey& key, uint64_t upto) = 0;

  // ---- startup ----
  // load_all returns the whole state.
  virtual Expected<KdcState, StoreError> load_all() = 0;

  // ---- group commit ----
  // begin_batch opens a commit window (see above). kConflict if one is already
  // open. Backends without durability (MemoryStore) accept and ignore it.
  virtual Expected<void, StoreError> begin_batch() { return {}; }
  // commit_batch makes every successful operation since begin_batch durable with
  // one commit and closes the window. kIo / kBusy: nothing of the batch was kept
  // (as far as the store knows; see kIo) and the window is closed. Without an
  // open window it does nothing.
  virtual Expected<void, StoreError> commit_batch() { return {}; }
  // in_batch: whether a commit window is open.
  virtual bool in_batch() const { return false; }
  // batch_round names the open commit window: a number unique per begin_batch() of
  // this store object (never 0), or 0 when no window is open (and always 0 for
  // backends that ignore windows). Nothing written in a window is visible to anyone
  // outside this process, nor acknowledged, before its commit_batch() (see above):
  // GroupManager rekeys a group at most once per round for joins (rekey policies,
  // docs/kdc-state.md).
  virtual uint64_t batch_round() const { return 0; }
};

}  // namespace acekdc::kdc
