#include "oscore/error.h"

namespace acekdc::oscore {

const char* to_string(Error e) {
  switch (e) {
    case Error::kInvalidArgument: return "invalid argument";
    case Error::kUnsupportedAlgorithm: return "unsupported algorithm";
    case Error::kCrypto: return "crypto provider failure";
    case Error::kBufferTooSmall: return "buffer too small";
    case Error::kMalformedOption: return "malformed OSCORE option";
    case Error::kMalformedMessage: return "malformed message";
    case Error::kContextNotFound: return "security context not found";
    case Error::kDecryptionFailed: return "decryption failed";
    case Error::kReplay: return "replay detected";
    case Error::kSenderLimitReached: return "sender key usage limit reached";
    case Error::kRecipientLimitReached: return "recipient key usage limit reached";
    case Error::kContextExpired: return "security context expired";
    case Error::kSequenceExhausted: return "sender sequence number space exhausted";
    case Error::kStorageFailure: return "sequence number storage failed";
    case Error::kLimitsTooWeak: return "key usage limits exceed 2^-54 advantage";
    case Error::kKeyUpdateMismatch: return "key update nonce mismatch";
    case Error::kBadState: return "operation not valid in this state";
    case Error::kEchoRequired: return "replay window not initialised: Echo required";
  }
  return "unknown error";
}

}  // namespace acekdc::oscore
