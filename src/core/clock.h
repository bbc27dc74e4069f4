// Clock: time comes in through this interface, never from a global, so tests can
// drive retransmissions, token expiry and rekey intervals with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace acekdc {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // now is monotonic time, for timeouts and deadlines.
  virtual TimePoint now() const = 0;
  // unix_time is wall-clock seconds since 1970 (CWT exp/iat/nbf).
  virtual int64_t unix_time() const = 0;
};

// SystemClock reads the real clocks.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  int64_t unix_time() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// FakeClock only moves when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_start = 1700000000) : unix_start_(unix_start) {}
  TimePoint now() const override { return t_; }
  int64_t unix_time() const override {
    return unix_start_ + std::chrono::duration_cast<std::chrono::seconds>(t_.time_since_epoch()).count();
  }
  void advance(Duration d) { t_ += d; }
  void set_unix_time(int64_t t) {
    unix_start_ = t - std::chrono::duration_cast<std::chrono::seconds>(t_.time_since_epoch()).count();
  }

 private:
  TimePoint t_{};
  int64_t unix_start_;
};

}  // namespace acekdc
