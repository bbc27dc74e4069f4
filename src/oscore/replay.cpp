#include "oscore/replay.h"

#include <algorithm>
#include <atomic>

#include "core/reader.h"
#include "core/writer.h"

namespace acekdc::oscore {

ReplayWindow::ReplayWindow(uint32_t size) : size_(std::clamp<uint32_t>(size, 1, kMaxSize)) {}

bool ReplayWindow::test_bit(uint64_t i) const { return (bits_[i / 64] >> (i % 64)) & 1; }
uint64_t ReplayWindow::next_stamp() {
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

void ReplayWindow::set_bit(uint64_t i) { bits_[i / 64] |= uint64_t{1} << (i % 64); }

void ReplayWindow::shift(uint64_t by) {
  if (by >= size_) {
    bits_.fill(0);
    return;
  }
  const size_t words = by / 64;
  const unsigned bits = by % 64;
  // Only the words that hold the window: the others stay zero.
  for (size_t i = (size_ + 63) / 64; i-- > 0;) {
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
  stamp_ = next_stamp();
  initialised_ = true;
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
  stamp_ = next_stamp();
  initialised_ = true;
  any_ = false;
  top_ = 0;
  bits_.fill(0);
}

void ReplayWindow::mark_uninitialised() {
  reset();
  initialised_ = false;
}

// mask_outside clears the bits at offsets >= size_ (shift() may leave some).
void ReplayWindow::mask_outside() {
  for (size_t w = 0; w < kWords; ++w) {
    const uint64_t first = uint64_t{w} * 64;
    if (first >= size_) {
      bits_[w] = 0;
    } else if (size_ - first < 64) {
      bits_[w] &= (uint64_t{1} << (size_ - first)) - 1;
    }
  }
}

void ReplayWindow::initialise_at(uint64_t seq) {
  stamp_ = next_stamp();
  initialised_ = true;
  any_ = true;
  top_ = seq;
  // Every offset inside the window counts as seen; older ones are outside it.
  bits_.fill(~uint64_t{0});
  mask_outside();
}

namespace {
constexpr uint8_t kFlagInitialised = 0x01;
constexpr uint8_t kFlagAny = 0x02;
size_t words_for(uint32_t size) { return (size + 63) / 64; }
}  // namespace

Bytes ReplayWindow::serialize() const {
  ReplayWindow copy = *this;
  copy.mask_outside();
  Bytes out;
  Writer w(out);
  w.put_u8(kSerialVersion);
  w.put_u8(static_cast<uint8_t>((initialised_ ? kFlagInitialised : 0) | (any_ ? kFlagAny : 0)));
  w.put_u32(size_);
  w.put_u64(top_);
  for (size_t i = 0; i < words_for(size_); ++i) w.put_u64(copy.bits_[i]);
  return out;
}

Expected<ReplayWindow, Error> ReplayWindow::deserialize(ByteView data) {
  Reader r(data);
  uint8_t version = 0;
  uint8_t flags = 0;
  uint32_t size = 0;
  uint64_t top = 0;
  if (!r.read_u8(version) || !r.read_u8(flags) || !r.read_u32(size) || !r.read_u64(top)) {
    return unexpected(Error::kMalformedMessage);
  }
  if (version != kSerialVersion || (flags & ~(kFlagInitialised | kFlagAny)) != 0) {
    return unexpected(Error::kMalformedMessage);
  }
  if (size < 1 || size > kMaxSize || top > cp::oscore::kMaxPartialIv) return unexpected(Error::kMalformedMessage);
  ReplayWindow w(size);
  for (size_t i = 0; i < words_for(size); ++i) {
    if (!r.read_u64(w.bits_[i])) return unexpected(Error::kMalformedMessage);
  }
  if (!r.finish()) return unexpected(Error::kMalformedMessage);
  ReplayWindow masked = w;
  masked.mask_outside();
  if (masked.bits_ != w.bits_) return unexpected(Error::kMalformedMessage);
  w.initialised_ = (flags & kFlagInitialised) != 0;
  w.any_ = (flags & kFlagAny) != 0;
  w.top_ = top;
  if (w.any_) {
    if (!w.initialised_ || !w.test_bit(0)) return unexpected(Error::kMalformedMessage);
  } else if (top != 0 || w.bits_ != decltype(w.bits_){}) {
    return unexpected(Error::kMalformedMessage);
  }
  return w;
}

}  // namespace acekdc::oscore
