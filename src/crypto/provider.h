// Crypto provider: every cryptographic operation acekdc does goes through this
// interface, keyed by COSE algorithm ids (core/codepoints.h). The core layers
// never include OpenSSL headers; crypto/openssl/ is the one backend.
//
// Objects returned by a provider (Aead, Mac, Signer, Verifier) are set up once
// for a key and then reused per message: no per-message key schedule and no
// per-message allocation. They are not thread-safe; use one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "core/bytes.h"
#include "core/expected.h"
#include "core/random.h"

namespace acekdc::crypto {

enum class Error : uint8_t {
  kUnsupportedAlgorithm,  // the algorithm id is not one we implement
  kInvalidKey,            // wrong key length or a point not on the curve
  kInvalidArgument,       // wrong nonce length, output too small, ...
  kAuthenticationFailed,  // AEAD tag or MAC did not verify
  kBadSignature,          // signature did not verify
  kInternal,              // the backend failed unexpectedly
};
const char* to_string(Error e);

// ---- Algorithm tables (pure data, no provider needed) ----
struct AeadInfo {
  size_t key_len;
  size_t nonce_len;
  size_t tag_len;
};
// aead_info returns sizes for AEAD alg ids 1, 2, 3, 10-13, 24, 30-33; nullopt otherwise.
std::optional<AeadInfo> aead_info(int alg);
struct MacInfo {
  size_t key_len;  // recommended key length
  size_t tag_len;  // after truncation
};
// mac_info for HMAC alg ids 4, 5, 6, 7.
std::optional<MacInfo> mac_info(int alg);
// signature_len for ES256 (-7) = 64 (r||s), EdDSA (-8) with Ed25519 = 64.
std::optional<size_t> signature_len(int alg);

enum class Hash : uint8_t { kSha256, kSha384, kSha512 };
constexpr size_t hash_len(Hash h) { return h == Hash::kSha256 ? 32 : h == Hash::kSha384 ? 48 : 64; }

// ---- Keyed objects ----
class Aead {
 public:
  virtual ~Aead() = default;
  virtual int alg() const = 0;
  virtual const AeadInfo& info() const = 0;
  // seal encrypts `plaintext` and writes ciphertext||tag (plaintext.size() + tag_len
  // bytes) to `out`, returning that length. `out` may begin at plaintext.data()
  // (exact in-place); other overlap is not allowed. Fails with kInvalidArgument on
  // a wrong nonce length, too small an output, a partial overlap, or a plaintext
  // longer than the mode allows (AES-CCM with a 13-byte nonce: 65535 bytes).
  // Never allocates.
  virtual Expected<size_t, Error> seal(ByteView nonce, ByteView aad, ByteView plaintext,
                                       MutableByteView out) = 0;
  // open verifies and decrypts ciphertext||tag into `out` (ciphertext.size() -
  // tag_len bytes), returning that length; kAuthenticationFailed if the tag does
  // not verify or the input is shorter than a tag (then out[0..ciphertext.size()
  // - tag_len) is zeroed: no unauthenticated plaintext). kInvalidArgument for a
  // wrong nonce length or too small an output. In-place as for seal. A failed
  // open leaves the object usable.
  virtual Expected<size_t, Error> open(ByteView nonce, ByteView aad, ByteView ciphertext,
                                       MutableByteView out) = 0;
};

class Mac {
 public:
  virtual ~Mac() = default;
  virtual int alg() const = 0;
  virtual size_t tag_len() const = 0;
  // compute writes the (truncated) tag over `data` to out[0..tag_len).
  virtual Expected<size_t, Error> compute(ByteView data, MutableByteView out) = 0;
  // verify compares in constant time; kAuthenticationFailed if tag is not
  // exactly tag_len() bytes or does not match.
  virtual Expected<void, Error> verify(ByteView data, ByteView tag) = 0;
};

// Key material in COSE terms: crv per COSE, x/y public coordinates (y empty for
// OKP), d the private scalar/seed (empty for a public key). d is secret.
struct KeyPair {
  int crv = 0;
  Bytes x;
  Bytes y;
  Bytes d;
  ~KeyPair() { secure_zero(d); }
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  KeyPair(KeyPair&&) = default;
  KeyPair& operator=(KeyPair&&) = default;
};

class Signer {
 public:
  virtual ~Signer() = default;
  virtual int alg() const = 0;
  virtual size_t signature_len() const = 0;
  // sign writes the signature (COSE form: Ed25519 64 bytes; ES256 raw r||s 64 bytes).
  virtual Expected<size_t, Error> sign(ByteView msg, MutableByteView out) = 0;
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  virtual int alg() const = 0;
  // verify returns kBadSignature if sig is not a valid signature of msg,
  // including a sig of the wrong length (ES256: r||s, 64 bytes; r, s out of
  // range are rejected, high s is accepted).
  virtual Expected<void, Error> verify(ByteView msg, ByteView sig) = 0;
};

// ---- The provider ----
class Provider {
 public:
  virtual ~Provider() = default;

  // make_aead sets up a key schedule for `alg` (see aead_info).
  // kUnsupportedAlgorithm for other algs; kInvalidKey unless key.size() == key_len.
  virtual Expected<std::unique_ptr<Aead>, Error> make_aead(int alg, ByteView key) = 0;
  // make_mac for HMAC algs 4, 5, 6, 7. Any non-empty key length is accepted
  // (RFC 2104); an empty key is kInvalidKey.
  virtual Expected<std::unique_ptr<Mac>, Error> make_mac(int alg, ByteView key) = 0;
  // make_signer: alg -8 with crv Ed25519 (d = 32-byte seed), alg -7 with crv P-256 (d = 32-byte scalar).
  // kInvalidKey for another crv, a wrong d length, a P-256 d outside [1, n-1],
  // or (P-256) an x/y given that does not match d.
  virtual Expected<std::unique_ptr<Signer>, Error> make_signer(int alg, const KeyPair& key) = 0;
  // make_verifier: key.x (and key.y for EC2). P-256 points are checked to be on the curve.
  // kInvalidKey for another crv, wrong coordinate lengths or an invalid point.
  virtual Expected<std::unique_ptr<Verifier>, Error> make_verifier(int alg, const KeyPair& key) = 0;
  // generate_keypair for crv Ed25519, X25519 or P-256.
  virtual Expected<KeyPair, Error> generate_keypair(int crv) = 0;
  // complete_public fills x (and y for P-256; y cleared for OKP) of `key` from
  // key.d (crv Ed25519, X25519 or P-256). kInvalidKey on a bad d.
  virtual Expected<void, Error> complete_public(KeyPair& key) = 0;
  // ecdh computes the shared secret for X25519 (32 bytes) or P-256 (x coordinate, 32 bytes).
  // Both keys must have the same crv; mine needs d, peer x (and y). kInvalidKey
  // for an invalid peer key (P-256 not on the curve; X25519 low-order point,
  // i.e. an all-zero secret); kInvalidArgument if out is shorter than 32 bytes.
  virtual Expected<size_t, Error> ecdh(const KeyPair& mine, const KeyPair& peer, MutableByteView out) = 0;

  // hkdf_extract: PRK = HMAC-Hash(salt, ikm), hash_len(h) bytes into out (out
  // must hold at least that: kInvalidArgument). An empty salt means hash_len(h)
  // zero bytes (RFC 5869 §2.2).
  virtual Expected<void, Error> hkdf_extract(Hash h, ByteView salt, ByteView ikm, MutableByteView out) = 0;
  // hkdf_expand: OKM of out.size() bytes (<= 255 * hash_len, else
  // kInvalidArgument); info may be empty; an empty prk is kInvalidKey.
  virtual Expected<void, Error> hkdf_expand(Hash h, ByteView prk, ByteView info, MutableByteView out) = 0;
  // hkdf: extract then expand.
  virtual Expected<void, Error> hkdf(Hash h, ByteView salt, ByteView ikm, ByteView info, MutableByteView out) = 0;
  // hash writes hash_len(h) bytes of the digest of data to out.
  virtual Expected<void, Error> hash(Hash h, ByteView data, MutableByteView out) = 0;

  // random is the CSPRNG (it aborts the process rather than return weak bytes).
  virtual Random& random() = 0;
};

}  // namespace acekdc::crypto
