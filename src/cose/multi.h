// The multi-layer COSE messages (RFC 9052 §4.1, §5.1, §6.1): COSE_Sign with one
// or more signers, and COSE_Encrypt / COSE_Mac with a recipient layer using a
// key both sides already share: "direct" (-6) or "direct+HKDF-SHA-256/512"
// (-10 / -11, RFC 9053 §6.1.2, COSE_KDF_Context of §5.2). Key transport and key
// agreement recipients are not supported (kUnsupportedAlgorithm).
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/encrypt0.h"
#include "cose/error.h"
#include "cose/headers.h"
#include "cose/key.h"
#include "cose/message.h"
#include "crypto/provider.h"

namespace acekdc::cose {

// KdfSupplement: the parts of COSE_KDF_Context that are not sent (RFC 9053 §5.2):
// SuppPubInfo.other, SuppPrivInfo, and PartyU / PartyV fields both sides know
// (used when the recipient headers do not carry them, as in RFC 9052 C.3.2).
// Both sides must agree on them out of band.
struct KdfSupplement {
  std::optional<Bytes> pub_other;
  std::optional<Bytes> priv_other;
  std::optional<Bytes> u_identity, u_nonce, u_other;
  std::optional<Bytes> v_identity, v_nonce, v_other;
};

// kdf_context builds COSE_KDF_Context for a direct+HKDF recipient: AlgorithmID =
// content alg, PartyU/PartyV = [identity, nonce, other] from the recipient headers
// (-21..-26), else from `supp`, else nil, SuppPubInfo = [key_bits, recipient protected, ?
// pub_other], ? SuppPrivInfo.
Bytes kdf_context(int content_alg, size_t key_bits, const Headers& recipient,
                  const KdfSupplement& supp);

// derive_cek derives the content key for one recipient: for direct the shared key
// itself (its length must be cek_len: kWrongKey), for direct+HKDF
// HKDF(salt = header -20 or none, ikm = shared key, info = kdf_context, L = cek_len).
Expected<Bytes, Error> derive_cek(crypto::Provider& provider, int content_alg, size_t cek_len,
                                  const Headers& recipient, const CoseKey& shared,
                                  const KdfSupplement& supp);

// Recipient: one recipient layer to create (headers must carry alg -6, -10 or -11).
struct Recipient {
  Headers headers;
  const CoseKey* key = nullptr;  // Symmetric shared secret
  KdfSupplement supp;
};

// Signer: one signer of a COSE_Sign to create (headers must carry the signature alg).
struct SignerSpec {
  Headers headers;
  const CoseKey* key = nullptr;
};

struct MultiVerifyOptions : VerifyOptions {
  KdfSupplement supp;  // for direct+HKDF recipients
  ByteView base_iv;    // Context IV for a Partial IV in the body (COSE_Encrypt)
};

// encrypt_create: COSE_Encrypt (tag 96). Direct recipients allow exactly one
// recipient (RFC 9052 §8.5.1); the body needs an IV or Partial IV (opts.base_iv).
Expected<Bytes, Error> encrypt_create(crypto::Provider& provider, const Headers& body,
                                      ByteView plaintext, ByteView external_aad,
                                      std::span<const Recipient> recipients,
                                      const EncryptOptions& opts = {});
// encrypt_decrypt: finds a recipient the key fits (kid and direct / direct+HKDF alg),
// derives the CEK and decrypts. kWrongKey if no recipient fits; kDecryptFailed.
Expected<Verified, Error> encrypt_decrypt(crypto::Provider& provider, const CoseKey& key,
                                          ByteView msg, ByteView external_aad = {},
                                          const MultiVerifyOptions& opts = {});

// mac_create / mac_verify: COSE_Mac (tag 97), MAC_structure context "MAC".
Expected<Bytes, Error> mac_create(crypto::Provider& provider, const Headers& body,
                                  ByteView payload, ByteView external_aad,
                                  std::span<const Recipient> recipients,
                                  const CreateOptions& opts = {});
Expected<Verified, Error> mac_verify(crypto::Provider& provider, const CoseKey& key,
                                     ByteView msg, ByteView external_aad = {},
                                     const MultiVerifyOptions& opts = {});

// sign_create / sign_verify: COSE_Sign (tag 98). sign_verify succeeds if a signer
// the key fits (kid when both have one, alg) has a valid signature; kWrongKey if no
// signer fits, kBadSignature otherwise.
Expected<Bytes, Error> sign_create(crypto::Provider& provider, const Headers& body,
                                   ByteView payload, ByteView external_aad,
                                   std::span<const SignerSpec> signers,
                                   const CreateOptions& opts = {});
Expected<Verified, Error> sign_verify(crypto::Provider& provider, const CoseKey& key,
                                      ByteView msg, ByteView external_aad = {},
                                      const VerifyOptions& opts = {});

}  // namespace acekdc::cose
