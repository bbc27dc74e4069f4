#include "acekdc/oscore_ctx_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "acekdc/alg_names.h"
#include "core/hex.h"
#include "oscore/limits.h"

// toml++ header-only without exceptions, as src/kdc/config.cpp uses it (the same
// macros in every translation unit that includes it).
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <nlohmann/json.hpp>

namespace acekdc::app {

const char* to_string(CtxFileError e) {
  switch (e) {
    case CtxFileError::kIo: return "cannot read the file";
    case CtxFileError::kSyntax: return "syntax error";
    case CtxFileError::kUnknownKey: return "unknown key";
    case CtxFileError::kMissingKey: return "missing key";
    case CtxFileError::kWrongType: return "wrong type";
    case CtxFileError::kBadValue: return "bad value";
  }
  return "context file error";
}

namespace {

// Node: TOML and JSON documents are converted to this one small tree, so that
// one validator serves both formats.
struct Node {
  enum class Kind : uint8_t { kString, kInt, kFloat, kBool, kTable, kArray, kOther };
  Kind kind = Kind::kOther;
  std::string str;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::vector<std::pair<std::string, Node>> table;
  std::vector<Node> array;
  int line = 0;  // 0: unknown (JSON)

  ~Node() { secure_zero(str.data(), str.size()); }
  Node() = default;
  Node(const Node&) = default;
  Node(Node&&) = default;
  Node& operator=(Node&&) = default;
};

const char* kind_name(Node::Kind k) {
  switch (k) {
    case Node::Kind::kString: return "a string";
    case Node::Kind::kInt: return "an integer";
    case Node::Kind::kFloat: return "a number";
    case Node::Kind::kBool: return "a boolean";
    case Node::Kind::kTable: return "a table";
    case Node::Kind::kArray: return "an array";
    case Node::Kind::kOther: return "another type";
  }
  return "?";
}

using Failure = CtxFileFailure;

// CTX_TRY(lhs, expr): evaluate an Expected; on error return it, else assign its value.
#define CTX_CAT2(a, b) a##b
#define CTX_CAT(a, b) CTX_CAT2(a, b)
#define CTX_TRY(lhs, expr)                                                                             \
  auto&& CTX_CAT(ctx_try_, __LINE__) = (expr);                                                         \
  if (!CTX_CAT(ctx_try_, __LINE__)) return ::acekdc::unexpected(CTX_CAT(ctx_try_, __LINE__).error()); \
  lhs = std::move(*CTX_CAT(ctx_try_, __LINE__))

Unexpected<Failure> fail(CtxFileError code, std::string msg) { return unexpected(Failure{code, std::move(msg)}); }

// ---- TOML ----
Node from_toml(const toml::node& n) {
  Node out;
  out.line = static_cast<int>(n.source().begin.line);
  if (auto* s = n.as_string()) {
    out.kind = Node::Kind::kString;
    out.str = s->get();
  } else if (auto* i = n.as_integer()) {
    out.kind = Node::Kind::kInt;
    out.i = i->get();
  } else if (auto* f = n.as_floating_point()) {
    out.kind = Node::Kind::kFloat;
    out.f = f->get();
  } else if (auto* b = n.as_boolean()) {
    out.kind = Node::Kind::kBool;
    out.b = b->get();
  } else if (auto* t = n.as_table()) {
    out.kind = Node::Kind::kTable;
    for (const auto& [k, v] : *t) out.table.emplace_back(std::string(k.str()), from_toml(v));
  } else if (auto* a = n.as_array()) {
    out.kind = Node::Kind::kArray;
    for (const auto& v : *a) out.array.push_back(from_toml(v));
  }
  return out;
}

Expected<Node, Failure> parse_toml(std::string_view text, const std::string& source) {
  toml::parse_result parsed = toml::parse(text);
  if (!parsed) {
    const auto& e = parsed.error();
    // The description is left out: it may quote part of a secret.
    return fail(CtxFileError::kSyntax, source + ": line " + std::to_string(e.source().begin.line) + ", column " +
                                           std::to_string(e.source().begin.column) + ": TOML syntax error");
  }
  Node root = from_toml(parsed.table());
  root.line = 0;
  return root;
}

// ---- JSON ----
Node from_json(const nlohmann::json& j) {
  Node out;
  if (j.is_string()) {
    out.kind = Node::Kind::kString;
    out.str = j.get_ref<const std::string&>();
  } else if (j.is_number_integer() && !j.is_number_unsigned()) {
    out.kind = Node::Kind::kInt;
    out.i = j.get<int64_t>();
  } else if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) {
      out.kind = Node::Kind::kInt;
      out.i = static_cast<int64_t>(u);
    }
  } else if (j.is_number_float()) {
    out.kind = Node::Kind::kFloat;
    out.f = j.get<double>();
  } else if (j.is_boolean()) {
    out.kind = Node::Kind::kBool;
    out.b = j.get<bool>();
  } else if (j.is_object()) {
    out.kind = Node::Kind::kTable;
    for (auto it = j.begin(); it != j.end(); ++it) out.table.emplace_back(it.key(), from_json(it.value()));
  } else if (j.is_array()) {
    out.kind = Node::Kind::kArray;
    for (const auto& v : j) out.array.push_back(from_json(v));
  }
  return out;
}

Expected<Node, Failure> parse_json(std::string_view text, const std::string& source) {
  // Duplicate keys are refused (nlohmann would keep the last one silently).
  std::vector<std::set<std::string>> seen;
  bool duplicate = false;
  std::string duplicate_key;
  auto cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) seen.emplace_back();
    if (ev == E::object_end && !seen.empty()) seen.pop_back();
    if (ev == E::key && !seen.empty()) {
      std::string k = parsed.get<std::string>();
      if (!seen.back().insert(k).second && !duplicate) {
        duplicate = true;
        duplicate_key = k;
      }
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() quotes the text it last read, which may be part of a secret.
    return fail(CtxFileError::kSyntax, source + ": byte " + std::to_string(e.byte) + ": JSON syntax error");
  } catch (const nlohmann::json::exception&) {
    return fail(CtxFileError::kSyntax, source + ": JSON syntax error");
  }
  if (duplicate) {
    bool printable = duplicate_key.size() <= 40;
    return fail(CtxFileError::kUnknownKey,
                source + ": duplicate key" + (printable ? " \"" + duplicate_key + "\"" : std::string()));
  }
  if (!j.is_object()) return fail(CtxFileError::kSyntax, source + ": the JSON document must be an object");
  return from_json(j);
}

Expected<Node, Failure> parse_any(std::string_view text, CtxFormat format, const std::string& source) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t')) {
      // toml++ 3.3 misbehaves on some non-ASCII input; context files are ASCII.
      size_t line = 1;
      for (size_t k = 0; k < i; ++k) line += text[k] == '\n';
      return fail(CtxFileError::kSyntax,
                  source + ": line " + std::to_string(line) + ": non-ASCII or control character (context files are ASCII)");
    }
  }
  if (format == CtxFormat::kAuto) {
    size_t p = text.find_first_not_of(" \t\r\n");
    format = (p != std::string_view::npos && text[p] == '{') ? CtxFormat::kJson : CtxFormat::kToml;
  }
  return format == CtxFormat::kJson ? parse_json(text, source) : parse_toml(text, source);
}

// ---- validation ----
class TableReader {
 public:
  TableReader(const Node& table, std::string where) : t_(table), where_(std::move(where)) {}

  const Node* get(std::string_view key) {
    used_.insert(std::string(key));
    for (const auto& [k, v] : t_.table)
      if (k == key) return &v;
    return nullptr;
  }
  std::string at(const Node* n, std::string_view key) const {
    std::string s = where_;
    if (n && n->line > 0) s += ": line " + std::to_string(n->line);
    return s + ": " + std::string(key);
  }
  Expected<const Node*, Failure> typed(std::string_view key, Node::Kind kind, bool required) {
    const Node* n = get(key);
    if (!n) {
      if (required) return fail(CtxFileError::kMissingKey, where_ + ": missing key " + std::string(key));
      return nullptr;
    }
    if (n->kind != kind)
      return fail(CtxFileError::kWrongType,
                  at(n, key) + ": must be " + kind_name(kind) + ", not " + kind_name(n->kind));
    return n;
  }
  // hex: a hex string; the value never appears in messages.
  Expected<std::optional<Bytes>, Failure> hex(std::string_view key, bool required) {
    CTX_TRY(const Node* n, typed(key, Node::Kind::kString, required));
    if (!n) return std::optional<Bytes>();
    auto b = from_hex(n->str);
    if (!b) return fail(CtxFileError::kBadValue, at(n, key) + ": not a hex string");
    return std::optional<Bytes>(std::move(*b));
  }
  Expected<Bytes, Failure> hex_required(std::string_view key) {
    CTX_TRY(std::optional<Bytes> b, hex(key, true));
    return std::move(b).value_or(Bytes());
  }
  Expected<std::optional<int64_t>, Failure> integer(std::string_view key, int64_t lo, int64_t hi) {
    CTX_TRY(const Node* n, typed(key, Node::Kind::kInt, false));
    if (!n) return std::optional<int64_t>();
    if (n->i < lo || n->i > hi)
      return fail(CtxFileError::kBadValue,
                  at(n, key) + ": out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return std::optional<int64_t>(n->i);
  }
  // number: an integer or a float.
  Expected<std::optional<double>, Failure> number(std::string_view key, double lo, double hi) {
    const Node* n = get(key);
    if (!n) return std::optional<double>();
    double v;
    if (n->kind == Node::Kind::kInt) v = static_cast<double>(n->i);
    else if (n->kind == Node::Kind::kFloat) v = n->f;
    else return fail(CtxFileError::kWrongType, at(n, key) + ": must be a number, not " + kind_name(n->kind));
    if (!std::isfinite(v) || v < lo || v > hi)
      return fail(CtxFileError::kBadValue, at(n, key) + ": out of range");
    return std::optional<double>(v);
  }
  Expected<void, Failure> no_unknown_keys() const {
    for (const auto& [k, v] : t_.table) {
      if (!used_.count(k)) {
        bool printable = k.size() <= 40;
        for (char c : k) printable = printable && std::isprint(static_cast<unsigned char>(c));
        return fail(CtxFileError::kUnknownKey,
                    (v.line > 0 ? where_ + ": line " + std::to_string(v.line) : where_) + ": unknown key" +
                        (printable ? " \"" + k + "\"" : std::string()));
      }
    }
    return {};
  }
  const std::string& where() const { return where_; }

 private:
  const Node& t_;
  std::string where_;
  std::set<std::string> used_;
};

bool supported_aead(int alg) {
  switch (alg) {
    case cp::alg::kAES_CCM_16_64_128:
    case cp::alg::kAES_CCM_16_64_256:
    case cp::alg::kAES_CCM_64_64_128:
    case cp::alg::kAES_CCM_64_64_256:
    case cp::alg::kAES_CCM_16_128_128:
    case cp::alg::kAES_CCM_16_128_256:
    case cp::alg::kAES_CCM_64_128_128:
    case cp::alg::kAES_CCM_64_128_256:
    case cp::alg::kA128GCM:
    case cp::alg::kA192GCM:
    case cp::alg::kA256GCM:
    case cp::alg::kChaCha20Poly1305: return true;
    default: return false;
  }
}

Expected<int, Failure> read_alg(TableReader& r, std::string_view key, bool hkdf, int dflt) {
  const Node* n = r.get(key);
  if (!n) return dflt;
  std::optional<int> alg;
  if (n->kind == Node::Kind::kInt) {
    if (n->i >= INT32_MIN && n->i <= INT32_MAX) alg = static_cast<int>(n->i);
  } else if (n->kind == Node::Kind::kString) {
    alg = hkdf ? hkdf_from_name(n->str) : alg_from_name(n->str);
  } else {
    return fail(CtxFileError::kWrongType, r.at(n, key) + ": must be an algorithm name or number");
  }
  bool ok = alg && (hkdf ? hkdf_from_name(std::to_string(*alg)).has_value() : supported_aead(*alg));
  if (!ok)
    return fail(CtxFileError::kBadValue,
                r.at(n, key) + (hkdf ? ": unknown HKDF algorithm (HKDF-SHA-256, HKDF-SHA-512, -10, -11, 5, 7)"
                                     : ": not an AEAD algorithm OSCORE can use"));
  return *alg;
}

Expected<OscoreCtxFile, Failure> read_context(const Node& table, const std::string& where, const std::string& base_dir) {
  TableReader r(table, where);
  OscoreCtxFile f;
  if (const Node* n = r.get("name")) {
    if (n->kind != Node::Kind::kString) return fail(CtxFileError::kWrongType, r.at(n, "name") + ": must be a string");
    f.name = n->str;
  }
  CTX_TRY(f.params.master_secret, r.hex_required("master_secret"));
  if (f.params.master_secret.empty())
    return fail(CtxFileError::kBadValue, where + ": master_secret: must not be empty");
  CTX_TRY(auto salt, r.hex("master_salt", false));
  if (salt) f.params.master_salt = std::move(*salt);
  CTX_TRY(f.params.sender_id, r.hex_required("sender_id"));
  CTX_TRY(f.params.recipient_id, r.hex_required("recipient_id"));
  if (f.params.sender_id == f.params.recipient_id)
    return fail(CtxFileError::kBadValue, where + ": sender_id and recipient_id must differ");
  CTX_TRY(auto idc, r.hex("id_context", false));
  f.params.id_context = std::move(idc);
  CTX_TRY(f.params.aead_alg, read_alg(r, "aead_alg", false, cp::alg::kAES_CCM_16_64_128));
  CTX_TRY(f.params.hkdf_alg, read_alg(r, "hkdf_alg", true, cp::alg::kDirectHKDF_SHA256));
  CTX_TRY(auto rw, r.integer("replay_window", 1, oscore::ReplayWindow::kMaxSize));
  if (rw) f.replay_window = static_cast<uint32_t>(*rw);
  f.send_kid_context = f.params.id_context.has_value();
  CTX_TRY(const Node* skc, r.typed("send_kid_context", Node::Kind::kBool, false));
  if (skc) {
    if (skc->b && !f.params.id_context)
      return fail(CtxFileError::kBadValue, r.at(skc, "send_kid_context") + ": true needs an id_context");
    f.send_kid_context = skc->b;
  }
  CTX_TRY(const Node* b2, r.typed("appendix_b2", Node::Kind::kBool, false));
  if (b2) f.appendix_b2 = b2->b;
  CTX_TRY(auto exp, r.integer("exp", 0, INT64_MAX));
  f.exp = exp;
  CTX_TRY(auto chunk, r.integer("seq_chunk", 1, 1 << 20));
  if (chunk) f.seq_chunk = static_cast<uint64_t>(*chunk);
  CTX_TRY(const Node* st, r.typed("state", Node::Kind::kString, false));
  if (st) {
    if (st->str.empty()) return fail(CtxFileError::kBadValue, r.at(st, "state") + ": must not be empty");
    std::filesystem::path p(st->str);
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    f.state_dir = p.lexically_normal().string();
  }

  CTX_TRY(const Node* lim, r.typed("limits", Node::Kind::kTable, false));
  if (lim) {
    TableReader lr(*lim, where + ": limits");
    oscore::KeyLimits kl;
    const int64_t kMax = int64_t{1} << 62;
    CTX_TRY(auto q, lr.integer("q", 1, kMax));
    CTX_TRY(auto v, lr.integer("v", 1, kMax));
    CTX_TRY(auto l, lr.integer("l", 1, kMax));
    if (!q || !v || !l) return fail(CtxFileError::kMissingKey, where + ": limits: needs q, v and l");
    ACEKDC_TRY(lr.no_unknown_keys());
    kl.q = static_cast<uint64_t>(*q);
    kl.v = static_cast<uint64_t>(*v);
    kl.l = static_cast<uint64_t>(*l);
    auto chk = oscore::check_limits(f.params.aead_alg, kl);
    if (!chk)
      return fail(CtxFileError::kBadValue,
                  where + ": limits: " +
                      (chk.error() == oscore::Error::kLimitsTooWeak ? "IA or CA above 2^-54 for this AEAD"
                                                                    : oscore::to_string(chk.error())));
    f.limits = kl;
  }

  CTX_TRY(const Node* ku, r.typed("key_update", Node::Kind::kTable, false));
  if (ku) {
    TableReader kr(*ku, where + ": key_update");
    CTX_TRY(auto rl, kr.integer("r_len", 1, 32));
    if (rl) f.key_update.r_len = static_cast<size_t>(*rl);
    for (const char* key : {"auto_threshold", "auto_threshold_v"}) {
      const Node* n = kr.get(key);
      if (!n) continue;
      std::optional<double> v;
      if (n->kind == Node::Kind::kBool) {
        if (n->b) return fail(CtxFileError::kBadValue, kr.at(n, key) + ": a fraction in (0, 1], or false");
      } else {
        CTX_TRY(auto d, kr.number(key, 0, 1));
        if (*d <= 0) return fail(CtxFileError::kBadValue, kr.at(n, key) + ": a fraction in (0, 1], or false");
        v = *d;
      }
      (std::string_view(key) == "auto_threshold" ? f.key_update.auto_threshold : f.key_update.auto_threshold_v) = v;
    }
    CTX_TRY(auto ret, kr.number("retention", 0, 365.0 * 86400));
    if (ret) f.key_update.retention = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(*ret));
    ACEKDC_TRY(kr.no_unknown_keys());
  }
  ACEKDC_TRY(r.no_unknown_keys());
  return f;
}

std::string dir_of(const std::string& path) {
  std::filesystem::path p(path);
  auto d = p.parent_path();
  return d.empty() ? std::string(".") : d.string();
}

CtxFormat format_of(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".json") return CtxFormat::kJson;
  if (ext == ".toml") return CtxFormat::kToml;
  return CtxFormat::kAuto;
}

}  // namespace

std::optional<int> hkdf_from_name(std::string_view name) {
  int num = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), num);
  if (ec == std::errc() && end == name.data() + name.size()) {
    if (num == cp::alg::kDirectHKDF_SHA256 || num == cp::alg::kDirectHKDF_SHA512 || num == cp::alg::kHMAC256_256 ||
        num == cp::alg::kHMAC512_512)
      return num;
    return std::nullopt;
  }
  std::string f;
  for (char c : name)
    if (c != ' ' && c != '-' && c != '_') f += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (f == "hkdfsha256" || f == "direct+hkdfsha256") return cp::alg::kDirectHKDF_SHA256;
  if (f == "hmac256/256") return cp::alg::kHMAC256_256;
  if (f == "hkdfsha512" || f == "direct+hkdfsha512") return cp::alg::kDirectHKDF_SHA512;
  if (f == "hmac512/512") return cp::alg::kHMAC512_512;
  return std::nullopt;
}

oscore::ContextConfig OscoreCtxFile::context_config(oscore::SequenceStore* store, const Clock* clock) const {
  oscore::ContextConfig c;
  c.params = params;
  c.limits = limits;
  c.exp = exp;
  c.clock = clock;
  c.replay_window = replay_window;
  c.store = store;
  c.seq_chunk = seq_chunk;
  c.send_kid_context = send_kid_context;
  return c;
}

Expected<OscoreCtxFile, CtxFileFailure> parse_ctx(std::string_view text, CtxFormat format, const std::string& base_dir,
                                                  const std::string& source) {
  CTX_TRY(Node root, parse_any(text, format, source));
  return read_context(root, source, base_dir);
}

Expected<OscoreCtxFile, CtxFileFailure> load_ctx_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(CtxFileError::kIo, path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto r = parse_ctx(text, format_of(path), dir_of(path), path);
  secure_zero(text.data(), text.size());
  return r;
}

Expected<std::vector<OscoreCtxFile>, CtxFileFailure> parse_ctx_list(std::string_view text, CtxFormat format,
                                                                    const std::string& base_dir,
                                                                    const std::string& source) {
  CTX_TRY(Node root, parse_any(text, format, source));
  TableReader r(root, source);
  CTX_TRY(const Node* list, r.typed("context", Node::Kind::kArray, true));
  ACEKDC_TRY(r.no_unknown_keys());
  if (list->array.empty()) return fail(CtxFileError::kMissingKey, source + ": no context");
  std::vector<OscoreCtxFile> out;
  for (size_t i = 0; i < list->array.size(); ++i) {
    const Node& n = list->array[i];
    std::string where = source + ": context " + std::to_string(i + 1);
    if (n.kind != Node::Kind::kTable) return fail(CtxFileError::kWrongType, where + ": must be a table");
    CTX_TRY(auto f, read_context(n, where, base_dir));
    for (const auto& o : out) {
      if (o.params.recipient_id == f.params.recipient_id && o.params.id_context == f.params.id_context)
        return fail(CtxFileError::kBadValue, where + ": same recipient_id and id_context as an earlier context");
      if (!f.state_dir.empty() && o.state_dir == f.state_dir)
        return fail(CtxFileError::kBadValue, where + ": same state directory as an earlier context");
    }
    out.push_back(std::move(f));
  }
  return out;
}

// ---- state ----
namespace {

// The replay window is persisted through ReplayWindow::serialize/deserialize and
// Context::restore_replay_window (the Echo contract); these templates compile to
// "not supported" while the oscore library does not offer them yet.
template <class W>
concept SerializableWindow = requires(const W& w, ByteView b) {
  { w.serialize() } -> std::convertible_to<Bytes>;
  W::deserialize(b);
};
template <class C, class W>
concept RestorableContext = requires(C& c, const W& w) { c.restore_replay_window(w); };

constexpr bool kWindowsSupported =
    SerializableWindow<oscore::ReplayWindow> && RestorableContext<oscore::Context, oscore::ReplayWindow>;

template <class W>
std::optional<Bytes> serialize_window(const W& w) {
  if constexpr (SerializableWindow<W>) return Bytes(w.serialize());
  else return std::nullopt;
}

template <class C, class W>
bool restore_into(C& ctx, ByteView data) {
  if constexpr (SerializableWindow<W> && RestorableContext<C, W>) {
    auto w = W::deserialize(data);
    if (!w) return false;
    ctx.restore_replay_window(*w);
    return true;
  } else {
    (void)ctx;
    (void)data;
    return true;
  }
}

bool fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  return ::close(fd) == 0 && ok;
}

bool write_atomically(const std::string& path, ByteView data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  bool ok = ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  return ok && ::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

CtxState::CtxState(const OscoreCtxFile& file) : dir_(file.state_dir) {
  if (dir_.empty()) return;
  // FileSequenceStore creates its own directory but not the parents (e.g. the
  // interop server's --state); a failure here shows up as kStorageFailure.
  std::error_code ec;
  auto parent = std::filesystem::path(dir_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  ::mkdir(dir_.c_str(), 0700);
  store_ = std::make_unique<oscore::FileSequenceStore>(dir_);
  writer_ = std::make_unique<oscore::ThreadSequenceWriter>();
  store_->set_writer(writer_.get());  // contexts made with store() reserve ahead
}

bool CtxState::windows_supported() { return kWindowsSupported; }

bool CtxState::used_before() const {
  if (dir_.empty()) return false;
  std::error_code ec;
  return std::filesystem::is_directory(dir_, ec) && !std::filesystem::is_empty(dir_, ec);
}

void CtxState::discard_window() const {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove(std::filesystem::path(dir_) / "replay-window", ec);
}

bool CtxState::window_saved() const {
  if (dir_.empty()) return false;
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir_) / "replay-window", ec);
}

Expected<void, CtxFileFailure> CtxState::restore_window(oscore::Context& ctx) const {
  if (!kWindowsSupported || !window_saved()) return {};
  std::string path = (std::filesystem::path(dir_) / "replay-window").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(CtxFileError::kIo, path + ": cannot read");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!restore_into<oscore::Context, oscore::ReplayWindow>(ctx, as_bytes(s)))
    return fail(CtxFileError::kBadValue, path + ": not a replay window");
  return {};
}

Expected<void, CtxFileFailure> CtxState::save_window(const oscore::Context& ctx) const {
  if (dir_.empty()) return {};
  auto data = serialize_window(ctx.replay_window());
  if (!data) return {};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  std::string path = (std::filesystem::path(dir_) / "replay-window").string();
  if (!write_atomically(path, *data)) return fail(CtxFileError::kIo, path + ": cannot write");
  return {};
}

bool CtxState::session_saved() const {
  if (dir_.empty()) return false;
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir_) / "session", ec);
}

Expected<std::optional<Bytes>, CtxFileFailure> CtxState::load_session() const {
  if (!session_saved()) return std::optional<Bytes>();
  std::string path = (std::filesystem::path(dir_) / "session").string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(CtxFileError::kIo, path + ": cannot read");
  Bytes out;
  uint8_t buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 || out.size() > (1u << 16)) {
      ::close(fd);
      secure_zero(buf, sizeof buf);
      secure_zero(out.data(), out.size());
      return fail(CtxFileError::kIo, path + ": cannot read");
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  secure_zero(buf, sizeof buf);
  return std::optional<Bytes>(std::move(out));
}

Expected<void, CtxFileFailure> CtxState::save_session(ByteView state) const {
  if (dir_.empty()) return {};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  std::string path = (std::filesystem::path(dir_) / "session").string();
  if (!write_atomically(path, state) || !fsync_dir(dir_)) return fail(CtxFileError::kIo, path + ": cannot write");
  return {};
}

Expected<void, CtxFileFailure> CtxState::checkpoint_counts(const oscore::Session& session) {
  if (dir_.empty()) return {};
  const oscore::Context& c = session.current();
  const uint64_t gen = session.updates_completed();
  if (gen == bound_gen_ && c.count_q() < bound_q_ && c.count_v() < bound_v_) return {};
  const uint64_t step_q = std::max<uint64_t>(1, c.limits().q / 32);
  const uint64_t step_v = std::max<uint64_t>(1, c.limits().v / 32);
  const uint64_t q = c.count_q() + step_q, v = c.count_v() + step_v;
  std::string text = std::to_string(gen) + " " + std::to_string(q) + " " + std::to_string(v) + "\n";
  std::string path = (std::filesystem::path(dir_) / "counts").string();
  if (!write_atomically(path, as_bytes(text)) || !fsync_dir(dir_)) return fail(CtxFileError::kIo, path + ": cannot write");
  bound_gen_ = gen;
  bound_q_ = q;
  bound_v_ = v;
  return {};
}

Expected<void, CtxFileFailure> CtxState::restore_counts(oscore::Session& session) {
  if (dir_.empty()) return {};
  std::string path = (std::filesystem::path(dir_) / "counts").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  std::ifstream in(path);
  unsigned long long gen = 0, q = 0, v = 0;
  if (!(in >> gen >> q >> v)) return fail(CtxFileError::kBadValue, path + ": not a counts file");
  if (gen != session.updates_completed()) return {};  // counts of an earlier key
  session.current().restore_counts(q, v);
  bound_gen_ = gen;
  bound_q_ = q;
  bound_v_ = v;
  return {};
}

Expected<std::unique_ptr<oscore::Session>, CtxFileFailure> open_session(oscore::Role role, crypto::Provider& provider,
                                                                        const OscoreCtxFile& file, CtxState& state,
                                                                        Random& random, const Clock& clock,
                                                                        bool window_trusted) {
  const std::string label = file.name.empty() ? std::string("context") : "context " + file.name;
  auto failure = [&](oscore::Error e, const char* what) {
    return fail(e == oscore::Error::kStorageFailure ? CtxFileError::kIo : CtxFileError::kBadValue,
                label + ": " + what + ": " + oscore::to_string(e));
  };
  const bool server = role == oscore::Role::kServer;
  oscore::ContextConfig cfg = file.context_config(state.store(), &clock);
  cfg.random = &random;
  if (server) cfg.replay_window_initialised = window_trusted;
  std::optional<oscore::ReplayWindow> window;
  if (window_trusted && state.window_saved()) {
    std::string path = (std::filesystem::path(file.state_dir) / "replay-window").string();
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(CtxFileError::kIo, path + ": cannot read");
    std::string w((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto d = oscore::ReplayWindow::deserialize(as_bytes(w));
    if (!d) return fail(CtxFileError::kBadValue, path + ": not a replay window");
    window = std::move(*d);
  }
  CTX_TRY(auto saved, state.load_session());
  if (saved) {
    const oscore::ReplayWindow* wp = window ? &*window : nullptr;
    if (server && !window_trusted) wp = nullptr;
    auto s = oscore::Session::restore(role, provider, std::move(cfg), *saved, random, clock, file.key_update, wp);
    secure_zero(saved->data(), saved->size());
    if (!s) return failure(s.error(), "saved key update state");
    ACEKDC_TRY(state.restore_counts(**s));
    return std::move(*s);
  }
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) return failure(ctx.error(), "context");
  if (window) (*ctx)->restore_replay_window(*window);
  auto s = std::make_unique<oscore::Session>(role, std::move(*ctx), random, clock, file.key_update);
  ACEKDC_TRY(state.restore_counts(*s));
  return s;
}

std::string sent_message_summary(const oscore::Session& session, ByteView outer, size_t r_len) {
  auto ov = oscore::peek_option(outer);
  if (!ov) return std::string("key=? (") + oscore::to_string(ov.error()) + ")";
  const size_t d = ov->id_detail ? ov->id_detail->size() : 0;
  uint64_t gen = session.updates_completed();
  std::string out = "key=g";
  if (d != 0 && d == r_len) {
    out += std::to_string(gen) + "r1";
  } else {
    if (d != 0) ++gen;  // CTX_NEW (R1|R2): the key the update is about to confirm
    out += std::to_string(gen);
  }
  if (ov->partial_iv.empty()) {
    out += " piv=-";
  } else {
    uint64_t piv = 0;
    for (uint8_t b : ov->partial_iv) piv = (piv << 8) | b;
    out += " piv=" + std::to_string(piv);
  }
  out += " d=" + std::to_string(d);
  out += std::string(" state=") + oscore::to_string(session.state());
  return out;
}

}  // namespace acekdc::app
