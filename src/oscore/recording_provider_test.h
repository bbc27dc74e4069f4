// Test helper: a crypto provider that delegates to OpenSSL and records every
// (key, nonce) pair sealed (to assert none is ever sealed twice) and counts
// AEAD open() calls (to assert a dead key is never used again).
#pragma once

#include <memory>
#include <set>
#include <utility>

#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"

namespace acekdc::oscore::recording {

// RecordingProvider delegates to OpenSSL and records every (key, nonce) sealed.
class RecordingProvider final : public crypto::Provider {
 public:
  struct Log {
    std::set<std::pair<Bytes, Bytes>> pairs;
    size_t num_seals = 0;
    size_t num_reused = 0;
    size_t num_opens = 0;  // open() calls (verification attempts)
  };
  explicit RecordingProvider(Log& log) : log_(log) {}

  Expected<std::unique_ptr<crypto::Aead>, crypto::Error> make_aead(int alg, ByteView key) override {
    auto a = inner_->make_aead(alg, key);
    if (!a) return a;
    return std::unique_ptr<crypto::Aead>(new Recording(std::move(*a), to_bytes(key), log_));
  }
  Expected<std::unique_ptr<crypto::Mac>, crypto::Error> make_mac(int alg, ByteView key) override {
    return inner_->make_mac(alg, key);
  }
  Expected<std::unique_ptr<crypto::Signer>, crypto::Error> make_signer(int alg, const crypto::KeyPair& k) override {
    return inner_->make_signer(alg, k);
  }
  Expected<std::unique_ptr<crypto::Verifier>, crypto::Error> make_verifier(int alg,
                                                                           const crypto::KeyPair& k) override {
    return inner_->make_verifier(alg, k);
  }
  Expected<crypto::KeyPair, crypto::Error> generate_keypair(int crv) override { return inner_->generate_keypair(crv); }
  Expected<void, crypto::Error> complete_public(crypto::KeyPair& k) override { return inner_->complete_public(k); }
  Expected<size_t, crypto::Error> ecdh(const crypto::KeyPair& a, const crypto::KeyPair& b,
                                       MutableByteView out) override {
    return inner_->ecdh(a, b, out);
  }
  Expected<void, crypto::Error> hkdf_extract(crypto::Hash h, ByteView salt, ByteView ikm,
                                             MutableByteView out) override {
    return inner_->hkdf_extract(h, salt, ikm, out);
  }
  Expected<void, crypto::Error> hkdf_expand(crypto::Hash h, ByteView prk, ByteView info,
                                            MutableByteView out) override {
    return inner_->hkdf_expand(h, prk, info, out);
  }
  Expected<void, crypto::Error> hkdf(crypto::Hash h, ByteView salt, ByteView ikm, ByteView info,
                                     MutableByteView out) override {
    return inner_->hkdf(h, salt, ikm, info, out);
  }
  Expected<void, crypto::Error> hash(crypto::Hash h, ByteView data, MutableByteView out) override {
    return inner_->hash(h, data, out);
  }
  Random& random() override { return inner_->random(); }

 private:
  class Recording final : public crypto::Aead {
   public:
    Recording(std::unique_ptr<crypto::Aead> inner, Bytes key, Log& log)
        : inner_(std::move(inner)), key_(std::move(key)), log_(log) {}
    int alg() const override { return inner_->alg(); }
    const crypto::AeadInfo& info() const override { return inner_->info(); }
    Expected<size_t, crypto::Error> seal(ByteView nonce, ByteView aad, ByteView pt, MutableByteView out) override {
      ++log_.num_seals;
      if (!log_.pairs.emplace(key_, to_bytes(nonce)).second) ++log_.num_reused;
      return inner_->seal(nonce, aad, pt, out);
    }
    Expected<size_t, crypto::Error> open(ByteView nonce, ByteView aad, ByteView ct, MutableByteView out) override {
      ++log_.num_opens;
      return inner_->open(nonce, aad, ct, out);
    }

   private:
    std::unique_ptr<crypto::Aead> inner_;
    Bytes key_;
    Log& log_;
  };
  std::unique_ptr<crypto::Provider> inner_ = crypto::make_openssl_provider();
  Log& log_;
};

}  // namespace acekdc::oscore::recording
