// Replay window re-initialisation with Echo (RFC 8613 Appendix B.1.2, RFC 9175)
// and the persisted replay window (ReplayWindow::serialize / deserialize).
#include <gtest/gtest.h>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/context.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

namespace opt = cp::coap::option;
namespace code = cp::coap::code;

class Echo : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  FakeRandom random_{7};

  ContextConfig config(bool client) {
    ContextConfig cfg;
    cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.params.master_salt = *from_hex("9e7ca92223786340");
    cfg.params.sender_id = client ? Bytes{} : Bytes{0x01};
    cfg.params.recipient_id = client ? Bytes{0x01} : Bytes{};
    return cfg;
  }
  std::unique_ptr<Context> client(uint64_t initial_seq = 0) {
    auto cfg = config(true);
    cfg.initial_seq = initial_seq;
    auto c = Context::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  // A server that restarted without a trustworthy replay window.
  std::unique_ptr<Context> rebooted_server(uint64_t initial_seq = 100) {
    auto cfg = config(false);
    cfg.replay_window_initialised = false;
    cfg.random = &random_;
    cfg.initial_seq = initial_seq;
    auto c = Context::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  Bytes request(Context& c, Exchange& ex, std::optional<ByteView> echo = std::nullopt) {
    coap::Message req(coap::Type::kCon, code::kGet, 1);
    req.token = {0x42};
    req.set_uri_path("/temp");
    if (echo) req.add_option(opt::kEcho, *echo);
    uint8_t out[256];
    auto n = c.protect_request(req, out, ex);
    EXPECT_TRUE(n);
    return n ? Bytes(out, out + *n) : Bytes{};
  }
};

TEST_F(Echo, ContextNeedsRandomForAnUninitialisedWindow) {
  auto cfg = config(false);
  cfg.replay_window_initialised = false;
  auto c = Context::create(*provider_, std::move(cfg));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), Error::kInvalidArgument);
  // The default is today's behaviour: an initialised window and no challenge.
  auto ok = Context::create(*provider_, config(false));
  ASSERT_TRUE(ok);
  EXPECT_TRUE((*ok)->replay_window().initialised());
  EXPECT_TRUE((*ok)->echo_challenge().empty());
}

TEST_F(Echo, FullExchangeInitialisesTheWindowAtThePartialIv) {
  auto cli = client(5);
  auto srv = rebooted_server();
  EXPECT_FALSE(srv->replay_window().initialised());
  const Bytes challenge = to_bytes(srv->echo_challenge());
  ASSERT_EQ(challenge.size(), 8u);

  // Request #1 decrypts but is not accepted: kEchoRequired, exchange filled.
  Exchange cx, sx;
  Bytes r1 = request(*cli, cx);
  uint8_t dec[256];
  auto a = srv->unprotect_request(r1, dec, sx);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), Error::kEchoRequired);
  EXPECT_FALSE(error_response(Error::kEchoRequired).has_value());
  EXPECT_EQ(to_hex(sx.request_piv()), "05");
  EXPECT_EQ(srv->count_v(), 0u);
  EXPECT_FALSE(srv->replay_window().initialised());
  EXPECT_EQ(to_hex(srv->echo_challenge()), to_hex(challenge));  // stable

  // The protected 4.01 with Echo: it must carry the server's own Partial IV.
  coap::Message unauth(coap::Type::kAck, code::kUnauthorized, 1);
  unauth.token = {0x42};
  unauth.add_option(opt::kEcho, srv->echo_challenge());
  uint8_t wire[256];
  const uint64_t server_seq = srv->next_sequence_number();
  auto n = srv->protect_response(unauth, sx, wire);
  ASSERT_TRUE(n);
  EXPECT_EQ(srv->next_sequence_number(), server_seq + 1);
  auto ov = peek_option(ByteView(wire, *n));
  ASSERT_TRUE(ov);
  EXPECT_FALSE(ov->partial_iv.empty());
  // The client verifies it and finds the Echo option as an Inner option.
  auto d = cli->unprotect_response(ByteView(wire, *n), cx, dec);
  ASSERT_TRUE(d);
  auto resp = coap::Message::parse(ByteView(dec, *d));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->code, code::kUnauthorized);
  ASSERT_TRUE(resp->find(opt::kEcho));
  const Bytes echo_value = resp->find(opt::kEcho)->value;
  EXPECT_EQ(echo_value, challenge);

  // Request #2 carries the Echo: accepted, window initialised at its PIV (6).
  Exchange cx2, sx2;
  Bytes r2 = request(*cli, cx2, ByteView(echo_value));
  auto b = srv->unprotect_request(r2, dec, sx2);
  ASSERT_TRUE(b) << to_string(b.error());
  EXPECT_TRUE(srv->replay_window().initialised());
  EXPECT_EQ(srv->replay_window().highest(), 6u);
  EXPECT_TRUE(srv->echo_challenge().empty());
  auto got = coap::Message::parse(ByteView(dec, *b));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->uri_path(), "/temp");

  // Replays after initialisation: kReplay, including request #1 (older than the lower limit).
  EXPECT_EQ(srv->unprotect_request(r2, dec, sx2).error(), Error::kReplay);
  EXPECT_EQ(srv->unprotect_request(r1, dec, sx2).error(), Error::kReplay);
  EXPECT_EQ(srv->count_v(), 0u);
  // New requests flow normally; a reply can reuse the request nonce again.
  Exchange cx3, sx3;
  Bytes r3 = request(*cli, cx3);
  ASSERT_TRUE(srv->unprotect_request(r3, dec, sx3));
  EXPECT_FALSE(sx3.nonce_used);
}

TEST_F(Echo, LowerLimitRejectsOlderRequestsInsideTheWindow) {
  // Requests 0..9 were sent before the reboot; the server never saw 3..9.
  auto cli = client(0);
  std::vector<Bytes> old;
  for (int i = 0; i < 10; ++i) {
    Exchange ex;
    old.push_back(request(*cli, ex));
  }
  auto srv = rebooted_server();
  Exchange cx, sx;
  Bytes fresh = request(*cli, cx, srv->echo_challenge());  // PIV 10
  uint8_t dec[256];
  ASSERT_TRUE(srv->unprotect_request(fresh, dec, sx));
  for (const auto& m : old) EXPECT_EQ(srv->unprotect_request(m, dec, sx).error(), Error::kReplay);
  EXPECT_EQ(srv->count_v(), 0u);
}

TEST_F(Echo, WrongOrMissingEchoKeepsAskingAndChallengeIsStable) {
  auto cli = client();
  auto srv = rebooted_server();
  const Bytes challenge = to_bytes(srv->echo_challenge());
  uint8_t dec[256];
  Bytes wrong = challenge;
  wrong[0] ^= 0x80;
  const Bytes none;
  const Bytes longer = [&] { Bytes b = challenge; b.push_back(0); return b; }();
  for (const Bytes* e : std::vector<const Bytes*>{&wrong, &none, &longer}) {
    Exchange cx, sx;
    Bytes r = request(*cli, cx, ByteView(*e));
    auto a = srv->unprotect_request(r, dec, sx);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error(), Error::kEchoRequired);
    EXPECT_TRUE(sx.nonce_used);
    EXPECT_FALSE(srv->replay_window().initialised());
    EXPECT_EQ(to_hex(srv->echo_challenge()), to_hex(challenge));
  }
  // Two Echo options, one of them right: still refused.
  {
    coap::Message req(coap::Type::kCon, code::kGet, 1);
    req.add_option(opt::kEcho, wrong);
    req.add_option(opt::kEcho, challenge);
    uint8_t out[256];
    Exchange cx, sx;
    auto n = cli->protect_request(req, out, cx);
    ASSERT_TRUE(n);
    EXPECT_EQ(srv->unprotect_request(ByteView(out, *n), dec, sx).error(), Error::kEchoRequired);
  }
  // The same request sent again is decrypted again (no window yet): still kEchoRequired.
  Exchange cx, sx;
  Bytes r = request(*cli, cx);
  EXPECT_EQ(srv->unprotect_request(r, dec, sx).error(), Error::kEchoRequired);
  EXPECT_EQ(srv->unprotect_request(r, dec, sx).error(), Error::kEchoRequired);
  EXPECT_EQ(srv->count_v(), 0u);
}

TEST_F(Echo, ForgedRequestsCountInCountVOnly) {
  auto cli = client();
  auto srv = rebooted_server();
  uint8_t dec[256];
  Exchange cx, sx;
  Bytes r = request(*cli, cx, srv->echo_challenge());
  Bytes forged = r;
  forged.back() ^= 1;
  EXPECT_EQ(srv->unprotect_request(forged, dec, sx).error(), Error::kDecryptionFailed);
  EXPECT_EQ(srv->count_v(), 1u);
  EXPECT_FALSE(srv->replay_window().initialised());
  // The genuine one still initialises the window.
  ASSERT_TRUE(srv->unprotect_request(r, dec, sx));
  EXPECT_TRUE(srv->replay_window().initialised());
  EXPECT_EQ(srv->count_v(), 1u);
}

TEST_F(Echo, ChallengeIsSharedWithDerivedContexts) {
  auto srv = rebooted_server();
  auto derived = srv->derive_updated(*from_hex("0011223344556677"));
  ASSERT_TRUE(derived);
  EXPECT_FALSE((*derived)->replay_window().initialised());
  EXPECT_EQ(to_hex((*derived)->echo_challenge()), to_hex(srv->echo_challenge()));
}

TEST_F(Echo, RestoredWindowSkipsTheEchoAndKeepsRejectingReplays) {
  auto cli = client();
  auto cfg = config(false);
  auto srv1 = std::move(*Context::create(*provider_, cfg));
  uint8_t dec[256];
  std::vector<Bytes> seen;
  for (int i = 0; i < 4; ++i) {
    Exchange cx, sx;
    seen.push_back(request(*cli, cx));
    ASSERT_TRUE(srv1->unprotect_request(seen.back(), dec, sx));
  }
  Exchange skipped_ex;
  Bytes skipped = request(*cli, skipped_ex);  // PIV 4, never delivered before the restart
  const Bytes state = srv1->replay_window().serialize();

  // Restart: restore the saved window; old requests are replays, the skipped one is fine.
  auto srv2 = std::move(*Context::create(*provider_, cfg));
  auto w = ReplayWindow::deserialize(state);
  ASSERT_TRUE(w);
  srv2->restore_replay_window(*w);
  Exchange sx;
  for (const auto& m : seen) EXPECT_EQ(srv2->unprotect_request(m, dec, sx).error(), Error::kReplay);
  EXPECT_TRUE(srv2->unprotect_request(skipped, dec, sx));

  // Restoring an uninitialised window asks for an Echo (a challenge is drawn).
  auto cfg3 = config(false);
  cfg3.random = &random_;
  auto srv3 = std::move(*Context::create(*provider_, cfg3));
  ReplayWindow uninit;
  uninit.mark_uninitialised();
  auto back = ReplayWindow::deserialize(uninit.serialize());
  ASSERT_TRUE(back);
  srv3->restore_replay_window(*back);
  EXPECT_EQ(srv3->echo_challenge().size(), 8u);
  Exchange cx4;
  Bytes r = request(*cli, cx4);
  EXPECT_EQ(srv3->unprotect_request(r, dec, sx).error(), Error::kEchoRequired);
}

TEST_F(Echo, UninitialisedWindowWithoutRandomNeverAccepts) {
  auto cli = client();
  auto srv = std::move(*Context::create(*provider_, config(false)));
  ReplayWindow uninit;
  uninit.mark_uninitialised();
  srv->restore_replay_window(uninit);  // no ContextConfig::random: no challenge
  EXPECT_TRUE(srv->echo_challenge().empty());
  uint8_t dec[256];
  const Bytes none;
  for (const Bytes* e : std::vector<const Bytes*>{nullptr, &none}) {
    Exchange cx, sx;
    Bytes r = e ? request(*cli, cx, ByteView(*e)) : request(*cli, cx);
    EXPECT_EQ(srv->unprotect_request(r, dec, sx).error(), Error::kEchoRequired);
  }
}

TEST(ReplayWindowEcho, InitialiseAtIsALowerLimit) {
  ReplayWindow w(64);
  w.mark_uninitialised();
  EXPECT_FALSE(w.initialised());
  w.initialise_at(100);
  EXPECT_TRUE(w.initialised());
  for (uint64_t s = 0; s <= 100; ++s) EXPECT_FALSE(w.check(s)) << s;
  EXPECT_TRUE(w.check(101));
  w.update(103);
  EXPECT_TRUE(w.check(101));
  EXPECT_TRUE(w.check(102));
  EXPECT_FALSE(w.check(100));
  EXPECT_FALSE(w.check(103));
  w.reset();
  EXPECT_TRUE(w.initialised());
  EXPECT_TRUE(w.check(0));
}

TEST(ReplayWindowSerial, RoundTripsEveryState) {
  for (uint32_t size : {1u, 32u, 64u, 65u, 1024u}) {
    ReplayWindow w(size);
    auto empty = ReplayWindow::deserialize(w.serialize());
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->any());
    EXPECT_TRUE(empty->initialised());
    EXPECT_EQ(empty->size(), size);
    for (uint64_t s : {5u, 9u, 200u, 150u, 201u, 2000u, 1990u}) {
      if (w.check(s)) w.update(s);
    }
    auto back = ReplayWindow::deserialize(w.serialize());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->serialize(), w.serialize());
    EXPECT_EQ(back->highest(), 2000u);
    for (uint64_t s = 0; s <= 2100; ++s) {
      EXPECT_EQ(bool(back->check(s)), bool(w.check(s))) << size << " " << s;
    }
  }
  ReplayWindow u(32);
  u.mark_uninitialised();
  auto bu = ReplayWindow::deserialize(u.serialize());
  ASSERT_TRUE(bu);
  EXPECT_FALSE(bu->initialised());
}

TEST(ReplayWindowSerial, FormatIsFixed) {
  ReplayWindow w(32);
  w.update(3);
  w.update(1);
  // version 1, flags initialised|any, size 32, highest 3, one word: bits 0 and 2.
  EXPECT_EQ(to_hex(w.serialize()), "0103000000200000000000000003" "0000000000000005");
}

TEST(ReplayWindowSerial, DeserializeIsStrict) {
  ReplayWindow w(32);
  w.update(3);
  const Bytes good = w.serialize();
  ASSERT_TRUE(ReplayWindow::deserialize(good));
  auto bad = [&](auto edit) {
    Bytes b = good;
    edit(b);
    return !ReplayWindow::deserialize(b);
  };
  EXPECT_TRUE(bad([](Bytes& b) { b[0] = 2; }));                       // version
  EXPECT_TRUE(bad([](Bytes& b) { b[1] |= 0x04; }));                   // unknown flag
  EXPECT_TRUE(bad([](Bytes& b) { b[1] = 0x02; }));                    // any but uninitialised
  EXPECT_TRUE(bad([](Bytes& b) { b[5] = 0; }));                       // size 0 (and word count)
  EXPECT_TRUE(bad([](Bytes& b) { b.push_back(0); }));                 // trailing byte
  EXPECT_TRUE(bad([](Bytes& b) { b.pop_back(); }));                   // truncated
  EXPECT_TRUE(bad([](Bytes& b) { b[14] = 0x80; }));                   // bit beyond size 32
  EXPECT_TRUE(bad([](Bytes& b) { b[21] = 0x00; }));                   // highest not marked seen
  EXPECT_TRUE(bad([](Bytes& b) { b[6] = 0x01; }));                    // highest above 2^40-1
  EXPECT_TRUE(bad([](Bytes& b) { b[1] = 0x01; }));                    // empty window with state
  Bytes big = good;
  big[2] = 0x00; big[3] = 0x00; big[4] = 0x04; big[5] = 0x01;         // size 1025
  EXPECT_FALSE(ReplayWindow::deserialize(big));
  EXPECT_FALSE(ReplayWindow::deserialize({}));
}

}  // namespace
