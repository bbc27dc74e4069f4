// The CoAP binding end to end: a client gets a token from the AS over OSCORE, posts it
// to the KDC's /authz-info, then updates its access rights over the derived context.
#include "ace/coap_gate.h"

#include <gtest/gtest.h>

#include "ace/oscore_profile.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

std::unique_ptr<oscore::Context> make_ctx(crypto::Provider& p, ByteView sender, ByteView recipient) {
  oscore::ContextConfig cfg;
  cfg.params.master_secret = h("0102030405060708090a0b0c0d0e0f10");
  cfg.params.master_salt = h("9e7ca92223786340");
  cfg.params.sender_id = to_bytes(sender);
  cfg.params.recipient_id = to_bytes(recipient);
  auto c = oscore::Context::create(p, std::move(cfg));
  EXPECT_TRUE(c);
  return c ? std::move(*c) : nullptr;
}

class GateTest : public ::testing::Test {
 protected:
  GateTest()
      : shared_(cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128)),
        as_gate_(*p_),
        kdc_gate_(*p_) {
    AsPolicy pol;
    ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", kRoleRequester}, {"g2", kRoleResponder}};
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared_;
    pol.audiences = {a};
    as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol);
    as_gate_.serve_as(*as_);
    as_gate_.add_peer("client1", make_ctx(*p_, h("a5"), h("c1")));  // AS side
    client_as_ = make_ctx(*p_, h("c1"), h("a5"));                     // client side

    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", GroupConfig{}}, {"g2", GroupConfig{}}};
    kdc_ = std::make_unique<AuthzInfo>(*p_, rnd_, store_, cfg);
    kdc_gate_.serve_kdc(*kdc_);
  }

  // exchange sends `req` protected with `ctx` through `gate` and returns the decrypted response.
  coap::Message exchange(oscore::Context& ctx, AceCoapGate& gate, const coap::Message& req) {
    uint8_t out[2048];
    oscore::Exchange ex;
    auto n = ctx.protect_request(req, out, ex);
    EXPECT_TRUE(n);
    Bytes wire = gate.handle(ByteView(out, *n), kNow);
    EXPECT_FALSE(wire.empty());
    uint8_t dec[2048];
    auto d = ctx.unprotect_response(wire, ex, dec);
    EXPECT_TRUE(d) << (d ? "" : oscore::to_string(d.error()));
    auto m = coap::Message::parse(ByteView(dec, d ? *d : 0));
    EXPECT_TRUE(m);
    return m ? *m : coap::Message{};
  }

  coap::Message plain(AceCoapGate& gate, const coap::Message& req) {
    auto enc = req.encode();
    EXPECT_TRUE(enc);
    Bytes wire = gate.handle(*enc, kNow);
    auto m = coap::Message::parse(wire);
    EXPECT_TRUE(m);
    return m ? *m : coap::Message{};
  }

  coap::Message post(std::string_view path, Bytes payload, uint16_t mid) {
    coap::Message m(coap::Type::kCon, code::kPost, mid);
    m.token = h("0a0b");
    m.set_uri_path(path);
    m.set_uint(option::kContentFormat, cp::cf::kAceCbor);
    m.payload = std::move(payload);
    return m;
  }

  Bytes token_request(Bytes scope, std::optional<Bytes> kid = {}) {
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, std::move(scope)};
    if (kid) {
      r.req_cnf.emplace();
      r.req_cnf->kid = *kid;
    }
    return r.encode();
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{1};
  cose::CoseKey shared_;
  std::unique_ptr<AuthorizationServer> as_;
  AceCoapGate as_gate_;
  std::unique_ptr<oscore::Context> client_as_;
  MemoryTokenStore store_;
  std::unique_ptr<AuthzInfo> kdc_;
  AceCoapGate kdc_gate_;
};

TEST_F(GateTest, TokenOverOscoreThenAuthzInfoThenUpdate) {
  // 1. Token request over OSCORE: the AS sees "client1".
  coap::Message resp = exchange(*client_as_, as_gate_, post("/token", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 1));
  ASSERT_EQ(resp.code, code::kCreated) << to_hex(resp.payload);
  EXPECT_EQ(resp.get_uint(option::kContentFormat), cp::cf::kAceCbor);
  auto t = TokenResponse::decode(resp.payload);
  ASSERT_TRUE(t && t->cnf && t->cnf->osc);

  // 2. Unprotected token POST to the KDC; the gate keeps the derived context.
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t->access_token, h("42"), crand);
  coap::Message r2 = plain(kdc_gate_, post("/authz-info", sent.payload, 2));
  ASSERT_EQ(r2.code, code::kCreated) << as_string(r2.payload);
  EXPECT_EQ(r2.type, coap::Type::kAck);
  EXPECT_EQ(r2.message_id, 2);
  EXPECT_EQ(r2.token, h("0a0b"));
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 1u);
  auto params = finish_token_post(*t->cnf->osc, sent, r2.payload);
  ASSERT_TRUE(params);
  oscore::ContextConfig ccfg;
  ccfg.params = *params;
  auto client_kdc = oscore::Context::create(*p_, ccfg);
  ASSERT_TRUE(client_kdc);

  // 3. A token for g2 bound to the same material, posted over the new OSCORE channel.
  coap::Message r3 = exchange(*client_as_, as_gate_,
                              post("/token", token_request(encode_scope(Scope{{{"g2", kRoleResponder}}}), *t->cnf->osc->id), 3));
  ASSERT_EQ(r3.code, code::kCreated);
  auto t2 = TokenResponse::decode(r3.payload);
  ASSERT_TRUE(t2);
  EXPECT_FALSE(t2->cnf);
  AuthzInfoRequest upd;
  upd.access_token = t2->access_token;
  coap::Message r4 = exchange(**client_kdc, kdc_gate_, post("/authz-info", upd.encode(), 4));
  ASSERT_EQ(r4.code, code::kCreated) << as_string(r4.payload);
  auto u = AuthzInfoResponse::decode(r4.payload);
  ASSERT_TRUE(u && u->rsnonce);
  ContextKey key{params->sender_id, std::nullopt};
  ASSERT_TRUE(kdc_gate_.kdc_context(key));
  auto sc = kdc_->scope_of(key, kNow);
  ASSERT_TRUE(sc);
  EXPECT_TRUE(covers(*sc, "g1", kRoleRequester));
  EXPECT_TRUE(covers(*sc, "g2", kRoleResponder));

  // Unknown path and method over OSCORE.
  coap::Message get(coap::Type::kCon, code::kGet, 5);
  get.set_uri_path("/authz-info");
  EXPECT_EQ(exchange(**client_kdc, kdc_gate_, get).code, code::kMethodNotAllowed);
  get.set_uri_path("/nothing");
  EXPECT_EQ(exchange(**client_kdc, kdc_gate_, get).code, code::kNotFound);

  // With a resource handler, other paths over the KDC context reach it, with the
  // context's key, and its answer is protected with the same context.
  std::optional<ContextKey> seen;
  kdc_gate_.set_kdc_resource_handler([&](const ContextKey& via, const coap::Message& req, coap::Message& out, int64_t) {
    seen = via;
    out.code = code::kContent;
    out.payload = req.payload;
    out.payload.push_back(0x99);
  });
  get.set_uri_path("/ace-group/g1");
  coap::Message r5 = exchange(**client_kdc, kdc_gate_, get);
  EXPECT_EQ(r5.code, code::kContent);
  EXPECT_EQ(r5.payload, h("99"));
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, key);
  get.set_uri_path("/authz-info");  // still the gate's own
  EXPECT_EQ(exchange(**client_kdc, kdc_gate_, get).code, code::kMethodNotAllowed);

  // Purge after expiry drops the context.
  EXPECT_EQ(kdc_gate_.purge(kNow + 7200).size(), 1u);
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 0u);
}

TEST_F(GateTest, UnauthenticatedAndUnknownContexts) {
  // /token without OSCORE: invalid_client.
  coap::Message r = plain(as_gate_, post("/token", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 9));
  EXPECT_EQ(r.code, code::kUnauthorized);
  auto e = ErrorResponse::decode(r.payload);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error, cp::ace::kErrInvalidClient);
  // A bad token POST: 4.00 with a diagnostic, no context.
  coap::Message b = plain(kdc_gate_, post("/authz-info", h("a0"), 10));
  EXPECT_EQ(b.code, code::kBadRequest);
  EXPECT_FALSE(b.payload.empty());
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 0u);
  // An OSCORE request for a context nobody has: 4.01 from the OSCORE layer.
  auto stranger = make_ctx(*p_, h("77"), h("78"));
  uint8_t out[512];
  oscore::Exchange ex;
  auto n = stranger->protect_request(post("/token", h("a0"), 11), out, ex);
  ASSERT_TRUE(n);
  Bytes wire = as_gate_.handle(ByteView(out, *n), kNow);
  auto m = coap::Message::parse(wire);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->code, code::kUnauthorized);
  // Not a request / garbage: nothing to send.
  EXPECT_TRUE(as_gate_.handle(h("ff"), kNow).empty());
}


// The AS's answers over OSCORE to requests it does not serve or cannot parse: each
// error as RFC 9200 / RFC 7252 name it, protected with the client's context, and the
// outer message an ACK echoing the request's Message ID and token.
TEST_F(GateTest, AsErrorAnswersOverOscore) {
  struct Case {
    coap::Message req;
    uint8_t want;
    int ace_error;  // the ace+cbor error body's code, 0: none
  };
  coap::Message get_token(coap::Type::kCon, code::kGet, 20);
  get_token.token = h("0a0b");
  get_token.set_uri_path("/token");
  std::vector<Case> cases;
  cases.push_back({get_token, code::kMethodNotAllowed, 0});
  cases.push_back({post("/token", h("a0"), 21), code::kBadRequest, cp::ace::kErrInvalidScope});  // no scope
  cases.push_back({post("/token", h("ff00"), 22), code::kBadRequest, cp::ace::kErrInvalidRequest});  // not CBOR
  cases.push_back({post("/introspect", h("a0"), 23), code::kUnauthorized, 0});  // a client, not an RS
  cases.push_back({post("/token/x", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 24),
                   code::kNotFound, 0});
  cases.push_back({post("/tok", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 25),
                   code::kNotFound, 0});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.req.message_id);
    uint8_t out[2048];
    oscore::Exchange ex;
    auto n = client_as_->protect_request(c.req, out, ex);
    ASSERT_TRUE(n);
    Bytes wire = as_gate_.handle(ByteView(out, *n), kNow);
    auto outer = coap::Message::parse(wire);
    ASSERT_TRUE(outer);
    EXPECT_EQ(outer->type, coap::Type::kAck);
    EXPECT_EQ(outer->message_id, c.req.message_id);
    EXPECT_EQ(outer->token, c.req.token);
    uint8_t dec[2048];
    auto d = client_as_->unprotect_response(wire, ex, dec);
    ASSERT_TRUE(d) << oscore::to_string(d.error());
    auto inner = coap::Message::parse(ByteView(dec, *d));
    ASSERT_TRUE(inner);
    EXPECT_EQ(inner->code, c.want) << coap::code_string(inner->code);
    if (c.ace_error != 0) {
      EXPECT_EQ(inner->get_uint(option::kContentFormat), cp::cf::kAceCbor);
      auto e = ErrorResponse::decode(inner->payload);
      ASSERT_TRUE(e);
      EXPECT_EQ(e->error, c.ace_error);
    }
  }
  // The AS still answers a good request on the same context afterwards.
  coap::Message ok = exchange(*client_as_, as_gate_, post("/token", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 26));
  EXPECT_EQ(ok.code, code::kCreated);
}

// A KDC restart: the restored context's replay window is unknown, so the gate makes the
// client prove freshness with an Echo round before serving anything (RFC 8613 B.1.2).
TEST_F(GateTest, RestoredContextNeedsEchoAndRefusesReplays) {
  coap::Message resp = exchange(*client_as_, as_gate_, post("/token", token_request(encode_scope(Scope{{{"g1", kRoleRequester}}})), 1));
  ASSERT_EQ(resp.code, code::kCreated);
  auto t = TokenResponse::decode(resp.payload);
  ASSERT_TRUE(t && t->cnf && t->cnf->osc);
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t->access_token, h("42"), crand);
  coap::Message r2 = plain(kdc_gate_, post("/authz-info", sent.payload, 2));
  ASSERT_EQ(r2.code, code::kCreated);
  auto params = finish_token_post(*t->cnf->osc, sent, r2.payload);
  ASSERT_TRUE(params);
  oscore::ContextConfig ccfg;
  ccfg.params = *params;
  auto client = oscore::Context::create(*p_, ccfg);
  ASSERT_TRUE(client);

  int served = 0;
  auto handler = [&](const ContextKey&, const coap::Message&, coap::Message& out, int64_t) {
    ++served;
    out.code = code::kContent;
  };
  kdc_gate_.set_kdc_resource_handler(handler);
  // send: protect `req` (plus an inner Echo if given), return the wire request.
  auto protect = [&](uint16_t mid, std::optional<Bytes> echo, oscore::Exchange& ex) {
    coap::Message req(coap::Type::kCon, code::kGet, mid);
    req.token = h("77");
    req.set_uri_path("/ace-group/g1");
    if (echo) req.set_option(option::kEcho, *echo);
    uint8_t out[1024];
    auto n = (*client)->protect_request(req, out, ex);
    EXPECT_TRUE(n);
    return Bytes(out, out + (n ? *n : 0));
  };
  auto open = [&](const Bytes& wire, oscore::Exchange& ex) -> std::optional<coap::Message> {
    uint8_t dec[1024];
    auto d = (*client)->unprotect_response(wire, ex, dec);
    if (!d) return std::nullopt;
    auto m = coap::Message::parse(ByteView(dec, *d));
    return m ? std::optional<coap::Message>(*m) : std::nullopt;
  };
  oscore::Exchange ex_old;
  Bytes before = protect(3, std::nullopt, ex_old);
  auto a = open(kdc_gate_.handle(before, kNow), ex_old);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, code::kContent);
  EXPECT_EQ(served, 1);

  // Restart: a new gate over the same AuthzInfo state.
  AceCoapGate gate(*p_);
  gate.serve_kdc(*kdc_);
  gate.set_kdc_resource_handler(handler);
  ASSERT_EQ(gate.restore_kdc_contexts(store_), 1u);
  // The pre-restart request replayed: not served (answered with a challenge at most).
  Bytes replayed = gate.handle(before, kNow);
  EXPECT_EQ(served, 1);
  auto rm = open(replayed, ex_old);
  if (rm) {
    EXPECT_EQ(rm->code, code::kUnauthorized);
    EXPECT_TRUE(rm->find(option::kEcho));
  }
  // A fresh request: a protected 4.01 carrying the Echo challenge.
  oscore::Exchange ex1;
  auto c = open(gate.handle(protect(4, std::nullopt, ex1), kNow), ex1);
  ASSERT_TRUE(c) << "the challenge is OSCORE-protected";
  EXPECT_EQ(c->code, code::kUnauthorized);
  const auto* echo = c->find(option::kEcho);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->value.size(), 8u);
  EXPECT_EQ(served, 1);
  EXPECT_GE(gate.num_echo_challenges(), 1u);
  // A wrong Echo value does not pass.
  oscore::Exchange ex_bad;
  Bytes wrong = echo->value;
  wrong[0] ^= 1;
  auto b = open(gate.handle(protect(5, wrong, ex_bad), kNow), ex_bad);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->code, code::kUnauthorized);
  EXPECT_EQ(served, 1);
  // The retry with the Echo value is served.
  oscore::Exchange ex2;
  Bytes retry = protect(6, echo->value, ex2);
  auto s = open(gate.handle(retry, kNow), ex2);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, code::kContent);
  EXPECT_EQ(served, 2);
  // Replays of the retry, and of the request before the restart, are refused now.
  Bytes again = gate.handle(retry, kNow);
  auto am = coap::Message::parse(again);
  ASSERT_TRUE(am);
  EXPECT_EQ(am->code, code::kUnauthorized);
  EXPECT_FALSE(am->find(option::kOscore)) << "a plain replay error, not a challenge";
  Bytes old_again = gate.handle(before, kNow);
  auto om = coap::Message::parse(old_again);
  ASSERT_TRUE(om);
  EXPECT_EQ(om->code, code::kUnauthorized);
  EXPECT_FALSE(om->find(option::kOscore));
  EXPECT_EQ(served, 2);
  // Later requests flow without Echo.
  oscore::Exchange ex3;
  auto l = open(gate.handle(protect(7, std::nullopt, ex3), kNow), ex3);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->code, code::kContent);
  EXPECT_EQ(served, 3);
}


// Many KDC contexts: each request finds its own (indexed by kid, then kid context).
TEST_F(GateTest, ManyRestoredContextsEachRequestFindsItsOwn) {
  MemoryTokenStore many;
  constexpr int kNum = 3000;
  // Recipient IDs with i % 10 == 0 exist twice, told apart by their ID Context
  // (variant 1 and 2); the others once, without one (variant 0).
  auto params_of = [&](int i, int variant) {
    oscore::ContextParams pr;
    pr.master_secret = Bytes(16, static_cast<uint8_t>(i));
    pr.master_secret[0] = static_cast<uint8_t>(i >> 8);
    pr.sender_id = h("01");
    pr.recipient_id = {static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    pr.master_secret[1] = static_cast<uint8_t>(variant);
    if (variant) pr.id_context = Bytes{static_cast<uint8_t>(0xcc + variant), static_cast<uint8_t>(i)};
    return pr;
  };
  for (int i = 0; i < kNum; ++i) {
    for (int variant : {0, 1, 2}) {
      if ((variant == 0) != (i % 10 != 0)) continue;
      ClientRecord rec;
      auto pr = params_of(i, variant);
      rec.key = ContextKey{pr.recipient_id, pr.id_context};
      rec.sender_id = pr.sender_id;
      rec.context = pr;
      ASSERT_TRUE(many.put(rec));
    }
  }
  AceCoapGate gate(*p_);
  std::optional<ContextKey> seen;
  gate.set_kdc_resource_handler([&](const ContextKey& via, const coap::Message&, coap::Message& out, int64_t) {
    seen = via;
    out.code = code::kContent;
  });
  ASSERT_EQ(gate.restore_kdc_contexts(many), static_cast<size_t>(kNum + kNum / 10));
  for (int i = 0; i < kNum; ++i) {
    auto pr = params_of(i, i % 10 ? 0 : 2);
    ASSERT_TRUE(gate.kdc_context(ContextKey{pr.recipient_id, pr.id_context})) << i;
  }
  for (int i : {0, 7, 10, 1234, 2990, kNum - 1}) {
    for (int variant : {0, 1, 2}) {
      if ((variant == 0) != (i % 10 != 0)) continue;
      auto pr = params_of(i, variant);
      oscore::ContextConfig cc;
      cc.params = pr;
      cc.send_kid_context = variant != 0;
      std::swap(cc.params.sender_id, cc.params.recipient_id);
      auto client = oscore::Context::create(*p_, cc);
      ASSERT_TRUE(client);
      coap::Message get(coap::Type::kCon, code::kGet, 1);
      get.set_uri_path("/ace-group/g1");
      coap::Message c = exchange(**client, gate, get);  // the Echo challenge
      ASSERT_EQ(c.code, code::kUnauthorized) << i;
      const auto* echo = c.find(option::kEcho);
      ASSERT_TRUE(echo);
      get.set_option(option::kEcho, echo->value);
      seen.reset();
      EXPECT_EQ(exchange(**client, gate, get).code, code::kContent) << i;
      ASSERT_TRUE(seen);
      EXPECT_EQ(*seen, (ContextKey{pr.recipient_id, pr.id_context})) << i;
    }
  }
}

}  // namespace
}  // namespace acekdc::ace
