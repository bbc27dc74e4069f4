// The provider's AES-CCM (composed in aead.cpp from AES-CBC and AES-ECB) against
// OpenSSL's own EVP AES-CCM, an independent implementation: every COSE CCM
// algorithm, plaintext lengths around every block and chunk boundary, AAD
// lengths that switch the AAD length encoding (RFC 3610 §2.2: 2 bytes below
// 0xff00, 0xfffe + 4 bytes from there), the largest message a 13-byte nonce
// allows, in place, forgeries of every byte, and messages interleaved across
// several keys (the CBC context carries its chaining value from one message
// to the next).
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <memory>

#include "core/hex.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"

namespace acekdc::crypto {
namespace {

const int kCcmAlgs[] = {10, 11, 12, 13, 30, 31, 32, 33};

// evp_ccm_seal: OpenSSL's EVP AES-CCM, the reference.
Bytes evp_ccm_seal(const AeadInfo& info, ByteView key, ByteView nonce, ByteView aad, ByteView pt) {
  const EVP_CIPHER* cipher = info.key_len == 16 ? EVP_aes_128_ccm() : EVP_aes_256_ccm();
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  Bytes out(pt.size() + info.tag_len);
  int n = 0;
  uint8_t dummy[1] = {0};
  bool ok = EVP_EncryptInit_ex(c, cipher, nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(info.nonce_len), nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(info.tag_len), nullptr) == 1 &&
            EVP_EncryptInit_ex(c, nullptr, nullptr, key.data(), nonce.data()) == 1 &&
            EVP_EncryptUpdate(c, nullptr, &n, nullptr, static_cast<int>(pt.size())) == 1;
  if (ok && !aad.empty()) ok = EVP_EncryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1;
  uint8_t* dst = pt.empty() ? dummy : out.data();
  ok = ok && EVP_EncryptUpdate(c, dst, &n, pt.empty() ? dummy : pt.data(), static_cast<int>(pt.size())) == 1 &&
       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(info.tag_len), out.data() + pt.size()) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok ? out : Bytes();
}

class CcmTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> p_ = make_openssl_provider();
  FakeRandom rng_{11};

  // check seals with the provider, compares with EVP, opens, and opens in place.
  void check(Aead& a, ByteView key, size_t pt_len, size_t aad_len) {
    SCOPED_TRACE("alg " + std::to_string(a.alg()) + " pt " + std::to_string(pt_len) + " aad " +
                 std::to_string(aad_len));
    const AeadInfo& info = a.info();
    const Bytes nonce = rng_.bytes(info.nonce_len), aad = rng_.bytes(aad_len), pt = rng_.bytes(pt_len);
    Bytes ct(pt_len + info.tag_len);
    auto n = a.seal(nonce, aad, pt, ct);
    ASSERT_TRUE(n.has_value());
    ASSERT_EQ(*n, ct.size());
    const Bytes want = evp_ccm_seal(info, key, nonce, aad, pt);
    ASSERT_FALSE(want.empty());
    ASSERT_EQ(to_hex(ct), to_hex(want));
    Bytes back(pt_len);
    auto m = a.open(nonce, aad, ct, back);
    ASSERT_TRUE(m.has_value());
    ASSERT_EQ(back, pt);
    Bytes buf = ct;
    ASSERT_TRUE(a.open(nonce, aad, buf, MutableByteView(buf.data(), pt_len)).has_value());
    ASSERT_EQ(Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(pt_len)), pt);
    // in-place seal
    Bytes inplace = pt;
    inplace.resize(pt_len + info.tag_len);
    ASSERT_TRUE(a.seal(nonce, aad, ByteView(inplace.data(), pt_len), inplace).has_value());
    ASSERT_EQ(inplace, want);
  }
};

TEST_F(CcmTest, MatchesOpensslCcmAcrossLengths) {
  for (int alg : kCcmAlgs) {
    const AeadInfo info = *aead_info(alg);
    const Bytes key = rng_.bytes(info.key_len);
    auto a = p_->make_aead(alg, key);
    ASSERT_TRUE(a.has_value());
    // Every plaintext length up to and past one 512-byte chunk of MAC input
    // and keystream (B_0 and the AAD shift where the chunk ends).
    for (size_t len = 0; len <= 560; ++len) check(**a, key, len, len % 40);
    for (size_t len : {1008u, 1023u, 1024u, 1025u, 1279u, 1280u, 4000u}) check(**a, key, len, 20);
    for (size_t aad_len : {0u, 1u, 13u, 14u, 15u, 16u, 17u, 494u, 495u, 496u, 497u, 1024u}) {
      check(**a, key, 64, aad_len);
    }
  }
}

TEST_F(CcmTest, AadLengthEncodings) {
  const AeadInfo info = *aead_info(10);
  const Bytes key = rng_.bytes(info.key_len);
  auto a = p_->make_aead(10, key);
  ASSERT_TRUE(a.has_value());
  for (size_t aad_len : {0xfeffu, 0xff00u, 0xff01u, 0x10005u}) check(**a, key, 33, aad_len);
}

TEST_F(CcmTest, LargestMessageOfA13ByteNonce) {
  for (int alg : {10, 31}) {
    const AeadInfo info = *aead_info(alg);
    const Bytes key = rng_.bytes(info.key_len);
    auto a = p_->make_aead(alg, key);
    ASSERT_TRUE(a.has_value());
    check(**a, key, 0xffff, 7);
    Bytes big(0x10000), out(0x10000 + info.tag_len);
    EXPECT_EQ(a->get()->seal(rng_.bytes(13), {}, big, out).error(), Error::kInvalidArgument);
  }
}

TEST_F(CcmTest, EveryByteOfAForgeryIsRefusedAndTheOutputZeroed) {
  for (int alg : kCcmAlgs) {
    const AeadInfo info = *aead_info(alg);
    const Bytes key = rng_.bytes(info.key_len);
    auto a = p_->make_aead(alg, key);
    ASSERT_TRUE(a.has_value());
    const Bytes nonce = rng_.bytes(info.nonce_len), aad = rng_.bytes(9), pt = rng_.bytes(37);
    Bytes ct(pt.size() + info.tag_len);
    ASSERT_TRUE(a->get()->seal(nonce, aad, pt, ct).has_value());
    for (size_t i = 0; i < ct.size(); ++i) {
      for (uint8_t bit : {0x01, 0x80}) {
        Bytes bad = ct;
        bad[i] ^= bit;
        Bytes out(pt.size(), 0xaa);
        EXPECT_EQ(a->get()->open(nonce, aad, bad, out).error(), Error::kAuthenticationFailed) << i;
        EXPECT_EQ(out, Bytes(pt.size(), 0)) << i;
      }
    }
    Bytes bad_aad = aad;
    bad_aad[0] ^= 1;
    Bytes out(pt.size());
    EXPECT_FALSE(a->get()->open(nonce, bad_aad, ct, out).has_value());
    Bytes bad_nonce = nonce;
    bad_nonce.back() ^= 1;
    EXPECT_FALSE(a->get()->open(bad_nonce, aad, ct, out).has_value());
    // The object stays usable after failures.
    ASSERT_TRUE(a->get()->open(nonce, aad, ct, out).has_value());
    EXPECT_EQ(out, pt);
  }
}

TEST_F(CcmTest, InterleavedKeysAndMessages) {
  // Two objects per key (one seals, the other opens) and two keys, used in turn:
  // each object's CBC chaining value depends on its own history only.
  const AeadInfo info = *aead_info(10);
  const Bytes k1 = rng_.bytes(16), k2 = rng_.bytes(16);
  auto s1 = *p_->make_aead(10, k1), o1 = *p_->make_aead(10, k1);
  auto s2 = *p_->make_aead(10, k2), o2 = *p_->make_aead(10, k2);
  for (int i = 0; i < 200; ++i) {
    Aead& s = i % 2 ? *s1 : *s2;
    Aead& o = i % 3 ? *o1 : *o2;
    const Bytes& key = i % 2 ? k1 : k2;
    const size_t len = static_cast<size_t>(i * 7 % 90);
    const Bytes nonce = rng_.bytes(info.nonce_len), aad = rng_.bytes(static_cast<size_t>(i % 5)),
                pt = rng_.bytes(len);
    Bytes ct(len + info.tag_len);
    ASSERT_TRUE(s.seal(nonce, aad, pt, ct).has_value());
    ASSERT_EQ(ct, evp_ccm_seal(info, key, nonce, aad, pt)) << i;
    Bytes back(len);
    const bool same_key = (i % 2 != 0) == (i % 3 != 0);
    EXPECT_EQ(o.open(nonce, aad, ct, back).has_value(), same_key) << i;
    if (same_key) {
      EXPECT_EQ(back, pt);
    }
  }
}

}  // namespace
}  // namespace acekdc::crypto
