// The OpenSSL 3 provider: fetches every algorithm once, then hands out keyed
// objects (aead.cpp, mac.cpp, keys.cpp).
#include "crypto/openssl/openssl_provider.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "crypto/openssl/internal.h"

namespace acekdc::crypto {
namespace ossl {

Unexpected<Error> fail(Error e) {
  ERR_clear_error();
  return unexpected(e);
}

namespace {

// OpensslRandom is OpenSSL's CSPRNG (RAND_bytes); it aborts rather than return
// predictable bytes.
class OpensslRandom final : public Random {
 public:
  void fill(MutableByteView out) override {
    size_t done = 0;
    while (done < out.size()) {
      const size_t chunk = std::min<size_t>(out.size() - done, INT_MAX);
      if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
        std::fputs("acekdc: RAND_bytes failed; refusing to continue without randomness\n", stderr);
        std::abort();
      }
      done += chunk;
    }
  }
};

class OpensslProvider final : public Provider {
 public:
  OpensslProvider() {
    f_.aes128_gcm.reset(EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr));
    f_.aes192_gcm.reset(EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr));
    f_.aes256_gcm.reset(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    f_.aes128_ecb.reset(EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr));
    f_.aes256_ecb.reset(EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr));
    f_.aes128_cbc.reset(EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr));
    f_.aes256_cbc.reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr));
    f_.chacha20_poly1305.reset(EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr));
    f_.sha256.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    f_.sha384.reset(EVP_MD_fetch(nullptr, "SHA384", nullptr));
    f_.sha512.reset(EVP_MD_fetch(nullptr, "SHA512", nullptr));
    f_.hmac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    ERR_clear_error();  // a missing algorithm surfaces later as an error value
  }

  Expected<std::unique_ptr<Aead>, Error> make_aead(int alg, ByteView key) override {
    return ossl::make_aead(f_, alg, key);
  }
  Expected<std::unique_ptr<Mac>, Error> make_mac(int alg, ByteView key) override {
    return ossl::make_mac(f_, alg, key);
  }
  Expected<std::unique_ptr<Signer>, Error> make_signer(int alg, const KeyPair& key) override {
    return ossl::make_signer(f_, alg, key);
  }
  Expected<std::unique_ptr<Verifier>, Error> make_verifier(int alg, const KeyPair& key) override {
    return ossl::make_verifier(f_, alg, key);
  }
  Expected<KeyPair, Error> generate_keypair(int crv) override {
    return ossl::generate_keypair(random_, crv);
  }
  Expected<void, Error> complete_public(KeyPair& key) override { return ossl::complete_public(key); }
  Expected<size_t, Error> ecdh(const KeyPair& mine, const KeyPair& peer, MutableByteView out) override {
    return ossl::ecdh(mine, peer, out);
  }
  Expected<void, Error> hkdf_extract(Hash h, ByteView salt, ByteView ikm, MutableByteView out) override {
    return ossl::hkdf_extract(f_, h, salt, ikm, out);
  }
  Expected<void, Error> hkdf_expand(Hash h, ByteView prk, ByteView info, MutableByteView out) override {
    return ossl::hkdf_expand(f_, h, prk, info, out);
  }
  Expected<void, Error> hkdf(Hash h, ByteView salt, ByteView ikm, ByteView info,
                             MutableByteView out) override {
    uint8_t prk[64];
    const size_t hl = hash_len(h);
    auto r = ossl::hkdf_extract(f_, h, salt, ikm, MutableByteView(prk, hl));
    if (r) r = ossl::hkdf_expand(f_, h, ByteView(prk, hl), info, out);
    secure_zero(prk, sizeof prk);
    return r;
  }
  Expected<void, Error> hash(Hash h, ByteView data, MutableByteView out) override {
    return ossl::hash(f_, h, data, out);
  }
  Random& random() override { return random_; }

 private:
  Fetched f_;
  OpensslRandom random_;
};

}  // namespace
}  // namespace ossl

std::unique_ptr<Provider> make_openssl_provider() { return std::make_unique<ossl::OpensslProvider>(); }

}  // namespace acekdc::crypto
