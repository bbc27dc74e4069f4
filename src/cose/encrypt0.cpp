#include "cose/encrypt0.h"

#include <algorithm>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/algorithms.h"
#include "cose/structures.h"

namespace acekdc::cose {
namespace {

// aead_for checks the alg header against the AEAD object.
Expected<int, Error> checked_alg(const Headers& h, const crypto::Aead& aead) {
  auto alg = h.alg();
  if (!alg) return unexpected(alg.error());
  if (!aead_params(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  if (aead.alg() != *alg) return unexpected(Error::kWrongKey);
  return *alg;
}

}  // namespace

Expected<void, Error> compute_nonce(const Headers& h, ByteView base_iv, MutableByteView nonce) {
  const size_t n = nonce.size();
  if (h.find(cp::header::kIV)) {
    ByteView iv = h.iv();
    if (iv.size() != n) return unexpected(Error::kBadHeader);
    std::copy(iv.begin(), iv.end(), nonce.begin());
    return {};
  }
  if (h.find(cp::header::kPartialIV)) {
    ByteView piv = h.partial_iv();
    if (piv.size() > n) return unexpected(Error::kBadHeader);
    if (base_iv.empty()) return unexpected(Error::kWrongKey);
    if (base_iv.size() > n) return unexpected(Error::kInvalidKey);
    std::fill(nonce.begin(), nonce.end(), 0);
    std::copy(base_iv.begin(), base_iv.end(), nonce.begin() + (n - base_iv.size()));
    for (size_t i = 0; i < piv.size(); ++i) nonce[n - piv.size() + i] ^= piv[i];
    return {};
  }
  return unexpected(Error::kMissingHeader);
}

Expected<Bytes, Error> encrypt0_create(crypto::Aead& aead, const Headers& headers,
                                       ByteView plaintext, ByteView external_aad,
                                       const EncryptOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = checked_alg(*h, aead);
  if (!alg) return unexpected(alg.error());
  const crypto::AeadInfo& info = aead.info();
  uint8_t nonce[32];
  if (info.nonce_len > sizeof nonce) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(compute_nonce(*h, opts.base_iv, MutableByteView(nonce, info.nonce_len)));

  Bytes aad;
  append_enc_structure(aad, kContextEncrypt0, h->authenticated_protected(), external_aad);
  Message m;
  m.type = MessageType::kEncrypt0;
  m.tagged = opts.tagged;
  m.content.resize(plaintext.size() + info.tag_len);
  auto len = aead.seal(ByteView(nonce, info.nonce_len), aad, plaintext, m.content);
  if (!len) return unexpected(from_crypto(len.error()));
  m.content.resize(*len);
  m.headers = std::move(*h);
  Bytes out;
  if (opts.detached) {
    // Detached ciphertext (RFC 9052 §5.2): the caller conveys it separately; only
    // the message shell is returned here. Use encrypt0_create without detached to
    // obtain the ciphertext.
    m.detached = true;
    m.content.clear();
  }
  encode_message(m, out);
  return out;
}

Expected<Bytes, Error> encrypt0_create(crypto::Provider& provider, const CoseKey& key,
                                       const Headers& headers, ByteView plaintext,
                                       ByteView external_aad, const EncryptOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  if (!aead_params(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  auto aead = provider.make_aead(*alg, key.k);
  if (!aead) return unexpected(from_crypto(aead.error()));
  EncryptOptions o = opts;
  if (o.base_iv.empty()) o.base_iv = key.base_iv;
  return encrypt0_create(**aead, *h, plaintext, external_aad, o);
}

Expected<void, Error> encrypt0_write(crypto::Aead& aead, ByteView kid, ByteView iv, ByteView plaintext,
                                     ByteView external_aad, bool tagged, Bytes& out) {
  const crypto::AeadInfo& info = aead.info();
  if (!aead_params(aead.alg())) return unexpected(Error::kUnsupportedAlgorithm);
  if (iv.size() != info.nonce_len) return unexpected(Error::kBadHeader);
  // protected = {1: alg}
  uint8_t prot[16];
  Writer pw{MutableByteView(prot, sizeof prot)};
  cbor::Encoder pe(pw);
  pe.put_map(1).put_int(cp::header::kAlg).put_int(aead.alg());
  const ByteView protected_bytes = pw.written();
  // Enc_structure (RFC 9052 §5.3), on the stack unless the external AAD is large.
  uint8_t aad_buf[96];
  Bytes aad_heap;
  ByteView aad;
  if (external_aad.size() + 32 <= sizeof aad_buf) {
    Writer aw{MutableByteView(aad_buf, sizeof aad_buf)};
    cbor::Encoder ae(aw);
    ae.put_array(3).put_tstr(kContextEncrypt0).put_bstr(protected_bytes).put_bstr(external_aad);
    aad = aw.written();
  } else {
    append_enc_structure(aad_heap, kContextEncrypt0, protected_bytes, external_aad);
    aad = aad_heap;
  }
  const size_t start = out.size();
  const size_t ct_len = plaintext.size() + info.tag_len;
  // Sized once (heads are at most 9 bytes each), written through a span, trimmed.
  out.resize(start + ct_len + protected_bytes.size() + kid.size() + iv.size() + 48);
  Writer w{MutableByteView(out.data() + start, out.size() - start)};
  cbor::Encoder e(w);
  if (tagged) e.put_tag(cp::tag::kCoseEncrypt0);
  e.put_array(3).put_bstr(protected_bytes).put_map(kid.empty() ? 1 : 2);
  if (!kid.empty()) e.put_int(cp::header::kKid).put_bstr(kid);
  e.put_int(cp::header::kIV).put_bstr(iv).put_bstr_header(ct_len);
  uint8_t* ct = w.reserve(ct_len);
  if (!ct || !e.ok()) {
    out.resize(start);
    return unexpected(Error::kCrypto);
  }
  auto n = aead.seal(iv, aad, plaintext, MutableByteView(ct, ct_len));
  if (!n || *n != ct_len) {
    out.resize(start);
    return unexpected(from_crypto(n ? crypto::Error::kInternal : n.error()));
  }
  out.resize(start + w.size());
  return {};
}

Expected<void, Error> encrypt0_decrypt_message(crypto::Aead& aead, const Message& m,
                                               ByteView external_aad, ByteView base_iv,
                                               const std::optional<ByteView>& detached,
                                               Bytes& plaintext) {
  if (m.type != MessageType::kEncrypt0) return unexpected(Error::kMalformed);
  auto alg = checked_alg(m.headers, aead);
  if (!alg) return unexpected(alg.error());
  const crypto::AeadInfo& info = aead.info();
  uint8_t nonce[32];
  if (info.nonce_len > sizeof nonce) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(compute_nonce(m.headers, base_iv, MutableByteView(nonce, info.nonce_len)));
  auto ct = content_of(m, detached);
  if (!ct) return unexpected(ct.error());
  if (ct->size() < info.tag_len) return unexpected(Error::kDecryptFailed);
  Bytes aad;
  append_enc_structure(aad, kContextEncrypt0, m.headers.authenticated_protected(), external_aad);
  plaintext.resize(ct->size() - info.tag_len);
  auto len = aead.open(ByteView(nonce, info.nonce_len), aad, *ct, plaintext);
  if (!len) {
    plaintext.clear();
    return unexpected(len.error() == crypto::Error::kInternal ? Error::kCrypto
                                                              : Error::kDecryptFailed);
  }
  plaintext.resize(*len);
  return {};
}

Expected<Verified, Error> encrypt0_decrypt(crypto::Aead& aead, ByteView msg,
                                           ByteView external_aad, const DecryptOptions& opts) {
  auto m = decode_message(msg, MessageType::kEncrypt0, opts);
  if (!m) return unexpected(m.error());
  Verified v;
  ACEKDC_TRY(encrypt0_decrypt_message(aead, *m, external_aad, opts.base_iv,
                                      opts.detached_content, v.payload));
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  return v;
}

Expected<Verified, Error> encrypt0_decrypt(crypto::Provider& provider, const CoseKey& key,
                                           ByteView msg, ByteView external_aad,
                                           const DecryptOptions& opts) {
  auto m = decode_message(msg, MessageType::kEncrypt0, opts);
  if (!m) return unexpected(m.error());
  auto alg = m->headers.alg();
  if (!alg) return unexpected(alg.error());
  if (!aead_params(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  auto aead = provider.make_aead(*alg, key.k);
  if (!aead) return unexpected(from_crypto(aead.error()));
  Verified v;
  ACEKDC_TRY(encrypt0_decrypt_message(**aead, *m, external_aad,
                                      opts.base_iv.empty() ? ByteView(key.base_iv) : opts.base_iv,
                                      opts.detached_content, v.payload));
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  return v;
}

}  // namespace acekdc::cose
