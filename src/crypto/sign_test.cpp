// Signature and key-agreement tests: RFC 8032 Ed25519 (byte-exact), RFC 6979
// P-256/SHA-256 signatures verified, ES256 round trips, RFC 7748 X25519, P-256
// ECDH, key generation, and the malformed-key / malformed-signature cases.
#include <gtest/gtest.h>

#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"
#include "crypto/test_vectors.h"

namespace acekdc::crypto {
namespace {

using testing::load_vectors;
using testing::Record;

KeyPair okp(int crv, Bytes x, Bytes d = {}) {
  KeyPair k;
  k.crv = crv;
  k.x = std::move(x);
  k.d = std::move(d);
  return k;
}
KeyPair p256(Bytes x, Bytes y, Bytes d = {}) {
  KeyPair k;
  k.crv = cp::crv::kP256;
  k.x = std::move(x);
  k.y = std::move(y);
  k.d = std::move(d);
  return k;
}

// The P-256 group order n (SEC 2 secp256r1), for the high-s case.
const char* kP256N = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

// sub_be returns a - b for 32-byte big-endian a >= b.
Bytes sub_be(ByteView a, ByteView b) {
  Bytes r(32);
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int v = a[i] - b[i] - borrow;
    borrow = v < 0;
    r[i] = static_cast<uint8_t>(v + (borrow ? 256 : 0));
  }
  return r;
}

class SignTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> p_ = make_openssl_provider();
};

TEST_F(SignTest, Ed25519Rfc8032) {
  auto recs = load_vectors("rfc8032_ed25519.txt");
  ASSERT_EQ(recs.size(), 3u);
  for (const Record& r : recs) {
    SCOPED_TRACE(r.name());
    KeyPair key = okp(cp::crv::kEd25519, {}, r.hex("SECRET KEY"));
    ASSERT_TRUE(p_->complete_public(key).has_value());
    EXPECT_EQ(to_hex(key.x), to_hex(r.hex("PUBLIC KEY")));
    EXPECT_TRUE(key.y.empty());

    auto signer = p_->make_signer(cp::alg::kEdDSA, key);
    ASSERT_TRUE(signer.has_value());
    EXPECT_EQ((*signer)->signature_len(), 64u);
    for (int round = 0; round < 2; ++round) {  // the signer is reusable
      Bytes sig(64);
      ASSERT_EQ((*signer)->sign(r.hex("MESSAGE"), sig).value_or(0), 64u);
      EXPECT_EQ(to_hex(sig), to_hex(r.hex("SIGNATURE")));
    }
    auto verifier = p_->make_verifier(cp::alg::kEdDSA, okp(cp::crv::kEd25519, r.hex("PUBLIC KEY")));
    ASSERT_TRUE(verifier.has_value());
    EXPECT_TRUE((*verifier)->verify(r.hex("MESSAGE"), r.hex("SIGNATURE")).has_value());
    EXPECT_TRUE((*verifier)->verify(r.hex("MESSAGE"), r.hex("SIGNATURE")).has_value());
    // Any single flipped bit of the signature or message fails.
    const Bytes sig = r.hex("SIGNATURE");
    for (size_t bit : {size_t{0}, size_t{100}, size_t{255}, size_t{256}, size_t{511}}) {
      Bytes bad = sig;
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      auto v = (*verifier)->verify(r.hex("MESSAGE"), bad);
      ASSERT_FALSE(v.has_value());
      EXPECT_EQ(v.error(), Error::kBadSignature);
    }
    Bytes msg = r.hex("MESSAGE");
    msg.push_back(0);
    EXPECT_FALSE((*verifier)->verify(msg, sig).has_value());
    EXPECT_FALSE((*verifier)->verify(r.hex("MESSAGE"), ByteView(sig.data(), 63)).has_value());
    Bytes longer = sig;
    longer.push_back(0);
    EXPECT_FALSE((*verifier)->verify(r.hex("MESSAGE"), longer).has_value());
    EXPECT_FALSE((*verifier)->verify(r.hex("MESSAGE"), {}).has_value());
    // Still verifies good signatures after failures.
    EXPECT_TRUE((*verifier)->verify(r.hex("MESSAGE"), sig).has_value());
  }
}

TEST_F(SignTest, Es256Rfc6979) {
  auto recs = load_vectors("rfc6979_p256.txt");
  ASSERT_EQ(recs.size(), 2u);
  for (const Record& r : recs) {
    SCOPED_TRACE(r.name());
    KeyPair priv = p256({}, {}, r.hex("x"));
    ASSERT_TRUE(p_->complete_public(priv).has_value());
    EXPECT_EQ(to_hex(priv.x), to_hex(r.hex("Ux")));
    EXPECT_EQ(to_hex(priv.y), to_hex(r.hex("Uy")));

    auto verifier = p_->make_verifier(cp::alg::kES256, p256(r.hex("Ux"), r.hex("Uy")));
    ASSERT_TRUE(verifier.has_value());
    Bytes sig = r.hex("r");
    const Bytes s = r.hex("s");
    sig.insert(sig.end(), s.begin(), s.end());
    ASSERT_EQ(sig.size(), 64u);
    EXPECT_TRUE((*verifier)->verify(r.hex("message"), sig).has_value());
    for (size_t bit : {size_t{0}, size_t{255}, size_t{256}, size_t{511}}) {
      Bytes bad = sig;
      bad[bit / 8] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
      auto v = (*verifier)->verify(r.hex("message"), bad);
      ASSERT_FALSE(v.has_value());
      EXPECT_EQ(v.error(), Error::kBadSignature);
    }
    Bytes msg = r.hex("message");
    msg[0] ^= 1;
    EXPECT_FALSE((*verifier)->verify(msg, sig).has_value());

    // High-s form (n - s) of the same signature is valid ECDSA; COSE does not forbid it.
    Bytes high = r.hex("r");
    const Bytes ns = sub_be(*from_hex(kP256N), s);
    high.insert(high.end(), ns.begin(), ns.end());
    EXPECT_TRUE((*verifier)->verify(r.hex("message"), high).has_value());

    // Our signature over the same message verifies (ECDSA is randomised, so
    // not byte-equal to the deterministic RFC 6979 one).
    auto signer = p_->make_signer(cp::alg::kES256, priv);
    ASSERT_TRUE(signer.has_value());
    Bytes mine(64);
    ASSERT_EQ((*signer)->sign(r.hex("message"), mine).value_or(0), 64u);
    EXPECT_TRUE((*verifier)->verify(r.hex("message"), mine).has_value());
  }
}

TEST_F(SignTest, Es256MalformedSignaturesNeverCrash) {
  auto key = *p_->generate_keypair(cp::crv::kP256);
  auto signer = *p_->make_signer(cp::alg::kES256, key);
  auto verifier = *p_->make_verifier(cp::alg::kES256, p256(key.x, key.y));
  const Bytes msg = {'h', 'i'};
  Bytes sig(64);
  ASSERT_TRUE(signer->sign(msg, sig).has_value());
  ASSERT_TRUE(verifier->verify(msg, sig).has_value());

  const Bytes n = *from_hex(kP256N);
  std::vector<Bytes> bad = {
      Bytes(64, 0),                       // r = s = 0
      Bytes(64, 0xff),                    // r, s >= n
      Bytes(63, 1), Bytes(65, 1), {},     // wrong lengths
  };
  Bytes r_is_n = n;
  r_is_n.insert(r_is_n.end(), sig.begin() + 32, sig.end());
  bad.push_back(r_is_n);
  Bytes s_zero(sig.begin(), sig.begin() + 32);
  s_zero.resize(64, 0);
  bad.push_back(s_zero);
  Bytes der_like = sig;  // a DER signature is not accepted in place of r||s
  der_like[0] = 0x30;
  bad.push_back(der_like);
  for (const Bytes& b : bad) {
    auto v = verifier->verify(msg, b);
    ASSERT_FALSE(v.has_value()) << to_hex(b);
    EXPECT_EQ(v.error(), Error::kBadSignature);
  }
  EXPECT_TRUE(verifier->verify(msg, sig).has_value());

  Bytes small(63);
  EXPECT_EQ(signer->sign(msg, small).error(), Error::kInvalidArgument);
}

TEST_F(SignTest, SignatureRoundTripsAndKeyChecks) {
  for (auto [alg, crv] : {std::pair{cp::alg::kEdDSA, cp::crv::kEd25519},
                          std::pair{cp::alg::kES256, cp::crv::kP256}}) {
    SCOPED_TRACE(alg);
    auto key = p_->generate_keypair(crv);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(key->d.size(), 32u);
    EXPECT_EQ(key->x.size(), 32u);
    EXPECT_EQ(key->y.size(), crv == cp::crv::kP256 ? 32u : 0u);
    auto signer = *p_->make_signer(alg, *key);
    EXPECT_EQ(signer->alg(), alg);
    KeyPair pub = *key;
    pub.d.clear();
    auto verifier = *p_->make_verifier(alg, pub);
    EXPECT_EQ(verifier->alg(), alg);
    for (size_t len : {0, 1, 100, 5000}) {
      const Bytes msg(len, static_cast<uint8_t>(len));
      Bytes sig(64);
      ASSERT_TRUE(signer->sign(msg, sig).has_value());
      EXPECT_TRUE(verifier->verify(msg, sig).has_value());
      sig[10] ^= 4;
      EXPECT_FALSE(verifier->verify(msg, sig).has_value());
    }
    // Another key's verifier rejects.
    auto other = *p_->generate_keypair(crv);
    other.d.clear();
    Bytes sig(64);
    ASSERT_TRUE(signer->sign(Bytes{1}, sig).has_value());
    EXPECT_FALSE((*p_->make_verifier(alg, other))->verify(Bytes{1}, sig).has_value());

    // Wrong lengths, wrong curve, alg/curve mismatch.
    KeyPair bad = *key;
    bad.d.pop_back();
    EXPECT_EQ(p_->make_signer(alg, bad).error(), Error::kInvalidKey);
    bad = *key;
    bad.x.push_back(0);
    EXPECT_EQ(p_->make_verifier(alg, bad).error(), Error::kInvalidKey);
    bad = *key;
    bad.crv = crv == cp::crv::kP256 ? cp::crv::kEd25519 : cp::crv::kP256;
    EXPECT_EQ(p_->make_signer(alg, bad).error(), Error::kInvalidKey);
    EXPECT_EQ(p_->make_verifier(alg, bad).error(), Error::kInvalidKey);
  }
  KeyPair k = *p_->generate_keypair(cp::crv::kEd25519);
  EXPECT_EQ(p_->make_signer(-35, k).error(), Error::kUnsupportedAlgorithm);
  EXPECT_EQ(p_->make_verifier(5, k).error(), Error::kUnsupportedAlgorithm);
  EXPECT_EQ(p_->generate_keypair(2).error(), Error::kUnsupportedAlgorithm);
}

TEST_F(SignTest, P256KeyValidation) {
  auto recs = load_vectors("rfc6979_p256.txt");
  const Bytes ux = recs[0].hex("Ux"), uy = recs[0].hex("Uy");
  ASSERT_TRUE(p_->make_verifier(cp::alg::kES256, p256(ux, uy)).has_value());
  // (Ux, Uy + 1) is not on the curve.
  Bytes off = uy;
  off.back() ^= 1;
  EXPECT_EQ(p_->make_verifier(cp::alg::kES256, p256(ux, off)).error(), Error::kInvalidKey);
  EXPECT_EQ(p_->make_verifier(cp::alg::kES256, p256(Bytes(32, 0), Bytes(32, 0))).error(),
            Error::kInvalidKey);
  EXPECT_EQ(p_->make_verifier(cp::alg::kES256, p256(ux, {})).error(), Error::kInvalidKey);
  EXPECT_EQ(p_->make_verifier(cp::alg::kES256, p256(ux, Bytes(31, 1))).error(), Error::kInvalidKey);
  // Private scalars outside [1, n-1].
  EXPECT_EQ(p_->make_signer(cp::alg::kES256, p256({}, {}, Bytes(32, 0))).error(), Error::kInvalidKey);
  EXPECT_EQ(p_->make_signer(cp::alg::kES256, p256({}, {}, *from_hex(kP256N))).error(), Error::kInvalidKey);
  KeyPair k = p256({}, {}, *from_hex(kP256N));
  EXPECT_EQ(p_->complete_public(k).error(), Error::kInvalidKey);
  // A signer whose public part does not match d is refused.
  KeyPair mismatched = p256(ux, off, recs[0].hex("x"));
  EXPECT_EQ(p_->make_signer(cp::alg::kES256, mismatched).error(), Error::kInvalidKey);
  KeyPair matched = p256(ux, uy, recs[0].hex("x"));
  EXPECT_TRUE(p_->make_signer(cp::alg::kES256, matched).has_value());
}

TEST_F(SignTest, X25519Rfc7748) {
  auto recs = load_vectors("rfc7748_x25519.txt");
  ASSERT_EQ(recs.size(), 3u);
  for (const Record& r : recs) {
    SCOPED_TRACE(r.name());
    KeyPair mine = okp(cp::crv::kX25519, {}, r.hex("scalar"));
    if (r.has("public")) {
      ASSERT_TRUE(p_->complete_public(mine).has_value());
      EXPECT_EQ(to_hex(mine.x), to_hex(r.hex("public")));
    }
    Bytes out(40, 0xaa);
    auto n = p_->ecdh(mine, okp(cp::crv::kX25519, r.hex("u")), out);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 32u);
    EXPECT_EQ(to_hex(ByteView(out.data(), 32)), to_hex(r.hex("out")));
  }
  KeyPair mine = okp(cp::crv::kX25519, {}, recs[0].hex("scalar"));
  Bytes out(32);
  // Low-order peer point (u = 0) gives the all-zero secret: refused.
  EXPECT_EQ(p_->ecdh(mine, okp(cp::crv::kX25519, Bytes(32, 0)), out).error(), Error::kInvalidKey);
  EXPECT_EQ(p_->ecdh(mine, okp(cp::crv::kX25519, Bytes(31, 9)), out).error(), Error::kInvalidKey);
  Bytes small(31);
  EXPECT_EQ(p_->ecdh(mine, okp(cp::crv::kX25519, recs[0].hex("u")), small).error(),
            Error::kInvalidArgument);
  EXPECT_EQ(p_->ecdh(mine, p256(Bytes(32, 1), Bytes(32, 1)), out).error(), Error::kInvalidKey);
}

TEST_F(SignTest, EcdhAgreesBothWays) {
  for (int crv : {cp::crv::kX25519, cp::crv::kP256}) {
    SCOPED_TRACE(crv);
    KeyPair a = *p_->generate_keypair(crv), b = *p_->generate_keypair(crv);
    KeyPair a_pub = a, b_pub = b;
    a_pub.d.clear();
    b_pub.d.clear();
    Bytes ab(32), ba(32);
    ASSERT_TRUE(p_->ecdh(a, b_pub, ab).has_value());
    ASSERT_TRUE(p_->ecdh(b, a_pub, ba).has_value());
    EXPECT_EQ(ab, ba);
    EXPECT_NE(ab, Bytes(32, 0));
  }
  // P-256 peer not on the curve.
  KeyPair a = *p_->generate_keypair(cp::crv::kP256);
  KeyPair bad = *p_->generate_keypair(cp::crv::kP256);
  bad.d.clear();
  bad.y.back() ^= 1;
  Bytes out(32);
  EXPECT_EQ(p_->ecdh(a, bad, out).error(), Error::kInvalidKey);
}

TEST_F(SignTest, RandomIsNotConstant) {
  Bytes a(32), b(32);
  p_->random().fill(a);
  p_->random().fill(b);
  EXPECT_NE(a, b);
  p_->random().fill({});  // empty fill is fine
}

}  // namespace
}  // namespace acekdc::crypto
