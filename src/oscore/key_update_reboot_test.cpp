// Key update across reboots (issue 4: "survive either peer rebooting mid-way
// without reusing any (key, nonce) pair"): Session::export_state / restore with
// a FileSequenceStore, the replay window re-initialised with Echo (RFC 8613
// Appendix B.1.2), and a recording crypto provider that fails the test on any
// (key, nonce) pair sealed twice.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/key_update.h"
#include "oscore/recording_provider_test.h"

using namespace acekdc;
using namespace acekdc::oscore;
using acekdc::oscore::recording::RecordingProvider;

namespace {

namespace code = cp::coap::code;

// Peer: one endpoint with its state file (the exported Session state, written
// whenever state_generation() changes, before anything is sent) and its
// sequence number directory.
struct Peer {
  Role role;
  std::string dir;
  std::unique_ptr<FileSequenceStore> store;
  std::unique_ptr<Session> session;
  Bytes state_file;
  uint64_t saved_generation = ~uint64_t{0};
  uint64_t num_reboots = 0;

  void persist() {
    if (session->state_generation() != saved_generation) {
      state_file = session->export_state();
      saved_generation = session->state_generation();
    }
  }
};

class KeyUpdateReboot : public ::testing::Test {
 protected:
  RecordingProvider::Log log_;
  RecordingProvider provider_{log_};
  FakeRandom rand_c_{101}, rand_s_{202};
  FakeClock clock_;
  std::string root_;
  Peer client_{Role::kClient, {}, {}, {}, {}};
  Peer server_{Role::kServer, {}, {}, {}, {}};

  void SetUp() override {
    char tmpl[] = "/tmp/acekdc-kureboot-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    client_.dir = root_ + "/client";
    server_.dir = root_ + "/server";
    start(client_);
    start(server_);
  }
  void TearDown() override {
    EXPECT_EQ(log_.num_reused, 0u) << "a (key, nonce) pair was sealed twice";
    std::filesystem::remove_all(root_);
  }

  ContextConfig base(Peer& p) {
    const bool client = p.role == Role::kClient;
    ContextConfig cfg;
    cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.params.master_salt = *from_hex("9e7ca92223786340");
    cfg.params.id_context = *from_hex("37cbf3210017a2d3");
    cfg.params.sender_id = client ? Bytes{} : Bytes{0x01};
    cfg.params.recipient_id = client ? Bytes{0x01} : Bytes{};
    cfg.store = p.store.get();
    cfg.seq_chunk = 3;  // small chunks: many reservations, and a reboot skips at most 3
    return cfg;
  }
  KeyUpdateConfig ku() {
    KeyUpdateConfig k;
    k.auto_threshold.reset();
    return k;
  }
  Random& rand(Peer& p) { return p.role == Role::kClient ? rand_c_ : rand_s_; }

  void start(Peer& p) {
    p.store = std::make_unique<FileSequenceStore>(p.dir);
    auto ctx = Context::create(provider_, base(p));
    ASSERT_TRUE(ctx) << to_string(ctx.error());
    p.session = std::make_unique<Session>(p.role, std::move(*ctx), rand(p), clock_, ku());
    p.persist();
  }
  // reboot: everything in memory is lost; the state file and the sequence
  // directory survive. The server has no trustworthy replay window.
  void reboot(Peer& p) {
    p.session.reset();
    p.store = std::make_unique<FileSequenceStore>(p.dir);
    auto s = Session::restore(p.role, provider_, base(p), p.state_file, rand(p), clock_, ku());
    ASSERT_TRUE(s) << to_string(s.error());
    p.session = std::move(*s);
    p.saved_generation = p.session->state_generation();
    ++p.num_reboots;
  }

  struct Leg {
    Bytes request, response;
    Exchange cx, sx;
  };
  coap::Message get(std::optional<ByteView> echo = std::nullopt) {
    coap::Message req(coap::Type::kCon, code::kGet, 3);
    req.token = {0x77};
    req.set_uri_path("/state");
    if (echo) req.add_option(cp::coap::option::kEcho, *echo);
    return req;
  }
  Expected<size_t, Error> send(Leg& leg, std::optional<ByteView> echo = std::nullopt) {
    uint8_t out[256], dec[256];
    auto n = client_.session->protect_request(get(echo), out, leg.cx);
    client_.persist();
    if (!n) return unexpected(n.error());
    leg.request.assign(out, out + *n);
    auto r = server_.session->unprotect_request(leg.request, dec, leg.sx);
    server_.persist();
    return r;
  }
  // reply: the server answers `code` (with Echo when asked); returns the
  // client's decrypted response.
  Expected<coap::Message, Error> reply(Leg& leg, uint8_t response_code, std::optional<ByteView> echo = std::nullopt) {
    coap::Message resp(coap::Type::kAck, response_code, 3);
    resp.token = {0x77};
    if (echo) resp.add_option(cp::coap::option::kEcho, *echo);
    uint8_t out[256], dec[256];
    auto n = server_.session->protect_response(resp, leg.sx, out);
    server_.persist();
    if (!n) return unexpected(n.error());
    leg.response.assign(out, out + *n);
    auto d = client_.session->unprotect_response(leg.response, leg.cx, dec);
    client_.persist();
    if (!d) return unexpected(d.error());
    auto m = coap::Message::parse(ByteView(dec, *d));
    if (!m) return unexpected(Error::kMalformedMessage);
    return *m;
  }
  // exchange: one request / response, answering an Echo challenge the way the
  // server layer does (protected 4.01 with Echo, the client resends once).
  void exchange() {
    Leg leg;
    auto r = send(leg);
    if (!r && r.error() == Error::kEchoRequired) {
      const Bytes challenge = echo_challenge();
      ASSERT_EQ(challenge.size(), 8u);
      auto m = reply(leg, code::kUnauthorized, ByteView(challenge));
      ASSERT_TRUE(m) << to_string(m.error());
      ASSERT_EQ(m->code, code::kUnauthorized);
      ASSERT_TRUE(m->find(cp::coap::option::kEcho));
      const Bytes echo = m->find(cp::coap::option::kEcho)->value;
      leg = Leg{};
      r = send(leg, ByteView(echo));
    }
    ASSERT_TRUE(r) << to_string(r.error());
    auto m = reply(leg, code::kContent);
    ASSERT_TRUE(m) << to_string(m.error());
    EXPECT_EQ(m->code, code::kContent);
  }
  Bytes echo_challenge() {
    // The challenge is shared by every context of the server's chain.
    return to_bytes(server_.session->current().echo_challenge());
  }
  void expect_paired() {
    EXPECT_EQ(client_.session->current().params().master_secret, server_.session->current().params().master_secret);
    EXPECT_EQ(client_.session->current().params().master_salt, server_.session->current().params().master_salt);
  }
  // Every Partial IV a sender puts on the wire, across all its contexts and reboots.
  static void expect_unique_piv(const Bytes& datagram, std::set<uint64_t>& seen) {
    auto ov = peek_option(datagram);
    ASSERT_TRUE(ov);
    if (ov->partial_iv.empty()) return;
    uint64_t v = 0;
    for (uint8_t b : ov->partial_iv) v = v << 8 | b;
    EXPECT_TRUE(seen.insert(v).second) << "Partial IV " << v << " sent twice";
  }
};

TEST_F(KeyUpdateReboot, StateRoundTripsAndIsStrict) {
  client_.session->request_key_update();
  client_.persist();
  const Bytes st = client_.state_file;
  auto again = Session::restore(Role::kClient, provider_, base(client_), st, rand_c_, clock_, ku());
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->key_update_wanted());
  EXPECT_EQ((*again)->export_state(), st);
  // The state holds the master secret: it is a secret file, but never in an error.
  EXPECT_NE(to_hex(st).find("0102030405060708090a0b0c0d0e0f10"), std::string::npos);

  auto bad = [&](auto edit, Role role = Role::kClient) {
    Bytes b = st;
    edit(b);
    return Session::restore(role, provider_, base(client_), b, rand_c_, clock_, ku());
  };
  EXPECT_EQ(bad([](Bytes& b) { b[0] = 9; }).error(), Error::kMalformedMessage);
  EXPECT_EQ(bad([](Bytes& b) { b.push_back(0); }).error(), Error::kMalformedMessage);
  EXPECT_EQ(bad([](Bytes& b) { b.pop_back(); }).error(), Error::kMalformedMessage);
  EXPECT_EQ(bad([](Bytes& b) { b[3] |= 0x80; }).error(), Error::kMalformedMessage);
  EXPECT_EQ(bad([](Bytes& b) { b[2] = 7; }).error(), Error::kMalformedMessage);
  EXPECT_EQ(bad([](Bytes&) {}, Role::kServer).error(), Error::kInvalidArgument);  // role
  auto other = base(client_);
  other.params.sender_id = {0x09};
  EXPECT_EQ(Session::restore(Role::kClient, provider_, other, st, rand_c_, clock_, ku()).error(),
            Error::kInvalidArgument);
  EXPECT_FALSE(Session::restore(Role::kClient, provider_, base(client_), {}, rand_c_, clock_, ku()));
}

TEST_F(KeyUpdateReboot, BothRebootAfterACompletedUpdate) {
  std::set<uint64_t> client_pivs, server_pivs;
  exchange();
  // Figure 5, client-initiated, completes.
  client_.session->request_key_update();
  exchange();
  exchange();
  ASSERT_EQ(client_.session->updates_completed(), 1u);
  ASSERT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
  const Bytes updated_secret = client_.session->current().params().master_secret;
  EXPECT_NE(to_hex(updated_secret), "0102030405060708090a0b0c0d0e0f10");
  const uint64_t client_next = client_.session->current().next_sequence_number();
  const uint64_t server_next = server_.session->current().next_sequence_number();

  reboot(client_);
  reboot(server_);
  // Restored on the updated keys, sequence numbers never go back.
  EXPECT_EQ(client_.session->current().params().master_secret, updated_secret);
  EXPECT_EQ(client_.session->updates_completed(), 1u);
  EXPECT_GE(client_.session->current().next_sequence_number(), client_next);
  EXPECT_GE(server_.session->current().next_sequence_number(), server_next);
  EXPECT_FALSE(server_.session->current().replay_window().initialised());
  // count_q covers at least what the chain's allocator reserved for this key.
  EXPECT_GT(client_.session->current().count_q(), 0u);

  // The first request meets the Echo challenge, then everything flows.
  Leg leg;
  auto r = send(leg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kEchoRequired);
  expect_unique_piv(leg.request, client_pivs);
  const Bytes challenge = echo_challenge();
  auto m = reply(leg, code::kUnauthorized, ByteView(challenge));
  ASSERT_TRUE(m) << to_string(m.error());
  expect_unique_piv(leg.response, server_pivs);  // the 4.01 carries the server's own PIV
  auto ov = peek_option(leg.response);
  ASSERT_TRUE(ov);
  EXPECT_FALSE(ov->partial_iv.empty());
  Leg again;
  ASSERT_TRUE(send(again, ByteView(challenge)));
  expect_unique_piv(again.request, client_pivs);
  ASSERT_TRUE(reply(again, code::kContent));
  for (int i = 0; i < 5; ++i) exchange();
  expect_paired();
  // And another update after the reboot, server-initiated (Figure 6).
  server_.session->request_key_update();
  exchange();
  exchange();
  exchange();
  EXPECT_EQ(client_.session->updates_completed(), 2u);
  EXPECT_EQ(server_.session->updates_completed(), 2u);
  expect_paired();
  EXPECT_GT(log_.num_seals, 20u);
}

TEST_F(KeyUpdateReboot, ClientRebootsAfterSendingR1) {
  exchange();
  client_.session->request_key_update();
  Leg r1;
  ASSERT_TRUE(send(r1));  // request under CTX_1 with R1; the server holds CTX_NEW
  EXPECT_EQ(client_.session->state(), KeyUpdateState::kClientAwaitingR2);
  EXPECT_EQ(server_.session->state(), KeyUpdateState::kServerAwaitingConfirm);
  const uint64_t client_next = client_.session->current().next_sequence_number();
  reboot(client_);  // R1 is lost: the client is "idle, update wanted"
  EXPECT_EQ(client_.session->state(), KeyUpdateState::kIdle);
  EXPECT_TRUE(client_.session->key_update_wanted());
  EXPECT_GE(client_.session->current().next_sequence_number(), client_next);
  // The response with R1|R2 to the lost R1 no longer fits.
  coap::Message resp(coap::Type::kAck, code::kContent, 3);
  uint8_t out[256], dec[256];
  auto n = server_.session->protect_response(resp, r1.sx, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(client_.session->unprotect_response(ByteView(out, *n), r1.cx, dec).error(), Error::kKeyUpdateMismatch);
  // A fresh update (new R1) completes.
  exchange();
  exchange();
  EXPECT_EQ(client_.session->updates_completed(), 1u);
  EXPECT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
}

TEST_F(KeyUpdateReboot, ServerRebootsAfterDerivingCtxNew) {
  exchange();
  client_.session->request_key_update();
  exchange();  // R1 -> server derives CTX_NEW, answers under it; the client confirms and deletes CTX_OLD
  ASSERT_EQ(server_.session->state(), KeyUpdateState::kServerAwaitingConfirm);
  ASSERT_EQ(client_.session->updates_completed(), 1u);
  reboot(server_);
  // CTX_NEW is re-derived from the saved R1|R2: the client (which has only
  // CTX_NEW now) is understood after the Echo round.
  EXPECT_EQ(server_.session->state(), KeyUpdateState::kServerAwaitingConfirm);
  ASSERT_NE(server_.session->pending_new(), nullptr);
  exchange();
  EXPECT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
  exchange();
}

TEST_F(KeyUpdateReboot, ServerRebootsAfterSendingR1) {
  exchange();
  server_.session->request_key_update();
  exchange();  // Figure 6: the response under CTX_1 carries R1; the client derives CTX_NEW
  ASSERT_EQ(server_.session->state(), KeyUpdateState::kServerSentR1);
  ASSERT_EQ(client_.session->state(), KeyUpdateState::kClientHasNew);
  reboot(server_);
  EXPECT_EQ(server_.session->state(), KeyUpdateState::kServerSentR1);
  exchange();  // R1|R2 under CTX_NEW: Echo round, then the update completes
  exchange();
  EXPECT_EQ(client_.session->updates_completed(), 1u);
  EXPECT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
}

TEST_F(KeyUpdateReboot, ClientRebootsHoldingCtxNew) {
  exchange();
  server_.session->request_key_update();
  exchange();
  ASSERT_EQ(client_.session->state(), KeyUpdateState::kClientHasNew);
  reboot(client_);
  EXPECT_EQ(client_.session->state(), KeyUpdateState::kClientHasNew);
  exchange();
  exchange();
  EXPECT_EQ(client_.session->updates_completed(), 1u);
  EXPECT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
}

TEST_F(KeyUpdateReboot, ServerRebootDuringR1RequestStartsAFreshUpdate) {
  exchange();
  reboot(server_);  // window lost
  client_.session->request_key_update();
  // The R1 request meets the Echo challenge (answered under CTX_1); the client
  // then starts the update again with the Echo, and it completes.
  exchange();
  exchange();
  EXPECT_EQ(client_.session->updates_completed(), 1u);
  EXPECT_EQ(server_.session->updates_completed(), 1u);
  expect_paired();
}

TEST_F(KeyUpdateReboot, OldRequestReplayedAfterServerRebootIsNotAnswered) {
  Leg old;
  ASSERT_TRUE(send(old));
  ASSERT_TRUE(reply(old, code::kContent));  // answered reusing the request nonce
  reboot(server_);
  // Replayed: verified, but not accepted; the 4.01 + Echo uses a fresh Partial IV,
  // so the (key, nonce) pair of the first answer is not sealed again (TearDown).
  uint8_t dec[256], out[256];
  Exchange sx;
  auto r = server_.session->unprotect_request(old.request, dec, sx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kEchoRequired);
  coap::Message unauth(coap::Type::kAck, code::kUnauthorized, 3);
  unauth.add_option(cp::coap::option::kEcho, echo_challenge());
  ASSERT_TRUE(server_.session->protect_response(unauth, sx, out));
  EXPECT_FALSE(server_.session->current().replay_window().initialised());
  exchange();
}

TEST_F(KeyUpdateReboot, RepeatedRebootsNeverReuseANonce) {
  std::set<uint64_t> client_pivs;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 4; ++i) {
      Leg leg;
      auto r = send(leg);
      expect_unique_piv(leg.request, client_pivs);
      if (!r && r.error() == Error::kEchoRequired) {
        const Bytes challenge = echo_challenge();
        ASSERT_TRUE(reply(leg, code::kUnauthorized, ByteView(challenge)));
        Leg again;
        ASSERT_TRUE(send(again, ByteView(challenge)));
        expect_unique_piv(again.request, client_pivs);
        ASSERT_TRUE(reply(again, code::kContent));
        continue;
      }
      ASSERT_TRUE(r) << to_string(r.error());
      ASSERT_TRUE(reply(leg, code::kContent));
    }
    if (round % 2 == 0) client_.session->request_key_update();
    else server_.session->request_key_update();
    exchange();
    exchange();
    reboot(round % 3 == 0 ? server_ : client_);
  }
  expect_paired();
  EXPECT_GE(client_.session->updates_completed(), 5u);
}

}  // namespace
