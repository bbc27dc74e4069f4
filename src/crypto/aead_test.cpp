// AEAD tests: published known-answer vectors (testdata/aead_kat.txt), the COSE
// working group's Encrypt0 examples for every AEAD alg, round trips for every
// alg, in-place operation, and the failure cases of the contract.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"
#include "crypto/test_vectors.h"

namespace acekdc::crypto {
namespace {

using testing::load_vectors;

const int kAllAeads[] = {1, 2, 3, 10, 11, 12, 13, 24, 30, 31, 32, 33};

Bytes concat(ByteView a, ByteView b) {
  Bytes r(a.begin(), a.end());
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

class AeadTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> p_ = make_openssl_provider();

  std::unique_ptr<Aead> aead(int alg, ByteView key) {
    auto a = p_->make_aead(alg, key);
    EXPECT_TRUE(a.has_value()) << "alg " << alg;
    return a ? std::move(*a) : nullptr;
  }
  // check_kat seals and opens (out of place and in place) and compares with the vector.
  void check_kat(const std::string& name, int alg, ByteView key, ByteView nonce, ByteView aad,
                 ByteView pt, ByteView expected) {
    SCOPED_TRACE(name);
    auto a = aead(alg, key);
    ASSERT_TRUE(a);
    Bytes out(pt.size() + a->info().tag_len);
    auto n = a->seal(nonce, aad, pt, out);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, expected.size());
    EXPECT_EQ(to_hex(out), to_hex(expected));

    Bytes back(pt.size());
    auto m = a->open(nonce, aad, expected, back);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(*m, pt.size());
    EXPECT_EQ(to_hex(back), to_hex(pt));

    // In place: the buffer holds the plaintext and room for the tag.
    Bytes buf = concat(pt, Bytes(a->info().tag_len, 0xee));
    auto s = a->seal(nonce, aad, ByteView(buf.data(), pt.size()), buf);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(to_hex(buf), to_hex(expected));
    auto o = a->open(nonce, aad, buf, MutableByteView(buf.data(), pt.size()));
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(to_hex(ByteView(buf.data(), pt.size())), to_hex(pt));
  }
};

TEST_F(AeadTest, PublishedVectors) {
  auto recs = load_vectors("aead_kat.txt");
  EXPECT_EQ(recs.size(), 8u);
  for (const auto& r : recs) {
    check_kat(r.name(), std::stoi(r.str("alg")), r.hex("key"), r.hex("nonce"), r.hex("aad"),
              r.hex("plaintext"), concat(r.hex("ciphertext"), r.hex("tag")));
  }
}

// The cose-wg/Examples Encrypt0 cases (tests/vectors/cose): CEK, nonce (the
// IV header, also the rng_stream), AAD and plaintext are given; the ciphertext
// is the last byte string of the COSE_Encrypt0 in cbor_diag.
TEST_F(AeadTest, CoseExamplesCoverEveryAlg) {
  const std::map<std::string, int> names = {
      {"A128GCM", 1}, {"A192GCM", 2}, {"A256GCM", 3},
      {"AES-CCM-16-128/64", 10}, {"AES-CCM-16-256/64", 11},
      {"AES-CCM-64-128/64", 12}, {"AES-CCM-64-256/64", 13},
      {"AES-CCM-16-128/128", 30}, {"AES-CCM-16-256/128", 31},
      {"AES-CCM-64-128/128", 32}, {"AES-CCM-64-256/128", 33},
      {"ChaCha-Poly1305", 24}};
  std::set<int> seen;
  const std::filesystem::path root = std::string(ACEKDC_VECTORS_DIR) + "/cose";
  for (const char* dir : {"aes-ccm-examples", "aes-gcm-examples", "chacha-poly-examples"}) {
    for (const auto& entry : std::filesystem::directory_iterator(root / dir)) {
      if (entry.path().filename().string().find("-enc-") == std::string::npos) continue;
      std::ifstream in(entry.path());
      const auto j = nlohmann::json::parse(in);
      if (j.value("fail", false)) continue;
      const auto& enc = j["input"]["encrypted"];
      const int alg = names.at(enc["protected"]["alg"].get<std::string>());
      const std::string diag = j["output"]["cbor_diag"].get<std::string>();
      std::smatch m;
      ASSERT_TRUE(std::regex_search(diag, m, std::regex("h'([0-9A-F]*)'\\]\\)$")));
      const Bytes ct = *from_hex(m[1].str());
      const Bytes nonce = *from_hex(j["input"]["rng_stream"][0].get<std::string>());
      const Bytes key = *from_hex(j["intermediates"]["CEK_hex"].get<std::string>());
      // The AAD is the Enc_structure ["Encrypt0", protected, h''] (RFC 9052 §5.3),
      // built here from the protected header bytes (the first h'..' in cbor_diag).
      // It must equal the printed AAD_hex, except in chacha-poly-enc-01 whose
      // AAD_hex says "Encrypt1" while its output was computed with "Encrypt0".
      ASSERT_TRUE(std::regex_search(diag, m, std::regex("^16\\(\\[h'([0-9A-F]*)'")));
      const Bytes prot = *from_hex(m[1].str());
      ASSERT_LT(prot.size(), 24u);
      Bytes aad = {0x83, 0x68};
      aad.insert(aad.end(), {'E', 'n', 'c', 'r', 'y', 'p', 't', '0'});
      aad.push_back(static_cast<uint8_t>(0x40 | prot.size()));
      aad.insert(aad.end(), prot.begin(), prot.end());
      aad.push_back(0x40);
      const std::string printed_aad = j["intermediates"]["AAD_hex"].get<std::string>();
      if (entry.path().filename() != "chacha-poly-enc-01.json") {
        EXPECT_EQ(to_hex(aad), to_hex(*from_hex(printed_aad))) << entry.path();
      }
      const std::string pt = j["input"]["plaintext"].get<std::string>();
      check_kat(entry.path().filename().string(), alg, key, nonce, aad, as_bytes(pt), ct);
      seen.insert(alg);
    }
  }
  EXPECT_EQ(seen.size(), std::size(kAllAeads));
}

TEST_F(AeadTest, RoundTripEveryAlgAndLength) {
  FakeRandom rng(7);
  for (int alg : kAllAeads) {
    const auto info = *aead_info(alg);
    auto a = aead(alg, rng.bytes(info.key_len));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->alg(), alg);
    for (size_t len : {0, 1, 15, 16, 17, 64, 1000}) {
      SCOPED_TRACE(::testing::Message() << "alg " << alg << " len " << len);
      const Bytes nonce = rng.bytes(info.nonce_len), aad = rng.bytes(len % 21), pt = rng.bytes(len);
      Bytes ct(len + info.tag_len);
      ASSERT_EQ(a->seal(nonce, aad, pt, ct).value_or(0), len + info.tag_len);
      Bytes back(len);
      ASSERT_EQ(a->open(nonce, aad, ct, back).value_or(99999), len);
      EXPECT_EQ(back, pt);
      // Same nonce and input, same output: the key schedule is reused correctly.
      Bytes ct2(len + info.tag_len);
      ASSERT_TRUE(a->seal(nonce, aad, pt, ct2).has_value());
      EXPECT_EQ(ct, ct2);
      // Larger output buffers are fine; only the first bytes are written.
      Bytes big(len + info.tag_len + 5, 0x77);
      ASSERT_EQ(a->seal(nonce, aad, pt, big).value_or(0), len + info.tag_len);
      EXPECT_EQ(Bytes(big.begin(), big.begin() + ct.size()), ct);
    }
  }
}

TEST_F(AeadTest, KeyLengthAndAlgChecked) {
  for (int alg : kAllAeads) {
    const size_t k = aead_info(alg)->key_len;
    for (size_t bad : {k - 1, k + 1, size_t{0}}) {
      auto a = p_->make_aead(alg, Bytes(bad, 1));
      ASSERT_FALSE(a.has_value()) << alg;
      EXPECT_EQ(a.error(), Error::kInvalidKey);
    }
  }
  for (int alg : {0, 4, 5, 14, 25, 34, -7, -8}) {
    auto a = p_->make_aead(alg, Bytes(16, 1));
    ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.error(), Error::kUnsupportedAlgorithm);
  }
}

TEST_F(AeadTest, WrongNonceLengthAndShortOutput) {
  for (int alg : kAllAeads) {
    SCOPED_TRACE(alg);
    const auto info = *aead_info(alg);
    auto a = aead(alg, Bytes(info.key_len, 3));
    const Bytes pt(10, 1), aad(3, 2);
    Bytes out(pt.size() + info.tag_len);
    for (size_t n : {info.nonce_len - 1, info.nonce_len + 1, size_t{0}}) {
      auto s = a->seal(Bytes(n, 0), aad, pt, out);
      ASSERT_FALSE(s.has_value());
      EXPECT_EQ(s.error(), Error::kInvalidArgument);
      auto o = a->open(Bytes(n, 0), aad, out, out);
      ASSERT_FALSE(o.has_value());
      EXPECT_EQ(o.error(), Error::kInvalidArgument);
    }
    const Bytes nonce(info.nonce_len, 9);
    auto s = a->seal(nonce, aad, pt, MutableByteView(out.data(), out.size() - 1));
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error(), Error::kInvalidArgument);
    ASSERT_TRUE(a->seal(nonce, aad, pt, out).has_value());
    Bytes back(pt.size() - 1);
    auto o = a->open(nonce, aad, out, back);
    ASSERT_FALSE(o.has_value());
    EXPECT_EQ(o.error(), Error::kInvalidArgument);
    // Shorter than a tag cannot be authentic.
    Bytes any(16);
    auto t = a->open(nonce, aad, ByteView(out.data(), info.tag_len - 1), any);
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.error(), Error::kAuthenticationFailed);
  }
}

TEST_F(AeadTest, PartialOverlapRefused) {
  auto a = aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 1));
  Bytes buf(64, 5);
  const Bytes nonce(13, 0);
  auto s = a->seal(nonce, {}, ByteView(buf.data(), 20), MutableByteView(buf.data() + 1, 40));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error(), Error::kInvalidArgument);
}

TEST_F(AeadTest, CcmLengthFieldLimit) {
  // A 13-byte nonce leaves L = 2: at most 65535 bytes of plaintext (RFC 3610 §2).
  auto a = aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 1));
  const Bytes nonce(13, 0);
  Bytes pt(65536, 1), out(65536 + 8);
  auto s = a->seal(nonce, {}, pt, out);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error(), Error::kInvalidArgument);
  ASSERT_TRUE(a->seal(nonce, {}, ByteView(pt.data(), 65535), out).has_value());
  // 7-byte nonce (L = 8): no such limit at this size.
  auto b = aead(cp::alg::kAES_CCM_64_64_128, Bytes(16, 1));
  ASSERT_TRUE(b->seal(Bytes(7, 0), {}, pt, out).has_value());
}

// Every tampering is detected, leaves no plaintext in out, and does not break
// the object for later messages.
TEST_F(AeadTest, TamperingDetectedAndOutputZeroed) {
  FakeRandom rng(3);
  for (int alg : kAllAeads) {
    SCOPED_TRACE(alg);
    const auto info = *aead_info(alg);
    auto a = aead(alg, rng.bytes(info.key_len));
    const Bytes nonce = rng.bytes(info.nonce_len), aad = rng.bytes(9), pt = rng.bytes(33);
    Bytes ct(pt.size() + info.tag_len);
    ASSERT_TRUE(a->seal(nonce, aad, pt, ct).has_value());

    auto expect_fail = [&](ByteView n, ByteView ad, ByteView c) {
      Bytes out(c.size() >= info.tag_len ? c.size() - info.tag_len : 0, 0x55);
      auto r = a->open(n, ad, c, out);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), Error::kAuthenticationFailed);
      EXPECT_EQ(out, Bytes(out.size(), 0)) << "plaintext left in out";
      // In place too: the buffer must not keep decrypted bytes.
      Bytes buf(c.begin(), c.end());
      auto r2 = a->open(n, ad, buf, MutableByteView(buf.data(), out.size()));
      ASSERT_FALSE(r2.has_value());
      EXPECT_EQ(Bytes(buf.begin(), buf.begin() + out.size()), Bytes(out.size(), 0));
    };
    for (size_t i : {size_t{0}, pt.size() - 1, pt.size(), ct.size() - 1}) {
      Bytes bad = ct;
      bad[i] ^= 0x01;
      expect_fail(nonce, aad, bad);
    }
    Bytes bad_aad = aad;
    bad_aad[0] ^= 0x80;
    expect_fail(nonce, bad_aad, ct);
    expect_fail(nonce, {}, ct);
    Bytes bad_nonce = nonce;
    bad_nonce.back() ^= 1;
    expect_fail(bad_nonce, aad, ct);
    expect_fail(nonce, aad, ByteView(ct.data(), ct.size() - 1));  // truncated

    // Still usable after failures.
    Bytes back(pt.size());
    ASSERT_TRUE(a->open(nonce, aad, ct, back).has_value());
    EXPECT_EQ(back, pt);
    Bytes ct2(ct.size());
    ASSERT_TRUE(a->seal(nonce, aad, pt, ct2).has_value());
    EXPECT_EQ(ct2, ct);
  }
}

TEST_F(AeadTest, EmptyPlaintextStillAuthenticates) {
  for (int alg : kAllAeads) {
    SCOPED_TRACE(alg);
    const auto info = *aead_info(alg);
    auto a = aead(alg, Bytes(info.key_len, 0x42));
    const Bytes nonce(info.nonce_len, 1), aad = {1, 2, 3};
    Bytes tag(info.tag_len);
    ASSERT_TRUE(a->seal(nonce, aad, {}, tag).has_value());
    EXPECT_NE(tag, Bytes(info.tag_len, 0));
    EXPECT_TRUE(a->open(nonce, aad, tag, {}).has_value());
    tag[0] ^= 1;
    EXPECT_FALSE(a->open(nonce, aad, tag, {}).has_value());
  }
}

}  // namespace
}  // namespace acekdc::crypto
