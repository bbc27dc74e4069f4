// COSE (RFC 9052/9053) layer errors.
#pragma once

#include <cstdint>

#include "crypto/provider.h"

namespace acekdc::cose {

// Error: why a COSE operation failed. Every value names one cause; a caller that
// receives any of them must treat the message (or key) as unusable.
enum class Error : uint8_t {
  kMalformed = 1,         // not well-formed CBOR or not the COSE structure (wrong array size,
                          // wrong item types, protected bucket not a map, trailing bytes)
  kUnexpectedTag,         // a CBOR tag other than the expected COSE tag, or a tag where none
                          // is allowed / none where one is required
  kUnsupportedAlgorithm,  // alg unknown to us, of the wrong family, or given as text
  kMissingHeader,         // a required header parameter (alg, IV) is absent
  kDuplicateHeader,       // a label appears in both the protected and the unprotected bucket
  kBadHeader,             // a known header parameter with the wrong type (kid not bstr, ...)
                          // or a malformed crit, or IV and Partial IV both present
  kUnknownCritical,       // crit names a label this implementation does not understand
  kInvalidKey,            // the COSE_Key is malformed, lacks a required parameter, or has
                          // wrong lengths for its curve / algorithm
  kWrongKey,              // the key cannot be used with this message (kty/crv/alg mismatch,
                          // missing private part for signing)
  kBadSignature,          // COSE_Sign1 signature does not verify
  kBadTag,                // COSE_Mac0 tag does not verify
  kDecryptFailed,         // COSE_Encrypt0 authentication failed
  kDetachedPayload,       // payload is nil but no detached payload was given, or a detached
                          // payload was given for a message that carries its own
  kCrypto,                // the crypto provider failed for a reason other than the above
  kTooLarge,              // input above a configured limit
};

// to_string returns a short English description; never includes key material.
const char* to_string(Error e);

// from_crypto maps a provider error to the COSE error it means in context.
Error from_crypto(crypto::Error e);

}  // namespace acekdc::cose
