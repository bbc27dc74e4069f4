// HMAC (COSE algs 4-7), HKDF (RFC 5869) and plain hashes through OpenSSL 3.
// HKDF is written out over HMAC so that an empty salt (HashLen zeros, RFC 5869
// §2.2) and empty info behave exactly as the RFC says.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>

#include "core/codepoints.h"
#include "crypto/openssl/internal.h"

namespace acekdc::crypto::ossl {
namespace {

constexpr size_t kMaxHashLen = 64;

const char* md_name(Hash h) {
  return h == Hash::kSha256 ? "SHA256" : h == Hash::kSha384 ? "SHA384" : "SHA512";
}

// new_hmac returns an HMAC context keyed with key (non-empty) for hash h.
MacCtxPtr new_hmac(const Fetched& f, Hash h, ByteView key) {
  if (f.hmac == nullptr || key.empty()) return nullptr;
  MacCtxPtr ctx(EVP_MAC_CTX_new(f.hmac.get()));
  if (!ctx) return nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md_name(h)), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) return nullptr;
  return ctx;
}

// hmac_restart resets a keyed HMAC context to "key set, no data" (the key
// schedule is kept: EVP_MAC_init with a NULL key re-initialises HMAC in place).
bool hmac_restart(EVP_MAC_CTX* ctx) { return EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1; }

class OsslMac final : public Mac {
 public:
  OsslMac(int alg, size_t tag_len, MacCtxPtr ctx) : alg_(alg), tag_len_(tag_len), ctx_(std::move(ctx)) {}
  int alg() const override { return alg_; }
  size_t tag_len() const override { return tag_len_; }

  Expected<size_t, Error> compute(ByteView data, MutableByteView out) override {
    if (out.size() < tag_len_) return unexpected(Error::kInvalidArgument);
    uint8_t full[kMaxHashLen];
    ACEKDC_TRY(full_mac(data, full));
    std::memcpy(out.data(), full, tag_len_);
    return tag_len_;
  }

  Expected<void, Error> verify(ByteView data, ByteView tag) override {
    uint8_t full[kMaxHashLen];
    ACEKDC_TRY(full_mac(data, full));
    if (tag.size() != tag_len_ || CRYPTO_memcmp(full, tag.data(), tag_len_) != 0) {
      return unexpected(Error::kAuthenticationFailed);
    }
    return {};
  }

 private:
  Expected<void, Error> full_mac(ByteView data, uint8_t (&full)[kMaxHashLen]) {
    size_t n = 0;
    if (!hmac_restart(ctx_.get()) || EVP_MAC_update(ctx_.get(), data.data(), data.size()) != 1 ||
        EVP_MAC_final(ctx_.get(), full, &n, sizeof full) != 1) {
      return fail(Error::kInternal);
    }
    return {};
  }

  int alg_;
  size_t tag_len_;
  MacCtxPtr ctx_;
};

}  // namespace

Expected<std::unique_ptr<Mac>, Error> make_mac(const Fetched& f, int alg, ByteView key) {
  const auto info = mac_info(alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  // HMAC takes any key length (RFC 2104); only an empty key is refused.
  if (key.empty()) return unexpected(Error::kInvalidKey);
  const Hash h = alg == cp::alg::kHMAC384_384   ? Hash::kSha384
                 : alg == cp::alg::kHMAC512_512 ? Hash::kSha512
                                                : Hash::kSha256;
  MacCtxPtr ctx = new_hmac(f, h, key);
  if (!ctx) return fail(Error::kInternal);
  return std::unique_ptr<Mac>(new OsslMac(alg, info->tag_len, std::move(ctx)));
}

Expected<void, Error> hkdf_extract(const Fetched& f, Hash h, ByteView salt, ByteView ikm,
                                   MutableByteView out) {
  const size_t hl = hash_len(h);
  if (out.size() < hl) return unexpected(Error::kInvalidArgument);
  // RFC 5869 §2.2: salt not provided -> a string of HashLen zeros.
  const uint8_t zeros[kMaxHashLen] = {};
  if (salt.empty()) salt = ByteView(zeros, hl);
  MacCtxPtr ctx = new_hmac(f, h, salt);
  size_t n = 0;
  if (!ctx || EVP_MAC_update(ctx.get(), ikm.data(), ikm.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &n, hl) != 1 || n != hl) {
    return fail(Error::kInternal);
  }
  return {};
}

Expected<void, Error> hkdf_expand(const Fetched& f, Hash h, ByteView prk, ByteView info,
                                  MutableByteView out) {
  const size_t hl = hash_len(h);
  if (out.size() > 255 * hl) return unexpected(Error::kInvalidArgument);
  if (prk.empty()) return unexpected(Error::kInvalidKey);
  MacCtxPtr ctx = new_hmac(f, h, prk);
  if (!ctx) return fail(Error::kInternal);
  // T(i) = HMAC(PRK, T(i-1) | info | i), OKM = T(1) | T(2) | ... truncated.
  uint8_t t[kMaxHashLen];
  size_t t_len = 0;
  size_t done = 0;
  for (uint8_t i = 1; done < out.size(); ++i) {
    size_t n = 0;
    if ((i > 1 && !hmac_restart(ctx.get())) || EVP_MAC_update(ctx.get(), t, t_len) != 1 ||
        EVP_MAC_update(ctx.get(), info.data(), info.size()) != 1 ||
        EVP_MAC_update(ctx.get(), &i, 1) != 1 || EVP_MAC_final(ctx.get(), t, &n, sizeof t) != 1 ||
        n != hl) {
      secure_zero(t, sizeof t);
      return fail(Error::kInternal);
    }
    t_len = hl;
    const size_t take = std::min(hl, out.size() - done);
    std::memcpy(out.data() + done, t, take);
    done += take;
  }
  secure_zero(t, sizeof t);
  return {};
}

Expected<void, Error> hash(const Fetched& f, Hash h, ByteView data, MutableByteView out) {
  const size_t hl = hash_len(h);
  if (out.size() < hl) return unexpected(Error::kInvalidArgument);
  unsigned int n = 0;
  if (f.md(h) == nullptr || EVP_Digest(data.data(), data.size(), out.data(), &n, f.md(h), nullptr) != 1 ||
      n != hl) {
    return fail(Error::kInternal);
  }
  return {};
}

}  // namespace acekdc::crypto::ossl
