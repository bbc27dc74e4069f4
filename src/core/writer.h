// Writer: a byte builder (after BoringSSL's CBB).
//
// A Writer writes either into a caller-supplied fixed buffer (no allocation: the
// hot-path form) or appends to a Bytes it grows. A write that does not fit a
// fixed buffer poisons the writer; check `ok()` once at the end.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/bytes.h"

namespace acekdc {

class Writer {
 public:
  // Writer over a fixed buffer: never allocates, fails when full.
  explicit Writer(MutableByteView buf) : buf_(buf.data()), cap_(buf.size()) {}
  // Writer appending to `out` (which it grows as needed).
  explicit Writer(Bytes& out) : vec_(&out), len_(out.size()) {}

  bool ok() const { return ok_; }
  // size is the number of bytes written so far (into a vector: its total size).
  size_t size() const { return len_; }
  // data points at the start of what was written (valid until the next write to a vector).
  uint8_t* data() { return vec_ ? vec_->data() : buf_; }
  ByteView written() const {
    return ok_ ? ByteView(vec_ ? vec_->data() : buf_, len_) : ByteView();
  }

  bool put_u8(uint8_t v) {
    uint8_t* p = reserve(1);
    if (!p) return false;
    *p = v;
    return true;
  }
  bool put_u16(uint16_t v) {
    uint8_t* p = reserve(2);
    if (!p) return false;
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
    return true;
  }
  bool put_u32(uint32_t v) {
    uint8_t* p = reserve(4);
    if (!p) return false;
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
    return true;
  }
  bool put_u64(uint64_t v) {
    uint8_t* p = reserve(8);
    if (!p) return false;
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
    return true;
  }
  // put_uint_be writes the low n bytes (n <= 8) of v big-endian.
  bool put_uint_be(uint64_t v, size_t n) {
    if (n > 8) return ok_ = false;
    uint8_t* p = reserve(n);
    if (!p) return false;
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
    return true;
  }
  bool put_bytes(ByteView b) {
    uint8_t* p = reserve(b.size());
    if (!p) return false;
    if (!b.empty()) std::memcpy(p, b.data(), b.size());
    return true;
  }
  // reserve makes room for n bytes and returns where to write them (nullptr on failure).
  uint8_t* reserve(size_t n) {
    if (!ok_) return nullptr;
    if (vec_) {
      vec_->resize(len_ + n);
      uint8_t* p = vec_->data() + len_;
      len_ += n;
      return p;
    }
    if (cap_ - len_ < n) {
      ok_ = false;
      return nullptr;
    }
    uint8_t* p = buf_ + len_;
    len_ += n;
    return p;
  }
  // truncate drops bytes written after position `len`.
  void truncate(size_t len) {
    if (len > len_) return;
    len_ = len;
    if (vec_) vec_->resize(len);
  }

 private:
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0;
  Bytes* vec_ = nullptr;
  size_t len_ = 0;
  bool ok_ = true;
};

}  // namespace acekdc
