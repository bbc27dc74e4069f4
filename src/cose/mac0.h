// COSE_Mac0 (RFC 9052 §6.2, §6.3): MAC with a key known to both sides.
#pragma once

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"
#include "cose/key.h"
#include "cose/message.h"
#include "crypto/provider.h"

namespace acekdc::cose {

// mac0_create computes the tag over ["MAC0", protected, external_aad, payload] with
// `mac` (alg header must equal mac.alg(): kWrongKey) and returns the COSE_Mac0.
Expected<Bytes, Error> mac0_create(crypto::Mac& mac, const Headers& headers, ByteView payload,
                                   ByteView external_aad = {}, const CreateOptions& opts = {});
// mac0_create with a Symmetric COSE_Key (check_key_for_alg).
Expected<Bytes, Error> mac0_create(crypto::Provider& provider, const CoseKey& key,
                                   const Headers& headers, ByteView payload,
                                   ByteView external_aad = {}, const CreateOptions& opts = {});

// mac0_verify decodes and verifies (constant-time compare in the provider). Errors:
// decode_message() ones, kMissingHeader / kUnsupportedAlgorithm, kDetachedPayload,
// kBadTag.
Expected<Verified, Error> mac0_verify(crypto::Mac& mac, ByteView msg, ByteView external_aad = {},
                                      const VerifyOptions& opts = {});
Expected<Verified, Error> mac0_verify(crypto::Provider& provider, const CoseKey& key,
                                      ByteView msg, ByteView external_aad = {},
                                      const VerifyOptions& opts = {});
Expected<void, Error> mac0_verify_message(crypto::Mac& mac, const Message& m,
                                          ByteView external_aad,
                                          const std::optional<ByteView>& detached = {});

}  // namespace acekdc::cose
