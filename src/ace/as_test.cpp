// AuthorizationServer internals that the flow tests do not look at: the token and
// the Access Information as written straight with cbor::Encoder (checked against
// the codecs and cwt::verify), and the lifetime of issued OSCORE_Input_Material
// (hash map + expiry heap): updates extend it, purge drops it at exp, never before.
#include "ace/as.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "ace/as_request.h"

#include "core/codepoints.h"
#include "cose/encrypt0.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

namespace acekdc::ace {
namespace {

constexpr int64_t kNow = 1700000000;

class AsTest : public ::testing::Test {
 protected:
  AsTest() {
    ClientPolicy a;
    a.id = "alice";
    a.groups = {{"g1", kRoleRequester | kRoleResponder}};
    a.max_lifetime = 100;
    ClientPolicy b = a;
    b.id = "bob";
    pol_.clients = {a, b};
    AudiencePolicy aud;
    aud.name = "kdc";
    aud.shared_key = key_;
    aud.context_id_len = 4;
    aud.aead_alg = cp::alg::kAES_CCM_16_64_128;
    aud.hkdf_alg = cp::alg::kDirectHKDF_SHA256;
    pol_.audiences = {aud};
    as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  }
  Bytes request(std::optional<Bytes> kid = std::nullopt, RoleSet roles = kRoleRequester) {
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, encode_scope(Scope{{{"g1", roles}}})};
    if (kid) {
      r.req_cnf.emplace();
      r.req_cnf->kid = *kid;
    }
    return r.encode();
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{7};
  cose::CoseKey key_ = cose::CoseKey::symmetric(*from_hex("000102030405060708090a0b0c0d0e0f"), *from_hex("6b31"),
                                                cp::alg::kAES_CCM_16_64_128);
  AsPolicy pol_;
  std::unique_ptr<AuthorizationServer> as_;
};

TEST_F(AsTest, TokenAndAccessInformationAsTheCodecsWriteThem) {
  AsResponse r = as_->handle_token("alice", request(), kNow);
  ASSERT_EQ(r.code, cp::coap::code::kCreated);
  auto t = TokenResponse::decode(r.payload);
  ASSERT_TRUE(t);
  // The direct encoding is the one TokenResponse::encode gives.
  EXPECT_EQ(t->encode(), r.payload);
  ASSERT_TRUE(t->cnf && t->cnf->osc);
  const OscoreInputMaterial& m = *t->cnf->osc;
  ASSERT_TRUE(m.id && m.ms && m.salt && m.context_id && m.alg && m.hkdf);
  EXPECT_EQ(m.id->size(), pol_.id_len);
  EXPECT_EQ(m.ms->size(), 16u);
  EXPECT_EQ(m.salt->size(), 8u);
  EXPECT_EQ(m.context_id->size(), 4u);
  EXPECT_FALSE(t->scope);  // granted == requested
  EXPECT_EQ(t->expires_in, 100u);
  // The token: tagged COSE_Encrypt0 with kid and a 13-byte IV, claims as Claims::encode writes them.
  EXPECT_EQ(t->access_token[0], 0xd0);
  cwt::TokenInfo info;
  cwt::VerifyOptions vo;
  vo.now = kNow;
  auto c = cwt::verify(*p_, t->access_token, key_, vo, &info);
  ASSERT_TRUE(c);
  EXPECT_EQ(info.kids[0], key_.kid);
  EXPECT_EQ(c->iss, pol_.issuer);
  EXPECT_EQ(c->aud, "kdc");
  EXPECT_EQ(c->exp->seconds(), kNow + 100);
  EXPECT_EQ(c->iat->seconds(), kNow);
  EXPECT_EQ(c->cti->size(), 8u);
  EXPECT_EQ(c->ace_profile, cp::ace::kProfileCoapOscore);
  ASSERT_TRUE(c->scope && c->scope->is_bytes());
  EXPECT_EQ(*c->scope->as_bytes(), encode_scope(Scope{{{"g1", kRoleRequester}}}));
  auto cnf = Cnf::from_value(*c->cnf);
  ASSERT_TRUE(cnf && cnf->osc);
  EXPECT_EQ(cnf->osc->encode(), m.encode());
  // Two tokens never share material, cti or IV.
  auto t2 = TokenResponse::decode(as_->handle_token("alice", request(), kNow).payload);
  ASSERT_TRUE(t2);
  EXPECT_NE(*t2->cnf->osc->id, *m.id);
  EXPECT_NE(*t2->cnf->osc->ms, *m.ms);
  EXPECT_NE(t2->access_token, t->access_token);
  // A role the client may not have: invalid_scope, no material kept.
  const size_t before = as_->num_materials();
  EXPECT_EQ(as_->handle_token("alice", request(std::nullopt, kRoleMonitor), kNow).code, cp::coap::code::kBadRequest);
  EXPECT_EQ(as_->num_materials(), before);
}

// The token written from the audience's templates is, byte for byte, what
// cose::encrypt0_write makes of the claims as cwt::Claims::encode writes them (same
// IV), and the Access Information what TokenResponse::encode writes; also with a
// granted scope narrower than the request (scope returned), without kid / salt /
// contextId / alg / hkdf, and with a second audience.
TEST_F(AsTest, TemplatedTokenIsWhatTheCodecsWrite) {
  AudiencePolicy plain;
  plain.name = "kdc2";
  plain.shared_key = cose::CoseKey::symmetric(Bytes(16, 0x42), {}, cp::alg::kAES_CCM_16_64_128);
  plain.salt_len = 0;
  pol_.audiences.push_back(plain);
  pol_.clients[0].groups["g2"] = kRoleRequester;
  as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  struct Case {
    const char* audience;
    cose::CoseKey key;
    Scope scope;
    bool narrowed;
  } cases[] = {
      {"kdc", key_, Scope{{{"g1", kRoleRequester}}}, false},
      {"kdc", key_, Scope{{{"g1", kRoleRequester}, {"nope", kRoleRequester}}}, true},
      {"kdc2", *plain.shared_key, Scope{{{"g2", kRoleRequester}, {"g1", kRoleResponder}}}, false},
      {"kdc2", *plain.shared_key, Scope{{{"g2", 0}, {"nope", kRoleRequester}}}, true},
  };
  // Times whose exp / iat take 4 bytes (the claims template) and others.
  for (const int64_t at : {kNow, int64_t{1000}, int64_t{0xffffffff} - 50}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.audience);
      SCOPED_TRACE(at);
      TokenRequest q;
      q.audience = c.audience;
      q.scope = ScopeParam{false, encode_scope(c.scope)};
      AsResponse r = as_->handle_token("alice", q.encode(), at);
      ASSERT_EQ(r.code, cp::coap::code::kCreated);
      auto t = TokenResponse::decode(r.payload);
      ASSERT_TRUE(t);
      EXPECT_EQ(t->encode(), r.payload);
      EXPECT_EQ(t->scope.has_value(), c.narrowed);
      auto aead = p_->make_aead(cp::alg::kAES_CCM_16_64_128, c.key.k);
      ASSERT_TRUE(aead);
      auto v = cose::encrypt0_decrypt(**aead, t->access_token);
      ASSERT_TRUE(v);
      auto claims = cwt::Claims::decode(v->payload);
      ASSERT_TRUE(claims);
      EXPECT_EQ(claims->encode(), v->payload);
      ASSERT_TRUE(claims->iat && claims->exp);
      EXPECT_EQ(claims->iat->seconds(), at);
      EXPECT_EQ(claims->exp->seconds(), at + 100);
      const cbor::Value* iv = v->headers.find(cp::header::kIV);
      ASSERT_TRUE(iv && iv->as_bytes());
      Bytes again;
      ASSERT_TRUE(
          cose::encrypt0_write(**aead, c.key.kid, *iv->as_bytes(), v->payload, {}, true, again));
      EXPECT_EQ(again, t->access_token);
      const Bytes scope_claim = *claims->scope->as_bytes();
      EXPECT_EQ(scope_claim, c.narrowed ? t->scope->value : encode_scope(c.scope));
    }
  }
}

// Thousands of live materials (the table grows, probe runs form, records leave by
// backward shift in any order): at every step the count is that of the unexpired
// ones, and at the end every live id is found (an update succeeds) and no expired
// one is.
TEST_F(AsTest, ManyMaterialsExpireExactlyAndStayFindable) {
  pol_.clients[1].max_lifetime = 37;  // bob: out-of-order expiries (heap)
  pol_.max_materials = 1u << 20;
  as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  struct Issued {
    const char* who;
    Bytes id;
    int64_t exp;
  };
  std::vector<Issued> issued;
  for (int i = 0; i < 3000; ++i) {
    const int64_t at = kNow + i / 20;
    const char* who = (i % 3 == 0) ? "bob" : "alice";
    AsResponse r = as_->handle_token(who, request(), at);
    ASSERT_EQ(r.code, cp::coap::code::kCreated);
    issued.push_back({who, *TokenResponse::decode(r.payload)->cnf->osc->id, at + (i % 3 == 0 ? 37 : 100)});
    size_t live = 0;
    for (const auto& x : issued) live += x.exp > at;
    if (i % 97 == 0) {
      ASSERT_EQ(as_->num_materials(), live) << i;
    }
  }
  const int64_t end = kNow + 3000 / 20 - 1;
  // A refused request still purges: count at `end`.
  EXPECT_EQ(as_->handle_token("alice", request(std::nullopt, kRoleMonitor), end).code, cp::coap::code::kBadRequest);
  size_t live = 0;
  for (const auto& x : issued) live += x.exp > end;
  EXPECT_EQ(as_->num_materials(), live);
  for (const auto& x : issued) {
    const bool ok = as_->handle_token(x.who, request(x.id), end).code == cp::coap::code::kCreated;
    EXPECT_EQ(ok, x.exp > end) << to_hex(x.id);
  }
  EXPECT_EQ(as_->num_materials(), live);
}

TEST_F(AsTest, MaterialLivesUntilItsLatestExpiry) {
  auto t = TokenResponse::decode(as_->handle_token("alice", request(), kNow).payload);
  ASSERT_TRUE(t);
  const Bytes id = *t->cnf->osc->id;
  EXPECT_EQ(as_->num_materials(), 1u);
  // Someone else's material is not an update target.
  EXPECT_EQ(as_->handle_token("bob", request(id), kNow + 10).code, cp::coap::code::kBadRequest);
  // An update at +50 extends the material to +150; its token carries cnf {kid}.
  AsResponse u = as_->handle_token("alice", request(id), kNow + 50);
  ASSERT_EQ(u.code, cp::coap::code::kCreated);
  auto ut = TokenResponse::decode(u.payload);
  ASSERT_TRUE(ut);
  EXPECT_FALSE(ut->cnf);
  cwt::VerifyOptions vo;
  vo.now = kNow + 50;
  auto c = cwt::verify(*p_, ut->access_token, key_, vo);
  ASSERT_TRUE(c);
  EXPECT_TRUE(equal(c->cnf_kid(), id));
  EXPECT_EQ(as_->num_materials(), 1u);
  // Past the first expiry (+100) the material is still there (+150).
  EXPECT_EQ(as_->handle_token("alice", request(id), kNow + 120).code, cp::coap::code::kCreated);  // -> +220
  EXPECT_EQ(as_->handle_token("bob", request(), kNow + 219).code, cp::coap::code::kCreated);
  EXPECT_EQ(as_->num_materials(), 2u);
  EXPECT_EQ(as_->handle_token("alice", request(id), kNow + 219).code, cp::coap::code::kCreated);  // -> +319
  // At its expiry it is gone, and so is bob's at his.
  EXPECT_EQ(as_->handle_token("alice", request(id), kNow + 319).code, cp::coap::code::kBadRequest);
  EXPECT_EQ(as_->num_materials(), 0u);
}

// Lifetimes that differ per client put expiry times out of order (FIFO and heap
// both in use): each material goes exactly at its own expiry.
TEST_F(AsTest, MaterialsOfDifferentLifetimesExpireEachAtItsTime) {
  pol_.clients[1].max_lifetime = 30;  // bob
  as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  auto id_of = [](const AsResponse& r) { return *TokenResponse::decode(r.payload)->cnf->osc->id; };
  const Bytes a1 = id_of(as_->handle_token("alice", request(), kNow));       // exp +100
  const Bytes b1 = id_of(as_->handle_token("bob", request(), kNow + 10));    // exp +40
  const Bytes a2 = id_of(as_->handle_token("alice", request(), kNow + 20));  // exp +120
  const Bytes b2 = id_of(as_->handle_token("bob", request(), kNow + 50));    // exp +80
  EXPECT_EQ(as_->num_materials(), 3u) << "b1 expired at +40";
  // An update shows whether a material is still live (and extends it by its lifetime).
  auto live = [&](const char* who, const Bytes& id, int64_t at) {
    return as_->handle_token(who, request(id), at).code == cp::coap::code::kCreated;
  };
  EXPECT_FALSE(live("bob", b1, kNow + 50));
  EXPECT_TRUE(live("bob", b2, kNow + 79));    // -> +109
  EXPECT_TRUE(live("alice", a1, kNow + 99));  // -> +199
  EXPECT_TRUE(live("bob", b2, kNow + 108));   // -> +138
  EXPECT_TRUE(live("alice", a2, kNow + 119)); // -> +219
  EXPECT_FALSE(live("bob", b2, kNow + 138));
  EXPECT_EQ(as_->num_materials(), 2u);
  EXPECT_FALSE(live("alice", a1, kNow + 199));
  EXPECT_EQ(as_->num_materials(), 1u);
  EXPECT_FALSE(live("alice", a2, kNow + 219));
  EXPECT_EQ(as_->num_materials(), 0u);
}

TEST_F(AsTest, CapacityCountsLiveMaterialOnly) {
  pol_.max_materials = 3;
  as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(as_->handle_token("alice", request(), kNow + i).code, cp::coap::code::kCreated);
  EXPECT_EQ(as_->handle_token("alice", request(), kNow + 3).code, cp::coap::code::kServiceUnavailable);
  // The first expires at +100: room for one more.
  EXPECT_EQ(as_->handle_token("alice", request(), kNow + 100).code, cp::coap::code::kCreated);
  EXPECT_EQ(as_->handle_token("alice", request(), kNow + 100).code, cp::coap::code::kServiceUnavailable);
  EXPECT_EQ(as_->num_materials(), 3u);
}

// Ids longer than a slot holds (and the audience check) through the record slab:
// the same lifetime and ownership rules.
TEST_F(AsTest, LongIdsLiveInRecords) {
  pol_.id_len = 12;
  as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol_);
  auto id_of = [](const AsResponse& r) { return *TokenResponse::decode(r.payload)->cnf->osc->id; };
  const Bytes a = id_of(as_->handle_token("alice", request(), kNow));  // exp +100
  const Bytes b = id_of(as_->handle_token("bob", request(), kNow + 10));  // exp +110
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(as_->num_materials(), 2u);
  EXPECT_EQ(as_->handle_token("bob", request(a), kNow + 20).code, cp::coap::code::kBadRequest);
  Bytes a_prefix(a.begin(), a.begin() + 8);
  EXPECT_EQ(as_->handle_token("alice", request(a_prefix), kNow + 20).code, cp::coap::code::kBadRequest);
  EXPECT_EQ(as_->handle_token("alice", request(a), kNow + 20).code, cp::coap::code::kCreated);  // -> +120
  EXPECT_EQ(as_->handle_token("alice", request(a), kNow + 115).code, cp::coap::code::kCreated);  // -> +215
  EXPECT_EQ(as_->num_materials(), 1u) << "b expired at +110";
  EXPECT_EQ(as_->handle_token("bob", request(b), kNow + 115).code, cp::coap::code::kBadRequest);
  const Bytes c = id_of(as_->handle_token("bob", request(), kNow + 116));  // reuses b's record
  EXPECT_EQ(as_->handle_token("bob", request(c), kNow + 117).code, cp::coap::code::kCreated);
  EXPECT_EQ(as_->handle_token("alice", request(a), kNow + 215).code, cp::coap::code::kBadRequest);
  EXPECT_EQ(as_->num_materials(), 1u);
}

// mutations: `seeds` and, for each, every truncation, every single-byte change to a
// few values, and random multi-byte changes (deterministic).
std::vector<Bytes> mutations(const std::vector<Bytes>& seeds) {
  std::vector<Bytes> out;
  std::mt19937 g(1234);
  for (const Bytes& s : seeds) {
    out.push_back(s);
    for (size_t n = 0; n < s.size(); ++n) out.emplace_back(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    Bytes longer = s;
    longer.push_back(0x00);
    out.push_back(longer);
    for (size_t i = 0; i < s.size(); ++i) {
      for (uint8_t v : {0x00, 0x01, 0x04, 0x18, 0x19, 0x1a, 0x20, 0x3f, 0x40, 0x5f, 0x60, 0x7f, 0x80, 0x82, 0x9f,
                        0xa0, 0xbf, 0xf6, 0xff}) {
        Bytes m = s;
        m[i] = v;
        out.push_back(m);
        m[i] = static_cast<uint8_t>(s[i] + 1);
        out.push_back(m);
        m[i] = static_cast<uint8_t>(s[i] - 1);
        out.push_back(m);
      }
    }
    for (int k = 0; k < 300; ++k) {
      Bytes m = s;
      for (int j = 0; j < 3; ++j) m[g() % m.size()] = static_cast<uint8_t>(g());
      out.push_back(m);
    }
  }
  return out;
}

// The fast readers of as_request.h accept a subset of what the general readers
// accept and read it the same (the AS relies on it: anything they refuse goes to
// the general reader, which gives the error).
TEST(AsFastReaders, AgreeWithTheGeneralReaders) {
  auto scope_of = [](std::vector<ScopeEntry> entries) { return encode_scope(Scope{std::move(entries)}); };
  const std::vector<Bytes> scopes = {
      scope_of({{"g1", kRoleRequester}}),
      scope_of({{"g1", kRoleRequester | kRoleResponder}}),
      scope_of({{"g1", kRoleMonitor}, {"group-two", kRoleResponder}}),
      scope_of({{"g1", 0}}),
      scope_of({{"g1", kRoleRequester}, {"g1", kRoleResponder}}),
      encode_scope(Scope{{{"g1", kRoleRequester}}}, true),
      encode_scope(Scope{{{"g1", kRoleRequester | kRoleResponder}, {"g2", kRoleMonitor}}}, true),
      *from_hex("8182626731826972657175657374657202"),  // [["g1", ["requester", 2]]]
      *from_hex("818262673169726571756573746572"),      // [["g1", "requester"]] (text role)
      *from_hex("818262673182020a"),                    // [["g1", [1, 10]]]: unknown role
      *from_hex("8182626731820101"),                    // [["g1", [1, 1]]]: duplicate role
      *from_hex("8182626731820103"),                    // [["g1", [1, 3]]]: monitor combined
      *from_hex("81826267311801"),                      // [["g1", 1]] with a 1-byte head
      *from_hex("9f8262673101ff"),                      // indefinite array
      *from_hex("818262ff3101"),                        // name not UTF-8
      *from_hex("80"),                                  // empty
  };
  size_t fast_scopes = 0;
  std::vector<ScopeEntryView> a, b;
  for (const Bytes& s : mutations(scopes)) {
    if (!as_fast::read_scope(s, a)) continue;
    ++fast_scopes;
    ASSERT_TRUE(parse_scope_views(s, b)) << to_hex(s);
    ASSERT_EQ(a.size(), b.size()) << to_hex(s);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].group, b[i].group) << to_hex(s);
      EXPECT_EQ(a[i].group.data(), b[i].group.data()) << to_hex(s);
      EXPECT_EQ(a[i].roles, b[i].roles) << to_hex(s);
    }
  }
  EXPECT_GE(fast_scopes, 5u);  // the plain seeds at least

  std::vector<Bytes> requests;
  for (const Bytes& sc : scopes) {
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, sc};
    requests.push_back(r.encode());
    r.client_id = "alice";
    r.grant_type = cp::ace::kGrantClientCredentials;
    r.ace_profile_requested = true;
    requests.push_back(r.encode());
  }
  {
    TokenRequest r;
    r.scope = ScopeParam{true, to_bytes(as_bytes(std::string_view("g1")))};
    requests.push_back(r.encode());
    r.req_cnf.emplace();
    r.req_cnf->kid = Bytes{1, 2, 3};
    requests.push_back(r.encode());
  }
  requests.push_back(*from_hex("a2051863646b646309"));            // audience and scope keys, odd heads
  requests.push_back(*from_hex("a205636b64630563616263"));        // audience twice
  requests.push_back(*from_hex("a118211902"));                    // grant_type as a 2-byte head
  requests.push_back(*from_hex("bf05636b6463ff"));                // indefinite map
  requests.push_back(*from_hex("a1200a"));                        // negative key
  size_t fast_requests = 0;
  for (const Bytes& in : mutations(requests)) {
    std::optional<as_fast::TokenRequestFields> f{std::in_place};
    if (!as_fast::read_token_request(in, *f)) continue;
    ++fast_requests;
    auto g = TokenRequestView::decode(in);
    ASSERT_TRUE(g) << to_hex(in);
    EXPECT_EQ(f->grant_type, g->grant_type) << to_hex(in);
    EXPECT_EQ(f->client_id, g->client_id) << to_hex(in);
    EXPECT_EQ(f->audience, g->audience) << to_hex(in);
    EXPECT_FALSE(f->req_cnf) << to_hex(in);
    EXPECT_FALSE(g->req_cnf) << to_hex(in);
    EXPECT_EQ(f->ace_profile_requested, g->ace_profile_requested) << to_hex(in);
    ASSERT_EQ(f->scope.has_value(), g->scope.has_value()) << to_hex(in);
    if (f->scope) {
      EXPECT_EQ(f->scope->is_text, g->scope->is_text) << to_hex(in);
      EXPECT_EQ(f->scope->value.data(), g->scope->value.data()) << to_hex(in);
      EXPECT_EQ(f->scope->value.size(), g->scope->value.size()) << to_hex(in);
    }
  }
  EXPECT_GE(fast_requests, 2 * scopes.size());  // the plain seeds at least
}

}  // namespace
}  // namespace acekdc::ace
