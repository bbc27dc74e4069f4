#include "kdc/config.h"

#include <arpa/inet.h>

#include <cstdint>
#include <limits>
#include <set>

// toml++ in header-only mode without exceptions (errors come back as values).
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

namespace acekdc::kdc {

const char* const kDefaultConfig = R"toml(# acekdc default configuration
[store]
backend = "sqlite"
path = "acekdc.db"

[[group]]
name = "demo-group"
aead = "AES-CCM-16-64-128"
hkdf = "HKDF-SHA-256"
sign_alg = "EdDSA"
pub_key_enc = 1
max_members = 1000
key_lifetime = 86400
departed_key_retention = 0
sender_id_reuse_delay = 3600
key_renewal = "new-sender-id"

[group.policies]
seq_sync = "baseline"
key_update_check_interval = 3600
expiration_delta = 0

[group.rekey]
on_join = true
on_leave = true
on_expiry = true
min_interval = 0
batch_changes = 0
)toml";

const char* to_string(ConfigErrc e) {
  switch (e) {
    case ConfigErrc::kSyntax: return "TOML syntax error";
    case ConfigErrc::kUnknownKey: return "unknown key";
    case ConfigErrc::kMissingKey: return "missing key";
    case ConfigErrc::kWrongType: return "wrong type";
    case ConfigErrc::kBadValue: return "bad value";
    case ConfigErrc::kDuplicateGroup: return "duplicate group";
  }
  return "configuration error";
}

namespace {

struct Name {
  const char* name;
  int value;
};

constexpr Name kAeadNames[] = {
    {"A128GCM", cp::alg::kA128GCM},
    {"A192GCM", cp::alg::kA192GCM},
    {"A256GCM", cp::alg::kA256GCM},
    {"AES-CCM-16-64-128", cp::alg::kAES_CCM_16_64_128},
    {"AES-CCM-16-64-256", cp::alg::kAES_CCM_16_64_256},
    {"AES-CCM-64-64-128", cp::alg::kAES_CCM_64_64_128},
    {"AES-CCM-64-64-256", cp::alg::kAES_CCM_64_64_256},
    {"AES-CCM-16-128-128", cp::alg::kAES_CCM_16_128_128},
    {"AES-CCM-16-128-256", cp::alg::kAES_CCM_16_128_256},
    {"AES-CCM-64-128-128", cp::alg::kAES_CCM_64_128_128},
    {"AES-CCM-64-128-256", cp::alg::kAES_CCM_64_128_256},
    {"ChaCha20/Poly1305", cp::alg::kChaCha20Poly1305},
};
// HKDF: Group OSCORE names HKDF by its HMAC (5, 7); RFC 8613's -10/-11 are read as those.
constexpr Name kHkdfNames[] = {
    {"HKDF-SHA-256", cp::alg::kHMAC256_256},
    {"HKDF-SHA-512", cp::alg::kHMAC512_512},
};
constexpr Name kSignNames[] = {
    {"EdDSA", cp::alg::kEdDSA},
    {"ES256", cp::alg::kES256},
};
constexpr Name kSeqSyncNames[] = {
    {"best-effort", cp::gc::kSeqSyncBestEffort},
    {"baseline", cp::gc::kSeqSyncBaseline},
    {"echo", cp::gc::kSeqSyncEcho},
};
constexpr Name kKeyRenewalNames[] = {
    {"new-sender-id", static_cast<int>(KeyRenewal::kNewSenderId)},
    {"rekey-group", static_cast<int>(KeyRenewal::kRekeyGroup)},
};

template <size_t N>
bool known(const Name (&names)[N], int v) {
  for (const auto& n : names)
    if (n.value == v) return true;
  return false;
}

template <size_t N>
std::string list(const Name (&names)[N]) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ", ";
    s += '"';
    s += n.name;
    s += '"';
  }
  return s;
}

constexpr uint32_t kMaxMembersLimit = 1000000;
constexpr size_t kMaxGroupNameLen = 64;

bool valid_group_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxGroupNameLen || s == "." || s == "..") return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

bool valid_multicast(const std::string& s) {
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    return (ntohl(a4.s_addr) >> 28) == 0xE;  // 224.0.0.0/4
  }
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) return a6.s6_addr[0] == 0xFF;
  return false;
}

// TableReader reads one TOML table, remembering which keys were consumed so that
// the rest can be reported as unknown. The first error sticks.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string path, ConfigError& err, bool& failed)
      : t_(t), path_(std::move(path)), err_(err), failed_(failed) {}

  bool fail(ConfigErrc code, const toml::node* at, const std::string& key, const std::string& what) {
    if (failed_) return false;
    failed_ = true;
    err_.code = code;
    const auto line = at ? at->source().begin.line : t_.source().begin.line;
    err_.message = "line " + std::to_string(line) + ": " + path_ +
                   (key.empty() || path_.empty() ? "" : ".") + key + ": " + what;
    return false;
  }

  const toml::node* get(const char* key) {
    seen_.insert(key);
    return t_.get(key);
  }

  bool str(const char* key, std::string& out) {
    const toml::node* n = get(key);
    if (!n) return true;
    const auto* v = n->as_string();
    if (!v) return fail(ConfigErrc::kWrongType, n, key, "expected a string");
    out = v->get();
    return true;
  }

  bool boolean(const char* key, bool& out) {
    const toml::node* n = get(key);
    if (!n) return true;
    const auto* v = n->as_boolean();
    if (!v) return fail(ConfigErrc::kWrongType, n, key, "expected true or false");
    out = v->get();
    return true;
  }

  bool u32(const char* key, uint32_t& out, uint32_t min = 0,
           uint32_t max = std::numeric_limits<uint32_t>::max()) {
    const toml::node* n = get(key);
    if (!n) return true;
    const auto* v = n->as_integer();
    if (!v) return fail(ConfigErrc::kWrongType, n, key, "expected an integer");
    const int64_t x = v->get();
    if (x < static_cast<int64_t>(min) || x > static_cast<int64_t>(max)) {
      return fail(ConfigErrc::kBadValue, n, key,
                  "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    out = static_cast<uint32_t>(x);
    return true;
  }

  // named reads a string from `names` or (if allow_int) one of their numbers.
  template <size_t N>
  bool named(const char* key, const Name (&names)[N], int& out, bool allow_int,
             std::initializer_list<std::pair<int, int>> int_aliases = {}) {
    const toml::node* n = get(key);
    if (!n) return true;
    if (const auto* s = n->as_string()) {
      for (const auto& nm : names) {
        if (s->get() == nm.name) {
          out = nm.value;
          return true;
        }
      }
      return fail(ConfigErrc::kBadValue, n, key,
                  "unknown value \"" + s->get() + "\" (one of " + list(names) + ")");
    }
    if (const auto* i = n->as_integer(); i && allow_int) {
      int64_t x = i->get();
      for (const auto& [from, to] : int_aliases)
        if (x == from) x = to;
      for (const auto& nm : names) {
        if (x == nm.value) {
          out = nm.value;
          return true;
        }
      }
      return fail(ConfigErrc::kBadValue, n, key, "unsupported value " + std::to_string(i->get()));
    }
    return fail(ConfigErrc::kWrongType, n, key, allow_int ? "expected a string or an integer"
                                                          : "expected a string");
  }

  // sub returns the sub-table `key` (nullptr if absent or on a type error).
  const toml::table* sub(const char* key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    const auto* t = n->as_table();
    if (!t) fail(ConfigErrc::kWrongType, n, key, "expected a table");
    return t;
  }

  // finish reports the first key that was never asked for.
  bool finish() {
    for (const auto& [k, v] : t_) {
      if (!seen_.count(std::string(k.str()))) {
        return fail(ConfigErrc::kUnknownKey, &v, std::string(k.str()), "unknown key");
      }
    }
    return !failed_;
  }

  const std::string& path() const { return path_; }
  ConfigError& err() { return err_; }
  bool& failed() { return failed_; }

 private:
  const toml::table& t_;
  std::string path_;
  ConfigError& err_;
  bool& failed_;
  std::set<std::string, std::less<>> seen_;
};

bool read_group(const toml::table& t, const std::string& path, GroupConfig& c, ConfigError& err,
                bool& failed) {
  TableReader r(t, path, err, failed);
  if (!t.get("name")) return r.fail(ConfigErrc::kMissingKey, nullptr, "name", "required");
  r.str("name", c.name);
  if (!failed && !valid_group_name(c.name)) {
    return r.fail(ConfigErrc::kBadValue, t.get("name"), "name",
                  "must be 1-64 characters of A-Z a-z 0-9 - . _ ~");
  }
  r.named("aead", kAeadNames, c.aead_alg, true);
  r.named("hkdf", kHkdfNames, c.hkdf_alg, true,
          {{cp::alg::kDirectHKDF_SHA256, cp::alg::kHMAC256_256},
           {cp::alg::kDirectHKDF_SHA512, cp::alg::kHMAC512_512}});
  int sign_alg = c.sign_info.sign_alg;
  r.named("sign_alg", kSignNames, sign_alg, true);
  c.sign_info = sign_alg == cp::alg::kES256 ? sign_info_es256() : sign_info_eddsa();
  if (const toml::node* n = r.get("pub_key_enc")) {
    const auto* v = n->as_integer();
    if (!v) return r.fail(ConfigErrc::kWrongType, n, "pub_key_enc", "expected an integer");
    if (v->get() != cp::gc::kPubKeyEncCoseKey) {
      return r.fail(ConfigErrc::kBadValue, n, "pub_key_enc", "only 1 (COSE_Key) is supported");
    }
  }
  r.u32("max_members", c.max_members, 1, kMaxMembersLimit);
  r.str("multicast_address", c.multicast_address);
  if (!failed && !c.multicast_address.empty() && !valid_multicast(c.multicast_address)) {
    return r.fail(ConfigErrc::kBadValue, t.get("multicast_address"), "multicast_address",
                  "not an IPv4 or IPv6 multicast address");
  }
  r.u32("key_lifetime", c.key_lifetime_s, 60);
  r.u32("departed_key_retention", c.departed_key_retention_s);
  r.u32("sender_id_reuse_delay", c.sender_id_reuse_delay_s);
  int renewal = static_cast<int>(c.key_renewal);
  r.named("key_renewal", kKeyRenewalNames, renewal, false);
  c.key_renewal = static_cast<KeyRenewal>(renewal);

  if (const toml::table* p = r.sub("policies")) {
    TableReader pr(*p, path + ".policies", err, failed);
    pr.named("seq_sync", kSeqSyncNames, c.policies.seq_sync_method, true);
    pr.u32("key_update_check_interval", c.policies.key_update_check_interval_s, 1);
    pr.u32("expiration_delta", c.policies.expiration_delta_s);
    pr.finish();
  }
  if (const toml::table* k = r.sub("rekey")) {
    TableReader kr(*k, path + ".rekey", err, failed);
    kr.boolean("on_join", c.rekey.on_join);
    kr.boolean("on_leave", c.rekey.on_leave);
    kr.boolean("on_expiry", c.rekey.on_expiry);
    kr.u32("min_interval", c.rekey.min_interval_s);
    kr.u32("batch_changes", c.rekey.batch_changes);
    kr.finish();
  }
  return r.finish();
}


}  // namespace

Expected<void, ConfigError> validate_group_config(const GroupConfig& c) {
  auto bad = [&](const std::string& what) {
    return unexpected(ConfigError{ConfigErrc::kBadValue, "group " + c.name + ": " + what});
  };
  if (!valid_group_name(c.name)) return bad("invalid name");
  if (!known(kAeadNames, c.aead_alg)) return bad("unsupported AEAD algorithm");
  if (!known(kHkdfNames, c.hkdf_alg)) return bad("unsupported HKDF algorithm");
  if (c.sign_info != sign_info_eddsa() && c.sign_info != sign_info_es256()) {
    return bad("sign_info must be EdDSA [-8, [1], [1, 6]] or ES256 [-7, [2], [2, 1]]");
  }
  if (c.pub_key_enc != cp::gc::kPubKeyEncCoseKey) return bad("pub_key_enc must be 1");
  if (!known(kSeqSyncNames, c.policies.seq_sync_method)) return bad("unknown seq_sync method");
  if (c.policies.key_update_check_interval_s == 0) return bad("key_update_check_interval is 0");
  if (c.max_members == 0 || c.max_members > kMaxMembersLimit) return bad("max_members out of range");
  if (c.key_lifetime_s < 60) return bad("key_lifetime below 60 s");
  if (!c.multicast_address.empty() && !valid_multicast(c.multicast_address)) {
    return bad("multicast_address is not a multicast address");
  }
  if (c.key_renewal != KeyRenewal::kNewSenderId && c.key_renewal != KeyRenewal::kRekeyGroup) {
    return bad("unknown key_renewal");
  }
  return {};
}

Expected<KdcConfig, ConfigError> parse_config(std::string_view toml_text) {
  // toml++ 3.3 has undefined behaviour on some non-ASCII input even where TOML allows it
  // (fuzz_kdc_config found cases outside strings and, after an invalid token, inside one),
  // so a configuration is ASCII: anything else is refused before toml++ sees it.
  for (size_t i = 0, line = 1; i < toml_text.size(); ++i) {
    if (toml_text[i] == '\n') ++line;
    if (static_cast<unsigned char>(toml_text[i]) >= 0x80) {
      return unexpected(ConfigError{ConfigErrc::kSyntax,
                                    "line " + std::to_string(line) +
                                        ": non-ASCII character (configuration files are ASCII)"});
    }
  }
  toml::parse_result parsed = toml::parse(toml_text);
  if (!parsed) {
    const auto& e = parsed.error();
    return unexpected(ConfigError{ConfigErrc::kSyntax,
                                  "line " + std::to_string(e.source().begin.line) + ": " +
                                      std::string(e.description())});
  }
  const toml::table& root = parsed.table();
  KdcConfig cfg;
  ConfigError err;
  bool failed = false;
  TableReader top(root, "", err, failed);

  if (const toml::table* s = top.sub("store")) {
    TableReader sr(*s, "store", err, failed);
    std::string backend = "sqlite";
    sr.str("backend", backend);
    if (!failed) {
      if (backend == "sqlite") {
        cfg.store.backend = StoreConfig::Backend::kSqlite;
      } else if (backend == "memory") {
        cfg.store.backend = StoreConfig::Backend::kMemory;
      } else {
        sr.fail(ConfigErrc::kBadValue, s->get("backend"), "backend",
                "unknown backend \"" + backend + "\" (one of \"sqlite\", \"memory\")");
      }
    }
    sr.str("path", cfg.store.path);
    if (!failed && cfg.store.backend == StoreConfig::Backend::kSqlite && cfg.store.path.empty()) {
      sr.fail(ConfigErrc::kBadValue, s->get("path"), "path", "must not be empty");
    }
    sr.finish();
  }
  if (const toml::node* g = top.get("group")) {
    const toml::array* groups = g->as_array();
    if (!groups) {
      top.fail(ConfigErrc::kWrongType, g, "group", "expected [[group]] tables");
    } else {
      std::set<std::string, std::less<>> names;
      for (size_t i = 0; i < groups->size() && !failed; ++i) {
        const toml::node& n = *groups->get(i);
        const std::string path = "group[" + std::to_string(i) + "]";
        const toml::table* t = n.as_table();
        if (!t) {
          top.fail(ConfigErrc::kWrongType, &n, path, "expected a table");
          break;
        }
        GroupConfig c;
        if (!read_group(*t, path, c, err, failed)) break;
        if (!names.insert(c.name).second) {
          TableReader(*t, path, err, failed)
              .fail(ConfigErrc::kDuplicateGroup, t->get("name"), "name",
                    "group \"" + c.name + "\" is defined twice");
          break;
        }
        cfg.groups.push_back(std::move(c));
      }
    }
  }
  top.finish();
  if (failed) return unexpected(std::move(err));
  for (const auto& c : cfg.groups) {
    auto v = validate_group_config(c);
    if (!v) return unexpected(v.error());
  }
  return cfg;
}

}  // namespace acekdc::kdc
