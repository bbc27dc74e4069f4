#include "core/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace acekdc {

uint64_t Random::uniform(uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  for (;;) {
    uint64_t v;
    fill(MutableByteView(reinterpret_cast<uint8_t*>(&v), sizeof v));
    if (v < limit) return v % n;
  }
}

void SystemRandom::fill(MutableByteView out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t r = getrandom(out.data() + done, out.size() - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::fputs("acekdc: getrandom failed; refusing to continue without randomness\n", stderr);
      std::abort();
    }
    done += static_cast<size_t>(r);
  }
}

void FakeRandom::fill(MutableByteView out) {
  for (size_t i = 0; i < out.size(); i += 8) {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (size_t j = 0; j < 8 && i + j < out.size(); ++j) out[i + j] = static_cast<uint8_t>(z >> (8 * j));
  }
}

}  // namespace acekdc
