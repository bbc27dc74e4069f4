// Key push end to end in one process: an AS + KDC behind one AceCoapGate with the
// GroupCoapBinding, and client::GroupMember instances talking to it through an
// in-memory Transport (each member with its own address and state directory).
// Several members observe nodes/NODENAME; joins and leaves rekey the group and
// every remaining observer receives the new version, protected under its own
// context with a fresh Partial IV; a member that left gets nothing; a member with
// a control_path receives a POST, and a DELETE when it is evicted.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "ace/as.h"
#include "ace/coap_gate.h"
#include "ace/token_store.h"
#include "client/kdc_client.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/manager.h"
#include "kdc/memory_store.h"
#include "kdc/test_util.h"
#include "oscore/option.h"

namespace acekdc::client {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

// Kdc: the AS and the KDC, each behind its gate.
struct Kdc {
  Kdc() : shared(cose::CoseKey::symmetric(h("000102030405060708090a0b0c0d0e0f"), {}, cp::alg::kAES_CCM_16_64_128)) {
    ace::AsPolicy pol;
    pol.issuer = "as";
    for (int i = 1; i <= 5; ++i) {
      ace::ClientPolicy c;
      c.id = "member" + std::to_string(i);
      c.groups = {{"g1", ace::kRoleRequester | ace::kRoleResponder | ace::kRoleMonitor}};
      c.max_lifetime = 3600;
      pol.clients.push_back(c);
    }
    ace::AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared;
    pol.audiences = {a};
    as = std::make_unique<ace::AuthorizationServer>(*p, rnd, pol);
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(shared);
    cfg.groups = {{"g1", ace::GroupConfig{}}};
    authz = std::make_unique<ace::AuthzInfo>(*p, rnd, tokens, cfg);
    EXPECT_TRUE(store.create_group(kdc::testing::sample_config("g1"), kdc::testing::sample_key(0, 1, kNow)));
    as_gate.serve_as(*as);
    gate.serve_kdc(*authz);
    for (int i = 1; i <= 5; ++i) {
      oscore::ContextConfig cc;
      cc.params.master_secret = secret(i);
      cc.params.recipient_id = id(i);
      as_gate.add_peer("member" + std::to_string(i), std::move(*oscore::Context::create(*p, std::move(cc))));
    }
    binding = std::make_unique<groupcomm::GroupCoapBinding>(*authz, tokens, store, mgr);
    binding->attach(gate);
  }
  static Bytes id(int i) { return Bytes{static_cast<uint8_t>(i)}; }
  static Bytes secret(int i) { return Bytes(16, static_cast<uint8_t>(0x30 + i)); }

  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{11};
  cose::CoseKey shared;
  std::unique_ptr<ace::AuthorizationServer> as;
  ace::MemoryTokenStore tokens;
  std::unique_ptr<ace::AuthzInfo> authz;
  kdc::MemoryStore store;
  groupcomm::GroupManager mgr{store, *p, rnd};
  ace::AceCoapGate as_gate{*p};  // the AS, at its own address (as serve runs it)
  ace::AceCoapGate gate{*p};     // the KDC
  std::unique_ptr<groupcomm::GroupCoapBinding> binding;
  ace::AceCoapGate* active = &gate;  // where members' KDC requests go (a restarted gate)
};

// MemTransport: a member's link to the gate, from the member's own address.
class MemTransport final : public Transport {
 public:
  MemTransport(Kdc& kdc, coap::Address self) : kdc_(kdc), self_(self) {}
  Expected<Bytes, Failure> exchange(const coap::Address& to, ByteView request, Duration) override {
    ace::AceCoapGate& g = to == *coap::Address::parse("127.0.0.1:5683") ? kdc_.as_gate : *kdc_.active;
    Bytes out = g.handle(request, kNow, self_);
    if (out.empty()) return unexpected(Failure{Error::kNoResponse, 0, "dropped"});
    return out;
  }

 private:
  Kdc& kdc_;
  coap::Address self_;
};

struct Member {
  Member(Kdc& kdc, int i)
      : addr(*coap::Address::parse("127.0.0.1:" + std::to_string(40000 + i))),
        transport(kdc, addr),
        gm(*kdc.p, transport, StateDir(dir.path() + "/m" + std::to_string(i)), "g1", kdc_addr()),
        index(i) {}
  static coap::Address kdc_addr() { return *coap::Address::parse("127.0.0.1:5684"); }
  static coap::Address as_addr() { return *coap::Address::parse("127.0.0.1:5683"); }

  JoinResult join(Kdc& kdc, ace::RoleSet roles, std::string control_path = {}) {
    JoinConfig jc;
    jc.as = as_addr();
    jc.id = Kdc::id(index);
    jc.secret = Kdc::secret(index);
    jc.roles = roles;
    jc.control_path = std::move(control_path);
    auto r = gm.join(rnd, jc);
    EXPECT_TRUE(r) << (r ? "" : r.error().describe());
    return r ? *r : JoinResult{};
  }
  // observe registers on nodes/NODENAME and checks the registration answer.
  void observe(Kdc& kdc) {
    auto o = gm.protect_observe();
    ASSERT_TRUE(o);
    reg = std::move(*o);
    Bytes resp = kdc.gate.handle(reg->datagram, kNow, addr);
    auto keys = open_notification(resp);
    ASSERT_TRUE(keys);
  }
  // open_notification verifies a response / notification of the observation.
  std::optional<GroupKeys> open_notification(ByteView datagram) {
    Bytes out(4096);
    auto n = reg->ctx->unprotect_response(datagram, reg->exchange, out);
    if (!n) return std::nullopt;
    auto inner = coap::Message::parse(ByteView(out.data(), *n));
    if (!inner || inner->code != code::kContent || !inner->find(option::kObserve)) return std::nullopt;
    auto k = decode_key_distribution(inner->payload);
    if (!k) return std::nullopt;
    return *k;
  }

  kdc::testing::TempDir dir;
  coap::Address addr;
  MemTransport transport;
  GroupMember gm;
  int index;
  FakeRandom rnd{static_cast<uint64_t>(index + 100)};
  std::optional<ObserveRequest> reg;
};

// deliver hands each outgoing datagram to the member at its address; returns
// the keys each member got (by index).
std::map<int, std::vector<GroupKeys>> deliver(Kdc& kdc, std::vector<Member*> members, size_t* num_outgoing = nullptr) {
  std::map<int, std::vector<GroupKeys>> got;
  auto out = kdc.gate.take_outgoing();
  if (num_outgoing) *num_outgoing = out.size();
  for (const auto& o : out) {
    for (Member* m : members) {
      if (!(o.peer == m->addr) || !o.observation) continue;
      auto k = m->open_notification(o.datagram);
      EXPECT_TRUE(k) << "member" << m->index << " could not open its notification";
      if (k) got[m->index].push_back(*k);
    }
  }
  return got;
}

TEST(PushTest, EveryObserverGetsEachRekeyAndALeftMemberNothing) {
  Kdc kdc;
  Member m1(kdc, 1), m2(kdc, 2), m3(kdc, 3), m4(kdc, 4);
  m1.join(kdc, ace::kRoleRequester);
  m2.join(kdc, ace::kRoleRequester | ace::kRoleResponder);
  m3.join(kdc, ace::kRoleMonitor);
  (void)kdc.gate.take_outgoing();  // nothing observed yet
  m1.observe(kdc);
  m2.observe(kdc);
  m3.observe(kdc);
  EXPECT_EQ(kdc.gate.observations().size(), 3u);

  // A join rekeys (version 4): each of the three observers gets it.
  JoinResult j4 = m4.join(kdc, ace::kRoleRequester);
  EXPECT_EQ(j4.keys.num, 4u);
  auto got = deliver(kdc, {&m1, &m2, &m3, &m4});
  for (int i : {1, 2, 3}) {
    ASSERT_EQ(got[i].size(), 1u) << "member" << i;
    EXPECT_EQ(got[i][0].num, 4u);
    EXPECT_EQ(got[i][0].group_id, j4.keys.group_id);
    EXPECT_EQ(got[i][0].master_secret, j4.keys.master_secret);
  }
  // Each gets its own Sender ID (a monitor none).
  ASSERT_TRUE(got[1][0].sender_id && got[2][0].sender_id);
  EXPECT_NE(*got[1][0].sender_id, *got[2][0].sender_id);
  EXPECT_FALSE(got[3][0].sender_id);
  EXPECT_EQ(got.count(4), 0u);

  // m2 leaves (version 5): m1 and m3 get it, m2 nothing; its observation is gone.
  ASSERT_TRUE(m2.gm.leave());
  size_t n = 0;
  got = deliver(kdc, {&m1, &m2, &m3, &m4}, &n);
  EXPECT_EQ(n, 2u);
  for (int i : {1, 3}) {
    ASSERT_EQ(got[i].size(), 1u) << "member" << i;
    EXPECT_EQ(got[i][0].num, 5u);
  }
  EXPECT_EQ(got.count(2), 0u);
  EXPECT_EQ(kdc.gate.observations().size(), 2u);
  EXPECT_EQ(kdc.binding->push_stats().notifications, 5u);

  // A second rekey: fresh Partial IVs, so the notification number check passes again.
  ASSERT_TRUE(kdc.mgr.rekey("g1", kNow));
  kdc.binding->poll(kNow);
  got = deliver(kdc, {&m1, &m3});
  ASSERT_EQ(got[1].size(), 1u);
  EXPECT_EQ(got[1][0].num, 6u);
  ASSERT_EQ(got[3].size(), 1u);
}

TEST(PushTest, ReplayedNotificationIsRejected) {
  Kdc kdc;
  Member m1(kdc, 1), m2(kdc, 2);
  m1.join(kdc, ace::kRoleRequester);
  m1.observe(kdc);
  m2.join(kdc, ace::kRoleRequester);
  auto out = kdc.gate.take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(m1.open_notification(out[0].datagram));
  EXPECT_FALSE(m1.open_notification(out[0].datagram));  // same Partial IV again
}

TEST(PushTest, ObserveDeregistrationAndNonObservablePaths) {
  Kdc kdc;
  Member m1(kdc, 1);
  m1.join(kdc, ace::kRoleRequester);
  // GET /ace-group/g1 with Observe is answered without Observe: not kept.
  auto ctx = m1.gm.context();
  ASSERT_TRUE(ctx);
  coap::Message req(coap::Type::kCon, code::kGet, 1);
  req.token = {9};
  req.set_uint(option::kObserve, 0);
  req.set_uri_path("/ace-group/g1");
  Bytes buf(2048);
  oscore::Exchange ex;
  auto n = (*ctx)->protect_request(req, buf, ex);
  ASSERT_TRUE(n);
  Bytes resp = kdc.gate.handle(ByteView(buf.data(), *n), kNow, m1.addr);
  EXPECT_FALSE(resp.empty());
  EXPECT_TRUE(kdc.gate.observations().empty());
  // Observe: 1 on the same token ends an observation.
  m1.observe(kdc);
  ASSERT_EQ(kdc.gate.observations().size(), 1u);
  coap::Message dereg(coap::Type::kCon, code::kGet, 2);
  dereg.token = kdc.gate.observations()[0].token;
  dereg.set_uint(option::kObserve, 1);
  dereg.set_uri_path("/ace-group/g1/nodes/" + m1.gm.session().node);
  n = (*ctx)->protect_request(dereg, buf, ex);
  ASSERT_TRUE(n);
  (void)kdc.gate.handle(ByteView(buf.data(), *n), kNow, m1.addr);
  EXPECT_TRUE(kdc.gate.observations().empty());
}

TEST(PushTest, ObservationsPerContextAreBounded) {
  Kdc kdc;
  Member m1(kdc, 1);
  m1.join(kdc, ace::kRoleRequester);
  auto ctx = m1.gm.context();
  ASSERT_TRUE(ctx);
  kdc.gate.set_max_observations_per_context(3);
  for (uint8_t t = 1; t <= 5; ++t) {
    coap::Message req(coap::Type::kCon, code::kGet, t);
    req.token = {0x70, t};
    req.set_uint(option::kObserve, 0);
    req.set_uri_path("/ace-group/g1/nodes/" + m1.gm.session().node);
    Bytes buf(2048);
    oscore::Exchange ex;
    auto n = (*ctx)->protect_request(req, buf, ex);
    ASSERT_TRUE(n);
    (void)kdc.gate.handle(ByteView(buf.data(), *n), kNow, m1.addr);
  }
  ASSERT_EQ(kdc.gate.observations().size(), 3u);
  EXPECT_EQ(kdc.gate.observations()[0].token, (Bytes{0x70, 3}));  // the oldest two were replaced
  // A rekey notifies each kept one (three notifications, distinct Partial IVs).
  ASSERT_TRUE(kdc.mgr.rekey("g1", kNow));
  kdc.binding->poll(kNow);
  auto out = kdc.gate.take_outgoing();
  ASSERT_EQ(out.size(), 3u);
  std::set<Bytes> pivs;
  for (const auto& o : out) {
    auto opt = oscore::peek_option(o.datagram);
    ASSERT_TRUE(opt);
    pivs.insert(to_bytes(opt->partial_iv));
  }
  EXPECT_EQ(pivs.size(), 3u);
}

// Serve the control path: unprotect the KDC's request with the member's context.
struct ControlRequest {
  uint8_t method = 0;
  std::string path;
  Bytes payload;
};
std::optional<ControlRequest> open_control(oscore::Context& ctx, ByteView datagram) {
  Bytes out(4096);
  oscore::Exchange ex;
  auto n = ctx.unprotect_request(datagram, out, ex);
  if (!n) return std::nullopt;
  auto m = coap::Message::parse(ByteView(out.data(), *n));
  if (!m) return std::nullopt;
  return ControlRequest{m->code, m->uri_path(), m->payload};
}

TEST(PushTest, ControlPathGetsPostOnRekeyAndDeleteOnEviction) {
  Kdc kdc;
  Member m1(kdc, 1), m2(kdc, 2), m3(kdc, 3);
  m1.join(kdc, ace::kRoleRequester, "/ctl");
  EXPECT_TRUE(kdc.gate.take_outgoing().empty());  // the joiner has the keys in its answer
  auto ctx = m1.gm.context();
  ASSERT_TRUE(ctx);

  JoinResult j2 = m2.join(kdc, ace::kRoleRequester);
  auto out = kdc.gate.take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].observation, 0u);
  EXPECT_TRUE(out[0].peer == m1.addr);
  auto r = open_control(**ctx, out[0].datagram);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, code::kPost);
  EXPECT_EQ(r->path, "/ctl");
  auto k = decode_key_distribution(r->payload);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->num, j2.keys.num);
  EXPECT_EQ(k->group_id, j2.keys.group_id);
  ASSERT_TRUE(k->sender_id);

  // Evicted (removed without its own DELETE), then the group is rekeyed: a DELETE
  // to its control path; m2 (no control path) gets nothing pushed.
  ASSERT_TRUE(kdc.store.remove_member("g1", m1.gm.session().node, kNow));
  ASSERT_TRUE(kdc.mgr.rekey("g1", kNow, groupcomm::RekeyEvent::Reason::kLeave));
  kdc.binding->poll(kNow);
  out = kdc.gate.take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  r = open_control(**ctx, out[0].datagram);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, code::kDelete);
  EXPECT_EQ(kdc.binding->push_stats().control_deletes, 1u);
  // A member that leaves by itself gets no DELETE.
  m3.join(kdc, ace::kRoleRequester, "/c3");
  (void)kdc.gate.take_outgoing();
  ASSERT_TRUE(m3.gm.leave());
  EXPECT_TRUE(kdc.gate.take_outgoing().empty());
}


// A KDC restart over the same /authz-info state: the restored contexts demand an Echo
// round (RFC 8613 Appendix B.1.2); GroupMember resends once with the Echo, for its
// operations and for an Observe registration.
TEST(PushTest, MembersPassTheEchoRoundAfterAKdcRestart) {
  Kdc kdc;
  Member m1(kdc, 1), m2(kdc, 2);
  m1.join(kdc, ace::kRoleRequester);
  m2.join(kdc, ace::kRoleRequester);
  ASSERT_TRUE(m1.gm.keys());
  EXPECT_EQ(m1.gm.echo_rounds(), 0u);

  // The restarted KDC: a new gate and binding over the same token and group state.
  ace::AceCoapGate gate2{*kdc.p};
  gate2.serve_kdc(*kdc.authz);
  groupcomm::GroupCoapBinding binding2(*kdc.authz, kdc.tokens, kdc.store, kdc.mgr);
  binding2.attach(gate2);
  ASSERT_EQ(gate2.restore_kdc_contexts(kdc.tokens), 2u);
  kdc.active = &gate2;

  auto k = m1.gm.keys();
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(m1.gm.echo_rounds(), 1u);
  EXPECT_EQ(gate2.num_echo_challenges(), 1u);
  auto v = m1.gm.version();
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_EQ(m1.gm.echo_rounds(), 1u) << "the window is initialised: no second round";
  EXPECT_EQ(gate2.num_echo_challenges(), 1u);
  // Other operations pass it too (each GroupMember operation goes through call()).
  auto pk = m1.gm.pub_keys();
  ASSERT_TRUE(pk) << pk.error().describe();

  // An Observe registration: 4.01 + Echo, then the registration again with it.
  auto o = m2.gm.protect_observe();
  ASSERT_TRUE(o);
  Bytes wire = gate2.handle(o->datagram, kNow, m2.addr);
  Bytes dec(4096);
  auto n = o->ctx->unprotect_response(wire, o->exchange, dec);
  ASSERT_TRUE(n) << "the challenge is protected";
  auto inner = coap::Message::parse(ByteView(dec.data(), *n));
  ASSERT_TRUE(inner);
  auto echo = echo_challenge_of(*inner);
  ASSERT_TRUE(echo);
  EXPECT_TRUE(gate2.observations().empty()) << "nothing registered without the Echo";
  auto o2 = m2.gm.protect_observe(*echo);
  ASSERT_TRUE(o2);
  m2.reg = std::move(*o2);
  EXPECT_TRUE(m2.open_notification(gate2.handle(m2.reg->datagram, kNow, m2.addr)));
  EXPECT_EQ(gate2.observations().size(), 1u);
  // The first registration replayed is refused: no second observation.
  (void)gate2.handle(o->datagram, kNow, m2.addr);
  EXPECT_EQ(gate2.observations().size(), 1u);
  EXPECT_FALSE(echo_challenge_of(coap::Message(coap::Type::kAck, code::kUnauthorized, 0)));
}

}  // namespace
}  // namespace acekdc::client
