// COSE_Encrypt0 (RFC 9052 §5.2, §5.3): AEAD with a key known to both sides.
#pragma once

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"
#include "cose/key.h"
#include "cose/message.h"
#include "crypto/provider.h"

namespace acekdc::cose {

// compute_nonce builds the AEAD nonce for `h` (RFC 9052 §3.1): the IV header if
// present (its length must be nonce.size(): kBadHeader); else the Partial IV,
// left-padded to the nonce length and XORed with the left-padded base_iv (the
// key's Context IV; kWrongKey when empty, kInvalidKey when longer than the nonce;
// kBadHeader when the Partial IV is). kMissingHeader when neither is present.
Expected<void, Error> compute_nonce(const Headers& h, ByteView base_iv, MutableByteView nonce);

struct EncryptOptions : CreateOptions {
  ByteView base_iv;  // Context IV for a Partial IV header (the key's base_iv if empty)
};
struct DecryptOptions : VerifyOptions {
  ByteView base_iv;  // as for EncryptOptions
};

// encrypt0_create encrypts `plaintext` with `aead` (alg header must equal aead.alg():
// kWrongKey), Enc_structure ["Encrypt0", protected, external_aad] as AAD, nonce per
// compute_nonce(). The caller puts a fresh IV or Partial IV in `headers`.
Expected<Bytes, Error> encrypt0_create(crypto::Aead& aead, const Headers& headers,
                                       ByteView plaintext, ByteView external_aad = {},
                                       const EncryptOptions& opts = {});
// encrypt0_create with a Symmetric COSE_Key (check_key_for_alg).
Expected<Bytes, Error> encrypt0_create(crypto::Provider& provider, const CoseKey& key,
                                       const Headers& headers, ByteView plaintext,
                                       ByteView external_aad = {},
                                       const EncryptOptions& opts = {});

// encrypt0_write appends to `out` a COSE_Encrypt0 (in tag 16 when `tagged`) with
// protected {alg: aead.alg()}, unprotected {kid: kid (left out when empty), IV: iv}
// and the ciphertext of `plaintext` sealed with `aead` under the Enc_structure
// ["Encrypt0", protected, external_aad]: the bytes encrypt0_create writes for these
// headers, without building header maps (the token hot path; `aead` is keyed once
// by the caller and reused). Errors: kBadHeader (iv.size() != nonce length),
// kUnsupportedAlgorithm (aead.alg() not a COSE AEAD), kCrypto. On error `out` is
// left as it was.
Expected<void, Error> encrypt0_write(crypto::Aead& aead, ByteView kid, ByteView iv, ByteView plaintext,
                                     ByteView external_aad, bool tagged, Bytes& out);

// encrypt0_decrypt decodes and decrypts. Errors: decode_message() ones,
// kMissingHeader / kUnsupportedAlgorithm for alg, compute_nonce() ones,
// kDetachedPayload, kDecryptFailed.
Expected<Verified, Error> encrypt0_decrypt(crypto::Aead& aead, ByteView msg,
                                           ByteView external_aad = {},
                                           const DecryptOptions& opts = {});
Expected<Verified, Error> encrypt0_decrypt(crypto::Provider& provider, const CoseKey& key,
                                           ByteView msg, ByteView external_aad = {},
                                           const DecryptOptions& opts = {});
// encrypt0_decrypt_message decrypts an already decoded message into `plaintext`.
Expected<void, Error> encrypt0_decrypt_message(crypto::Aead& aead, const Message& m,
                                               ByteView external_aad, ByteView base_iv,
                                               const std::optional<ByteView>& detached,
                                               Bytes& plaintext);

}  // namespace acekdc::cose
