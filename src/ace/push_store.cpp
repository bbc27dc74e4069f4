#include "ace/push_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

namespace acekdc::ace {

// ---- MemoryPushStore ----

Expected<void, StoreError> MemoryPushStore::put_observation(const PushObservation& o) {
  ++writes_;
  observations_[o.id] = o;
  return {};
}

Expected<void, StoreError> MemoryPushStore::erase_observation(uint64_t id) {
  ++writes_;
  observations_.erase(id);
  return {};
}

Expected<void, StoreError> MemoryPushStore::put_peer(const ContextKey& key, const std::string& peer) {
  ++writes_;
  for (auto& [k, p] : peers_) {
    if (k == key) {
      p = peer;
      return {};
    }
  }
  peers_.emplace_back(key, peer);
  return {};
}

Expected<void, StoreError> MemoryPushStore::erase_context(const ContextKey& key) {
  ++writes_;
  std::erase_if(peers_, [&](const auto& p) { return p.first == key; });
  std::erase_if(observations_, [&](const auto& o) { return o.second.via == key; });
  return {};
}

Expected<void, StoreError> MemoryPushStore::put_observe_mark(uint32_t mark) {
  ++writes_;
  mark_ = mark;
  return {};
}

Expected<PushState, StoreError> MemoryPushStore::load() const {
  PushState s;
  for (const auto& [id, o] : observations_) s.observations.push_back(o);
  s.peers = peers_;
  s.observe_mark = mark_;
  return s;
}

// ---- SqlitePushStore ----

namespace {

// The statements, prepared once.
enum Stmt {
  kPutObservation,
  kEraseObservation,
  kPutPeer,
  kErasePeer,
  kEraseContextObservations,
  kPutMark,
  kNumStmts
};
constexpr const char* kSql[kNumStmts] = {
    "INSERT OR REPLACE INTO push_observation (id, recipient_id, id_context, peer, token, path, request_kid, "
    "request_piv) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "DELETE FROM push_observation WHERE id = ?1",
    "INSERT OR REPLACE INTO push_peer (recipient_id, id_context, peer) VALUES (?1, ?2, ?3)",
    "DELETE FROM push_peer WHERE recipient_id = ?1 AND id_context IS ?2",
    "DELETE FROM push_observation WHERE recipient_id = ?1 AND id_context IS ?2",
    "INSERT OR REPLACE INTO push_meta (k, v) VALUES ('observe_mark', ?1)",
};

void bind_bytes(sqlite3_stmt* st, int i, ByteView b) {
  // A zero-length blob, not NULL (NULL marks an absent ID Context).
  sqlite3_bind_blob(st, i, b.empty() ? "" : static_cast<const void*>(b.data()), static_cast<int>(b.size()),
                    SQLITE_TRANSIENT);
}
void bind_key(sqlite3_stmt* st, int first, const ContextKey& k) {
  bind_bytes(st, first, k.recipient_id);
  if (k.id_context) {
    bind_bytes(st, first + 1, *k.id_context);
  } else {
    sqlite3_bind_null(st, first + 1);
  }
}
Bytes column_bytes(sqlite3_stmt* st, int i) {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, i));
  int n = sqlite3_column_bytes(st, i);
  return p && n > 0 ? Bytes(p, p + n) : Bytes{};
}
std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = sqlite3_column_text(st, i);
  return p ? std::string(reinterpret_cast<const char*>(p)) : std::string{};
}
ContextKey column_key(sqlite3_stmt* st, int first) {
  ContextKey k;
  k.recipient_id = column_bytes(st, first);
  if (sqlite3_column_type(st, first + 1) != SQLITE_NULL) k.id_context = column_bytes(st, first + 1);
  return k;
}

}  // namespace

struct SqlitePushStore::Db {
  sqlite3* h = nullptr;
  sqlite3_stmt* st[kNumStmts] = {};
  ~Db() {
    for (auto* s : st)
      if (s) sqlite3_finalize(s);
    if (h) sqlite3_close(h);
  }
  bool exec(const char* sql) { return sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
  // run steps a prepared statement whose parameters are bound, then resets it.
  Expected<void, StoreError> run(Stmt s) {
    int rc = sqlite3_step(st[s]);
    sqlite3_reset(st[s]);
    sqlite3_clear_bindings(st[s]);
    if (rc != SQLITE_DONE) return unexpected(StoreError::kIo);
    return {};
  }
};

SqlitePushStore::~SqlitePushStore() = default;

Expected<std::unique_ptr<SqlitePushStore>, StoreError> SqlitePushStore::open(const std::string& path) {
  auto s = std::unique_ptr<SqlitePushStore>(new SqlitePushStore());
  s->db_ = std::make_unique<Db>();
  mode_t old = ::umask(077);
  int rc = sqlite3_open_v2(path.c_str(), &s->db_->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  ::umask(old);
  if (rc != SQLITE_OK) return unexpected(StoreError::kIo);
  sqlite3_busy_timeout(s->db_->h, 5000);
  if (!s->db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") ||
      !s->db_->exec("CREATE TABLE IF NOT EXISTS push_observation (id INTEGER PRIMARY KEY, recipient_id BLOB NOT NULL,"
                    " id_context BLOB, peer TEXT NOT NULL, token BLOB NOT NULL, path TEXT NOT NULL,"
                    " request_kid BLOB NOT NULL, request_piv BLOB NOT NULL);"
                    "CREATE INDEX IF NOT EXISTS push_observation_ctx ON push_observation (recipient_id, id_context);"
                    "CREATE TABLE IF NOT EXISTS push_peer (recipient_id BLOB NOT NULL, id_context BLOB,"
                    " peer TEXT NOT NULL);"
                    "CREATE UNIQUE INDEX IF NOT EXISTS push_peer_ctx ON push_peer (recipient_id, id_context);"
                    "CREATE TABLE IF NOT EXISTS push_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"))
    return unexpected(StoreError::kIo);
  for (int i = 0; i < kNumStmts; ++i)
    if (sqlite3_prepare_v2(s->db_->h, kSql[i], -1, &s->db_->st[i], nullptr) != SQLITE_OK)
      return unexpected(StoreError::kIo);
  return s;
}

Expected<void, StoreError> SqlitePushStore::put_observation(const PushObservation& o) {
  sqlite3_stmt* st = db_->st[kPutObservation];
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(o.id));
  bind_key(st, 2, o.via);
  sqlite3_bind_text(st, 4, o.peer.c_str(), static_cast<int>(o.peer.size()), SQLITE_TRANSIENT);
  bind_bytes(st, 5, o.token);
  sqlite3_bind_text(st, 6, o.path.c_str(), static_cast<int>(o.path.size()), SQLITE_TRANSIENT);
  bind_bytes(st, 7, o.request_kid);
  bind_bytes(st, 8, o.request_piv);
  return db_->run(kPutObservation);
}

Expected<void, StoreError> SqlitePushStore::erase_observation(uint64_t id) {
  sqlite3_bind_int64(db_->st[kEraseObservation], 1, static_cast<sqlite3_int64>(id));
  return db_->run(kEraseObservation);
}

Expected<void, StoreError> SqlitePushStore::put_peer(const ContextKey& key, const std::string& peer) {
  // A NULL id_context is not unique for the index (NULLs differ): delete, then insert.
  if (!key.id_context) {
    bind_key(db_->st[kErasePeer], 1, key);
    if (auto r = db_->run(kErasePeer); !r) return r;
  }
  sqlite3_stmt* st = db_->st[kPutPeer];
  bind_key(st, 1, key);
  sqlite3_bind_text(st, 3, peer.c_str(), static_cast<int>(peer.size()), SQLITE_TRANSIENT);
  return db_->run(kPutPeer);
}

Expected<void, StoreError> SqlitePushStore::erase_context(const ContextKey& key) {
  bind_key(db_->st[kErasePeer], 1, key);
  if (auto r = db_->run(kErasePeer); !r) return r;
  bind_key(db_->st[kEraseContextObservations], 1, key);
  return db_->run(kEraseContextObservations);
}

Expected<void, StoreError> SqlitePushStore::put_observe_mark(uint32_t mark) {
  sqlite3_bind_int64(db_->st[kPutMark], 1, mark);
  return db_->run(kPutMark);
}

Expected<PushState, StoreError> SqlitePushStore::load() const {
  PushState s;
  auto query = [&](const char* sql, auto&& row) -> bool {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_->h, sql, -1, &st, nullptr) != SQLITE_OK) return false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  };
  bool ok = query("SELECT id, recipient_id, id_context, peer, token, path, request_kid, request_piv"
                  " FROM push_observation ORDER BY id",
                  [&](sqlite3_stmt* st) {
                    PushObservation o;
                    o.id = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
                    o.via = column_key(st, 1);
                    o.peer = column_text(st, 3);
                    o.token = column_bytes(st, 4);
                    o.path = column_text(st, 5);
                    o.request_kid = column_bytes(st, 6);
                    o.request_piv = column_bytes(st, 7);
                    s.observations.push_back(std::move(o));
                  }) &&
            query("SELECT recipient_id, id_context, peer FROM push_peer",
                  [&](sqlite3_stmt* st) { s.peers.emplace_back(column_key(st, 0), column_text(st, 2)); }) &&
            query("SELECT v FROM push_meta WHERE k = 'observe_mark'", [&](sqlite3_stmt* st) {
              int64_t v = sqlite3_column_int64(st, 0);
              s.observe_mark = v < 0 ? 0 : static_cast<uint32_t>(std::min<int64_t>(v, UINT32_MAX));
            });
  if (!ok) return unexpected(StoreError::kIo);
  return s;
}

}  // namespace acekdc::ace
