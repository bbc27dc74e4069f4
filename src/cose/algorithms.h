// COSE algorithm families and key/algorithm compatibility.
#pragma once

#include <optional>

#include "core/expected.h"
#include "cose/error.h"
#include "crypto/provider.h"

namespace acekdc::cose {

struct CoseKey;

enum class AlgFamily : uint8_t { kUnknown, kSignature, kAead, kMac };

// family classifies a COSE algorithm id among the ones acekdc implements.
AlgFamily family(int alg);
inline bool is_signature_alg(int alg) { return family(alg) == AlgFamily::kSignature; }
inline bool is_mac_alg(int alg) { return family(alg) == AlgFamily::kMac; }
// aead_params returns the key / nonce / tag sizes of an AEAD alg, nullopt otherwise.
std::optional<crypto::AeadInfo> aead_params(int alg);

// check_key_for_alg succeeds if `key` may be used with `alg`: the kty (and crv) fit
// the algorithm and a key restricted to an algorithm (key.alg) names this one.
// kUnsupportedAlgorithm if alg is not supported, kWrongKey otherwise.
Expected<void, Error> check_key_for_alg(const CoseKey& key, int alg);

}  // namespace acekdc::cose
