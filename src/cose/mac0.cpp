#include "cose/mac0.h"

#include "cose/algorithms.h"
#include "cose/structures.h"

namespace acekdc::cose {
namespace {

Expected<int, Error> checked_alg(const Headers& h, const crypto::Mac& mac) {
  auto alg = h.alg();
  if (!alg) return unexpected(alg.error());
  if (!is_mac_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  if (mac.alg() != *alg) return unexpected(Error::kWrongKey);
  return *alg;
}

}  // namespace

Expected<Bytes, Error> mac0_create(crypto::Mac& mac, const Headers& headers, ByteView payload,
                                   ByteView external_aad, const CreateOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = checked_alg(*h, mac);
  if (!alg) return unexpected(alg.error());
  Bytes tbm;
  append_mac_structure(tbm, kContextMac0, h->authenticated_protected(), external_aad, payload);
  Message m;
  m.type = MessageType::kMac0;
  m.tagged = opts.tagged;
  m.auth.resize(mac.tag_len());
  auto n = mac.compute(tbm, m.auth);
  if (!n) return unexpected(from_crypto(n.error()));
  m.auth.resize(*n);
  m.headers = std::move(*h);
  m.detached = opts.detached;
  if (!opts.detached) m.content = to_bytes(payload);
  Bytes out;
  encode_message(m, out);
  return out;
}

Expected<Bytes, Error> mac0_create(crypto::Provider& provider, const CoseKey& key,
                                   const Headers& headers, ByteView payload,
                                   ByteView external_aad, const CreateOptions& opts) {
  auto h = sealed_headers(headers, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  auto mac = provider.make_mac(*alg, key.k);
  if (!mac) return unexpected(from_crypto(mac.error()));
  return mac0_create(**mac, *h, payload, external_aad, opts);
}

Expected<void, Error> mac0_verify_message(crypto::Mac& mac, const Message& m,
                                          ByteView external_aad,
                                          const std::optional<ByteView>& detached) {
  if (m.type != MessageType::kMac0) return unexpected(Error::kMalformed);
  auto alg = checked_alg(m.headers, mac);
  if (!alg) return unexpected(alg.error());
  auto payload = content_of(m, detached);
  if (!payload) return unexpected(payload.error());
  Bytes tbm;
  append_mac_structure(tbm, kContextMac0, m.headers.authenticated_protected(), external_aad, *payload);
  auto r = mac.verify(tbm, m.auth);
  if (!r) {
    return unexpected(r.error() == crypto::Error::kInternal ? Error::kCrypto : Error::kBadTag);
  }
  return {};
}

Expected<Verified, Error> mac0_verify(crypto::Mac& mac, ByteView msg, ByteView external_aad,
                                      const VerifyOptions& opts) {
  auto m = decode_message(msg, MessageType::kMac0, opts);
  if (!m) return unexpected(m.error());
  ACEKDC_TRY(mac0_verify_message(mac, *m, external_aad, opts.detached_content));
  Verified v;
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  v.payload = m->detached ? to_bytes(*opts.detached_content) : std::move(m->content);
  return v;
}

Expected<Verified, Error> mac0_verify(crypto::Provider& provider, const CoseKey& key,
                                      ByteView msg, ByteView external_aad,
                                      const VerifyOptions& opts) {
  auto m = decode_message(msg, MessageType::kMac0, opts);
  if (!m) return unexpected(m.error());
  auto alg = m->headers.alg();
  if (!alg) return unexpected(alg.error());
  if (!is_mac_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(check_key_for_alg(key, *alg));
  auto mac = provider.make_mac(*alg, key.k);
  if (!mac) return unexpected(from_crypto(mac.error()));
  ACEKDC_TRY(mac0_verify_message(**mac, *m, external_aad, opts.detached_content));
  Verified v;
  v.headers = std::move(m->headers);
  v.tagged = m->tagged;
  v.payload = m->detached ? to_bytes(*opts.detached_content) : std::move(m->content);
  return v;
}

}  // namespace acekdc::cose
