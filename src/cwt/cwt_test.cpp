// CWT tests: RFC 8392 Appendix A tokens (tests/vectors/cose/CWT, loaded as they
// are) verified / decrypted and rebuilt, claims checked against the RFC's A.1
// values; then the claim type rules, time / audience checks and token round trips.
#include "cwt/cwt.h"

#include <gtest/gtest.h>

#include <limits>

#include "cose/encrypt0.h"
#include "cose/mac0.h"
#include "cose/sign1.h"
#include "cose/test_util.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::cwt {
namespace {

using cose::testing::hex;
using cose::testing::ojson;

// RFC 8392 A.1 claims.
constexpr int64_t kA1Exp = 1444064944;
constexpr int64_t kA1Nbf = 1443944944;
constexpr int64_t kA1Iat = 1443944944;
constexpr int64_t kA1Valid = 1444000000;  // between nbf and exp

void expect_a1_claims(const Claims& c) {
  EXPECT_EQ(c.iss, "coap://as.example.com");
  EXPECT_EQ(c.sub, "erikw");
  EXPECT_EQ(c.aud, "coap://light.example.com");
  ASSERT_TRUE(c.exp && c.nbf && c.iat);
  EXPECT_EQ(*c.exp, NumericDate(kA1Exp));
  EXPECT_EQ(*c.nbf, NumericDate(kA1Nbf));
  EXPECT_EQ(*c.iat, NumericDate(kA1Iat));
  EXPECT_EQ(c.cti, hex("0b71"));
  EXPECT_FALSE(c.cnf || c.scope || c.exi || c.ace_profile);
  EXPECT_TRUE(c.other.empty());
}

ojson load(const std::string& name) {
  auto j = cose::testing::load_json(cose::testing::vectors_dir() + "/CWT/" + name);
  EXPECT_TRUE(j) << name;
  return j ? *j : ojson();
}

// FixedRandomProvider: the OpenSSL provider, but random() replays given bytes
// (to rebuild an example whose IV came from its random stream).
class FixedRandomProvider final : public crypto::Provider {
 public:
  explicit FixedRandomProvider(Bytes stream) : rnd_(std::move(stream)) {}
  Expected<std::unique_ptr<crypto::Aead>, crypto::Error> make_aead(int alg, ByteView key) override {
    return p_->make_aead(alg, key);
  }
  Expected<std::unique_ptr<crypto::Mac>, crypto::Error> make_mac(int alg, ByteView key) override {
    return p_->make_mac(alg, key);
  }
  Expected<std::unique_ptr<crypto::Signer>, crypto::Error> make_signer(
      int alg, const crypto::KeyPair& key) override {
    return p_->make_signer(alg, key);
  }
  Expected<std::unique_ptr<crypto::Verifier>, crypto::Error> make_verifier(
      int alg, const crypto::KeyPair& key) override {
    return p_->make_verifier(alg, key);
  }
  Expected<crypto::KeyPair, crypto::Error> generate_keypair(int crv) override {
    return p_->generate_keypair(crv);
  }
  Expected<void, crypto::Error> complete_public(crypto::KeyPair& key) override {
    return p_->complete_public(key);
  }
  Expected<size_t, crypto::Error> ecdh(const crypto::KeyPair& mine, const crypto::KeyPair& peer,
                                       MutableByteView out) override {
    return p_->ecdh(mine, peer, out);
  }
  Expected<void, crypto::Error> hkdf_extract(crypto::Hash h, ByteView salt, ByteView ikm,
                                             MutableByteView out) override {
    return p_->hkdf_extract(h, salt, ikm, out);
  }
  Expected<void, crypto::Error> hkdf_expand(crypto::Hash h, ByteView prk, ByteView info,
                                            MutableByteView out) override {
    return p_->hkdf_expand(h, prk, info, out);
  }
  Expected<void, crypto::Error> hkdf(crypto::Hash h, ByteView salt, ByteView ikm, ByteView info,
                                     MutableByteView out) override {
    return p_->hkdf(h, salt, ikm, info, out);
  }
  Expected<void, crypto::Error> hash(crypto::Hash h, ByteView data, MutableByteView out) override {
    return p_->hash(h, data, out);
  }
  Random& random() override { return rnd_; }

 private:
  class Replay final : public Random {
   public:
    explicit Replay(Bytes b) : b_(std::move(b)) {}
    void fill(MutableByteView out) override {
      for (auto& o : out) o = pos_ < b_.size() ? b_[pos_++] : 0;
    }

   private:
    Bytes b_;
    size_t pos_ = 0;
  };
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  Replay rnd_;
};

class CwtTest : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();

  VerifyOptions at(int64_t now) {
    VerifyOptions o;
    o.now = now;
    return o;
  }
};

TEST_F(CwtTest, A1ClaimsRoundTrip) {
  ojson j = load("A_3.json");
  Bytes a1 = hex(j["input"]["plaintext_hex"].get<std::string>());
  auto c = Claims::decode(a1);
  ASSERT_TRUE(c) << to_string(c.error());
  expect_a1_claims(*c);
  EXPECT_EQ(to_hex(c->encode()), to_hex(a1));
}

TEST_F(CwtTest, A3SignedES256) {
  ojson j = load("A_3.json");
  auto key = cose::testing::key_from_json(j["input"]["sign0"]["key"]);
  ASSERT_TRUE(key);
  Bytes token = hex(j["output"]["cbor"].get<std::string>());
  TokenInfo info;
  auto c = verify(*p_, token, key->public_key(), at(kA1Valid), &info);
  ASSERT_TRUE(c) << to_string(c.error());
  expect_a1_claims(*c);
  ASSERT_EQ(info.layers.size(), 1u);
  EXPECT_EQ(info.layers[0], cose::MessageType::kSign1);

  // Ours: same bytes up to the (randomized) ECDSA signature, and it verifies.
  CreateOptions co;
  co.include_kid = false;
  auto mine = create_signed(*p_, *c, *key, co);
  ASSERT_TRUE(mine) << to_string(mine.error());
  ASSERT_EQ(mine->size(), token.size());
  EXPECT_EQ(to_hex(ByteView(*mine).first(token.size() - 64)),
            to_hex(ByteView(token).first(token.size() - 64)));
  EXPECT_TRUE(verify(*p_, *mine, key->public_key(), at(kA1Valid)));
  // Tampering with one claim byte breaks the signature.
  Bytes bad = token;
  bad[20] ^= 1;
  auto r = verify(*p_, bad, key->public_key(), at(kA1Valid));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kBadSignature);
}

TEST_F(CwtTest, A4MacedHS256_64ByteExact) {
  ojson j = load("A_4.json");
  auto key = cose::testing::key_from_json(j["input"]["mac0"]["recipients"][0]["key"]);
  ASSERT_TRUE(key);
  Bytes token = hex(j["output"]["cbor"].get<std::string>());
  auto c = verify(*p_, token, *key, at(kA1Valid));
  ASSERT_TRUE(c) << to_string(c.error());
  expect_a1_claims(*c);

  CreateOptions co;
  co.alg = cp::alg::kHMAC256_64;
  co.include_kid = false;
  auto mine = create_maced(*p_, *c, *key, co);
  ASSERT_TRUE(mine) << to_string(mine.error());
  EXPECT_EQ(to_hex(*mine), to_hex(token));
  Bytes bad = token;
  bad.back() ^= 0x80;
  auto r = verify(*p_, bad, *key, at(kA1Valid));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kBadMac);
}

TEST_F(CwtTest, A5EncryptedAesCcmByteExact) {
  ojson j = load("A_5.json");
  auto key = cose::testing::key_from_json(j["input"]["encrypted"]["recipients"][0]["key"]);
  ASSERT_TRUE(key);
  Bytes token = hex(j["output"]["cbor"].get<std::string>());
  auto c = verify(*p_, token, *key, at(kA1Valid));
  ASSERT_TRUE(c) << to_string(c.error());
  expect_a1_claims(*c);

  FixedRandomProvider fixed(hex(j["input"]["rng_stream"][0].get<std::string>()));
  CreateOptions co;
  co.alg = cp::alg::kAES_CCM_16_64_128;
  co.include_kid = false;
  auto mine = create_encrypted(fixed, *c, *key, co);
  ASSERT_TRUE(mine) << to_string(mine.error());
  EXPECT_EQ(to_hex(*mine), to_hex(token));

  cose::CoseKey other = *key;
  other.k[0] ^= 1;
  auto r = verify(*p_, token, other, at(kA1Valid));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kDecryptFailed);
}

TEST_F(CwtTest, A6NestedSignedThenEncrypted) {
  ojson a3 = load("A_3.json");
  ojson j = load("A_6.json");
  auto sig_key = cose::testing::key_from_json(a3["input"]["sign0"]["key"]);
  auto enc_key = cose::testing::key_from_json(j["input"]["encrypted"]["recipients"][0]["key"]);
  ASSERT_TRUE(sig_key && enc_key);
  cose::KeySet keys;
  keys.keys.push_back(*enc_key);
  keys.keys.push_back(sig_key->public_key());
  Bytes token = hex(j["output"]["cbor"].get<std::string>());
  TokenInfo info;
  auto c = verify(*p_, token, keys, at(kA1Valid), &info);
  ASSERT_TRUE(c) << to_string(c.error());
  expect_a1_claims(*c);
  ASSERT_EQ(info.layers.size(), 2u);
  EXPECT_EQ(info.layers[0], cose::MessageType::kEncrypt0);
  EXPECT_EQ(info.layers[1], cose::MessageType::kSign1);

  // Rebuild the outer layer around the A.3 token: byte-exact.
  FixedRandomProvider fixed(hex(j["input"]["rng_stream"][0].get<std::string>()));
  CreateOptions co;
  co.alg = cp::alg::kAES_CCM_16_64_128;
  co.include_kid = false;
  auto mine = encrypt_token(fixed, hex(j["input"]["plaintext_hex"].get<std::string>()), *enc_key, co);
  ASSERT_TRUE(mine);
  EXPECT_EQ(to_hex(*mine), to_hex(token));

  // Without the signature key the inner layer has no key; nesting limit 1 refuses it.
  cose::KeySet only_enc;
  only_enc.keys.push_back(*enc_key);
  auto r = verify(*p_, token, only_enc, at(kA1Valid));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kNoKey);
  VerifyOptions o = at(kA1Valid);
  o.max_nesting = 1;
  r = verify(*p_, token, keys, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kNestingTooDeep);
}

TEST_F(CwtTest, A7FloatingPointIat) {
  ojson j = load("A_7.json");
  auto key = cose::testing::key_from_json(j["input"]["mac0"]["recipients"][0]["key"]);
  ASSERT_TRUE(key);
  Bytes token = hex(j["output"]["cbor"].get<std::string>());
  auto c = verify(*p_, token, *key, at(kA1Valid));
  ASSERT_TRUE(c) << to_string(c.error());
  ASSERT_TRUE(c->iat);
  EXPECT_TRUE(c->iat->is_float());
  EXPECT_EQ(c->iat->as_double(), 1443944944.5);
  EXPECT_EQ(c->iat->seconds(), 1443944944);
  EXPECT_EQ(to_hex(c->encode()), to_hex(hex(j["input"]["plaintext_hex"].get<std::string>())));
  CreateOptions co;
  co.alg = cp::alg::kHMAC256_64;
  co.include_kid = false;
  auto mine = create_maced(*p_, *c, *key, co);
  ASSERT_TRUE(mine);
  EXPECT_EQ(to_hex(*mine), to_hex(token));
}

// ---- claims rules ----

TEST_F(CwtTest, ClaimTypesAreChecked) {
  auto bad = [](cbor::Value m) {
    auto c = Claims::from_value(m);
    return !c && c.error() == Error::kInvalidClaims;
  };
  auto one = [](int label, cbor::Value v) {
    cbor::Value m = cbor::Value::map();
    m.set(label, std::move(v));
    return m;
  };
  EXPECT_TRUE(bad(one(cp::claim::kIss, cbor::Value::bytes(hex("01")))));
  EXPECT_TRUE(bad(one(cp::claim::kAud, cbor::Value::integer(3))));
  EXPECT_TRUE(bad(one(cp::claim::kExp, cbor::Value::text("tomorrow"))));
  EXPECT_TRUE(bad(one(cp::claim::kCti, cbor::Value::text("id"))));
  EXPECT_TRUE(bad(one(cp::claim::kScope, cbor::Value::integer(1))));
  EXPECT_TRUE(bad(one(cp::claim::kExi, cbor::Value::integer(-5))));
  EXPECT_TRUE(bad(one(cp::claim::kAceProfile, cbor::Value::text("coap_oscore"))));
  EXPECT_TRUE(bad(one(cp::claim::kCnf, cbor::Value::map())));
  EXPECT_TRUE(bad(one(cp::claim::kCnf, one(cp::cnf::kKid, cbor::Value::text("k")))));
  // cnf with a COSE_Key that is not valid (OKP without x).
  cbor::Value badkey = cbor::Value::map();
  badkey.set(cp::keyparam::kKty, cbor::Value::integer(cp::kty::kOKP));
  badkey.set(cp::keyparam::kCrv, cbor::Value::integer(cp::crv::kEd25519));
  EXPECT_TRUE(bad(one(cp::claim::kCnf, one(cp::cnf::kCoseKey, badkey))));
  EXPECT_TRUE(bad(cbor::Value::array()));
  EXPECT_TRUE(bad(one(cp::claim::kExp, cbor::Value::floating(std::numeric_limits<double>::infinity()))));
  // Duplicate claim keys in the encoding are rejected.
  EXPECT_FALSE(Claims::decode(hex("a2 04 01 04 02")));
}

TEST_F(CwtTest, AceClaimsRoundTrip) {
  Claims c;
  c.iss = "as";
  c.aud = "kdc";
  c.exp = 2000;
  c.scope = cbor::Value::bytes(hex("8182 6467726f75703101"));
  c.ace_profile = cp::ace::kProfileCoapOscore;
  c.exi = 3600;
  c.cti = hex("01");
  auto kp = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  c.set_cnf_key(cose::CoseKey::from_keypair(*kp, as_bytes("client")));
  c.other.emplace_back(cbor::Value::text("custom"), cbor::Value::integer(7));
  c.other.emplace_back(cbor::Value::integer(-65537), cbor::Value::boolean(true));
  Bytes enc = c.encode();
  auto d = Claims::decode(enc);
  ASSERT_TRUE(d) << to_string(d.error());
  EXPECT_EQ(d->encode(), enc);
  EXPECT_EQ(d->scope, c.scope);
  EXPECT_EQ(d->ace_profile, c.ace_profile);
  EXPECT_EQ(d->exi, 3600u);
  ASSERT_EQ(d->other.size(), 2u);
  auto k = d->cnf_key();
  ASSERT_TRUE(k);
  EXPECT_EQ(k->x, kp->x);
  EXPECT_FALSE(k->has_private());  // set_cnf_key leaves d out by default
  EXPECT_EQ(to_hex(k->kid), to_hex(as_bytes("client")));

  Claims t;
  t.scope = cbor::Value::text("read");
  t.set_cnf_kid(hex("abcd"));
  auto td = Claims::decode(t.encode());
  ASSERT_TRUE(td);
  EXPECT_EQ(to_hex(td->cnf_kid()), "abcd");
  EXPECT_FALSE(td->cnf_key());
}

// ---- time and audience ----

TEST_F(CwtTest, TimeAndAudienceChecks) {
  cose::CoseKey key = cose::CoseKey::symmetric(hex("000102030405060708090a0b0c0d0e0f"), as_bytes("k1"),
                                               cp::alg::kAES_CCM_16_64_128);
  Claims c;
  c.aud = "rs1";
  c.nbf = 1000;
  c.exp = 2000;
  auto tok = create_encrypted(*p_, c, key);
  ASSERT_TRUE(tok) << to_string(tok.error());

  auto with = [&](int64_t now, int64_t leeway, std::optional<std::string> aud) {
    VerifyOptions o;
    o.now = now;
    o.leeway = leeway;
    o.audience = std::move(aud);
    return verify(*p_, *tok, key, o);
  };
  EXPECT_TRUE(with(1000, 0, "rs1"));
  EXPECT_TRUE(with(1999, 0, std::nullopt));
  auto r = with(2000, 0, std::nullopt);  // on exp: not accepted (RFC 8392 §3.1.4)
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kExpired);
  EXPECT_TRUE(with(2009, 10, std::nullopt));
  EXPECT_EQ(with(2010, 10, std::nullopt).error(), Error::kExpired);
  EXPECT_EQ(with(999, 0, std::nullopt).error(), Error::kNotYetValid);
  EXPECT_TRUE(with(990, 10, std::nullopt));
  EXPECT_EQ(with(1500, 0, "rs2").error(), Error::kAudienceMismatch);

  Claims no_aud;
  auto tok2 = create_encrypted(*p_, no_aud, key);
  ASSERT_TRUE(tok2);
  VerifyOptions o;
  o.now = 5;
  o.audience = "rs1";
  EXPECT_EQ(verify(*p_, *tok2, key, o).error(), Error::kAudienceMismatch);
  o.audience.reset();
  o.require_exp = true;
  EXPECT_EQ(verify(*p_, *tok2, key, o).error(), Error::kMissingClaim);
}

// ---- tokens ----

TEST_F(CwtTest, SignedMacedEncryptedRoundTripsWithTags) {
  auto kp = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  cose::CoseKey sk = cose::CoseKey::from_keypair(*kp, as_bytes("sig"));
  cose::CoseKey mk = cose::CoseKey::symmetric(hex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
                                              as_bytes("mac"), cp::alg::kHMAC256_256);
  cose::CoseKey ek = cose::CoseKey::symmetric(hex("00112233445566778899aabbccddeeff"), as_bytes("enc"),
                                              cp::alg::kA128GCM);
  cose::KeySet keys;
  keys.keys = {sk.public_key(), mk, ek};
  Claims c;
  c.iss = "me";
  c.exp = 100;
  for (bool cwt_tag : {false, true}) {
    for (bool cose_tag : {false, true}) {
      CreateOptions co;
      co.cwt_tag = cwt_tag;
      co.cose_tag = cose_tag;
      auto s = create_signed(*p_, c, sk, co);
      auto m = create_maced(*p_, c, mk, co);
      auto e = create_encrypted(*p_, c, ek, co);
      ASSERT_TRUE(s && m && e);
      if (cwt_tag) {
        EXPECT_EQ(to_hex(ByteView(*s).first(2)), "d83d");
      }
      for (const Bytes* t : {&*s, &*m, &*e}) {
        TokenInfo info;
        auto v = verify(*p_, *t, keys, at(50), &info);
        ASSERT_TRUE(v) << to_string(v.error()) << " cwt_tag=" << cwt_tag << " cose_tag=" << cose_tag;
        EXPECT_EQ(v->iss, "me");
        ASSERT_EQ(info.kids.size(), 1u);
        EXPECT_FALSE(info.kids[0].empty());
        VerifyOptions o = at(50);
        o.require_cwt_tag = true;
        EXPECT_EQ(verify(*p_, *t, keys, o).has_value(), cwt_tag);
      }
    }
  }
  // Nested: signed, then encrypted.
  auto s = create_signed(*p_, c, sk);
  ASSERT_TRUE(s);
  auto n = encrypt_token(*p_, *s, ek);
  ASSERT_TRUE(n);
  TokenInfo info;
  auto v = verify(*p_, *n, keys, at(50), &info);
  ASSERT_TRUE(v) << to_string(v.error());
  EXPECT_EQ(info.layers.size(), 2u);
}

TEST_F(CwtTest, UntaggedNestedByContentType) {
  auto kp = p_->generate_keypair(cp::crv::kP256);
  ASSERT_TRUE(kp);
  cose::CoseKey sk = cose::CoseKey::from_keypair(*kp);
  cose::CoseKey ek = cose::CoseKey::symmetric(hex("000102030405060708090a0b0c0d0e0f"));
  Claims c;
  c.sub = "inner";
  CreateOptions untagged;
  untagged.cose_tag = false;
  auto inner = create_signed(*p_, c, sk, untagged);
  ASSERT_TRUE(inner);
  cose::KeySet keys;
  keys.keys = {ek, sk.public_key()};
  for (cbor::Value cty : {cbor::Value::integer(cp::cf::kCwt), cbor::Value::text("application/cwt")}) {
    cose::Headers h;
    h.set_protected(cp::header::kAlg, cbor::Value::integer(cp::alg::kAES_CCM_16_64_128));
    h.set_protected(cp::header::kContentType, cty);
    h.set_unprotected(cp::header::kIV, cbor::Value::bytes(Bytes(13, 9)));
    cose::EncryptOptions eo;
    eo.tagged = false;
    auto outer = cose::encrypt0_create(*p_, ek, h, *inner, {}, eo);
    ASSERT_TRUE(outer);
    TokenInfo info;
    auto v = verify(*p_, *outer, keys, at(0), &info);
    ASSERT_TRUE(v) << to_string(v.error());
    EXPECT_EQ(v->sub, "inner");
    ASSERT_EQ(info.layers.size(), 2u);
    EXPECT_EQ(info.layers[1], cose::MessageType::kSign1);
  }
  // Without the content type, the untagged inner token is taken as the claims (not a map).
  cose::Headers h;
  h.set_protected(cp::header::kAlg, cbor::Value::integer(cp::alg::kAES_CCM_16_64_128));
  h.set_unprotected(cp::header::kIV, cbor::Value::bytes(Bytes(13, 9)));
  auto outer = cose::encrypt0_create(*p_, ek, h, *inner);
  ASSERT_TRUE(outer);
  EXPECT_EQ(verify(*p_, *outer, keys, at(0)).error(), Error::kInvalidClaims);
}

TEST_F(CwtTest, KeyMismatchAndGarbage) {
  cose::CoseKey mk = cose::CoseKey::symmetric(hex("00112233445566778899aabbccddeeff"), {}, cp::alg::kHMAC256_64);
  cose::CoseKey ek = cose::CoseKey::symmetric(hex("00112233445566778899aabbccddeeff"), {}, cp::alg::kA128GCM);
  Claims c;
  auto m = create_maced(*p_, c, mk);
  ASSERT_TRUE(m);
  // A key restricted to another algorithm does not fit.
  EXPECT_EQ(verify(*p_, *m, ek, at(0)).error(), Error::kNoKey);
  // Creating a signed token with a symmetric key / a MACed one with an AEAD alg.
  EXPECT_FALSE(create_signed(*p_, c, mk));
  EXPECT_EQ(create_maced(*p_, c, ek).error(), Error::kUnsupportedAlgorithm);
  // Garbage.
  EXPECT_EQ(verify(*p_, hex("00"), mk, at(0)).error(), Error::kMalformed);
  EXPECT_EQ(verify(*p_, hex("d9 03e6 80"), mk, at(0)).error(), Error::kUnexpectedTag);
  EXPECT_EQ(verify(*p_, hex("d83d d83d 80"), mk, at(0)).error(), Error::kUnexpectedTag);
  // MACed token whose payload is not a claims map.
  cose::Headers h;
  h.set_protected(cp::header::kAlg, cbor::Value::integer(cp::alg::kHMAC256_64));
  auto raw = cose::mac0_create(*p_, mk, h, hex("8101"));
  ASSERT_TRUE(raw);
  EXPECT_EQ(verify(*p_, *raw, mk, at(0)).error(), Error::kInvalidClaims);
}

// The one-pass Encrypt0 path of verify() and the tree-free claims decoder give what
// the general path gives, and leave every other shape to it.
TEST_F(CwtTest, SimpleEncrypt0PathAgreesWithGeneralPath) {
  cose::CoseKey key = cose::CoseKey::symmetric(hex("000102030405060708090a0b0c0d0e0f"), hex("6b"),
                                               cp::alg::kAES_CCM_16_64_128);
  cose::CoseKey other = cose::CoseKey::symmetric(hex("0f0e0d0c0b0a09080706050403020100"), hex("6c"),
                                                 cp::alg::kAES_CCM_16_64_128);
  Claims c;
  c.iss = "as";
  c.aud = "kdc";
  c.exp = 2000;
  c.iat = 1000;
  c.cti = hex("0102");
  c.scope = cbor::Value::bytes(hex("8182626731 01"));
  c.ace_profile = cp::ace::kProfileCoapOscore;
  cbor::Value osc = cbor::Value::map();
  osc.set(cp::osc::kId, cbor::Value::bytes(hex("01")));
  osc.set(cp::osc::kMs, cbor::Value::bytes(hex("00112233445566778899aabbccddeeff")));
  cbor::Value cnf = cbor::Value::map();
  cnf.set(cp::cnf::kOscoreInputMaterial, osc);
  c.cnf = cnf;
  // Claims::decode (tree-free for this shape) round trips, and equals the tree decode.
  const Bytes enc = c.encode();
  auto d = Claims::decode(enc);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->encode(), enc);
  auto tree = Claims::from_value(*cbor::decode(enc));
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->encode(), enc);
  // Shapes the simple decoder leaves alone still decode (text label, float date) or fail.
  Claims c2 = c;
  c2.other.emplace_back(cbor::Value::text("x"), cbor::Value::uint(1));
  c2.nbf = NumericDate::from_float(1500.5);
  auto d2 = Claims::decode(c2.encode());
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->encode(), c2.encode());
  EXPECT_EQ(Claims::decode(hex("a2 01 6161 01 6162")).error(), Error::kInvalidClaims);  // duplicate iss
  EXPECT_EQ(Claims::decode(hex("a1 08 a2 04 a0 04 a0")).error(), Error::kInvalidClaims);  // duplicate in cnf
  EXPECT_EQ(Claims::decode(hex("a1 01 62 ff fe")).error(), Error::kInvalidClaims);        // bad UTF-8
  // A map key not in preferred serialization: refused, as by the tree decoder.
  EXPECT_EQ(Claims::decode(hex("a1 08 a1 18 04 a1 00 41 01")).error(), Error::kInvalidClaims);

  cose::KeySet keys;
  keys.keys = {other, key};
  TokenInfo info;
  auto t = create_encrypted(*p_, c, key);
  ASSERT_TRUE(t);
  auto v = verify(*p_, *t, keys, at(1500), &info);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->encode(), enc);
  ASSERT_EQ(info.layers.size(), 1u);
  EXPECT_EQ(info.kids[0], hex("6b"));
  EXPECT_EQ(keys.aead_cache.size(), 1u);  // the keyed AEAD is kept for the next token
  EXPECT_EQ(verify(*p_, *t, keys, at(2000)).error(), Error::kExpired);
  // A kid naming no key is a hint only; no kid at all: every key that fits is tried.
  CreateOptions nokid;
  nokid.include_kid = false;
  auto t2 = create_encrypted(*p_, c, key, nokid);
  ASSERT_TRUE(t2);
  EXPECT_TRUE(verify(*p_, *t2, keys, at(1500)));
  // CWT tag around it; required CWT tag missing; two CWT tags.
  CreateOptions tag61;
  tag61.cwt_tag = true;
  auto t3 = create_encrypted(*p_, c, key, tag61);
  ASSERT_TRUE(t3);
  EXPECT_TRUE(verify(*p_, *t3, keys, at(1500)));
  VerifyOptions need_tag = at(1500);
  need_tag.require_cwt_tag = true;
  EXPECT_TRUE(verify(*p_, *t3, keys, need_tag));
  EXPECT_EQ(verify(*p_, *t, keys, need_tag).error(), Error::kUnexpectedTag);
  Bytes twice = hex("d83d");
  twice.insert(twice.end(), t3->begin(), t3->end());
  EXPECT_EQ(verify(*p_, twice, keys, at(1500)).error(), Error::kUnexpectedTag);
  // Tampered ciphertext: the general path's error.
  Bytes bad = *t;
  bad.back() ^= 1;
  EXPECT_EQ(verify(*p_, bad, keys, at(1500)).error(), Error::kDecryptFailed);
  // Wrong key only.
  EXPECT_EQ(verify(*p_, *t, other, at(1500)).error(), Error::kDecryptFailed);
  // Trailing bytes.
  Bytes trailing = *t;
  trailing.push_back(0x00);
  EXPECT_FALSE(verify(*p_, trailing, keys, at(1500)));
  // COSE tag rules of the options apply.
  VerifyOptions forbid = at(1500);
  forbid.cose.tag_mode = cose::TagMode::kForbidden;
  EXPECT_EQ(verify(*p_, *t, keys, forbid).error(), Error::kUnexpectedTag);
  // A claims set larger than the one-pass path's stack buffer.
  Claims big = c;
  big.scope = cbor::Value::bytes(Bytes(700, 0x41));
  auto tb = create_encrypted(*p_, big, key);
  ASSERT_TRUE(tb);
  auto vb = verify(*p_, *tb, keys, at(1500));
  ASSERT_TRUE(vb);
  EXPECT_EQ(vb->encode(), big.encode());
  // Nested: Sign1 inside Encrypt0 still goes through the general path.
  auto ed = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(ed);
  cose::CoseKey sk = cose::CoseKey::from_keypair(*ed, {}, cp::alg::kEdDSA);
  auto inner = create_signed(*p_, c, sk);
  ASSERT_TRUE(inner);
  auto nested = encrypt_token(*p_, *inner, key);
  ASSERT_TRUE(nested);
  cose::KeySet both;
  both.keys = {key, sk.public_key()};
  TokenInfo ninfo;
  auto nv = verify(*p_, *nested, both, at(1500), &ninfo);
  ASSERT_TRUE(nv);
  EXPECT_EQ(ninfo.layers.size(), 2u);
  EXPECT_EQ(nv->encode(), enc);
}


TEST_F(CwtTest, ClaimsViewReadsTheAsShapeAsClaimsDecodeDoes) {
  cose::CoseKey key = cose::CoseKey::symmetric(hex("000102030405060708090a0b0c0d0e0f"), hex("6b"),
                                               cp::alg::kAES_CCM_16_64_128);
  cose::CoseKey other = cose::CoseKey::symmetric(hex("0f0e0d0c0b0a09080706050403020100"), hex("6c"),
                                                 cp::alg::kAES_CCM_16_64_128);
  Claims c;
  c.iss = "as";
  c.aud = "kdc";
  c.exp = 2000;
  c.nbf = 900;
  c.iat = 1000;
  c.cti = hex("0102");
  c.scope = cbor::Value::bytes(hex("8182626731 01"));
  c.ace_profile = cp::ace::kProfileCoapOscore;
  c.exi = 60;
  cbor::Value osc = cbor::Value::map();
  osc.set(cp::osc::kId, cbor::Value::bytes(hex("01")));
  osc.set(cp::osc::kMs, cbor::Value::bytes(hex("00112233445566778899aabbccddeeff")));
  cbor::Value cnf = cbor::Value::map();
  cnf.set(cp::cnf::kOscoreInputMaterial, osc);
  c.cnf = cnf;
  const Bytes enc = c.encode();
  auto v = ClaimsView::decode(enc);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iss, "as");
  EXPECT_EQ(v->aud, "kdc");
  EXPECT_EQ(v->exp, 2000);
  EXPECT_EQ(v->nbf, 900);
  EXPECT_EQ(v->iat, 1000);
  ASSERT_TRUE(v->cti && v->scope && v->cnf);
  EXPECT_EQ(to_bytes(*v->cti), hex("0102"));
  EXPECT_EQ(to_bytes(*v->scope), hex("8182626731 01"));
  EXPECT_FALSE(v->scope_is_text);
  EXPECT_EQ(to_bytes(*v->cnf), cbor::encode(cnf));
  EXPECT_EQ(v->exi, 60u);
  EXPECT_EQ(v->to_claims().encode(), enc) << "the Claims of Claims::decode";
  // Text scope, cnf kid.
  Claims t = c;
  t.scope = cbor::Value::text("read");
  t.set_cnf_kid(hex("abcd"));
  const Bytes tenc = t.encode();  // the view points into it: it must outlive tv
  auto tv = ClaimsView::decode(tenc);
  ASSERT_TRUE(tv);
  EXPECT_TRUE(tv->scope_is_text);
  EXPECT_EQ(tv->to_claims().encode(), tenc);
  // Not the view's shape (Claims::decode decides): other claims, float dates, a
  // COSE_Key in cnf, a cnf map key twice (at any depth), non-preferred heads, an
  // empty cnf, a tag inside cnf, trailing bytes.
  Claims o = c;
  o.other.emplace_back(cbor::Value::text("x"), cbor::Value::uint(1));
  EXPECT_FALSE(ClaimsView::decode(o.encode()));
  Claims f = c;
  f.exp = NumericDate::from_float(1500.5);
  EXPECT_FALSE(ClaimsView::decode(f.encode()));
  Claims k = c;
  auto kp = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  k.set_cnf_key(cose::CoseKey::from_keypair(*kp, as_bytes("client")));
  EXPECT_FALSE(ClaimsView::decode(k.encode()));
  EXPECT_TRUE(Claims::decode(k.encode()));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a2 04 a0 04 a0")));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a1 04 a2 00 41 01 00 41 02")));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a1 18 04 a1 00 41 01")));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a1 04 a1 00 58 01 01")));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a0")));
  EXPECT_FALSE(ClaimsView::decode(hex("a1 08 a1 04 a1 00 c1 00")));
  Bytes trailing = enc;
  trailing.push_back(0);
  EXPECT_FALSE(ClaimsView::decode(trailing));
  EXPECT_TRUE(ClaimsView::decode(hex("a1 08 a1 04 a2 00 41 01 02 41 02")));

  // verify_view: the view of a verified token in the caller's buffer, or nullopt
  // (then verify() answers) with nothing left in the buffer.
  cose::KeySet keys;
  keys.keys = {other, key};
  auto tok = create_encrypted(*p_, c, key);
  ASSERT_TRUE(tok);
  uint8_t plain[256];
  size_t plain_len = 0;
  auto vv = verify_view(*p_, *tok, keys, at(1500), plain, plain_len);
  ASSERT_TRUE(vv);
  EXPECT_EQ(plain_len, enc.size());
  EXPECT_EQ(Bytes(plain, plain + plain_len), enc);
  EXPECT_EQ(vv->to_claims().encode(), verify(*p_, *tok, keys, at(1500))->encode());
  auto all_zero = [&] {
    for (uint8_t b : plain)
      if (b) return false;
    return true;
  };
  std::fill(std::begin(plain), std::end(plain), 0);
  EXPECT_FALSE(verify_view(*p_, *tok, keys, at(2000), plain, plain_len));  // expired
  EXPECT_EQ(plain_len, 0u);
  EXPECT_TRUE(all_zero());
  EXPECT_FALSE(verify_view(*p_, *tok, keys, at(800), plain, plain_len));  // before nbf
  VerifyOptions aud = at(1500);
  aud.audience = "rs";
  EXPECT_FALSE(verify_view(*p_, *tok, keys, aud, plain, plain_len));
  aud.audience = "kdc";
  EXPECT_TRUE(verify_view(*p_, *tok, keys, aud, plain, plain_len));
  std::fill(std::begin(plain), std::end(plain), 0);
  cose::KeySet only_other;
  only_other.keys = {other};
  EXPECT_FALSE(verify_view(*p_, *tok, only_other, at(1500), plain, plain_len));  // wrong key
  EXPECT_TRUE(all_zero());
  EXPECT_FALSE(verify_view(*p_, *tok, keys, at(1500), MutableByteView(plain, 16), plain_len));  // too small
  auto tk = create_encrypted(*p_, k, key);  // a COSE_Key cnf: verify() reads it
  ASSERT_TRUE(tk);
  EXPECT_FALSE(verify_view(*p_, *tk, keys, at(1500), plain, plain_len));
  EXPECT_TRUE(all_zero());
  EXPECT_TRUE(verify(*p_, *tk, keys, at(1500)));
}

}  // namespace
}  // namespace acekdc::cwt
