#include "cose/algorithms.h"

#include "core/codepoints.h"
#include "cose/key.h"

namespace acekdc::cose {

AlgFamily family(int alg) {
  if (alg == cp::alg::kES256 || alg == cp::alg::kEdDSA) return AlgFamily::kSignature;
  if (crypto::mac_info(alg)) return AlgFamily::kMac;
  if (crypto::aead_info(alg)) return AlgFamily::kAead;
  return AlgFamily::kUnknown;
}

std::optional<crypto::AeadInfo> aead_params(int alg) { return crypto::aead_info(alg); }

Expected<void, Error> check_key_for_alg(const CoseKey& key, int alg) {
  switch (family(alg)) {
    case AlgFamily::kUnknown: return unexpected(Error::kUnsupportedAlgorithm);
    case AlgFamily::kSignature:
      if (alg == cp::alg::kES256 && !(key.kty == cp::kty::kEC2 && key.crv == cp::crv::kP256))
        return unexpected(Error::kWrongKey);
      if (alg == cp::alg::kEdDSA && !(key.kty == cp::kty::kOKP && key.crv == cp::crv::kEd25519))
        return unexpected(Error::kWrongKey);
      break;
    case AlgFamily::kAead: {
      if (key.kty != cp::kty::kSymmetric) return unexpected(Error::kWrongKey);
      auto info = crypto::aead_info(alg);
      if (info->key_len != key.k.size()) return unexpected(Error::kWrongKey);
      break;
    }
    case AlgFamily::kMac:
      if (key.kty != cp::kty::kSymmetric || key.k.empty()) return unexpected(Error::kWrongKey);
      break;
  }
  if (key.alg && *key.alg != alg) return unexpected(Error::kWrongKey);
  return {};
}

}  // namespace acekdc::cose
