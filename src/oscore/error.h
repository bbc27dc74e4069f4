// OSCORE errors (RFC 8613 with draft-hoeglund-core-oscore-key-limits-01).
#pragma once

#include <cstdint>

namespace acekdc::oscore {

// Error lists every way an OSCORE operation can fail. What the caller must do:
//   kInvalidArgument, kUnsupportedAlgorithm: fix the configuration.
//   kMalformedOption, kMalformedMessage: drop / answer 4.02 (option) or 4.00 (message).
//   kContextNotFound: answer 4.01 "Security context not found".
//   kDecryptionFailed: answer 4.00 "Decryption failed" (counted in count_v).
//   kReplay: answer 4.01 "Replay detected" (not counted in count_v).
//   kSenderLimitReached / kRecipientLimitReached / kContextExpired /
//   kSequenceExhausted: the context is unusable; run a key update (or re-establish).
//   kStorageFailure: the sequence number could not be persisted; do not send.
//   kEchoRequired: the replay window is not initialised (RFC 8613 Appendix B.1.2);
//     answer with an OSCORE-protected 4.01 carrying Echo = Context::echo_challenge().
enum class Error : uint8_t {
  kInvalidArgument = 1,     // bad parameter (ID too long for the nonce, wrong key size, ...)
  kUnsupportedAlgorithm,    // AEAD or HKDF algorithm we do not implement
  kCrypto,                  // the crypto provider failed unexpectedly
  kBufferTooSmall,          // a caller-supplied output buffer is too small
  kMalformedOption,         // OSCORE option value does not decode (RFC 8613 §6.1, seed §3.1)
  kMalformedMessage,        // CoAP message / plaintext does not decode (RFC 8613 §8.2 step 2)
  kContextNotFound,         // no security context for kid / kid context
  kDecryptionFailed,        // AEAD verification failed
  kReplay,                  // Partial IV already seen or outside the replay window
  kSenderLimitReached,      // count_q exceeded limit_q (seed §2.3.1)
  kRecipientLimitReached,   // count_v reached limit_v (seed §2.3.2)
  kContextExpired,          // the Common Context 'exp' has passed (seed §2.2.1)
  kSequenceExhausted,       // Sender Sequence Number above 2^40-1 (RFC 8613 §7.2.1)
  kStorageFailure,          // the sequence store failed to persist a reservation
  kLimitsTooWeak,           // (q, v, l) gives IA or CA above 2^-54 (seed §2.1.1)
  kKeyUpdateMismatch,       // key update: R1 in R1|R2 differs from what we sent (seed §3.3)
  kBadState,                // operation not valid in the current state
  kEchoRequired,            // replay window uninitialised: request verified, but needs a fresh Echo (RFC 8613 App. B.1.2)
};

// to_string returns a short English description; never includes key material.
const char* to_string(Error e);

}  // namespace acekdc::oscore
