// Replay protection for a Recipient Context (RFC 8613 §7.4): a sliding window
// over received Partial IVs. check() and update() are separate so that the
// window only moves after a message decrypted and verified successfully.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/codepoints.h"
#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

class ReplayWindow {
 public:
  static constexpr uint32_t kMaxSize = 1024;

  // ReplayWindow makes an empty window of `size` entries (clamped to 1..kMaxSize).
  explicit ReplayWindow(uint32_t size = cp::oscore::kDefaultReplayWindow);

  uint32_t size() const { return size_; }
  // check returns kReplay if `seq` was already accepted or is older than the
  // window (highest - seq >= size); it never changes the window.
  Expected<void, Error> check(uint64_t seq) const;
  // update records `seq` as received. Call only after check() succeeded and the
  // message verified.
  void update(uint64_t seq);
  // highest is the largest accepted sequence number (meaningful if any()).
  uint64_t highest() const { return top_; }
  bool any() const { return any_; }
  // reset forgets everything.
  void reset();

 private:
  bool test_bit(uint64_t offset) const;
  void set_bit(uint64_t offset);
  void shift(uint64_t by);

  static constexpr size_t kWords = kMaxSize / 64;
  uint32_t size_;
  bool any_ = false;
  uint64_t top_ = 0;
  // bit i (word i / 64, bit i % 64) stands for sequence number top_ - i.
  std::array<uint64_t, kWords> bits_{};
};

}  // namespace acekdc::oscore
