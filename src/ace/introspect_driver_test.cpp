// Introspection off the KDC's serve loop (issue 5): AuthzInfo's deferred mode, the
// gate's parked token POSTs, and IntrospectionDriver on coap::Endpoints over the
// simulated network with a fake clock: while the AS is silent, other requests are
// answered; the parked POST is answered after the AS's answer or the timeout; a
// token the AS revoked is removed by the periodic re-check.
#include "ace/introspect_driver.h"

#include <gtest/gtest.h>

#include "ace/oscore_profile.h"
#include "coap/sim.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

// The KDC-AS context (RFC 9203 §5 leaves it open; serve: AS Sender ID empty).
std::unique_ptr<oscore::Context> kdc_as_ctx(crypto::Provider& p, bool as_side, Random* echo_random = nullptr) {
  oscore::ContextConfig cfg;
  if (echo_random) {  // an AS whose replay window is unknown (RFC 8613 Appendix B.1.2)
    cfg.replay_window_initialised = false;
    cfg.random = echo_random;
  }
  cfg.params.master_secret = h("6b64632d61732d74657374");
  cfg.params.sender_id = as_side ? Bytes{} : h("7a");
  cfg.params.recipient_id = as_side ? h("7a") : Bytes{};
  auto c = oscore::Context::create(p, std::move(cfg));
  EXPECT_TRUE(c);
  return c ? std::move(*c) : nullptr;
}

class Deferred : public ::testing::Test {
 protected:
  Deferred()
      : shared_(cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128)),
        kdc_gate_(*p_) {
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
    as_ = std::make_unique<AuthorizationServer>(*p_, as_rnd_, pol);
  }

  // make_kdc: the KDC with deferred introspection; with_key: it can verify tokens itself.
  void make_kdc(IntrospectMode mode, bool with_key = true, int64_t ttl = 60) {
    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.issuer = "as";
    if (with_key) cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", GroupConfig{}}};
    kdc_ = std::make_unique<AuthzInfo>(*p_, kdc_rnd_, store_, cfg);
    IntrospectionConfig ic;
    ic.mode = mode;
    ic.cache_ttl = ttl;
    kdc_->set_deferred_introspection(ic);
    kdc_->set_token_inactive_handler([this](const ContextKey&, const StoredToken& t, bool dropped) {
      inactive_.push_back(t.cti);
      inactive_dropped_ = dropped;
    });
    kdc_gate_.serve_kdc(*kdc_);
    kdc_gate_.set_kdc_resource_handler([](const ContextKey&, const coap::Message& req, coap::Message& resp, int64_t) {
      if (req.uri_path() == "/ping") resp.code = code::kContent;
    });
  }

  TokenResponse token(int64_t now = kNow) {
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, encode_scope(Scope{{ScopeEntry{"g1", kRoleRequester}}})};
    AsResponse resp = as_->handle_token("client1", r.encode(), now);
    EXPECT_EQ(resp.code, code::kCreated);
    auto t = TokenResponse::decode(resp.payload);
    EXPECT_TRUE(t && t->cnf && t->cnf->osc);
    return t ? *t : TokenResponse{};
  }
  Bytes cti_of(const Bytes& tok) {
    cwt::VerifyOptions vo;
    vo.check_time = false;
    auto c = cwt::verify(*p_, tok, shared_, vo);
    EXPECT_TRUE(c && c->cti);
    return c && c->cti ? *c->cti : Bytes{};
  }

  coap::Message post(std::string_view path, Bytes payload, uint16_t mid) {
    coap::Message m(coap::Type::kCon, code::kPost, mid);
    m.token = h("0a0b");
    m.set_uri_path(path);
    m.set_uint(option::kContentFormat, cp::cf::kAceCbor);
    m.payload = std::move(payload);
    return m;
  }
  Bytes wire(const coap::Message& m) {
    auto e = m.encode();
    EXPECT_TRUE(e);
    return e ? *e : Bytes{};
  }
  // as_answer: the AS core's answer to an introspection request from the KDC.
  IntrospectionReply as_answer(const PendingIntrospection& p, int64_t now = kNow) {
    AsResponse r = as_->handle_introspect("kdc", p.request, now);
    return IntrospectionReply{r.code, r.payload};
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom as_rnd_{1};
  FakeRandom kdc_rnd_{2};
  cose::CoseKey shared_;
  std::unique_ptr<AuthorizationServer> as_;
  MemoryTokenStore store_;
  std::unique_ptr<AuthzInfo> kdc_;
  AceCoapGate kdc_gate_;
  std::vector<Bytes> inactive_;
  bool inactive_dropped_ = false;
};

TEST_F(Deferred, ParkedPostWaitsWhileOtherRequestsAreServed) {
  make_kdc(IntrospectMode::kAlways);
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);

  // The token POST needs the AS: parked, nothing answered, one request queued.
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 1)), kNow).empty());
  const uint64_t parked = kdc_gate_.last_parked();
  EXPECT_NE(parked, 0u);
  EXPECT_EQ(kdc_gate_.num_parked(), 1u);
  auto pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  EXPECT_EQ(pend[0].token, t.access_token);
  EXPECT_EQ(store_.size(), 0u) << "no state before the AS answered";

  // Meanwhile other requests are answered at once.
  coap::Message get(coap::Type::kCon, code::kGet, 2);
  get.set_uri_path("/authz-info");
  auto r = coap::Message::parse(kdc_gate_.handle(wire(get), kNow));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, code::kMethodNotAllowed);
  EXPECT_EQ(kdc_gate_.last_parked(), 0u);
  // The same token posted again waits for the same answer (no second request).
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 3)), kNow).empty());
  const uint64_t parked2 = kdc_gate_.last_parked();
  EXPECT_NE(parked2, parked);
  EXPECT_TRUE(kdc_gate_.take_introspections().empty());

  // The AS's answer completes both POSTs (2.01, answers of their own messages).
  auto done = kdc_gate_.complete_introspection(pend[0].token, as_answer(pend[0]), kNow);
  ASSERT_EQ(done.answers.size(), 2u);
  EXPECT_EQ(kdc_gate_.num_parked(), 0u);
  auto a1 = coap::Message::parse(done.answers[0].datagram);
  auto a2 = coap::Message::parse(done.answers[1].datagram);
  ASSERT_TRUE(a1 && a2);
  EXPECT_EQ(done.answers[0].parked, parked);
  EXPECT_EQ(a1->code, code::kCreated) << as_string(a1->payload);
  EXPECT_EQ(a1->message_id, 1);
  EXPECT_EQ(a2->code, code::kCreated);
  EXPECT_EQ(a2->message_id, 3);
  EXPECT_EQ(kdc_->num_introspections_in_flight(), 0u);

  // The context of the later answer works (the second POST replaced the first).
  auto params = finish_token_post(*t.cnf->osc, sent, a2->payload);
  ASSERT_TRUE(params);
  oscore::ContextConfig cc;
  cc.params = *params;
  auto client = oscore::Context::create(*p_, cc);
  ASSERT_TRUE(client);
  coap::Message ping(coap::Type::kCon, code::kGet, 4);
  ping.set_uri_path("/ping");
  uint8_t buf[512];
  oscore::Exchange ex;
  auto n = (*client)->protect_request(ping, buf, ex);
  ASSERT_TRUE(n);
  Bytes out = kdc_gate_.handle(ByteView(buf, *n), kNow);
  uint8_t dec[512];
  auto d = (*client)->unprotect_response(out, ex, dec);
  ASSERT_TRUE(d);
  EXPECT_EQ(coap::Message::parse(ByteView(dec, *d))->code, code::kContent);

  // A token POST answered from the cache is not parked.
  EXPECT_FALSE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 5)), kNow).empty());
  EXPECT_EQ(kdc_gate_.last_parked(), 0u);
}

TEST_F(Deferred, RefusalsAfterTheAnswerOrWithoutOne) {
  make_kdc(IntrospectMode::kAlways);
  // Revoked at the AS: 4.01, nothing stored.
  TokenResponse t = token();
  ASSERT_TRUE(as_->revoke(cti_of(t.access_token)));
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 1)), kNow).empty());
  auto pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  auto done = kdc_gate_.complete_introspection(pend[0].token, as_answer(pend[0]), kNow);
  ASSERT_EQ(done.answers.size(), 1u);
  auto a = coap::Message::parse(done.answers[0].datagram);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, code::kUnauthorized);
  EXPECT_NE(std::string(as_string(a->payload)).find("not active"), std::string::npos);
  EXPECT_EQ(store_.size(), 0u);

  // No answer (timeout): kAlways answers 5.03.
  TokenResponse t2 = token();
  ClientTokenPost sent2 = prepare_token_post(t2.access_token, h("43"), crand);
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent2.payload, 2)), kNow).empty());
  pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  done = kdc_gate_.complete_introspection(pend[0].token, std::nullopt, kNow);
  ASSERT_EQ(done.answers.size(), 1u);
  a = coap::Message::parse(done.answers[0].datagram);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, code::kServiceUnavailable);
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(kdc_->num_introspections_in_flight(), 0u);
}

TEST_F(Deferred, FallbackWithoutTheKeyAndNoAnswerIsTheLocalFailure) {
  make_kdc(IntrospectMode::kFallback, /*with_key=*/false);
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 1)), kNow).empty());
  auto pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  auto done = kdc_gate_.complete_introspection(pend[0].token, std::nullopt, kNow);
  ASSERT_EQ(done.answers.size(), 1u);
  auto a = coap::Message::parse(done.answers[0].datagram);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, code::kUnauthorized);
  EXPECT_NE(std::string(as_string(a->payload)).find("no answer from the AS"), std::string::npos);
  // With the AS's answer the KDC takes the AS's claims: 2.01.
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 2)), kNow).empty());
  pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  done = kdc_gate_.complete_introspection(pend[0].token, as_answer(pend[0]), kNow);
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(coap::Message::parse(done.answers[0].datagram)->code, code::kCreated);
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(Deferred, ParkingIsBoundedBusyAnswerCarriesMaxAge) {
  make_kdc(IntrospectMode::kAlways);
  kdc_gate_.set_parking(1, 7);
  FakeRandom crand(8);
  TokenResponse t1 = token();
  TokenResponse t2 = token();
  EXPECT_TRUE(
      kdc_gate_.handle(wire(post("/authz-info", prepare_token_post(t1.access_token, h("42"), crand).payload, 1)), kNow)
          .empty());
  auto busy = coap::Message::parse(
      kdc_gate_.handle(wire(post("/authz-info", prepare_token_post(t2.access_token, h("43"), crand).payload, 2)), kNow));
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->code, code::kServiceUnavailable);
  EXPECT_EQ(busy->get_uint(option::kMaxAge), 7u);
  EXPECT_EQ(kdc_gate_.num_parked(), 1u);
  auto pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u) << "the refused POST's request is not sent";
  EXPECT_EQ(pend[0].token, t1.access_token);
  EXPECT_EQ(kdc_->num_introspections_in_flight(), 1u);
}

TEST_F(Deferred, RecheckOfAnInstalledTokenDoesNotBlockAndEvicts) {
  make_kdc(IntrospectMode::kAlways, true, /*ttl=*/10);
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  EXPECT_TRUE(kdc_gate_.handle(wire(post("/authz-info", sent.payload, 1)), kNow).empty());
  auto pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  auto done = kdc_gate_.complete_introspection(pend[0].token, as_answer(pend[0]), kNow);
  ASSERT_EQ(done.answers.size(), 1u);
  ASSERT_EQ(kdc_gate_.num_kdc_contexts(), 1u);

  ASSERT_TRUE(as_->revoke(cti_of(t.access_token)));
  // Before the TTL: nothing asked. After it: purge queues a re-check and returns.
  EXPECT_TRUE(kdc_gate_.purge(kNow + 5).empty());
  EXPECT_TRUE(kdc_gate_.take_introspections().empty());
  EXPECT_TRUE(kdc_gate_.purge(kNow + 11).empty());
  pend = kdc_gate_.take_introspections();
  ASSERT_EQ(pend.size(), 1u);
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 1u) << "still there while the AS is asked";
  EXPECT_TRUE(kdc_gate_.purge(kNow + 12).empty());
  EXPECT_TRUE(kdc_gate_.take_introspections().empty()) << "one request in flight per token";
  // The answer (inactive) removes the token, tells the handler and drops the context.
  done = kdc_gate_.complete_introspection(pend[0].token, as_answer(pend[0], kNow + 13), kNow + 13);
  EXPECT_TRUE(done.answers.empty());
  ASSERT_EQ(done.dropped.size(), 1u);
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 0u);
  ASSERT_EQ(inactive_.size(), 1u);
  EXPECT_EQ(inactive_[0], cti_of(t.access_token));
  EXPECT_TRUE(inactive_dropped_);
  EXPECT_EQ(store_.size(), 0u);
}

// ---- the driver on Endpoints, simulated network, fake clock ----

class DriverTest : public Deferred {
 protected:
  DriverTest()
      : net_(clock_, 5),
        kdc_ep_(clock_, kdc_ep_rnd_),
        as_ep_(clock_, as_ep_rnd_),
        client_ep_(clock_, client_rnd_) {
    clock_.set_unix_time(kNow);
    make_as_gate(false);
    as_ep_.set_request_handler([this](coap::RequestContext& ctx) {
      ++as_requests_;
      Bytes out = as_gate_->handle(wire(coap::Message::from_view(ctx.request)), clock_.unix_time());
      if (auto m = coap::Message::parse(out)) {
        ctx.response.code = m->code;
        for (const auto& o : m->options()) ctx.response.add_option(o.number, o.value);
        ctx.response.payload = m->payload;
      }
    });
    net_.attach(kdc_addr_, kdc_ep_);
    net_.attach(client_addr_, client_ep_);
  }

  // make_as_gate: the AS's gate; echo: its KDC context demands an Echo round first.
  void make_as_gate(bool echo) {
    as_gate_ = std::make_unique<AceCoapGate>(*p_);
    as_gate_->serve_as(*as_);
    as_gate_->add_peer("kdc", kdc_as_ctx(*p_, true, echo ? &as_ep_rnd_ : nullptr));
  }

  void make_driver(IntrospectMode mode, int64_t ttl = 60) {
    make_kdc(mode, true, ttl);
    IntrospectionDriverConfig dc;
    dc.as = as_addr_;
    dc.timeout = seconds(5);
    dc.recheck_every = seconds(5);
    driver_ = std::make_unique<IntrospectionDriver>(kdc_ep_, kdc_gate_, kdc_as_ctx(*p_, false), dc);
    driver_->set_on_done([this](const AceCoapGate::IntrospectionDone& d) { dropped_ += d.dropped.size(); });
    kdc_ep_.set_request_handler([this](coap::RequestContext& ctx) {
      Bytes out = kdc_gate_.handle(wire(coap::Message::from_view(ctx.request)), clock_.unix_time(), ctx.peer);
      driver_->answer(ctx, out);
    });
  }

  // send: a CON request from the client; the final response's code lands in *out.
  void send(coap::Message m, std::optional<uint8_t>* out, TimePoint* when = nullptr) {
    client_ep_.request(kdc_addr_, std::move(m), coap::RequestOptions{}, [this, out, when](const coap::ClientEvent& ev) {
      *out = ev.status == coap::ClientStatus::kResponse && ev.response ? ev.response->code : uint8_t{0xff};
      if (when) *when = clock_.now();
    });
  }

  FakeClock clock_;
  coap::sim::Network net_;
  FakeRandom kdc_ep_rnd_{11}, as_ep_rnd_{12}, client_rnd_{13};
  coap::Endpoint kdc_ep_, as_ep_, client_ep_;
  std::unique_ptr<AceCoapGate> as_gate_;
  std::unique_ptr<IntrospectionDriver> driver_;
  coap::Address kdc_addr_ = *coap::Address::parse("127.0.0.1:5684");
  coap::Address as_addr_ = *coap::Address::parse("127.0.0.1:5683");
  coap::Address client_addr_ = *coap::Address::parse("127.0.0.1:40000");
  int as_requests_ = 0;
  size_t dropped_ = 0;
};

TEST_F(DriverTest, SilentAsDoesNotStopTheLoop) {
  make_driver(IntrospectMode::kAlways);
  // The AS is not attached: its datagrams go nowhere.
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  std::optional<uint8_t> post_code, get_code;
  TimePoint post_at{}, get_at{};
  const TimePoint start = clock_.now();
  send(post("/authz-info", sent.payload, 0), &post_code, &post_at);
  net_.run(milliseconds(500));
  EXPECT_FALSE(post_code) << "parked while the AS is asked";
  EXPECT_EQ(driver_->num_in_flight(), 1u);
  EXPECT_EQ(driver_->num_deferred(), 1u);

  coap::Message get(coap::Type::kCon, code::kGet, 0);
  get.set_uri_path("/authz-info");
  send(get, &get_code, &get_at);
  net_.run(milliseconds(500));
  ASSERT_TRUE(get_code) << "another request is answered while the introspection is pending";
  EXPECT_EQ(*get_code, code::kMethodNotAllowed);
  EXPECT_LT(get_at - start, seconds(2));
  EXPECT_FALSE(post_code);

  // The introspection CON is retransmitted, then times out after 5 s: 5.03.
  net_.run(seconds(10));
  ASSERT_TRUE(post_code);
  EXPECT_EQ(*post_code, code::kServiceUnavailable);
  EXPECT_GE(post_at - start, seconds(5));
  EXPECT_LT(post_at - start, seconds(7));
  EXPECT_GE(net_.sent(kdc_addr_).size(), 3u);  // ACKs, the CON and its retransmission, the answers
  EXPECT_EQ(driver_->stats().no_answer, 1u);
  EXPECT_EQ(driver_->num_in_flight(), 0u);
  EXPECT_EQ(driver_->num_deferred(), 0u);
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(DriverTest, AnswerCompletesThePostAndRevocationEvicts) {
  make_driver(IntrospectMode::kAlways, /*ttl=*/10);
  net_.attach(as_addr_, as_ep_);
  driver_->start_rechecks();
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  std::optional<uint8_t> post_code;
  send(post("/authz-info", sent.payload, 0), &post_code);
  net_.run(seconds(1));
  ASSERT_TRUE(post_code);
  EXPECT_EQ(*post_code, code::kCreated);
  EXPECT_EQ(as_requests_, 1);
  EXPECT_EQ(driver_->stats().answered, 1u);
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 1u);

  // Revoked at the AS: the periodic re-check (no client traffic) drops it.
  ASSERT_TRUE(as_->revoke(cti_of(t.access_token)));
  for (int i = 0; i < 30 && kdc_gate_.num_kdc_contexts() > 0; ++i) {
    clock_.advance(seconds(1));
    net_.run(seconds(1));
  }
  EXPECT_EQ(kdc_gate_.num_kdc_contexts(), 0u);
  EXPECT_EQ(dropped_, 1u);
  ASSERT_EQ(inactive_.size(), 1u);
  EXPECT_EQ(as_requests_, 2);
}

TEST_F(DriverTest, AsAskingForEchoGetsTheRequestAgainWithIt) {
  make_as_gate(/*echo=*/true);
  make_driver(IntrospectMode::kAlways);
  net_.attach(as_addr_, as_ep_);
  TokenResponse t = token();
  FakeRandom crand(8);
  ClientTokenPost sent = prepare_token_post(t.access_token, h("42"), crand);
  std::optional<uint8_t> post_code;
  send(post("/authz-info", sent.payload, 0), &post_code);
  net_.run(seconds(1));
  ASSERT_TRUE(post_code);
  EXPECT_EQ(*post_code, code::kCreated);
  EXPECT_EQ(as_gate_->num_echo_challenges(), 1u);
  EXPECT_EQ(driver_->stats().echo_resends, 1u);
  EXPECT_EQ(as_requests_, 2);
}

}  // namespace
}  // namespace acekdc::ace
