#include "oscore/option.h"

#include <cstring>

#include "core/codepoints.h"

namespace acekdc::oscore {

namespace f = cp::oscore;

// parse_option runs on every received OSCORE message: it reads through a
// bounds-checked index (every length is checked against what is left before
// the bytes are taken) rather than a Reader.
Expected<OptionValue, Error> parse_option(ByteView value) {
  OptionValue v;
  if (value.empty()) return v;
  const uint8_t* p = value.data();
  const size_t len = value.size();
  size_t at = 0;
  const uint8_t flags = p[at++];
  if (flags == 0 || (flags & f::kFlagReserved)) return unexpected(Error::kMalformedOption);
  uint8_t flags2 = 0;
  if (flags & f::kFlagExtension1) {
    if (at == len) return unexpected(Error::kMalformedOption);
    flags2 = p[at++];
    // A second byte without any flag set would be a non-minimal encoding.
    if (flags2 == 0 || (flags2 & f::kFlag2Reserved)) return unexpected(Error::kMalformedOption);
  }
  const size_t n = flags & f::kFlagPivLenMask;
  if (n > f::kMaxPartialIvLen || n > len - at) return unexpected(Error::kMalformedOption);
  if (n > 0) v.partial_iv = ByteView(p + at, n);
  at += n;
  // take_prefixed reads a 1-byte length and that many bytes.
  auto take_prefixed = [&](std::optional<ByteView>& out) {
    if (at == len) return false;
    const size_t s = p[at++];
    if (s > len - at) return false;
    out = ByteView(p + at, s);
    at += s;
    return true;
  };
  if ((flags & f::kFlagKidContext) && !take_prefixed(v.kid_context)) return unexpected(Error::kMalformedOption);
  if ((flags2 & f::kFlag2IdDetail) && !take_prefixed(v.id_detail)) return unexpected(Error::kMalformedOption);
  if (flags & f::kFlagKid) {
    v.kid = ByteView(p + at, len - at);
    at = len;
  }
  if (at != len) return unexpected(Error::kMalformedOption);
  return v;
}

size_t encoded_option_len(const OptionValue& v) {
  const bool any = !v.partial_iv.empty() || v.kid || v.kid_context || v.id_detail;
  if (!any) return 0;
  size_t len = 1 + (v.id_detail ? 1 : 0) + v.partial_iv.size();
  if (v.kid_context) len += 1 + v.kid_context->size();
  if (v.id_detail) len += 1 + v.id_detail->size();
  if (v.kid) len += v.kid->size();
  return len;
}

Expected<size_t, Error> encode_option(const OptionValue& v, MutableByteView out) {
  if (v.partial_iv.size() > f::kMaxPartialIvLen || (v.kid_context && v.kid_context->size() > 255) ||
      (v.id_detail && v.id_detail->size() > 255)) {
    return unexpected(Error::kInvalidArgument);
  }
  const size_t len = encoded_option_len(v);
  if (len > out.size()) return unexpected(Error::kBufferTooSmall);
  if (len == 0) return size_t{0};
  // Every byte below is within the `len` checked above.
  uint8_t* p = out.data();
  auto put = [&p](ByteView b) {
    if (!b.empty()) std::memcpy(p, b.data(), b.size());
    p += b.size();
  };
  uint8_t flags = static_cast<uint8_t>(v.partial_iv.size());
  if (v.kid) flags |= f::kFlagKid;
  if (v.kid_context) flags |= f::kFlagKidContext;
  if (v.id_detail) flags |= f::kFlagExtension1;
  *p++ = flags;
  if (v.id_detail) *p++ = f::kFlag2IdDetail;
  put(v.partial_iv);
  if (v.kid_context) {
    *p++ = static_cast<uint8_t>(v.kid_context->size());
    put(*v.kid_context);
  }
  if (v.id_detail) {
    *p++ = static_cast<uint8_t>(v.id_detail->size());
    put(*v.id_detail);
  }
  if (v.kid) put(*v.kid);
  return static_cast<size_t>(p - out.data());
}

}  // namespace acekdc::oscore
