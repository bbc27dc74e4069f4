// Value: an owning CBOR data item tree, for generic processing (COSE headers,
// EDN, tools). It remembers enough of the original encoding (indefinite lengths,
// string chunk boundaries, float width incl. NaN payloads; non-preferred
// argument widths are NOT kept) to re-encode every RFC 8949 Appendix A item to
// the same bytes. Copies share arrays/maps until one is modified (copy-on-write).
// simple(24)..simple(31) (only from Limits::allow_legacy_simple or EDN) encode in
// the RFC 7049 two-byte form f818..f81f.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cbor/cbor.h"

namespace acekdc::cbor {

class Value;
using Array = std::vector<Value>;
using MapEntries = std::vector<std::pair<Value, Value>>;

class Value {
 public:
  enum class Type : uint8_t { kUnsigned, kNegative, kBytes, kText, kArray, kMap, kTag, kSimple, kFloat };
  // Float width as encoded (0 = choose preferred when encoding).
  enum class FloatWidth : uint8_t { kPreferred = 0, kHalf = 2, kSingle = 4, kDouble = 8 };

  Value();  // null
  static Value uint(uint64_t v);
  static Value integer(int64_t v);
  static Value negative(uint64_t n);  // the value -1 - n
  static Value bytes(ByteView b);
  static Value bytes(Bytes&& b);
  static Value text(std::string_view s);
  static Value array(Array items = {});
  static Value map(MapEntries entries = {});
  static Value tag(uint64_t tag, Value content);
  static Value boolean(bool v);
  static Value null();
  static Value undefined();
  static Value simple(uint8_t v);
  static Value floating(double v, FloatWidth w = FloatWidth::kPreferred);

  Type type() const { return type_; }
  bool is_uint() const { return type_ == Type::kUnsigned; }
  bool is_int() const;  // unsigned or negative that fits int64_t
  bool is_bytes() const { return type_ == Type::kBytes; }
  bool is_text() const { return type_ == Type::kText; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_map() const { return type_ == Type::kMap; }
  bool is_tag() const { return type_ == Type::kTag; }
  bool is_float() const { return type_ == Type::kFloat; }
  bool is_bool() const;
  bool is_null() const;
  bool is_undefined() const;
  bool is_simple() const { return type_ == Type::kSimple; }

  // Accessors return nullopt / nullptr on a type mismatch (never assert on input).
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  uint64_t raw_uint() const { return u_; }  // kUnsigned: value; kNegative: n of -1-n
  std::optional<bool> as_bool() const;
  std::optional<double> as_float() const;
  uint8_t simple_value() const { return static_cast<uint8_t>(u_); }
  FloatWidth float_width() const { return fw_; }
  const Bytes* as_bytes() const;                       // kBytes
  const std::string* as_text() const;                  // kText
  const Array* as_array() const;                       // kArray
  Array* as_array();
  const MapEntries* as_map() const;                    // kMap
  MapEntries* as_map();
  uint64_t tag_number() const { return u_; }           // kTag
  const Value* tag_content() const;                    // kTag
  ByteView bytes_view() const;                         // kBytes or kText payload, else empty

  // Map lookup (first match); nullptr when absent or not a map.
  const Value* find(int64_t key) const;
  const Value* find(std::string_view key) const;
  const Value* find(const Value& key) const;
  // Map insertion (appends; replaces an equal key).
  Value& set(Value key, Value v);
  Value& set(int64_t key, Value v) { return set(integer(key), std::move(v)); }
  // Array append.
  Value& push(Value v);

  // Encoding details kept from decoding (or set for EDN `_` forms).
  bool indefinite() const { return indefinite_; }
  void set_indefinite(bool v) { indefinite_ = v; }
  // For indefinite-length strings: chunk boundaries (sizes of each chunk).
  const std::vector<size_t>& chunks() const { return chunks_; }
  void set_chunks(std::vector<size_t> c) { chunks_ = std::move(c); }

  friend bool operator==(const Value& a, const Value& b);  // same data model value & encoding choices

 private:
  Type type_ = Type::kSimple;
  FloatWidth fw_ = FloatWidth::kPreferred;
  bool indefinite_ = false;
  uint64_t u_ = 22;  // unsigned value / negative n / tag number / simple value (22 = null)
  double f_ = 0;
  std::string s_;                       // text payload
  Bytes b_;                             // bytes payload
  std::shared_ptr<Array> arr_;          // kArray / tag content (1 element)
  std::shared_ptr<MapEntries> map_;     // kMap
  std::vector<size_t> chunks_;
  void detach();                        // copy-on-write before mutation
};

struct EncodeOptions {
  // deterministic: RFC 8949 §4.2.1 core deterministic encoding: definite
  // lengths, preferred floats, map keys sorted by their encoded bytes.
  bool deterministic = false;
};

// decode parses exactly one item (no trailing bytes) under `limits`.
Expected<Value, Error> decode(ByteView in, const Limits& limits = {});
// decode_prefix parses the first item and reports how many bytes it used.
Expected<Value, Error> decode_prefix(ByteView in, size_t& used, const Limits& limits = {});
// encode appends the encoding of v.
void encode(const Value& v, Encoder& enc, const EncodeOptions& opts = {});
Bytes encode(const Value& v, const EncodeOptions& opts = {});

}  // namespace acekdc::cbor
