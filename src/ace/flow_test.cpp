// AS + KDC (/authz-info) round trips and every refusal, sans-I/O; a token the AS
// reports inactive evicts its member through GroupManager (InactiveEviction).
#include <gtest/gtest.h>

#include <set>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "coap/message.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "groupcomm/token_inactive.h"
#include "kdc/memory_store.h"
#include "kdc/test_util.h"
#include "oscore/context.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

Bytes scope_bytes(std::vector<ScopeEntry> entries) { return encode_scope(Scope{std::move(entries)}); }

GroupConfig eddsa_group() {
  GroupConfig g;
  g.sign_info.sign_alg = int64_t{cp::alg::kEdDSA};
  g.sign_info.sign_parameters = cbor::Value::array({cbor::Value::integer(cp::kty::kOKP)});
  g.sign_info.sign_key_parameters =
      cbor::Value::array({cbor::Value::integer(cp::kty::kOKP), cbor::Value::integer(cp::crv::kEd25519)});
  g.pub_key_enc = cp::gc::kPubKeyEncCoseKey;
  return g;
}

class AceFlow : public ::testing::Test {
 protected:
  AceFlow() : shared_(cose::CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), as_bytes("kdc1"),
                                               cp::alg::kAES_CCM_16_64_128)) {
    AsPolicy pol;
    pol.issuer = "as.example";
    ClientPolicy c1;
    c1.id = "client1";
    c1.groups = {{"g1", kRoleRequester | kRoleResponder}, {"g2", kRoleMonitor}};
    c1.max_lifetime = 3600;
    ClientPolicy c2;
    c2.id = "client2";
    c2.groups = {{"g1", kRoleRequester}};
    c2.max_lifetime = 60;
    c2.audiences = {"kdc1"};
    pol.clients = {c1, c2};
    AudiencePolicy a1;
    a1.name = "kdc1";
    a1.shared_key = shared_;
    AudiencePolicy a2;  // another KDC that happens to share the key (for the audience check)
    a2.name = "kdc2";
    a2.shared_key = shared_;
    pol.audiences = {a1, a2};
    as_ = std::make_unique<AuthorizationServer>(*p_, as_rand_, pol);
    EXPECT_EQ(as_->validate(), "");

    AuthzInfoConfig cfg;
    cfg.audience = "kdc1";
    cfg.issuer = "as.example";
    cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", eddsa_group()}, {"g2", eddsa_group()}};
    cfg.groups["g2"].pub_key_enc.reset();
    kdc_ = std::make_unique<AuthzInfo>(*p_, kdc_rand_, store_, cfg);
  }

  TokenResponse get_token(const std::string& client, Bytes scope, std::optional<Bytes> kid = {},
                          int64_t now = kNow) {
    TokenRequest r;
    r.audience = "kdc1";
    r.scope = ScopeParam{false, std::move(scope)};
    if (kid) {
      r.req_cnf.emplace();
      r.req_cnf->kid = *kid;
    }
    AsResponse resp = as_->handle_token(client, r.encode(), now);
    EXPECT_EQ(resp.code, code::kCreated) << to_hex(resp.payload);
    auto t = TokenResponse::decode(resp.payload);
    EXPECT_TRUE(t) << (t ? "" : t.error().describe());
    return t ? *t : TokenResponse{};
  }

  int64_t as_error(const std::string& client, ByteView payload, uint8_t want_code) {
    AsResponse resp = as_->handle_token(client, payload, kNow);
    EXPECT_EQ(resp.code, want_code);
    auto e = ErrorResponse::decode(resp.payload);
    EXPECT_TRUE(e);
    return e ? e->error : -1;
  }

  Bytes post_payload(const Bytes& token, bool sign_info = false) {
    AuthzInfoRequest q;
    q.access_token = token;
    q.nonce1 = n1_;
    q.client_recipient_id = id1_;
    q.sign_info_requested = sign_info;
    q.pub_key_enc_requested = sign_info;
    return q.encode();
  }

  // expect_refused checks a token POST is refused with `want` and changes nothing.
  void expect_refused(ByteView payload, uint8_t want, const char* what, int64_t now = kNow) {
    size_t before = store_.size();
    auto r = kdc_->handle_token_post(payload, now);
    EXPECT_EQ(r.code, want) << what << ": " << as_string(r.payload);
    EXPECT_FALSE(r.payload.empty()) << what << ": a diagnostic is expected";
    EXPECT_FALSE(r.established) << what;
    EXPECT_EQ(store_.size(), before) << what;
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom as_rand_{11};
  FakeRandom kdc_rand_{22};
  cose::CoseKey shared_;
  std::unique_ptr<AuthorizationServer> as_;
  MemoryTokenStore store_;
  std::unique_ptr<AuthzInfo> kdc_;
  Bytes n1_ = h("018a278f7faab55a");
  Bytes id1_ = h("1645");
};

TEST_F(AceFlow, IssueAcceptDeriveAndTalkOscore) {
  Bytes scope = scope_bytes({{"g1", kRoleRequester}});
  TokenResponse t = get_token("client1", scope);
  EXPECT_EQ(t.ace_profile, cp::ace::kProfileCoapOscore);
  EXPECT_EQ(t.expires_in, 3600u);
  EXPECT_FALSE(t.scope) << "granted scope equals the requested one";
  ASSERT_TRUE(t.cnf && t.cnf->osc);
  const OscoreInputMaterial& osc = *t.cnf->osc;
  ASSERT_TRUE(osc.id && osc.ms && osc.salt);
  EXPECT_EQ(osc.ms->size(), 16u);

  // The token is COSE_Encrypt0 (tag 16) under the shared key and carries the claims.
  EXPECT_EQ(t.access_token.front(), 0xd0);
  cwt::VerifyOptions vo;
  vo.now = kNow;
  auto claims = cwt::verify(*p_, t.access_token, shared_, vo);
  ASSERT_TRUE(claims);
  EXPECT_EQ(*claims->iss, "as.example");
  EXPECT_EQ(*claims->aud, "kdc1");
  EXPECT_EQ(claims->exp->seconds(), kNow + 3600);
  EXPECT_EQ(claims->iat->seconds(), kNow);
  EXPECT_TRUE(claims->cti && !claims->cti->empty());
  EXPECT_EQ(*claims->scope->as_bytes(), scope);
  EXPECT_EQ(claims->ace_profile, cp::ace::kProfileCoapOscore);
  auto tcnf = Cnf::from_value(*claims->cnf);
  ASSERT_TRUE(tcnf && tcnf->osc);
  EXPECT_EQ(tcnf->osc->encode(), osc.encode());

  auto r = kdc_->handle_token_post(post_payload(t.access_token, true), kNow + 1);
  ASSERT_EQ(r.code, code::kCreated) << as_string(r.payload);
  EXPECT_TRUE(r.ace_cbor);
  EXPECT_FALSE(r.replaced);
  auto resp = AuthzInfoResponse::decode(r.payload);
  ASSERT_TRUE(resp);
  ASSERT_TRUE(resp->nonce2 && resp->server_recipient_id && resp->rsnonce);
  EXPECT_EQ(resp->nonce2->size(), 8u);
  EXPECT_EQ(resp->rsnonce->size(), 8u);
  EXPECT_NE(*resp->server_recipient_id, id1_);
  ASSERT_EQ(resp->sign_info.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(resp->sign_info[0].sign_alg), cp::alg::kEdDSA);
  ASSERT_EQ(resp->pub_key_enc.size(), 1u);
  EXPECT_EQ(resp->pub_key_enc[0], cp::gc::kPubKeyEncCoseKey);
  ASSERT_TRUE(r.established);
  EXPECT_EQ(r.established->rsnonce, *resp->rsnonce);
  EXPECT_EQ(kdc_->rsnonce(r.established->key), *resp->rsnonce);
  EXPECT_EQ(r.established->key.recipient_id, *resp->server_recipient_id);
  EXPECT_EQ(r.established->params.master_salt,
            build_master_salt(*osc.salt, n1_, *resp->nonce2));

  // The client derives the same context (mirrored) ...
  auto cp_ = derive_context_params(osc, n1_, *resp->nonce2, id1_, *resp->server_recipient_id, Side::kClient);
  ASSERT_TRUE(cp_);
  ClientTokenPost sent{post_payload(t.access_token, true), n1_, id1_};
  AuthzInfoResponse parsed;
  auto fin = finish_token_post(osc, sent, r.payload, &parsed);
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->master_salt, cp_->master_salt);
  EXPECT_EQ(fin->sender_id, cp_->sender_id);
  EXPECT_EQ(parsed.rsnonce, resp->rsnonce);
  // ... and an OSCORE request from the client verifies at the KDC.
  oscore::ContextConfig ccfg;
  ccfg.params = *cp_;
  oscore::ContextConfig scfg;
  scfg.params = r.established->params;
  auto client = oscore::Context::create(*p_, ccfg);
  auto server = oscore::Context::create(*p_, scfg);
  ASSERT_TRUE(client && server);
  coap::Message req(coap::Type::kCon, code::kPost, 7);
  req.token = h("aa");
  req.add_string(cp::coap::option::kUriPath, "ace-group");
  req.add_string(cp::coap::option::kUriPath, "g1");
  req.payload = h("a1 03 41 00");
  uint8_t out[512];
  oscore::Exchange cx;
  auto n = (*client)->protect_request(req, out, cx);
  ASSERT_TRUE(n);
  uint8_t dec[512];
  oscore::Exchange sx;
  auto d = (*server)->unprotect_request(ByteView(out, *n), dec, sx);
  ASSERT_TRUE(d) << oscore::to_string(d.error());
  auto plain = coap::Message::parse(ByteView(dec, *d));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->payload, req.payload);

  // The KDC's view of the client.
  auto sc = kdc_->scope_of(r.established->key, kNow + 2);
  ASSERT_TRUE(sc);
  EXPECT_TRUE(covers(*sc, "g1", kRoleRequester));
  EXPECT_FALSE(covers(*sc, "g1", kRoleResponder));
}

TEST_F(AceFlow, ClientHelpers) {
  TokenResponse t = get_token("client1", scope_bytes({{"g1", kRoleRequester}, {"g2", kRoleMonitor}}));
  FakeRandom crand(3);
  ClientTokenPost sent = prepare_token_post(t.access_token, id1_, crand, true);
  EXPECT_EQ(sent.nonce1.size(), 8u);
  auto r = kdc_->handle_token_post(sent.payload, kNow);
  ASSERT_EQ(r.code, code::kCreated) << as_string(r.payload);
  AuthzInfoResponse parsed;
  auto params = finish_token_post(*t.cnf->osc, sent, r.payload, &parsed);
  ASSERT_TRUE(params) << params.error().describe();
  EXPECT_EQ(params->sender_id, r.established->params.recipient_id);
  EXPECT_EQ(params->recipient_id, r.established->params.sender_id);
  EXPECT_EQ(params->master_salt, r.established->params.master_salt);
  // Two groups: sign_info and pub_key_enc per group, in scope order (g2 has no repository).
  ASSERT_EQ(parsed.sign_info.size(), 2u);
  ASSERT_EQ(parsed.pub_key_enc.size(), 2u);
  EXPECT_EQ(parsed.pub_key_enc[0], cp::gc::kPubKeyEncCoseKey);
  EXPECT_FALSE(parsed.pub_key_enc[1]);

  // The client stops when ID2 == ID1 or a parameter is missing.
  AuthzInfoResponse bad;
  bad.nonce2 = h("0102");
  bad.server_recipient_id = id1_;
  EXPECT_EQ(finish_token_post(*t.cnf->osc, sent, bad.encode()).error().error, Error::kBadValue);
  bad.server_recipient_id.reset();
  EXPECT_EQ(finish_token_post(*t.cnf->osc, sent, bad.encode()).error().error, Error::kMissingParameter);
  EXPECT_FALSE(finish_token_post(*t.cnf->osc, sent, h("ff")));
}

TEST_F(AceFlow, AsGrantsSubsetAndRefuses) {
  // Asks g1 requester+responder+... and g3 (not allowed); client2 may only be requester in g1.
  Bytes asked = scope_bytes({{"g1", kRoleRequester | kRoleResponder}, {"g3", kRoleRequester}});
  TokenResponse t = get_token("client2", asked);
  ASSERT_TRUE(t.scope);
  EXPECT_FALSE(t.scope->is_text);
  auto granted = parse_scope(t.scope->value);
  ASSERT_TRUE(granted);
  EXPECT_EQ(*granted, (Scope{{{"g1", kRoleRequester}}}));
  EXPECT_EQ(t.expires_in, 60u);
  cwt::VerifyOptions vo;
  vo.now = kNow;
  auto claims = cwt::verify(*p_, t.access_token, shared_, vo);
  ASSERT_TRUE(claims);
  EXPECT_EQ(*claims->scope->as_bytes(), t.scope->value);

  // An entry without role gets the allowed roles.
  TokenResponse t2 = get_token("client1", scope_bytes({{"g1", 0}}));
  ASSERT_TRUE(t2.scope);
  EXPECT_EQ(*parse_scope(t2.scope->value), (Scope{{{"g1", kRoleRequester | kRoleResponder}}}));

  size_t materials = as_->num_materials();
  TokenRequest r;
  r.audience = "kdc1";
  r.scope = ScopeParam{false, scope_bytes({{"g2", kRoleMonitor}})};
  EXPECT_EQ(as_error("client2", r.encode(), code::kBadRequest), cp::ace::kErrInvalidScope);
  r.scope = ScopeParam{true, to_bytes(as_bytes("g1"))};
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrInvalidScope);
  r.scope = ScopeParam{false, h("81 82 62 6731 63 666f6f")};  // unknown role "foo"
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrInvalidScope);
  r.scope.reset();
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrInvalidScope);
  r.scope = ScopeParam{false, scope_bytes({{"g1", kRoleRequester}})};
  r.audience = "nowhere";
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrInvalidRequest);
  r.audience = "kdc2";  // not among client2's audiences
  EXPECT_EQ(as_error("client2", r.encode(), code::kBadRequest), cp::ace::kErrInvalidRequest);
  r.audience = "kdc1";
  EXPECT_EQ(as_error("", r.encode(), code::kUnauthorized), cp::ace::kErrInvalidClient);
  EXPECT_EQ(as_error("mallory", r.encode(), code::kUnauthorized), cp::ace::kErrInvalidClient);
  r.client_id = "client2";
  EXPECT_EQ(as_error("client1", r.encode(), code::kUnauthorized), cp::ace::kErrInvalidClient);
  r.client_id.reset();
  r.grant_type = 0;  // password
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrUnsupportedGrantType);
  r.grant_type.reset();
  r.req_cnf.emplace();
  r.req_cnf->cose_key = cbor::Value::map();
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrUnsupportedPopKey);
  r.req_cnf.emplace();
  r.req_cnf->kid = h("0102030405");
  EXPECT_EQ(as_error("client1", r.encode(), code::kBadRequest), cp::ace::kErrInvalidRequest);
  EXPECT_EQ(as_error("client1", h("a2 05 61 61 05 61 61"), code::kBadRequest), cp::ace::kErrInvalidRequest);
  EXPECT_EQ(as_error("client1", h("ff"), code::kBadRequest), cp::ace::kErrInvalidRequest);
  EXPECT_EQ(as_->num_materials(), materials) << "errors must not change state";
}

TEST_F(AceFlow, ValidClientAskingAgainGetsNewToken) {
  Bytes scope = scope_bytes({{"g1", kRoleRequester}});
  TokenResponse a = get_token("client1", scope);
  TokenResponse b = get_token("client1", scope);
  EXPECT_NE(a.access_token, b.access_token);
  EXPECT_NE(*a.cnf->osc->id, *b.cnf->osc->id);
  EXPECT_NE(*a.cnf->osc->ms, *b.cnf->osc->ms);
  EXPECT_EQ(as_->num_materials(), 2u);
}

TEST_F(AceFlow, AsMaterialCapacity) {
  AsPolicy pol;
  ClientPolicy c;
  c.id = "c";
  c.groups = {{"g1", kRoleRequester}};
  pol.clients = {c};
  AudiencePolicy a;
  a.name = "kdc1";
  a.shared_key = shared_;
  pol.audiences = {a};
  pol.max_materials = 1;
  AuthorizationServer as(*p_, as_rand_, pol);
  TokenRequest r;
  r.scope = ScopeParam{false, scope_bytes({{"g1", kRoleRequester}})};
  EXPECT_EQ(as.handle_token("c", r.encode(), kNow).code, code::kCreated);
  EXPECT_EQ(as.handle_token("c", r.encode(), kNow).code, code::kServiceUnavailable);
  EXPECT_EQ(as.num_materials(), 1u);
  // Expired material is forgotten, making room again.
  EXPECT_EQ(as.handle_token("c", r.encode(), kNow + 3600).code, code::kCreated);
}

TEST_F(AceFlow, KdcRefusesBadTokensWithoutStateChange) {
  Bytes scope = scope_bytes({{"g1", kRoleRequester}});
  TokenResponse t = get_token("client1", scope);
  // Keep one accepted so that "no state change" means something.
  ASSERT_EQ(kdc_->handle_token_post(post_payload(get_token("client1", scope).access_token), kNow).code,
            code::kCreated);

  expect_refused(post_payload(t.access_token), code::kUnauthorized, "expired", kNow + 3600);
  Bytes tampered = t.access_token;
  tampered[tampered.size() - 3] ^= 0x01;
  expect_refused(post_payload(tampered), code::kUnauthorized, "tampered");

  // Another audience, same key: verifies, but aud is kdc2.
  TokenRequest other;
  other.audience = "kdc2";
  other.scope = ScopeParam{false, scope};
  auto o = TokenResponse::decode(as_->handle_token("client1", other.encode(), kNow).payload);
  ASSERT_TRUE(o);
  expect_refused(post_payload(o->access_token), code::kForbidden, "other audience");

  // Hand-made tokens under the shared key.
  auto make = [&](auto edit) {
    cwt::Claims c;
    c.iss = "as.example";
    c.aud = "kdc1";
    c.exp = kNow + 100;
    c.iat = kNow;
    c.scope = cbor::Value::bytes(scope);
    c.ace_profile = cp::ace::kProfileCoapOscore;
    Cnf cnf;
    cnf.osc.emplace();
    cnf.osc->id = h("77");
    cnf.osc->ms = Bytes(16, 0x42);
    c.cnf = cnf.to_value();
    edit(c);
    auto tok = cwt::create_encrypted(*p_, c, shared_);
    EXPECT_TRUE(tok);
    return post_payload(*tok);
  };
  auto ok = make([](cwt::Claims&) {});
  expect_refused(make([](cwt::Claims& c) { c.ace_profile = 1; }), code::kBadRequest, "wrong profile");
  expect_refused(make([](cwt::Claims& c) { c.iss = "evil-as"; }), code::kUnauthorized, "other issuer");
  expect_refused(make([](cwt::Claims& c) { c.nbf = kNow + 50; }), code::kUnauthorized, "not yet valid");
  expect_refused(make([](cwt::Claims& c) { c.aud.reset(); }), code::kForbidden, "no aud");
  expect_refused(make([](cwt::Claims& c) { c.exp.reset(); }), code::kBadRequest, "no exp");
  expect_refused(make([](cwt::Claims& c) { c.scope.reset(); }), code::kBadRequest, "no scope");
  expect_refused(make([](cwt::Claims& c) { c.scope = cbor::Value::text("g1"); }), code::kBadRequest, "text scope");
  expect_refused(make([&](cwt::Claims& c) { c.scope = cbor::Value::bytes(scope_bytes({{"g9", kRoleRequester}})); }),
                 code::kBadRequest, "unknown group");
  expect_refused(make([](cwt::Claims& c) { c.scope = cbor::Value::bytes(h("81 82 62 6731 63 666f6f")); }),
                 code::kBadRequest, "bad role");
  expect_refused(make([](cwt::Claims& c) { c.cnf.reset(); }), code::kBadRequest, "no cnf");
  expect_refused(make([](cwt::Claims& c) { c.cnf = cbor::Value::map({{cbor::Value::integer(3), cbor::Value::bytes(h("01"))}}); }),
                 code::kBadRequest, "cnf kid on an unprotected POST");
  expect_refused(make([](cwt::Claims& c) {
                   cbor::Value osc = cbor::Value::map();
                   osc.set(0, cbor::Value::bytes(h("01")));
                   osc.set(2, cbor::Value::bytes(Bytes(16, 1)));
                   osc.set(9, cbor::Value::integer(1));
                   c.cnf = cbor::Value::map({{cbor::Value::integer(4), osc}});
                 }),
                 code::kBadRequest, "unrecognized osc parameter");
  expect_refused(make([](cwt::Claims& c) {
                   Cnf cnf;
                   cnf.osc.emplace();
                   cnf.osc->ms = Bytes(16, 1);
                   c.cnf = cnf.to_value();
                 }),
                 code::kBadRequest, "osc without id");
  expect_refused(make([](cwt::Claims& c) {
                   Cnf cnf;
                   cnf.osc.emplace();
                   cnf.osc->id = h("01");
                   cnf.osc->ms = Bytes(16, 1);
                   cnf.osc->alg = int64_t{999};
                   c.cnf = cnf.to_value();
                 }),
                 code::kBadRequest, "unsupported AEAD");

  // Malformed payloads.
  expect_refused(h("80"), code::kBadRequest, "not a map");
  expect_refused(h(""), code::kBadRequest, "empty");
  expect_refused(h("a1 01 43 010203"), code::kBadRequest, "token garbage, no nonce1");
  AuthzInfoRequest q;
  q.access_token = h("d0 83 40 a0 40");
  q.nonce1 = n1_;
  q.client_recipient_id = id1_;
  expect_refused(q.encode(), code::kBadRequest, "token not a COSE message");
  q.access_token = h("0102");
  expect_refused(q.encode(), code::kBadRequest, "token garbage");
  AuthzInfoRequest no_id;
  no_id.access_token = t.access_token;
  no_id.nonce1 = n1_;
  expect_refused(no_id.encode(), code::kBadRequest, "no ace_client_recipientid");
  AuthzInfoRequest no_n1 = no_id;
  no_n1.nonce1.reset();
  no_n1.client_recipient_id = id1_;
  expect_refused(no_n1.encode(), code::kBadRequest, "no nonce1");
  AuthzInfoRequest long_id = no_n1;
  long_id.nonce1 = n1_;
  long_id.client_recipient_id = Bytes(8, 0x01);  // > 13 - 6 bytes for AES-CCM-16-64-128
  expect_refused(long_id.encode(), code::kBadRequest, "recipient ID too long");
  // Duplicate nonce1 key.
  Bytes dup = h("a4 01 40 18 28 41 01 18 2b 41 02 18 28 41 03");
  expect_refused(dup, code::kBadRequest, "duplicate key");
  expect_refused(h("a2 01 40 18 63 41 01"), code::kBadRequest, "unknown key");
  expect_refused(Bytes(4096, 0xa0), code::kRequestEntityTooLarge, "too large");

  // The hand-made base token itself is fine (the checks above are what failed).
  auto good = kdc_->handle_token_post(ok, kNow);
  EXPECT_EQ(good.code, code::kCreated) << as_string(good.payload);
}

TEST_F(AceFlow, RepostReplacesContextAndPurgeReportsExpiry) {
  TokenResponse t = get_token("client2", scope_bytes({{"g1", kRoleRequester}}));  // 60 s lifetime
  auto first = kdc_->handle_token_post(post_payload(t.access_token), kNow);
  ASSERT_EQ(first.code, code::kCreated);
  auto second = kdc_->handle_token_post(post_payload(t.access_token), kNow + 5);
  ASSERT_EQ(second.code, code::kCreated);
  ASSERT_TRUE(second.replaced);
  EXPECT_EQ(*second.replaced, first.established->key);
  EXPECT_NE(second.established->params.master_salt, first.established->params.master_salt);
  EXPECT_EQ(store_.size(), 1u);
  EXPECT_TRUE(kdc_->purge(kNow + 59).empty());
  auto gone = kdc_->purge(kNow + 60);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], second.established->key);
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_FALSE(kdc_->scope_of(gone[0], kNow + 60));
}

TEST_F(AceFlow, UpdateOfAccessRightsOverExistingChannel) {
  TokenResponse t = get_token("client1", scope_bytes({{"g1", kRoleRequester}}));
  auto post = kdc_->handle_token_post(post_payload(t.access_token), kNow);
  ASSERT_EQ(post.code, code::kCreated);
  ContextKey key = post.established->key;
  Bytes id = *t.cnf->osc->id;

  // A second token for another group, bound to the same material (req_cnf kid).
  TokenResponse u = get_token("client1", scope_bytes({{"g2", kRoleMonitor}}), id, kNow + 10);
  EXPECT_FALSE(u.cnf) << "RFC 9203 §4.2: no cnf in an update response";
  cwt::VerifyOptions vo;
  vo.now = kNow + 10;
  auto claims = cwt::verify(*p_, u.access_token, shared_, vo);
  ASSERT_TRUE(claims);
  auto ucnf = Cnf::from_value(*claims->cnf);
  ASSERT_TRUE(ucnf && ucnf->kid);
  EXPECT_EQ(*ucnf->kid, id);

  // Over the existing OSCORE channel: kept beside the first token.
  AuthzInfoRequest q;
  q.access_token = u.access_token;
  q.sign_info_requested = true;
  auto up = kdc_->handle_token_update(key, q.encode(), kNow + 11);
  ASSERT_EQ(up.code, code::kCreated) << as_string(up.payload);
  auto resp = AuthzInfoResponse::decode(up.payload);
  ASSERT_TRUE(resp);
  EXPECT_FALSE(resp->nonce2);
  EXPECT_FALSE(resp->server_recipient_id);
  ASSERT_TRUE(resp->rsnonce);
  EXPECT_NE(*resp->rsnonce, post.established->rsnonce);
  EXPECT_EQ(resp->sign_info.size(), 1u);
  ASSERT_TRUE(up.updated_scope);
  EXPECT_TRUE(covers(*up.updated_scope, "g1", kRoleRequester));
  EXPECT_TRUE(covers(*up.updated_scope, "g2", kRoleMonitor));

  // A token for g1 with more roles replaces the first g1 token.
  TokenResponse u2 = get_token("client1", scope_bytes({{"g1", kRoleRequester | kRoleResponder}}), id, kNow + 20);
  q.access_token = u2.access_token;
  q.sign_info_requested = false;
  ASSERT_EQ(kdc_->handle_token_update(key, q.encode(), kNow + 21).code, code::kCreated);
  auto sc = kdc_->scope_of(key, kNow + 22);
  ASSERT_TRUE(sc);
  EXPECT_TRUE(covers(*sc, "g1", kRoleRequester | kRoleResponder));
  EXPECT_EQ(store_.get(key)->tokens.size(), 2u);

  // Refusals: a token bound to other material, an unknown channel, a fresh-material token.
  TokenResponse other = get_token("client1", scope_bytes({{"g1", kRoleRequester}}));
  q.access_token = other.access_token;
  EXPECT_EQ(kdc_->handle_token_update(key, q.encode(), kNow + 30).code, code::kUnauthorized);
  q.access_token = u.access_token;
  EXPECT_EQ(kdc_->handle_token_update(ContextKey{h("99"), {}}, q.encode(), kNow + 30).code, code::kUnauthorized);
  Bytes tampered = u.access_token;
  tampered.back() ^= 0x80;
  q.access_token = tampered;
  EXPECT_EQ(kdc_->handle_token_update(key, q.encode(), kNow + 30).code, code::kUnauthorized);
  EXPECT_EQ(store_.get(key)->tokens.size(), 2u);

  // REQ17 helpers.
  auto fresh = kdc_->fresh_rsnonce(key);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(kdc_->rsnonce(key), *fresh);
  EXPECT_FALSE(kdc_->fresh_rsnonce(ContextKey{h("99"), {}}));
}

TEST_F(AceFlow, Sign1TokensNestedInEncrypt0) {
  auto kp = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  cose::CoseKey as_key = cose::CoseKey::from_keypair(*kp, as_bytes("as-key"), cp::alg::kEdDSA);
  AsPolicy pol;
  pol.issuer = "as.example";
  pol.signing_key = as_key;
  ClientPolicy c;
  c.id = "c";
  c.groups = {{"g1", kRoleRequester}};
  pol.clients = {c};
  AudiencePolicy a;
  a.name = "kdc1";
  a.protection = TokenProtection::kSign1;
  a.shared_key = shared_;
  pol.audiences = {a};
  FakeRandom rnd(5);
  AuthorizationServer as(*p_, rnd, pol);
  ASSERT_EQ(as.validate(), "");
  TokenRequest r;
  r.scope = ScopeParam{false, scope_bytes({{"g1", kRoleRequester}})};  // audience implied
  AsResponse resp = as.handle_token("c", r.encode(), kNow);
  ASSERT_EQ(resp.code, code::kCreated);
  auto t = TokenResponse::decode(resp.payload);
  ASSERT_TRUE(t);

  // A KDC that only has the shared key cannot check the signature.
  EXPECT_EQ(kdc_->handle_token_post(post_payload(t->access_token), kNow).code, code::kUnauthorized);
  AuthzInfoConfig cfg = kdc_->config();
  cfg.as_keys.keys.push_back(as_key.public_key());
  AuthzInfo kdc(*p_, kdc_rand_, store_, cfg);
  auto ok = kdc.handle_token_post(post_payload(t->access_token), kNow);
  EXPECT_EQ(ok.code, code::kCreated) << as_string(ok.payload);
}

TEST_F(AceFlow, Introspection) {
  TokenResponse t = get_token("client1", scope_bytes({{"g1", kRoleRequester}}));
  IntrospectionRequest q{t.access_token};
  AsResponse r = as_->handle_introspect("kdc1", q.encode(), kNow + 1);
  ASSERT_EQ(r.code, code::kCreated);
  auto v = cbor::decode(r.payload);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->find(cp::ace::kActive)->as_bool(), true);
  EXPECT_EQ(*v->find(cp::claim::kAud)->as_text(), "kdc1");
  EXPECT_EQ(v->find(cp::claim::kExp)->as_int(), kNow + 3600);
  EXPECT_EQ(v->find(cp::claim::kAceProfile)->as_int(), cp::ace::kProfileCoapOscore);
  ASSERT_TRUE(v->find(cp::claim::kCnf));
  ASSERT_TRUE(v->find(cp::claim::kScope));

  AsResponse expired = as_->handle_introspect("kdc1", q.encode(), kNow + 3600);
  ASSERT_EQ(expired.code, code::kCreated);
  EXPECT_EQ(to_hex(expired.payload), "a10af4");  // {active: false}
  Bytes bad = t.access_token;
  bad[bad.size() - 1] ^= 1;
  EXPECT_EQ(to_hex(as_->handle_introspect("kdc1", IntrospectionRequest{bad}.encode(), kNow).payload), "a10af4");
  EXPECT_EQ(as_->handle_introspect("kdc2", q.encode(), kNow).code, code::kForbidden);
  EXPECT_EQ(as_->handle_introspect("client1", q.encode(), kNow).code, code::kUnauthorized);
  EXPECT_EQ(as_->handle_introspect("kdc1", h("a0"), kNow).code, code::kBadRequest);
}

TEST_F(AceFlow, RecipientIdsAreTheShortestFreeOnesAndUnique) {
  std::set<Bytes> seen;
  Bytes scope = scope_bytes({{"g1", kRoleRequester}});
  for (int i = 0; i < 300; ++i) {
    TokenResponse t = get_token("client1", scope);
    auto r = kdc_->handle_token_post(post_payload(t.access_token), kNow);
    ASSERT_EQ(r.code, code::kCreated);
    const Bytes& id = r.established->key.recipient_id;
    if (i == 0) EXPECT_EQ(id, h("00"));
    if (i == 255) EXPECT_EQ(id, h("ff"));
    if (i == 256) EXPECT_EQ(id, h("0100"));
    EXPECT_TRUE(seen.insert(id).second) << to_hex(id);
  }
  EXPECT_EQ(store_.size(), 300u);
}

// ---- a token the AS reports inactive evicts its member (issue 5) ----

class InactiveEviction : public ::testing::Test {
 protected:
  InactiveEviction()
      : shared_(cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128)),
        gate_(*p_) {
    AsPolicy pol;
    pol.issuer = "as";
    ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", kRoleRequester}};
    c.max_lifetime = 600;
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared_;
    pol.audiences = {a};
    as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol);
    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.issuer = "as";
    cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", GroupConfig{}}};
    authz_ = std::make_unique<AuthzInfo>(*p_, rnd_, tokens_, cfg);
    IntrospectionConfig ic;
    ic.mode = IntrospectMode::kAlways;
    ic.cache_ttl = 10;
    authz_->set_deferred_introspection(ic);
    EXPECT_TRUE(store_.create_group(kdc::testing::sample_config("g1"), kdc::testing::sample_key(0, 1, kNow)));
    binding_ = std::make_unique<groupcomm::GroupCoapBinding>(*authz_, tokens_, store_, mgr_);
    gate_.serve_kdc(*authz_);
    binding_->attach(gate_);
    // What acekdc serve's handler does (cmd_serve.cpp): evict, then push.
    authz_->set_token_inactive_handler([this](const ContextKey&, const StoredToken& t, bool dropped) {
      auto r = groupcomm::evict_for_inactive_token(store_, mgr_, t.cti, now_);
      ASSERT_TRUE(r);
      evicted_ += r->num_evicted;
      context_dropped_ = dropped;
      binding_->poll(now_);
    });
  }

  // introspect_all answers every queued introspection request with the AS core.
  AceCoapGate::IntrospectionDone introspect_all() {
    AceCoapGate::IntrospectionDone all;
    for (auto& p : gate_.take_introspections()) {
      AsResponse r = as_->handle_introspect("kdc", p.request, now_);
      auto d = gate_.complete_introspection(p.token, IntrospectionReply{r.code, r.payload}, now_);
      for (auto& a : d.answers) all.answers.push_back(std::move(a));
      for (auto& k : d.dropped) all.dropped.push_back(k);
    }
    return all;
  }

  // call: a request over the client's context; returns the decrypted answer.
  coap::Message call(oscore::Context& ctx, coap::Message req) {
    uint8_t buf[2048];
    oscore::Exchange ex;
    auto n = ctx.protect_request(req, buf, ex);
    EXPECT_TRUE(n);
    Bytes out = gate_.handle(ByteView(buf, n ? *n : 0), now_, peer_);
    uint8_t dec[2048];
    auto d = ctx.unprotect_response(out, ex, dec);
    EXPECT_TRUE(d);
    auto m = d ? coap::Message::parse(ByteView(dec, *d)) : Expected<coap::Message, coap::Error>(coap::Message{});
    return m ? *m : coap::Message{};
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{4};
  cose::CoseKey shared_;
  std::unique_ptr<AuthorizationServer> as_;
  MemoryTokenStore tokens_;
  std::unique_ptr<AuthzInfo> authz_;
  kdc::MemoryStore store_;
  groupcomm::GroupManager mgr_{store_, *p_, rnd_};
  std::unique_ptr<groupcomm::GroupCoapBinding> binding_;
  AceCoapGate gate_;
  coap::Address peer_ = *coap::Address::parse("127.0.0.1:40001");
  int64_t now_ = kNow;
  size_t evicted_ = 0;
  bool context_dropped_ = false;
};

TEST_F(InactiveEviction, RevokedTokenEvictsTheMemberRekeysAndDeletesItsControlPath) {
  // Token, token POST (checked at the AS), join with a control path.
  TokenRequest tr;
  tr.audience = "kdc";
  tr.scope = ScopeParam{false, scope_bytes({{"g1", kRoleRequester}})};
  AsResponse tresp = as_->handle_token("client1", tr.encode(), now_);
  ASSERT_EQ(tresp.code, code::kCreated);
  auto t = TokenResponse::decode(tresp.payload);
  ASSERT_TRUE(t && t->cnf && t->cnf->osc);
  ClientTokenPost sent = prepare_token_post(t->access_token, h("42"), rnd_);
  coap::Message tp(coap::Type::kCon, code::kPost, 1);
  tp.set_uri_path("/authz-info");
  tp.payload = sent.payload;
  EXPECT_TRUE(gate_.handle(*tp.encode(), now_, peer_).empty()) << "parked for the AS";
  auto done = introspect_all();
  ASSERT_EQ(done.answers.size(), 1u);
  auto posted = coap::Message::parse(done.answers[0].datagram);
  ASSERT_TRUE(posted);
  ASSERT_EQ(posted->code, code::kCreated) << as_string(posted->payload);
  auto params = finish_token_post(*t->cnf->osc, sent, posted->payload);
  ASSERT_TRUE(params);
  oscore::ContextConfig cc;
  cc.params = *params;
  auto client = oscore::Context::create(*p_, cc);
  ASSERT_TRUE(client);

  ContextKey key = tokens_.keys().at(0);
  Bytes rsnonce = tokens_.get(key)->rsnonce;
  auto kp = p_->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  cose::CoseKey mk = cose::CoseKey::from_keypair(*kp);
  Bytes scope = scope_bytes({{"g1", kRoleRequester}});
  Bytes cred = mk.encode(false);
  Bytes n_c = {1, 2, 3, 4, 5, 6, 7, 8};
  Bytes sig = *groupcomm::sign_pop(*p_, cp::alg::kEdDSA, mk, rsnonce, n_c);
  groupcomm::JoinRequest jr;
  jr.scope = scope;
  jr.client_cred = cred;
  jr.cnonce = n_c;
  jr.client_cred_verify = sig;
  jr.control_path = "member/cp";
  coap::Message join(coap::Type::kCon, code::kPost, 2);
  join.set_uri_path("/ace-group/g1");
  join.set_uint(cp::coap::option::kContentFormat, cp::cf::kAceGroupcommCbor);
  join.payload = groupcomm::encode_join_request(jr);
  coap::Message joined = call(**client, join);
  ASSERT_EQ(joined.code, code::kCreated) << as_string(joined.payload);
  ASSERT_EQ(store_.load_group("g1")->members.size(), 1u);
  // The serve loop ticks: the next eviction check is now at the token's exp.
  EXPECT_EQ(mgr_.tick(now_).num_evicted, 0u);
  EXPECT_GT(mgr_.next_deadline(), kNow + 60);
  binding_->poll(now_);
  const uint64_t num_before = store_.load_group("g1")->key.num;
  (void)mgr_.take_evictions();
  (void)gate_.take_outgoing();

  // Revoked at the AS. Within the cache TTL nothing happens; after it the re-check is
  // queued (purge does not wait), and the AS's answer evicts the member.
  cwt::VerifyOptions vo;
  vo.check_time = false;
  auto claims = cwt::verify(*p_, t->access_token, shared_, vo);
  ASSERT_TRUE(claims && claims->cti);
  ASSERT_TRUE(as_->revoke(*claims->cti));
  now_ = kNow + 5;
  EXPECT_TRUE(gate_.purge(now_).empty());
  EXPECT_TRUE(gate_.take_introspections().empty());
  now_ = kNow + 11;
  EXPECT_TRUE(gate_.purge(now_).empty());
  EXPECT_EQ(store_.load_group("g1")->members.size(), 1u) << "nothing before the AS answered";
  done = introspect_all();
  EXPECT_EQ(done.dropped.size(), 1u);
  EXPECT_TRUE(context_dropped_);
  EXPECT_EQ(evicted_, 1u);
  auto g = store_.load_group("g1");
  EXPECT_EQ(g->members.size(), 0u) << "evicted";
  EXPECT_GT(g->key.num, num_before) << "rekeyed per the group's policy";
  auto ev = mgr_.take_evictions();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].control_path, "member/cp");
  EXPECT_EQ(binding_->push_stats().control_deletes, 1u);
  auto out = gate_.take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].peer, peer_);
  EXPECT_EQ(gate_.num_kdc_contexts(), 0u);
  EXPECT_EQ(tokens_.size(), 0u);
  // The KDC store keeps the token as dead (exp = the revocation time).
  auto rec = store_.get_token(*claims->cti);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->exp, kNow + 11);
}

}  // namespace
}  // namespace acekdc::ace
