#include "cbor/value.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cbor/detail.h"

namespace acekdc::cbor {

// ---------------------------------------------------------------- construction

Value::Value() = default;

Value Value::uint(uint64_t v) {
  Value r;
  r.type_ = Type::kUnsigned;
  r.u_ = v;
  return r;
}

Value Value::integer(int64_t v) {
  return v >= 0 ? uint(static_cast<uint64_t>(v)) : negative(~static_cast<uint64_t>(v));
}

Value Value::negative(uint64_t n) {
  Value r;
  r.type_ = Type::kNegative;
  r.u_ = n;
  return r;
}

Value Value::bytes(ByteView b) {
  Value r;
  r.type_ = Type::kBytes;
  r.u_ = 0;
  r.b_.assign(b.begin(), b.end());
  return r;
}

Value Value::bytes(Bytes&& b) {
  Value r;
  r.type_ = Type::kBytes;
  r.u_ = 0;
  r.b_ = std::move(b);
  return r;
}

Value Value::text(std::string_view s) {
  Value r;
  r.type_ = Type::kText;
  r.u_ = 0;
  r.s_.assign(s);
  return r;
}

Value Value::array(Array items) {
  Value r;
  r.type_ = Type::kArray;
  r.u_ = 0;
  r.arr_ = std::make_shared<Array>(std::move(items));
  return r;
}

Value Value::map(MapEntries entries) {
  Value r;
  r.type_ = Type::kMap;
  r.u_ = 0;
  r.map_ = std::make_shared<MapEntries>(std::move(entries));
  return r;
}

Value Value::tag(uint64_t tag, Value content) {
  Value r;
  r.type_ = Type::kTag;
  r.u_ = tag;
  r.arr_ = std::make_shared<Array>();
  r.arr_->push_back(std::move(content));
  return r;
}

Value Value::boolean(bool v) { return simple(v ? 21 : 20); }
Value Value::null() { return simple(22); }
Value Value::undefined() { return simple(23); }

Value Value::simple(uint8_t v) {
  Value r;
  r.type_ = Type::kSimple;
  r.u_ = v;
  return r;
}

Value Value::floating(double v, FloatWidth w) {
  Value r;
  r.type_ = Type::kFloat;
  r.u_ = 0;
  r.f_ = v;
  r.fw_ = w;
  return r;
}

// ---------------------------------------------------------------- accessors

bool Value::is_int() const {
  return (type_ == Type::kUnsigned || type_ == Type::kNegative) &&
         u_ <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}
bool Value::is_bool() const { return type_ == Type::kSimple && (u_ == 20 || u_ == 21); }
bool Value::is_null() const { return type_ == Type::kSimple && u_ == 22; }
bool Value::is_undefined() const { return type_ == Type::kSimple && u_ == 23; }

std::optional<uint64_t> Value::as_uint() const {
  if (type_ != Type::kUnsigned) return std::nullopt;
  return u_;
}
std::optional<int64_t> Value::as_int() const {
  if (!is_int()) return std::nullopt;
  return type_ == Type::kUnsigned ? static_cast<int64_t>(u_) : -1 - static_cast<int64_t>(u_);
}
std::optional<bool> Value::as_bool() const {
  if (!is_bool()) return std::nullopt;
  return u_ == 21;
}
std::optional<double> Value::as_float() const {
  if (type_ != Type::kFloat) return std::nullopt;
  return f_;
}
const Bytes* Value::as_bytes() const {
  return type_ == Type::kBytes ? &b_ : nullptr;
}
const std::string* Value::as_text() const { return type_ == Type::kText ? &s_ : nullptr; }
const Array* Value::as_array() const { return type_ == Type::kArray ? arr_.get() : nullptr; }
Array* Value::as_array() {
  if (type_ != Type::kArray) return nullptr;
  detach();
  return arr_.get();
}
const MapEntries* Value::as_map() const { return type_ == Type::kMap ? map_.get() : nullptr; }
MapEntries* Value::as_map() {
  if (type_ != Type::kMap) return nullptr;
  detach();
  return map_.get();
}
const Value* Value::tag_content() const {
  if (type_ != Type::kTag || !arr_ || arr_->empty()) return nullptr;
  return &arr_->front();
}
ByteView Value::bytes_view() const {
  if (type_ == Type::kBytes) return b_;
  if (type_ == Type::kText) return ::acekdc::as_bytes(s_);
  return {};
}

void Value::detach() {
  if (arr_ && arr_.use_count() > 1) arr_ = std::make_shared<Array>(*arr_);
  if (map_ && map_.use_count() > 1) map_ = std::make_shared<MapEntries>(*map_);
}

namespace {

// same_data: equality in the CBOR data model (ignores encoding choices: indefinite
// lengths, chunking, float width). Used for map key lookup.
bool same_data(const Value& a, const Value& b);

bool same_floats(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return detail::double_bits(a) == detail::double_bits(b);
}

bool same_data(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kUnsigned:
    case Value::Type::kNegative:
    case Value::Type::kSimple:
      return a.raw_uint() == b.raw_uint();
    case Value::Type::kBytes:
    case Value::Type::kText:
      return equal(a.bytes_view(), b.bytes_view());
    case Value::Type::kFloat:
      return same_floats(*a.as_float(), *b.as_float());
    case Value::Type::kTag:
      return a.tag_number() == b.tag_number() && same_data(*a.tag_content(), *b.tag_content());
    case Value::Type::kArray: {
      const Array& x = *a.as_array();
      const Array& y = *b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same_data(x[i], y[i])) return false;
      return true;
    }
    case Value::Type::kMap: {
      const MapEntries& x = *a.as_map();
      const MapEntries& y = *b.as_map();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same_data(x[i].first, y[i].first) || !same_data(x[i].second, y[i].second))
          return false;
      return true;
    }
  }
  return false;
}

int effective_width(const Value& v) {
  switch (v.float_width()) {
    case Value::FloatWidth::kHalf: return 2;
    case Value::FloatWidth::kSingle: return 4;
    case Value::FloatWidth::kDouble: return 8;
    case Value::FloatWidth::kPreferred: break;
  }
  return std::isnan(*v.as_float()) ? 2 : detail::preferred_width(*v.as_float());
}

}  // namespace

const Value* Value::find(const Value& key) const {
  if (type_ != Type::kMap) return nullptr;
  for (const auto& [k, v] : *map_)
    if (same_data(k, key)) return &v;
  return nullptr;
}
const Value* Value::find(int64_t key) const { return find(integer(key)); }
const Value* Value::find(std::string_view key) const { return find(text(key)); }

Value& Value::set(Value key, Value v) {
  if (type_ != Type::kMap) *this = map();
  detach();
  for (auto& [k, old] : *map_) {
    if (same_data(k, key)) {
      old = std::move(v);
      return old;
    }
  }
  map_->emplace_back(std::move(key), std::move(v));
  return map_->back().second;
}

Value& Value::push(Value v) {
  if (type_ != Type::kArray) *this = array();
  detach();
  arr_->push_back(std::move(v));
  return arr_->back();
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_ || a.indefinite_ != b.indefinite_) return false;
  switch (a.type_) {
    case Value::Type::kUnsigned:
    case Value::Type::kNegative:
    case Value::Type::kSimple:
      return a.u_ == b.u_;
    case Value::Type::kBytes:
    case Value::Type::kText:
      return a.s_ == b.s_ && a.b_ == b.b_ && (!a.indefinite_ || a.chunks_ == b.chunks_);
    case Value::Type::kFloat:
      return detail::double_bits(a.f_) == detail::double_bits(b.f_) &&
             effective_width(a) == effective_width(b);
    case Value::Type::kTag:
      return a.u_ == b.u_ && *a.tag_content() == *b.tag_content();
    case Value::Type::kArray:
      return *a.arr_ == *b.arr_;
    case Value::Type::kMap:
      return *a.map_ == *b.map_;
  }
  return false;
}

// ---------------------------------------------------------------- decoding

namespace {

// Builder turns an item that item_size() already checked into a Value; it can
// rely on well-formedness (every length fits the input, depth is bounded).
class Builder {
 public:
  explicit Builder(const uint8_t* end) : end_(end) {}

  Value item(const uint8_t*& p) {
    detail::Head h;
    detail::parse_head(p, end_, h);
    p += h.size;
    const bool indef = h.ai == 31;
    switch (h.major) {
      case Major::kUnsigned:
        return Value::uint(h.arg);
      case Major::kNegative:
        return Value::negative(h.arg);
      case Major::kBytes:
      case Major::kText: {
        std::string s;
        std::vector<size_t> chunks;
        if (!indef) {
          s.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(h.arg));
          p += h.arg;
        } else {
          while (*p != 0xff) {
            detail::Head c;
            detail::parse_head(p, end_, c);
            p += c.size;
            s.append(reinterpret_cast<const char*>(p), static_cast<size_t>(c.arg));
            chunks.push_back(static_cast<size_t>(c.arg));
            p += c.arg;
          }
          ++p;
        }
        Value v = h.major == Major::kBytes ? Value::bytes(as_bytes(s)) : Value::text(s);
        if (indef) {
          v.set_indefinite(true);
          v.set_chunks(std::move(chunks));
        }
        return v;
      }
      case Major::kArray: {
        Array items;
        if (!indef) {
          items.reserve(static_cast<size_t>(h.arg));  // <= remaining input (checked)
          for (uint64_t i = 0; i < h.arg; ++i) items.push_back(item(p));
        } else {
          while (*p != 0xff) items.push_back(item(p));
          ++p;
        }
        Value v = Value::array(std::move(items));
        v.set_indefinite(indef);
        return v;
      }
      case Major::kMap: {
        MapEntries entries;
        if (!indef) {
          entries.reserve(static_cast<size_t>(h.arg));
          for (uint64_t i = 0; i < h.arg; ++i) {
            Value k = item(p);
            entries.emplace_back(std::move(k), item(p));
          }
        } else {
          while (*p != 0xff) {
            Value k = item(p);
            entries.emplace_back(std::move(k), item(p));
          }
          ++p;
        }
        Value v = Value::map(std::move(entries));
        v.set_indefinite(indef);
        return v;
      }
      case Major::kTag:
        return Value::tag(h.arg, item(p));
      case Major::kSimple:
        switch (h.ai) {
          case 25:
            return Value::floating(detail::half_to_double(static_cast<uint16_t>(h.arg)),
                                   Value::FloatWidth::kHalf);
          case 26:
            return Value::floating(detail::single_to_double(static_cast<uint32_t>(h.arg)),
                                   Value::FloatWidth::kSingle);
          case 27:
            return Value::floating(detail::bits_double(h.arg), Value::FloatWidth::kDouble);
          default:
            return Value::simple(static_cast<uint8_t>(h.arg));
        }
    }
    return Value();
  }

 private:
  const uint8_t* end_;
};

}  // namespace

Expected<Value, Error> decode_prefix(ByteView in, size_t& used, const Limits& limits) {
  auto n = item_size(in, limits);
  if (!n) return unexpected(n.error());
  const uint8_t* p = in.data();
  Builder b(in.data() + *n);
  Value v = b.item(p);
  used = *n;
  return v;
}

Expected<Value, Error> decode(ByteView in, const Limits& limits) {
  size_t used = 0;
  auto v = decode_prefix(in, used, limits);
  if (!v) return v;
  if (used != in.size()) return unexpected(Error::kTrailingBytes);
  return v;
}

// ---------------------------------------------------------------- encoding

namespace {

void encode_float(const Value& v, Encoder& enc, bool deterministic) {
  const double d = *v.as_float();
  int width = deterministic ? 0 : static_cast<int>(v.float_width());
  if (width == 0) {
    enc.put_float(d);
    return;
  }
  // The smallest width >= the requested one that holds d exactly.
  uint16_t h;
  uint32_t f;
  if (width == 2) {
    if (detail::half_exact(d, h)) {
      enc.put_float16_bits(h);
      return;
    }
    width = 4;
  }
  if (width == 4 && detail::single_exact(d, f)) {
    enc.writer().put_u8(0xfa);
    enc.writer().put_u32(f);
    return;
  }
  enc.put_float64(d);
}

void encode_string(const Value& v, Encoder& enc, bool deterministic) {
  const Major m = v.is_bytes() ? Major::kBytes : Major::kText;
  const ByteView payload = v.bytes_view();
  if (!v.indefinite() || deterministic) {
    enc.put_head(m, payload.size());
    enc.put_raw(payload);
    return;
  }
  enc.writer().put_u8(static_cast<uint8_t>((static_cast<uint8_t>(m) << 5) | 31));
  size_t off = 0;
  for (size_t len : v.chunks()) {
    len = std::min(len, payload.size() - off);
    enc.put_head(m, len);
    enc.put_raw(payload.subspan(off, len));
    off += len;
  }
  if (off < payload.size()) {  // chunk sizes that do not cover the payload: put the rest
    enc.put_head(m, payload.size() - off);
    enc.put_raw(payload.subspan(off));
  }
  enc.put_break();
}

void encode_value(const Value& v, Encoder& enc, const EncodeOptions& opts) {
  const bool det = opts.deterministic;
  switch (v.type()) {
    case Value::Type::kUnsigned:
      enc.put_uint(v.raw_uint());
      return;
    case Value::Type::kNegative:
      enc.put_negative(v.raw_uint());
      return;
    case Value::Type::kBytes:
    case Value::Type::kText:
      encode_string(v, enc, det);
      return;
    case Value::Type::kArray: {
      const Array& a = *v.as_array();
      if (v.indefinite() && !det) enc.put_indefinite_array();
      else enc.put_array(a.size());
      for (const Value& x : a) encode_value(x, enc, opts);
      if (v.indefinite() && !det) enc.put_break();
      return;
    }
    case Value::Type::kMap: {
      const MapEntries& m = *v.as_map();
      if (det) {
        // RFC 8949 §4.2.1: sort by the bytewise lexicographic order of the
        // deterministic encodings of the keys.
        std::vector<std::pair<Bytes, size_t>> keys;
        keys.reserve(m.size());
        for (size_t i = 0; i < m.size(); ++i) keys.emplace_back(encode(m[i].first, opts), i);
        std::sort(keys.begin(), keys.end());
        enc.put_map(m.size());
        for (const auto& [k, i] : keys) {
          enc.put_raw(k);
          encode_value(m[i].second, enc, opts);
        }
        return;
      }
      if (v.indefinite()) enc.put_indefinite_map();
      else enc.put_map(m.size());
      for (const auto& [k, x] : m) {
        encode_value(k, enc, opts);
        encode_value(x, enc, opts);
      }
      if (v.indefinite()) enc.put_break();
      return;
    }
    case Value::Type::kTag:
      enc.put_tag(v.tag_number());
      if (const Value* c = v.tag_content()) encode_value(*c, enc, opts);
      else enc.put_null();
      return;
    case Value::Type::kSimple: {
      const uint8_t s = v.simple_value();
      if (s >= 24 && s < 32) {
        // RFC 7049 form (see Limits::allow_legacy_simple); not well-formed in RFC 8949.
        const uint8_t raw[2] = {0xf8, s};
        enc.put_raw(raw);
      } else {
        enc.put_simple(s);
      }
      return;
    }
    case Value::Type::kFloat:
      encode_float(v, enc, det);
      return;
  }
}

}  // namespace

void encode(const Value& v, Encoder& enc, const EncodeOptions& opts) { encode_value(v, enc, opts); }

Bytes encode(const Value& v, const EncodeOptions& opts) {
  Bytes out;
  Writer w(out);
  Encoder enc(w);
  encode_value(v, enc, opts);
  return out;
}

}  // namespace acekdc::cbor
