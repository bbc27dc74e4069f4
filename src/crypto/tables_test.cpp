// Tests of the backend-free part of the crypto layer: the algorithm tables,
// error names and the ECDSA r||s <-> DER conversion. Links acekdc_crypto only.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/ecdsa_der.h"
#include "crypto/provider.h"

namespace acekdc::crypto {
namespace {

TEST(Tables, AeadSizesPerRfc9053) {
  struct Row {
    int alg;
    size_t key, nonce, tag;
  } const rows[] = {{1, 16, 12, 16},  {2, 24, 12, 16},  {3, 32, 12, 16},  {10, 16, 13, 8},
                    {11, 32, 13, 8},  {12, 16, 7, 8},   {13, 32, 7, 8},   {24, 32, 12, 16},
                    {30, 16, 13, 16}, {31, 32, 13, 16}, {32, 16, 7, 16},  {33, 32, 7, 16}};
  for (const Row& r : rows) {
    auto i = aead_info(r.alg);
    ASSERT_TRUE(i.has_value()) << r.alg;
    EXPECT_EQ(i->key_len, r.key) << r.alg;
    EXPECT_EQ(i->nonce_len, r.nonce) << r.alg;
    EXPECT_EQ(i->tag_len, r.tag) << r.alg;
  }
  for (int alg : {0, 4, 5, 6, 7, 9, 14, 23, 25, 29, 34, -7, -8, -10}) {
    EXPECT_FALSE(aead_info(alg).has_value()) << alg;
  }
}

TEST(Tables, MacAndSignature) {
  EXPECT_EQ(mac_info(4)->tag_len, 8u);
  EXPECT_EQ(mac_info(5)->tag_len, 32u);
  EXPECT_EQ(mac_info(6)->tag_len, 48u);
  EXPECT_EQ(mac_info(7)->tag_len, 64u);
  EXPECT_EQ(mac_info(4)->key_len, 32u);
  EXPECT_EQ(mac_info(7)->key_len, 64u);
  EXPECT_FALSE(mac_info(10).has_value());
  EXPECT_FALSE(mac_info(3).has_value());
  EXPECT_EQ(signature_len(cp::alg::kES256), 64u);
  EXPECT_EQ(signature_len(cp::alg::kEdDSA), 64u);
  EXPECT_FALSE(signature_len(-35).has_value());
  EXPECT_FALSE(signature_len(10).has_value());
}

TEST(Tables, ErrorNamesDistinct) {
  std::set<std::string> names;
  for (Error e : {Error::kUnsupportedAlgorithm, Error::kInvalidKey, Error::kInvalidArgument,
                  Error::kAuthenticationFailed, Error::kBadSignature, Error::kInternal}) {
    names.insert(to_string(e));
  }
  EXPECT_EQ(names.size(), 6u);
}

Bytes raw_of(const char* r, const char* s) {
  Bytes out = *from_hex(r);
  Bytes b = *from_hex(s);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

TEST(EcdsaDer, Encoding) {
  uint8_t buf[kMaxEcdsaDerLen];
  // Small values: leading zeros stripped, zero kept as one byte.
  Bytes raw(64, 0);
  raw[31] = 1;
  auto n = ecdsa_raw_to_der(raw, buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(to_hex(ByteView(buf, *n)), "3006020101020100");
  // High bit set: a 0x00 pad byte keeps the integer positive.
  raw.assign(64, 0xff);
  n = ecdsa_raw_to_der(raw, buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 2u + 2 * 35);
  EXPECT_EQ(buf[0], 0x30);
  EXPECT_EQ(buf[1], 70);
  EXPECT_EQ(to_hex(ByteView(buf + 2, 4)), "022100ff");
  // RFC 6979 A.2.5 "sample" r||s converts and back.
  const Bytes sig = raw_of("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
                           "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
  n = ecdsa_raw_to_der(sig, buf);
  ASSERT_TRUE(n.has_value());
  Bytes back(64);
  ASSERT_TRUE(ecdsa_der_to_raw(ByteView(buf, *n), 32, back).has_value());
  EXPECT_EQ(back, sig);
  // Argument checks.
  EXPECT_FALSE(ecdsa_raw_to_der(Bytes(63, 1), buf).has_value());
  EXPECT_FALSE(ecdsa_raw_to_der({}, buf).has_value());
  EXPECT_FALSE(ecdsa_raw_to_der(Bytes(64, 0xff), MutableByteView(buf, 71)).has_value());
  // P-521 sized scalars use the long length form.
  n = ecdsa_raw_to_der(Bytes(132, 0xff), buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(to_hex(ByteView(buf, 3)), "30818a");
  back.resize(132);
  ASSERT_TRUE(ecdsa_der_to_raw(ByteView(buf, *n), 66, back).has_value());
  EXPECT_EQ(back, Bytes(132, 0xff));
}

TEST(EcdsaDer, StrictDecoding) {
  Bytes out(64);
  auto bad = [&](const char* hex) {
    auto der = from_hex(hex);
    ASSERT_TRUE(der.has_value()) << hex;
    auto r = ecdsa_der_to_raw(*der, 32, out);
    ASSERT_FALSE(r.has_value()) << hex;
    EXPECT_EQ(r.error(), Error::kBadSignature);
  };
  EXPECT_TRUE(ecdsa_der_to_raw(*from_hex("3006020101020102"), 32, out).has_value());
  EXPECT_EQ(out[31], 1);
  EXPECT_EQ(out[63], 2);
  bad("");
  bad("30");
  bad("3006020101020102" "00");      // trailing byte
  bad("3007020101020102");           // length too long
  bad("3006020101030102");           // not an INTEGER
  bad("300702020001020102");         // non-minimal integer
  bad("3006020181020102");           // negative integer
  bad("3005020101020100");           // length mismatch
  bad("3004020101" "02");            // truncated
  bad("3106020101020102");           // SET, not SEQUENCE
  bad("3008020101020102020103");     // three integers
  bad("300602000201020102");         // zero-length integer
  bad("308106020101020102");         // non-minimal long form length
  // An integer longer than the scalar size.
  bad("3027022201" "0000000000000000000000000000000000000000000000000000000000000000" "020101");
  EXPECT_EQ(ecdsa_der_to_raw(*from_hex("3006020101020102"), 32, MutableByteView(out.data(), 63)).error(),
            Error::kInvalidArgument);
}

}  // namespace
}  // namespace acekdc::crypto
