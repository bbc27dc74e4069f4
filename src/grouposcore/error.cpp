#include "grouposcore/error.h"

namespace acekdc::grouposcore {

const char* to_string(Error e) {
  switch (e) {
    case Error::kInvalidArgument: return "invalid argument";
    case Error::kUnsupportedAlgorithm: return "unsupported algorithm";
    case Error::kInvalidKey: return "public key does not fit the group's signature algorithm";
    case Error::kMalformedMaterial: return "malformed Group_OSCORE_Input_Material";
    case Error::kMalformedMessage: return "malformed message";
    case Error::kMalformedOption: return "malformed OSCORE option";
    case Error::kNotGroupMode: return "not a group mode message";
    case Error::kStaleGroupId: return "stale Group ID (from before a rekeying)";
    case Error::kUnknownGroupId: return "unknown Group ID (fetch the latest keying material)";
    case Error::kUnknownSender: return "unknown sender (fetch its public key)";
    case Error::kOwnMessage: return "own message";
    case Error::kReplay: return "replay detected";
    case Error::kBadSignature: return "countersignature does not verify";
    case Error::kDecryptionFailed: return "decryption failed";
    case Error::kTooManyMembers: return "too many member keys";
    case Error::kSequenceExhausted: return "sender sequence number exhausted";
    case Error::kStorageFailure: return "sequence number could not be persisted";
    case Error::kBufferTooSmall: return "buffer too small";
    case Error::kCrypto: return "crypto provider failure";
    case Error::kEchoRequired: return "first request from this sender: Echo challenge (not delivered)";
  }
  return "unknown error";
}

}  // namespace acekdc::grouposcore
