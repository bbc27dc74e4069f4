// The algorithm tables and error names of the crypto contract. Pure data: no
// backend is needed to answer "how long is the nonce of alg 10".
#include "crypto/provider.h"

#include "core/codepoints.h"

namespace acekdc::crypto {

const char* to_string(Error e) {
  switch (e) {
    case Error::kUnsupportedAlgorithm: return "unsupported algorithm";
    case Error::kInvalidKey: return "invalid key";
    case Error::kInvalidArgument: return "invalid argument";
    case Error::kAuthenticationFailed: return "authentication failed";
    case Error::kBadSignature: return "bad signature";
    case Error::kInternal: return "internal crypto error";
  }
  return "unknown crypto error";
}

std::optional<AeadInfo> aead_info(int alg) {
  namespace a = cp::alg;
  // RFC 9053 §4.1 (GCM), §4.2 (CCM: AES-CCM-<L bits as 16|64>-<tag bits>-<key bits>;
  // nonce length is 15 - L/8 bytes), §4.3 (ChaCha20/Poly1305).
  switch (alg) {
    case a::kA128GCM: return AeadInfo{16, 12, 16};
    case a::kA192GCM: return AeadInfo{24, 12, 16};
    case a::kA256GCM: return AeadInfo{32, 12, 16};
    case a::kAES_CCM_16_64_128: return AeadInfo{16, 13, 8};
    case a::kAES_CCM_16_64_256: return AeadInfo{32, 13, 8};
    case a::kAES_CCM_64_64_128: return AeadInfo{16, 7, 8};
    case a::kAES_CCM_64_64_256: return AeadInfo{32, 7, 8};
    case a::kAES_CCM_16_128_128: return AeadInfo{16, 13, 16};
    case a::kAES_CCM_16_128_256: return AeadInfo{32, 13, 16};
    case a::kAES_CCM_64_128_128: return AeadInfo{16, 7, 16};
    case a::kAES_CCM_64_128_256: return AeadInfo{32, 7, 16};
    case a::kChaCha20Poly1305: return AeadInfo{32, 12, 16};
    default: return std::nullopt;
  }
}

std::optional<MacInfo> mac_info(int alg) {
  namespace a = cp::alg;
  // RFC 9053 §3.1.
  switch (alg) {
    case a::kHMAC256_64: return MacInfo{32, 8};
    case a::kHMAC256_256: return MacInfo{32, 32};
    case a::kHMAC384_384: return MacInfo{48, 48};
    case a::kHMAC512_512: return MacInfo{64, 64};
    default: return std::nullopt;
  }
}

std::optional<size_t> signature_len(int alg) {
  switch (alg) {
    case cp::alg::kES256: return 64;  // RFC 9053 §2.1: r||s, 32 bytes each
    case cp::alg::kEdDSA: return 64;  // RFC 8032 Ed25519
    default: return std::nullopt;
  }
}

}  // namespace acekdc::crypto
