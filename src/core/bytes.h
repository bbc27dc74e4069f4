// Byte containers and views used throughout acekdc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace acekdc {

// Bytes owns a byte string.
using Bytes = std::vector<uint8_t>;
// ByteView is a non-owning read-only view of bytes; it never outlives its owner.
using ByteView = std::span<const uint8_t>;
// MutableByteView is a non-owning writable view (an output buffer).
using MutableByteView = std::span<uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_string(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(ByteView b) { return Bytes(b.begin(), b.end()); }
inline bool equal(ByteView a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// secure_zero overwrites secret material so the compiler cannot elide it.
void secure_zero(void* p, size_t len);
inline void secure_zero(Bytes& b) { secure_zero(b.data(), b.size()); }

// constant_time_equal compares two equal-length secrets without early exit.
// Different lengths compare unequal (length is not secret).
bool constant_time_equal(ByteView a, ByteView b);

}  // namespace acekdc
