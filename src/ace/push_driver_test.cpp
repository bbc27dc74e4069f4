// Key push from the gate: the control_path answers PushDriver checks (delivered, an
// error answer, no answer after the CON retransmissions) over the simulated network,
// and the push state (PushStore) that lets an observation continue after a restart.
#include "ace/push_driver.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "ace/oscore_profile.h"
#include "ace/push_store.h"
#include "coap/sim.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/option.h"
#include "oscore/sequence_store.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

// Kdc: an AS core that issues the token, the KDC's AuthzInfo and gate, and one
// client whose context the token POST derived.
struct Kdc {
  explicit Kdc(oscore::SequenceStore* seq = nullptr, PushStore* push = nullptr) : gate(*p) {
    cose::CoseKey shared = cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {},
                                                    cp::alg::kAES_CCM_16_64_128);
    AsPolicy pol;
    ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", kRoleRequester}};
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared;
    pol.audiences = {a};
    as = std::make_unique<AuthorizationServer>(*p, rnd, pol);
    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(shared);
    cfg.groups = {{"g1", GroupConfig{}}};
    authz = std::make_unique<AuthzInfo>(*p, rnd, tokens, cfg);
    gate.serve_kdc(*authz);
    gate.set_sequence_store(seq);
    gate.set_push_store(push);
    gate.set_kdc_resource_handler([](const ContextKey&, const coap::Message& req, coap::Message& out, int64_t) {
      out.code = code::kContent;
      out.payload = h("a1");
      if (req.get_uint(option::kObserve) == 0u) out.set_uint(option::kObserve, 0);
    });
  }

  // join_client: token, token POST, the client's context; its first request comes from `from`.
  void join_client(const coap::Address& from) {
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, encode_scope(Scope{{{"g1", kRoleRequester}}})};
    AsResponse t = as->handle_token("client1", r.encode(), kNow);
    ASSERT_EQ(t.code, code::kCreated);
    auto tr = TokenResponse::decode(t.payload);
    ASSERT_TRUE(tr && tr->cnf && tr->cnf->osc);
    FakeRandom crand(8);
    ClientTokenPost sent = prepare_token_post(tr->access_token, h("42"), crand);
    coap::Message post(coap::Type::kCon, code::kPost, 1);
    post.set_uri_path("/authz-info");
    post.set_uint(option::kContentFormat, cp::cf::kAceCbor);
    post.payload = sent.payload;
    auto resp = coap::Message::parse(gate.handle(*post.encode(), kNow));
    ASSERT_TRUE(resp && resp->code == code::kCreated);
    auto params = finish_token_post(*tr->cnf->osc, sent, resp->payload);
    ASSERT_TRUE(params);
    key = ContextKey{params->sender_id, params->id_context};
    oscore::ContextConfig ccfg;
    ccfg.params = *params;
    auto cc = oscore::Context::create(*p, ccfg);
    ASSERT_TRUE(cc);
    client = std::move(*cc);
    coap::Message get = request(false);
    ASSERT_EQ(send(get, from).code, code::kContent);
  }

  coap::Message request(bool observe) {
    coap::Message get(coap::Type::kCon, code::kGet, 7);
    get.token = h("0c0d");
    get.set_uri_path("/ace-group/g1/nodes/n1");
    if (observe) get.set_uint(option::kObserve, 0);
    return get;
  }
  // send protects `req` with the client's context, lets the gate answer it and
  // returns the decrypted answer.
  coap::Message send(const coap::Message& req, const coap::Address& from) {
    uint8_t out[2048], dec[2048];
    auto n = client->protect_request(req, out, last);
    EXPECT_TRUE(n);
    Bytes wire = gate.handle(ByteView(out, *n), kNow, from);
    auto d = client->unprotect_response(wire, last, dec);
    EXPECT_TRUE(d);
    auto m = coap::Message::parse(ByteView(dec, d ? *d : 0));
    return m ? *m : coap::Message{};
  }

  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{1};
  std::unique_ptr<AuthorizationServer> as;
  MemoryTokenStore tokens;
  std::unique_ptr<AuthzInfo> authz;
  AceCoapGate gate;
  ContextKey key;
  std::unique_ptr<oscore::Context> client;
  oscore::Exchange last;
};

enum class Member { kAnswers204, kAnswers400, kSilent, kWrongContext };

// run_control_post: the KDC POSTs to the member's control path; the member behaves
// as `how`. Returns the driver's stats after the exchange is over.
PushDriver::Stats run_control_post(Member how, std::vector<std::string>* log_lines = nullptr,
                                   uint64_t* retransmissions = nullptr) {
  Kdc kdc;
  const coap::Address kdc_addr = *coap::Address::parse("127.0.0.1:5684");
  const coap::Address member_addr = *coap::Address::parse("127.0.0.1:40001");
  kdc.join_client(member_addr);
  FakeClock clock;
  FakeRandom r1(3), r2(4);
  coap::sim::Network net(clock, 7);
  coap::Endpoint kep(clock, r1), mep(clock, r2);
  net.attach(kdc_addr, kep);
  if (how != Member::kSilent) net.attach(member_addr, mep);
  mep.set_request_handler([&](coap::RequestContext& rc) {
    coap::Message in = coap::Message::from_view(rc.request);
    Bytes plain(2048), out(2048);
    oscore::Exchange sx;
    auto pn = kdc.client->unprotect_request(*in.encode(), plain, sx);
    ASSERT_TRUE(pn);
    auto inner = coap::Message::parse(ByteView(plain.data(), *pn));
    ASSERT_TRUE(inner);
    EXPECT_EQ(inner->code, code::kPost);
    EXPECT_EQ(inner->uri_path(), "/rekey");
    coap::Message resp(coap::Type::kAck, how == Member::kAnswers204 ? code::kChanged : code::kBadRequest, 0);
    if (how == Member::kWrongContext) {  // an answer the KDC cannot verify
      rc.response.code = code::kChanged;
      rc.response.add_option(option::kOscore, h("09"));
      rc.response.payload = h("00112233445566778899");
      return;
    }
    auto m = kdc.client->protect_response(resp, sx, out);
    ASSERT_TRUE(m);
    auto outer = coap::Message::parse(ByteView(out.data(), *m));
    rc.response.code = outer->code;
    for (const auto& o : outer->options()) rc.response.add_option(o.number, o.value);
    rc.response.payload = outer->payload;
  });
  PushDriver driver(kdc.gate, kep, [&](const std::string& l) {
    if (log_lines) log_lines->push_back(l);
  });
  coap::Message post(coap::Type::kCon, code::kPost, 0);
  post.set_uri_path("rekey");
  post.payload = h("a0");
  EXPECT_TRUE(kdc.gate.send_request(kdc.key, post));
  EXPECT_EQ(driver.send_all(), 1u);
  net.run(seconds(300));
  EXPECT_EQ(driver.in_flight(), 0u);
  EXPECT_EQ(kdc.gate.num_pending_requests(), 0u);
  if (retransmissions) *retransmissions = kep.stats().retransmissions;
  return driver.stats();
}

TEST(PushDriverTest, ControlPathAnswerVerifiedAndDelivered) {
  auto s = run_control_post(Member::kAnswers204);
  EXPECT_EQ(s.requests_sent, 1u);
  EXPECT_EQ(s.requests_ok, 1u);
  EXPECT_EQ(s.requests_error, 0u);
  EXPECT_EQ(s.requests_no_answer, 0u);
}

TEST(PushDriverTest, ControlPathErrorAnswerIsCountedAndLogged) {
  std::vector<std::string> log;
  auto s = run_control_post(Member::kAnswers400, &log);
  EXPECT_EQ(s.requests_ok, 0u);
  EXPECT_EQ(s.requests_error, 1u);
  EXPECT_EQ(s.last_request_code, code::kBadRequest);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log.back().find("answered 4.00"), std::string::npos) << log.back();
}

TEST(PushDriverTest, ControlPathUnverifiableAnswerIsAnError) {
  auto s = run_control_post(Member::kWrongContext);
  EXPECT_EQ(s.requests_ok, 0u);
  EXPECT_EQ(s.requests_error, 1u);
  EXPECT_EQ(s.last_request_code, 0u);
}

TEST(PushDriverTest, ControlPathWithoutAnswerIsRetransmittedThenCounted) {
  std::vector<std::string> log;
  uint64_t retransmissions = 0;
  auto s = run_control_post(Member::kSilent, &log, &retransmissions);
  EXPECT_EQ(s.requests_ok, 0u);
  EXPECT_EQ(s.requests_no_answer, 1u);
  EXPECT_EQ(retransmissions, static_cast<uint64_t>(cp::coap::param::kMaxRetransmit));  // RFC 7252 §4.2
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log.back().find("control path at 127.0.0.1:40001"), std::string::npos) << log.back();
}

// Lazy protection: notifications wait unprotected in the driver's per-peer queue
// and are protected one at a time per address (NSTART 1), the next when the
// previous is ACKed; a newer notify replaces an unsent older one.
struct LazyPush {
  LazyPush() : kep(clock, r1), driver(kdc.gate, kep) {
    kdc.join_client(member);
    for (int i = 0; i < 3; ++i) {  // three observations behind one address (one device)
      coap::Message get = kdc.request(true);
      get.token = Bytes{0x0c, static_cast<uint8_t>(i)};
      EXPECT_EQ(kdc.send(get, member).code, code::kContent);
      regs.push_back(kdc.last);
    }
  }
  // ack_all: ACKs every transmit, returns them; then lets the pump's timer run.
  std::vector<Bytes> ack_and_step() {
    std::vector<Bytes> out;
    for (const auto& t : kep.transmits()) out.push_back(t.data);
    kep.clear_transmits();
    for (const auto& d : out) {
      auto m = coap::Message::parse(d);
      EXPECT_TRUE(m);
      coap::Message ack(coap::Type::kAck, 0, m->message_id);
      kep.receive(*ack.encode(), member, clock.now());
    }
    clock.advance(microseconds(1));
    kep.handle_timeout(clock.now());
    return out;
  }
  // open: the notification's payload and Partial IV, verified with registration i.
  std::pair<Bytes, Bytes> open(const Bytes& d, size_t i) {
    uint8_t dec[2048];
    auto n = kdc.client->unprotect_response(d, regs[i], dec);
    EXPECT_TRUE(n);
    auto outer = coap::Message::parse(d);
    auto ov = oscore::parse_option(outer->find(option::kOscore)->value);
    return {n ? coap::Message::parse(ByteView(dec, *n))->payload : Bytes{}, to_bytes(ov->partial_iv)};
  }
  coap::Message note(const char* payload_hex) {
    coap::Message n(coap::Type::kCon, code::kContent, 0);
    n.payload = h(payload_hex);
    return n;
  }
  Kdc kdc;
  const coap::Address member = *coap::Address::parse("127.0.0.1:40003");
  FakeClock clock;
  FakeRandom r1{5};
  coap::Endpoint kep;
  PushDriver driver;
  std::vector<oscore::Exchange> regs;
};

TEST(PushDriverTest, NotificationsToOneAddressAreProtectedOneAtATime) {
  LazyPush t;
  const auto& obs = t.kdc.gate.observations();
  ASSERT_EQ(obs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(t.kdc.gate.notify(obs[i].id, t.note(i == 0 ? "01" : i == 1 ? "02" : "03")));
  EXPECT_EQ(t.driver.send_all(), 3u);
  // One protected and sent; two wait unprotected until it is ACKed.
  EXPECT_EQ(t.driver.stats().notifications_sent, 1u);
  EXPECT_EQ(t.driver.num_queued(), 2u);
  EXPECT_EQ(t.kdc.gate.num_unsent(), 2u);
  std::vector<Bytes> sent;
  for (int round = 0; round < 3; ++round) {
    auto out = t.ack_and_step();
    ASSERT_EQ(out.size(), 1u) << "round " << round;
    sent.push_back(out[0]);
  }
  EXPECT_TRUE(t.kep.transmits().empty());
  EXPECT_EQ(t.driver.stats().notifications_sent, 3u);
  EXPECT_EQ(t.driver.stats().notifications_acked, 3u);
  EXPECT_EQ(t.driver.num_queued(), 0u);
  // Each verifies with its own registration, in queue order, Partial IVs one apart
  // (each protected when it left, each with a fresh one).
  std::vector<Bytes> pivs;
  for (size_t i = 0; i < 3; ++i) {
    auto [payload, piv] = t.open(sent[i], i);
    EXPECT_EQ(payload, Bytes{static_cast<uint8_t>(i + 1)});
    pivs.push_back(piv);
  }
  ASSERT_EQ(pivs[0].size(), 1u);
  EXPECT_EQ(pivs[1], Bytes{static_cast<uint8_t>(pivs[0][0] + 1)});
  EXPECT_EQ(pivs[2], Bytes{static_cast<uint8_t>(pivs[0][0] + 2)});
}

TEST(PushDriverTest, NewerNotificationReplacesAnUnsentOne) {
  LazyPush t;
  const uint64_t id = t.kdc.gate.observations()[0].id;
  // Two before sending: only the newer is protected and sent.
  ASSERT_TRUE(t.kdc.gate.notify(id, t.note("01")));
  ASSERT_TRUE(t.kdc.gate.notify(id, t.note("02")));
  EXPECT_EQ(t.driver.send_all(), 1u);
  // Two more while it is outstanding: they wait; the newest replaces the other.
  ASSERT_TRUE(t.kdc.gate.notify(id, t.note("03")));
  EXPECT_EQ(t.driver.send_all(), 1u);
  ASSERT_TRUE(t.kdc.gate.notify(id, t.note("04")));
  EXPECT_EQ(t.driver.send_all(), 0u);  // already queued for this observation
  EXPECT_EQ(t.driver.stats().notifications_sent, 1u);
  auto first = t.ack_and_step();
  ASSERT_EQ(first.size(), 1u);
  auto second = t.ack_and_step();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(t.ack_and_step().empty());
  auto [p1, piv1] = t.open(first[0], 0);
  auto [p2, piv2] = t.open(second[0], 0);
  EXPECT_EQ(p1, h("02"));
  EXPECT_EQ(p2, h("04"));
  ASSERT_EQ(piv1.size(), 1u);
  EXPECT_EQ(piv2, Bytes{static_cast<uint8_t>(piv1[0] + 1)});  // the replaced ones cost no Partial IV
  EXPECT_EQ(t.driver.stats().notifications_sent, 2u);
}

TEST(PushDriverTest, CancelledObservationsQueuedNotificationIsNeverProtected) {
  LazyPush t;
  const auto obs = t.kdc.gate.observations();
  ASSERT_TRUE(t.kdc.gate.notify(obs[0].id, t.note("01")));
  ASSERT_TRUE(t.kdc.gate.notify(obs[1].id, t.note("02")));
  EXPECT_EQ(t.driver.send_all(), 2u);
  t.kdc.gate.cancel_observation(obs[1].id);  // e.g. the member deregistered
  EXPECT_EQ(t.kdc.gate.num_unsent(), 0u);
  EXPECT_EQ(t.ack_and_step().size(), 1u);
  EXPECT_TRUE(t.ack_and_step().empty());
  EXPECT_EQ(t.driver.stats().notifications_sent, 1u);
  EXPECT_EQ(t.driver.num_queued(), 0u);
}

TEST(PushDriverTest, ProtectBatchBoundsOneRound) {
  Kdc kdc;
  FakeClock clock;
  FakeRandom r1{6};
  coap::Endpoint kep(clock, r1);
  PushDriver driver(kdc.gate, kep);
  driver.set_protect_batch(2);
  // Three clients' worth of observations is more set-up than needed: one context,
  // three observations, three distinct peers (the gate sends each to its own).
  kdc.join_client(*coap::Address::parse("127.0.0.1:40010"));
  for (int i = 0; i < 3; ++i) {
    coap::Message get = kdc.request(true);
    get.token = Bytes{0x0d, static_cast<uint8_t>(i)};
    const coap::Address from = *coap::Address::parse("127.0.0.1:" + std::to_string(40011 + i));
    ASSERT_EQ(kdc.send(get, from).code, code::kContent);
  }
  for (const auto& o : kdc.gate.observations()) {
    coap::Message n(coap::Type::kCon, code::kContent, 0);
    n.payload = h("05");
    ASSERT_TRUE(kdc.gate.notify(o.id, n));
  }
  EXPECT_EQ(driver.send_all(), 3u);
  EXPECT_EQ(kep.transmits().size(), 2u);  // this round: the batch
  kep.clear_transmits();
  clock.advance(microseconds(1));
  kep.handle_timeout(clock.now());
  EXPECT_EQ(kep.transmits().size(), 1u);  // the next round: the rest, without waiting for ACKs
  EXPECT_EQ(driver.stats().notifications_sent, 3u);
}

TEST(PushStoreTest, ObservationContinuesAfterRestartAboveOldValues) {
  oscore::MemorySequenceStore seq;
  MemoryPushStore push;
  const coap::Address from = *coap::Address::parse("127.0.0.1:40002");
  auto first = std::make_unique<Kdc>(&seq, &push);
  first->join_client(from);
  coap::Message reg = first->send(first->request(true), from);
  ASSERT_EQ(reg.code, code::kContent);
  const uint32_t reg_observe = static_cast<uint32_t>(*reg.get_uint(option::kObserve));
  oscore::Exchange registration = first->last;
  ASSERT_EQ(first->gate.observations().size(), 1u);
  const uint64_t id = first->gate.observations()[0].id;
  coap::Message n1(coap::Type::kCon, code::kContent, 0);
  n1.payload = h("01");
  ASSERT_TRUE(first->gate.notify(id, n1));
  auto out1 = first->gate.take_outgoing();
  ASSERT_EQ(out1.size(), 1u);
  uint8_t dec[2048];
  ASSERT_TRUE(first->client->unprotect_response(out1[0].datagram, registration, dec));
  const uint32_t observe1 = static_cast<uint32_t>(*coap::Message::parse(out1[0].datagram)->get_uint(option::kObserve));
  EXPECT_GT(observe1, reg_observe);

  // "Restart": a new gate over the same token, sequence and push stores.
  Kdc second(&seq, &push);
  for (const auto& k : first->tokens.keys()) ASSERT_TRUE(second.tokens.put(*first->tokens.get(k)));
  ASSERT_EQ(second.gate.restore_kdc_contexts(second.tokens), 1u);
  auto restored = second.gate.restore_push_state();
  ASSERT_TRUE(restored);
  EXPECT_EQ(*restored, 1u);
  ASSERT_EQ(second.gate.observations().size(), 1u);
  EXPECT_EQ(second.gate.observations()[0].peer, from);
  EXPECT_EQ(second.gate.peer_of(first->key), from);
  coap::Message n2(coap::Type::kCon, code::kContent, 0);
  n2.payload = h("02");
  ASSERT_TRUE(second.gate.notify(id, n2));
  auto out2 = second.gate.take_outgoing();
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(out2[0].peer, from);
  // The member verifies it with its registration: a fresh Partial IV above every
  // earlier one (no nonce reuse), and an Observe value above the earlier ones.
  auto d = first->client->unprotect_response(out2[0].datagram, registration, dec);
  ASSERT_TRUE(d) << oscore::to_string(d.error());
  EXPECT_EQ(coap::Message::parse(ByteView(dec, *d))->payload, h("02"));
  const uint32_t observe2 = static_cast<uint32_t>(*coap::Message::parse(out2[0].datagram)->get_uint(option::kObserve));
  EXPECT_GT(observe2, observe1);
  // A replay of the pre-restart notification is refused by the member.
  EXPECT_FALSE(first->client->unprotect_response(out1[0].datagram, registration, dec));

  // The member's context goes (token expired): its push state goes with it.
  second.gate.purge(kNow + 100000);
  auto st = push.load();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->observations.empty());
  EXPECT_TRUE(st->peers.empty());
}

TEST(PushStoreTest, SqliteRoundTrip) {
  char tmpl[] = "/tmp/acekdc-push-store-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  const std::string path = std::string(tmpl) + "/push.sqlite";
  PushObservation o{7, ContextKey{h("01"), std::nullopt}, "127.0.0.1:5683", h("0a0b"), "ace-group/g/nodes/n",
                    h("4b"), h("05")};
  PushObservation o2{9, ContextKey{h(""), h("cafe")}, "[::1]:5683", h(""), "ace-group/g/nodes/m", h(""), h("00")};
  {
    auto s = SqlitePushStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put_observation(o));
    ASSERT_TRUE((*s)->put_observation(o2));
    ASSERT_TRUE((*s)->put_peer(o.via, "127.0.0.1:1"));
    ASSERT_TRUE((*s)->put_peer(o.via, "127.0.0.1:2"));  // replaces (NULL ID Context)
    ASSERT_TRUE((*s)->put_peer(o2.via, "[::1]:3"));
    ASSERT_TRUE((*s)->put_peer(o2.via, "[::1]:4"));
    ASSERT_TRUE((*s)->put_observe_mark(4098));
  }
  auto s = SqlitePushStore::open(path);
  ASSERT_TRUE(s);
  auto st = (*s)->load();
  ASSERT_TRUE(st);
  ASSERT_EQ(st->observations.size(), 2u);
  EXPECT_EQ(st->observations[0], o);
  EXPECT_EQ(st->observations[1], o2);
  ASSERT_EQ(st->peers.size(), 2u);
  EXPECT_EQ(st->observe_mark, 4098u);
  for (const auto& [k, p] : st->peers) EXPECT_EQ(p, k == o.via ? "127.0.0.1:2" : "[::1]:4");
  ASSERT_TRUE((*s)->erase_context(o.via));
  ASSERT_TRUE((*s)->erase_observation(9));
  st = (*s)->load();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->observations.empty());
  ASSERT_EQ(st->peers.size(), 1u);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace acekdc::ace
