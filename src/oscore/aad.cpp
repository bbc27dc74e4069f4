#include "oscore/aad.h"

#include <cstring>

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

Expected<size_t, Error> build_aad(int alg_aead, ByteView request_kid, ByteView request_piv,
                                  ByteView class_i_options, MutableByteView out) {
  Writer w(out);
  cbor::Encoder e(w);
  const size_t inner = aad_array_len(alg_aead, request_kid, request_piv, class_i_options);
  e.put_array(3).put_tstr(cp::oscore::kEncrypt0Context).put_bstr(ByteView()).put_bstr_header(inner);
  put_aad_array(e, alg_aead, request_kid, request_piv, class_i_options);
  if (!e.ok()) return unexpected(Error::kBufferTooSmall);
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
