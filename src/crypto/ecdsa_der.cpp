#include "crypto/ecdsa_der.h"

#include <cstring>

#include "core/reader.h"

namespace acekdc::crypto {
namespace {

constexpr uint8_t kTagSequence = 0x30;
constexpr uint8_t kTagInteger = 0x02;
constexpr size_t kMaxScalarLen = 66;

// der_int_len is the DER content length of the unsigned big-endian integer v.
size_t der_int_len(ByteView v, size_t& skip) {
  skip = 0;
  while (skip + 1 < v.size() && v[skip] == 0) ++skip;
  const size_t len = v.size() - skip;
  return len + ((v[skip] & 0x80) ? 1 : 0);
}

// write_der_int writes INTEGER v at out and returns the bytes written.
size_t write_der_int(ByteView v, uint8_t* out) {
  size_t skip;
  const size_t content = der_int_len(v, skip);
  size_t n = 0;
  out[n++] = kTagInteger;
  out[n++] = static_cast<uint8_t>(content);
  if (v[skip] & 0x80) out[n++] = 0;
  std::memcpy(out + n, v.data() + skip, v.size() - skip);
  return n + v.size() - skip;
}

// read_der_len reads a DER definite length (short form, or long form 0x81 for
// 128..255: a signature never needs more).
bool read_der_len(Reader& r, size_t& len) {
  uint8_t b;
  if (!r.read_u8(b)) return false;
  if (b < 0x80) {
    len = b;
    return true;
  }
  if (b != 0x81) return r.fail();
  if (!r.read_u8(b) || b < 0x80) return r.fail();  // long form must be minimal
  len = b;
  return true;
}

// read_der_uint reads a non-negative minimal INTEGER into out (left-padded).
bool read_der_uint(Reader& r, MutableByteView out) {
  uint8_t tag;
  size_t len;
  if (!r.read_u8(tag) || tag != kTagInteger || !read_der_len(r, len) || len == 0) return r.fail();
  ByteView v;
  if (!r.read_bytes(len, v)) return false;
  if (v[0] & 0x80) return r.fail();                           // negative
  if (v.size() > 1 && v[0] == 0 && !(v[1] & 0x80)) return r.fail();  // not minimal
  if (v[0] == 0) v = v.subspan(1);
  if (v.size() > out.size()) return r.fail();
  std::memset(out.data(), 0, out.size() - v.size());
  std::memcpy(out.data() + out.size() - v.size(), v.data(), v.size());
  return true;
}

}  // namespace

Expected<size_t, Error> ecdsa_raw_to_der(ByteView raw, MutableByteView out) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() / 2 > kMaxScalarLen) {
    return unexpected(Error::kInvalidArgument);
  }
  const ByteView r = raw.first(raw.size() / 2);
  const ByteView s = raw.subspan(raw.size() / 2);
  size_t skip;
  const size_t body = 2 + der_int_len(r, skip) + 2 + der_int_len(s, skip);
  const size_t total = (body < 0x80 ? 2 : 3) + body;
  if (out.size() < total) return unexpected(Error::kInvalidArgument);
  size_t n = 0;
  out[n++] = kTagSequence;
  if (body >= 0x80) out[n++] = 0x81;
  out[n++] = static_cast<uint8_t>(body);
  n += write_der_int(r, out.data() + n);
  n += write_der_int(s, out.data() + n);
  return n;
}

Expected<void, Error> ecdsa_der_to_raw(ByteView der, size_t scalar_len, MutableByteView out) {
  if (scalar_len == 0 || scalar_len > kMaxScalarLen || out.size() < 2 * scalar_len) {
    return unexpected(Error::kInvalidArgument);
  }
  Reader r(der);
  uint8_t tag;
  size_t len;
  ByteView body;
  if (!r.read_u8(tag) || tag != kTagSequence || !read_der_len(r, len) || !r.read_bytes(len, body) ||
      !r.empty()) {
    return unexpected(Error::kBadSignature);
  }
  Reader b(body);
  if (!read_der_uint(b, out.subspan(0, scalar_len)) ||
      !read_der_uint(b, out.subspan(scalar_len, scalar_len)) || !b.empty()) {
    return unexpected(Error::kBadSignature);
  }
  return {};
}

}  // namespace acekdc::crypto
