// CBOR (RFC 8949): a strict, allocation-free pull decoder, an encoder with
// preferred serialization, and well-formedness validation.
//
// The Decoder reads untrusted bytes. Every read either succeeds and advances, or
// fails, records an Error and poisons the decoder (after one failure every read
// fails), so a parser can do a run of reads and check ok() once. Views it returns
// point into the input buffer. It never allocates.
//
// value.h has an owning tree (Value) for generic use; edn.h has diagnostic
// notation. Hot paths (CoAP/ACE payloads) use Decoder/Encoder directly.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/bytes.h"
#include "core/expected.h"
#include "core/writer.h"

namespace acekdc::cbor {

enum class Error : uint8_t {
  kNone = 0,
  kTruncated,         // input ends inside an item
  kMalformed,         // not well-formed (reserved additional info 28-30, bad break, bad simple, ...)
  kTypeMismatch,      // well-formed, but not the type the caller asked for
  kOverflow,          // integer does not fit the requested C++ type
  kTooDeep,           // nesting deeper than Limits::max_depth
  kTooLarge,          // a length or count above Limits
  kNonDeterministic,  // non-preferred/indefinite encoding or unsorted map when Limits::deterministic
  kIndefinite,        // indefinite-length item where a definite one is required
  kInvalidUtf8,       // text string is not valid UTF-8 (when Limits::check_utf8)
  kDuplicateKey,      // map key repeated (validate() with Limits::reject_duplicate_keys)
  kTrailingBytes,     // bytes left after the single top-level item
};
// to_string returns a short English description ("truncated input", ...).
const char* to_string(Error e);

enum class Major : uint8_t {
  kUnsigned = 0,
  kNegative = 1,
  kBytes = 2,
  kText = 3,
  kArray = 4,
  kMap = 5,
  kTag = 6,
  kSimple = 7,  // simple values and floats
};

// Limits: hard limits applied to untrusted input (parser configuration).
struct Limits {
  uint32_t max_depth = 32;              // nested arrays/maps/tags
  uint64_t max_length = 1u << 24;       // max declared string length / element count
  bool deterministic = false;           // reject non-preferred encodings, indefinite lengths,
                                        // unsorted or duplicate map keys (RFC 8949 §4.2.1);
                                        // floats must be in the shortest exact width and a
                                        // NaN must be f97e00 (§4.2.2). Keys are compared
                                        // bytewise on their encodings. A repeated key is
                                        // kDuplicateKey, an out-of-order one kNonDeterministic.
                                        // The pull Decoder checks a whole item (once) before
                                        // the first read into it.
  bool allow_indefinite = true;         // accept indefinite-length items at all
  bool check_utf8 = true;               // validate text strings
  bool reject_duplicate_keys = false;   // in validate()/item_size()/Value decode/skip():
                                        // keys are compared by their encoded bytes, so every
                                        // map key must then be in preferred serialization
                                        // (kNonDeterministic otherwise: 1 and 0x1801 are equal)
  // allow_legacy_simple accepts simple(24)..simple(31) in the two-byte form
  // (f818..f81f), which RFC 7049 Appendix A shows (simple(24) = f818) but RFC 8949
  // §3.3 / Appendix F.1 makes not well-formed. Off by default; f800..f817 stay
  // malformed either way.
  bool allow_legacy_simple = false;
};

// item_size returns the length in bytes of the first complete, well-formed item
// of `in` (checking it fully against `limits`). Errors: kTruncated (input ends
// inside the item), kMalformed (RFC 8949 Appendix F), kTooDeep, kTooLarge,
// kIndefinite, kNonDeterministic, kInvalidUtf8, kDuplicateKey. Nothing is
// allocated unless reject_duplicate_keys is set outside deterministic mode.
// Recursion depth is bounded by limits.max_depth.
Expected<size_t, Error> item_size(ByteView in, const Limits& limits = {});
// validate succeeds iff `in` is exactly one well-formed item under `limits`.
Expected<void, Error> validate(ByteView in, const Limits& limits = {});

// Decoder: the allocation-free pull parser.
class Decoder {
 public:
  explicit Decoder(ByteView in, const Limits& limits = {});

  bool ok() const { return err_ == Error::kNone; }
  Error error() const { return err_; }
  // at_end: every byte consumed (and no error).
  bool at_end() const;
  // finish succeeds iff no error and no trailing bytes (sets kTrailingBytes otherwise).
  bool finish();
  ByteView rest() const;

  // peek_major reports the major type of the next item without consuming it.
  bool peek_major(Major& out) const;
  // peek helpers: false also when the decoder failed or is at end.
  bool next_is(Major m) const;
  bool next_is_null() const;
  bool next_is_break() const;  // 0xff, inside an indefinite-length container

  bool read_uint(uint64_t& out);   // major 0
  bool read_int(int64_t& out);     // major 0 or 1, kOverflow outside int64_t
  // read_negative: major 1, out = n where the value is -1 - n (full range).
  bool read_negative(uint64_t& out);
  bool read_bstr(ByteView& out);   // definite-length only (kIndefinite otherwise)
  bool read_tstr(std::string_view& out);
  bool read_array(uint64_t& count);  // definite-length array header
  bool read_map(uint64_t& count);    // definite-length map header (count = pairs)
  // read_array_any/read_map_any also accept indefinite (indefinite = true, count undefined):
  // read items until next_is_break(), then read_break().
  bool read_array_any(uint64_t& count, bool& indefinite);
  bool read_map_any(uint64_t& count, bool& indefinite);
  bool read_break();
  bool read_tag(uint64_t& out);
  bool read_bool(bool& out);
  bool read_null();
  bool read_undefined();
  bool read_simple(uint8_t& out);  // any simple value (including false/true/null/undefined),
                                   // not floats (kTypeMismatch)
  bool read_float(double& out);    // half, single or double
  // skip consumes one complete item (any type, nested), checking well-formedness
  // under the limits (max_depth counts from this item). A break (0xff) is not an
  // item: kTypeMismatch inside an indefinite container opened with *_any, else
  // kMalformed.
  bool skip();
  // read_item returns the encoded bytes of the next complete item and consumes it.
  bool read_item(ByteView& out);

  // fail records an error (for semantic errors a caller finds) and poisons the decoder.
  bool fail(Error e);

 private:
  // read_head parses and checks the next head (without consuming it) into
  // major/ai/arg and its size; in deterministic mode it first checks the whole
  // next item once (see checked_end_).
  bool read_head(Major& major, uint8_t& ai, uint64_t& arg);
  bool head(Major& major, uint8_t& ai, uint64_t& arg, size_t& size);
  // read_arg consumes a head of major type `want` and returns its argument.
  bool read_arg(Major want, uint64_t& out);
  bool read_string(Major m, ByteView& out);
  bool read_container(Major m, bool allow_indefinite, uint64_t& count, bool& indefinite);
  const uint8_t* p_;
  const uint8_t* end_;
  Limits limits_;
  Error err_ = Error::kNone;
  // In deterministic mode everything before checked_end_ was already checked
  // as part of a complete item (so nested reads do not re-check it).
  const uint8_t* checked_end_ = nullptr;
  // Number of indefinite-length arrays/maps opened and not yet closed by read_break().
  uint32_t open_indefinite_ = 0;
};

// Encoder: writes CBOR with preferred serialization (shortest argument; floats
// in the shortest of half/single/double that represents the value exactly).
// Errors (a fixed buffer that is too small) show in ok().
class Encoder {
 public:
  explicit Encoder(Writer& w) : w_(w) {}
  // ok: every write fit and no invalid argument was given (put_simple(24..31)).
  bool ok() const { return w_.ok() && !bad_; }

  Encoder& put_uint(uint64_t v);
  Encoder& put_int(int64_t v);
  Encoder& put_negative(uint64_t n);  // the value -1 - n
  Encoder& put_bstr(ByteView b);
  Encoder& put_bstr_header(uint64_t len);  // caller then writes len raw bytes
  Encoder& put_tstr(std::string_view s);
  Encoder& put_array(uint64_t count);
  Encoder& put_map(uint64_t count);
  Encoder& put_indefinite_array();
  Encoder& put_indefinite_map();
  Encoder& put_indefinite_bstr();  // followed by definite chunks and put_break()
  Encoder& put_indefinite_tstr();
  Encoder& put_break();
  Encoder& put_tag(uint64_t tag);
  Encoder& put_bool(bool v);
  Encoder& put_null();
  Encoder& put_undefined();
  Encoder& put_simple(uint8_t v);   // v in 0..23 or 32..255
  Encoder& put_float(double v);     // preferred (shortest exact) encoding
  Encoder& put_float16_bits(uint16_t bits);
  Encoder& put_float32(float v);
  Encoder& put_float64(double v);
  // put_raw copies an already-encoded item.
  Encoder& put_raw(ByteView encoded);
  // put_head writes a raw major/argument head in preferred form.
  Encoder& put_head(Major major, uint64_t arg);

  Writer& writer() { return w_; }

 private:
  Writer& w_;
  bool bad_ = false;
};

// encoded_head_size is the size of a head with argument `arg` in preferred form.
constexpr size_t encoded_head_size(uint64_t arg) {
  return arg < 24 ? 1 : arg <= 0xff ? 2 : arg <= 0xffff ? 3 : arg <= 0xffffffffu ? 5 : 9;
}

}  // namespace acekdc::cbor
