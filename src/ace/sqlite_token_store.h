// SqliteTokenStore: the KDC's /authz-info state (ClientRecord: tokens, rsnonce and the
// OSCORE context parameters derived at the token POST, master secret included) kept
// in an SQLite file, so that a restarted KDC still knows its clients' contexts.
//
//   auto s = SqliteTokenStore::open(state_dir + "/kdc-tokens.sqlite");
//   AuthzInfo authz(provider, random, **s, config);
//
// The file is created with mode 0600 (it holds master secrets). Outside a batch every
// put / erase is one transaction with synchronous=FULL before it returns (kIo when it
// fails: the in-memory view is then unchanged). Reads are served from an in-memory
// copy loaded at open (hash-indexed: get / contains / find_material are O(1)). A
// record that does not decode at open makes open fail (kIo): the file is never
// silently half-read. Not thread-safe.
//
// Group commit (as kdc::Store::begin_batch, docs/kdc-state.md): between begin_batch()
// and commit_batch() every put / erase is written into one open transaction and
// becomes durable only when commit_batch() returns success (one fsync for all of
// them). The caller must not acknowledge anything to anyone (e.g. send a token POST's
// 2.01) before that. A put / erase that fails inside the window answers kIo and makes
// commit_batch() fail too; a failed commit rolls the whole window back and reloads the
// in-memory view from the file (kIo), so that it shows only what is durable.
#pragma once

#include <memory>
#include <string>

#include "ace/token_store.h"

struct sqlite3_stmt;

namespace acekdc::ace {

class SqliteTokenStore final : public TokenStore {
 public:
  ~SqliteTokenStore() override;
  // open opens (or creates) the database at `path`; kIo if it cannot be opened or a
  // stored record does not decode.
  static Expected<std::unique_ptr<SqliteTokenStore>, StoreError> open(const std::string& path,
                                                                      size_t capacity = 4096);

  Expected<void, StoreError> put(const ClientRecord& record) override;
  std::optional<ClientRecord> get(const ContextKey& key) const override;
  const ClientRecord* find(const ContextKey& key) const override { return mem_.find(key); }
  bool contains(const ContextKey& key) const override { return mem_.contains(key); }
  bool contains_id(ByteView recipient_id, const std::optional<Bytes>& id_context) const override {
    return mem_.contains_id(recipient_id, id_context);
  }
  Expected<void, StoreError> erase(const ContextKey& key) override;
  // replace: the put and the erase in one transaction (one sync; in a window, the
  // window's); kIo: neither happened.
  Expected<void, StoreError> replace(const ContextKey& old, ClientRecord&& record) override;
  std::vector<ContextKey> keys() const override;
  std::optional<ContextKey> find_material(ByteView material_id) const override;
  size_t size() const override { return mem_.size(); }

  // begin_batch opens a commit window (see above); one already open stays open.
  void begin_batch();
  // commit_batch makes the window's writes durable with one commit and closes it;
  // without an open window (or without writes in it) it does nothing. kIo: nothing
  // of the window was kept and the in-memory view was reloaded from the file.
  Expected<void, StoreError> commit_batch();
  bool in_batch() const { return batch_open_; }
  // set_deferred_sync(true) pipelines the group commit (io::SyncPipeline): from the
  // next window on, commit_batch() makes the window's writes visible (COMMIT with
  // synchronous=NORMAL: no fsync) but NOT durable; they are durable once a later
  // sync_committed() returned success. The caller must not acknowledge anything
  // before that. put / erase outside a window stay durable when they return.
  void set_deferred_sync(bool on) { deferred_sync_ = on; }
  // sync_committed fsyncs the WAL file: every commit that returned before the call is
  // durable when it returns success; kIo when the sync failed (fail-stop). Unlike the
  // rest of this class it may run on another thread while the store is used: it
  // does not touch the connection.
  Expected<void, StoreError> sync_committed();
  // batches_committed: windows committed with at least one write (tests).
  uint64_t batches_committed() const { return batches_committed_; }

 private:
  SqliteTokenStore() = default;
  // load replaces the in-memory view with the file's records; kIo as open.
  Expected<void, StoreError> load();
  // write runs `st` (bound) as one transaction, or inside the window's.
  Expected<void, StoreError> write(sqlite3_stmt* st);
  // commit_window: commit_batch's work, without the synchronous pragma restore.
  Expected<void, StoreError> commit_window();
  struct Db;
  std::unique_ptr<Db> db_;
  MemoryTokenStore mem_;
  size_t capacity_ = 4096;
  bool batch_open_ = false;
  bool batch_txn_ = false;     // the window's BEGIN ran (at its first write)
  bool batch_failed_ = false;  // a write of the window failed
  bool deferred_sync_ = false;
  bool batch_normal_ = false;  // this window switched the connection to NORMAL
  uint64_t batches_committed_ = 0;
};

// encode_record / decode_record: the CBOR form of a ClientRecord in the file
// (exposed for tests and fuzzing). decode_record: nullopt when malformed.
Bytes encode_record(const ClientRecord& r);
std::optional<ClientRecord> decode_record(ByteView cbor);
Bytes encode_context_key(const ContextKey& k);

}  // namespace acekdc::ace
