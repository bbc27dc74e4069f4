#include "oscore/derivation.h"

#include <cstring>

#include "cbor/cbor.h"
#include "core/writer.h"

namespace acekdc::oscore {

Expected<crypto::Hash, Error> hkdf_hash(int hkdf_alg) {
  switch (hkdf_alg) {
    case cp::alg::kDirectHKDF_SHA256:
    case cp::alg::kHMAC256_256:
      return crypto::Hash::kSha256;
    case cp::alg::kDirectHKDF_SHA512:
    case cp::alg::kHMAC512_512:
      return crypto::Hash::kSha512;
    default:
      return unexpected(Error::kUnsupportedAlgorithm);
  }
}

Expected<size_t, Error> build_info(ByteView id, std::optional<ByteView> id_context, int alg_aead,
                                   std::string_view type, size_t length, MutableByteView out) {
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(5).put_bstr(id);
  if (id_context) {
    e.put_bstr(*id_context);
  } else {
    e.put_null();
  }
  e.put_int(alg_aead).put_tstr(type).put_uint(length);
  if (!e.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

namespace {

// expand_one derives one output of §3.2.1 from PRK.
Expected<void, Error> expand_one(crypto::Provider& p, crypto::Hash h, ByteView prk, ByteView id,
                                 const std::optional<Bytes>& id_context, int alg,
                                 std::string_view type, MutableByteView out) {
  std::array<uint8_t, 320> info;  // ids are <= kMaxNonceLen, id_context <= 255 bytes
  std::optional<ByteView> ctx;
  if (id_context) ctx = ByteView(*id_context);
  auto n = build_info(id, ctx, alg, type, out.size(), info);
  if (!n) return unexpected(n.error());
  if (!p.hkdf_expand(h, prk, ByteView(info.data(), *n), out)) return unexpected(Error::kCrypto);
  return {};
}

}  // namespace

Expected<DerivedKeys, Error> derive_keys(crypto::Provider& provider, const ContextParams& params) {
  auto info = crypto::aead_info(params.aead_alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  auto hash = hkdf_hash(params.hkdf_alg);
  if (!hash) return unexpected(hash.error());
  if (info->key_len > kMaxKeyLen || info->nonce_len > kMaxNonceLen ||
      info->nonce_len < kMinNonceLen) {
    return unexpected(Error::kUnsupportedAlgorithm);
  }
  const size_t max_id = info->nonce_len - 6;
  if (params.master_secret.empty() || params.sender_id.size() > max_id ||
      params.recipient_id.size() > max_id || equal(params.sender_id, params.recipient_id) ||
      (params.id_context && params.id_context->size() > 255)) {
    return unexpected(Error::kInvalidArgument);
  }
  std::array<uint8_t, 64> prk;
  const size_t prk_len = crypto::hash_len(*hash);
  MutableByteView prk_view(prk.data(), prk_len);
  if (!provider.hkdf_extract(*hash, params.master_salt, params.master_secret, prk_view)) {
    return unexpected(Error::kCrypto);
  }
  DerivedKeys k;
  k.key_len = info->key_len;
  k.nonce_len = info->nonce_len;
  auto r = expand_one(provider, *hash, prk_view, params.sender_id, params.id_context,
                      params.aead_alg, cp::oscore::kInfoTypeKey,
                      MutableByteView(k.sender_key.data(), k.key_len));
  if (r) {
    r = expand_one(provider, *hash, prk_view, params.recipient_id, params.id_context,
                   params.aead_alg, cp::oscore::kInfoTypeKey,
                   MutableByteView(k.recipient_key.data(), k.key_len));
  }
  if (r) {
    r = expand_one(provider, *hash, prk_view, ByteView(), params.id_context, params.aead_alg,
                   cp::oscore::kInfoTypeIV, MutableByteView(k.common_iv.data(), k.nonce_len));
  }
  secure_zero(prk.data(), prk.size());
  if (!r) return unexpected(r.error());
  return k;
}

size_t encode_piv(uint64_t seq, std::array<uint8_t, 5>& out) {
  size_t len = 1;
  while (len < 5 && (seq >> (8 * len)) != 0) ++len;
  for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(seq >> (8 * (len - 1 - i)));
  return len;
}

std::optional<uint64_t> decode_piv(ByteView piv) {
  if (piv.empty() || piv.size() > cp::oscore::kMaxPartialIvLen) return std::nullopt;
  uint64_t v = 0;
  for (uint8_t b : piv) v = (v << 8) | b;
  return v;
}

Expected<void, Error> make_nonce(ByteView common_iv, ByteView id_piv, ByteView partial_iv,
                                 MutableByteView out) {
  const size_t n = common_iv.size();
  if (n < kMinNonceLen || n > kMaxNonceLen || out.size() != n || id_piv.size() > n - 6 ||
      partial_iv.size() > cp::oscore::kMaxPartialIvLen) {
    return unexpected(Error::kInvalidArgument);
  }
  std::memset(out.data(), 0, n);
  out[0] = static_cast<uint8_t>(id_piv.size());
  // ID_PIV right-aligned in bytes [1, n-5), Partial IV right-aligned in [n-5, n).
  if (!id_piv.empty()) std::memcpy(out.data() + (n - 5 - id_piv.size()), id_piv.data(), id_piv.size());
  if (!partial_iv.empty()) {
    std::memcpy(out.data() + (n - partial_iv.size()), partial_iv.data(), partial_iv.size());
  }
  for (size_t i = 0; i < n; ++i) out[i] ^= common_iv[i];
  return {};
}

}  // namespace acekdc::oscore
