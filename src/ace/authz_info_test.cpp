// AuthzInfo's one-pass token POST (the request read in place, cwt::verify_view, the cnf
// read from its bytes, the 2.01 written directly, MemoryTokenStore::replace) against
// the general path it stands for: the same answers and the same stored state for the
// AS's token shape, for the shapes it leaves to the general path, and for refusals.
#include "ace/authz_info.h"

#include <gtest/gtest.h>

#include <functional>

#include "ace/oscore_profile.h"
#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "core/random.h"
#include "core/writer.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

class AuthzInfoTest : public ::testing::Test {
 protected:
  AuthzInfoTest()
      : key_(cose::CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), as_bytes("kdc1"),
                                      cp::alg::kAES_CCM_16_64_128)) {
    cfg_.audience = "kdc1";
    cfg_.issuer = "as.example";
    cfg_.as_keys.keys.push_back(key_);
    cfg_.groups = {{"g1", GroupConfig{}}, {"g2", GroupConfig{}}};
  }

  // claims: what the AS writes (integer labels and dates, OSCORE_Input_Material).
  cwt::Claims claims(uint8_t material_id = 0x01) const {
    cwt::Claims c;
    c.iss = "as.example";
    c.aud = "kdc1";
    c.exp = kNow + 3600;
    c.iat = kNow;
    c.cti = h("a1a2a3a4");
    c.scope = cbor::Value::bytes(encode_scope(Scope{{{"g1", kRoleRequester}}}));
    c.ace_profile = cp::ace::kProfileCoapOscore;
    cbor::Value osc = cbor::Value::map();
    osc.set(cp::osc::kId, cbor::Value::bytes(Bytes{material_id}));
    osc.set(cp::osc::kMs, cbor::Value::bytes(h("00112233445566778899aabbccddeeff")));
    osc.set(cp::osc::kSalt, cbor::Value::bytes(h("1122334455667788")));
    cbor::Value cnf = cbor::Value::map();
    cnf.set(cp::cnf::kOscoreInputMaterial, osc);
    c.cnf = cnf;
    return c;
  }

  Bytes post(const cwt::Claims& c, bool sign_info = false) {
    auto t = cwt::create_encrypted(*p_, c, key_);
    EXPECT_TRUE(t);
    AuthzInfoRequest q;
    q.access_token = t ? *t : Bytes{};
    q.nonce1 = h("018a278f7faab55a");
    q.client_recipient_id = h("1645");
    q.sign_info_requested = sign_info;
    q.pub_key_enc_requested = sign_info;
    return q.encode();
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  cose::CoseKey key_;
  AuthzInfoConfig cfg_;
};

// Two KDCs with the same random stream: `a` gets the AS's shape, `b` the same
// claims in a shape the one-pass path leaves to the general one (a text-labelled
// claim): the answers and the stored records must be the same.
TEST_F(AuthzInfoTest, OnePassAndGeneralPathAgree) {
  FakeRandom ra(5), rb(5);
  MemoryTokenStore sa, sb;
  AuthzInfo a(*p_, ra, sa, cfg_), b(*p_, rb, sb, cfg_);
  cwt::Claims c = claims();
  cwt::Claims g = c;
  g.other.emplace_back(cbor::Value::text("x"), cbor::Value::uint(1));
  ASSERT_TRUE(cwt::ClaimsView::decode(c.encode()));
  ASSERT_FALSE(cwt::ClaimsView::decode(g.encode()));
  for (int round = 0; round < 3; ++round) {  // the same material again: replaced
    TokenPostResult x = a.handle_token_post(post(c), kNow + round);
    TokenPostResult y = b.handle_token_post(post(g), kNow + round);
    ASSERT_EQ(x.code, code::kCreated) << as_string(x.payload);
    ASSERT_EQ(y.code, code::kCreated) << as_string(y.payload);
    EXPECT_EQ(to_hex(x.payload), to_hex(y.payload));
    auto resp = AuthzInfoResponse::decode(x.payload);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->encode(), x.payload) << "the 2.01 is AuthzInfoResponse's encoding";
    ASSERT_TRUE(x.established && y.established && x.established->keys);
    EXPECT_EQ(x.established->key, y.established->key);
    EXPECT_EQ(x.established->params.master_salt, y.established->params.master_salt);
    EXPECT_EQ(x.established->params.master_secret, y.established->params.master_secret);
    EXPECT_EQ(x.established->params.sender_id, h("1645"));
    EXPECT_EQ(x.established->rsnonce, y.established->rsnonce);
    auto k = oscore::derive_keys(*p_, x.established->params);
    ASSERT_TRUE(k);
    EXPECT_EQ(to_hex(k->sender()), to_hex(x.established->keys->sender()));
    EXPECT_EQ(to_hex(k->iv()), to_hex(x.established->keys->iv()));
    EXPECT_EQ(x.replaced.has_value(), round > 0);
    EXPECT_EQ(x.replaced, y.replaced);
    EXPECT_EQ(sa.size(), 1u);
    auto ra_rec = sa.get(x.established->key);
    auto rb_rec = sb.get(y.established->key);
    ASSERT_TRUE(ra_rec && rb_rec);
    ASSERT_EQ(ra_rec->tokens.size(), 1u);
    EXPECT_EQ(ra_rec->tokens[0].cti, h("a1a2a3a4"));
    EXPECT_EQ(ra_rec->tokens[0].issuer, "as.example");
    EXPECT_EQ(ra_rec->tokens[0].exp, kNow + 3600);
    EXPECT_EQ(ra_rec->tokens[0].scope.entries.size(), 1u);
    EXPECT_EQ(ra_rec->material_id, rb_rec->material_id);
    EXPECT_EQ(ra_rec->sender_id, rb_rec->sender_id);
    EXPECT_EQ(ra_rec->rsnonce, rb_rec->rsnonce);
    EXPECT_EQ(ra_rec->context->master_salt, rb_rec->context->master_salt);
  }
  // With sign_info / pub_key_enc asked for, the general encoder answers.
  TokenPostResult s = a.handle_token_post(post(c, true), kNow);
  ASSERT_EQ(s.code, code::kCreated);
  auto sr = AuthzInfoResponse::decode(s.payload);
  ASSERT_TRUE(sr);
  EXPECT_EQ(sr->sign_info.size(), 1u);
  EXPECT_TRUE(sr->has_pub_key_enc);
}

// Each refusal: the one-pass path (AS shape) and the general path (same claims with a
// text-labelled claim) give the same code and diagnostic, and change nothing.
TEST_F(AuthzInfoTest, RefusalsAreTheGeneralPathsAnswers) {
  FakeRandom r(7);
  MemoryTokenStore s;
  AuthzInfo kdc(*p_, r, s, cfg_);
  struct Case {
    const char* what;
    std::function<void(cwt::Claims&)> change;
    uint8_t code;
  };
  auto osc_with = [](int64_t key, cbor::Value v) {
    return [key, v](cwt::Claims& c) {
      cbor::Value osc = *c.cnf->find(cp::cnf::kOscoreInputMaterial);
      osc.set(key, v);
      cbor::Value cnf = cbor::Value::map();
      cnf.set(cp::cnf::kOscoreInputMaterial, osc);
      c.cnf = cnf;
    };
  };
  const std::vector<Case> cases = {
      {"expired", [](cwt::Claims& c) { c.exp = kNow; }, code::kUnauthorized},
      {"not yet valid", [](cwt::Claims& c) { c.nbf = kNow + 1; }, code::kUnauthorized},
      {"issuer", [](cwt::Claims& c) { c.iss = "other"; }, code::kUnauthorized},
      {"audience", [](cwt::Claims& c) { c.aud = "kdc2"; }, code::kForbidden},
      {"no scope", [](cwt::Claims& c) { c.scope.reset(); }, code::kBadRequest},
      {"text scope", [](cwt::Claims& c) { c.scope = cbor::Value::text("g1"); }, code::kBadRequest},
      {"bad scope", [](cwt::Claims& c) { c.scope = cbor::Value::bytes(h("01")); }, code::kBadRequest},
      {"unknown group",
       [](cwt::Claims& c) { c.scope = cbor::Value::bytes(encode_scope(Scope{{{"g9", kRoleRequester}}})); },
       code::kBadRequest},
      {"profile", [](cwt::Claims& c) { c.ace_profile = 1; }, code::kBadRequest},
      {"no exp", [](cwt::Claims& c) { c.exp.reset(); }, code::kBadRequest},
      {"no cnf", [](cwt::Claims& c) { c.cnf.reset(); }, code::kBadRequest},
      {"cnf kid", [](cwt::Claims& c) { c.set_cnf_kid(h("01")); }, code::kBadRequest},
      {"osc unknown key", osc_with(7, cbor::Value::uint(1)), code::kBadRequest},
      {"osc id not bstr", osc_with(cp::osc::kId, cbor::Value::uint(1)), code::kBadRequest},
      {"osc text alg", osc_with(cp::osc::kAlg, cbor::Value::text("AES-CCM-16-64-128")), code::kBadRequest},
      {"osc version 2", osc_with(cp::osc::kVersion, cbor::Value::uint(2)), code::kBadRequest},
      {"osc unsupported alg", osc_with(cp::osc::kAlg, cbor::Value::integer(-999)), code::kBadRequest},
      {"osc no ms", [](cwt::Claims& c) {
         cbor::Value osc = cbor::Value::map();
         osc.set(cp::osc::kId, cbor::Value::bytes(h("01")));
         cbor::Value cnf = cbor::Value::map();
         cnf.set(cp::cnf::kOscoreInputMaterial, osc);
         c.cnf = cnf;
       }, code::kBadRequest},
  };
  for (const Case& k : cases) {
    cwt::Claims c = claims();
    k.change(c);
    cwt::Claims g = c;
    g.other.emplace_back(cbor::Value::text("x"), cbor::Value::uint(1));
    TokenPostResult x = kdc.handle_token_post(post(c), kNow);
    TokenPostResult y = kdc.handle_token_post(post(g), kNow);
    EXPECT_EQ(x.code, k.code) << k.what << ": " << as_string(x.payload);
    EXPECT_EQ(y.code, k.code) << k.what << ": " << as_string(y.payload);
    EXPECT_EQ(as_string(x.payload), as_string(y.payload)) << k.what;
    EXPECT_FALSE(x.payload.empty()) << k.what;
    EXPECT_FALSE(x.established) << k.what;
    EXPECT_EQ(s.size(), 0u) << k.what;
  }
  // A version 1 / an integer alg: accepted by both.
  cwt::Claims v1 = claims();
  osc_with(cp::osc::kVersion, cbor::Value::uint(1))(v1);
  osc_with(cp::osc::kAlg, cbor::Value::integer(cp::alg::kAES_CCM_16_64_128))(v1);
  osc_with(cp::osc::kHkdf, cbor::Value::integer(cp::alg::kDirectHKDF_SHA256))(v1);
  osc_with(cp::osc::kContextId, cbor::Value::bytes(h("37cbf3210017a2d3")))(v1);
  TokenPostResult ok = kdc.handle_token_post(post(v1), kNow);
  ASSERT_EQ(ok.code, code::kCreated) << as_string(ok.payload);
  EXPECT_EQ(ok.established->key.id_context, h("37cbf3210017a2d3"));
}

// Requests the in-place reader leaves to AuthzInfoRequest::decode get its answers.
TEST_F(AuthzInfoTest, RequestsOutsideTheUsualShapeGetTheDecodersAnswers) {
  FakeRandom r(9);
  MemoryTokenStore s;
  AuthzInfo kdc(*p_, r, s, cfg_);
  Bytes good = post(claims());
  auto q = AuthzInfoRequest::decode(good);
  ASSERT_TRUE(q);
  auto answer = [&](ByteView payload) { return kdc.handle_token_post(payload, kNow); };
  auto with_extra = [&](int64_t key) {  // the map with one more (unknown) parameter
    Bytes out;
    Writer w(out);
    cbor::Encoder e(w);
    e.put_map(4).put_int(cp::ace::kAccessToken).put_bstr(q->access_token);
    e.put_int(cp::ace::kNonce1).put_bstr(*q->nonce1);
    e.put_int(cp::ace::kAceClientRecipientId).put_bstr(*q->client_recipient_id);
    e.put_int(key).put_uint(1);
    return out;
  };
  TokenPostResult u = answer(with_extra(99));
  EXPECT_EQ(u.code, code::kBadRequest);
  EXPECT_EQ(as_string(u.payload), AuthzInfoRequest::decode(with_extra(99)).error().describe());
  Bytes dup = good;
  dup[0] = 0xa4;  // one more pair: nonce1 again
  Writer w(dup);
  cbor::Encoder(w).put_int(cp::ace::kNonce1).put_bstr(*q->nonce1);
  TokenPostResult d = answer(dup);
  EXPECT_EQ(d.code, code::kBadRequest);
  EXPECT_EQ(as_string(d.payload), AuthzInfoRequest::decode(dup).error().describe());
  AuthzInfoRequest no_n1 = *q;
  no_n1.nonce1.reset();
  EXPECT_EQ(as_string(answer(no_n1.encode()).payload), "nonce1 missing");
  AuthzInfoRequest no_id = *q;
  no_id.client_recipient_id.reset();
  EXPECT_EQ(as_string(answer(no_id.encode()).payload), "ace_client_recipientid missing");
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(answer(trailing).code, code::kBadRequest);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(answer(good).code, code::kCreated);
}

// A full store still takes a re-posted material (the new record takes the old one's
// room): RFC 9203 §4.1's re-POST does not need a free slot.
TEST_F(AuthzInfoTest, RepostOfAMaterialFitsInAFullStore) {
  FakeRandom r(3);
  MemoryTokenStore s(2);
  AuthzInfo kdc(*p_, r, s, cfg_);
  ASSERT_EQ(kdc.handle_token_post(post(claims(0x01)), kNow).code, code::kCreated);
  ASSERT_EQ(kdc.handle_token_post(post(claims(0x02)), kNow).code, code::kCreated);
  EXPECT_EQ(kdc.handle_token_post(post(claims(0x03)), kNow).code, code::kServiceUnavailable);
  for (int i = 0; i < 4; ++i) {
    TokenPostResult x = kdc.handle_token_post(post(claims(0x01)), kNow);
    ASSERT_EQ(x.code, code::kCreated) << as_string(x.payload);
    ASSERT_TRUE(x.replaced);
    EXPECT_FALSE(s.contains(*x.replaced));
    EXPECT_TRUE(s.contains(x.established->key));
    EXPECT_EQ(s.size(), 2u);
    EXPECT_EQ(s.find_material(Bytes{0x01}), x.established->key);
  }
}

}  // namespace
}  // namespace acekdc::ace
