// Random: randomness comes in through this interface. SystemRandom is a CSPRNG
// (the kernel's getrandom); FakeRandom is a deterministic stream for tests and
// must never be used for keys outside tests.
#pragma once

#include <cstdint>

#include "core/bytes.h"

namespace acekdc {

class Random {
 public:
  virtual ~Random() = default;
  // fill writes out.size() random bytes. A CSPRNG that cannot deliver aborts the
  // process rather than return predictable bytes.
  virtual void fill(MutableByteView out) = 0;

  Bytes bytes(size_t n) {
    Bytes b(n);
    fill(b);
    return b;
  }
  // uniform returns a value in [0, n) without modulo bias (n > 0).
  uint64_t uniform(uint64_t n);
};

class SystemRandom final : public Random {
 public:
  void fill(MutableByteView out) override;
};

// FakeRandom: splitmix64 stream from a seed. Deterministic; not secure.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(uint64_t seed = 1) : state_(seed) {}
  void fill(MutableByteView out) override;

 private:
  uint64_t state_;
};

}  // namespace acekdc
