#include "core/bytes.h"

#include <cstring>

namespace acekdc {

void secure_zero(void* p, size_t len) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  while (len--) *v++ = 0;
}

bool constant_time_equal(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

}  // namespace acekdc
