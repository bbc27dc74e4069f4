// RFC 8613 §3.2 derivation and §5.2 nonces against Appendix C.1-C.3, read from
// the RFC text (tests/vectors/rfc/rfc8613.txt).
#include <gtest/gtest.h>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/derivation.h"
#include "oscore/rfc_vectors_test.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

class Rfc8613Derivation : public ::testing::TestWithParam<const char*> {};

TEST_P(Rfc8613Derivation, MatchesAppendixC) {
  auto v = test::rfc8613_section(GetParam());
  ASSERT_TRUE(v.count("Master Secret")) << GetParam();
  ASSERT_TRUE(v.count("Sender Key"));
  auto provider = crypto::make_openssl_provider();

  ContextParams p;
  p.master_secret = v["Master Secret"];
  if (v.count("Master Salt")) p.master_salt = v["Master Salt"];
  p.sender_id = v["Sender ID"];
  p.recipient_id = v["Recipient ID"];
  if (v.count("ID Context")) p.id_context = v["ID Context"];

  // info arrays (§3.2.1)
  std::optional<ByteView> ctx;
  if (p.id_context) ctx = ByteView(*p.id_context);
  uint8_t buf[64];
  auto n = build_info(p.sender_id, ctx, p.aead_alg, "Key", 16, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(v["info (for Sender Key)"]));
  n = build_info(p.recipient_id, ctx, p.aead_alg, "Key", 16, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(v["info (for Recipient Key)"]));
  n = build_info({}, ctx, p.aead_alg, "IV", 13, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(v["info (for Common IV)"]));

  auto k = derive_keys(*provider, p);
  ASSERT_TRUE(k) << to_string(k.error());
  EXPECT_EQ(to_hex(k->sender()), to_hex(v["Sender Key"]));
  EXPECT_EQ(to_hex(k->recipient()), to_hex(v["Recipient Key"]));
  EXPECT_EQ(to_hex(k->iv()), to_hex(v["Common IV"]));

  // Nonces with Partial IV 0 (§5.2).
  std::array<uint8_t, 5> piv;
  size_t piv_len = encode_piv(0, piv);
  ASSERT_EQ(piv_len, 1u);
  uint8_t nonce[13];
  ASSERT_TRUE(make_nonce(k->iv(), p.sender_id, ByteView(piv.data(), piv_len), nonce));
  EXPECT_EQ(to_hex(nonce), to_hex(v["sender nonce"]));
  ASSERT_TRUE(make_nonce(k->iv(), p.recipient_id, ByteView(piv.data(), piv_len), nonce));
  EXPECT_EQ(to_hex(nonce), to_hex(v["recipient nonce"]));
}

INSTANTIATE_TEST_SUITE_P(AppendixC, Rfc8613Derivation,
                         ::testing::Values("C.1.1.", "C.1.2.", "C.2.1.", "C.2.2.", "C.3.1.", "C.3.2."));

TEST(Derivation, VectorReaderFindsEveryValue) {
  // A guard against the RFC reader silently dropping values.
  auto v = test::rfc8613_section("C.3.1.");
  EXPECT_EQ(v.size(), 13u);
  EXPECT_EQ(to_hex(v["ID Context"]), "37cbf3210017a2d3");
}

TEST(Derivation, HkdfAlgorithmAliases) {
  EXPECT_EQ(*hkdf_hash(-10), crypto::Hash::kSha256);
  EXPECT_EQ(*hkdf_hash(5), crypto::Hash::kSha256);
  EXPECT_EQ(*hkdf_hash(-11), crypto::Hash::kSha512);
  EXPECT_FALSE(hkdf_hash(4));

  auto provider = crypto::make_openssl_provider();
  ContextParams p;
  p.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
  p.master_salt = *from_hex("9e7ca92223786340");
  p.recipient_id = {0x01};
  auto a = derive_keys(*provider, p);
  p.hkdf_alg = 5;
  auto b = derive_keys(*provider, p);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(to_hex(a->sender()), to_hex(b->sender()));
  EXPECT_EQ(to_hex(a->sender()), "f0910ed7295e6ad4b54fc793154302ff");  // C.1.1
}

TEST(Derivation, RejectsBadParameters) {
  auto provider = crypto::make_openssl_provider();
  ContextParams p;
  p.master_secret = Bytes(16, 1);
  p.sender_id = Bytes(7, 0);  // 13-byte nonce allows at most 7
  p.recipient_id = {1};
  EXPECT_TRUE(derive_keys(*provider, p));
  p.sender_id = Bytes(8, 0);
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kInvalidArgument);
  p.sender_id = {1};
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kInvalidArgument);  // same as recipient
  p.sender_id = {};
  p.aead_alg = 4;  // an HMAC, not an AEAD
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kUnsupportedAlgorithm);
  p.aead_alg = 10;
  p.hkdf_alg = 99;
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kUnsupportedAlgorithm);
  p.hkdf_alg = -10;
  p.master_secret.clear();
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kInvalidArgument);
}

TEST(Derivation, OtherAeadSizes) {
  auto provider = crypto::make_openssl_provider();
  ContextParams p;
  p.master_secret = Bytes(16, 7);
  p.recipient_id = {1};
  p.aead_alg = 3;  // A256GCM: 32-byte key, 12-byte nonce
  auto k = derive_keys(*provider, p);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->key_len, 32u);
  EXPECT_EQ(k->nonce_len, 12u);
  p.sender_id = Bytes(7, 0);  // 12-byte nonce allows 6
  EXPECT_EQ(derive_keys(*provider, p).error(), Error::kInvalidArgument);
}

TEST(Nonce, PartialIvEncodingAndLayout) {
  std::array<uint8_t, 5> piv;
  EXPECT_EQ(encode_piv(0, piv), 1u);
  EXPECT_EQ(encode_piv(20, piv), 1u);
  EXPECT_EQ(piv[0], 0x14);
  EXPECT_EQ(encode_piv(0x100, piv), 2u);
  EXPECT_EQ(encode_piv((uint64_t{1} << 40) - 1, piv), 5u);
  EXPECT_EQ(to_hex(piv), "ffffffffff");
  EXPECT_EQ(*decode_piv(ByteView(piv.data(), 5)), (uint64_t{1} << 40) - 1);
  EXPECT_FALSE(decode_piv({}));

  // Zero Common IV exposes the raw layout: len(ID) || pad || ID || pad || PIV.
  Bytes iv(13, 0);
  uint8_t nonce[13];
  const uint8_t id[] = {0xaa, 0xbb};
  const uint8_t p[] = {0x01, 0x02};
  ASSERT_TRUE(make_nonce(iv, id, p, nonce));
  EXPECT_EQ(to_hex(nonce), "020000000000aabb0000000102");
  EXPECT_EQ(make_nonce(iv, Bytes(8, 0), p, nonce).error(), Error::kInvalidArgument);
  EXPECT_EQ(make_nonce(iv, id, Bytes(6, 0), nonce).error(), Error::kInvalidArgument);
}

}  // namespace
