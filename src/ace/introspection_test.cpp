// KDC-side introspection (RFC 9200 §5.9): AuthzInfo with an Introspector that calls the
// AS core directly; fallback and always modes, the cache, revocation of an installed
// token, an AS that does not answer, and the introspection response codec.
#include <gtest/gtest.h>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

// AsIntrospector: the AS core behind the Introspector interface, as RS `rs`.
class AsIntrospector final : public Introspector {
 public:
  AsIntrospector(AuthorizationServer& as, std::string rs) : as_(as), rs_(std::move(rs)) {}
  std::optional<IntrospectionReply> introspect(ByteView request, int64_t now) override {
    ++calls;
    if (down) return std::nullopt;
    if (garbage) return IntrospectionReply{code::kCreated, h("a10af5ff")};
    AsResponse r = as_.handle_introspect(rs_, request, now);
    return IntrospectionReply{r.code, r.payload};
  }
  int calls = 0;
  bool down = false;
  bool garbage = false;

 private:
  AuthorizationServer& as_;
  std::string rs_;
};

GroupConfig group() {
  GroupConfig g;
  g.sign_info.sign_alg = int64_t{cp::alg::kEdDSA};
  return g;
}

class Introspection : public ::testing::Test {
 protected:
  Introspection()
      : shared_(cose::CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), {}, cp::alg::kAES_CCM_16_64_128)) {
    AsPolicy pol;
    pol.issuer = "as";
    ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", kRoleRequester}, {"g2", kRoleRequester}};
    c.max_lifetime = 600;
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared_;
    AudiencePolicy b;
    b.name = "other";
    b.shared_key = shared_;
    pol.audiences = {a, b};
    as_ = std::make_unique<AuthorizationServer>(*p_, as_rand_, pol);
    intro_ = std::make_unique<AsIntrospector>(*as_, "kdc");
  }

  // make_kdc builds the KDC; with_key: it can verify tokens itself.
  void make_kdc(bool with_key, IntrospectMode mode, int64_t ttl = 60, size_t max_cache = 16) {
    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.issuer = "as";
    if (with_key) cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", group()}, {"g2", group()}};
    kdc_ = std::make_unique<AuthzInfo>(*p_, kdc_rand_, store_, cfg);
    IntrospectionConfig ic;
    ic.mode = mode;
    ic.cache_ttl = ttl;
    ic.max_cache = max_cache;
    kdc_->set_introspection(intro_.get(), ic);
    kdc_->set_token_inactive_handler([this](const ContextKey& k, const StoredToken& t, bool dropped) {
      inactive_.push_back({k, t.cti, dropped});
    });
  }

  Bytes token(const char* group, const char* audience = "kdc", int64_t now = kNow) {
    TokenRequest r;
    r.audience = audience;
    r.scope = ScopeParam{false, encode_scope(Scope{{ScopeEntry{group, kRoleRequester}}})};
    AsResponse resp = as_->handle_token("client1", r.encode(), now);
    EXPECT_EQ(resp.code, code::kCreated);
    auto t = TokenResponse::decode(resp.payload);
    EXPECT_TRUE(t);
    return t ? t->access_token : Bytes{};
  }

  Bytes cti_of(const Bytes& tok) {
    cwt::VerifyOptions vo;
    vo.check_time = false;
    auto c = cwt::verify(*p_, tok, shared_, vo);
    EXPECT_TRUE(c && c->cti);
    return c && c->cti ? *c->cti : Bytes{};
  }

  Bytes post(const Bytes& tok, uint8_t id1 = 0x10) {
    AuthzInfoRequest q;
    q.access_token = tok;
    q.nonce1 = h("0102030405060708");
    q.client_recipient_id = Bytes{id1};
    return q.encode();
  }

  void expect_refused(const Bytes& tok, uint8_t want, const std::string& diag_part) {
    size_t before = store_.size();
    auto r = kdc_->handle_token_post(post(tok), kNow);
    EXPECT_EQ(r.code, want) << std::string(as_string(r.payload));
    EXPECT_NE(std::string(as_string(r.payload)).find(diag_part), std::string::npos)
        << std::string(as_string(r.payload));
    EXPECT_FALSE(r.established);
    EXPECT_EQ(store_.size(), before);
  }

  struct Inactive {
    ContextKey key;
    Bytes cti;
    bool dropped;
  };
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom as_rand_{1};
  FakeRandom kdc_rand_{2};
  cose::CoseKey shared_;
  std::unique_ptr<AuthorizationServer> as_;
  std::unique_ptr<AsIntrospector> intro_;
  MemoryTokenStore store_;
  std::unique_ptr<AuthzInfo> kdc_;
  std::vector<Inactive> inactive_;
};

TEST_F(Introspection, FallbackAcceptsATokenTheKdcCannotReadWithTheAsClaims) {
  make_kdc(false, IntrospectMode::kFallback);
  Bytes tok = token("g1");
  auto r = kdc_->handle_token_post(post(tok), kNow);
  ASSERT_EQ(r.code, code::kCreated) << std::string(as_string(r.payload));
  ASSERT_TRUE(r.established);
  EXPECT_EQ(r.established->scope.entries.at(0).group, "g1");
  EXPECT_EQ(intro_->calls, 1);
  auto rec = store_.get(r.established->key);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->tokens.at(0).introspected);
  EXPECT_EQ(rec->tokens.at(0).cti, cti_of(tok));
  // The master secret came from the AS's answer (cnf): same context as the client's.
  EXPECT_EQ(r.established->params.master_secret.size(), 16u);
}

TEST_F(Introspection, FallbackLeavesLocallyVerifiedTokensAlone) {
  make_kdc(true, IntrospectMode::kFallback);
  auto r = kdc_->handle_token_post(post(token("g1")), kNow);
  ASSERT_EQ(r.code, code::kCreated);
  EXPECT_EQ(intro_->calls, 0);
  EXPECT_FALSE(store_.get(r.established->key)->tokens.at(0).introspected);
  // A tampered token does not verify locally: the AS is asked and says inactive.
  Bytes bad = token("g1");
  bad.back() ^= 0x01;
  expect_refused(bad, code::kUnauthorized, "not active");
  EXPECT_EQ(intro_->calls, 1);
}

TEST_F(Introspection, AlwaysModeRefusesARevokedTokenAndCachesTheAnswer) {
  make_kdc(true, IntrospectMode::kAlways);
  Bytes tok = token("g1");
  ASSERT_TRUE(as_->revoke(cti_of(tok)));
  expect_refused(tok, code::kUnauthorized, "not active");
  expect_refused(tok, code::kUnauthorized, "not active");
  EXPECT_EQ(intro_->calls, 1) << "the second refusal comes from the cache";
  EXPECT_EQ(kdc_->num_cached_introspections(), 1u);
  // A good token passes and is marked as checked at the AS.
  auto r = kdc_->handle_token_post(post(token("g2")), kNow);
  ASSERT_EQ(r.code, code::kCreated);
  EXPECT_TRUE(store_.get(r.established->key)->tokens.at(0).introspected);
}

TEST_F(Introspection, TokenForAnotherAudienceIs403FromTheAs) {
  make_kdc(false, IntrospectMode::kFallback);
  expect_refused(token("g1", "other"), code::kForbidden, "another audience");
}

TEST_F(Introspection, NoAnswerFromTheAs) {
  make_kdc(false, IntrospectMode::kFallback);
  intro_->down = true;
  expect_refused(token("g1"), code::kUnauthorized, "no answer from the AS");
  make_kdc(true, IntrospectMode::kAlways);
  expect_refused(token("g1"), code::kServiceUnavailable, "no answer");
  intro_->down = false;
  intro_->garbage = true;  // {10: true} plus a trailing break: not one CBOR item
  expect_refused(token("g1"), code::kServiceUnavailable, "no answer");
  EXPECT_EQ(kdc_->num_cached_introspections(), 0u);
}

TEST_F(Introspection, InstalledTokenRevokedIsRemovedAfterTheCacheTtl) {
  make_kdc(true, IntrospectMode::kAlways, /*ttl=*/30);
  Bytes t1 = token("g1");
  auto r = kdc_->handle_token_post(post(t1), kNow);
  ASSERT_EQ(r.code, code::kCreated);
  ContextKey key = r.established->key;
  ASSERT_TRUE(as_->revoke(cti_of(t1)));
  EXPECT_TRUE(kdc_->purge(kNow + 10).empty()) << "the cached answer is still fresh";
  EXPECT_TRUE(inactive_.empty());
  EXPECT_EQ(intro_->calls, 1);
  auto gone = kdc_->purge(kNow + 31);
  EXPECT_EQ(intro_->calls, 2);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], key);
  ASSERT_EQ(inactive_.size(), 1u);
  EXPECT_EQ(inactive_[0].key, key);
  EXPECT_EQ(inactive_[0].cti, cti_of(t1));
  EXPECT_TRUE(inactive_[0].dropped);
  EXPECT_FALSE(store_.get(key));
}

TEST_F(Introspection, RevocationOfOneOfTwoTokensKeepsTheContext) {
  make_kdc(true, IntrospectMode::kAlways, 30);
  Bytes t1 = token("g1");
  auto r = kdc_->handle_token_post(post(t1), kNow);
  ASSERT_EQ(r.code, code::kCreated);
  ContextKey key = r.established->key;
  // Same material again would replace the context; instead, add a second token via
  // the store as an update would (several tokens per client).
  Bytes t2 = token("g2");
  auto v = kdc_->validate_token(t2, kNow);
  ASSERT_TRUE(v);
  auto rec = *store_.get(key);
  rec.tokens.push_back(v->stored);
  ASSERT_TRUE(store_.put(rec));
  ASSERT_TRUE(as_->revoke(cti_of(t2)));
  EXPECT_TRUE(kdc_->purge(kNow + 31).empty());
  ASSERT_EQ(inactive_.size(), 1u);
  EXPECT_FALSE(inactive_[0].dropped);
  auto scope = kdc_->scope_of(key, kNow + 31);
  ASSERT_TRUE(scope);
  ASSERT_EQ(scope->entries.size(), 1u);
  EXPECT_EQ(scope->entries[0].group, "g1");
}

TEST_F(Introspection, AsDownOnRecheckKeepsTheToken) {
  make_kdc(true, IntrospectMode::kAlways, 30);
  auto r = kdc_->handle_token_post(post(token("g1")), kNow);
  ASSERT_EQ(r.code, code::kCreated);
  intro_->down = true;
  EXPECT_TRUE(kdc_->purge(kNow + 40).empty());
  EXPECT_TRUE(store_.get(r.established->key));
  EXPECT_EQ(intro_->calls, 2);
  // Re-checks pause for the cache TTL after an unanswered one.
  EXPECT_TRUE(kdc_->purge(kNow + 41).empty());
  EXPECT_EQ(intro_->calls, 2);
  intro_->down = false;
  ASSERT_TRUE(as_->revoke(cti_of(store_.get(r.established->key)->tokens.at(0).raw)));
  EXPECT_TRUE(kdc_->purge(kNow + 69).empty());
  EXPECT_EQ(intro_->calls, 2);
  EXPECT_EQ(kdc_->purge(kNow + 71).size(), 1u) << "re-checked after the pause: revoked";
  EXPECT_EQ(intro_->calls, 3);
}

TEST_F(Introspection, CacheIsBounded) {
  make_kdc(true, IntrospectMode::kAlways, 60, /*max_cache=*/2);
  for (int i = 0; i < 4; ++i) {
    Bytes t = token("g1");
    (void)kdc_->validate_token(t, kNow + i);
  }
  EXPECT_EQ(kdc_->num_cached_introspections(), 2u);
  EXPECT_EQ(intro_->calls, 4);
}

TEST_F(Introspection, CachedAnswerExpiresWithTheToken) {
  make_kdc(true, IntrospectMode::kAlways, 100000);
  Bytes t = token("g1");
  ASSERT_TRUE(kdc_->validate_token(t, kNow));
  ASSERT_TRUE(kdc_->validate_token(t, kNow + 1));
  EXPECT_EQ(intro_->calls, 1);
  auto late = kdc_->validate_token(t, kNow + 601);  // exp = kNow + 600
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, code::kUnauthorized);
  EXPECT_EQ(intro_->calls, 2);
}

TEST(IntrospectionResponseCodec, Decode) {
  auto a = IntrospectionResponse::decode(h("a10af5"));
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->active);
  auto b = IntrospectionResponse::decode(h("a10af4"));
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->active);
  // {10: true, 3: "kdc", 4: 1700000000, 9: h'01'}
  auto c = IntrospectionResponse::decode(h("a40af503636b6463041a6553f1000941" "01"));
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->claims.aud, "kdc");
  EXPECT_EQ(c->claims.exp->seconds(), 1700000000);
  EXPECT_EQ(IntrospectionResponse::decode(h("a0")).error().error, Error::kMissingParameter);
  EXPECT_EQ(IntrospectionResponse::decode(h("a10a01")).error().error, Error::kWrongType);
  EXPECT_EQ(IntrospectionResponse::decode(h("a20af50af5")).error().error, Error::kMalformed);  // duplicate
  EXPECT_EQ(IntrospectionResponse::decode(h("a20af50362")).error().error, Error::kMalformed);  // truncated
  EXPECT_EQ(IntrospectionResponse::decode(h("a20af50301")).error().error, Error::kWrongType);  // aud not text
  EXPECT_EQ(IntrospectionResponse::decode(h("80")).error().error, Error::kMalformed);
  EXPECT_EQ(IntrospectionResponse::decode(h("a10af500")).error().error, Error::kMalformed);  // trailing
}

}  // namespace
}  // namespace acekdc::ace
