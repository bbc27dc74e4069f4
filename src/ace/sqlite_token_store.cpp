#include "ace/sqlite_token_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

#include "cbor/cbor.h"
#include "cbor/value.h"

namespace acekdc::ace {

namespace {

cbor::Value bytes_or_null(const std::optional<Bytes>& b) { return b ? cbor::Value::bytes(*b) : cbor::Value::null(); }

// Readers over a decoded array: each returns false on a type mismatch.
bool get_bytes(const cbor::Value& v, Bytes& out) {
  if (!v.as_bytes()) return false;
  out = *v.as_bytes();
  return true;
}
bool get_opt_bytes(const cbor::Value& v, std::optional<Bytes>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  if (!v.as_bytes()) return false;
  out = *v.as_bytes();
  return true;
}

}  // namespace

Bytes encode_context_key(const ContextKey& k) {
  return cbor::encode(cbor::Value::array({cbor::Value::bytes(k.recipient_id), bytes_or_null(k.id_context)}));
}

// Record: [rid, idctx/null, sender_id, material_id, rsnonce,
//          [[cti, iss/null, scope, exp, raw, introspected]...],
//          null / [aead, hkdf, ms, salt, sender_id, recipient_id, idctx/null]]
Bytes encode_record(const ClientRecord& r) {
  cbor::Array tokens;
  for (const auto& t : r.tokens) {
    tokens.push_back(cbor::Value::array({cbor::Value::bytes(t.cti),
                                         t.issuer ? cbor::Value::text(*t.issuer) : cbor::Value::null(),
                                         cbor::Value::bytes(encode_scope(t.scope)), cbor::Value::integer(t.exp),
                                         cbor::Value::bytes(t.raw), cbor::Value::boolean(t.introspected)}));
  }
  cbor::Value ctx = cbor::Value::null();
  if (r.context) {
    const auto& c = *r.context;
    ctx = cbor::Value::array({cbor::Value::integer(c.aead_alg), cbor::Value::integer(c.hkdf_alg),
                              cbor::Value::bytes(c.master_secret), cbor::Value::bytes(c.master_salt),
                              cbor::Value::bytes(c.sender_id), cbor::Value::bytes(c.recipient_id),
                              bytes_or_null(c.id_context)});
  }
  return cbor::encode(cbor::Value::array({cbor::Value::bytes(r.key.recipient_id), bytes_or_null(r.key.id_context),
                                          cbor::Value::bytes(r.sender_id), cbor::Value::bytes(r.material_id),
                                          cbor::Value::bytes(r.rsnonce), cbor::Value::array(std::move(tokens)),
                                          std::move(ctx)}));
}

std::optional<ClientRecord> decode_record(ByteView in) {
  cbor::Limits l;
  l.max_depth = 8;
  l.allow_indefinite = false;
  l.max_length = 1 << 20;
  auto v = cbor::decode(in, l);
  if (!v || !v->as_array() || v->as_array()->size() != 7) return std::nullopt;
  const cbor::Array& a = *v->as_array();
  ClientRecord r;
  if (!get_bytes(a[0], r.key.recipient_id) || !get_opt_bytes(a[1], r.key.id_context) ||
      !get_bytes(a[2], r.sender_id) || !get_bytes(a[3], r.material_id) || !get_bytes(a[4], r.rsnonce) ||
      !a[5].as_array())
    return std::nullopt;
  for (const auto& tv : *a[5].as_array()) {
    const cbor::Array* t = tv.as_array();
    if (!t || t->size() != 6) return std::nullopt;
    StoredToken st;
    Bytes scope;
    if (!get_bytes((*t)[0], st.cti) || !get_bytes((*t)[2], scope) || !(*t)[3].as_int() ||
        !get_bytes((*t)[4], st.raw) || !(*t)[5].as_bool())
      return std::nullopt;
    if ((*t)[1].as_text()) {
      st.issuer = *(*t)[1].as_text();
    } else if (!(*t)[1].is_null()) {
      return std::nullopt;
    }
    auto s = parse_scope(scope);
    if (!s) return std::nullopt;
    st.scope = std::move(*s);
    st.exp = *(*t)[3].as_int();
    st.introspected = *(*t)[5].as_bool();
    r.tokens.push_back(std::move(st));
  }
  if (!a[6].is_null()) {
    const cbor::Array* c = a[6].as_array();
    if (!c || c->size() != 7 || !(*c)[0].as_int() || !(*c)[1].as_int()) return std::nullopt;
    oscore::ContextParams p;
    auto aead = *(*c)[0].as_int();
    auto hkdf = *(*c)[1].as_int();
    if (aead < INT32_MIN || aead > INT32_MAX || hkdf < INT32_MIN || hkdf > INT32_MAX) return std::nullopt;
    p.aead_alg = static_cast<int>(aead);
    p.hkdf_alg = static_cast<int>(hkdf);
    if (!get_bytes((*c)[2], p.master_secret) || !get_bytes((*c)[3], p.master_salt) ||
        !get_bytes((*c)[4], p.sender_id) || !get_bytes((*c)[5], p.recipient_id) ||
        !get_opt_bytes((*c)[6], p.id_context))
      return std::nullopt;
    r.context = std::move(p);
  }
  return r;
}

struct SqliteTokenStore::Db {
  sqlite3* h = nullptr;
  sqlite3_stmt* put = nullptr;    // prepared once
  sqlite3_stmt* erase = nullptr;
  // sync_committed's own descriptor of the WAL file (guarded by wal_mu).
  std::string wal_path;
  std::mutex wal_mu;
  int wal_fd = -1;
  ~Db() {
    sqlite3_finalize(put);
    sqlite3_finalize(erase);
    if (h) sqlite3_close(h);
    if (wal_fd >= 0) ::close(wal_fd);
  }
  bool exec(const char* sql) { return sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
};

SqliteTokenStore::~SqliteTokenStore() {
  // An uncommitted window is not kept (closing the connection rolls it back).
  if (db_ && db_->h && batch_txn_) db_->exec("ROLLBACK");
}

Expected<std::unique_ptr<SqliteTokenStore>, StoreError> SqliteTokenStore::open(const std::string& path,
                                                                               size_t capacity) {
  auto s = std::unique_ptr<SqliteTokenStore>(new SqliteTokenStore());
  s->capacity_ = capacity;
  s->db_ = std::make_unique<Db>();
  if (path != ":memory:" && !path.empty()) s->db_->wal_path = path + "-wal";
  mode_t old = ::umask(077);  // the file holds master secrets
  int rc = sqlite3_open_v2(path.c_str(), &s->db_->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  ::umask(old);
  if (rc != SQLITE_OK) return unexpected(StoreError::kIo);
  ::chmod(path.c_str(), 0600);
  if (!s->db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;") ||
      !s->db_->exec("CREATE TABLE IF NOT EXISTS ace_token_records ("
                    " k BLOB PRIMARY KEY, record BLOB NOT NULL)"))
    return unexpected(StoreError::kIo);
  if (sqlite3_prepare_v2(s->db_->h, "INSERT OR REPLACE INTO ace_token_records (k, record) VALUES (?1, ?2)", -1,
                         &s->db_->put, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db_->h, "DELETE FROM ace_token_records WHERE k = ?1", -1, &s->db_->erase, nullptr) !=
          SQLITE_OK)
    return unexpected(StoreError::kIo);
  ACEKDC_TRY(s->load());
  return s;
}

Expected<void, StoreError> SqliteTokenStore::load() {
  MemoryTokenStore fresh(capacity_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_->h, "SELECT record FROM ace_token_records", -1, &st, nullptr) != SQLITE_OK)
    return unexpected(StoreError::kIo);
  bool ok = true;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    int n = sqlite3_column_bytes(st, 0);
    auto r = decode_record(ByteView(p, p ? static_cast<size_t>(n) : 0));
    if (!r || !fresh.put(*r)) {
      ok = false;
      break;
    }
  }
  sqlite3_finalize(st);
  if (!ok || (rc != SQLITE_DONE && rc != SQLITE_ROW)) return unexpected(StoreError::kIo);
  mem_ = std::move(fresh);
  return {};
}

Expected<void, StoreError> SqliteTokenStore::write(sqlite3_stmt* st) {
  if (batch_open_ && !batch_txn_) {
    if (!db_->exec("BEGIN IMMEDIATE")) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      batch_failed_ = true;
      return unexpected(StoreError::kIo);
    }
    batch_txn_ = true;
  }
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) {
    if (batch_open_) batch_failed_ = true;
    return unexpected(StoreError::kIo);
  }
  return {};
}

void SqliteTokenStore::begin_batch() {
  if (batch_open_) return;
  batch_open_ = true;
  batch_txn_ = false;
  batch_failed_ = false;
  if (deferred_sync_) {
    batch_normal_ = true;
    if (!db_->exec("PRAGMA synchronous=NORMAL;")) batch_failed_ = true;  // commit_batch reports it
  }
}

Expected<void, StoreError> SqliteTokenStore::sync_committed() {
  if (db_->wal_path.empty()) return {};
  std::lock_guard lock(db_->wal_mu);
  // As kdc::SqliteStore::sync_committed: the descriptor is checked against the path
  // after the sync and the sync repeated on the current file if SQLite replaced it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (db_->wal_fd < 0) {
      db_->wal_fd = ::open(db_->wal_path.c_str(), O_RDONLY | O_CLOEXEC);
      // No WAL file: SQLite checkpointed it (with syncs) and removed it; nothing pending.
      if (db_->wal_fd < 0) return errno == ENOENT ? Expected<void, StoreError>{} : unexpected(StoreError::kIo);
    }
    if (::fdatasync(db_->wal_fd) != 0) return unexpected(StoreError::kIo);
    struct stat a {}, b {};
    if (::fstat(db_->wal_fd, &a) == 0 && ::stat(db_->wal_path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      return {};
    ::close(db_->wal_fd);
    db_->wal_fd = -1;
  }
  return unexpected(StoreError::kIo);
}

Expected<void, StoreError> SqliteTokenStore::commit_batch() {
  if (!batch_open_) return {};
  auto r = commit_window();
  if (batch_normal_) {
    // Back to FULL for put / erase outside windows; if that fails they would not be
    // durable when they return: report the commit as failed (fail-stop).
    batch_normal_ = false;
    if (!db_->exec("PRAGMA synchronous=FULL;") && r) return unexpected(StoreError::kIo);
  }
  return r;
}

Expected<void, StoreError> SqliteTokenStore::commit_window() {
  const bool txn = batch_txn_, failed = batch_failed_;
  batch_open_ = batch_txn_ = batch_failed_ = false;
  if (!txn) {
    if (!failed) return {};
    (void)load();  // a BEGIN failed: nothing was written, but the view may be ahead
    return unexpected(StoreError::kIo);
  }
  if (!failed && db_->exec("COMMIT")) {
    ++batches_committed_;
    return {};
  }
  // Nothing of the window is kept: roll back (if SQLite has not already) and show
  // only what is in the file.
  if (!sqlite3_get_autocommit(db_->h)) db_->exec("ROLLBACK");
  (void)load();
  return unexpected(StoreError::kIo);
}

Expected<void, StoreError> SqliteTokenStore::put(const ClientRecord& record) {
  if (!mem_.has_room(record.key)) return unexpected(StoreError::kFull);
  Bytes k = encode_context_key(record.key);
  Bytes v = encode_record(record);
  sqlite3_bind_blob(db_->put, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
  sqlite3_bind_blob(db_->put, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  auto w = write(db_->put);
  secure_zero(v);
  if (!w) return w;
  return mem_.put(record);
}

Expected<void, StoreError> SqliteTokenStore::replace(const ContextKey& old, ClientRecord&& record) {
  if (old == record.key || !mem_.contains(old) || mem_.contains(record.key)) return TokenStore::replace(old, std::move(record));
  // The new record in and the old one out in one transaction (one sync), or, in a
  // window, both in the window's.
  Bytes k = encode_context_key(record.key);
  Bytes v = encode_record(record);
  Bytes ko = encode_context_key(old);
  const bool own_txn = !batch_open_;
  if (own_txn && !db_->exec("BEGIN IMMEDIATE")) {
    secure_zero(v);
    return unexpected(StoreError::kIo);
  }
  sqlite3_bind_blob(db_->put, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
  sqlite3_bind_blob(db_->put, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  auto w = write(db_->put);
  secure_zero(v);
  if (w) {
    sqlite3_bind_blob(db_->erase, 1, ko.data(), static_cast<int>(ko.size()), SQLITE_STATIC);
    w = write(db_->erase);
  }
  if (own_txn) {
    if (w && !db_->exec("COMMIT")) w = unexpected(StoreError::kIo);
    if (!w && !sqlite3_get_autocommit(db_->h)) db_->exec("ROLLBACK");
  }
  if (!w) return w;
  return mem_.replace(old, std::move(record));
}

std::optional<ClientRecord> SqliteTokenStore::get(const ContextKey& key) const { return mem_.get(key); }

Expected<void, StoreError> SqliteTokenStore::erase(const ContextKey& key) {
  Bytes k = encode_context_key(key);
  sqlite3_bind_blob(db_->erase, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
  ACEKDC_TRY(write(db_->erase));
  return mem_.erase(key);
}

std::vector<ContextKey> SqliteTokenStore::keys() const { return mem_.keys(); }

std::optional<ContextKey> SqliteTokenStore::find_material(ByteView material_id) const {
  return mem_.find_material(material_id);
}

}  // namespace acekdc::ace
