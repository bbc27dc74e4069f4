// SqliteStore: the KDC state in one SQLite database file (the embedded default).
//
// The database runs in WAL mode with synchronous=FULL: a write transaction is on
// disk (fsynced WAL) before the operation returns (or, inside a begin_batch /
// commit_batch window, before commit_batch returns). Each operation is one
// BEGIN IMMEDIATE ... COMMIT transaction; prepared statements are cached per
// connection; the schema is versioned through a schema_migrations table and
// upgraded on open. Several SqliteStore objects (threads or processes) may open
// the same file: writers serialize on the database lock, waiting up to
// busy_timeout_ms before kBusy. The file is created with mode 0600 (it holds
// master secrets in clear).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "kdc/store.h"

namespace acekdc::kdc {

struct SqliteOptions {
  // durable: synchronous=FULL (the default). false sets synchronous=OFF, for
  // bulk loading in tests and benchmarks only: a crash may then lose commits.
  bool durable = true;
  int busy_timeout_ms = 5000;
  // cache_groups: keep loaded groups in memory and serve load_group from that
  // copy. Each successful write applies the model's operation (GroupState) to the
  // copy; a commit by another connection (PRAGMA data_version), a write with an
  // unknown outcome or a failed batch drops it. Saves the O(members) SQL reads of
  // every load_group (the returned copy is still O(members); group_snapshot
  // hands out the cached state without a copy); costs the group's
  // memory for as long as the store lives. Off by default.
  bool cache_groups = false;
};

class SqliteStore final : public Store {
 public:
  // kCurrentSchemaVersion: the schema this build writes.
  static constexpr int kCurrentSchemaVersion = 1;

  // open opens (creating if needed) the database at `path` and brings its schema
  // up to date. kIo if it cannot be opened, kCorrupt if it is not a database or
  // its schema is unusable, kSchemaTooNew if a newer acekdc wrote it.
  static Expected<std::unique_ptr<SqliteStore>, StoreError> open(const std::string& path,
                                                                 const SqliteOptions& options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // schema_version returns the applied schema version.
  Expected<int, StoreError> schema_version();
  // integrity_check runs PRAGMA integrity_check; kCorrupt unless it answers "ok".
  Expected<void, StoreError> integrity_check();

  Expected<void, StoreError> create_group(const GroupConfig& config,
                                          const GroupKeyMaterial& key) override;
  Expected<void, StoreError> update_group_config(const GroupConfig& config) override;
  Expected<GroupState, StoreError> load_group(std::string_view name) override;
  // group_snapshot: with cache_groups the cached state itself (no copy); a write
  // while snapshots are held copies the cached state once (copy-on-write).
  Expected<std::shared_ptr<const GroupState>, StoreError> group_snapshot(
      std::string_view name) override;
  Expected<std::vector<std::string>, StoreError> list_groups() override;
  Expected<void, StoreError> add_member(std::string_view group, const Member& m) override;
  Expected<Member, StoreError> remove_member(std::string_view group, std::string_view node_name,
                                             int64_t now) override;
  Expected<void, StoreError> update_member_key(std::string_view group, std::string_view node_name,
                                               ByteView public_key) override;
  Expected<void, StoreError> update_member_sender_id(std::string_view group,
                                                     std::string_view node_name,
                                                     ByteView sender_id, int64_t now) override;
  Expected<size_t, StoreError> purge_departed(std::string_view group, int64_t now) override;
  Expected<void, StoreError> put_key_material(std::string_view group,
                                              const GroupKeyMaterial& key) override;
  Expected<void, StoreError> put_token(const TokenRecord& t) override;
  Expected<TokenRecord, StoreError> get_token(ByteView token_id) override;
  Expected<std::vector<TokenRecord>, StoreError> tokens_for_client(
      std::string_view client_id) override;
  Expected<void, StoreError> delete_token(ByteView token_id) override;
  Expected<size_t, StoreError> purge_expired_tokens(int64_t now) override;
  Expected<void, StoreError> put_context(const OscoreContextRecord& c) override;
  Expected<OscoreContextRecord, StoreError> get_context(const ContextKey& key) override;
  Expected<void, StoreError> delete_context(const ContextKey& key) override;
  Expected<void, StoreError> reserve_sequence(const ContextKey& key, uint64_t upto) override;
  Expected<KdcState, StoreError> load_all() override;
  // Group commit (store.h): the batch's transaction is opened (BEGIN IMMEDIATE)
  // by its first operation; each operation inside is a SAVEPOINT released on
  // success and rolled back on error; commit_batch is one COMMIT (one WAL fsync).
  // While a window is open this connection holds the database write lock.
  Expected<void, StoreError> begin_batch() override;
  Expected<void, StoreError> commit_batch() override;
  bool in_batch() const override;
  uint64_t batch_round() const override;
  // set_deferred_sync(true) pipelines the group commit (io::SyncPipeline): from the
  // next window on, commit_batch() makes the window's writes visible (COMMIT with
  // synchronous=NORMAL: no fsync) but NOT durable; they are durable once a later
  // sync_committed() returned success. The caller must not acknowledge anything
  // before that. Operations outside a window stay durable when they return
  // (the connection is back to FULL after each window). No effect with durable=false.
  void set_deferred_sync(bool on);
  // sync_committed fsyncs the WAL file: every commit that returned before the call
  // is durable when it returns success; kIo when the sync failed (what was committed
  // may be lost on a crash: fail-stop). Safe to call from another thread while this
  // store is used: it does not touch the connection. Nothing to do for ":memory:".
  Expected<void, StoreError> sync_committed();
  // batches_committed / batched_ops: counters for tests and benchmarks (commit
  // windows that committed at least one write, and the operations they held).
  uint64_t batches_committed() const;
  uint64_t batched_ops() const;

  struct Db;  // implementation detail (sqlite3 handle and statement cache)

 private:
  explicit SqliteStore(std::unique_ptr<Db> db);
  // commit_window: commit_batch's work under the mutex, without the pragma restore.
  static Expected<void, StoreError> commit_window(Db& db);

  mutable std::mutex mu_;
  std::unique_ptr<Db> db_;
};

}  // namespace acekdc::kdc
