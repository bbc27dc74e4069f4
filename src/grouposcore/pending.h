// PendingMessages: the OPT4 retention of group messages a member could not process yet
// (profile.md OPT4): a message under a Group ID it does not know (kUnknownGroupId) or
// from a sender whose key it lacks (kUnknownSender) is kept, bounded in count, bytes and
// age, while the caller fetches the latest keying material or the public key from the
// KDC; then retry() hands every kept message back, oldest first.
//
// Sans-I/O: the caller passes `now` (core/clock.h); nothing here reads a clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include "coap/address.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "grouposcore/error.h"

namespace acekdc::grouposcore {

struct PendingLimits {
  size_t max_messages = 16;
  size_t max_bytes = 16 * 1280;
  Duration max_age = std::chrono::seconds(30);
};

class PendingMessages {
 public:
  explicit PendingMessages(PendingLimits limits = {}) : limits_(limits) {}

  // keeps_for reports whether a failure is one to keep a message for
  // (kUnknownGroupId, kUnknownSender).
  static bool keeps_for(Error e) { return e == Error::kUnknownGroupId || e == Error::kUnknownSender; }

  // keep stores a copy of `datagram` received from `from` at `now`; the oldest messages
  // make room when a bound is reached. False (nothing kept) if `reason` is not one to
  // keep for or the datagram alone is larger than max_bytes.
  bool keep(ByteView datagram, const coap::Address& from, TimePoint now, Error reason);
  // expire drops messages older than max_age at `now`.
  void expire(TimePoint now);
  // retry expires, then calls `fn` on every kept message, oldest first; a message for
  // which fn returns true (processed, or failed for good) is dropped, the others stay.
  // Returns how many were dropped.
  size_t retry(TimePoint now, const std::function<bool(ByteView datagram, const coap::Address& from)>& fn);

  size_t size() const { return items_.size(); }
  size_t bytes() const { return bytes_; }
  bool needs_material() const { return num_unknown_group_ > 0; }
  uint64_t num_dropped() const { return dropped_; }

 private:
  struct Item {
    Bytes datagram;
    coap::Address from;
    TimePoint received;
    Error reason;
  };
  void drop_front();
  PendingLimits limits_;
  std::deque<Item> items_;
  size_t bytes_ = 0;
  size_t num_unknown_group_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace acekdc::grouposcore
