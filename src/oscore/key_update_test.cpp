// Key update (key-limits draft §3.3, Figures 5 and 6) and retention (§3.4),
// driven deterministically with FakeRandom and FakeClock.
#include <gtest/gtest.h>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/key_update.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

class KeyUpdate : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  FakeRandom rand_c_{1}, rand_s_{2};
  FakeClock clock_;

  std::unique_ptr<Context> make(bool client, std::optional<KeyLimits> limits = std::nullopt) {
    ContextConfig cfg;
    cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.params.master_salt = *from_hex("9e7ca92223786340");
    cfg.params.id_context = *from_hex("37cbf3210017a2d3");
    cfg.params.sender_id = client ? Bytes{} : Bytes{0x01};
    cfg.params.recipient_id = client ? Bytes{0x01} : Bytes{};
    cfg.limits = limits;
    auto c = Context::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return std::move(*c);
  }

  KeyUpdateConfig cfg(Duration retention = Duration::zero()) {
    KeyUpdateConfig k;
    k.retention = retention;
    k.auto_threshold.reset();
    return k;
  }

  struct Wire {
    Bytes request, response;
    Exchange client_ex, server_ex;
  };

  // send_request: client protects, server verifies. Returns the server's result.
  Expected<size_t, Error> send_request(Session& c, Session& s, Wire& w, const char* path = "/r") {
    coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
    req.token = {0xaa};
    req.set_uri_path(path);
    uint8_t out[256], dec[256];
    auto n = c.protect_request(req, out, w.client_ex);
    if (!n) return unexpected(n.error());
    w.request.assign(out, out + *n);
    return s.unprotect_request(w.request, dec, w.server_ex);
  }
  // send_response: server protects for w.server_ex, client verifies.
  Expected<size_t, Error> send_response(Session& c, Session& s, Wire& w, const char* body = "ok") {
    coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
    resp.token = {0xaa};
    resp.set_payload(body);
    uint8_t out[256], dec[256];
    auto n = s.protect_response(resp, w.server_ex, out);
    if (!n) return unexpected(n.error());
    w.response.assign(out, out + *n);
    auto d = c.unprotect_response(w.response, w.client_ex, dec);
    if (d) {
      auto m = coap::Message::parse(ByteView(dec, *d));
      EXPECT_TRUE(m);
      EXPECT_EQ(as_string(m->payload), body);
    }
    return d;
  }
  bool roundtrip(Session& c, Session& s) {
    Wire w;
    return send_request(c, s, w) && send_response(c, s, w);
  }
  // Both peers' current contexts are the two halves of one Security Context.
  static void expect_paired(const Session& c, const Session& s) {
    EXPECT_EQ(c.current().params().master_secret, s.current().params().master_secret);
    EXPECT_EQ(c.current().params().master_salt, s.current().params().master_salt);
  }
};

TEST_F(KeyUpdate, ClientInitiatedFigure5) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  ASSERT_TRUE(roundtrip(client, server));
  const Bytes old_secret = client.current().params().master_secret;

  client.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));
  EXPECT_EQ(client.state(), KeyUpdateState::kClientAwaitingR2);
  EXPECT_EQ(server.state(), KeyUpdateState::kServerAwaitingConfirm);
  auto req_opt = peek_option(w.request);
  ASSERT_TRUE(req_opt && req_opt->id_detail);
  const Bytes r1(req_opt->id_detail->begin(), req_opt->id_detail->end());
  EXPECT_EQ(r1.size(), 8u);

  ASSERT_TRUE(send_response(client, server, w));
  auto resp_opt = peek_option(w.response);
  ASSERT_TRUE(resp_opt && resp_opt->id_detail);
  ASSERT_EQ(resp_opt->id_detail->size(), 16u);
  EXPECT_EQ(to_hex(resp_opt->id_detail->first(8)), to_hex(r1));  // R1|R2
  // The client achieved key confirmation first: CTX_OLD is gone, CTX_NEW current.
  EXPECT_EQ(client.state(), KeyUpdateState::kIdle);
  EXPECT_EQ(client.updates_completed(), 1u);
  EXPECT_EQ(client.retained_old(), nullptr);
  EXPECT_NE(client.current().params().master_secret, old_secret);
  EXPECT_EQ(to_hex(client.current().params().master_salt), to_hex(*resp_opt->id_detail));
  EXPECT_EQ(to_hex(*client.current().params().id_context), "37cbf3210017a2d3");  // preserved
  EXPECT_EQ(client.current().count_q(), 0u);
  // The server still waits for a request under CTX_NEW.
  EXPECT_EQ(server.state(), KeyUpdateState::kServerAwaitingConfirm);
  EXPECT_EQ(server.updates_completed(), 0u);

  Wire w2;
  ASSERT_TRUE(send_request(client, server, w2));
  EXPECT_EQ(server.state(), KeyUpdateState::kIdle);
  EXPECT_EQ(server.updates_completed(), 1u);
  ASSERT_TRUE(send_response(client, server, w2));
  EXPECT_FALSE(peek_option(w2.response)->id_detail);
  expect_paired(client, server);
  EXPECT_EQ(server.current().sender_id().size(), 1u);
  ASSERT_TRUE(roundtrip(client, server));
}

TEST_F(KeyUpdate, ServerInitiatedFigure6) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  const Bytes old_secret = server.current().params().master_secret;
  server.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));  // a normal request under CTX_OLD
  EXPECT_FALSE(peek_option(w.request)->id_detail);
  ASSERT_TRUE(send_response(client, server, w));  // response under CTX_1 with R1
  auto resp_opt = peek_option(w.response);
  ASSERT_TRUE(resp_opt->id_detail);
  const Bytes r1(resp_opt->id_detail->begin(), resp_opt->id_detail->end());
  EXPECT_EQ(server.state(), KeyUpdateState::kServerSentR1);
  EXPECT_EQ(client.state(), KeyUpdateState::kClientHasNew);

  Wire w2;
  ASSERT_TRUE(send_request(client, server, w2));  // under CTX_NEW with R1|R2
  auto req_opt = peek_option(w2.request);
  ASSERT_TRUE(req_opt->id_detail);
  EXPECT_EQ(to_hex(req_opt->id_detail->first(8)), to_hex(r1));
  EXPECT_EQ(server.state(), KeyUpdateState::kIdle);  // verified under CTX_NEW, OLD deleted
  EXPECT_EQ(server.updates_completed(), 1u);
  EXPECT_NE(server.current().params().master_secret, old_secret);
  EXPECT_EQ(client.state(), KeyUpdateState::kClientHasNew);

  ASSERT_TRUE(send_response(client, server, w2));
  EXPECT_EQ(client.state(), KeyUpdateState::kIdle);
  EXPECT_EQ(client.updates_completed(), 1u);
  expect_paired(client, server);
  ASSERT_TRUE(roundtrip(client, server));
}

TEST_F(KeyUpdate, WrongR1IsRejected) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  client.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
  uint8_t out[256], dec[256];
  auto n = server.protect_response(resp, w.server_ex, out);
  ASSERT_TRUE(n);
  // Flip a bit of R1 inside 'id detail' (option value: flags, flags2, x, R1|R2).
  auto parsed = coap::MessageView::parse(ByteView(out, *n));
  const uint8_t* detail = parsed->find(cp::coap::option::kOscore)->value.data() + 3;
  out[detail - out] ^= 0x01;
  EXPECT_EQ(client.unprotect_response(ByteView(out, *n), w.client_ex, dec).error(), Error::kKeyUpdateMismatch);
  EXPECT_EQ(client.state(), KeyUpdateState::kClientAwaitingR2);
  // A flipped R2 passes the R1 check but derives the wrong CTX_NEW.
  out[detail - out] ^= 0x01;
  out[detail - out + 8] ^= 0x01;
  EXPECT_EQ(client.unprotect_response(ByteView(out, *n), w.client_ex, dec).error(), Error::kDecryptionFailed);
  EXPECT_EQ(client.state(), KeyUpdateState::kClientAwaitingR2);
  EXPECT_EQ(client.updates_completed(), 0u);
}

TEST_F(KeyUpdate, ClientRestartsAfterALostResponse) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  client.request_key_update();
  Wire lost;
  ASSERT_TRUE(send_request(client, server, lost));  // the server's answer never arrives
  EXPECT_EQ(client.state(), KeyUpdateState::kClientAwaitingR2);
  client.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));  // a new R1; the server derives a new CTX_NEW
  ASSERT_TRUE(send_response(client, server, w));
  ASSERT_TRUE(roundtrip(client, server));
  EXPECT_EQ(client.updates_completed(), 1u);
  EXPECT_EQ(server.updates_completed(), 1u);
  expect_paired(client, server);
}

TEST_F(KeyUpdate, ReplayedR1RequestIsRejected) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  client.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));
  uint8_t dec[256];
  Exchange ex;
  // CTX_1 is derived afresh, but the replay window continues across the chain.
  EXPECT_EQ(server.unprotect_request(w.request, dec, ex).error(), Error::kReplay);
}

TEST_F(KeyUpdate, RetentionKeepsOldContextForLateMessages) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg(std::chrono::seconds(10)));
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg(std::chrono::seconds(10)));
  // A request under CTX_OLD that the server will only see after the update.
  Wire late;
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 9);
  uint8_t out[256], dec[256];
  auto n = client.protect_request(req, out, late.client_ex);
  ASSERT_TRUE(n);
  late.request.assign(out, out + *n);
  Wire later;  // a second one, delivered only after the retention period
  n = client.protect_request(req, out, later.client_ex);
  ASSERT_TRUE(n);
  later.request.assign(out, out + *n);

  client.request_key_update();
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));
  ASSERT_TRUE(send_response(client, server, w));
  Wire w2;
  ASSERT_TRUE(send_request(client, server, w2));
  ASSERT_EQ(server.updates_completed(), 1u);
  ASSERT_NE(server.retained_old(), nullptr);

  // Tried with CTX_NEW first (a failed decryption there), then with CTX_OLD.
  const uint64_t v_before = server.current().count_v();
  Exchange sx;
  ASSERT_TRUE(server.unprotect_request(late.request, dec, sx));
  EXPECT_EQ(server.current().count_v(), v_before + 1);
  // The answer goes out under the context that verified the request (CTX_OLD).
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 9);
  auto r = server.protect_response(resp, sx, out);
  ASSERT_TRUE(r);
  ASSERT_NE(client.retained_old(), nullptr);
  EXPECT_TRUE(client.unprotect_response(ByteView(out, *r), late.client_ex, dec));

  // After the retention period CTX_OLD is deleted.
  clock_.advance(std::chrono::seconds(11));
  Exchange sx2;
  auto again = client.protect_request(req, out, late.client_ex);  // also expires the client's copy
  ASSERT_TRUE(again);
  EXPECT_EQ(client.retained_old(), nullptr);
  EXPECT_EQ(server.unprotect_request(later.request, dec, sx2).error(), Error::kDecryptionFailed);
  EXPECT_EQ(server.retained_old(), nullptr);
}

TEST_F(KeyUpdate, StartsAutomaticallyBeforeTheLimit) {
  KeyLimits small{10, 1024, 256};
  KeyUpdateConfig k = cfg();
  k.auto_threshold = 0.5;
  Session client(Role::kClient, make(true, small), rand_c_, clock_, k);
  Session server(Role::kServer, make(false, small), rand_s_, clock_, k);
  int updates_seen = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(roundtrip(client, server)) << i;
    EXPECT_LT(client.current().count_q(), 10u);
    EXPECT_LT(server.current().count_q(), 10u);
    updates_seen = static_cast<int>(client.updates_completed());
  }
  EXPECT_GE(updates_seen, 4);
  expect_paired(client, server);
}

TEST_F(KeyUpdate, ForgeryCountTriggersServerInitiatedUpdate) {
  KeyLimits lim{1 << 20, 4, 256};
  KeyUpdateConfig k = cfg();
  k.auto_threshold_v = 0.5;  // start after 2 failed decryptions
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false, lim), rand_s_, clock_, k);
  uint8_t dec[256];
  for (int i = 0; i < 2; ++i) {
    Wire w;
    coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
    uint8_t out[256];
    auto n = client.protect_request(req, out, w.client_ex);
    ASSERT_TRUE(n);
    out[*n - 1] ^= 0x55;  // a forgery
    Exchange sx;
    EXPECT_EQ(server.unprotect_request(ByteView(out, *n), dec, sx).error(), Error::kDecryptionFailed);
  }
  EXPECT_EQ(server.current().count_v(), 2u);
  Wire w;
  ASSERT_TRUE(send_request(client, server, w));
  EXPECT_TRUE(server.key_update_wanted());
  ASSERT_TRUE(send_response(client, server, w));  // carries R1 (Figure 6)
  EXPECT_EQ(server.state(), KeyUpdateState::kServerSentR1);
  ASSERT_TRUE(roundtrip(client, server));
  EXPECT_EQ(server.updates_completed(), 1u);
  EXPECT_EQ(server.current().count_v(), 0u);
}

TEST_F(KeyUpdate, WorksEvenAfterTheOldSenderKeyIsExhausted) {
  KeyLimits small{2, 1024, 256};
  Session client(Role::kClient, make(true, small), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false, small), rand_s_, clock_, cfg());
  ASSERT_TRUE(roundtrip(client, server));
  ASSERT_TRUE(roundtrip(client, server));
  Wire w;
  EXPECT_EQ(send_request(client, server, w).error(), Error::kSenderLimitReached);
  client.request_key_update();  // CTX_1 and CTX_NEW have fresh keys
  Wire u;
  ASSERT_TRUE(send_request(client, server, u));
  ASSERT_TRUE(send_response(client, server, u));
  ASSERT_TRUE(roundtrip(client, server));
  EXPECT_EQ(client.updates_completed(), 1u);
  EXPECT_EQ(server.updates_completed(), 1u);
}

TEST_F(KeyUpdate, UnexpectedIdDetailIsRejected) {
  Session client(Role::kClient, make(true), rand_c_, clock_, cfg());
  Session server(Role::kServer, make(false), rand_s_, clock_, cfg());
  // An R1|R2 the server never offered.
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t out[256], dec[256];
  Exchange cx, sx;
  ProtectOptions po;
  Bytes fake(16, 0x42);
  po.id_detail = ByteView(fake);
  auto n = client.current().protect_request(req, out, cx, po);
  ASSERT_TRUE(n);
  EXPECT_EQ(server.unprotect_request(ByteView(out, *n), dec, sx).error(), Error::kKeyUpdateMismatch);
  // An id detail of another length.
  Bytes odd(5, 0x42);
  po.id_detail = ByteView(odd);
  n = client.current().protect_request(req, out, cx, po);
  ASSERT_TRUE(n);
  EXPECT_EQ(server.unprotect_request(ByteView(out, *n), dec, sx).error(), Error::kKeyUpdateMismatch);
  EXPECT_EQ(server.state(), KeyUpdateState::kIdle);
}

}  // namespace
