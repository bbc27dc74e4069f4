#include "cose/sign1.h"

#include "cose/algorithms.h"
#include "cose/structures.h"

namespace acekdc::cose {

Expected<Bytes, Error> sign1_create(crypto::Signer& signer, const Headers& headers,
                                    ByteView payload, ByteView external_aad,
                                    const CreateOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  if (!is_signature_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  if (signer.alg() != *alg) return unexpected(Error::kWrongKey);

  Bytes tbs;
  append_sig_structure1(tbs, h->authenticated_protected(), external_aad, payload);
  Message m;
  m.type = MessageType::kSign1;
  m.tagged = opts.tagged;
  m.auth.resize(signer.signature_len());
  auto n = signer.sign(tbs, m.auth);
  if (!n) return unexpected(from_crypto(n.error()));
  m.auth.resize(*n);
  m.headers = std::move(*h);
  m.detached = opts.detached;
  if (!opts.detached) m.content = to_bytes(payload);
  Bytes out;
  encode_message(m, out);
  return out;
}

Expected<Bytes, Error> sign1_create(crypto::Provider& provider, const CoseKey& key,
                                    const Headers& headers, ByteView payload,
                                    ByteView external_aad, const CreateOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  if (!key.has_private()) return unexpected(Error::kWrongKey);
  auto kp = key.to_keypair();
  if (!kp) return unexpected(kp.error());
  auto signer = provider.make_signer(*alg, *kp);
  if (!signer) return unexpected(from_crypto(signer.error()));
  return sign1_create(**signer, *h, payload, external_aad, opts);
}

Expected<void, Error> sign1_verify_message(crypto::Verifier& verifier, const Message& m,
                                           ByteView external_aad,
                                           const std::optional<ByteView>& detached) {
  if (m.type != MessageType::kSign1) return unexpected(Error::kMalformed);
  auto alg = m.headers.alg();
  if (!alg) return unexpected(alg.error());
  if (!is_signature_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  if (verifier.alg() != *alg) return unexpected(Error::kWrongKey);
  auto payload = content_of(m, detached);
  if (!payload) return unexpected(payload.error());
  Bytes tbs;
  append_sig_structure1(tbs, m.headers.authenticated_protected(), external_aad, *payload);
  auto r = verifier.verify(tbs, m.auth);
  if (!r) {
    // Anything the verifier rejects (bad length, bad encoding) is a bad signature.
    return unexpected(r.error() == crypto::Error::kInternal ? Error::kCrypto
                                                            : Error::kBadSignature);
  }
  return {};
}

Expected<Verified, Error> sign1_verify(crypto::Verifier& verifier, ByteView msg,
                                       ByteView external_aad, const VerifyOptions& opts) {
  auto m = decode_message(msg, MessageType::kSign1, opts);
  if (!m) return unexpected(m.error());
  ACEKDC_TRY(sign1_verify_message(verifier, *m, external_aad, opts.detached_content));
  Verified v;
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  v.payload = m->detached ? to_bytes(*opts.detached_content) : std::move(m->content);
  return v;
}

Expected<Verified, Error> sign1_verify(crypto::Provider& provider, const CoseKey& key,
                                       ByteView msg, ByteView external_aad,
                                       const VerifyOptions& opts) {
  auto m = decode_message(msg, MessageType::kSign1, opts);
  if (!m) return unexpected(m.error());
  auto alg = m->headers.alg();
  if (!alg) return unexpected(alg.error());
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  auto kp = key.to_public_keypair();
  if (!kp) return unexpected(kp.error());
  auto verifier = provider.make_verifier(*alg, *kp);
  if (!verifier) return unexpected(from_crypto(verifier.error()));
  ACEKDC_TRY(sign1_verify_message(**verifier, *m, external_aad, opts.detached_content));
  Verified v;
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  v.payload = m->detached ? to_bytes(*opts.detached_content) : std::move(m->content);
  return v;
}

}  // namespace acekdc::cose
