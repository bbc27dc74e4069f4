#include "cbor/edn.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cbor/detail.h"
#include "core/hex.h"

namespace acekdc::cbor {

// ================================================================ printing

namespace {

constexpr int kMaxEmbeddedDepth = 8;  // nested << >> levels shown by DiagOptions::embedded
constexpr size_t kPrettyWidth = 72;   // a container longer than this breaks into lines

using u128 = unsigned __int128;

std::string u128_decimal(u128 v) {
  char buf[48];
  size_t i = sizeof buf;
  do {
    buf[--i] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  } while (v);
  return std::string(buf + i, sizeof buf - i);
}

// format_float prints a finite double: the shortest digits that read back to the
// same value, fixed notation when the decimal exponent is in [-7, 21) (as
// JavaScript does), otherwise d.ddde[+-]N; always with a fractional digit.
std::string format_float(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  // sci is "[-]d[.ddd]e[+-]NN"
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  const int exp = std::atoi(sci.c_str() + epos + 1);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  if (exp >= -7 && exp < 21) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out = digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return sign + out;
  }
  std::string mant = digits.substr(0, 1) + "." + (digits.size() > 1 ? digits.substr(1) : "0");
  return sign + mant + "e" + (exp < 0 ? "-" : "+") + std::to_string(std::abs(exp));
}

void append_quoted_text(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

class Printer {
 public:
  explicit Printer(const DiagOptions& o) : opts_(o) {}

  void print(const Value& v, std::string& out, int indent, int embed_depth) {
    switch (v.type()) {
      case Value::Type::kUnsigned:
        out += u128_decimal(v.raw_uint());
        return;
      case Value::Type::kNegative:
        out += '-';
        out += u128_decimal(static_cast<u128>(v.raw_uint()) + 1);
        return;
      case Value::Type::kBytes:
      case Value::Type::kText:
        print_string(v, out, indent, embed_depth);
        return;
      case Value::Type::kArray:
      case Value::Type::kMap:
        print_container(v, out, indent, embed_depth);
        return;
      case Value::Type::kTag:
        out += u128_decimal(v.tag_number());
        out += '(';
        if (const Value* c = v.tag_content()) {
          // Tags 24 (encoded CBOR data item) and 63 (encoded CBOR sequence) say
          // that their byte string holds CBOR: show any well-formed content.
          const bool cbor_inside = v.tag_number() == 24 || v.tag_number() == 63;
          if (cbor_inside && c->is_bytes()) print_string(*c, out, indent, embed_depth, true);
          else print(*c, out, indent, embed_depth);
        }
        out += ')';
        return;
      case Value::Type::kSimple:
        switch (v.simple_value()) {
          case 20: out += "false"; return;
          case 21: out += "true"; return;
          case 22: out += "null"; return;
          case 23: out += "undefined"; return;
          default:
            out += "simple(" + std::to_string(v.simple_value()) + ")";
            return;
        }
      case Value::Type::kFloat:
        print_float(v, out);
        return;
    }
  }

 private:
  static void print_float(const Value& v, std::string& out) {
    const double d = *v.as_float();
    if (std::isnan(d)) out += "NaN";
    else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
    else out += format_float(d);
    int width = 0;
    switch (v.float_width()) {
      case Value::FloatWidth::kHalf: width = 2; break;
      case Value::FloatWidth::kSingle: width = 4; break;
      case Value::FloatWidth::kDouble: width = 8; break;
      case Value::FloatWidth::kPreferred: return;
    }
    int preferred = std::isnan(d) ? 2 : detail::preferred_width(d);
    if (width == 2) {
      // A half width that cannot hold the value encodes as the next exact width.
      uint16_t h;
      if (!detail::half_exact(d, h)) width = 4;
    }
    if (width == 4) {
      uint32_t f;
      if (!detail::single_exact(d, f)) width = 8;
    }
    if (width == preferred) return;
    out += width == 2 ? "_1" : width == 4 ? "_2" : "_3";
  }

  // has_nan: EDN writes every NaN as NaN (payload and sign lost), so content
  // with a NaN is not shown as << >>.
  static bool has_nan(const Value& v) {
    switch (v.type()) {
      case Value::Type::kFloat: return std::isnan(*v.as_float());
      case Value::Type::kTag: return has_nan(*v.tag_content());
      case Value::Type::kArray:
        return std::any_of(v.as_array()->begin(), v.as_array()->end(), has_nan);
      case Value::Type::kMap:
        for (const auto& [k, x] : *v.as_map())
          if (has_nan(k) || has_nan(x)) return true;
        return false;
      default: return false;
    }
  }

  // embedded_items returns true and the items if b is a non-empty sequence of
  // well-formed items whose re-encoding is exactly b (and that print exactly).
  // Unless `any` (content of tag 24/63), it must be exactly one array, map or
  // tag: short runs of raw bytes (keys, nonces) are often well-formed CBOR by
  // chance (h'0102' is the sequence 1, 2) and stay in hex.
  static bool embedded_items(ByteView b, std::vector<Value>& items, bool any) {
    if (b.empty()) return false;
    if (!any) {
      const uint8_t major = b[0] >> 5;
      if (major != 4 && major != 5 && major != 6) return false;
      auto n = item_size(b);
      if (!n || *n != b.size()) return false;
    }
    size_t off = 0;
    Bytes again;
    while (off < b.size()) {
      size_t used = 0;
      auto v = decode_prefix(b.subspan(off), used);
      if (!v || has_nan(*v)) return false;
      Writer w(again);
      Encoder enc(w);
      encode(*v, enc);
      items.push_back(std::move(*v));
      off += used;
    }
    return equal(again, b);
  }

  void print_string(const Value& v, std::string& out, int indent, int embed_depth,
                    bool any_embedded = false) {
    const bool text = v.is_text();
    const ByteView payload = v.bytes_view();
    auto one = [&](ByteView part) {
      if (text) {
        append_quoted_text(out, as_string(part));
        return;
      }
      std::vector<Value> items;
      if (opts_.embedded && embed_depth < kMaxEmbeddedDepth && embedded_items(part, items, any_embedded)) {
        out += "<<";
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += ", ";
          print(items[i], out, indent, embed_depth + 1);
        }
        out += ">>";
        return;
      }
      out += "h'";
      out += to_hex(part);
      out += '\'';
    };
    if (!v.indefinite()) {
      one(payload);
      return;
    }
    if (v.chunks().empty() && payload.empty()) {
      // RFC 8949 §8.1: an indefinite-length string with no chunks is ''_ or ""_
      // ("(_ )" would not say which type).
      out += text ? "\"\"_" : "''_";
      return;
    }
    out += "(_ ";
    // The chunks as encode() writes them: sizes clamped to the payload, and any
    // rest of the payload not covered by chunks() as a last chunk.
    std::vector<size_t> sizes;
    size_t off = 0;
    for (size_t len : v.chunks()) {
      sizes.push_back(std::min(len, payload.size() - off));
      off += sizes.back();
    }
    if (off < payload.size()) sizes.push_back(payload.size() - off);
    off = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (i) out += ", ";
      one(payload.subspan(off, sizes[i]));
      off += sizes[i];
    }
    out += ')';
  }

  void print_container(const Value& v, std::string& out, int indent, int embed_depth) {
    const bool is_map = v.is_map();
    const size_t n = is_map ? v.as_map()->size() : v.as_array()->size();
    const char open = is_map ? '{' : '[';
    const char close = is_map ? '}' : ']';
    auto element = [&](size_t i, std::string& o, int ind) {
      if (is_map) {
        const auto& [k, x] = (*v.as_map())[i];
        print(k, o, ind, embed_depth);
        o += ": ";
        print(x, o, ind, embed_depth);
      } else {
        print((*v.as_array())[i], o, ind, embed_depth);
      }
    };
    std::string compact;
    compact += open;
    if (v.indefinite()) compact += "_ ";
    {
      Printer flat(DiagOptions{false, opts_.embedded});
      for (size_t i = 0; i < n; ++i) {
        if (i) compact += ", ";
        if (is_map) {
          const auto& [k, x] = (*v.as_map())[i];
          flat.print(k, compact, 0, embed_depth);
          compact += ": ";
          flat.print(x, compact, 0, embed_depth);
        } else {
          flat.print((*v.as_array())[i], compact, 0, embed_depth);
        }
      }
    }
    compact += close;
    if (!opts_.pretty || n == 0 || compact.size() + static_cast<size_t>(indent) <= kPrettyWidth) {
      out += compact;
      return;
    }
    out += open;
    if (v.indefinite()) out += '_';
    const std::string pad(static_cast<size_t>(indent + 2), ' ');
    for (size_t i = 0; i < n; ++i) {
      out += '\n';
      out += pad;
      element(i, out, indent + 2);
      if (i + 1 < n) out += ',';
    }
    out += '\n';
    out += std::string(static_cast<size_t>(indent), ' ');
    out += close;
  }

  DiagOptions opts_;
};

}  // namespace

std::string to_diag(const Value& v, const DiagOptions& opts) {
  std::string out;
  Printer(opts).print(v, out, 0, 0);
  return out;
}

std::string diag_of_bytes(ByteView cbor, const DiagOptions& opts) {
  auto v = decode(cbor);
  if (!v) return std::string("error: ") + to_string(v.error());
  return to_diag(*v, opts);
}

// ================================================================ parsing

namespace {

constexpr int kMaxParseDepth = 128;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Expected<Value, EdnError> run() {
    skip_ws();
    Value v;
    if (ok() && !item(v, 0)) return unexpected(err_);
    skip_ws();
    if (ok() && pos_ != s_.size()) fail("unexpected text after the item");
    if (!ok()) return unexpected(err_);
    return v;
  }

  // sequence parses items separated by commas up to (not including) `close`.
  bool sequence(std::vector<Value>& out, std::string_view close, int depth) {
    skip_ws();
    if (!ok()) return false;
    if (starts(close)) return true;
    for (;;) {
      Value v;
      if (!item(v, depth)) return false;
      out.push_back(std::move(v));
      skip_ws();
      if (!ok()) return false;
      if (eat(',')) {
        skip_ws();
        if (!ok()) return false;
        continue;
      }
      if (starts(close)) return true;
      return fail("expected ',' or '" + std::string(close) + "'");
    }
  }

 private:
  bool ok() const { return err_.message.empty(); }
  bool fail(std::string msg) { return fail_at(pos_, std::move(msg)); }
  bool fail_at(size_t at, std::string msg) {
    if (ok()) {
      err_.offset = at;
      err_.message = std::move(msg);
    }
    return false;
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek(size_t k = 0) const { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; }
  bool starts(std::string_view t) const { return s_.substr(pos_, t.size()) == t; }
  bool eat(char c) {
    if (peek() == c && !at_end()) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool eat(std::string_view t) {
    if (!starts(t)) return false;
    pos_ += t.size();
    return true;
  }
  static bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  // skip_ws skips white space, /comments/ and # comments to the end of the line.
  void skip_ws() {
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && s_[pos_] != '\n') ++pos_;
      } else if (c == '/') {
        const size_t start = pos_;
        const size_t e = s_.find('/', pos_ + 1);
        if (e == std::string_view::npos) {
          fail_at(start, "unterminated /comment/");
          pos_ = s_.size();
          return;
        }
        pos_ = e + 1;
      } else {
        return;
      }
    }
  }

  bool item(Value& out, int depth) {
    if (depth > kMaxParseDepth) return fail("nesting too deep");
    if (at_end()) return fail("expected a data item");
    const char c = peek();
    if (c == '[') return array(out, depth);
    if (c == '{') return map(out, depth);
    if (c == '"') return text_string(out);
    if (c == '\'') return single_quoted(out);
    if (c == 'h' && peek(1) == '\'') return hex_bytes(out);
    if (starts("b64'")) return b64_bytes(out);
    if (starts("<<")) return embedded(out, depth);
    if (starts("(_")) return indefinite_string(out, depth);
    if (c == '-' || (c >= '0' && c <= '9')) return number(out, depth);
    if (starts("simple(")) return simple(out);
    // keywords
    const size_t start = pos_;
    while (is_ident(peek()) && !at_end() && peek() != '_') ++pos_;
    const std::string_view word = s_.substr(start, pos_ - start);
    if (word == "true") out = Value::boolean(true);
    else if (word == "false") out = Value::boolean(false);
    else if (word == "null") out = Value::null();
    else if (word == "undefined") out = Value::undefined();
    else if (word == "NaN") return special_float(out, std::numeric_limits<double>::quiet_NaN());
    else if (word == "Infinity") return special_float(out, std::numeric_limits<double>::infinity());
    else return fail_at(start, "unexpected character");
    if (is_ident(peek())) return fail("unexpected character after keyword");
    return true;
  }

  bool array(Value& out, int depth) {
    ++pos_;  // [
    skip_ws();
    const bool indef = eat('_');
    if (indef && !is_sep_after_underscore()) return fail("expected space after '_'");
    std::vector<Value> items;
    if (!sequence(items, "]", depth + 1)) return false;
    ++pos_;  // ]
    out = Value::array(std::move(items));
    out.set_indefinite(indef);
    return true;
  }

  bool is_sep_after_underscore() const {
    const char c = peek();
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ']' || c == '}' || c == ')' ||
           c == '/' || c == '#';
  }

  bool map(Value& out, int depth) {
    ++pos_;  // {
    skip_ws();
    const bool indef = eat('_');
    if (indef && !is_sep_after_underscore()) return fail("expected space after '_'");
    MapEntries entries;
    skip_ws();
    if (!ok()) return false;
    if (!eat('}')) {
      for (;;) {
        Value k, v;
        if (!item(k, depth + 1)) return false;
        skip_ws();
        if (!ok()) return false;
        if (!eat(':')) return fail("expected ':'");
        skip_ws();
        if (!ok()) return false;
        if (!item(v, depth + 1)) return false;
        entries.emplace_back(std::move(k), std::move(v));
        skip_ws();
        if (!ok()) return false;
        if (eat(',')) {
          skip_ws();
          if (!ok()) return false;
          continue;
        }
        if (eat('}')) break;
        return fail("expected ',' or '}'");
      }
    }
    out = Value::map(std::move(entries));
    out.set_indefinite(indef);
    return true;
  }

  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(uint32_t& out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return fail("expected 4 hex digits after \\u");
      out = (out << 4) | static_cast<uint32_t>(d);
      ++pos_;
    }
    return true;
  }

  // quoted reads a string delimited by `q` with JSON-style escapes (plus \' ).
  bool quoted(char q, std::string& s) {
    const size_t start = pos_;
    ++pos_;
    for (;;) {
      if (at_end()) return fail_at(start, "unterminated string");
      const char c = s_[pos_++];
      if (c == q) return true;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (at_end()) return fail_at(start, "unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': s += '"'; break;
        case '\'': s += '\''; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          const size_t at = pos_ - 2;
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (!eat("\\u") || !hex4(lo) || lo < 0xdc00 || lo > 0xdfff)
              return fail_at(at, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return fail_at(at, "unpaired surrogate in \\u escape");
          }
          append_utf8(s, cp);
          break;
        }
        default:
          return fail_at(pos_ - 2, "unknown escape");
      }
    }
  }

  bool text_string(Value& out) {
    const size_t start = pos_;
    std::string s;
    if (!quoted('"', s)) return false;
    if (!detail::valid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()))
      return fail_at(start, "invalid UTF-8 in text string");
    out = Value::text(s);
    return empty_indefinite_suffix(out, start);
  }

  bool single_quoted(Value& out) {
    const size_t start = pos_;
    std::string s;
    if (!quoted('\'', s)) return false;
    out = Value::bytes(as_bytes(s));
    return empty_indefinite_suffix(out, start);
  }

  // empty_indefinite_suffix: ''_ / ""_ / h''_ is an indefinite-length string with
  // no chunks (RFC 8949 §8.1); '_' after a non-empty string is an error.
  bool empty_indefinite_suffix(Value& out, size_t start) {
    if (peek() != '_') return true;
    if (!out.bytes_view().empty() || is_ident(peek(1)))
      return fail("'_' after a string is only for the empty indefinite-length forms ''_ and \"\"_");
    ++pos_;
    out.set_indefinite(true);
    return true;
  }

  bool hex_bytes(Value& out) {
    const size_t start = pos_;
    pos_ += 2;  // h'
    Bytes b;
    int hi = -1;
    for (;;) {
      if (at_end()) return fail_at(start, "unterminated h'' string");
      const char c = s_[pos_++];
      if (c == '\'') break;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return fail_at(pos_ - 1, "invalid hex digit");
      if (hi < 0) {
        hi = d;
      } else {
        b.push_back(static_cast<uint8_t>(hi << 4 | d));
        hi = -1;
      }
    }
    if (hi >= 0) return fail_at(start, "odd number of hex digits");
    out = Value::bytes(std::move(b));
    return empty_indefinite_suffix(out, start);
  }

  // b64_bytes: b64'..' in base64 or base64url, padding optional, white space ignored.
  bool b64_bytes(Value& out) {
    const size_t start = pos_;
    pos_ += 4;  // b64'
    Bytes b;
    uint32_t acc = 0;
    int bits = 0;
    int pad = 0;
    size_t nchars = 0;
    for (;;) {
      if (at_end()) return fail_at(start, "unterminated b64'' string");
      const char c = s_[pos_++];
      if (c == '\'') break;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
      if (c == '=') {
        ++pad;
        continue;
      }
      if (pad) return fail_at(pos_ - 1, "base64 data after padding");
      int d;
      if (c >= 'A' && c <= 'Z') d = c - 'A';
      else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
      else if (c >= '0' && c <= '9') d = c - '0' + 52;
      else if (c == '+' || c == '-') d = 62;
      else if (c == '/' || c == '_') d = 63;
      else return fail_at(pos_ - 1, "invalid base64 character");
      ++nchars;
      acc = (acc << 6) | static_cast<uint32_t>(d);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        b.push_back(static_cast<uint8_t>(acc >> bits));
        acc &= (1u << bits) - 1;
      }
    }
    if (nchars % 4 == 1) return fail_at(start, "invalid base64 length");
    if (pad && (nchars + static_cast<size_t>(pad)) % 4 != 0) return fail_at(start, "invalid base64 padding");
    if (acc != 0) return fail_at(start, "non-zero base64 padding bits");
    out = Value::bytes(std::move(b));
    return true;
  }

  bool embedded(Value& out, int depth) {
    pos_ += 2;  // <<
    std::vector<Value> items;
    if (!sequence(items, ">>", depth + 1)) return false;
    pos_ += 2;  // >>
    Bytes b;
    Writer w(b);
    Encoder enc(w);
    for (const Value& v : items) encode(v, enc);
    out = Value::bytes(std::move(b));
    return true;
  }

  bool indefinite_string(Value& out, int depth) {
    const size_t start = pos_;
    pos_ += 2;  // (_
    if (!is_sep_after_underscore()) return fail("expected space after '(_'");
    std::vector<Value> chunks;
    if (!sequence(chunks, ")", depth + 1)) return false;
    ++pos_;  // )
    if (chunks.empty()) {
      // "(_ )" does not say which string type; RFC 8949 §8.1 writes ''_ or ""_.
      // Accept it as the empty indefinite-length byte string.
      out = Value::bytes(ByteView());
      out.set_indefinite(true);
      return true;
    }
    const bool text = chunks[0].is_text();
    std::string payload;
    std::vector<size_t> sizes;
    for (const Value& c : chunks) {
      if ((text && !c.is_text()) || (!text && !c.is_bytes()) || c.indefinite())
        return fail_at(start, "chunks of (_ ) must be definite strings of one type");
      payload.append(as_string(c.bytes_view()));
      sizes.push_back(c.bytes_view().size());
    }
    out = text ? Value::text(payload) : Value::bytes(as_bytes(payload));
    out.set_indefinite(true);
    out.set_chunks(std::move(sizes));
    return true;
  }

  bool special_float(Value& out, double d) {
    out = Value::floating(d);
    if (is_ident(peek()) && peek() != '_') return fail("unexpected character after keyword");
    return float_indicator(out);
  }

  // float_indicator reads an optional _1/_2/_3 after a float and applies it.
  bool float_indicator(Value& out) {
    if (peek() != '_') return true;
    const size_t at = pos_;
    const char d = peek(1);
    if (d < '1' || d > '3' || is_ident(peek(2))) return fail_at(at, "invalid float encoding indicator");
    pos_ += 2;
    const double v = *out.as_float();
    uint16_t h;
    uint32_t f;
    Value::FloatWidth w = Value::FloatWidth::kDouble;
    if (d == '1') {
      if (!detail::half_exact(v, h)) return fail_at(at, "value is not exact as a half float");
      w = Value::FloatWidth::kHalf;
    } else if (d == '2') {
      if (!detail::single_exact(v, f)) return fail_at(at, "value is not exact as a single float");
      w = Value::FloatWidth::kSingle;
    }
    out = Value::floating(v, w);
    return true;
  }

  bool simple(Value& out) {
    pos_ += 7;  // simple(
    skip_ws();
    const size_t at = pos_;
    uint64_t n = 0;
    if (!(peek() >= '0' && peek() <= '9')) return fail("expected a number in simple()");
    while (peek() >= '0' && peek() <= '9' && !at_end()) {
      n = n * 10 + static_cast<uint64_t>(peek() - '0');
      if (n > 255) return fail_at(at, "simple value out of range");
      ++pos_;
    }
    skip_ws();
    if (!eat(')')) return fail("expected ')'");
    out = Value::simple(static_cast<uint8_t>(n));
    return true;
  }

  bool number(Value& out, int depth) {
    const size_t start = pos_;
    const bool neg = eat('-');
    if (starts("Infinity")) {
      pos_ += 8;
      return special_float(out, -std::numeric_limits<double>::infinity());
    }
    if (!(peek() >= '0' && peek() <= '9')) return fail_at(start, "expected digits");
    // Radix prefixes.
    int radix = 10;
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X')) radix = 16;
    else if (peek() == '0' && (peek(1) == 'o' || peek(1) == 'O')) radix = 8;
    else if (peek() == '0' && (peek(1) == 'b' || peek(1) == 'B')) radix = 2;
    if (radix != 10) {
      pos_ += 2;
      return integer_digits(out, start, neg, radix, depth);
    }
    // Decimal: integer or float?
    size_t e = pos_;
    while (e < s_.size() && s_[e] >= '0' && s_[e] <= '9') ++e;
    const bool is_float = e < s_.size() && (s_[e] == '.' || s_[e] == 'e' || s_[e] == 'E');
    if (!is_float) return integer_digits(out, start, neg, 10, depth);
    if (s_[e] == '.') {
      ++e;
      const size_t frac = e;
      while (e < s_.size() && s_[e] >= '0' && s_[e] <= '9') ++e;
      if (e == frac) return fail_at(e, "expected digits after '.'");
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      ++e;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      const size_t ed = e;
      while (e < s_.size() && s_[e] >= '0' && s_[e] <= '9') ++e;
      if (e == ed) return fail_at(e, "expected exponent digits");
    }
    // from_chars does not take a leading '+', and we pass the sign separately.
    double d = 0;
    auto r = std::from_chars(s_.data() + pos_, s_.data() + e, d);
    if (r.ec != std::errc() || r.ptr != s_.data() + e) return fail_at(start, "number out of range");
    pos_ = e;
    out = Value::floating(neg ? -d : d);
    if (is_ident(peek()) && peek() != '_') return fail("unexpected character after number");
    return float_indicator(out);
  }

  bool integer_digits(Value& out, size_t start, bool neg, int radix, int depth) {
    u128 mag = 0;
    size_t ndigits = 0;
    const u128 limit = static_cast<u128>(1) << 64;  // magnitude of -2^64
    for (;;) {
      const char c = peek();
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else break;
      if (d >= radix || at_end()) break;
      mag = mag * static_cast<u128>(radix) + static_cast<u128>(d);
      if (mag > limit) return fail_at(start, "integer out of range");
      ++ndigits;
      ++pos_;
    }
    if (ndigits == 0) return fail("expected digits");
    if (!neg && mag == limit) return fail_at(start, "integer out of range");
    if (neg && mag != 0) out = Value::negative(static_cast<uint64_t>(mag - 1));
    else out = Value::uint(static_cast<uint64_t>(mag));
    // Encoding indicator _0.._3: the argument width. Value always encodes the
    // preferred (shortest) head, so the indicator is checked and not kept.
    if (peek() == '_') {
      const size_t at = pos_;
      const char w = peek(1);
      if (w < '0' || w > '3' || is_ident(peek(2))) return fail_at(at, "invalid integer encoding indicator");
      const uint64_t arg = out.raw_uint();
      const uint64_t max = w == '0' ? 0xff : w == '1' ? 0xffff : w == '2' ? 0xffffffffu : UINT64_MAX;
      if (arg > max) return fail_at(at, "integer does not fit the encoding indicator");
      pos_ += 2;
    }
    if (peek() == '(') {  // tag
      if (neg) return fail_at(start, "tag number must be unsigned");
      ++pos_;
      skip_ws();
      Value content;
      if (!ok() || !item(content, depth + 1)) return false;
      skip_ws();
      if (!ok()) return false;
      if (!eat(')')) return fail("expected ')' to close the tag");
      out = Value::tag(out.raw_uint(), std::move(content));
      return true;
    }
    if (is_ident(peek()) || peek() == '.') return fail("unexpected character after number");
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  EdnError err_;
};

}  // namespace

Expected<Value, EdnError> from_diag(std::string_view text) { return Parser(text).run(); }

}  // namespace acekdc::cbor
