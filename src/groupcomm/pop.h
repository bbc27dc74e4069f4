// Proof of possession of a joining node's private key (seed draft §4.1.2.1,
// docs/profile.md REQ3-REQ6, REQ17).
//
// client_cred_verify is a signature by the client's private key over N_S || N_C,
// where N_S is the rsnonce the KDC gave the client (at the token POST, or later
// per REQ17) and N_C the cnonce of the request, with the group's sign_info
// algorithm. client_cred must be a public COSE_Key compatible with sign_info:
// OKP Ed25519 for EdDSA, EC2 P-256 for ES256.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/key.h"
#include "crypto/provider.h"
#include "kdc/model.h"

namespace acekdc::groupcomm {

enum class PopError : uint8_t {
  kBadKey,           // client_cred is not a valid COSE_Key
  kIncompatibleKey,  // key type / curve / alg do not match the group's sign_info,
                     // or the key carries a private part
  kNoNonce,          // no N_S is known for the client (REQ17: answer with a fresh rsnonce)
  kBadNonce,         // empty or oversized cnonce
  kBadSignature,     // the signature does not verify
  kUnsupported,      // the group's sign algorithm is not available in the provider
};
const char* to_string(PopError e);

// check_client_cred decodes client_cred and checks it against `sign_info`.
// Success: the key, public part only.
Expected<cose::CoseKey, PopError> check_client_cred(ByteView client_cred,
                                                    const kdc::SignInfo& sign_info);

// verify_pop checks client_cred (as check_client_cred) and then the signature
// `client_cred_verify` over n_s || n_c. Success: the public key to store
// (canonical COSE_Key encoding without kid; the KDC adds the Sender ID as kid
// when it distributes the key). n_c must be 1..64 bytes.
Expected<Bytes, PopError> verify_pop(crypto::Provider& provider, const kdc::SignInfo& sign_info,
                                     ByteView client_cred, ByteView n_s, ByteView n_c,
                                     ByteView client_cred_verify);

// sign_pop is the client's side: the signature over n_s || n_c with `key`
// (which must hold the private part). For tests and the client layer.
Expected<Bytes, PopError> sign_pop(crypto::Provider& provider, int sign_alg,
                                   const cose::CoseKey& key, ByteView n_s, ByteView n_c);

}  // namespace acekdc::groupcomm
