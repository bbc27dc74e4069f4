// The OSCORE option value (RFC 8613 §6.1) with the extension of
// draft-hoeglund-core-oscore-key-limits-01 §3.1:
//
//   byte 0: |0|x|0|h|k| n |   x = Extension-1 flag (0x40): a second flag byte follows
//   byte 1 (if x): |0 0 0 0 0 0 0|d|   d = ID Detail flag (0x01)
//   n bytes Partial IV, [1 byte s, s bytes kid context] (h),
//   [1 byte x, x bytes id detail] (d), kid = the remaining bytes (k).
//
// Reserved bits set, n = 6 or 7, a length running past the end, or bytes left
// without k set are malformed. An all-zero flag byte is sent as an empty value.
#pragma once

#include <cstdint>
#include <optional>

#include "core/bytes.h"
#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

// OptionValue is the decoded OSCORE option. Views point into the parsed buffer
// (or, when encoding, into whatever the caller set them to).
struct OptionValue {
  ByteView partial_iv;                  // empty = absent (n = 0)
  std::optional<ByteView> kid;          // k flag
  std::optional<ByteView> kid_context;  // h flag
  std::optional<ByteView> id_detail;    // d flag (key-limits draft §3.1)
};

// kMaxOptionValueLen: 2 flag bytes + 5 PIV + 1+255 kid context + 1+255 id detail + kid.
inline constexpr size_t kMaxOptionHeaderLen = 2 + 5 + 256 + 256;

// parse_option decodes an option value strictly; kMalformedOption on any violation.
Expected<OptionValue, Error> parse_option(ByteView value);

// encoded_option_len returns the encoded size of `v` (0 when nothing is present).
size_t encoded_option_len(const OptionValue& v);

// encode_option writes `v` into out and returns the length. kInvalidArgument for a
// Partial IV longer than 5 bytes or a kid context / id detail longer than 255
// bytes; kBufferTooSmall if out is too small.
Expected<size_t, Error> encode_option(const OptionValue& v, MutableByteView out);

}  // namespace acekdc::oscore
