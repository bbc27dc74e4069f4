// Unit tests of the COSE layer: COSE_Key rules, header rules, and the error paths
// of Sign1 / Encrypt0 / Mac0 (the Examples vectors are in vectors_test.cpp).
#include <gtest/gtest.h>

#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/algorithms.h"
#include "cose/encrypt0.h"
#include "cose/key.h"
#include "cose/mac0.h"
#include "cose/multi.h"
#include "cose/sign1.h"
#include "cose/structures.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::cose {
namespace {

using cbor::Value;
namespace kp = cp::keyparam;

Bytes h(std::string_view s) { return *from_hex(s); }

Value okp_key_map() {
  Value m = Value::map();
  m.set(kp::kKty, Value::integer(cp::kty::kOKP));
  m.set(kp::kKid, Value::bytes(as_bytes("11")));
  m.set(kp::kCrv, Value::integer(cp::crv::kEd25519));
  m.set(kp::kX, Value::bytes(h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")));
  m.set(kp::kD, Value::bytes(h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")));
  return m;
}

Value ec2_key_map() {
  Value m = Value::map();
  m.set(kp::kKty, Value::integer(cp::kty::kEC2));
  m.set(kp::kCrv, Value::integer(cp::crv::kP256));
  m.set(kp::kX, Value::bytes(h("bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff")));
  m.set(kp::kY, Value::bytes(h("20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e")));
  return m;
}

Error key_error(const Value& v) {
  auto k = CoseKey::from_value(v);
  return k ? Error{} : k.error();
}

// ---- COSE_Key ----

TEST(CoseKey, OkpRoundTrip) {
  auto k = CoseKey::from_value(okp_key_map());
  ASSERT_TRUE(k) << to_string(k.error());
  EXPECT_EQ(k->kty, cp::kty::kOKP);
  EXPECT_EQ(k->crv, cp::crv::kEd25519);
  EXPECT_TRUE(k->has_private());
  EXPECT_EQ(k->encode(), cbor::encode(okp_key_map()));
  CoseKey pub = k->public_key();
  EXPECT_FALSE(pub.has_private());
  auto again = CoseKey::decode(pub.encode());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->x, k->x);
  EXPECT_TRUE(again->d.empty());
  auto pair = k->to_keypair();
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->crv, cp::crv::kEd25519);
}

TEST(CoseKey, StrictValidation) {
  Value m = okp_key_map();
  m.set(kp::kX, Value::bytes(h("0102")));
  EXPECT_EQ(key_error(m), Error::kInvalidKey);  // Ed25519 x must be 32 bytes

  m = okp_key_map();
  m.set(kp::kY, Value::bytes(h("00")));
  EXPECT_EQ(key_error(m), Error::kInvalidKey);  // OKP has no y

  m = ec2_key_map();
  EXPECT_TRUE(CoseKey::from_value(m));
  m.set(kp::kY, Value::boolean(true));
  EXPECT_EQ(key_error(m), Error::kInvalidKey);  // compressed point

  m = ec2_key_map();
  m.set(kp::kCrv, Value::integer(99));
  EXPECT_EQ(key_error(m), Error::kInvalidKey);  // unknown curve

  Value no_crv = Value::map();
  no_crv.set(kp::kKty, Value::integer(cp::kty::kEC2));
  no_crv.set(kp::kX, Value::bytes(Bytes(32, 1)));
  no_crv.set(kp::kY, Value::bytes(Bytes(32, 1)));
  EXPECT_EQ(key_error(no_crv), Error::kInvalidKey);

  Value sym = Value::map();
  sym.set(kp::kKty, Value::integer(cp::kty::kSymmetric));
  EXPECT_EQ(key_error(sym), Error::kInvalidKey);  // k missing
  sym.set(kp::kK, Value::bytes(Bytes(16, 7)));
  EXPECT_TRUE(CoseKey::from_value(sym));
  sym.set(kp::kAlg, Value::integer(cp::alg::kA256GCM));
  EXPECT_EQ(key_error(sym), Error::kInvalidKey);  // 16-byte key for A256GCM
  sym.set(kp::kAlg, Value::text("A128GCM"));
  EXPECT_EQ(key_error(sym), Error::kInvalidKey);  // text alg not supported
  sym.set(kp::kAlg, Value::integer(cp::alg::kA128GCM));
  EXPECT_TRUE(CoseKey::from_value(sym));
  sym.set(kp::kX, Value::bytes(Bytes(32, 1)));
  EXPECT_EQ(key_error(sym), Error::kInvalidKey);  // curve parameter on a symmetric key

  Value kty_text = Value::map();
  kty_text.set(kp::kKty, Value::text("OKP"));
  EXPECT_EQ(key_error(kty_text), Error::kInvalidKey);
  Value rsa = Value::map();
  rsa.set(kp::kKty, Value::integer(3));
  EXPECT_EQ(key_error(rsa), Error::kInvalidKey);
  EXPECT_EQ(key_error(Value::array()), Error::kInvalidKey);

  // Duplicate labels in the encoding.
  EXPECT_FALSE(CoseKey::decode(h("a3 0104 2001 0104")));
  // kid must be a bstr.
  m = okp_key_map();
  m.set(kp::kKid, Value::text("11"));
  EXPECT_EQ(key_error(m), Error::kInvalidKey);
}

TEST(CoseKey, OptionalParamsAndOthersKept) {
  Value m = Value::map();
  m.set(kp::kKty, Value::integer(cp::kty::kSymmetric));
  m.set(kp::kKid, Value::bytes(h("01")));
  m.set(kp::kAlg, Value::integer(cp::alg::kAES_CCM_16_64_128));
  m.set(kp::kKeyOps, Value::array({Value::integer(3), Value::integer(4)}));
  m.set(kp::kBaseIV, Value::bytes(h("0102030405")));
  m.set(kp::kK, Value::bytes(Bytes(16, 9)));
  m.set(Value::text("x-custom"), Value::integer(5));
  auto k = CoseKey::from_value(m);
  ASSERT_TRUE(k) << to_string(k.error());
  EXPECT_EQ(k->key_ops, (std::vector<int>{3, 4}));
  EXPECT_EQ(k->base_iv, h("0102030405"));
  ASSERT_EQ(k->other.size(), 1u);
  EXPECT_EQ(k->encode(), cbor::encode(m));
  EXPECT_EQ(k->to_keypair().error(), Error::kWrongKey);
  // Without the secret.
  auto pub = CoseKey::decode(k->encode(false));
  EXPECT_FALSE(pub);  // a symmetric key without k is not a key
}

TEST(CoseKey, KeySet) {
  Value set = Value::array({okp_key_map(), ec2_key_map()});
  auto ks = KeySet::from_value(set);
  ASSERT_TRUE(ks);
  ASSERT_EQ(ks->keys.size(), 2u);
  EXPECT_NE(ks->find_kid(as_bytes("11")), nullptr);
  EXPECT_EQ(ks->find_kid(as_bytes("12")), nullptr);
  EXPECT_EQ(KeySet::decode(ks->encode())->keys.size(), 2u);
  Value bad = okp_key_map();
  bad.set(kp::kX, Value::bytes(h("00")));
  set.push(bad);
  EXPECT_FALSE(KeySet::from_value(set));
  auto skipped = KeySet::from_value(set, true);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->keys.size(), 2u);
}

// ---- headers ----

Expected<Headers, Error> parse(std::string_view prot_hex, Value unprot = Value::map(),
                               const HeaderPolicy& policy = {}) {
  return Headers::parse(h(prot_hex), std::move(unprot), policy);
}

TEST(CoseHeaders, Rules) {
  // {1: -7}
  auto ok = parse("a10126");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok->alg(), cp::alg::kES256);
  EXPECT_EQ(to_hex(ok->authenticated_protected()), "a10126");
  // Empty map sent as h'a0' authenticates as h''.
  auto empty = parse("a0");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->authenticated_protected().empty());
  EXPECT_EQ(empty->alg().error(), Error::kMissingHeader);
  // Not a map / not CBOR / trailing bytes.
  EXPECT_EQ(parse("01").error(), Error::kMalformed);
  EXPECT_EQ(parse("a101").error(), Error::kMalformed);
  EXPECT_EQ(parse("a0a0").error(), Error::kMalformed);
  // Same label in both buckets.
  Value u = Value::map();
  u.set(cp::header::kAlg, Value::integer(cp::alg::kES256));
  EXPECT_EQ(parse("a10126", u).error(), Error::kDuplicateHeader);
  // Types of known parameters.
  Value kid_text = Value::map();
  kid_text.set(cp::header::kKid, Value::text("11"));
  EXPECT_EQ(parse("", kid_text).error(), Error::kBadHeader);
  Value both_iv = Value::map();
  both_iv.set(cp::header::kIV, Value::bytes(h("00")));
  both_iv.set(cp::header::kPartialIV, Value::bytes(h("01")));
  EXPECT_EQ(parse("", both_iv).error(), Error::kBadHeader);
  // Text alg is parsed but not supported.
  auto text_alg = parse("a101 63455332");  // {1: "ES2"}
  ASSERT_TRUE(text_alg);
  EXPECT_EQ(text_alg->alg().error(), Error::kUnsupportedAlgorithm);
}

TEST(CoseHeaders, Crit) {
  // {1: -7, 2: [1]}: crit names alg, understood.
  EXPECT_TRUE(parse("a201260281 01"));
  // {1: -7, 2: [99], 24: 0}: 99 (0x1863) not understood.
  EXPECT_EQ(parse("a3 0126 02811863 186300").error(), Error::kUnknownCritical);
  // ... unless the caller says it processes label 99.
  const int64_t extra[] = {99};
  HeaderPolicy policy;
  policy.understood_critical = extra;
  EXPECT_TRUE(parse("a3 0126 02811863 186300", Value::map(), policy));
  // crit naming a label not in the protected bucket; empty crit; crit unprotected.
  EXPECT_EQ(parse("a2 0126 028104").error(), Error::kBadHeader);
  EXPECT_EQ(parse("a2 0126 0280").error(), Error::kBadHeader);
  Value u = Value::map();
  u.set(cp::header::kCrit, Value::array({Value::integer(1)}));
  EXPECT_EQ(parse("a10126", u).error(), Error::kBadHeader);
  // Text label in crit is unknown.
  EXPECT_EQ(parse("a3 0126 028161 78 6178 01").error(), Error::kUnknownCritical);
}

// ---- messages ----

class CoseMessages : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();

  CoseKey ed_key() {
    auto k = CoseKey::from_value(okp_key_map());
    return *k;
  }
  static Headers alg_headers(int alg) {
    Headers hd;
    hd.set_protected(cp::header::kAlg, Value::integer(alg));
    return hd;
  }
};

TEST_F(CoseMessages, Sign1ErrorPaths) {
  CoseKey key = ed_key();
  const Bytes payload = to_bytes(as_bytes("payload"));
  const Bytes aad = h("0102");
  auto msg = sign1_create(*p_, key, alg_headers(cp::alg::kEdDSA), payload, aad);
  ASSERT_TRUE(msg);
  EXPECT_EQ((*msg)[0], 0xd2);  // tag 18
  EXPECT_TRUE(sign1_verify(*p_, key.public_key(), *msg, aad));
  EXPECT_EQ(sign1_verify(*p_, key.public_key(), *msg, {}).error(), Error::kBadSignature);
  // Tag modes.
  VerifyOptions vo;
  vo.tag_mode = TagMode::kForbidden;
  EXPECT_EQ(sign1_verify(*p_, key, *msg, aad, vo).error(), Error::kUnexpectedTag);
  EXPECT_EQ(encrypt0_decrypt(*p_, CoseKey::symmetric(Bytes(16, 0)), *msg).error(),
            Error::kUnexpectedTag);
  CreateOptions untagged;
  untagged.tagged = false;
  auto bare = sign1_create(*p_, key, alg_headers(cp::alg::kEdDSA), payload, aad, untagged);
  ASSERT_TRUE(bare);
  EXPECT_EQ((*bare)[0], 0x84);
  EXPECT_TRUE(sign1_verify(*p_, key, *bare, aad));
  vo.tag_mode = TagMode::kRequired;
  EXPECT_EQ(sign1_verify(*p_, key, *bare, aad, vo).error(), Error::kUnexpectedTag);
  // Trailing bytes / wrong shape.
  Bytes trailing = *msg;
  trailing.push_back(0);
  EXPECT_EQ(sign1_verify(*p_, key, trailing, aad).error(), Error::kMalformed);
  EXPECT_EQ(sign1_verify(*p_, key, h("d283 40 a0 40"), aad).error(), Error::kMalformed);
  // Wrong key kinds.
  CoseKey sym = CoseKey::symmetric(Bytes(32, 1));
  EXPECT_EQ(sign1_verify(*p_, sym, *msg, aad).error(), Error::kWrongKey);
  EXPECT_EQ(sign1_create(*p_, key.public_key(), alg_headers(cp::alg::kEdDSA), payload).error(),
            Error::kWrongKey);  // no private part
  EXPECT_EQ(sign1_create(*p_, key, alg_headers(cp::alg::kES256), payload).error(),
            Error::kWrongKey);  // Ed25519 key for ES256
  CoseKey restricted = key;
  restricted.alg = cp::alg::kES256;
  EXPECT_EQ(sign1_verify(*p_, restricted, *msg, aad).error(), Error::kWrongKey);
  // Missing / unknown alg.
  EXPECT_EQ(sign1_create(*p_, key, Headers{}, payload).error(), Error::kMissingHeader);
  EXPECT_EQ(sign1_create(*p_, key, alg_headers(-999), payload).error(),
            Error::kUnsupportedAlgorithm);
}

TEST_F(CoseMessages, DetachedPayload) {
  CoseKey key = ed_key();
  const Bytes payload = to_bytes(as_bytes("detached content"));
  CreateOptions co;
  co.detached = true;
  auto msg = sign1_create(*p_, key, alg_headers(cp::alg::kEdDSA), payload, {}, co);
  ASSERT_TRUE(msg);
  EXPECT_EQ(sign1_verify(*p_, key, *msg).error(), Error::kDetachedPayload);
  VerifyOptions vo;
  vo.detached_content = ByteView(payload);
  auto v = sign1_verify(*p_, key, *msg, {}, vo);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->payload, payload);
  const Bytes other = to_bytes(as_bytes("other content"));
  vo.detached_content = ByteView(other);
  EXPECT_EQ(sign1_verify(*p_, key, *msg, {}, vo).error(), Error::kBadSignature);
  auto attached = sign1_create(*p_, key, alg_headers(cp::alg::kEdDSA), payload);
  ASSERT_TRUE(attached);
  EXPECT_EQ(sign1_verify(*p_, key, *attached, {}, vo).error(), Error::kDetachedPayload);

  CoseKey mk = CoseKey::symmetric(Bytes(32, 3));
  auto mac = mac0_create(*p_, mk, alg_headers(cp::alg::kHMAC256_256), payload, {}, co);
  ASSERT_TRUE(mac);
  vo.detached_content = ByteView(payload);
  EXPECT_TRUE(mac0_verify(*p_, mk, *mac, {}, vo));
}

TEST_F(CoseMessages, Encrypt0NonceRules) {
  // RFC 9052 §3.1: Partial IV left-padded and XORed with the Context IV
  // (the numbers of the Examples' aes-gcm-05).
  Headers hd = alg_headers(cp::alg::kA128GCM);
  hd.set_unprotected(cp::header::kPartialIV, Value::bytes(h("61a7")));
  uint8_t nonce[12];
  ASSERT_TRUE(compute_nonce(hd, h("89f52f65a1c5809300000000"), nonce));
  EXPECT_EQ(to_hex(nonce), "89f52f65a1c58093000061a7");
  ASSERT_TRUE(compute_nonce(hd, h("89f52f65a1c58093"), nonce));  // short base IV: left-padded
  EXPECT_EQ(to_hex(nonce), "0000000089f52f65a1c5e134");
  EXPECT_EQ(compute_nonce(hd, {}, nonce).error(), Error::kWrongKey);
  EXPECT_EQ(compute_nonce(hd, Bytes(13, 0), nonce).error(), Error::kInvalidKey);
  EXPECT_EQ(compute_nonce(alg_headers(cp::alg::kA128GCM), {}, nonce).error(), Error::kMissingHeader);
  Headers short_iv = alg_headers(cp::alg::kA128GCM);
  short_iv.set_unprotected(cp::header::kIV, Value::bytes(h("0001")));
  EXPECT_EQ(compute_nonce(short_iv, {}, nonce).error(), Error::kBadHeader);

  // Round trip with a Partial IV and the key's base IV.
  CoseKey key = CoseKey::symmetric(Bytes(16, 5), as_bytes("k"), cp::alg::kAES_CCM_16_64_128);
  key.base_iv = h("0102030405060708");
  Headers ph = alg_headers(cp::alg::kAES_CCM_16_64_128);
  ph.set_unprotected(cp::header::kPartialIV, Value::bytes(h("05")));
  const Bytes pt = to_bytes(as_bytes("secret"));
  auto ct = encrypt0_create(*p_, key, ph, pt, h("aa"));
  ASSERT_TRUE(ct) << to_string(ct.error());
  auto v = encrypt0_decrypt(*p_, key, *ct, h("aa"));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->payload, pt);
  EXPECT_EQ(encrypt0_decrypt(*p_, key, *ct, h("ab")).error(), Error::kDecryptFailed);
  CoseKey no_base = key;
  no_base.base_iv.clear();
  EXPECT_EQ(encrypt0_decrypt(*p_, no_base, *ct, h("aa")).error(), Error::kWrongKey);
  CoseKey wrong_len = CoseKey::symmetric(Bytes(32, 5));
  EXPECT_EQ(encrypt0_decrypt(*p_, wrong_len, *ct, h("aa")).error(), Error::kWrongKey);
  // Ciphertext shorter than the tag.
  EXPECT_EQ(encrypt0_decrypt(*p_, key, h("d0 83 43a1010a a1 06 4105 43 000102"), h("aa")).error(),
            Error::kDecryptFailed);
}

TEST_F(CoseMessages, Mac0AndIdentify) {
  CoseKey key = CoseKey::symmetric(Bytes(32, 3), as_bytes("m"));
  const Bytes payload = h("a0");
  auto tagged = mac0_create(*p_, key, alg_headers(cp::alg::kHMAC256_64), payload);
  ASSERT_TRUE(tagged);
  EXPECT_TRUE(mac0_verify(*p_, key, *tagged));
  Bytes bad = *tagged;
  bad.back() ^= 1;
  EXPECT_EQ(mac0_verify(*p_, key, bad).error(), Error::kBadTag);
  CoseKey other = CoseKey::symmetric(Bytes(32, 4));
  EXPECT_EQ(mac0_verify(*p_, other, *tagged).error(), Error::kBadTag);
  EXPECT_EQ(*identify(*tagged), MessageType::kMac0);

  CreateOptions untagged;
  untagged.tagged = false;
  auto m = mac0_create(*p_, key, alg_headers(cp::alg::kHMAC256_64), payload, {}, untagged);
  auto s = sign1_create(*p_, ed_key(), alg_headers(cp::alg::kEdDSA), payload, {}, untagged);
  Headers eh = alg_headers(cp::alg::kA128GCM);
  eh.set_unprotected(cp::header::kIV, Value::bytes(Bytes(12, 0)));
  auto e = encrypt0_create(*p_, CoseKey::symmetric(Bytes(16, 1)), eh, payload, {},
                           EncryptOptions{untagged, {}});
  ASSERT_TRUE(m && s && e);
  EXPECT_EQ(*identify(*m), MessageType::kMac0);
  EXPECT_EQ(*identify(*s), MessageType::kSign1);
  EXPECT_EQ(*identify(*e), MessageType::kEncrypt0);
  EXPECT_EQ(identify(h("d903e680")).error(), Error::kUnexpectedTag);
  EXPECT_EQ(identify(h("82 40 a0")).error(), Error::kMalformed);
}

// ---- COSE_Sign / COSE_Encrypt / COSE_Mac ----

TEST(CoseMulti, KdfContextMatchesExamples) {
  // hkdf-hmac-sha-examples/hmac-sha-256-05: Context_hex.
  Headers r;
  r.set_protected(cp::header::kAlg, Value::integer(cp::alg::kDirectHKDF_SHA256));
  r.set_unprotected(cp::header::kPartyUIdentity, Value::bytes(as_bytes("Sender")));
  r.set_unprotected(cp::header::kPartyVIdentity, Value::bytes(as_bytes("Recipient")));
  EXPECT_EQ(to_hex(kdf_context(cp::alg::kAES_CCM_16_64_128, 128, r, {})),
            "840a834653656e646572f6f68349526563697069656e74f6f682188043a10129");
  KdfSupplement supp;
  supp.pub_other = to_bytes(as_bytes("P"));
  supp.priv_other = to_bytes(as_bytes("Q"));
  // [alg, U, V, [bits, prot, pub_other], priv_other]
  EXPECT_EQ(to_hex(kdf_context(cp::alg::kAES_CCM_16_64_128, 128, r, supp)),
            "850a834653656e646572f6f68349526563697069656e74f6f683188043a101294150" "4151");
}

class CoseMultiMessages : public CoseMessages {};

TEST_F(CoseMultiMessages, EncryptWithHkdfRecipient) {
  CoseKey shared = CoseKey::symmetric(Bytes(32, 0x42), as_bytes("shared"));
  Headers body;
  body.set_protected(cp::header::kAlg, Value::integer(cp::alg::kA128GCM));
  body.set_unprotected(cp::header::kIV, Value::bytes(Bytes(12, 1)));
  Recipient r;
  r.headers.set_protected(cp::header::kAlg, Value::integer(cp::alg::kDirectHKDF_SHA256));
  r.headers.set_unprotected(cp::header::kKid, Value::bytes(as_bytes("shared")));
  r.headers.set_unprotected(cp::header::kSalt, Value::bytes(as_bytes("salt")));
  r.headers.set_unprotected(cp::header::kPartyUNonce, Value::bytes(h("0102")));
  r.key = &shared;
  r.supp.priv_other = h("aa");
  const Bytes pt = to_bytes(as_bytes("multi"));
  Recipient one[] = {r};
  auto msg = encrypt_create(*p_, body, pt, h("ee"), one);
  ASSERT_TRUE(msg) << to_string(msg.error());
  EXPECT_EQ(to_hex(ByteView(*msg).first(2)), "d860");  // tag 96
  MultiVerifyOptions mo;
  mo.supp.priv_other = h("aa");
  auto v = encrypt_decrypt(*p_, shared, *msg, h("ee"), mo);
  ASSERT_TRUE(v) << to_string(v.error());
  EXPECT_EQ(v->payload, pt);
  // The supplement is part of the key derivation; so are the AAD and the key.
  EXPECT_EQ(encrypt_decrypt(*p_, shared, *msg, h("ee")).error(), Error::kDecryptFailed);
  EXPECT_EQ(encrypt_decrypt(*p_, shared, *msg, h("ef"), mo).error(), Error::kDecryptFailed);
  CoseKey other = CoseKey::symmetric(Bytes(32, 0x43), as_bytes("other"));
  EXPECT_EQ(encrypt_decrypt(*p_, other, *msg, h("ee"), mo).error(), Error::kDecryptFailed);
  // An asymmetric key fits no direct recipient.
  EXPECT_EQ(encrypt_decrypt(*p_, ed_key(), *msg, h("ee"), mo).error(), Error::kWrongKey);
  // Direct recipients: exactly one; not a key-wrap alg.
  Recipient two[] = {r, r};
  EXPECT_EQ(encrypt_create(*p_, body, pt, {}, two).error(), Error::kUnsupportedAlgorithm);
  Recipient kw = r;
  kw.headers = Headers{};
  kw.headers.set_unprotected(cp::header::kAlg, Value::integer(-3));  // A128KW
  Recipient kws[] = {kw};
  EXPECT_EQ(encrypt_create(*p_, body, pt, {}, kws).error(), Error::kUnsupportedAlgorithm);
  // direct: the shared key must have the content key length.
  Recipient d = r;
  d.headers = Headers{};
  d.headers.set_unprotected(cp::header::kAlg, Value::integer(cp::alg::kDirect));
  Recipient ds[] = {d};
  EXPECT_EQ(encrypt_create(*p_, body, pt, {}, ds).error(), Error::kWrongKey);
  // Not a COSE_Encrypt.
  EXPECT_EQ(encrypt_decrypt(*p_, shared, h("d0 83 40 a0 40")).error(), Error::kUnexpectedTag);
}

TEST_F(CoseMultiMessages, MacAndSign) {
  CoseKey shared = CoseKey::symmetric(Bytes(64, 0x11), as_bytes("m"));
  Headers body;
  body.set_protected(cp::header::kAlg, Value::integer(cp::alg::kHMAC512_512));
  Recipient r;
  r.headers.set_protected(cp::header::kAlg, Value::integer(cp::alg::kDirect));
  r.key = &shared;
  Recipient rs[] = {r};
  const Bytes payload = h("01020304");
  auto mac = mac_create(*p_, body, payload, {}, rs);
  ASSERT_TRUE(mac) << to_string(mac.error());
  EXPECT_TRUE(mac_verify(*p_, shared, *mac));
  Bytes bad = *mac;
  bad[bad.size() - 20] ^= 1;  // inside the tag
  auto bv = mac_verify(*p_, shared, bad);
  ASSERT_FALSE(bv);
  EXPECT_EQ(bv.error(), Error::kBadTag);

  auto es = p_->generate_keypair(cp::crv::kP256);
  ASSERT_TRUE(es);
  CoseKey ec = CoseKey::from_keypair(*es, as_bytes("ec"));
  CoseKey ed = ed_key();
  SignerSpec s1{alg_headers(cp::alg::kEdDSA), &ed};
  s1.headers.set_unprotected(cp::header::kKid, Value::bytes(ed.kid));
  SignerSpec s2{alg_headers(cp::alg::kES256), &ec};
  s2.headers.set_unprotected(cp::header::kKid, Value::bytes(ec.kid));
  SignerSpec both[] = {s1, s2};
  auto signed_msg = sign_create(*p_, Headers{}, payload, h("aa"), both);
  ASSERT_TRUE(signed_msg) << to_string(signed_msg.error());
  EXPECT_TRUE(sign_verify(*p_, ed.public_key(), *signed_msg, h("aa")));
  EXPECT_TRUE(sign_verify(*p_, ec.public_key(), *signed_msg, h("aa")));
  EXPECT_EQ(sign_verify(*p_, ec.public_key(), *signed_msg, h("ab")).error(), Error::kBadSignature);
  auto other = p_->generate_keypair(cp::crv::kP256);
  ASSERT_TRUE(other);
  EXPECT_EQ(sign_verify(*p_, CoseKey::from_keypair(*other), *signed_msg, h("aa")).error(),
            Error::kBadSignature);
  EXPECT_EQ(sign_verify(*p_, shared, *signed_msg, h("aa")).error(), Error::kWrongKey);
  EXPECT_EQ(sign_create(*p_, Headers{}, payload, {}, {}).error(), Error::kMissingHeader);
}

TEST(CoseStructures, MatchRfcLayout) {
  // sign-pass-02 of the Examples: ToBeSign with external AAD.
  Bytes tbs;
  append_sig_structure1(tbs, h("a10126"), h("11aa22bb33cc44dd55006699"),
                        as_bytes("This is the content."));
  EXPECT_EQ(to_hex(tbs),
            "846a5369676e61747572653143a101264c11aa22bb33cc44dd5500669954546869732069732074"
            "686520636f6e74656e742e");
  Bytes enc;
  append_enc_structure(enc, kContextEncrypt0, h("a1010a"), {});
  EXPECT_EQ(to_hex(enc), "8368456e63727970743043a1010a40");
  Bytes mac;
  append_mac_structure(mac, kContextMac0, {}, h("ff00ee11dd22cc33bb44aa559966"),
                       as_bytes("This is the content."));
  EXPECT_EQ(to_hex(mac),
            "84644d414330404eff00ee11dd22cc33bb44aa55996654546869732069732074686520636f6e74"
            "656e742e");
}

TEST(CoseErrors, ToStringCoversAll) {
  for (int e = static_cast<int>(Error::kMalformed); e <= static_cast<int>(Error::kTooLarge); ++e)
    EXPECT_STRNE(to_string(static_cast<Error>(e)), "unknown COSE error");
}

// encrypt0_write: the same bytes as encrypt0_create for {alg} / {kid, IV}, decryptable,
// errors leave `out` alone.
TEST_F(CoseMessages, Encrypt0WriteMatchesCreate) {
  auto p = crypto::make_openssl_provider();
  CoseKey key = CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), h("6b31"), cp::alg::kAES_CCM_16_64_128);
  auto aead = p->make_aead(cp::alg::kAES_CCM_16_64_128, key.k);
  ASSERT_TRUE(aead);
  const Bytes iv = h("89f52f65a1c580933b5261a72f");
  const Bytes pt = to_bytes(as_bytes("claims go here"));
  for (bool with_kid : {false, true}) {
    for (bool tagged : {false, true}) {
      for (const Bytes& ext : {Bytes{}, h("a1b2c3")}) {
        Headers hd = alg_headers(cp::alg::kAES_CCM_16_64_128);
        if (with_kid) hd.set_unprotected(cp::header::kKid, Value::bytes(key.kid));
        hd.set_unprotected(cp::header::kIV, Value::bytes(iv));
        EncryptOptions eo;
        eo.tagged = tagged;
        auto ref = encrypt0_create(*p, key, hd, pt, ext, eo);
        ASSERT_TRUE(ref);
        Bytes out = h("ff");  // appended after what is there
        ASSERT_TRUE(encrypt0_write(**aead, with_kid ? ByteView(key.kid) : ByteView(), iv, pt, ext, tagged, out));
        EXPECT_EQ(ByteView(out).subspan(1).size(), ref->size());
        EXPECT_TRUE(equal(ByteView(out).subspan(1), *ref));
        auto back = encrypt0_decrypt(*p, key, ByteView(out).subspan(1), ext);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->payload, pt);
      }
    }
  }
  Bytes out = h("01");
  EXPECT_EQ(encrypt0_write(**aead, {}, h("0102"), pt, {}, true, out).error(), Error::kBadHeader);
  EXPECT_EQ(out, h("01"));
}

// AeadCache: one object per (provider, alg, key); a copy starts empty; bounded.
TEST(CoseKey, AeadCache) {
  auto p = crypto::make_openssl_provider();
  KeySet ks;
  ks.keys.push_back(CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), {}, cp::alg::kAES_CCM_16_64_128));
  crypto::Aead* a = ks.aead_cache.get(*p, cp::alg::kAES_CCM_16_64_128, ks.keys[0].k);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(ks.aead_cache.get(*p, cp::alg::kAES_CCM_16_64_128, ks.keys[0].k), a);
  EXPECT_NE(ks.aead_cache.get(*p, cp::alg::kA128GCM, ks.keys[0].k), a);
  EXPECT_EQ(ks.aead_cache.get(*p, cp::alg::kA128GCM, h("0001")), nullptr);  // wrong key length
  EXPECT_EQ(ks.aead_cache.size(), 2u);
  KeySet copy = ks;
  EXPECT_EQ(copy.aead_cache.size(), 0u);
  copy.keys[0].k[0] ^= 1;
  EXPECT_NE(copy.aead_cache.get(*p, cp::alg::kAES_CCM_16_64_128, copy.keys[0].k), a);
  for (uint8_t i = 0; i < 20; ++i) {
    Bytes k(16, i);
    EXPECT_NE(ks.aead_cache.get(*p, cp::alg::kAES_CCM_16_64_128, k), nullptr);
  }
  EXPECT_EQ(ks.aead_cache.size(), AeadCache::kMaxEntries);
}

}  // namespace
}  // namespace acekdc::cose
