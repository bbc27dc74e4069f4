#include "kdc/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <limits>
#include <map>
#include <thread>
#include <unordered_map>

namespace acekdc::kdc {

namespace {

constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Schema migrations, applied in order; migration i brings the schema to version i+1.
// Never edit one that has shipped: append a new one.
const char* const kMigrations[] = {
    // v1
    R"sql(
CREATE TABLE kdc_group (
  name TEXT PRIMARY KEY NOT NULL,
  config BLOB NOT NULL,
  num INTEGER NOT NULL CHECK (num >= 0),
  master_secret BLOB NOT NULL,
  master_salt BLOB NOT NULL,
  group_id BLOB NOT NULL,
  key_exp INTEGER NOT NULL,
  key_established_at INTEGER NOT NULL,
  num_members INTEGER NOT NULL DEFAULT 0,
  joins_since_rekey INTEGER NOT NULL DEFAULT 0,
  leaves_since_rekey INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE used_group_id (
  group_name TEXT NOT NULL REFERENCES kdc_group(name) ON DELETE CASCADE,
  group_id BLOB NOT NULL,
  num INTEGER NOT NULL,
  PRIMARY KEY (group_name, group_id)
) WITHOUT ROWID;
CREATE TABLE member (
  group_name TEXT NOT NULL REFERENCES kdc_group(name) ON DELETE CASCADE,
  node_name TEXT NOT NULL,
  sender_id BLOB NOT NULL,
  roles INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  control_path TEXT NOT NULL,
  joined_at INTEGER NOT NULL,
  token_id BLOB NOT NULL,
  PRIMARY KEY (group_name, node_name),
  UNIQUE (group_name, sender_id)
) WITHOUT ROWID;
CREATE TABLE retired_sender_id (
  group_name TEXT NOT NULL REFERENCES kdc_group(name) ON DELETE CASCADE,
  sender_id BLOB NOT NULL,
  retired_at INTEGER NOT NULL,
  retired_num INTEGER NOT NULL,
  PRIMARY KEY (group_name, sender_id)
) WITHOUT ROWID;
CREATE TABLE departed_key (
  group_name TEXT NOT NULL REFERENCES kdc_group(name) ON DELETE CASCADE,
  sender_id BLOB NOT NULL,
  node_name TEXT NOT NULL,
  roles INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  departed_at INTEGER NOT NULL,
  PRIMARY KEY (group_name, sender_id)
) WITHOUT ROWID;
CREATE TABLE token (
  token_id BLOB PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL,
  scope BLOB NOT NULL,
  exp INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX token_by_client ON token(client_id);
CREATE INDEX token_by_exp ON token(exp) WHERE exp > 0;
CREATE TABLE oscore_context (
  id_context BLOB NOT NULL,
  recipient_id BLOB NOT NULL,
  sender_id BLOB NOT NULL,
  master_secret BLOB NOT NULL,
  master_salt BLOB NOT NULL,
  aead_alg INTEGER NOT NULL,
  hkdf_alg INTEGER NOT NULL,
  token_id BLOB NOT NULL,
  seq_reserved INTEGER NOT NULL CHECK (seq_reserved >= 0),
  PRIMARY KEY (id_context, recipient_id)
) WITHOUT ROWID;
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kNumMigrations == SqliteStore::kCurrentSchemaVersion);

StoreError map_rc(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return StoreError::kBusy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_SCHEMA: return StoreError::kCorrupt;
    case SQLITE_CONSTRAINT: return StoreError::kConflict;
    default: return StoreError::kIo;
  }
}

const uint8_t kEmptyBlob = 0;

// Stmt: a cached prepared statement in use; resets itself when it goes away.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  ~Stmt() {
    if (s_) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
  // Parameters are numbered from 1; bound values must outlive the Stmt.
  Stmt& i64(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& blob(int i, ByteView v) {
    sqlite3_bind_blob(s_, i, v.empty() ? &kEmptyBlob : v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
    return *this;
  }
  // step returns SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }
  int64_t col_i64(int c) { return sqlite3_column_int64(s_, c); }
  Bytes col_bytes(int c) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, c));
    const int n = sqlite3_column_bytes(s_, c);
    return p ? Bytes(p, p + n) : Bytes();
  }
  ByteView col_view(int c) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, c));
    const int n = sqlite3_column_bytes(s_, c);
    return p ? ByteView(p, static_cast<size_t>(n)) : ByteView();
  }
  std::string col_text(int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    const int n = sqlite3_column_bytes(s_, c);
    return p ? std::string(p, static_cast<size_t>(n)) : std::string();
  }

 private:
  sqlite3_stmt* s_;
};

}  // namespace

struct SqliteStore::Db {
  sqlite3* h = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache;
  // Group commit state (begin_batch / commit_batch).
  bool batch_wanted = false;  // a window is open
  bool batch_open = false;    // its transaction has begun
  bool batch_lost = false;    // SQLite rolled the batch's transaction back (I/O error)
  uint64_t batch_ops = 0;     // operations released into the open transaction
  uint64_t batch_round = 0;   // begin_batch() calls so far: names the open window
  uint64_t batches_committed = 0;
  uint64_t batched_ops_total = 0;
  // Group cache (SqliteOptions::cache_groups): loaded groups, kept equal to the
  // database by applying each successful write's model operation; dropped when
  // another connection committed (PRAGMA data_version), when a write's outcome is
  // unknown, and when a batch is lost.
  bool cache_groups = false;
  // Shared with group_snapshot's callers: mutated in place only while nobody
  // else holds it (use_count 1, checked under the store's mutex), else copied.
  std::map<std::string, std::shared_ptr<GroupState>, std::less<>> groups;
  int64_t data_version = -1;
  // version_fresh: data_version was checked inside the open batch transaction,
  // which holds the write lock since its BEGIN IMMEDIATE: no other connection can
  // commit until it ends, so `groups` equals the database for the rest of it.
  // Cleared when the batch's transaction ends (commit_window).
  bool version_fresh = false;
  // Deferred sync (set_deferred_sync): a window commits with synchronous=NORMAL;
  // sync_committed fsyncs the WAL file through wal_fd (its own descriptor, guarded
  // by wal_mu, not by the store's mutex: it runs beside the connection's work).
  bool durable = true;
  bool deferred_sync = false;
  bool batch_normal = false;  // this window switched the connection to NORMAL
  std::string wal_path;       // empty: nothing to sync (":memory:")
  std::mutex wal_mu;
  int wal_fd = -1;

  ~Db() {
    for (auto& [sql, s] : cache) sqlite3_finalize(s);
    if (h) sqlite3_close_v2(h);
    if (wal_fd >= 0) ::close(wal_fd);
  }
  // stmt returns the cached statement for `sql` (a string literal: cached by address).
  Expected<Stmt, StoreError> stmt(const char* sql) {
    auto it = cache.find(sql);
    if (it != cache.end()) return Stmt(it->second);
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return unexpected(map_rc(rc) == StoreError::kIo ? StoreError::kCorrupt
                                                                         : map_rc(rc));
    cache.emplace(sql, s);
    return Stmt(s);
  }
  // run executes a statement that returns no rows.
  Expected<void, StoreError> run(const char* sql) {
    auto st = stmt(sql);
    if (!st) return unexpected(st.error());
    const int rc = st->step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return unexpected(map_rc(rc));
    return {};
  }
  int64_t changes() { return sqlite3_changes64(h); }
};

namespace {

// Txn: one transaction; rolled back unless commit() succeeded. Inside a group
// commit window it is a SAVEPOINT of the batch's transaction instead.
class Txn {
 public:
  explicit Txn(SqliteStore::Db& db) : db_(db) {}
  ~Txn() {
    if (!open_) return;
    if (savepoint_) {
      (void)db_.run("ROLLBACK TO op");
      (void)db_.run("RELEASE op");
    } else {
      (void)db_.run("ROLLBACK");
    }
  }
  // begin starts a write (IMMEDIATE: takes the write lock now) or read transaction.
  Expected<void, StoreError> begin(bool write = true) {
    if (db_.batch_wanted) {
      if (db_.batch_lost) return unexpected(StoreError::kIo);
      if (db_.batch_open && sqlite3_get_autocommit(db_.h)) {
        // SQLite ended the batch's transaction on its own (I/O error, disk full):
        // the batch is gone; refuse until commit_batch reports it.
        db_.batch_lost = true;
        return unexpected(StoreError::kIo);
      }
      if (!db_.batch_open) {
        ACEKDC_TRY(db_.run("BEGIN IMMEDIATE"));
        db_.batch_open = true;
      }
      auto r = db_.run("SAVEPOINT op");
      if (r) open_ = savepoint_ = true;
      write_ = write;
      return r;
    }
    auto r = write ? db_.run("BEGIN IMMEDIATE") : db_.run("BEGIN");
    if (r) open_ = true;
    return r;
  }
  Expected<void, StoreError> commit() {
    auto r = savepoint_ ? db_.run("RELEASE op") : db_.run("COMMIT");
    if (r) {
      open_ = false;
      if (savepoint_ && write_) ++db_.batch_ops;
    }
    return r;
  }

 private:
  SqliteStore::Db& db_;
  bool open_ = false;
  bool savepoint_ = false;
  bool write_ = false;
};

#define SQL_TRY_STMT(var, sql)              \
  auto var##_r = db.stmt(sql);              \
  if (!var##_r) return unexpected(var##_r.error()); \
  Stmt& var = *var##_r

// step_done runs a statement that must finish without rows.
Expected<void, StoreError> step_done(Stmt& st) {
  const int rc = st.step();
  if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  return {};
}

// check_data_version drops the group cache if another connection committed
// since the last check.
Expected<void, StoreError> check_data_version(SqliteStore::Db& db) {
  SQL_TRY_STMT(st, "PRAGMA data_version");
  const int rc = st.step();
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  const int64_t v = st.col_i64(0);
  if (v != db.data_version) {
    db.groups.clear();
    db.data_version = v;
  }
  // Inside the batch's transaction (write lock held) the check stays true.
  if (db.batch_open && !sqlite3_get_autocommit(db.h)) db.version_fresh = true;
  return {};
}

// cached_group: the store's cached copy of `group` when it is known to equal the
// database for the current transaction, else nullptr. Call inside a write Txn
// (after begin()): the data_version check then covers the rest of the transaction
// (no other connection can commit while it holds the write lock). Write operations
// use it to check their preconditions (name taken, Sender ID / Group ID in use,
// current num, member count) without re-reading and re-decoding the group row; the
// database's constraints (PRIMARY KEY, UNIQUE, `WHERE num = ?`) still back them.
Expected<const GroupState*, StoreError> cached_group(SqliteStore::Db& db, std::string_view group) {
  if (!db.cache_groups) return nullptr;
  if (!db.version_fresh) ACEKDC_TRY(check_data_version(db));
  auto it = db.groups.find(group);
  return it == db.groups.end() ? nullptr : it->second.get();
}

// commit_group_write commits `txn` and then applies `apply` (the model's version
// of the write) to the cached copy of `group`; a cached copy that disagrees, or
// any failed commit (its outcome is unknown), drops the copy.
template <class F>
Expected<void, StoreError> commit_group_write(SqliteStore::Db& db, Txn& txn, std::string_view group,
                                              F&& apply) {
  auto r = txn.commit();
  auto it = db.groups.find(group);
  if (it == db.groups.end()) return r;
  if (!r) {
    db.groups.erase(it);
    return r;
  }
  // Copy-on-write: a snapshot handed out earlier must not change.
  if (it->second.use_count() > 1) it->second = std::make_shared<GroupState>(*it->second);
  if (!apply(*it->second)) db.groups.erase(it);
  return r;
}

// GroupRow: the kdc_group columns operations need.
struct GroupRow {
  GroupConfig config;
  uint64_t num = 0;
  int64_t num_members = 0;
};

Expected<GroupRow, StoreError> read_group_row(SqliteStore::Db& db, std::string_view group) {
  SQL_TRY_STMT(st, "SELECT config, num, num_members FROM kdc_group WHERE name = ?");
  st.text(1, group);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  auto config = decode_group_config(st.col_view(0));
  if (!config) return unexpected(config.error());
  const int64_t num = st.col_i64(1);
  if (num < 0) return unexpected(StoreError::kCorrupt);
  return GroupRow{std::move(*config), static_cast<uint64_t>(num), st.col_i64(2)};
}

// sender_id_available mirrors GroupState::sender_id_available in SQL.
Expected<bool, StoreError> sender_id_available(SqliteStore::Db& db, std::string_view group,
                                               ByteView sender_id, uint64_t num) {
  {
    SQL_TRY_STMT(st, "SELECT 1 FROM member WHERE group_name = ? AND sender_id = ?");
    st.text(1, group).blob(2, sender_id);
    const int rc = st.step();
    if (rc == SQLITE_ROW) return false;
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  SQL_TRY_STMT(st,
               "SELECT retired_num FROM retired_sender_id WHERE group_name = ? AND sender_id = ?");
  st.text(1, group).blob(2, sender_id);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return true;
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  return static_cast<uint64_t>(st.col_i64(0)) < num;
}

// retire_in_db mirrors retire() of model.cpp.
Expected<void, StoreError> retire_in_db(SqliteStore::Db& db, std::string_view group,
                                        const GroupRow& row, const Member& m, int64_t now) {
  {
    SQL_TRY_STMT(st,
                 "INSERT OR REPLACE INTO retired_sender_id (group_name, sender_id, retired_at, "
                 "retired_num) VALUES (?, ?, ?, ?)");
    st.text(1, group).blob(2, m.sender_id).i64(3, now).i64(4, static_cast<int64_t>(row.num));
    ACEKDC_TRY(step_done(st));
  }
  if (row.config.departed_key_retention_s > 0 && !m.public_key.empty()) {
    SQL_TRY_STMT(st,
                 "INSERT OR REPLACE INTO departed_key (group_name, sender_id, node_name, roles, "
                 "public_key, departed_at) VALUES (?, ?, ?, ?, ?, ?)");
    st.text(1, group).blob(2, m.sender_id).text(3, m.node_name).i64(4, m.roles)
        .blob(5, m.public_key).i64(6, now);
    ACEKDC_TRY(step_done(st));
  }
  return {};
}

// forget_sender_id drops departed/retired entries of a Sender ID being reassigned.
Expected<void, StoreError> forget_sender_id(SqliteStore::Db& db, std::string_view group,
                                            ByteView sender_id) {
  {
    SQL_TRY_STMT(st, "DELETE FROM departed_key WHERE group_name = ? AND sender_id = ?");
    st.text(1, group).blob(2, sender_id);
    ACEKDC_TRY(step_done(st));
  }
  SQL_TRY_STMT(st, "DELETE FROM retired_sender_id WHERE group_name = ? AND sender_id = ?");
  st.text(1, group).blob(2, sender_id);
  return step_done(st);
}

// insert_member_row writes a new member and counts it in its group's row.
Expected<void, StoreError> insert_member_row(SqliteStore::Db& db, std::string_view group, const Member& m) {
  {
    SQL_TRY_STMT(st,
                 "INSERT INTO member (group_name, node_name, sender_id, roles, public_key, "
                 "control_path, joined_at, token_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    st.text(1, group).text(2, m.node_name).blob(3, m.sender_id).i64(4, m.roles)
        .blob(5, m.public_key).text(6, m.control_path).i64(7, m.joined_at).blob(8, m.token_id);
    ACEKDC_TRY(step_done(st));
  }
  SQL_TRY_STMT(st,
               "UPDATE kdc_group SET num_members = num_members + 1, "
               "joins_since_rekey = joins_since_rekey + 1 WHERE name = ?");
  st.text(1, group);
  ACEKDC_TRY(step_done(st));
  if (db.changes() != 1) return unexpected(StoreError::kNotFound);
  return {};
}

Expected<Member, StoreError> read_member(SqliteStore::Db& db, std::string_view group,
                                         std::string_view node_name) {
  SQL_TRY_STMT(st,
               "SELECT sender_id, roles, public_key, control_path, joined_at, token_id FROM member "
               "WHERE group_name = ? AND node_name = ?");
  st.text(1, group).text(2, node_name);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  Member m;
  m.node_name = std::string(node_name);
  m.sender_id = st.col_bytes(0);
  m.roles = static_cast<RoleSet>(st.col_i64(1));
  m.public_key = st.col_bytes(2);
  m.control_path = st.col_text(3);
  m.joined_at = st.col_i64(4);
  m.token_id = st.col_bytes(5);
  return m;
}

Expected<GroupState, StoreError> read_group(SqliteStore::Db& db, std::string_view name) {
  GroupState g;
  {
    SQL_TRY_STMT(st,
                 "SELECT config, num, master_secret, master_salt, group_id, key_exp, "
                 "key_established_at, joins_since_rekey, leaves_since_rekey FROM kdc_group "
                 "WHERE name = ?");
    st.text(1, name);
    const int rc = st.step();
    if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
    if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
    auto config = decode_group_config(st.col_view(0));
    if (!config) return unexpected(config.error());
    if (config->name != name) return unexpected(StoreError::kCorrupt);
    g.config = std::move(*config);
    const int64_t num = st.col_i64(1);
    if (num < 0) return unexpected(StoreError::kCorrupt);
    g.key.num = static_cast<uint64_t>(num);
    g.key.master_secret = st.col_bytes(2);
    g.key.master_salt = st.col_bytes(3);
    g.key.group_id = st.col_bytes(4);
    g.key.exp = st.col_i64(5);
    g.key.established_at = st.col_i64(6);
    g.joins_since_rekey = static_cast<uint64_t>(st.col_i64(7));
    g.leaves_since_rekey = static_cast<uint64_t>(st.col_i64(8));
  }
  {
    SQL_TRY_STMT(st,
                 "SELECT node_name, sender_id, roles, public_key, control_path, joined_at, "
                 "token_id FROM member WHERE group_name = ?");
    st.text(1, name);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      Member m;
      m.node_name = st.col_text(0);
      m.sender_id = st.col_bytes(1);
      m.roles = static_cast<RoleSet>(st.col_i64(2));
      m.public_key = st.col_bytes(3);
      m.control_path = st.col_text(4);
      m.joined_at = st.col_i64(5);
      m.token_id = st.col_bytes(6);
      if (!g.by_sender_id.emplace(m.sender_id, m.node_name).second) {
        return unexpected(StoreError::kCorrupt);
      }
      g.index_member(m);
      std::string key = m.node_name;
      if (!g.members.emplace(std::move(key), std::move(m)).second) {
        return unexpected(StoreError::kCorrupt);
      }
    }
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  {
    SQL_TRY_STMT(st, "SELECT group_id, num FROM used_group_id WHERE group_name = ?");
    st.text(1, name);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      g.used_group_ids.emplace(st.col_bytes(0), static_cast<uint64_t>(st.col_i64(1)));
    }
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  {
    SQL_TRY_STMT(st,
                 "SELECT sender_id, node_name, roles, public_key, departed_at FROM departed_key "
                 "WHERE group_name = ?");
    st.text(1, name);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      DepartedKey d{st.col_bytes(0), st.col_text(1), static_cast<RoleSet>(st.col_i64(2)),
                    st.col_bytes(3), st.col_i64(4)};
      Bytes sid = d.sender_id;
      g.departed.emplace(std::move(sid), std::move(d));
    }
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  {
    SQL_TRY_STMT(st,
                 "SELECT sender_id, retired_at, retired_num FROM retired_sender_id "
                 "WHERE group_name = ?");
    st.text(1, name);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      RetiredSenderId r{st.col_bytes(0), st.col_i64(1), static_cast<uint64_t>(st.col_i64(2))};
      Bytes sid = r.sender_id;
      g.retired.emplace(std::move(sid), std::move(r));
    }
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  if (!g.used_group_ids.count(g.key.group_id)) return unexpected(StoreError::kCorrupt);
  return g;
}

Expected<std::vector<std::string>, StoreError> read_group_names(SqliteStore::Db& db) {
  SQL_TRY_STMT(st, "SELECT name FROM kdc_group ORDER BY name");
  std::vector<std::string> names;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) names.push_back(st.col_text(0));
  if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  return names;
}

TokenRecord read_token_row(Stmt& st) {
  return TokenRecord{st.col_bytes(0), st.col_text(1), st.col_bytes(2), st.col_i64(3)};
}

OscoreContextRecord read_context_row(Stmt& st) {
  OscoreContextRecord c;
  c.key.id_context = st.col_bytes(0);
  c.key.recipient_id = st.col_bytes(1);
  c.sender_id = st.col_bytes(2);
  c.master_secret = st.col_bytes(3);
  c.master_salt = st.col_bytes(4);
  c.aead_alg = static_cast<int>(st.col_i64(5));
  c.hkdf_alg = static_cast<int>(st.col_i64(6));
  c.token_id = st.col_bytes(7);
  c.seq_reserved = static_cast<uint64_t>(st.col_i64(8));
  return c;
}

#define CONTEXT_COLUMNS \
  "id_context, recipient_id, sender_id, master_secret, master_salt, aead_alg, hkdf_alg, " \
  "token_id, seq_reserved"

// exec_script runs several statements (migrations, pragmas).
Expected<void, StoreError> exec_script(sqlite3* h, const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(h, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK) return unexpected(map_rc(rc));
  return {};
}

}  // namespace

// ---- open and schema ----

SqliteStore::SqliteStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}
SqliteStore::~SqliteStore() = default;

Expected<std::unique_ptr<SqliteStore>, StoreError> SqliteStore::open(const std::string& path,
                                                                     const SqliteOptions& options) {
  if (path != ":memory:" && !path.empty()) {
    // Create the file ourselves so that it is private from the start (SQLite gives
    // its -wal and -shm files the same mode).
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return unexpected(StoreError::kIo);
    ::close(fd);
  }
  auto db = std::make_unique<Db>();
  int rc = sqlite3_open_v2(path.c_str(), &db->h,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return unexpected(StoreError::kIo);
  sqlite3_extended_result_codes(db->h, 1);
  sqlite3_busy_timeout(db->h, options.busy_timeout_ms);
  // SQLite answers SQLITE_BUSY without calling the busy handler for some locks (e.g.
  // while another connection switches a new file to WAL or recovers the WAL index),
  // so two KDC processes opening one new file at once could fail: the open steps are
  // retried on kBusy until the busy timeout has passed.
  const auto busy_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
  auto retry_busy = [&](auto&& step) -> decltype(step()) {
    for (;;) {
      auto r = step();
      if (r || r.error() != StoreError::kBusy || std::chrono::steady_clock::now() >= busy_until) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  // journal_mode=WAL fails with SQLITE_NOTADB on a file that is not a database.
  ACEKDC_TRY(retry_busy([&] { return exec_script(db->h, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"); }));
  ACEKDC_TRY(retry_busy([&] {
    return exec_script(db->h, options.durable ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=OFF;");
  }));
  db->cache_groups = options.cache_groups;
  db->durable = options.durable;
  if (path != ":memory:" && !path.empty()) db->wal_path = path + "-wal";
  ACEKDC_TRY(retry_busy([&] {
    return exec_script(db->h,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  }));
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db)));
  // Apply missing migrations, each in its own transaction (another process may
  // be doing the same: the version is re-read under the write lock). One step
  // answers true when the schema is current.
  auto migrate_step = [&]() -> Expected<bool, StoreError> {
    Db& d = *store->db_;
    Txn txn(d);
    ACEKDC_TRY(txn.begin());
    auto version = store->schema_version();
    if (!version) return unexpected(version.error());
    if (*version > kCurrentSchemaVersion) return unexpected(StoreError::kSchemaTooNew);
    if (*version == kCurrentSchemaVersion) return true;
    ACEKDC_TRY(exec_script(d.h, kMigrations[*version]));
    auto st = d.stmt(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s','now'))");
    if (!st) return unexpected(st.error());
    st->i64(1, *version + 1);
    ACEKDC_TRY(step_done(*st));
    ACEKDC_TRY(txn.commit());
    return false;
  };
  for (;;) {
    auto done = retry_busy(migrate_step);
    if (!done) return unexpected(done.error());
    if (*done) break;
  }
  return store;
}

Expected<int, StoreError> SqliteStore::schema_version() {
  Db& db = *db_;
  SQL_TRY_STMT(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  const int rc = st.step();
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  return static_cast<int>(st.col_i64(0));
}

Expected<void, StoreError> SqliteStore::integrity_check() {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  SQL_TRY_STMT(st, "PRAGMA integrity_check");
  const int rc = st.step();
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  if (st.col_text(0) != "ok") return unexpected(StoreError::kCorrupt);
  return {};
}

// ---- groups ----

Expected<void, StoreError> SqliteStore::create_group(const GroupConfig& config,
                                                     const GroupKeyMaterial& key) {
  auto valid = GroupState::create(config, key);
  if (!valid) return unexpected(valid.error());
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  {
    SQL_TRY_STMT(st, "SELECT 1 FROM kdc_group WHERE name = ?");
    st.text(1, config.name);
    const int rc = st.step();
    if (rc == SQLITE_ROW) return unexpected(StoreError::kConflict);
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  const Bytes blob = encode_group_config(config);
  {
    SQL_TRY_STMT(st,
                 "INSERT INTO kdc_group (name, config, num, master_secret, master_salt, group_id, "
                 "key_exp, key_established_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?)");
    st.text(1, config.name).blob(2, blob).blob(3, key.master_secret).blob(4, key.master_salt)
        .blob(5, key.group_id).i64(6, key.exp).i64(7, key.established_at);
    ACEKDC_TRY(step_done(st));
  }
  {
    SQL_TRY_STMT(st, "INSERT INTO used_group_id (group_name, group_id, num) VALUES (?, ?, 0)");
    st.text(1, config.name).blob(2, key.group_id);
    ACEKDC_TRY(step_done(st));
  }
  db.groups.erase(config.name);
  return txn.commit();
}

Expected<void, StoreError> SqliteStore::update_group_config(const GroupConfig& config) {
  if (config.name.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  const Bytes blob = encode_group_config(config);
  SQL_TRY_STMT(st, "UPDATE kdc_group SET config = ? WHERE name = ?");
  st.blob(1, blob).text(2, config.name);
  ACEKDC_TRY(step_done(st));
  if (db.changes() == 0) return unexpected(StoreError::kNotFound);
  db.groups.erase(config.name);
  return txn.commit();
}

Expected<GroupState, StoreError> SqliteStore::load_group(std::string_view name) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin(false));
  if (db.cache_groups) {
    ACEKDC_TRY(check_data_version(db));
    auto it = db.groups.find(name);
    if (it != db.groups.end()) {
      GroupState copy = *it->second;
      ACEKDC_TRY(txn.commit());
      return copy;
    }
  }
  auto g = read_group(db, name);
  if (!g) return g;
  ACEKDC_TRY(txn.commit());
  if (db.cache_groups) db.groups.insert_or_assign(std::string(name), std::make_shared<GroupState>(*g));
  return g;
}

Expected<std::shared_ptr<const GroupState>, StoreError> SqliteStore::group_snapshot(
    std::string_view name) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  if (db.cache_groups && db.version_fresh && db.batch_open && !db.batch_lost &&
      !sqlite3_get_autocommit(db.h)) {
    // The open batch holds the write lock and checked data_version: the cached copy
    // is current without a read transaction of its own.
    auto it = db.groups.find(name);
    if (it != db.groups.end()) return std::shared_ptr<const GroupState>(it->second);
  }
  Txn txn(db);
  ACEKDC_TRY(txn.begin(false));
  if (db.cache_groups) {
    ACEKDC_TRY(check_data_version(db));
    auto it = db.groups.find(name);
    if (it != db.groups.end()) {
      std::shared_ptr<const GroupState> snap = it->second;
      ACEKDC_TRY(txn.commit());
      return snap;
    }
  }
  auto g = read_group(db, name);
  if (!g) return unexpected(g.error());
  ACEKDC_TRY(txn.commit());
  auto snap = std::make_shared<GroupState>(std::move(*g));
  if (db.cache_groups) db.groups.insert_or_assign(std::string(name), snap);
  return std::shared_ptr<const GroupState>(std::move(snap));
}

Expected<std::vector<std::string>, StoreError> SqliteStore::list_groups() {
  std::lock_guard lock(mu_);
  return read_group_names(*db_);
}

// ---- members ----

Expected<void, StoreError> SqliteStore::add_member(std::string_view group, const Member& m) {
  if (m.node_name.empty() || m.sender_id.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  auto cached_r = cached_group(db, group);
  if (!cached_r) return unexpected(cached_r.error());
  if (const GroupState* cached = *cached_r) {
    // The cached copy equals the database in this transaction: its checks are
    // those below (GroupState::add_member is their model).
    const GroupState& g = *cached;
    if (g.members.count(m.node_name)) return unexpected(StoreError::kNameTaken);
    if (!g.sender_id_available(m.sender_id)) return unexpected(StoreError::kConflict);
    if (g.members.size() >= g.config.max_members) return unexpected(StoreError::kFull);
    if (g.departed.count(m.sender_id) || g.retired.count(m.sender_id))
      ACEKDC_TRY(forget_sender_id(db, group, m.sender_id));
    ACEKDC_TRY(insert_member_row(db, group, m));
    return commit_group_write(db, txn, group, [&](GroupState& cg) { return cg.add_member(m).has_value(); });
  }
  auto row = read_group_row(db, group);
  if (!row) return unexpected(row.error());
  {
    SQL_TRY_STMT(st, "SELECT 1 FROM member WHERE group_name = ? AND node_name = ?");
    st.text(1, group).text(2, m.node_name);
    const int rc = st.step();
    if (rc == SQLITE_ROW) return unexpected(StoreError::kNameTaken);
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  auto available = sender_id_available(db, group, m.sender_id, row->num);
  if (!available) return unexpected(available.error());
  if (!*available) return unexpected(StoreError::kConflict);
  if (row->num_members >= static_cast<int64_t>(row->config.max_members)) {
    return unexpected(StoreError::kFull);
  }
  ACEKDC_TRY(forget_sender_id(db, group, m.sender_id));
  ACEKDC_TRY(insert_member_row(db, group, m));
  return commit_group_write(db, txn, group, [&](GroupState& g) { return g.add_member(m).has_value(); });
}

Expected<Member, StoreError> SqliteStore::remove_member(std::string_view group,
                                                        std::string_view node_name, int64_t now) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  auto row = read_group_row(db, group);
  if (!row) return unexpected(row.error());
  auto m = read_member(db, group, node_name);
  if (!m) return m;
  {
    SQL_TRY_STMT(st, "DELETE FROM member WHERE group_name = ? AND node_name = ?");
    st.text(1, group).text(2, node_name);
    ACEKDC_TRY(step_done(st));
  }
  ACEKDC_TRY(retire_in_db(db, group, *row, *m, now));
  {
    SQL_TRY_STMT(st,
                 "UPDATE kdc_group SET num_members = num_members - 1, "
                 "leaves_since_rekey = leaves_since_rekey + 1 WHERE name = ?");
    st.text(1, group);
    ACEKDC_TRY(step_done(st));
  }
  ACEKDC_TRY(commit_group_write(db, txn, group, [&](GroupState& g) {
    auto r = g.remove_member(node_name, now);
    return r && *r == *m;
  }));
  return m;
}

Expected<void, StoreError> SqliteStore::update_member_key(std::string_view group,
                                                          std::string_view node_name,
                                                          ByteView public_key) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  SQL_TRY_STMT(st, "UPDATE member SET public_key = ? WHERE group_name = ? AND node_name = ?");
  st.blob(1, public_key).text(2, group).text(3, node_name);
  ACEKDC_TRY(step_done(st));
  if (db.changes() == 0) return unexpected(StoreError::kNotFound);
  return commit_group_write(db, txn, group, [&](GroupState& g) {
    return g.update_member_key(node_name, Bytes(public_key.begin(), public_key.end())).has_value();
  });
}

Expected<void, StoreError> SqliteStore::update_member_sender_id(std::string_view group,
                                                                std::string_view node_name,
                                                                ByteView sender_id, int64_t now) {
  if (sender_id.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  auto row = read_group_row(db, group);
  if (!row) return unexpected(row.error());
  auto m = read_member(db, group, node_name);
  if (!m) return unexpected(m.error());
  auto available = sender_id_available(db, group, sender_id, row->num);
  if (!available) return unexpected(available.error());
  if (!*available) return unexpected(StoreError::kConflict);
  ACEKDC_TRY(retire_in_db(db, group, *row, *m, now));
  ACEKDC_TRY(forget_sender_id(db, group, sender_id));
  SQL_TRY_STMT(st, "UPDATE member SET sender_id = ? WHERE group_name = ? AND node_name = ?");
  st.blob(1, sender_id).text(2, group).text(3, node_name);
  ACEKDC_TRY(step_done(st));
  return commit_group_write(db, txn, group, [&](GroupState& g) {
    return g.update_member_sender_id(node_name, Bytes(sender_id.begin(), sender_id.end()), now).has_value();
  });
}

Expected<size_t, StoreError> SqliteStore::purge_departed(std::string_view group, int64_t now) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  auto row = read_group_row(db, group);
  if (!row) return unexpected(row.error());
  const int64_t retention = row->config.departed_key_retention_s;
  const int64_t keep = row->config.sender_id_reuse_delay_s;
  size_t n = 0;
  {
    SQL_TRY_STMT(st, "DELETE FROM departed_key WHERE group_name = ? AND departed_at + ? <= ?");
    st.text(1, group).i64(2, retention).i64(3, now);
    ACEKDC_TRY(step_done(st));
    n += static_cast<size_t>(db.changes());
  }
  {
    SQL_TRY_STMT(st,
                 "DELETE FROM retired_sender_id WHERE group_name = ?1 AND retired_num < ?2 AND "
                 "retired_at + ?3 <= ?4 AND sender_id NOT IN "
                 "(SELECT sender_id FROM departed_key WHERE group_name = ?1)");
    st.text(1, group).i64(2, static_cast<int64_t>(row->num)).i64(3, keep).i64(4, now);
    ACEKDC_TRY(step_done(st));
    n += static_cast<size_t>(db.changes());
  }
  ACEKDC_TRY(commit_group_write(db, txn, group, [&](GroupState& g) { return g.purge_departed(now) == n; }));
  return n;
}

// ---- keying material ----

Expected<void, StoreError> SqliteStore::put_key_material(std::string_view group,
                                                         const GroupKeyMaterial& key) {
  if (key.group_id.empty() || key.num > kMaxInt64) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  auto cached_r = cached_group(db, group);
  if (!cached_r) return unexpected(cached_r.error());
  const GroupState* cached = *cached_r;
  uint64_t current_num = 0;
  if (cached) {
    // The cached copy equals the database in this transaction (GroupState::put_key_material
    // is the model of these checks).
    current_num = cached->key.num;
    if (key.num != current_num + 1) return unexpected(StoreError::kStale);
    if (cached->used_group_ids.count(key.group_id)) return unexpected(StoreError::kConflict);
  } else {
    auto row = read_group_row(db, group);
    if (!row) return unexpected(row.error());
    current_num = row->num;
    if (key.num != current_num + 1) return unexpected(StoreError::kStale);
    SQL_TRY_STMT(st, "SELECT 1 FROM used_group_id WHERE group_name = ? AND group_id = ?");
    st.text(1, group).blob(2, key.group_id);
    const int rc = st.step();
    if (rc == SQLITE_ROW) return unexpected(StoreError::kConflict);
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  {
    SQL_TRY_STMT(st, "INSERT INTO used_group_id (group_name, group_id, num) VALUES (?, ?, ?)");
    st.text(1, group).blob(2, key.group_id).i64(3, static_cast<int64_t>(key.num));
    ACEKDC_TRY(step_done(st));
  }
  {
    SQL_TRY_STMT(st,
                 "UPDATE kdc_group SET num = ?, master_secret = ?, master_salt = ?, group_id = ?, "
                 "key_exp = ?, key_established_at = ?, joins_since_rekey = 0, "
                 "leaves_since_rekey = 0 WHERE name = ? AND num = ?");
    st.i64(1, static_cast<int64_t>(key.num)).blob(2, key.master_secret).blob(3, key.master_salt)
        .blob(4, key.group_id).i64(5, key.exp).i64(6, key.established_at).text(7, group)
        .i64(8, static_cast<int64_t>(current_num));
    ACEKDC_TRY(step_done(st));
    if (db.changes() != 1) return unexpected(StoreError::kStale);
  }
  return commit_group_write(db, txn, group, [&](GroupState& g) { return g.put_key_material(key).has_value(); });
}

// ---- tokens ----

Expected<void, StoreError> SqliteStore::put_token(const TokenRecord& t) {
  if (t.token_id.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  SQL_TRY_STMT(st,
               "INSERT OR REPLACE INTO token (token_id, client_id, scope, exp) VALUES (?, ?, ?, ?)");
  st.blob(1, t.token_id).text(2, t.client_id).blob(3, t.scope).i64(4, t.exp);
  ACEKDC_TRY(step_done(st));
  return txn.commit();
}

Expected<TokenRecord, StoreError> SqliteStore::get_token(ByteView token_id) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  SQL_TRY_STMT(st, "SELECT token_id, client_id, scope, exp FROM token WHERE token_id = ?");
  st.blob(1, token_id);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  return read_token_row(st);
}

Expected<std::vector<TokenRecord>, StoreError> SqliteStore::tokens_for_client(
    std::string_view client_id) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  SQL_TRY_STMT(st,
               "SELECT token_id, client_id, scope, exp FROM token WHERE client_id = ? "
               "ORDER BY token_id");
  st.text(1, client_id);
  std::vector<TokenRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(read_token_row(st));
  if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  return out;
}

Expected<void, StoreError> SqliteStore::delete_token(ByteView token_id) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  SQL_TRY_STMT(st, "DELETE FROM token WHERE token_id = ?");
  st.blob(1, token_id);
  ACEKDC_TRY(step_done(st));
  if (db.changes() == 0) return unexpected(StoreError::kNotFound);
  return txn.commit();
}

Expected<size_t, StoreError> SqliteStore::purge_expired_tokens(int64_t now) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  SQL_TRY_STMT(st, "DELETE FROM token WHERE exp > 0 AND exp <= ?");
  st.i64(1, now);
  ACEKDC_TRY(step_done(st));
  const size_t n = static_cast<size_t>(db.changes());
  ACEKDC_TRY(txn.commit());
  return n;
}

// ---- OSCORE contexts ----

Expected<void, StoreError> SqliteStore::put_context(const OscoreContextRecord& c) {
  if ((c.sender_id.empty() && c.key.recipient_id.empty()) || c.seq_reserved > kMaxInt64) {
    return unexpected(StoreError::kInvalid);
  }
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  uint64_t seq = c.seq_reserved;
  {
    SQL_TRY_STMT(st,
                 "SELECT sender_id, master_secret, master_salt, seq_reserved FROM oscore_context "
                 "WHERE id_context = ? AND recipient_id = ?");
    st.blob(1, c.key.id_context).blob(2, c.key.recipient_id);
    const int rc = st.step();
    if (rc == SQLITE_ROW) {
      if (equal(st.col_view(0), c.sender_id) && equal(st.col_view(2), c.master_salt) &&
          constant_time_equal(st.col_view(1), c.master_secret)) {
        seq = std::max(seq, static_cast<uint64_t>(st.col_i64(3)));
      }
    } else if (rc != SQLITE_DONE) {
      return unexpected(map_rc(rc));
    }
  }
  SQL_TRY_STMT(st, "INSERT OR REPLACE INTO oscore_context (" CONTEXT_COLUMNS
                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.blob(1, c.key.id_context).blob(2, c.key.recipient_id).blob(3, c.sender_id)
      .blob(4, c.master_secret).blob(5, c.master_salt).i64(6, c.aead_alg).i64(7, c.hkdf_alg)
      .blob(8, c.token_id).i64(9, static_cast<int64_t>(seq));
  ACEKDC_TRY(step_done(st));
  return txn.commit();
}

Expected<OscoreContextRecord, StoreError> SqliteStore::get_context(const ContextKey& key) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  SQL_TRY_STMT(st, "SELECT " CONTEXT_COLUMNS
                   " FROM oscore_context WHERE id_context = ? AND recipient_id = ?");
  st.blob(1, key.id_context).blob(2, key.recipient_id);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
  if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
  return read_context_row(st);
}

Expected<void, StoreError> SqliteStore::delete_context(const ContextKey& key) {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  SQL_TRY_STMT(st, "DELETE FROM oscore_context WHERE id_context = ? AND recipient_id = ?");
  st.blob(1, key.id_context).blob(2, key.recipient_id);
  ACEKDC_TRY(step_done(st));
  if (db.changes() == 0) return unexpected(StoreError::kNotFound);
  return txn.commit();
}

Expected<void, StoreError> SqliteStore::reserve_sequence(const ContextKey& key, uint64_t upto) {
  if (upto > kMaxInt64) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin());
  {
    SQL_TRY_STMT(st,
                 "SELECT seq_reserved FROM oscore_context WHERE id_context = ? AND recipient_id = ?");
    st.blob(1, key.id_context).blob(2, key.recipient_id);
    const int rc = st.step();
    if (rc == SQLITE_DONE) return unexpected(StoreError::kNotFound);
    if (rc != SQLITE_ROW) return unexpected(map_rc(rc));
    if (upto < static_cast<uint64_t>(st.col_i64(0))) return unexpected(StoreError::kStale);
  }
  SQL_TRY_STMT(st,
               "UPDATE oscore_context SET seq_reserved = ? WHERE id_context = ? AND "
               "recipient_id = ?");
  st.i64(1, static_cast<int64_t>(upto)).blob(2, key.id_context).blob(3, key.recipient_id);
  ACEKDC_TRY(step_done(st));
  return txn.commit();
}

// ---- group commit ----

Expected<void, StoreError> SqliteStore::begin_batch() {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  if (db.batch_wanted) return unexpected(StoreError::kConflict);
  if (db.deferred_sync && db.durable) {
    // Outside any transaction here (each operation is one); the window's BEGIN follows.
    ACEKDC_TRY(exec_script(db.h, "PRAGMA synchronous=NORMAL;"));
    db.batch_normal = true;
  }
  db.batch_wanted = true;
  db.batch_open = false;
  db.batch_lost = false;
  db.batch_ops = 0;
  ++db.batch_round;
  return {};
}

Expected<void, StoreError> SqliteStore::commit_batch() {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  if (!db.batch_wanted) return {};
  auto r = commit_window(db);
  if (db.batch_normal) {
    // Back to FULL for the operations outside windows; if that fails they would
    // not be durable when they return: report the commit as failed (fail-stop).
    db.batch_normal = false;
    if (auto f = exec_script(db.h, "PRAGMA synchronous=FULL;"); !f && r) return f;
  }
  return r;
}

Expected<void, StoreError> SqliteStore::commit_window(Db& db) {
  const bool was_open = db.batch_open;
  const bool lost = db.batch_lost || (was_open && sqlite3_get_autocommit(db.h));
  const uint64_t ops = db.batch_ops;
  db.batch_wanted = db.batch_open = db.batch_lost = false;
  db.version_fresh = false;
  db.batch_ops = 0;
  if (!was_open) return {};
  if (lost) {
    if (!sqlite3_get_autocommit(db.h)) (void)db.run("ROLLBACK");
    db.groups.clear();
    return unexpected(StoreError::kIo);
  }
  auto r = db.run("COMMIT");
  if (!r) {
    if (!sqlite3_get_autocommit(db.h)) (void)db.run("ROLLBACK");
    db.groups.clear();
    return r;
  }
  if (ops > 0) {
    ++db.batches_committed;
    db.batched_ops_total += ops;
  }
  return {};
}

void SqliteStore::set_deferred_sync(bool on) {
  std::lock_guard lock(mu_);
  db_->deferred_sync = on;
}

Expected<void, StoreError> SqliteStore::sync_committed() {
  Db& db = *db_;  // db_ is set for the store's life; only wal_* is used here
  if (db.wal_path.empty()) return {};
  std::lock_guard lock(db.wal_mu);
  // The descriptor is checked against the path after the sync: if SQLite replaced
  // the WAL file meanwhile (it deletes it only when the last connection closes), the
  // sync is repeated on the current file.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (db.wal_fd < 0) {
      db.wal_fd = ::open(db.wal_path.c_str(), O_RDONLY | O_CLOEXEC);
      // No WAL file: SQLite checkpointed it (with syncs) and removed it; nothing pending.
      if (db.wal_fd < 0) return errno == ENOENT ? Expected<void, StoreError>{} : unexpected(StoreError::kIo);
    }
    if (::fdatasync(db.wal_fd) != 0) return unexpected(StoreError::kIo);
    struct stat a {}, b {};
    if (::fstat(db.wal_fd, &a) == 0 && ::stat(db.wal_path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      return {};
    ::close(db.wal_fd);
    db.wal_fd = -1;
  }
  return unexpected(StoreError::kIo);
}

bool SqliteStore::in_batch() const {
  std::lock_guard lock(mu_);
  return db_->batch_wanted;
}

uint64_t SqliteStore::batch_round() const {
  std::lock_guard lock(mu_);
  return db_->batch_wanted ? db_->batch_round : 0;
}

uint64_t SqliteStore::batches_committed() const {
  std::lock_guard lock(mu_);
  return db_->batches_committed;
}

uint64_t SqliteStore::batched_ops() const {
  std::lock_guard lock(mu_);
  return db_->batched_ops_total;
}

// ---- startup ----

Expected<KdcState, StoreError> SqliteStore::load_all() {
  std::lock_guard lock(mu_);
  Db& db = *db_;
  Txn txn(db);
  ACEKDC_TRY(txn.begin(false));
  KdcState s;
  auto names = read_group_names(db);
  if (!names) return unexpected(names.error());
  for (const auto& name : *names) {
    auto g = read_group(db, name);
    if (!g) return unexpected(g.error());
    s.groups.push_back(std::move(*g));
  }
  {
    SQL_TRY_STMT(st, "SELECT token_id, client_id, scope, exp FROM token ORDER BY token_id");
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) s.tokens.push_back(read_token_row(st));
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  {
    SQL_TRY_STMT(st, "SELECT " CONTEXT_COLUMNS
                     " FROM oscore_context ORDER BY id_context, recipient_id");
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) s.contexts.push_back(read_context_row(st));
    if (rc != SQLITE_DONE) return unexpected(map_rc(rc));
  }
  ACEKDC_TRY(txn.commit());
  return s;
}

}  // namespace acekdc::kdc
