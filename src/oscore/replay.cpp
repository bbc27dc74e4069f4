#include "oscore/replay.h"

#include <algorithm>

namespace acekdc::oscore {

ReplayWindow::ReplayWindow(uint32_t size) : size_(std::clamp<uint32_t>(size, 1, kMaxSize)) {}

bool ReplayWindow::test_bit(uint64_t i) const { return (bits_[i / 64] >> (i % 64)) & 1; }
void ReplayWindow::set_bit(uint64_t i) { bits_[i / 64] |= uint64_t{1} << (i % 64); }

void ReplayWindow::shift(uint64_t by) {
  if (by >= size_) {
    bits_.fill(0);
    return;
  }
  const size_t words = by / 64;
  const unsigned bits = by % 64;
  for (size_t i = kWords; i-- > 0;) {
    uint64_t v = 0;
    if (i >= words) {
      v = bits_[i - words] << bits;
      if (bits != 0 && i >= words + 1) v |= bits_[i - words - 1] >> (64 - bits);
    }
    bits_[i] = v;
  }
}

Expected<void, Error> ReplayWindow::check(uint64_t seq) const {
  if (!any_ || seq > top_) return {};
  const uint64_t offset = top_ - seq;
  if (offset >= size_ || test_bit(offset)) return unexpected(Error::kReplay);
  return {};
}

void ReplayWindow::update(uint64_t seq) {
  if (!any_) {
    any_ = true;
    top_ = seq;
    bits_.fill(0);
    set_bit(0);
    return;
  }
  if (seq > top_) {
    shift(seq - top_);
    top_ = seq;
    set_bit(0);
    return;
  }
  const uint64_t offset = top_ - seq;
  if (offset < size_) set_bit(offset);
}

void ReplayWindow::reset() {
  any_ = false;
  top_ = 0;
  bits_.fill(0);
}

}  // namespace acekdc::oscore
