// Replay protection for a Recipient Context (RFC 8613 §7.4): a sliding window
// over received Partial IVs. check() and update() are separate so that the
// window only moves after a message decrypted and verified successfully.
//
// A window can be "uninitialised" (RFC 8613 Appendix B.1.2): a server that
// restarted without a trustworthy window must not accept any request until an
// Echo exchange (RFC 9175) proved one fresh; Context handles that and then
// calls initialise_at(). serialize()/deserialize() let a tool keep the window in
// a state file across runs (a window saved at a clean shutdown is trustworthy).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/bytes.h"
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
  // reset forgets everything (an initialised, empty window).
  void reset();

  // initialised is false after mark_uninitialised() until initialise_at().
  bool initialised() const { return initialised_; }
  // mark_uninitialised forgets everything and makes the window untrustworthy
  // (RFC 8613 Appendix B.1.2): Context then demands an Echo before accepting.
  void mark_uninitialised();
  // initialise_at makes `seq` the lower limit of the window (Appendix B.1.2):
  // `seq` and every smaller number are rejected from now on.
  void initialise_at(uint64_t seq);

  // serialize encodes the window (format version 1, kSerialVersion):
  //   u8 version, u8 flags (bit 0 initialised, bit 1 any), u32 size,
  //   u64 highest, ceil(size/64) u64 words of bits (bit i = highest - i),
  // all big-endian, bits at or above `size` zero.
  Bytes serialize() const;
  // deserialize parses what serialize() wrote. Strict: kMalformedMessage on an
  // unknown version, unknown flags, a size outside 1..kMaxSize, a highest above
  // 2^40-1, set bits outside the window, a non-empty window without bit 0, an
  // empty window with state, or trailing bytes.
  static Expected<ReplayWindow, Error> deserialize(ByteView data);
  static constexpr uint8_t kSerialVersion = 1;

  // stamp changes with every change of the window (a process-wide counter, so a
  // window that replaced another never carries the old one's stamp): a writer that
  // keeps windows on disk compares stamps instead of serializing every window.
  uint64_t stamp() const { return stamp_; }

 private:
  static uint64_t next_stamp();
  bool test_bit(uint64_t offset) const;
  void set_bit(uint64_t offset);
  void shift(uint64_t by);

  static constexpr size_t kWords = kMaxSize / 64;
  void mask_outside();

  uint32_t size_;
  bool initialised_ = true;
  bool any_ = false;
  uint64_t top_ = 0;
  // bit i (word i / 64, bit i % 64) stands for sequence number top_ - i.
  std::array<uint64_t, kWords> bits_{};
  uint64_t stamp_ = next_stamp();
};

}  // namespace acekdc::oscore
