#include "groupcomm/pop.h"

#include "core/codepoints.h"

namespace acekdc::groupcomm {

const char* to_string(PopError e) {
  switch (e) {
    case PopError::kBadKey: return "client_cred is not a valid COSE_Key";
    case PopError::kIncompatibleKey: return "client_cred does not match the group's sign_info";
    case PopError::kNoNonce: return "no rsnonce known for this client";
    case PopError::kBadNonce: return "invalid cnonce";
    case PopError::kBadSignature: return "client_cred_verify does not verify";
    case PopError::kUnsupported: return "signature algorithm not supported";
  }
  return "?";
}

namespace {

constexpr size_t kMaxNonce = 64;

Bytes concat(ByteView a, ByteView b) {
  Bytes m;
  m.reserve(a.size() + b.size());
  m.insert(m.end(), a.begin(), a.end());
  m.insert(m.end(), b.begin(), b.end());
  return m;
}

}  // namespace

Expected<cose::CoseKey, PopError> check_client_cred(ByteView client_cred,
                                                    const kdc::SignInfo& sign_info) {
  auto key = cose::CoseKey::decode(client_cred);
  if (!key) return unexpected(PopError::kBadKey);
  if (key->has_private() || key->is_symmetric()) return unexpected(PopError::kIncompatibleKey);
  // sign_key_parameters is [kty, crv] (REQ3-REQ5).
  const auto& kp = sign_info.sign_key_params;
  if (kp.size() < 2) return unexpected(PopError::kUnsupported);
  if (key->kty != kp[0] || key->crv != kp[1]) return unexpected(PopError::kIncompatibleKey);
  if (key->alg && *key->alg != sign_info.sign_alg) return unexpected(PopError::kIncompatibleKey);
  if (sign_info.sign_alg == cp::alg::kEdDSA) {
    if (key->kty != cp::kty::kOKP || key->crv != cp::crv::kEd25519) return unexpected(PopError::kIncompatibleKey);
  } else if (sign_info.sign_alg == cp::alg::kES256) {
    if (key->kty != cp::kty::kEC2 || key->crv != cp::crv::kP256) return unexpected(PopError::kIncompatibleKey);
  } else {
    return unexpected(PopError::kUnsupported);
  }
  return key->public_key();
}

Expected<Bytes, PopError> verify_pop(crypto::Provider& provider, const kdc::SignInfo& sign_info,
                                     ByteView client_cred, ByteView n_s, ByteView n_c,
                                     ByteView client_cred_verify) {
  auto key = check_client_cred(client_cred, sign_info);
  if (!key) return unexpected(key.error());
  if (n_s.empty()) return unexpected(PopError::kNoNonce);
  if (n_c.empty() || n_c.size() > kMaxNonce) return unexpected(PopError::kBadNonce);
  auto kp = key->to_public_keypair();
  if (!kp) return unexpected(PopError::kBadKey);
  auto verifier = provider.make_verifier(sign_info.sign_alg, *kp);
  if (!verifier) {
    return unexpected(verifier.error() == crypto::Error::kInvalidKey ? PopError::kBadKey
                                                                     : PopError::kUnsupported);
  }
  Bytes msg = concat(n_s, n_c);
  if (!(*verifier)->verify(msg, client_cred_verify)) return unexpected(PopError::kBadSignature);
  cose::CoseKey stored = std::move(*key);
  stored.kid.clear();
  return stored.encode(false);
}

Expected<Bytes, PopError> sign_pop(crypto::Provider& provider, int sign_alg, const cose::CoseKey& key,
                                   ByteView n_s, ByteView n_c) {
  auto kp = key.to_keypair();
  if (!kp) return unexpected(PopError::kBadKey);
  auto signer = provider.make_signer(sign_alg, *kp);
  if (!signer) return unexpected(PopError::kBadKey);
  Bytes sig((*signer)->signature_len());
  Bytes msg = concat(n_s, n_c);
  auto n = (*signer)->sign(msg, sig);
  if (!n) return unexpected(PopError::kUnsupported);
  sig.resize(*n);
  return sig;
}

}  // namespace acekdc::groupcomm
