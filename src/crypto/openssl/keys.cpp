// Asymmetric keys through OpenSSL 3: Ed25519 and ES256 (P-256) signatures,
// X25519 and P-256 ECDH, key generation and public-from-private.
//
// Every Signer/Verifier builds its EVP_PKEY (and its EVP contexts) once. ES256
// is done as SHA-256 followed by EVP_PKEY_sign/verify on a context initialised
// once, with r||s <-> DER conversion by crypto/ecdsa_der.h.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/codepoints.h"
#include "crypto/ecdsa_der.h"
#include "crypto/openssl/internal.h"

namespace acekdc::crypto::ossl {
namespace {

constexpr size_t kOkpLen = 32;    // Ed25519 / X25519 keys
constexpr size_t kP256Len = 32;   // P-256 scalar and coordinate
constexpr size_t kSigLen = 64;

// The order n of P-256 (FIPS 186-4 D.1.2.3 / SEC 2 secp256r1), big-endian.
constexpr uint8_t kP256Order[kP256Len] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

// p256_scalar_ok reports 1 <= d < n for a 32-byte big-endian d (not
// constant-time in the comparison position; d is checked once per key).
bool p256_scalar_ok(ByteView d) {
  if (d.size() != kP256Len) return false;
  if (std::all_of(d.begin(), d.end(), [](uint8_t b) { return b == 0; })) return false;
  return std::lexicographical_compare(d.begin(), d.end(), std::begin(kP256Order), std::end(kP256Order));
}

struct BnClearFree {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
struct GroupFree {
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
};
struct PointFree {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct BnCtxFree {
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};

// p256_public computes (x, y) = d * G.
Expected<void, Error> p256_public(ByteView d, Bytes& x, Bytes& y) {
  if (!p256_scalar_ok(d)) return unexpected(Error::kInvalidKey);
  std::unique_ptr<EC_GROUP, GroupFree> group(
      EC_GROUP_new_by_curve_name_ex(nullptr, nullptr, NID_X9_62_prime256v1));
  std::unique_ptr<BN_CTX, BnCtxFree> bn_ctx(BN_CTX_secure_new());
  std::unique_ptr<BIGNUM, BnClearFree> k(BN_secure_new());
  std::unique_ptr<BIGNUM, BnClearFree> bx(BN_new()), by(BN_new());
  if (!group || !bn_ctx || !k || !bx || !by) return fail(Error::kInternal);
  std::unique_ptr<EC_POINT, PointFree> p(EC_POINT_new(group.get()));
  if (!p || BN_bin2bn(d.data(), static_cast<int>(d.size()), k.get()) == nullptr ||
      EC_POINT_mul(group.get(), p.get(), k.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_get_affine_coordinates(group.get(), p.get(), bx.get(), by.get(), bn_ctx.get()) != 1) {
    return fail(Error::kInternal);
  }
  x.assign(kP256Len, 0);
  y.assign(kP256Len, 0);
  if (BN_bn2binpad(bx.get(), x.data(), kP256Len) != kP256Len ||
      BN_bn2binpad(by.get(), y.data(), kP256Len) != kP256Len) {
    return fail(Error::kInternal);
  }
  return {};
}

// p256_pkey builds an EVP_PKEY from public x, y (each 32 bytes) and, if d is
// not empty, the private scalar. The public point is checked to be a valid
// point of the group (on the curve, not infinity): kInvalidKey otherwise.
Expected<PkeyPtr, Error> p256_pkey(ByteView x, ByteView y, ByteView d) {
  if (x.size() != kP256Len || y.size() != kP256Len) return unexpected(Error::kInvalidKey);
  if (!d.empty() && !p256_scalar_ok(d)) return unexpected(Error::kInvalidKey);
  uint8_t pub[1 + 2 * kP256Len];
  pub[0] = 0x04;  // SEC 1 uncompressed point
  std::memcpy(pub + 1, x.data(), kP256Len);
  std::memcpy(pub + 1 + kP256Len, y.data(), kP256Len);
  // OSSL_PARAM integers are native-endian; d stays on the stack and is wiped.
  uint8_t d_native[kP256Len];
  for (size_t i = 0; i < d.size(); ++i) {
    d_native[i] = std::endian::native == std::endian::little ? d[d.size() - 1 - i] : d[i];
  }
  OSSL_PARAM params[4];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub);
  if (!d.empty()) params[n++] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, d_native, kP256Len);
  params[n] = OSSL_PARAM_construct_end();

  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  const int selection = d.empty() ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEYPAIR;
  const bool built = ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                     EVP_PKEY_fromdata(ctx.get(), &raw, selection, params) == 1;
  secure_zero(d_native, sizeof d_native);
  if (!built) return fail(Error::kInvalidKey);  // includes "point not on curve"
  PkeyPtr pkey(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check) return fail(Error::kInternal);
  if (EVP_PKEY_public_check(check.get()) != 1) return fail(Error::kInvalidKey);
  return pkey;
}

Expected<PkeyPtr, Error> okp_private(const char* name, ByteView d) {
  if (d.size() != kOkpLen) return unexpected(Error::kInvalidKey);
  PkeyPtr p(EVP_PKEY_new_raw_private_key_ex(nullptr, name, nullptr, d.data(), d.size()));
  if (!p) return fail(Error::kInvalidKey);
  return p;
}

Expected<PkeyPtr, Error> okp_public(const char* name, ByteView x) {
  if (x.size() != kOkpLen) return unexpected(Error::kInvalidKey);
  PkeyPtr p(EVP_PKEY_new_raw_public_key_ex(nullptr, name, nullptr, x.data(), x.size()));
  if (!p) return fail(Error::kInvalidKey);
  return p;
}

// A non-null pointer for empty messages.
const uint8_t kEmpty[1] = {0};
inline const uint8_t* nonnull(ByteView v) { return v.empty() ? kEmpty : v.data(); }

class Ed25519Signer final : public Signer {
 public:
  Ed25519Signer(PkeyPtr pkey, MdCtxPtr ctx) : pkey_(std::move(pkey)), ctx_(std::move(ctx)) {}
  int alg() const override { return cp::alg::kEdDSA; }
  size_t signature_len() const override { return kSigLen; }
  Expected<size_t, Error> sign(ByteView msg, MutableByteView out) override {
    if (out.size() < kSigLen) return unexpected(Error::kInvalidArgument);
    size_t len = kSigLen;
    // Ed25519 in OpenSSL is one-shot and stateless per call: the context
    // initialised once is reused.
    if (EVP_DigestSign(ctx_.get(), out.data(), &len, nonnull(msg), msg.size()) != 1 || len != kSigLen) {
      return fail(Error::kInternal);
    }
    return len;
  }

 private:
  PkeyPtr pkey_;
  MdCtxPtr ctx_;
};

class Ed25519Verifier final : public Verifier {
 public:
  Ed25519Verifier(PkeyPtr pkey, MdCtxPtr ctx) : pkey_(std::move(pkey)), ctx_(std::move(ctx)) {}
  int alg() const override { return cp::alg::kEdDSA; }
  Expected<void, Error> verify(ByteView msg, ByteView sig) override {
    if (sig.size() != kSigLen) return unexpected(Error::kBadSignature);
    if (EVP_DigestVerify(ctx_.get(), sig.data(), sig.size(), nonnull(msg), msg.size()) != 1) {
      return fail(Error::kBadSignature);
    }
    return {};
  }

 private:
  PkeyPtr pkey_;
  MdCtxPtr ctx_;
};

class Es256Signer final : public Signer {
 public:
  Es256Signer(PkeyPtr pkey, PkeyCtxPtr ctx, MdCtxPtr md_ctx, const EVP_MD* sha256)
      : pkey_(std::move(pkey)), ctx_(std::move(ctx)), md_ctx_(std::move(md_ctx)), sha256_(sha256) {}
  int alg() const override { return cp::alg::kES256; }
  size_t signature_len() const override { return kSigLen; }
  Expected<size_t, Error> sign(ByteView msg, MutableByteView out) override {
    if (out.size() < kSigLen) return unexpected(Error::kInvalidArgument);
    uint8_t digest[32];
    unsigned int digest_len = 0;
    uint8_t der[kMaxEcdsaDerLen];
    size_t der_len = sizeof der;
    if (EVP_DigestInit_ex2(md_ctx_.get(), sha256_, nullptr) != 1 ||
        EVP_DigestUpdate(md_ctx_.get(), msg.data(), msg.size()) != 1 ||
        EVP_DigestFinal_ex(md_ctx_.get(), digest, &digest_len) != 1 ||
        EVP_PKEY_sign(ctx_.get(), der, &der_len, digest, digest_len) != 1) {
      return fail(Error::kInternal);
    }
    if (!ecdsa_der_to_raw(ByteView(der, der_len), kP256Len, out)) return unexpected(Error::kInternal);
    return kSigLen;
  }

 private:
  PkeyPtr pkey_;
  PkeyCtxPtr ctx_;
  MdCtxPtr md_ctx_;
  const EVP_MD* sha256_;
};

class Es256Verifier final : public Verifier {
 public:
  Es256Verifier(PkeyPtr pkey, PkeyCtxPtr ctx, MdCtxPtr md_ctx, const EVP_MD* sha256)
      : pkey_(std::move(pkey)), ctx_(std::move(ctx)), md_ctx_(std::move(md_ctx)), sha256_(sha256) {}
  int alg() const override { return cp::alg::kES256; }
  Expected<void, Error> verify(ByteView msg, ByteView sig) override {
    if (sig.size() != kSigLen) return unexpected(Error::kBadSignature);
    uint8_t der[kMaxEcdsaDerLen];
    auto der_len = ecdsa_raw_to_der(sig, der);
    if (!der_len) return unexpected(Error::kBadSignature);
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_DigestInit_ex2(md_ctx_.get(), sha256_, nullptr) != 1 ||
        EVP_DigestUpdate(md_ctx_.get(), msg.data(), msg.size()) != 1 ||
        EVP_DigestFinal_ex(md_ctx_.get(), digest, &digest_len) != 1) {
      return fail(Error::kInternal);
    }
    // 1 = valid; 0 = invalid; < 0 = malformed (e.g. r or s zero or >= n).
    if (EVP_PKEY_verify(ctx_.get(), der, *der_len, digest, digest_len) != 1) {
      return fail(Error::kBadSignature);
    }
    return {};
  }

 private:
  PkeyPtr pkey_;
  PkeyCtxPtr ctx_;
  MdCtxPtr md_ctx_;
  const EVP_MD* sha256_;
};

}  // namespace

Expected<std::unique_ptr<Signer>, Error> make_signer(const Fetched& f, int alg, const KeyPair& key) {
  if (alg == cp::alg::kEdDSA) {
    if (key.crv != cp::crv::kEd25519) return unexpected(Error::kInvalidKey);
    auto pkey = okp_private("ED25519", key.d);
    if (!pkey) return unexpected(pkey.error());
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey->get(),
                                      nullptr) != 1) {
      return fail(Error::kInternal);
    }
    return std::unique_ptr<Signer>(new Ed25519Signer(std::move(*pkey), std::move(ctx)));
  }
  if (alg == cp::alg::kES256) {
    if (key.crv != cp::crv::kP256) return unexpected(Error::kInvalidKey);
    Bytes x, y;
    ACEKDC_TRY(p256_public(key.d, x, y));
    if ((!key.x.empty() && !equal(key.x, x)) || (!key.y.empty() && !equal(key.y, y))) {
      return unexpected(Error::kInvalidKey);  // public part does not match d
    }
    auto pkey = p256_pkey(x, y, key.d);
    if (!pkey) return unexpected(pkey.error());
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
    MdCtxPtr md_ctx(EVP_MD_CTX_new());
    if (!ctx || !md_ctx || f.sha256 == nullptr || EVP_PKEY_sign_init(ctx.get()) != 1) {
      return fail(Error::kInternal);
    }
    return std::unique_ptr<Signer>(
        new Es256Signer(std::move(*pkey), std::move(ctx), std::move(md_ctx), f.sha256.get()));
  }
  return unexpected(Error::kUnsupportedAlgorithm);
}

Expected<std::unique_ptr<Verifier>, Error> make_verifier(const Fetched& f, int alg,
                                                         const KeyPair& key) {
  if (alg == cp::alg::kEdDSA) {
    if (key.crv != cp::crv::kEd25519) return unexpected(Error::kInvalidKey);
    auto pkey = okp_public("ED25519", key.x);
    if (!pkey) return unexpected(pkey.error());
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey->get(),
                                        nullptr) != 1) {
      return fail(Error::kInternal);
    }
    return std::unique_ptr<Verifier>(new Ed25519Verifier(std::move(*pkey), std::move(ctx)));
  }
  if (alg == cp::alg::kES256) {
    if (key.crv != cp::crv::kP256) return unexpected(Error::kInvalidKey);
    auto pkey = p256_pkey(key.x, key.y, {});
    if (!pkey) return unexpected(pkey.error());
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
    MdCtxPtr md_ctx(EVP_MD_CTX_new());
    if (!ctx || !md_ctx || f.sha256 == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1) {
      return fail(Error::kInternal);
    }
    return std::unique_ptr<Verifier>(
        new Es256Verifier(std::move(*pkey), std::move(ctx), std::move(md_ctx), f.sha256.get()));
  }
  return unexpected(Error::kUnsupportedAlgorithm);
}

Expected<void, Error> complete_public(KeyPair& key) {
  const char* okp = key.crv == cp::crv::kEd25519 ? "ED25519" : key.crv == cp::crv::kX25519 ? "X25519" : nullptr;
  if (okp != nullptr) {
    auto pkey = okp_private(okp, key.d);
    if (!pkey) return unexpected(pkey.error());
    Bytes x(kOkpLen);
    size_t len = x.size();
    if (EVP_PKEY_get_raw_public_key(pkey->get(), x.data(), &len) != 1 || len != kOkpLen) {
      return fail(Error::kInternal);
    }
    key.x = std::move(x);
    key.y.clear();
    return {};
  }
  if (key.crv == cp::crv::kP256) return p256_public(key.d, key.x, key.y);
  return unexpected(Error::kUnsupportedAlgorithm);
}

Expected<KeyPair, Error> generate_keypair(Random& rng, int crv) {
  if (crv != cp::crv::kEd25519 && crv != cp::crv::kX25519 && crv != cp::crv::kP256) {
    return unexpected(Error::kUnsupportedAlgorithm);
  }
  KeyPair key;
  key.crv = crv;
  key.d.resize(32);
  // Ed25519 seeds and X25519 scalars are any 32 random bytes (RFC 8032 §5.1.5,
  // RFC 7748 §5); a P-256 scalar is drawn by rejection until 1 <= d < n.
  do {
    rng.fill(key.d);
  } while (crv == cp::crv::kP256 && !p256_scalar_ok(key.d));
  ACEKDC_TRY(complete_public(key));
  return key;
}

Expected<size_t, Error> ecdh(const KeyPair& mine, const KeyPair& peer, MutableByteView out) {
  if (mine.crv != peer.crv) return unexpected(Error::kInvalidKey);
  PkeyPtr own, other;
  if (mine.crv == cp::crv::kX25519) {
    auto a = okp_private("X25519", mine.d);
    if (!a) return unexpected(a.error());
    auto b = okp_public("X25519", peer.x);
    if (!b) return unexpected(b.error());
    own = std::move(*a);
    other = std::move(*b);
  } else if (mine.crv == cp::crv::kP256) {
    Bytes x, y;
    ACEKDC_TRY(p256_public(mine.d, x, y));
    auto a = p256_pkey(x, y, mine.d);
    if (!a) return unexpected(a.error());
    auto b = p256_pkey(peer.x, peer.y, {});
    if (!b) return unexpected(b.error());
    own = std::move(*a);
    other = std::move(*b);
  } else {
    return unexpected(Error::kUnsupportedAlgorithm);
  }
  constexpr size_t kSecretLen = 32;
  if (out.size() < kSecretLen) return unexpected(Error::kInvalidArgument);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) return fail(Error::kInternal);
  // set_peer validates the peer key; X25519 derive fails on an all-zero result
  // (a low-order peer point, RFC 7748 §6.1).
  if (EVP_PKEY_derive_set_peer(ctx.get(), other.get()) != 1) return fail(Error::kInvalidKey);
  size_t len = out.size();
  if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1) return fail(Error::kInvalidKey);
  if (len != kSecretLen) {
    secure_zero(out.data(), out.size());
    return unexpected(Error::kInternal);
  }
  return len;
}

}  // namespace acekdc::crypto::ossl
