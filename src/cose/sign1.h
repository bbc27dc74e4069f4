// COSE_Sign1 (RFC 9052 §4.2, §4.4): create and verify single-signer messages.
#pragma once

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"
#include "cose/key.h"
#include "cose/message.h"
#include "crypto/provider.h"

namespace acekdc::cose {

// sign1_create signs ["Signature1", protected, external_aad, payload] with `signer`
// and returns the encoded COSE_Sign1. `headers` must carry alg (kMissingHeader)
// equal to signer.alg() (kWrongKey); header errors as validate(). The payload is
// sent unless opts.detached.
Expected<Bytes, Error> sign1_create(crypto::Signer& signer, const Headers& headers,
                                    ByteView payload, ByteView external_aad = {},
                                    const CreateOptions& opts = {});
// sign1_create with a COSE_Key: the key must fit the alg header (check_key_for_alg)
// and hold its private part (kWrongKey otherwise).
Expected<Bytes, Error> sign1_create(crypto::Provider& provider, const CoseKey& key,
                                    const Headers& headers, ByteView payload,
                                    ByteView external_aad = {}, const CreateOptions& opts = {});

// sign1_verify decodes `msg` as COSE_Sign1 and verifies its signature with
// `verifier` (whose alg must equal the alg header: kWrongKey). Errors: the
// decode_message() ones, kMissingHeader / kUnsupportedAlgorithm for alg,
// kDetachedPayload, kBadSignature.
Expected<Verified, Error> sign1_verify(crypto::Verifier& verifier, ByteView msg,
                                       ByteView external_aad = {},
                                       const VerifyOptions& opts = {});
// sign1_verify with a COSE_Key (public part used; kWrongKey if it does not fit the alg).
Expected<Verified, Error> sign1_verify(crypto::Provider& provider, const CoseKey& key,
                                       ByteView msg, ByteView external_aad = {},
                                       const VerifyOptions& opts = {});
// sign1_verify_message verifies an already decoded message (type kSign1).
Expected<void, Error> sign1_verify_message(crypto::Verifier& verifier, const Message& m,
                                           ByteView external_aad,
                                           const std::optional<ByteView>& detached = {});

}  // namespace acekdc::cose
