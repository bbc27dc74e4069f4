#include "core/bytes.h"

#include <cstring>

namespace acekdc {

void secure_zero(void* p, size_t len) {
  // A memset the compiler must keep (the barrier says the zeroed memory is read):
  // as fast as memset, unlike a volatile byte loop (one store per byte).
  if (len == 0) return;
  std::memset(p, 0, len);
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

bool constant_time_equal(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

}  // namespace acekdc
