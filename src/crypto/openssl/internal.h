// Internals of the OpenSSL backend, shared by its .cpp files only. This header
// (like every file in this folder) may include OpenSSL; nothing outside
// src/crypto/openssl/ may include it.
#pragma once

#include <openssl/evp.h>

#include <memory>

#include "crypto/provider.h"

namespace acekdc::crypto::ossl {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherFree {
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
};
struct MdFree {
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
};
struct MacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherFree>;
using MdPtr = std::unique_ptr<EVP_MD, MdFree>;
using MacPtr = std::unique_ptr<EVP_MAC, MacFree>;

// Algorithms fetched once per provider (fetching is a locked lookup in
// OpenSSL 3; doing it per key or per message is needless work).
struct Fetched {
  CipherPtr aes128_gcm, aes192_gcm, aes256_gcm;
  // AES-CCM is composed from AES-ECB (keystream) and AES-CBC (CBC-MAC): aead.cpp.
  CipherPtr aes128_ecb, aes256_ecb, aes128_cbc, aes256_cbc;
  CipherPtr chacha20_poly1305;
  MdPtr sha256, sha384, sha512;
  MacPtr hmac;

  const EVP_MD* md(Hash h) const {
    return h == Hash::kSha256 ? sha256.get() : h == Hash::kSha384 ? sha384.get() : sha512.get();
  }
};

// fail clears OpenSSL's thread error queue (so failures do not pile up there)
// and returns e as an error value.
Unexpected<Error> fail(Error e);

// ---- aead.cpp ----
Expected<std::unique_ptr<Aead>, Error> make_aead(const Fetched& f, int alg, ByteView key);

// ---- mac.cpp ----
Expected<std::unique_ptr<Mac>, Error> make_mac(const Fetched& f, int alg, ByteView key);
Expected<void, Error> hkdf_extract(const Fetched& f, Hash h, ByteView salt, ByteView ikm,
                                   MutableByteView out);
Expected<void, Error> hkdf_expand(const Fetched& f, Hash h, ByteView prk, ByteView info,
                                  MutableByteView out);
Expected<void, Error> hash(const Fetched& f, Hash h, ByteView data, MutableByteView out);

// ---- keys.cpp ----
Expected<std::unique_ptr<Signer>, Error> make_signer(const Fetched& f, int alg, const KeyPair& key);
Expected<std::unique_ptr<Verifier>, Error> make_verifier(const Fetched& f, int alg,
                                                         const KeyPair& key);
Expected<KeyPair, Error> generate_keypair(Random& rng, int crv);
Expected<void, Error> complete_public(KeyPair& key);
Expected<size_t, Error> ecdh(const KeyPair& mine, const KeyPair& peer, MutableByteView out);

}  // namespace acekdc::crypto::ossl
