// Security context derivation (RFC 8613 §3.2) and AEAD nonce construction (§5.2).
//
// API in brief
//   ContextParams         the input parameters of a Security Context (§3.1/§3.2)
//   derive_keys(p, in)    -> Sender Key, Recipient Key, Common IV (§3.2.1)
//   build_info(...)       the CBOR 'info' array fed to HKDF-Expand (§3.2.1)
//   hkdf_hash(alg)        HKDF algorithm id -> hash (-10 and 5 both mean HKDF SHA-256)
//   encode_piv / make_nonce   Partial IV bytes and the nonce XOR of §5.2
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "crypto/provider.h"
#include "oscore/error.h"

namespace acekdc::oscore {

// Largest key / nonce sizes of the AEAD algorithms OSCORE can use.
inline constexpr size_t kMaxKeyLen = 32;
inline constexpr size_t kMaxNonceLen = 16;
// kMinNonceLen: RFC 8613 §5.2 needs 1 + 5 bytes plus at least one byte of ID.
inline constexpr size_t kMinNonceLen = 7;

// ContextParams: the input parameters of an OSCORE Security Context (RFC 8613 §3.2).
// master_secret is secret; it is zeroed on destruction.
struct ContextParams {
  int aead_alg = cp::alg::kAES_CCM_16_64_128;  // RFC 8613 §3.2 default
  int hkdf_alg = cp::alg::kDirectHKDF_SHA256;  // RFC 8613 §3.2 default (5 is accepted too)
  Bytes master_secret;
  Bytes master_salt;                  // empty = the default (empty byte string)
  Bytes sender_id;
  Bytes recipient_id;
  std::optional<Bytes> id_context;    // nullopt = absent (CBOR nil in 'info')

  ContextParams() = default;
  ContextParams(const ContextParams&) = default;
  ContextParams& operator=(const ContextParams&) = default;
  ContextParams(ContextParams&&) = default;
  ContextParams& operator=(ContextParams&&) = default;
  ~ContextParams() { secure_zero(master_secret); }
};

// DerivedKeys: the output of the §3.2.1 derivation. Keys are secret; zeroed on destruction.
struct DerivedKeys {
  std::array<uint8_t, kMaxKeyLen> sender_key{};
  std::array<uint8_t, kMaxKeyLen> recipient_key{};
  std::array<uint8_t, kMaxNonceLen> common_iv{};
  size_t key_len = 0;
  size_t nonce_len = 0;

  ByteView sender() const { return {sender_key.data(), key_len}; }
  ByteView recipient() const { return {recipient_key.data(), key_len}; }
  ByteView iv() const { return {common_iv.data(), nonce_len}; }
  DerivedKeys() = default;
  DerivedKeys(const DerivedKeys&) = default;
  DerivedKeys& operator=(const DerivedKeys&) = default;
  ~DerivedKeys() {
    secure_zero(sender_key.data(), sender_key.size());
    secure_zero(recipient_key.data(), recipient_key.size());
  }
};

// hkdf_hash maps an HKDF algorithm id to its hash: -10 (direct+HKDF-SHA-256, as
// RFC 8613 writes it) and 5 (HMAC 256/256) both give SHA-256; -11 and 7 give
// SHA-512. kUnsupportedAlgorithm otherwise.
Expected<crypto::Hash, Error> hkdf_hash(int hkdf_alg);

// build_info writes info = [id, id_context, alg_aead, type, L] (RFC 8613 §3.2.1)
// into `out` and returns its length. id_context nullopt encodes as nil.
// kBufferTooSmall if `out` is too small.
Expected<size_t, Error> build_info(ByteView id, std::optional<ByteView> id_context, int alg_aead,
                                   std::string_view type, size_t length, MutableByteView out);

// derive_keys derives Sender Key, Recipient Key and Common IV from `params`.
// Fails with kUnsupportedAlgorithm (AEAD/HKDF), kInvalidArgument (empty master
// secret, a Sender/Recipient ID longer than nonce_len - 6, or equal Sender and
// Recipient IDs), kCrypto (provider failure).
Expected<DerivedKeys, Error> derive_keys(crypto::Provider& provider, const ContextParams& params);

// encode_piv writes the Partial IV for sequence number `seq` (<= 2^40-1) as the
// minimal big-endian byte string (0 is one byte 0x00) into out and returns its length.
size_t encode_piv(uint64_t seq, std::array<uint8_t, 5>& out);
// decode_piv reads a 1..5 byte Partial IV; nullopt for other lengths.
std::optional<uint64_t> decode_piv(ByteView piv);

// make_nonce builds the AEAD nonce (RFC 8613 §5.2): the ID_PIV length byte, ID_PIV
// left-padded to nonce_len - 6 bytes, the Partial IV left-padded to 5 bytes, all
// XORed with the Common IV. out.size() must equal common_iv.size().
// kInvalidArgument if the ID or Partial IV is too long or the sizes disagree.
Expected<void, Error> make_nonce(ByteView common_iv, ByteView id_piv, ByteView partial_iv,
                                 MutableByteView out);

}  // namespace acekdc::oscore
