#include "oscore/aad.h"

#include <cstring>
#include <string_view>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"

namespace acekdc::oscore {

namespace {

size_t int_size(int v) {
  return cbor::encoded_head_size(v >= 0 ? static_cast<uint64_t>(v) : static_cast<uint64_t>(-1 - static_cast<int64_t>(v)));
}
size_t bstr_size(ByteView b) { return cbor::encoded_head_size(b.size()) + b.size(); }

size_t aad_array_len(int alg, ByteView kid, ByteView piv, ByteView opts) {
  return 1 /* array(5) */ + 1 /* version */ + 1 /* array(1) */ + int_size(alg) + bstr_size(kid) +
         bstr_size(piv) + bstr_size(opts);
}

void put_aad_array(cbor::Encoder& e, int alg, ByteView kid, ByteView piv, ByteView opts) {
  e.put_array(5).put_uint(cp::oscore::kVersion).put_array(1).put_int(alg).put_bstr(kid).put_bstr(piv).put_bstr(opts);
}

}  // namespace

size_t aad_len(int alg_aead, ByteView request_kid, ByteView request_piv, ByteView class_i_options) {
  const size_t inner = aad_array_len(alg_aead, request_kid, request_piv, class_i_options);
  const size_t ctx_len = std::strlen(cp::oscore::kEncrypt0Context);
  return 1 + cbor::encoded_head_size(ctx_len) + ctx_len + 1 /* h'' */ + cbor::encoded_head_size(inner) + inner;
}

// build_aad is on the per-message path: it writes the CBOR heads directly
// (same bytes as cbor::Encoder, without its generic dispatch).
namespace {

bool put_head(Writer& w, uint8_t major, uint64_t arg) {
  const uint8_t m = static_cast<uint8_t>(major << 5);
  if (arg < 24) return w.put_u8(static_cast<uint8_t>(m | arg));
  if (arg <= 0xff) return w.put_u8(m | 24) && w.put_u8(static_cast<uint8_t>(arg));
  if (arg <= 0xffff) return w.put_u8(m | 25) && w.put_u16(static_cast<uint16_t>(arg));
  if (arg <= 0xffffffffu) return w.put_u8(m | 26) && w.put_u32(static_cast<uint32_t>(arg));
  return w.put_u8(m | 27) && w.put_u64(arg);
}
bool put_bstr(Writer& w, ByteView b) { return put_head(w, 2, b.size()) && w.put_bytes(b); }


// build_aad_short writes the AAD when every CBOR head in it is one byte (kid,
// Partial IV, options and the external_aad each shorter than 24 bytes, alg in
// [-24, 23]): the case of every OSCORE message whose kid fits a nonce. Returns
// 0 when that does not hold or `out` is too small (the general path decides).
size_t build_aad_short(int alg, ByteView kid, ByteView piv, ByteView opts, MutableByteView out) {
  // ["Encrypt0", h'', ...]: array(3), tstr(8) "Encrypt0", bstr(0)
  static constexpr uint8_t kPrefix[] = {0x83, 0x68, 'E', 'n', 'c', 'r', 'y', 'p', 't', '0', 0x40};
  static_assert(std::string_view(cp::oscore::kEncrypt0Context) == "Encrypt0");
  if (alg < -24 || alg > 23 || kid.size() >= 24 || piv.size() >= 24 || opts.size() >= 24) return 0;
  const size_t inner = 4 /* array(5), version, array(1), alg */ + 3 /* three bstr heads */ + kid.size() +
                       piv.size() + opts.size();
  const size_t total = sizeof(kPrefix) + 1 + inner;
  if (inner >= 24 || total > out.size() || cp::oscore::kVersion >= 24) return 0;
  uint8_t* p = out.data();
  std::memcpy(p, kPrefix, sizeof(kPrefix));
  p += sizeof(kPrefix);
  *p++ = static_cast<uint8_t>(0x40 | inner);  // bstr .cbor aad_array
  *p++ = 0x85;                                 // array(5)
  *p++ = static_cast<uint8_t>(cp::oscore::kVersion);
  *p++ = 0x81;                                 // array(1)
  *p++ = static_cast<uint8_t>(alg >= 0 ? alg : 0x20 | (-1 - alg));
  for (ByteView b : {kid, piv, opts}) {
    *p++ = static_cast<uint8_t>(0x40 | b.size());
    if (!b.empty()) std::memcpy(p, b.data(), b.size());
    p += b.size();
  }
  return total;
}

}  // namespace

Expected<size_t, Error> build_aad(int alg_aead, ByteView request_kid, ByteView request_piv,
                                  ByteView class_i_options, MutableByteView out) {
  if (const size_t n = build_aad_short(alg_aead, request_kid, request_piv, class_i_options, out)) return n;
  Writer w(out);
  const size_t inner = aad_array_len(alg_aead, request_kid, request_piv, class_i_options);
  put_head(w, 4, 3);
  const std::string_view ctx = cp::oscore::kEncrypt0Context;
  put_head(w, 3, ctx.size());
  w.put_bytes(as_bytes(ctx));
  put_bstr(w, ByteView());
  put_head(w, 2, inner);
  put_head(w, 4, 5);
  put_head(w, 0, cp::oscore::kVersion);
  put_head(w, 4, 1);
  if (alg_aead >= 0) {
    put_head(w, 0, static_cast<uint64_t>(alg_aead));
  } else {
    put_head(w, 1, static_cast<uint64_t>(-1 - static_cast<int64_t>(alg_aead)));
  }
  put_bstr(w, request_kid);
  put_bstr(w, request_piv);
  put_bstr(w, class_i_options);
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

Expected<size_t, Error> build_aad_array(int alg_aead, ByteView request_kid, ByteView request_piv,
                                        ByteView class_i_options, MutableByteView out) {
  Writer w(out);
  cbor::Encoder e(w);
  put_aad_array(e, alg_aead, request_kid, request_piv, class_i_options);
  if (!e.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

}  // namespace acekdc::oscore
