// Reader: a bounds-checked read cursor over untrusted bytes (after BoringSSL's CBS).
//
// Every read either succeeds and advances, or fails, leaves the position
// unchanged and poisons the reader: after one failed read every later read fails
// too, so a parser can do a run of reads and check `ok()` once at the end.
// Nothing here allocates; views returned point into the original buffer and live
// as long as it does.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/bytes.h"

namespace acekdc {

class Reader {
 public:
  Reader() = default;
  explicit Reader(ByteView data) : p_(data.data()), end_(data.data() + data.size()) {}

  // ok reports whether no read has failed so far.
  bool ok() const { return ok_; }
  // remaining is the number of unread bytes (0 once poisoned).
  size_t remaining() const { return ok_ ? static_cast<size_t>(end_ - p_) : 0; }
  bool empty() const { return remaining() == 0; }
  // rest is a view of the unread bytes.
  ByteView rest() const { return ok_ ? ByteView(p_, end_ - p_) : ByteView(); }
  const uint8_t* position() const { return p_; }
  // fail poisons the reader (for semantic errors found by the caller).
  bool fail() { ok_ = false; return false; }

  bool peek_u8(uint8_t& out) const {
    if (!ok_ || p_ == end_) return false;
    out = *p_;
    return true;
  }
  bool read_u8(uint8_t& out) {
    if (!need(1)) return false;
    out = *p_++;
    return true;
  }
  bool read_u16(uint16_t& out) {  // big-endian
    if (!need(2)) return false;
    out = static_cast<uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return true;
  }
  bool read_u32(uint32_t& out) {  // big-endian
    if (!need(4)) return false;
    out = (uint32_t{p_[0]} << 24) | (uint32_t{p_[1]} << 16) | (uint32_t{p_[2]} << 8) | p_[3];
    p_ += 4;
    return true;
  }
  bool read_u64(uint64_t& out) {  // big-endian
    if (!need(8)) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p_[i];
    out = v;
    p_ += 8;
    return true;
  }
  // read_uint_be reads an n-byte (n <= 8) big-endian unsigned integer.
  bool read_uint_be(size_t n, uint64_t& out) {
    if (n > 8 || !need(n)) return fail();
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | p_[i];
    out = v;
    p_ += n;
    return true;
  }
  // read_bytes returns a view of the next n bytes.
  bool read_bytes(size_t n, ByteView& out) {
    if (!need(n)) return false;
    out = ByteView(p_, n);
    p_ += n;
    return true;
  }
  bool copy_bytes(MutableByteView out) {
    if (!need(out.size())) return false;
    if (!out.empty()) std::memcpy(out.data(), p_, out.size());
    p_ += out.size();
    return true;
  }
  bool skip(size_t n) {
    if (!need(n)) return false;
    p_ += n;
    return true;
  }
  // sub splits off the next n bytes as their own reader (for length-prefixed parts).
  bool sub(size_t n, Reader& out) {
    ByteView b;
    if (!read_bytes(n, b)) return false;
    out = Reader(b);
    return true;
  }
  // finish succeeds only if everything was read without error (no trailing bytes).
  bool finish() const { return ok_ && p_ == end_; }

 private:
  bool need(size_t n) {
    if (!ok_ || static_cast<size_t>(end_ - p_) < n) return fail();
    return true;
  }
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  bool ok_ = true;
};

}  // namespace acekdc
