#include "client/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cbor/value.h"
#include "core/codepoints.h"
#include "core/hex.h"

namespace acekdc::client {

namespace fs = std::filesystem;

namespace {

Unexpected<Failure> state_error(std::string what) { return unexpected(Failure{Error::kState, 0, std::move(what)}); }

// read_pairs reads "key value" lines.
std::optional<std::vector<std::pair<std::string, std::string>>> read_pairs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  std::string k, v;
  while (in >> k >> v) out.emplace_back(k, v);
  return out;
}

}  // namespace

std::optional<SignAlgorithm> sign_algorithm_of(ByteView key_distribution) {
  auto v = cbor::decode(key_distribution);
  const cbor::Value* key = v && v->is_map() ? v->find(int64_t{cp::gc::kKey}) : nullptr;
  if (!key || !key->is_map()) return std::nullopt;
  const cbor::Value* alg = key->find(int64_t{cp::osc::kSignAlg});
  if (!alg || !alg->as_int()) return std::nullopt;
  SignAlgorithm s;
  s.alg = *alg->as_int();
  if (const cbor::Value* p = key->find(int64_t{cp::osc::kSignParams})) s.params = cbor::encode(*p);
  return s;
}

int sign_curve(int64_t sign_alg) {
  switch (sign_alg) {
    case cp::alg::kEdDSA: return cp::crv::kEd25519;
    case cp::alg::kES256: return cp::crv::kP256;
  }
  return 0;
}

StateLock& StateLock::operator=(StateLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

StateLock::~StateLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

Expected<void, Failure> write_private(const std::string& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return state_error("cannot write " + path);
    fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
    out << text;
    out.flush();
    if (!out) return state_error("cannot write " + path);
  }
  fs::rename(tmp, path, ec);
  if (ec) return state_error("cannot write " + path + ": " + ec.message());
  return {};
}

StateDir::StateDir(std::string dir) : dir_(dir.empty() ? default_dir() : std::move(dir)) {}

std::string StateDir::default_dir() {
  if (const char* s = std::getenv("ACEKDC_STATE"); s && *s) return s;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/acekdc";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/acekdc";
  return ".acekdc-state";
}

std::string StateDir::group_file(const std::string& group, const char* ext) const {
  return dir_ + "/groups/" + group + ext;
}

Expected<std::unique_ptr<oscore::FileSequenceStore>, Failure> StateDir::seq_store(const char* sub) const {
  std::string d = dir_ + "/" + sub;
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) return state_error("cannot create " + d + ": " + ec.message());
  return std::make_unique<oscore::FileSequenceStore>(d);
}

Expected<StateLock, Failure> StateDir::lock() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  std::string p = dir_ + "/lock";
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return state_error("cannot open " + p);
  if (::flock(fd, LOCK_EX) != 0) {
    ::close(fd);
    return state_error("cannot lock " + p);
  }
  return StateLock(fd);
}

// ---- ClaimingSequenceStore ----

Expected<uint64_t, oscore::Error> ClaimingSequenceStore::load(std::string_view key) {
  auto lock = StateDir(state_dir_).lock();
  if (!lock) return unexpected(oscore::Error::kStorageFailure);
  auto p = inner_->load(key);
  if (!p) return unexpected(p.error());
  const uint64_t end = *p + chunk_;
  if (auto r = inner_->reserve(key, end); !r) return unexpected(r.error());
  claimed_[std::string(key)] = end;
  return *p;
}

Expected<void, oscore::Error> ClaimingSequenceStore::reserve(std::string_view key, uint64_t upto) {
  auto it = claimed_.find(key);
  if (it == claimed_.end()) return unexpected(oscore::Error::kStorageFailure);  // load() first
  if (upto <= it->second) return {};  // inside our durable claim
  auto lock = StateDir(state_dir_).lock();
  if (!lock) return unexpected(oscore::Error::kStorageFailure);
  auto now = inner_->load(key);
  if (!now) return unexpected(now.error());
  if (*now != it->second) return unexpected(oscore::Error::kStorageFailure);  // another process claimed
  if (auto r = inner_->reserve(key, upto); !r) return unexpected(r.error());
  it->second = upto;
  return {};
}

Expected<void, Failure> StateDir::save_session(const std::string& group, const Session& s) const {
  std::ostringstream o;
  o << "sender_id " << to_hex(s.params.sender_id) << "\n";
  o << "recipient_id " << to_hex(s.params.recipient_id) << "\n";
  o << "master_secret " << to_hex(s.params.master_secret) << "\n";
  o << "master_salt " << to_hex(s.params.master_salt) << "\n";
  if (s.params.id_context) o << "id_context " << to_hex(*s.params.id_context) << "\n";
  o << "aead " << s.params.aead_alg << "\n";
  o << "hkdf " << s.params.hkdf_alg << "\n";
  o << "node " << s.node << "\n";
  if (!s.rsnonce.empty()) o << "rsnonce " << to_hex(s.rsnonce) << "\n";
  if (!s.control_path.empty()) o << "control_path " << s.control_path << "\n";
  return write_private(group_file(group, ".session"), o.str());
}

Expected<Session, Failure> StateDir::load_session(const std::string& group) const {
  auto pairs = read_pairs(group_file(group, ".session"));
  if (!pairs) return unexpected(Failure{Error::kNotJoined, 0, "no session for group " + group + " in " + dir_});
  Session s;
  bool ok = true;
  auto hex = [&](const std::string& x) {
    auto b = from_hex(x);
    if (!b) ok = false;
    return b ? *b : Bytes{};
  };
  for (const auto& [k, v] : *pairs) {
    if (k == "sender_id") s.params.sender_id = hex(v);
    else if (k == "recipient_id") s.params.recipient_id = hex(v);
    else if (k == "master_secret") s.params.master_secret = hex(v);
    else if (k == "master_salt") s.params.master_salt = hex(v);
    else if (k == "id_context") s.params.id_context = hex(v);
    else if (k == "aead") s.params.aead_alg = std::atoi(v.c_str());
    else if (k == "hkdf") s.params.hkdf_alg = std::atoi(v.c_str());
    else if (k == "node") s.node = v;
    else if (k == "rsnonce") s.rsnonce = hex(v);
    else if (k == "control_path") s.control_path = v;
  }
  if (!ok || s.params.master_secret.empty()) return state_error("corrupt session file " + group_file(group, ".session"));
  return s;
}

Expected<void, Failure> StateDir::save_private_key(const std::string& group, const cose::CoseKey& key) const {
  return write_private(group_file(group, ".key"), to_hex(key.encode(true)) + "\n");
}

Expected<cose::CoseKey, Failure> StateDir::load_private_key(const std::string& group) const {
  std::ifstream in(group_file(group, ".key"));
  std::string h;
  if (!in || !(in >> h)) return unexpected(Failure{Error::kNotJoined, 0, "no private key for group " + group});
  auto b = from_hex(h);
  if (!b) return state_error("corrupt key file");
  auto k = cose::CoseKey::decode(*b);
  if (!k) return state_error("corrupt key file");
  return std::move(*k);
}

Expected<void, Failure> StateDir::save_keys(const std::string& group, const StoredKeys& s) const {
  const GroupKeys& k = s.keys;
  std::ostringstream o;
  o << "num " << k.num << "\n";
  o << "group_id " << to_hex(k.group_id) << "\n";
  if (k.sender_id) o << "sender_id " << (k.sender_id->empty() ? "-" : to_hex(*k.sender_id)) << "\n";
  o << "master_secret " << to_hex(k.master_secret) << "\n";
  o << "master_salt " << (k.master_salt.empty() ? "-" : to_hex(k.master_salt)) << "\n";
  if (k.aead_alg) o << "aead " << *k.aead_alg << "\n";
  if (k.hkdf_alg) o << "hkdf " << *k.hkdf_alg << "\n";
  if (k.exp) o << "exp " << *k.exp << "\n";
  if (s.sign) {
    o << "sign_alg " << s.sign->alg << "\n";
    if (!s.sign->params.empty()) o << "sign_params " << to_hex(s.sign->params) << "\n";
  }
  o << "status " << (s.left ? "left" : "member") << "\n";
  return write_private(group_file(group, ".keys"), o.str());
}

Expected<StoredKeys, Failure> StateDir::load_keys(const std::string& group) const {
  auto pairs = read_pairs(group_file(group, ".keys"));
  if (!pairs) return unexpected(Failure{Error::kNotJoined, 0, "no keying material for group " + group + " in " + dir_});
  StoredKeys s;
  bool ok = true;
  auto hex = [&](const std::string& x) {
    if (x == "-") return Bytes{};
    auto b = from_hex(x);
    if (!b) ok = false;
    return b ? *b : Bytes{};
  };
  for (const auto& [k, v] : *pairs) {
    if (k == "num") s.keys.num = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "group_id") s.keys.group_id = hex(v);
    else if (k == "sender_id") s.keys.sender_id = hex(v);
    else if (k == "master_secret") s.keys.master_secret = hex(v);
    else if (k == "master_salt") s.keys.master_salt = hex(v);
    else if (k == "aead") s.keys.aead_alg = std::atoll(v.c_str());
    else if (k == "hkdf") s.keys.hkdf_alg = std::atoll(v.c_str());
    else if (k == "exp") s.keys.exp = std::atoll(v.c_str());
    else if (k == "status") s.left = v == "left";
    else if (k == "sign_alg") {
      if (!s.sign) s.sign = SignAlgorithm{};
      s.sign->alg = std::atoll(v.c_str());
    } else if (k == "sign_params") {
      if (!s.sign) s.sign = SignAlgorithm{};
      s.sign->params = hex(v);
    }
  }
  if (s.sign && s.sign->alg == 0) ok = false;  // sign_params without sign_alg
  if (!ok) return state_error("corrupt keys file " + group_file(group, ".keys"));
  return s;
}

void StateDir::forget_membership(const std::string& group) const {
  std::error_code ec;
  fs::remove(group_file(group, ".session"), ec);
  fs::remove(group_file(group, ".key"), ec);
  if (auto k = load_keys(group)) {
    k->left = true;
    (void)save_keys(group, *k);
  }
}

}  // namespace acekdc::client
