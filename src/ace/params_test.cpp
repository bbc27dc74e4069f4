#include "ace/params.h"

#include <gtest/gtest.h>

#include "ace/oscore_profile.h"
#include "cbor/edn.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::ace {
namespace {

Bytes h(const char* s) { return *from_hex(s); }

TEST(AceParams, TokenRequestRoundTripAndBytes) {
  TokenRequest r;
  r.client_id = "myclient";
  r.audience = "kdc";
  r.scope = ScopeParam{false, h("81 82 62 6731 69 72657175657374 6572")};
  r.grant_type = cp::ace::kGrantClientCredentials;
  r.ace_profile_requested = true;
  Bytes enc = r.encode();
  // {5: "kdc", 9: h'..', 24: "myclient", 33: 2, 38: null}
  EXPECT_EQ(to_hex(enc).substr(0, 12), "a505636b6463");
  auto back = TokenRequest::decode(enc);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->client_id, r.client_id);
  EXPECT_EQ(back->audience, r.audience);
  EXPECT_EQ(back->scope, r.scope);
  EXPECT_EQ(back->grant_type, r.grant_type);
  EXPECT_TRUE(back->ace_profile_requested);
  EXPECT_FALSE(back->req_cnf);
}

TEST(AceParams, Rfc9200Figure6RequestWithKidReqCnf) {
  // {24: "myclient", 5: "valve424", 9: "read", 4: {3: h'ea48347572 4cd775'}}
  Bytes enc = h("a4 18 18 68 6d79636c69656e74 05 68 76616c7665343234 09 64 72656164 04 a1 03 48 ea483475724cd775");
  auto r = TokenRequest::decode(enc);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->scope);
  EXPECT_TRUE(r->scope->is_text);
  EXPECT_EQ(as_string(r->scope->value), "read");
  ASSERT_TRUE(r->req_cnf && r->req_cnf->kid);
  EXPECT_EQ(to_hex(*r->req_cnf->kid), "ea483475724cd775");
}

TEST(AceParams, StrictRejections) {
  struct Case {
    const char* hex;
    Error error;
    std::optional<int64_t> key;
  };
  const Case cases[] = {
      {"a2 05 61 61 05 61 62", Error::kDuplicateKey, 5},       // audience twice
      {"a1 07 61 61", Error::kUnknownKey, 7},                  // unknown key
      {"a1 61 61 61 61", Error::kUnknownKey, std::nullopt},    // text key
      {"a1 05 41 61", Error::kWrongType, 5},                   // audience as bstr
      {"a1 18 21 20", Error::kWrongType, 33},                  // grant_type negative
      {"a1 18 26 02", Error::kWrongType, 38},                  // ace_profile not null in request
      {"a1 04 a2 03 41 01 01 a0", Error::kBadValue, 4},        // req_cnf with two methods
      {"a1 04 a1 07 41 01", Error::kUnknownKey, 4},            // unknown cnf method
      {"80", Error::kMalformed, std::nullopt},                 // not a map
      {"a1 05", Error::kMalformed, std::nullopt},              // truncated
      {"bf 05 61 61 ff", Error::kMalformed, std::nullopt},     // indefinite map
      {"a1 05 61 61 00", Error::kMalformed, std::nullopt},     // trailing byte
  };
  for (const auto& c : cases) {
    auto r = TokenRequest::decode(h(c.hex));
    ASSERT_FALSE(r) << c.hex;
    EXPECT_EQ(r.error().error, c.error) << c.hex << ": " << r.error().describe();
    EXPECT_EQ(r.error().key, c.key) << c.hex;
  }
}

TEST(AceParams, OscoreInputMaterialRfc9203Figure) {
  // RFC 9203 §3.2 example claims set, the cnf part: {4: {0: h'01', 2: h'f9af..6f'}}
  Bytes osc = h("a2 00 41 01 02 50 f9af838368e353e78888e1426bd94e6f");
  auto m = OscoreInputMaterial::decode(osc);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(to_hex(*m->id), "01");
  EXPECT_EQ(to_hex(*m->ms), "f9af838368e353e78888e1426bd94e6f");
  EXPECT_FALSE(m->salt);
  EXPECT_EQ(m->encode(), osc);

  OscoreInputMaterial full;
  full.id = h("0102");
  full.version = 1;
  full.ms = Bytes(16, 0x11);
  full.hkdf = int64_t{cp::alg::kHMAC256_256};
  full.alg = std::string("AES-CCM-16-64-128");
  full.salt = h("aabb");
  full.context_id = h("cc");
  auto back = OscoreInputMaterial::decode(full.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->encode(), full.encode());
  EXPECT_EQ(std::get<std::string>(*back->alg), "AES-CCM-16-64-128");

  // Unrecognized parameter (RFC 9203 §4.2: 4.00) and wrong types.
  auto unk = OscoreInputMaterial::decode(h("a2 00 41 01 07 41 01"));
  ASSERT_FALSE(unk);
  EXPECT_EQ(unk.error().error, Error::kUnknownKey);
  auto wt = OscoreInputMaterial::decode(h("a1 02 62 6162"));
  ASSERT_FALSE(wt);
  EXPECT_EQ(wt.error().error, Error::kWrongType);
  EXPECT_EQ(wt.error().key, cp::osc::kMs);
}

TEST(AceParams, TokenResponseRoundTrip) {
  TokenResponse r;
  r.access_token = h("d08343a1010aa1054d");
  r.expires_in = 3600;
  Cnf c;
  c.osc.emplace();
  c.osc->id = h("01");
  c.osc->ms = h("f9af838368e353e78888e1426bd94e6f");
  r.cnf = c;
  r.ace_profile = cp::ace::kProfileCoapOscore;
  r.scope = ScopeParam{false, h("818161 67")};
  Bytes enc = r.encode();
  auto back = TokenResponse::decode(enc);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->encode(), enc);
  ASSERT_TRUE(back->cnf && back->cnf->osc);
  EXPECT_EQ(*back->cnf->osc->ms, *c.osc->ms);
  // access_token is required
  auto missing = TokenResponse::decode(h("a1 02 19 0e10"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().error, Error::kMissingParameter);
  EXPECT_EQ(missing.error().key, cp::ace::kAccessToken);
}

TEST(AceParams, ErrorResponseAndCodes) {
  ErrorResponse e{cp::ace::kErrInvalidScope, std::string("no group")};
  Bytes enc = e.encode();
  EXPECT_EQ(to_hex(enc), "a2181e06181f686e6f2067726f7570");
  auto back = ErrorResponse::decode(enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->error, cp::ace::kErrInvalidScope);
  EXPECT_EQ(*back->description, "no group");
  EXPECT_EQ(error_coap_code(cp::ace::kErrInvalidClient), cp::coap::code::kUnauthorized);
  for (int64_t x : {cp::ace::kErrInvalidRequest, cp::ace::kErrInvalidGrant, cp::ace::kErrUnauthorizedClient,
                    cp::ace::kErrUnsupportedGrantType, cp::ace::kErrInvalidScope,
                    cp::ace::kErrUnsupportedPopKey, cp::ace::kErrIncompatibleAceProfiles})
    EXPECT_EQ(error_coap_code(x), cp::coap::code::kBadRequest) << x;
  EXPECT_STREQ(error_name(cp::ace::kErrIncompatibleAceProfiles), "incompatible_ace_profiles");
}

TEST(AceParams, AuthzInfoRequestRfc9203Example) {
  // RFC 9203 §4.1 example: {1: h'..', 40: h'018a278f7faab55a', 43: h'1645'}
  Bytes enc = h("a3 01 43 d08343 18 28 48 018a278f7faab55a 18 2b 42 1645");
  auto r = AuthzInfoRequest::decode(enc);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(to_hex(*r->nonce1), "018a278f7faab55a");
  EXPECT_EQ(to_hex(*r->client_recipient_id), "1645");
  EXPECT_FALSE(r->sign_info_requested);
  EXPECT_EQ(r->encode(), enc);

  AuthzInfoRequest q = *r;
  q.sign_info_requested = true;
  q.pub_key_enc_requested = true;
  auto q2 = AuthzInfoRequest::decode(q.encode());
  ASSERT_TRUE(q2);
  EXPECT_TRUE(q2->sign_info_requested);
  EXPECT_TRUE(q2->pub_key_enc_requested);
  // sign_info must be null in a request
  auto bad = AuthzInfoRequest::decode(h("a2 01 41 00 18 2d 80"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().error, Error::kWrongType);
  EXPECT_EQ(bad.error().key, cp::ace::kSignInfo);
  auto dup = AuthzInfoRequest::decode(h("a3 01 41 00 18 28 41 01 18 28 41 02"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().error, Error::kDuplicateKey);
}

TEST(AceParams, AuthzInfoResponseSignInfoShapes) {
  AuthzInfoResponse r;
  r.nonce2 = h("25a8991cd700ac01");
  r.server_recipient_id = h("0000");
  r.rsnonce = h("0102030405060708");
  SignInfo s;
  s.sign_alg = int64_t{cp::alg::kEdDSA};
  s.sign_parameters = cbor::Value::array({cbor::Value::integer(cp::kty::kOKP)});
  s.sign_key_parameters =
      cbor::Value::array({cbor::Value::integer(cp::kty::kOKP), cbor::Value::integer(cp::crv::kEd25519)});
  r.sign_info = {s};
  r.has_pub_key_enc = true;
  r.pub_key_enc = {int64_t{cp::gc::kPubKeyEncCoseKey}};
  Bytes one = r.encode();
  // One group: the bare triple (seed §3.3): 18 2d 83 27 81 01 82 01 06
  EXPECT_NE(to_hex(one).find("182d8327810182010"), std::string::npos) << to_hex(one);
  auto back = AuthzInfoResponse::decode(one);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->encode(), one);
  ASSERT_EQ(back->sign_info.size(), 1u);
  ASSERT_EQ(back->pub_key_enc.size(), 1u);

  // Two groups: arrays of them.
  r.sign_info.push_back(s);
  r.pub_key_enc.push_back(std::nullopt);
  Bytes two = r.encode();
  EXPECT_NE(to_hex(two).find("182d8283"), std::string::npos) << to_hex(two);
  EXPECT_NE(to_hex(two).find("18cc8201f6"), std::string::npos) << to_hex(two);
  auto back2 = AuthzInfoResponse::decode(two);
  ASSERT_TRUE(back2);
  EXPECT_EQ(back2->sign_info.size(), 2u);
  EXPECT_EQ(back2->pub_key_enc.size(), 2u);
  EXPECT_FALSE(back2->pub_key_enc[1]);
  EXPECT_EQ(back2->encode(), two);
}

// RFC 9203 §4.3 "Example of Master Salt Construction Using CBOR Encoding".
TEST(AceOscoreProfile, MasterSaltRfc9203Example) {
  Bytes ms = build_master_salt(h("f9af838368e353e78888e1426bd94e6f"), h("018a278f7faab55a"),
                               h("25a8991cd700ac01"));
  EXPECT_EQ(to_hex(ms), "50f9af838368e353e78888e1426bd94e6f48018a278f7faab55a4825a8991cd700ac01");
  // Absent salt: the empty byte string 0x40.
  EXPECT_EQ(to_hex(build_master_salt({}, h("01"), h("02"))), "404101" "4102");
}

TEST(AceOscoreProfile, BothSidesDeriveMirroredContexts) {
  OscoreInputMaterial m;
  m.id = h("01");
  m.ms = h("f9af838368e353e78888e1426bd94e6f");
  m.salt = h("aabbccdd");
  m.context_id = h("37cbf3210017a2d3");
  Bytes n1 = h("018a278f7faab55a"), n2 = h("25a8991cd700ac01"), id1 = h("1645"), id2 = h("0000");
  auto c = derive_context_params(m, n1, n2, id1, id2, Side::kClient);
  auto s = derive_context_params(m, n1, n2, id1, id2, Side::kServer);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->sender_id, id2);
  EXPECT_EQ(c->recipient_id, id1);
  EXPECT_EQ(s->sender_id, id1);
  EXPECT_EQ(s->recipient_id, id2);
  EXPECT_EQ(c->master_salt, s->master_salt);
  EXPECT_EQ(*c->id_context, *m.context_id);
  EXPECT_EQ(c->aead_alg, cp::alg::kAES_CCM_16_64_128);
  auto p = crypto::make_openssl_provider();
  auto kc = oscore::derive_keys(*p, *c);
  auto ks = oscore::derive_keys(*p, *s);
  ASSERT_TRUE(kc && ks);
  EXPECT_TRUE(equal(kc->sender(), ks->recipient()));
  EXPECT_TRUE(equal(kc->recipient(), ks->sender()));
  EXPECT_TRUE(equal(kc->iv(), ks->iv()));

  // Refusals.
  EXPECT_FALSE(derive_context_params(m, n1, n2, id1, id1, Side::kServer));  // equal IDs
  OscoreInputMaterial v2 = m;
  v2.version = 2;
  EXPECT_EQ(derive_context_params(v2, n1, n2, id1, id2, Side::kServer).error().key, cp::osc::kVersion);
  OscoreInputMaterial noms = m;
  noms.ms.reset();
  EXPECT_EQ(derive_context_params(noms, n1, n2, id1, id2, Side::kServer).error().error,
            Error::kMissingParameter);
  OscoreInputMaterial textalg = m;
  textalg.alg = std::string("AES-CCM-16-64-128");
  EXPECT_EQ(derive_context_params(textalg, n1, n2, id1, id2, Side::kServer).error().error, Error::kBadValue);
  EXPECT_FALSE(derive_context_params(m, {}, n2, id1, id2, Side::kServer));
}

}  // namespace
}  // namespace acekdc::ace
