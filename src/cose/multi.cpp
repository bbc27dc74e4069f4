#include "cose/multi.h"

#include "cbor/cbor.h"
#include "cbor/value.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/algorithms.h"
#include "cose/structures.h"

namespace acekdc::cose {
namespace {

namespace hdr = cp::header;

// Labels a direct / direct+HKDF recipient processes (so they may be critical).
constexpr int64_t kRecipientLabels[] = {hdr::kSalt,          hdr::kPartyUIdentity,
                                        hdr::kPartyUNonce,   hdr::kPartyUOther,
                                        hdr::kPartyVIdentity, hdr::kPartyVNonce,
                                        hdr::kPartyVOther};

bool is_direct(int alg) {
  return alg == cp::alg::kDirect || alg == cp::alg::kDirectHKDF_SHA256 ||
         alg == cp::alg::kDirectHKDF_SHA512;
}

// cek_len: the content key length for a content algorithm (AEAD or HMAC).
std::optional<size_t> cek_len(int alg) {
  if (auto a = crypto::aead_info(alg)) return a->key_len;
  if (auto m = crypto::mac_info(alg)) return m->key_len;
  return std::nullopt;
}

void put_party(cbor::Encoder& e, const Headers& h, const int64_t (&labels)[3],
               const std::optional<Bytes>* const (&unsent)[3]) {
  e.put_array(3);
  for (size_t i = 0; i < 3; ++i) {
    if (const cbor::Value* v = h.find(labels[i])) {
      cbor::encode(*v, e);
    } else if (unsent[i]->has_value()) {
      e.put_bstr(**unsent[i]);
    } else {
      e.put_null();
    }
  }
}

// Parsed: a decoded multi-layer message before verification.
struct Parsed {
  bool tagged = false;
  Headers body;
  bool detached = false;
  Bytes content;
  Bytes tag;  // COSE_Mac only
  std::vector<Headers> layers;  // recipients / signers
  std::vector<Bytes> layer_content;  // recipient ciphertext / signature
};

Expected<Parsed, Error> parse(ByteView in, uint64_t tag, size_t n_items, const VerifyOptions& opts,
                              bool signers) {
  if (in.size() > opts.max_message_len) return unexpected(Error::kTooLarge);
  cbor::Limits limits;
  limits.max_depth = opts.max_depth;
  limits.max_length = opts.max_message_len;
  limits.reject_duplicate_keys = true;
  auto top = cbor::decode(in, limits);
  if (!top) return unexpected(Error::kMalformed);
  Parsed p;
  const cbor::Value* v = &*top;
  if (v->is_tag()) {
    if (v->tag_number() != tag || opts.tag_mode == TagMode::kForbidden)
      return unexpected(Error::kUnexpectedTag);
    p.tagged = true;
    v = v->tag_content();
  } else if (opts.tag_mode == TagMode::kRequired) {
    return unexpected(Error::kUnexpectedTag);
  }
  const cbor::Array* a = v ? v->as_array() : nullptr;
  if (!a || a->size() != n_items) return unexpected(Error::kMalformed);
  if (!(*a)[0].is_bytes() || !(*a)[1].is_map()) return unexpected(Error::kMalformed);
  auto body = Headers::parse((*a)[0].bytes_view(), (*a)[1], opts.headers);
  if (!body) return unexpected(body.error());
  p.body = std::move(*body);
  if ((*a)[2].is_null()) {
    p.detached = true;
  } else if ((*a)[2].is_bytes()) {
    p.content = *(*a)[2].as_bytes();
  } else {
    return unexpected(Error::kMalformed);
  }
  if (n_items == 5) {
    if (!(*a)[3].is_bytes()) return unexpected(Error::kMalformed);
    p.tag = *(*a)[3].as_bytes();
  }
  const cbor::Array* layers = a->back().as_array();
  if (!layers || layers->empty()) return unexpected(Error::kMalformed);
  HeaderPolicy rp = opts.headers;
  if (!signers) rp.understood_critical = kRecipientLabels;
  for (const cbor::Value& l : *layers) {
    const cbor::Array* la = l.as_array();
    // A signer is [protected, unprotected, signature]; a recipient may add nested recipients.
    if (!la || !(la->size() == 3 || (!signers && la->size() == 4))) return unexpected(Error::kMalformed);
    if (!(*la)[0].is_bytes() || !(*la)[1].is_map()) return unexpected(Error::kMalformed);
    if (!(*la)[2].is_bytes() && (signers || !(*la)[2].is_null())) return unexpected(Error::kMalformed);
    auto h = Headers::parse((*la)[0].bytes_view(), (*la)[1], rp);
    if (!h) return unexpected(h.error());
    p.layers.push_back(std::move(*h));
    p.layer_content.push_back((*la)[2].is_bytes() ? *(*la)[2].as_bytes() : Bytes{});
  }
  return p;
}

void put_body(cbor::Encoder& e, uint64_t tag, bool tagged, size_t n_items, const Headers& body) {
  if (tagged) e.put_tag(tag);
  e.put_array(n_items);
  e.put_bstr(body.protected_bytes);
  cbor::encode(body.unprotected, e);
}

void put_recipients(cbor::Encoder& e, const std::vector<Headers>& recipients) {
  e.put_array(recipients.size());
  for (const Headers& r : recipients) {
    e.put_array(3);
    e.put_bstr(r.protected_bytes);
    cbor::encode(r.unprotected, e);
    e.put_bstr(ByteView());  // direct: zero-length ciphertext
  }
}

// sealed_recipients checks the recipient headers and derives the single CEK.
Expected<Bytes, Error> recipients_cek(crypto::Provider& provider, int content_alg,
                                      std::span<const Recipient> recipients,
                                      std::vector<Headers>& sealed) {
  if (recipients.size() != 1) return unexpected(Error::kUnsupportedAlgorithm);
  HeaderPolicy rp;
  rp.understood_critical = kRecipientLabels;
  const Recipient& r = recipients[0];
  if (!r.key) return unexpected(Error::kWrongKey);
  auto h = sealed_headers(r.headers, rp);
  if (!h) return unexpected(h.error());
  auto ralg = h->alg();
  if (!ralg) return unexpected(ralg.error());
  if (!is_direct(*ralg)) return unexpected(Error::kUnsupportedAlgorithm);
  auto len = cek_len(content_alg);
  if (!len) return unexpected(Error::kUnsupportedAlgorithm);
  auto cek = derive_cek(provider, content_alg, *len, *h, *r.key, r.supp);
  if (!cek) return unexpected(cek.error());
  sealed.push_back(std::move(*h));
  return cek;
}

// for_each_fitting_recipient calls `attempt(cek)` for every recipient `key` fits,
// returning the first success, kWrongKey when none fits, or the last failure.
template <class F>
Expected<void, Error> try_recipients(crypto::Provider& provider, const Parsed& p,
                                     int content_alg, const CoseKey& key,
                                     const KdfSupplement& supp, F attempt) {
  if (key.kty != cp::kty::kSymmetric) return unexpected(Error::kWrongKey);
  auto len = cek_len(content_alg);
  if (!len) return unexpected(Error::kUnsupportedAlgorithm);
  Error last = Error::kWrongKey;
  bool tried = false;
  // First the recipients whose kid matches the key's; if none does, the kid is
  // only a hint (RFC 9052 §3.1) and every recipient is tried.
  for (bool by_kid : {true, false}) {
    if (!by_kid && tried) break;
    for (size_t i = 0; i < p.layers.size(); ++i) {
      const Headers& r = p.layers[i];
      auto ralg = r.alg();
      if (!ralg || !is_direct(*ralg)) continue;
      if (!p.layer_content[i].empty()) continue;  // direct: zero-length ciphertext
      if (by_kid && r.find(hdr::kKid) && !key.kid.empty() && !equal(r.kid(), key.kid)) continue;
      if (key.alg && *key.alg != *ralg && *key.alg != content_alg) continue;
      tried = true;
      auto cek = derive_cek(provider, content_alg, *len, r, key, supp);
      if (!cek) {
        last = cek.error();
        continue;
      }
      auto ok = attempt(ByteView(*cek));
      secure_zero(*cek);
      if (ok) return {};
      last = ok.error();
    }
  }
  return unexpected(last);
}

}  // namespace

Bytes kdf_context(int content_alg, size_t key_bits, const Headers& recipient,
                  const KdfSupplement& supp) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(supp.priv_other ? 5 : 4);
  e.put_int(content_alg);
  constexpr int64_t kU[3] = {hdr::kPartyUIdentity, hdr::kPartyUNonce, hdr::kPartyUOther};
  constexpr int64_t kV[3] = {hdr::kPartyVIdentity, hdr::kPartyVNonce, hdr::kPartyVOther};
  const std::optional<Bytes>* const u[3] = {&supp.u_identity, &supp.u_nonce, &supp.u_other};
  const std::optional<Bytes>* const v[3] = {&supp.v_identity, &supp.v_nonce, &supp.v_other};
  put_party(e, recipient, kU, u);
  put_party(e, recipient, kV, v);
  e.put_array(supp.pub_other ? 3 : 2);
  e.put_uint(key_bits);
  e.put_bstr(recipient.authenticated_protected());
  if (supp.pub_other) e.put_bstr(*supp.pub_other);
  if (supp.priv_other) e.put_bstr(*supp.priv_other);
  return out;
}

Expected<Bytes, Error> derive_cek(crypto::Provider& provider, int content_alg, size_t cek_len,
                                  const Headers& recipient, const CoseKey& shared,
                                  const KdfSupplement& supp) {
  if (shared.kty != cp::kty::kSymmetric || shared.k.empty()) return unexpected(Error::kWrongKey);
  auto ralg = recipient.alg();
  if (!ralg) return unexpected(ralg.error());
  if (*ralg == cp::alg::kDirect) {
    if (shared.k.size() != cek_len) return unexpected(Error::kWrongKey);
    return shared.k;
  }
  crypto::Hash hash;
  if (*ralg == cp::alg::kDirectHKDF_SHA256) {
    hash = crypto::Hash::kSha256;
  } else if (*ralg == cp::alg::kDirectHKDF_SHA512) {
    hash = crypto::Hash::kSha512;
  } else {
    return unexpected(Error::kUnsupportedAlgorithm);
  }
  const cbor::Value* salt = recipient.find(hdr::kSalt);
  if (salt && !salt->is_bytes()) return unexpected(Error::kBadHeader);
  Bytes info = kdf_context(content_alg, cek_len * 8, recipient, supp);
  Bytes cek(cek_len);
  auto r = provider.hkdf(hash, salt ? salt->bytes_view() : ByteView(), shared.k, info, cek);
  if (!r) return unexpected(from_crypto(r.error()));
  return cek;
}

Expected<Bytes, Error> encrypt_create(crypto::Provider& provider, const Headers& body,
                                      ByteView plaintext, ByteView external_aad,
                                      std::span<const Recipient> recipients,
                                      const EncryptOptions& opts) {
  auto h = sealed_headers(body, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  auto info = crypto::aead_info(*alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  std::vector<Headers> sealed;
  auto cek = recipients_cek(provider, *alg, recipients, sealed);
  if (!cek) return unexpected(cek.error());
  auto aead = provider.make_aead(*alg, *cek);
  secure_zero(*cek);
  if (!aead) return unexpected(from_crypto(aead.error()));
  uint8_t nonce[32];
  if (info->nonce_len > sizeof nonce) return unexpected(Error::kUnsupportedAlgorithm);
  ACEKDC_TRY(compute_nonce(*h, opts.base_iv, MutableByteView(nonce, info->nonce_len)));
  Bytes aad;
  append_enc_structure(aad, kContextEncrypt, h->authenticated_protected(), external_aad);
  Bytes ct(plaintext.size() + info->tag_len);
  auto n = (*aead)->seal(ByteView(nonce, info->nonce_len), aad, plaintext, ct);
  if (!n) return unexpected(from_crypto(n.error()));
  ct.resize(*n);
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  put_body(e, cp::tag::kCoseEncrypt, opts.tagged, 4, *h);
  if (opts.detached) {
    e.put_null();
  } else {
    e.put_bstr(ct);
  }
  put_recipients(e, sealed);
  return out;
}

Expected<Verified, Error> encrypt_decrypt(crypto::Provider& provider, const CoseKey& key,
                                          ByteView msg, ByteView external_aad,
                                          const MultiVerifyOptions& opts) {
  auto p = parse(msg, cp::tag::kCoseEncrypt, 4, opts, false);
  if (!p) return unexpected(p.error());
  auto alg = p->body.alg();
  if (!alg) return unexpected(alg.error());
  auto info = crypto::aead_info(*alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  if (p->detached != opts.detached_content.has_value()) return unexpected(Error::kDetachedPayload);
  const ByteView ct = p->detached ? *opts.detached_content : ByteView(p->content);
  uint8_t nonce[32];
  if (info->nonce_len > sizeof nonce) return unexpected(Error::kUnsupportedAlgorithm);
  const ByteView base_iv = opts.base_iv.empty() ? ByteView(key.base_iv) : opts.base_iv;
  ACEKDC_TRY(compute_nonce(p->body, base_iv, MutableByteView(nonce, info->nonce_len)));
  if (ct.size() < info->tag_len) return unexpected(Error::kDecryptFailed);
  Bytes aad;
  append_enc_structure(aad, kContextEncrypt, p->body.authenticated_protected(), external_aad);
  Verified v;
  auto r = try_recipients(provider, *p, *alg, key, opts.supp, [&](ByteView cek) -> Expected<void, Error> {
    auto aead = provider.make_aead(*alg, cek);
    if (!aead) return unexpected(from_crypto(aead.error()));
    v.payload.resize(ct.size() - info->tag_len);
    auto n = (*aead)->open(ByteView(nonce, info->nonce_len), aad, ct, v.payload);
    if (!n) return unexpected(Error::kDecryptFailed);
    v.payload.resize(*n);
    return {};
  });
  if (!r) return unexpected(r.error());
  v.headers = std::move(p->body);
  v.tagged = p->tagged;
  return v;
}

Expected<Bytes, Error> mac_create(crypto::Provider& provider, const Headers& body,
                                  ByteView payload, ByteView external_aad,
                                  std::span<const Recipient> recipients,
                                  const CreateOptions& opts) {
  auto h = sealed_headers(body, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  if (!is_mac_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  std::vector<Headers> sealed;
  auto cek = recipients_cek(provider, *alg, recipients, sealed);
  if (!cek) return unexpected(cek.error());
  auto mac = provider.make_mac(*alg, *cek);
  secure_zero(*cek);
  if (!mac) return unexpected(from_crypto(mac.error()));
  Bytes tbm;
  append_mac_structure(tbm, kContextMac, h->authenticated_protected(), external_aad, payload);
  Bytes tag((*mac)->tag_len());
  auto n = (*mac)->compute(tbm, tag);
  if (!n) return unexpected(from_crypto(n.error()));
  tag.resize(*n);
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  put_body(e, cp::tag::kCoseMac, opts.tagged, 5, *h);
  if (opts.detached) {
    e.put_null();
  } else {
    e.put_bstr(payload);
  }
  e.put_bstr(tag);
  put_recipients(e, sealed);
  return out;
}

Expected<Verified, Error> mac_verify(crypto::Provider& provider, const CoseKey& key,
                                     ByteView msg, ByteView external_aad,
                                     const MultiVerifyOptions& opts) {
  auto p = parse(msg, cp::tag::kCoseMac, 5, opts, false);
  if (!p) return unexpected(p.error());
  auto alg = p->body.alg();
  if (!alg) return unexpected(alg.error());
  if (!is_mac_alg(*alg)) return unexpected(Error::kUnsupportedAlgorithm);
  if (p->detached != opts.detached_content.has_value()) return unexpected(Error::kDetachedPayload);
  const ByteView payload = p->detached ? *opts.detached_content : ByteView(p->content);
  Bytes tbm;
  append_mac_structure(tbm, kContextMac, p->body.authenticated_protected(), external_aad, payload);
  auto r = try_recipients(provider, *p, *alg, key, opts.supp, [&](ByteView cek) -> Expected<void, Error> {
    auto mac = provider.make_mac(*alg, cek);
    if (!mac) return unexpected(from_crypto(mac.error()));
    if (!(*mac)->verify(tbm, p->tag)) return unexpected(Error::kBadTag);
    return {};
  });
  if (!r) return unexpected(r.error());
  Verified v;
  v.headers = std::move(p->body);
  v.tagged = p->tagged;
  v.payload = to_bytes(payload);
  return v;
}

Expected<Bytes, Error> sign_create(crypto::Provider& provider, const Headers& body,
                                   ByteView payload, ByteView external_aad,
                                   std::span<const SignerSpec> signers,
                                   const CreateOptions& opts) {
  if (signers.empty()) return unexpected(Error::kMissingHeader);
  auto h = sealed_headers(body, opts.headers);
  if (!h) return unexpected(h.error());
  std::vector<Headers> sh;
  std::vector<Bytes> sigs;
  for (const SignerSpec& s : signers) {
    if (!s.key) return unexpected(Error::kWrongKey);
    auto hs = sealed_headers(s.headers, opts.headers);
    if (!hs) return unexpected(hs.error());
    auto alg = hs->alg();
    if (!alg) return unexpected(alg.error());
    ACEKDC_TRY(check_key_for_alg(*s.key, *alg));
    if (!s.key->has_private()) return unexpected(Error::kWrongKey);
    auto kp = s.key->to_keypair();
    if (!kp) return unexpected(kp.error());
    auto signer = provider.make_signer(*alg, *kp);
    if (!signer) return unexpected(from_crypto(signer.error()));
    Bytes tbs;
    append_sig_structure(tbs, h->authenticated_protected(), hs->authenticated_protected(),
                         external_aad, payload);
    Bytes sig((*signer)->signature_len());
    auto n = (*signer)->sign(tbs, sig);
    if (!n) return unexpected(from_crypto(n.error()));
    sig.resize(*n);
    sh.push_back(std::move(*hs));
    sigs.push_back(std::move(sig));
  }
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  put_body(e, cp::tag::kCoseSign, opts.tagged, 4, *h);
  if (opts.detached) {
    e.put_null();
  } else {
    e.put_bstr(payload);
  }
  e.put_array(sh.size());
  for (size_t i = 0; i < sh.size(); ++i) {
    e.put_array(3);
    e.put_bstr(sh[i].protected_bytes);
    cbor::encode(sh[i].unprotected, e);
    e.put_bstr(sigs[i]);
  }
  return out;
}

Expected<Verified, Error> sign_verify(crypto::Provider& provider, const CoseKey& key,
                                      ByteView msg, ByteView external_aad,
                                      const VerifyOptions& opts) {
  auto p = parse(msg, cp::tag::kCoseSign, 4, opts, true);
  if (!p) return unexpected(p.error());
  if (p->detached != opts.detached_content.has_value()) return unexpected(Error::kDetachedPayload);
  const ByteView payload = p->detached ? *opts.detached_content : ByteView(p->content);
  auto kp = key.to_public_keypair();
  if (!kp) return unexpected(kp.error());
  Error last = Error::kWrongKey;
  bool tried = false;
  for (size_t pass = 0; pass < 2 * p->layers.size(); ++pass) {
    // First pass: signers whose kid matches the key's; second pass (only if none
    // did): all signers, the kid being a hint.
    const bool by_kid = pass < p->layers.size();
    if (!by_kid && tried) break;
    const size_t i = pass % p->layers.size();
    const Headers& s = p->layers[i];
    auto alg = s.alg();
    if (!alg) {
      last = alg.error();
      continue;
    }
    if (by_kid && s.find(hdr::kKid) && !key.kid.empty() && !equal(s.kid(), key.kid)) continue;
    tried = true;
    if (!check_key_for_alg(key, *alg)) continue;
    auto verifier = provider.make_verifier(*alg, *kp);
    if (!verifier) {
      last = from_crypto(verifier.error());
      continue;
    }
    Bytes tbs;
    append_sig_structure(tbs, p->body.authenticated_protected(), s.authenticated_protected(),
                         external_aad, payload);
    if ((*verifier)->verify(tbs, p->layer_content[i])) {
      Verified v;
      v.headers = std::move(p->body);
      v.tagged = p->tagged;
      v.payload = to_bytes(payload);
      return v;
    }
    last = Error::kBadSignature;
  }
  return unexpected(last);
}

}  // namespace acekdc::cose
