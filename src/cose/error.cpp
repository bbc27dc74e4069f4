#include "cose/error.h"

namespace acekdc::cose {

const char* to_string(Error e) {
  switch (e) {
    case Error::kMalformed: return "malformed COSE structure";
    case Error::kUnexpectedTag: return "unexpected CBOR tag";
    case Error::kUnsupportedAlgorithm: return "unsupported algorithm";
    case Error::kMissingHeader: return "missing required header parameter";
    case Error::kDuplicateHeader: return "header label in both protected and unprotected bucket";
    case Error::kBadHeader: return "malformed header parameter";
    case Error::kUnknownCritical: return "unknown critical header parameter";
    case Error::kInvalidKey: return "invalid COSE key";
    case Error::kWrongKey: return "key does not fit the message";
    case Error::kBadSignature: return "signature does not verify";
    case Error::kBadTag: return "MAC tag does not verify";
    case Error::kDecryptFailed: return "decryption failed";
    case Error::kDetachedPayload: return "detached payload mismatch";
    case Error::kCrypto: return "crypto provider failure";
    case Error::kTooLarge: return "input too large";
  }
  return "unknown COSE error";
}

Error from_crypto(crypto::Error e) {
  switch (e) {
    case crypto::Error::kUnsupportedAlgorithm: return Error::kUnsupportedAlgorithm;
    case crypto::Error::kInvalidKey: return Error::kInvalidKey;
    case crypto::Error::kBadSignature: return Error::kBadSignature;
    case crypto::Error::kAuthenticationFailed: return Error::kDecryptFailed;
    case crypto::Error::kInvalidArgument:
    case crypto::Error::kInternal: return Error::kCrypto;
  }
  return Error::kCrypto;
}

}  // namespace acekdc::cose
