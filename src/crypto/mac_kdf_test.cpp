// HMAC, HKDF and hash tests: RFC 4231 (HMAC-SHA-256/384/512), RFC 5869
// (HKDF-SHA-256), truncation for alg 4, constant-time verify behaviour, and
// the argument checks.
#include <gtest/gtest.h>

#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"
#include "crypto/test_vectors.h"

namespace acekdc::crypto {
namespace {

using testing::load_vectors;

class MacKdfTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> p_ = make_openssl_provider();
};

// For each RFC 4231 case and each COSE HMAC alg, the tag is the published
// HMAC truncated to the alg's tag length (alg 4 keeps 8 bytes of SHA-256).
TEST_F(MacKdfTest, Rfc4231) {
  struct {
    int alg;
    const char* field;
  } const algs[] = {{cp::alg::kHMAC256_64, "HMAC-SHA-256"},
                    {cp::alg::kHMAC256_256, "HMAC-SHA-256"},
                    {cp::alg::kHMAC384_384, "HMAC-SHA-384"},
                    {cp::alg::kHMAC512_512, "HMAC-SHA-512"}};
  auto recs = load_vectors("rfc4231_hmac.txt");
  ASSERT_EQ(recs.size(), 7u);
  int checked = 0;
  for (const auto& r : recs) {
    for (const auto& a : algs) {
      SCOPED_TRACE(::testing::Message() << "case " << r.name() << " alg " << a.alg);
      const Bytes want = r.hex(a.field);
      auto mac = p_->make_mac(a.alg, r.hex("Key"));
      ASSERT_TRUE(mac.has_value());
      const size_t tag_len = (*mac)->tag_len();
      EXPECT_EQ(tag_len, mac_info(a.alg)->tag_len);
      const size_t cmp = std::min(tag_len, want.size());
      // Twice: the keyed context must restart cleanly.
      for (int round = 0; round < 2; ++round) {
        Bytes out(tag_len);
        ASSERT_EQ((*mac)->compute(r.hex("Data"), out).value_or(0), tag_len);
        EXPECT_EQ(to_hex(ByteView(out.data(), cmp)), to_hex(ByteView(want.data(), cmp)));
        EXPECT_TRUE((*mac)->verify(r.hex("Data"), out).has_value());
      }
      if (!r.has("truncate")) {
        EXPECT_EQ(want.size(), hash_len(a.alg == 6 ? Hash::kSha384 : a.alg == 7 ? Hash::kSha512 : Hash::kSha256));
        if (tag_len == want.size()) {
          EXPECT_TRUE((*mac)->verify(r.hex("Data"), want).has_value());
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 28);
}

TEST_F(MacKdfTest, MacVerifyRejects) {
  auto mac = *p_->make_mac(cp::alg::kHMAC256_64, Bytes(32, 7));
  const Bytes data = {1, 2, 3};
  Bytes tag(8);
  ASSERT_TRUE(mac->compute(data, tag).has_value());
  for (size_t i = 0; i < tag.size(); ++i) {
    Bytes bad = tag;
    bad[i] ^= 0x40;
    auto v = mac->verify(data, bad);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error(), Error::kAuthenticationFailed);
  }
  // A tag of the wrong length (even the untruncated HMAC) does not verify.
  Bytes full(32);
  auto full_mac = *p_->make_mac(cp::alg::kHMAC256_256, Bytes(32, 7));
  ASSERT_TRUE(full_mac->compute(data, full).has_value());
  EXPECT_EQ(Bytes(full.begin(), full.begin() + 8), tag);
  EXPECT_FALSE(mac->verify(data, full).has_value());
  EXPECT_FALSE(mac->verify(data, ByteView(tag.data(), 7)).has_value());
  EXPECT_FALSE(mac->verify(data, {}).has_value());
  EXPECT_FALSE(mac->verify(Bytes{1, 2, 4}, tag).has_value());
  // Short output buffer.
  Bytes small(7);
  auto c = mac->compute(data, small);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error(), Error::kInvalidArgument);
  // Bad algs and empty key.
  EXPECT_EQ(p_->make_mac(10, Bytes(32, 1)).error(), Error::kUnsupportedAlgorithm);
  EXPECT_EQ(p_->make_mac(8, Bytes(32, 1)).error(), Error::kUnsupportedAlgorithm);
  EXPECT_EQ(p_->make_mac(cp::alg::kHMAC256_256, {}).error(), Error::kInvalidKey);
}

TEST_F(MacKdfTest, Rfc5869) {
  auto recs = load_vectors("rfc5869_hkdf.txt");
  ASSERT_EQ(recs.size(), 3u);
  for (const auto& r : recs) {
    SCOPED_TRACE(r.name());
    ASSERT_EQ(r.str("Hash"), "SHA-256");
    const size_t l = std::stoul(r.str("L"));
    Bytes prk(32), okm(l), okm2(l);
    ASSERT_TRUE(p_->hkdf_extract(Hash::kSha256, r.hex("salt"), r.hex("IKM"), prk).has_value());
    EXPECT_EQ(to_hex(prk), to_hex(r.hex("PRK")));
    ASSERT_TRUE(p_->hkdf_expand(Hash::kSha256, r.hex("PRK"), r.hex("info"), okm).has_value());
    EXPECT_EQ(to_hex(okm), to_hex(r.hex("OKM")));
    ASSERT_TRUE(p_->hkdf(Hash::kSha256, r.hex("salt"), r.hex("IKM"), r.hex("info"), okm2).has_value());
    EXPECT_EQ(to_hex(okm2), to_hex(r.hex("OKM")));
    // Every prefix length gives the prefix of the OKM (T(i) chaining).
    for (size_t n = 0; n <= l; n += 7) {
      Bytes part(n);
      ASSERT_TRUE(p_->hkdf_expand(Hash::kSha256, r.hex("PRK"), r.hex("info"), part).has_value());
      EXPECT_EQ(part, Bytes(okm.begin(), okm.begin() + n));
    }
  }
}

// RFC 5869 §2.2: an absent salt is HashLen zeros, for every hash.
TEST_F(MacKdfTest, EmptySaltIsHashLenZeros) {
  const Bytes ikm(22, 0x0b);
  for (Hash h : {Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    Bytes a(hash_len(h)), b(hash_len(h));
    ASSERT_TRUE(p_->hkdf_extract(h, {}, ikm, a).has_value());
    ASSERT_TRUE(p_->hkdf_extract(h, Bytes(hash_len(h), 0), ikm, b).has_value());
    EXPECT_EQ(a, b);
    // And extract is HMAC(salt, ikm).
    const int alg = h == Hash::kSha256 ? 5 : h == Hash::kSha384 ? 6 : 7;
    auto mac = *p_->make_mac(alg, Bytes(hash_len(h), 0));
    Bytes m(hash_len(h));
    ASSERT_TRUE(mac->compute(ikm, m).has_value());
    EXPECT_EQ(a, m);
  }
}

TEST_F(MacKdfTest, HkdfLimitsAndHashes) {
  const Bytes prk(64, 1);
  for (Hash h : {Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    Bytes max(255 * hash_len(h)), over(255 * hash_len(h) + 1);
    EXPECT_TRUE(p_->hkdf_expand(h, prk, {}, max).has_value());
    auto r = p_->hkdf_expand(h, prk, {}, over);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Error::kInvalidArgument);
    Bytes small(hash_len(h) - 1);
    EXPECT_EQ(p_->hkdf_extract(h, {}, prk, small).error(), Error::kInvalidArgument);
    EXPECT_EQ(p_->hash(h, prk, small).error(), Error::kInvalidArgument);
  }
  Bytes out(16);
  EXPECT_EQ(p_->hkdf_expand(Hash::kSha256, {}, {}, out).error(), Error::kInvalidKey);

  // FIPS 180-2 "abc" digests.
  Bytes d256(32), d384(48), d512(64);
  ASSERT_TRUE(p_->hash(Hash::kSha256, as_bytes("abc"), d256).has_value());
  ASSERT_TRUE(p_->hash(Hash::kSha384, as_bytes("abc"), d384).has_value());
  ASSERT_TRUE(p_->hash(Hash::kSha512, as_bytes("abc"), d512).has_value());
  EXPECT_EQ(to_hex(d256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(d384),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(to_hex(d512),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
            "454d4423643ce80e2a9ac94fa54ca49f");
}

}  // namespace
}  // namespace acekdc::crypto
