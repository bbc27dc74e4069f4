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

}  // namespace

Expected<size_t, Error> build_aad(int alg_aead, ByteView request_kid, ByteView request_piv,
                                  ByteView class_i_options, MutableByteView out) {
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
