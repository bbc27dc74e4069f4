// Internal helpers shared by cbor.cpp, value.cpp and edn.cpp (not part of the
// public API): IEEE 754 width conversions that keep NaN payloads bit-exact,
// UTF-8 validation, head parsing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cbor/cbor.h"

namespace acekdc::cbor::detail {

inline uint64_t double_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}
inline double bits_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}

// half_to_double widens an IEEE 754 binary16 exactly (NaN payload kept).
double half_to_double(uint16_t h);
// single_to_double widens an IEEE 754 binary32 exactly (NaN payload kept, no quieting).
double single_to_double(uint32_t f);
// half_exact: true iff d is exactly representable as binary16 (NaN: iff its payload
// fits); out gets the bits.
bool half_exact(double d, uint16_t& out);
// single_exact: as half_exact for binary32.
bool single_exact(double d, uint32_t& out);
// preferred_width: 2, 4 or 8: the shortest width that holds d exactly.
inline int preferred_width(double d) {
  uint16_t h;
  uint32_t f;
  if (half_exact(d, h)) return 2;
  if (single_exact(d, f)) return 4;
  return 8;
}

// valid_utf8: strict UTF-8 (no overlong forms, no surrogates, max U+10FFFF).
bool valid_utf8(const uint8_t* p, size_t n);

// Head: a parsed initial byte and argument.
struct Head {
  Major major = Major::kUnsigned;
  uint8_t ai = 0;
  uint64_t arg = 0;  // 0 for ai 31
  size_t size = 0;   // bytes of the head
};
// parse_head parses the head at p (reserved ai 28..30 -> kMalformed; short -> kTruncated).
// It does not interpret ai 31 (size 1, arg 0) nor simple-value rules.
Error parse_head(const uint8_t* p, const uint8_t* end, Head& h);

}  // namespace acekdc::cbor::detail
