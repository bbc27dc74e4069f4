#include "groupcomm/pop.h"

#include <gtest/gtest.h>

#include "core/codepoints.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::groupcomm {
namespace {

class PopTest : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  Bytes n_s = {1, 2, 3, 4, 5, 6, 7, 8};
  Bytes n_c = {9, 10, 11, 12, 13, 14, 15, 16};

  cose::CoseKey make_key(int crv) {
    auto kp = p->generate_keypair(crv);
    EXPECT_TRUE(kp);
    return cose::CoseKey::from_keypair(*kp);
  }
};

TEST_F(PopTest, EdDSAAccepted) {
  cose::CoseKey key = make_key(cp::crv::kEd25519);
  auto sig = sign_pop(*p, cp::alg::kEdDSA, key, n_s, n_c);
  ASSERT_TRUE(sig);
  Bytes cred = key.encode(false);
  auto stored = verify_pop(*p, kdc::sign_info_eddsa(), cred, n_s, n_c, *sig);
  ASSERT_TRUE(stored) << to_string(stored.error());
  auto back = cose::CoseKey::decode(*stored);
  ASSERT_TRUE(back);
  EXPECT_EQ(key.x, back->x);
  EXPECT_FALSE(back->has_private());
}

TEST_F(PopTest, ES256Accepted) {
  cose::CoseKey key = make_key(cp::crv::kP256);
  auto sig = sign_pop(*p, cp::alg::kES256, key, n_s, n_c);
  ASSERT_TRUE(sig);
  Bytes cred = key.encode(false);
  EXPECT_TRUE(verify_pop(*p, kdc::sign_info_es256(), cred, n_s, n_c, *sig));
}

TEST_F(PopTest, SignatureOverOtherNoncesFails) {
  cose::CoseKey key = make_key(cp::crv::kEd25519);
  Bytes cred = key.encode(false);
  auto sig = sign_pop(*p, cp::alg::kEdDSA, key, n_s, n_c);
  ASSERT_TRUE(sig);
  Bytes other = n_s;
  other[0] ^= 1;
  auto r = verify_pop(*p, kdc::sign_info_eddsa(), cred, other, n_c, *sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(PopError::kBadSignature, r.error());
  // N_C || N_S (wrong order) is not N_S || N_C.
  auto swapped = sign_pop(*p, cp::alg::kEdDSA, key, n_c, n_s);
  r = verify_pop(*p, kdc::sign_info_eddsa(), cred, n_s, n_c, *swapped);
  ASSERT_FALSE(r);
  EXPECT_EQ(PopError::kBadSignature, r.error());
  // Someone else's key.
  cose::CoseKey other_key = make_key(cp::crv::kEd25519);
  r = verify_pop(*p, kdc::sign_info_eddsa(), other_key.encode(false), n_s, n_c, *sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(PopError::kBadSignature, r.error());
  Bytes truncated(sig->begin(), sig->end() - 1);
  EXPECT_FALSE(verify_pop(*p, kdc::sign_info_eddsa(), cred, n_s, n_c, truncated));
}

TEST_F(PopTest, IncompatibleKeys) {
  cose::CoseKey ec = make_key(cp::crv::kP256);
  auto sig = sign_pop(*p, cp::alg::kES256, ec, n_s, n_c);
  auto r = verify_pop(*p, kdc::sign_info_eddsa(), ec.encode(false), n_s, n_c, *sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(PopError::kIncompatibleKey, r.error());
  cose::CoseKey ed = make_key(cp::crv::kEd25519);
  r = verify_pop(*p, kdc::sign_info_es256(), ed.encode(false), n_s, n_c, *sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(PopError::kIncompatibleKey, r.error());
  // X25519 is OKP but not a signature curve.
  cose::CoseKey x = make_key(cp::crv::kX25519);
  EXPECT_EQ(PopError::kIncompatibleKey, check_client_cred(x.encode(false), kdc::sign_info_eddsa()).error());
  // A key restricted to another algorithm.
  cose::CoseKey restricted = ed;
  restricted.alg = cp::alg::kES256;
  EXPECT_EQ(PopError::kIncompatibleKey,
            check_client_cred(restricted.encode(false), kdc::sign_info_eddsa()).error());
  // A private key must not be sent.
  EXPECT_EQ(PopError::kIncompatibleKey, check_client_cred(ed.encode(true), kdc::sign_info_eddsa()).error());
  // Not a COSE_Key at all.
  Bytes junk = {0xa1, 0x01};
  EXPECT_EQ(PopError::kBadKey, check_client_cred(junk, kdc::sign_info_eddsa()).error());
  cose::CoseKey sym = cose::CoseKey::symmetric(Bytes(16, 1));
  EXPECT_EQ(PopError::kIncompatibleKey, check_client_cred(sym.encode(), kdc::sign_info_eddsa()).error());
}

TEST_F(PopTest, Nonces) {
  cose::CoseKey key = make_key(cp::crv::kEd25519);
  Bytes cred = key.encode(false);
  auto sig = sign_pop(*p, cp::alg::kEdDSA, key, n_s, n_c);
  EXPECT_EQ(PopError::kNoNonce, verify_pop(*p, kdc::sign_info_eddsa(), cred, {}, n_c, *sig).error());
  EXPECT_EQ(PopError::kBadNonce, verify_pop(*p, kdc::sign_info_eddsa(), cred, n_s, {}, *sig).error());
  Bytes long_nonce(65, 1);
  EXPECT_EQ(PopError::kBadNonce,
            verify_pop(*p, kdc::sign_info_eddsa(), cred, n_s, long_nonce, *sig).error());
}

TEST_F(PopTest, StoredKeyDropsKid) {
  cose::CoseKey key = make_key(cp::crv::kEd25519);
  key.kid = {0x42};
  auto sig = sign_pop(*p, cp::alg::kEdDSA, key, n_s, n_c);
  auto stored = verify_pop(*p, kdc::sign_info_eddsa(), key.encode(false), n_s, n_c, *sig);
  ASSERT_TRUE(stored);
  EXPECT_TRUE(cose::CoseKey::decode(*stored)->kid.empty());
}

}  // namespace
}  // namespace acekdc::groupcomm
