#include "cbor/cbor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cbor/detail.h"

namespace acekdc::cbor {

const char* to_string(Error e) {
  switch (e) {
    case Error::kNone: return "no error";
    case Error::kTruncated: return "truncated input";
    case Error::kMalformed: return "malformed CBOR";
    case Error::kTypeMismatch: return "unexpected CBOR type";
    case Error::kOverflow: return "integer overflow";
    case Error::kTooDeep: return "nesting too deep";
    case Error::kTooLarge: return "length or count too large";
    case Error::kNonDeterministic: return "not deterministically encoded";
    case Error::kIndefinite: return "indefinite length not allowed";
    case Error::kInvalidUtf8: return "invalid UTF-8 in text string";
    case Error::kDuplicateKey: return "duplicate map key";
    case Error::kTrailingBytes: return "trailing bytes after item";
  }
  return "unknown CBOR error";
}

namespace detail {

double half_to_double(uint16_t h) {
  const uint64_t sign = static_cast<uint64_t>(h >> 15) << 63;
  const unsigned exp = (h >> 10) & 0x1f;
  const unsigned mant = h & 0x3ff;
  if (exp == 0x1f) return bits_double(sign | (uint64_t{0x7ff} << 52) | (uint64_t{mant} << 42));
  double v = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(mant + 1024, int(exp) - 25);
  return sign ? -v : v;
}

double single_to_double(uint32_t f) {
  if (((f >> 23) & 0xff) == 0xff) {
    const uint64_t sign = uint64_t{f >> 31} << 63;
    return bits_double(sign | (uint64_t{0x7ff} << 52) | (uint64_t{f & 0x7fffff} << 29));
  }
  float x;
  std::memcpy(&x, &f, 4);
  return static_cast<double>(x);
}

bool half_exact(double d, uint16_t& out) {
  const uint64_t b = double_bits(d);
  const uint16_t sign = static_cast<uint16_t>((b >> 48) & 0x8000);
  const int exp_field = static_cast<int>((b >> 52) & 0x7ff);
  const uint64_t mant = b & ((uint64_t{1} << 52) - 1);
  if (exp_field == 0x7ff) {  // infinity or NaN: payload must fit 10 bits
    if (mant & ((uint64_t{1} << 42) - 1)) return false;
    out = static_cast<uint16_t>(sign | 0x7c00 | (mant >> 42));
    return true;
  }
  if (exp_field == 0) {
    if (mant != 0) return false;  // double subnormals are far below half range
    out = sign;
    return true;
  }
  const int e = exp_field - 1023;
  if (e > 15 || e < -24) return false;
  if (e >= -14) {
    if (mant & ((uint64_t{1} << 42) - 1)) return false;
    out = static_cast<uint16_t>(sign | ((e + 15) << 10) | (mant >> 42));
    return true;
  }
  // half subnormal: value = k * 2^-24 with 1 <= k < 1024
  const uint64_t full = (uint64_t{1} << 52) | mant;
  const int shift = 28 - e;  // 43..52
  if (full & ((uint64_t{1} << shift) - 1)) return false;
  out = static_cast<uint16_t>(sign | (full >> shift));
  return true;
}

bool single_exact(double d, uint32_t& out) {
  const uint64_t b = double_bits(d);
  if (((b >> 52) & 0x7ff) == 0x7ff) {
    const uint64_t mant = b & ((uint64_t{1} << 52) - 1);
    if (mant & ((uint64_t{1} << 29) - 1)) return false;
    out = static_cast<uint32_t>(((b >> 63) << 31) | (uint32_t{0xff} << 23) | (mant >> 29));
    return true;
  }
  const float f = static_cast<float>(d);
  if (static_cast<double>(f) != d) return false;
  std::memcpy(&out, &f, 4);
  // -0.0 == 0.0: make sure the sign survived (it does: the cast keeps it).
  return true;
}

bool valid_utf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return false;
    i += len;
  }
  return true;
}

Error parse_head(const uint8_t* p, const uint8_t* end, Head& h) {
  if (p >= end) return Error::kTruncated;
  const uint8_t ib = *p;
  h.major = static_cast<Major>(ib >> 5);
  h.ai = ib & 0x1f;
  if (h.ai < 24 || h.ai == 31) {
    h.arg = h.ai < 24 ? h.ai : 0;
    h.size = 1;
    return Error::kNone;
  }
  if (h.ai >= 28) return Error::kMalformed;  // 28..30 reserved
  const size_t n = size_t{1} << (h.ai - 24);
  if (static_cast<size_t>(end - p) - 1 < n) return Error::kTruncated;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[1 + i];
  h.arg = v;
  h.size = 1 + n;
  return Error::kNone;
}

}  // namespace detail

namespace {

using detail::Head;

// preferred_arg: the head uses the shortest argument form (not for floats).
bool preferred_arg(const Head& h) {
  switch (h.ai) {
    case 24: return h.arg >= 24;
    case 25: return h.arg > 0xff;
    case 26: return h.arg > 0xffff;
    case 27: return h.arg > 0xffffffffu;
    default: return true;
  }
}

// preferred_float: a float head (ai 25..27) is in preferred form; NaN must be f97e00.
bool preferred_float(const Head& h) {
  if (h.ai == 25) {
    const bool nan = (h.arg & 0x7c00) == 0x7c00 && (h.arg & 0x3ff) != 0;
    return !nan || h.arg == 0x7e00;
  }
  const double d = h.ai == 26 ? detail::single_to_double(static_cast<uint32_t>(h.arg))
                              : detail::bits_double(h.arg);
  if (std::isnan(d)) return false;
  return detail::preferred_width(d) == (h.ai == 26 ? 4 : 8);
}

int compare_bytes(const uint8_t* a, size_t an, const uint8_t* b, size_t bn) {
  const size_t n = std::min(an, bn);
  if (n) {
    const int c = std::memcmp(a, b, n);
    if (c) return c;
  }
  return an < bn ? -1 : an > bn ? 1 : 0;
}

// Checker walks one complete item, checking well-formedness and limits. Recursion
// depth is bounded by Limits::max_depth.
class Checker {
 public:
  Checker(const uint8_t* end, const Limits& lim) : end_(end), lim_(lim) {}
  Error item(const uint8_t*& p, uint32_t depth);

 private:
  Error string_body(const uint8_t*& q, Major major, uint64_t len) {
    if (len > lim_.max_length) return Error::kTooLarge;
    if (len > static_cast<uint64_t>(end_ - q)) return Error::kTruncated;
    if (major == Major::kText && lim_.check_utf8 && !detail::valid_utf8(q, static_cast<size_t>(len)))
      return Error::kInvalidUtf8;
    q += len;
    return Error::kNone;
  }
  Error container(const uint8_t*& q, const Head& h, uint32_t depth);
  const uint8_t* end_;
  const Limits& lim_;
};

Error Checker::item(const uint8_t*& p, uint32_t depth) {
  Head h;
  Error e = detail::parse_head(p, end_, h);
  if (e != Error::kNone) return e;
  const uint8_t* q = p + h.size;
  const bool indef = h.ai == 31;
  if (indef) {
    switch (h.major) {
      case Major::kBytes:
      case Major::kText:
      case Major::kArray:
      case Major::kMap:
        if (!lim_.allow_indefinite) return Error::kIndefinite;
        if (lim_.deterministic) return Error::kNonDeterministic;
        break;
      default:
        return Error::kMalformed;  // ai 31 on 0/1/6, or a break where an item belongs
    }
  } else if (lim_.deterministic && h.major != Major::kSimple && !preferred_arg(h)) {
    return Error::kNonDeterministic;
  }
  switch (h.major) {
    case Major::kUnsigned:
    case Major::kNegative:
      break;
    case Major::kBytes:
    case Major::kText:
      if (!indef) {
        e = string_body(q, h.major, h.arg);
        if (e != Error::kNone) return e;
        break;
      }
      for (uint64_t total = 0;;) {
        if (q >= end_) return Error::kTruncated;
        if (*q == 0xff) {
          ++q;
          break;
        }
        Head c;
        e = detail::parse_head(q, end_, c);
        if (e != Error::kNone) return e;
        if (c.major != h.major || c.ai == 31) return Error::kMalformed;
        q += c.size;
        total += c.arg;
        if (c.arg > lim_.max_length || total > lim_.max_length) return Error::kTooLarge;
        e = string_body(q, h.major, c.arg);
        if (e != Error::kNone) return e;
      }
      break;
    case Major::kArray:
    case Major::kMap:
      if (depth >= lim_.max_depth) return Error::kTooDeep;
      e = container(q, h, depth + 1);
      if (e != Error::kNone) return e;
      break;
    case Major::kTag:
      if (depth >= lim_.max_depth) return Error::kTooDeep;
      e = item(q, depth + 1);
      if (e != Error::kNone) return e;
      break;
    case Major::kSimple:
      if (h.ai == 24 && h.arg < 32 && !(lim_.allow_legacy_simple && h.arg >= 24))
        return Error::kMalformed;
      if (lim_.deterministic && h.ai >= 25 && h.ai <= 27 && !preferred_float(h))
        return Error::kNonDeterministic;
      break;
  }
  p = q;
  return Error::kNone;
}

Error Checker::container(const uint8_t*& q, const Head& h, uint32_t depth) {
  const bool is_map = h.major == Major::kMap;
  const bool indef = h.ai == 31;
  if (!indef) {
    // No count-vs-input check here: nothing is allocated, and the loop stops at
    // the first item that is missing (so a misplaced break is kMalformed).
    if (h.arg > lim_.max_length) return Error::kTooLarge;
  }
  const bool need_keys = is_map && (lim_.deterministic || lim_.reject_duplicate_keys);
  std::vector<ByteView> keys;  // only for reject_duplicate_keys outside deterministic mode
  const uint8_t* prev_key = nullptr;
  size_t prev_len = 0;
  for (uint64_t i = 0;; ++i) {
    if (indef) {
      if (q >= end_) return Error::kTruncated;
      if (*q == 0xff) {
        ++q;
        break;
      }
      if (i >= lim_.max_length) return Error::kTooLarge;
    } else if (i == h.arg) {
      break;
    }
    const uint8_t* key = q;
    Error e = item(q, depth);
    if (e != Error::kNone) return e;
    if (!is_map) continue;
    const size_t key_len = static_cast<size_t>(q - key);
    if (need_keys) {
      if (lim_.deterministic) {
        if (prev_key) {
          const int c = compare_bytes(prev_key, prev_len, key, key_len);
          if (c == 0) return Error::kDuplicateKey;
          if (c > 0) return Error::kNonDeterministic;
        }
        prev_key = key;
        prev_len = key_len;
      } else {
        // Duplicates are found by comparing encoded keys, which equals comparing values
        // only when every key is in preferred serialization (0 and 0x1800 are the same
        // key): so a key in any other form is refused here.
        Limits det = lim_;
        det.deterministic = true;
        const uint8_t* k = key;
        Error ke = Checker(q, det).item(k, depth);
        if (ke != Error::kNone) return ke;
        keys.emplace_back(key, key_len);
      }
    }
    if (indef && q < end_ && *q == 0xff) return Error::kMalformed;  // break in value position
    e = item(q, depth);
    if (e != Error::kNone) return e;
  }
  if (keys.size() > 1) {
    std::sort(keys.begin(), keys.end(), [](ByteView a, ByteView b) {
      return compare_bytes(a.data(), a.size(), b.data(), b.size()) < 0;
    });
    for (size_t i = 1; i < keys.size(); ++i)
      if (equal(keys[i - 1], keys[i])) return Error::kDuplicateKey;
  }
  return Error::kNone;
}

}  // namespace

Expected<size_t, Error> item_size(ByteView in, const Limits& limits) {
  const uint8_t* p = in.data();
  Checker c(in.data() + in.size(), limits);
  const Error e = c.item(p, 0);
  if (e != Error::kNone) return unexpected(e);
  return static_cast<size_t>(p - in.data());
}

Expected<void, Error> validate(ByteView in, const Limits& limits) {
  auto n = item_size(in, limits);
  if (!n) return unexpected(n.error());
  if (*n != in.size()) return unexpected(Error::kTrailingBytes);
  return {};
}

// ---------------------------------------------------------------- Decoder

Decoder::Decoder(ByteView in, const Limits& limits)
    : p_(in.data()), end_(in.data() + in.size()), limits_(limits), checked_end_(in.data()) {}

bool Decoder::at_end() const { return ok() && p_ == end_; }

bool Decoder::finish() {
  if (!ok()) return false;
  if (p_ != end_) return fail(Error::kTrailingBytes);
  return true;
}

ByteView Decoder::rest() const {
  return ok() ? ByteView(p_, static_cast<size_t>(end_ - p_)) : ByteView();
}

bool Decoder::fail(Error e) {
  if (err_ == Error::kNone) err_ = e == Error::kNone ? Error::kMalformed : e;
  return false;
}

bool Decoder::peek_major(Major& out) const {
  if (!ok() || p_ == end_ || *p_ == 0xff) return false;
  out = static_cast<Major>(*p_ >> 5);
  return true;
}

bool Decoder::next_is(Major m) const {
  Major got;
  return peek_major(got) && got == m;
}

bool Decoder::next_is_null() const { return ok() && p_ != end_ && *p_ == 0xf6; }
bool Decoder::next_is_break() const { return ok() && p_ != end_ && *p_ == 0xff; }

bool Decoder::head(Major& major, uint8_t& ai, uint64_t& arg, size_t& size) {
  if (!ok()) return false;
  if (p_ == end_) return fail(Error::kTruncated);
  if (*p_ == 0xff) return fail(open_indefinite_ ? Error::kTypeMismatch : Error::kMalformed);
  if (limits_.deterministic && p_ >= checked_end_) {
    // Check the whole next item once: key order, preferred forms, no indefinite.
    auto n = item_size(rest(), limits_);
    if (!n) return fail(n.error());
    checked_end_ = p_ + *n;
  }
  Head h;
  const Error e = detail::parse_head(p_, end_, h);
  if (e != Error::kNone) return fail(e);
  if (h.ai == 31 && (h.major == Major::kUnsigned || h.major == Major::kNegative ||
                     h.major == Major::kTag))
    return fail(Error::kMalformed);
  if (h.major == Major::kSimple && h.ai == 24 && h.arg < 32 &&
      !(limits_.allow_legacy_simple && h.arg >= 24))
    return fail(Error::kMalformed);
  major = h.major;
  ai = h.ai;
  arg = h.arg;
  size = h.size;
  return true;
}

bool Decoder::read_head(Major& major, uint8_t& ai, uint64_t& arg) {
  size_t size;
  return head(major, ai, arg, size);
}

bool Decoder::read_arg(Major want, uint64_t& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != want) return fail(Error::kTypeMismatch);
  out = arg;
  p_ += size;
  return true;
}

bool Decoder::read_uint(uint64_t& out) { return read_arg(Major::kUnsigned, out); }

bool Decoder::read_negative(uint64_t& out) { return read_arg(Major::kNegative, out); }

bool Decoder::read_int(int64_t& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != Major::kUnsigned && m != Major::kNegative) return fail(Error::kTypeMismatch);
  if (arg > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(Error::kOverflow);
  out = m == Major::kUnsigned ? static_cast<int64_t>(arg) : -1 - static_cast<int64_t>(arg);
  p_ += size;
  return true;
}

bool Decoder::read_string(Major want, ByteView& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != want) return fail(Error::kTypeMismatch);
  if (ai == 31) return fail(Error::kIndefinite);
  if (arg > limits_.max_length) return fail(Error::kTooLarge);
  const uint8_t* body = p_ + size;
  if (arg > static_cast<uint64_t>(end_ - body)) return fail(Error::kTruncated);
  const size_t n = static_cast<size_t>(arg);
  if (want == Major::kText && limits_.check_utf8 && !detail::valid_utf8(body, n))
    return fail(Error::kInvalidUtf8);
  out = ByteView(body, n);
  p_ = body + n;
  return true;
}

bool Decoder::read_bstr(ByteView& out) { return read_string(Major::kBytes, out); }

bool Decoder::read_tstr(std::string_view& out) {
  ByteView b;
  if (!read_string(Major::kText, b)) return false;
  out = as_string(b);
  return true;
}

bool Decoder::read_container(Major want, bool allow_indef, uint64_t& count, bool& indefinite) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != want) return fail(Error::kTypeMismatch);
  if (ai == 31) {
    if (!allow_indef || !limits_.allow_indefinite) return fail(Error::kIndefinite);
    if (limits_.deterministic) return fail(Error::kNonDeterministic);
    ++open_indefinite_;
    indefinite = true;
    count = 0;
    p_ += size;
    return true;
  }
  if (arg > limits_.max_length) return fail(Error::kTooLarge);
  const uint64_t avail = static_cast<uint64_t>(end_ - p_) - size;
  if (arg > (want == Major::kMap ? avail / 2 : avail)) return fail(Error::kTruncated);
  indefinite = false;
  count = arg;
  p_ += size;
  return true;
}

bool Decoder::read_array(uint64_t& count) {
  bool indef;
  return read_container(Major::kArray, false, count, indef);
}
bool Decoder::read_map(uint64_t& count) {
  bool indef;
  return read_container(Major::kMap, false, count, indef);
}
bool Decoder::read_array_any(uint64_t& count, bool& indefinite) {
  return read_container(Major::kArray, true, count, indefinite);
}
bool Decoder::read_map_any(uint64_t& count, bool& indefinite) {
  return read_container(Major::kMap, true, count, indefinite);
}

bool Decoder::read_break() {
  if (!ok()) return false;
  if (p_ == end_) return fail(Error::kTruncated);
  if (*p_ != 0xff) return fail(Error::kTypeMismatch);
  if (open_indefinite_ == 0) return fail(Error::kMalformed);
  --open_indefinite_;
  ++p_;
  return true;
}

bool Decoder::read_tag(uint64_t& out) { return read_arg(Major::kTag, out); }

bool Decoder::read_simple(uint8_t& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != Major::kSimple || ai > 24) return fail(Error::kTypeMismatch);
  out = static_cast<uint8_t>(arg);
  p_ += size;
  return true;
}

bool Decoder::read_bool(bool& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != Major::kSimple || (ai != 20 && ai != 21)) return fail(Error::kTypeMismatch);
  out = ai == 21;
  p_ += size;
  return true;
}

bool Decoder::read_null() {
  uint8_t v;
  const uint8_t* save = p_;
  if (!read_simple(v)) return false;
  if (v != 22) {
    p_ = save;
    return fail(Error::kTypeMismatch);
  }
  return true;
}

bool Decoder::read_undefined() {
  uint8_t v;
  const uint8_t* save = p_;
  if (!read_simple(v)) return false;
  if (v != 23) {
    p_ = save;
    return fail(Error::kTypeMismatch);
  }
  return true;
}

bool Decoder::read_float(double& out) {
  Major m;
  uint8_t ai;
  uint64_t arg;
  size_t size;
  if (!head(m, ai, arg, size)) return false;
  if (m != Major::kSimple || ai < 25 || ai > 27) return fail(Error::kTypeMismatch);
  if (ai == 25) out = detail::half_to_double(static_cast<uint16_t>(arg));
  else if (ai == 26) out = detail::single_to_double(static_cast<uint32_t>(arg));
  else out = detail::bits_double(arg);
  p_ += size;
  return true;
}

bool Decoder::read_item(ByteView& out) {
  if (!ok()) return false;
  if (p_ != end_ && *p_ == 0xff)
    return fail(open_indefinite_ ? Error::kTypeMismatch : Error::kMalformed);
  auto n = item_size(rest(), limits_);
  if (!n) return fail(n.error());
  out = ByteView(p_, *n);
  p_ += *n;
  if (p_ > checked_end_) checked_end_ = p_;
  return true;
}

bool Decoder::skip() {
  ByteView ignored;
  return read_item(ignored);
}

// ---------------------------------------------------------------- Encoder

Encoder& Encoder::put_head(Major major, uint64_t arg) {
  const uint8_t mt = static_cast<uint8_t>(static_cast<uint8_t>(major) << 5);
  if (arg < 24) {
    w_.put_u8(static_cast<uint8_t>(mt | arg));
  } else if (arg <= 0xff) {
    w_.put_u8(mt | 24);
    w_.put_u8(static_cast<uint8_t>(arg));
  } else if (arg <= 0xffff) {
    w_.put_u8(mt | 25);
    w_.put_u16(static_cast<uint16_t>(arg));
  } else if (arg <= 0xffffffffu) {
    w_.put_u8(mt | 26);
    w_.put_u32(static_cast<uint32_t>(arg));
  } else {
    w_.put_u8(mt | 27);
    w_.put_u64(arg);
  }
  return *this;
}

Encoder& Encoder::put_uint(uint64_t v) { return put_head(Major::kUnsigned, v); }
Encoder& Encoder::put_int(int64_t v) {
  return v >= 0 ? put_head(Major::kUnsigned, static_cast<uint64_t>(v))
                : put_head(Major::kNegative, ~static_cast<uint64_t>(v));
}
Encoder& Encoder::put_negative(uint64_t n) { return put_head(Major::kNegative, n); }
Encoder& Encoder::put_bstr(ByteView b) {
  put_head(Major::kBytes, b.size());
  w_.put_bytes(b);
  return *this;
}
Encoder& Encoder::put_bstr_header(uint64_t len) { return put_head(Major::kBytes, len); }
Encoder& Encoder::put_tstr(std::string_view s) {
  put_head(Major::kText, s.size());
  w_.put_bytes(as_bytes(s));
  return *this;
}
Encoder& Encoder::put_array(uint64_t count) { return put_head(Major::kArray, count); }
Encoder& Encoder::put_map(uint64_t count) { return put_head(Major::kMap, count); }
Encoder& Encoder::put_indefinite_array() {
  w_.put_u8(0x9f);
  return *this;
}
Encoder& Encoder::put_indefinite_map() {
  w_.put_u8(0xbf);
  return *this;
}
Encoder& Encoder::put_indefinite_bstr() {
  w_.put_u8(0x5f);
  return *this;
}
Encoder& Encoder::put_indefinite_tstr() {
  w_.put_u8(0x7f);
  return *this;
}
Encoder& Encoder::put_break() {
  w_.put_u8(0xff);
  return *this;
}
Encoder& Encoder::put_tag(uint64_t tag) { return put_head(Major::kTag, tag); }
Encoder& Encoder::put_bool(bool v) {
  w_.put_u8(v ? 0xf5 : 0xf4);
  return *this;
}
Encoder& Encoder::put_null() {
  w_.put_u8(0xf6);
  return *this;
}
Encoder& Encoder::put_undefined() {
  w_.put_u8(0xf7);
  return *this;
}
Encoder& Encoder::put_simple(uint8_t v) {
  if (v >= 24 && v < 32) {
    bad_ = true;  // not encodable (RFC 8949 §3.3)
    return *this;
  }
  return put_head(Major::kSimple, v);
}
Encoder& Encoder::put_float16_bits(uint16_t bits) {
  w_.put_u8(0xf9);
  w_.put_u16(bits);
  return *this;
}
Encoder& Encoder::put_float32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  w_.put_u8(0xfa);
  w_.put_u32(bits);
  return *this;
}
Encoder& Encoder::put_float64(double v) {
  w_.put_u8(0xfb);
  w_.put_u64(detail::double_bits(v));
  return *this;
}
Encoder& Encoder::put_float(double v) {
  if (std::isnan(v)) return put_float16_bits(0x7e00);
  uint16_t h;
  if (detail::half_exact(v, h)) return put_float16_bits(h);
  uint32_t f;
  if (detail::single_exact(v, f)) {
    w_.put_u8(0xfa);
    w_.put_u32(f);
    return *this;
  }
  return put_float64(v);
}
Encoder& Encoder::put_raw(ByteView encoded) {
  w_.put_bytes(encoded);
  return *this;
}

}  // namespace acekdc::cbor
