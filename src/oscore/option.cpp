#include "oscore/option.h"

#include "core/codepoints.h"
#include "core/reader.h"
#include "core/writer.h"

namespace acekdc::oscore {

namespace f = cp::oscore;

Expected<OptionValue, Error> parse_option(ByteView value) {
  OptionValue v;
  if (value.empty()) return v;
  Reader r(value);
  uint8_t flags = 0;
  r.read_u8(flags);
  if (flags == 0 || (flags & f::kFlagReserved)) return unexpected(Error::kMalformedOption);
  uint8_t flags2 = 0;
  if (flags & f::kFlagExtension1) {
    if (!r.read_u8(flags2)) return unexpected(Error::kMalformedOption);
    // A second byte without any flag set would be a non-minimal encoding.
    if (flags2 == 0 || (flags2 & f::kFlag2Reserved)) return unexpected(Error::kMalformedOption);
  }
  const size_t n = flags & f::kFlagPivLenMask;
  if (n > f::kMaxPartialIvLen) return unexpected(Error::kMalformedOption);
  if (n > 0) {
    ByteView piv;
    if (!r.read_bytes(n, piv)) return unexpected(Error::kMalformedOption);
    v.partial_iv = piv;
  }
  if (flags & f::kFlagKidContext) {
    uint8_t s = 0;
    ByteView ctx;
    if (!r.read_u8(s) || !r.read_bytes(s, ctx)) return unexpected(Error::kMalformedOption);
    v.kid_context = ctx;
  }
  if (flags2 & f::kFlag2IdDetail) {
    uint8_t x = 0;
    ByteView detail;
    if (!r.read_u8(x) || !r.read_bytes(x, detail)) return unexpected(Error::kMalformedOption);
    v.id_detail = detail;
  }
  if (flags & f::kFlagKid) {
    v.kid = r.rest();
    r.skip(r.remaining());
  }
  if (!r.finish()) return unexpected(Error::kMalformedOption);
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
  Writer w(out);
  uint8_t flags = static_cast<uint8_t>(v.partial_iv.size());
  if (v.kid) flags |= f::kFlagKid;
  if (v.kid_context) flags |= f::kFlagKidContext;
  if (v.id_detail) flags |= f::kFlagExtension1;
  w.put_u8(flags);
  if (v.id_detail) w.put_u8(f::kFlag2IdDetail);
  w.put_bytes(v.partial_iv);
  if (v.kid_context) {
    w.put_u8(static_cast<uint8_t>(v.kid_context->size()));
    w.put_bytes(*v.kid_context);
  }
  if (v.id_detail) {
    w.put_u8(static_cast<uint8_t>(v.id_detail->size()));
    w.put_bytes(*v.id_detail);
  }
  if (v.kid) w.put_bytes(*v.kid);
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

}  // namespace acekdc::oscore
