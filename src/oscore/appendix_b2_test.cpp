// RFC 8613 Appendix B.2 (Figure 14): security contexts derived multiple times
// with R1 / R2 / R3 in the ID Context, run end to end between B2Client and
// B2Server with deterministic randomness.
#include <gtest/gtest.h>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/appendix_b2.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

namespace code = cp::coap::code;

class AppendixB2 : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  FakeRandom rand_c_{11}, rand_s_{22};
  FakeClock clock_;

  B2Config config(bool client, std::optional<Bytes> id_context = std::nullopt) {
    B2Config b;
    b.base.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    b.base.params.master_salt = *from_hex("9e7ca92223786340");
    b.base.params.id_context = std::move(id_context);
    b.base.params.sender_id = client ? Bytes{} : Bytes{0x01};
    b.base.params.recipient_id = client ? Bytes{0x01} : Bytes{};
    return b;
  }
  std::unique_ptr<B2Client> client(bool established, std::optional<Bytes> id = std::nullopt) {
    auto c = B2Client::create(*provider_, config(true, std::move(id)), rand_c_, established);
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  std::unique_ptr<B2Server> server(bool established, std::optional<Bytes> id = std::nullopt,
                                   size_t max_pending = 4) {
    auto cfg = config(false, std::move(id));
    cfg.max_pending = max_pending;
    auto s = B2Server::create(*provider_, std::move(cfg), rand_s_, clock_, established);
    EXPECT_TRUE(s);
    return std::move(*s);
  }

  struct Leg {
    Bytes request, response;
    Exchange cx, sx;
  };
  coap::Message get(const char* path = "/r") {
    coap::Message req(coap::Type::kCon, code::kGet, 7);
    req.token = {0x01, 0x02};
    req.set_uri_path(path);
    return req;
  }
  Expected<B2Result, Error> send(B2Client& c, B2Server& s, Leg& leg, const char* path = "/r") {
    uint8_t out[256], dec[256];
    auto n = c.protect_request(get(path), out, leg.cx);
    if (!n) return unexpected(n.error());
    leg.request.assign(out, out + *n);
    auto r = s.unprotect_request(leg.request, dec, leg.sx);
    if (r) {
      auto m = coap::Message::parse(ByteView(dec, r->len));
      EXPECT_TRUE(m);
      EXPECT_EQ(m->uri_path(), path);
    }
    return r;
  }
  Expected<B2Result, Error> answer(B2Client& c, B2Server& s, Leg& leg, uint8_t response_code,
                                   const char* body = "") {
    coap::Message resp(coap::Type::kAck, response_code, 7);
    resp.token = {0x01, 0x02};
    resp.set_payload(body);
    uint8_t out[256], dec[256];
    auto n = s.protect_response(resp, leg.sx, out);
    if (!n) return unexpected(n.error());
    leg.response.assign(out, out + *n);
    auto r = c.unprotect_response(leg.response, leg.cx, dec);
    if (r) {
      auto m = coap::Message::parse(ByteView(dec, r->len));
      EXPECT_TRUE(m);
      EXPECT_EQ(m->code, response_code);
      EXPECT_EQ(as_string(m->payload), body);
    }
    return r;
  }
  static Bytes kid_context(ByteView datagram) {
    auto ov = peek_option(datagram);
    EXPECT_TRUE(ov);
    if (!ov || !ov->kid_context) return {};
    return to_bytes(*ov->kid_context);
  }
  // Both ends hold the two halves of one Security Context: same ID Context, and
  // the client's Sender Key / IV is the server's Recipient Key / IV and back.
  void expect_same_keys(B2Client& c, B2Server& s) {
    ASSERT_TRUE(c.current());
    ASSERT_TRUE(s.current());
    EXPECT_EQ(c.current()->params().id_context, s.current()->params().id_context);
    auto kc = derive_keys(*provider_, c.current()->params());
    auto ks = derive_keys(*provider_, s.current()->params());
    ASSERT_TRUE(kc);
    ASSERT_TRUE(ks);
    EXPECT_EQ(to_hex(kc->sender()), to_hex(ks->recipient()));
    EXPECT_EQ(to_hex(kc->recipient()), to_hex(ks->sender()));
    EXPECT_EQ(to_hex(kc->iv()), to_hex(ks->iv()));
  }
  // A normal round trip under the established contexts.
  void expect_roundtrip(B2Client& c, B2Server& s, const char* path = "/after") {
    Leg leg;
    auto r = send(c, s, leg, path);
    ASSERT_TRUE(r) << to_string(r.error());
    EXPECT_EQ(r->action, B2Action::kDeliver);
    auto a = answer(c, s, leg, code::kContent, "fine");
    ASSERT_TRUE(a) << to_string(a.error());
    EXPECT_EQ(a->action, B2Action::kDeliver);
  }
};

TEST_F(AppendixB2, Figure14ClientInitiated) {
  auto c = client(false);
  auto s = server(false);
  EXPECT_EQ(c->state(), B2State::kNoContext);

  // 1. request #1 under ID1 = R1, 'kid context' = R1.
  Leg one;
  auto r1 = send(*c, *s, one);
  ASSERT_TRUE(r1) << to_string(r1.error());
  EXPECT_EQ(c->state(), B2State::kSentRequest1);
  const Bytes id1 = kid_context(one.request);
  ASSERT_EQ(id1.size(), 8u);
  // 2. the server verified it with ID1 and must answer with response #1.
  EXPECT_EQ(r1->action, B2Action::kSendResponse1);
  EXPECT_EQ(s->num_pending(), 1u);
  auto a1 = answer(*c, *s, one, code::kUnauthorized);
  ASSERT_TRUE(a1) << to_string(a1.error());
  const Bytes r2 = kid_context(one.response);
  ASSERT_EQ(r2.size(), 8u);
  // 3. the client verified it with R2 || ID1 and resends the request.
  EXPECT_EQ(a1->action, B2Action::kResendRequest);
  EXPECT_EQ(c->state(), B2State::kHaveCtx3);
  EXPECT_EQ(c->current(), nullptr);

  // request #2 under ID3 = R2 || R3.
  Leg two;
  auto r2res = send(*c, *s, two);
  ASSERT_TRUE(r2res) << to_string(r2res.error());
  const Bytes id3 = kid_context(two.request);
  ASSERT_EQ(id3.size(), 16u);
  EXPECT_EQ(to_hex(ByteView(id3).first(8)), to_hex(r2));
  // 4. the server verified it with ID3: CTX3 is its context now, R2 is gone.
  EXPECT_EQ(r2res->action, B2Action::kDeliver);
  EXPECT_EQ(s->num_pending(), 0u);
  ASSERT_TRUE(s->current());
  EXPECT_EQ(to_hex(*s->current()->params().id_context), to_hex(id3));
  // 5. response #2 under ID3: the client makes CTX3 its context.
  auto a2 = answer(*c, *s, two, code::kContent, "21.5 C");
  ASSERT_TRUE(a2) << to_string(a2.error());
  EXPECT_EQ(a2->action, B2Action::kDeliver);
  EXPECT_EQ(c->state(), B2State::kEstablished);
  expect_same_keys(*c, *s);
  expect_roundtrip(*c, *s);

  // Replays: request #2 again meets CTX3's replay window; request #1 again
  // only produces another response #1 (with a new R2), never a delivery.
  uint8_t dec[256];
  Exchange sx;
  auto again = s->unprotect_request(two.request, dec, sx);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Error::kReplay);
  auto old = s->unprotect_request(one.request, dec, sx);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->action, B2Action::kSendResponse1);
  EXPECT_EQ(to_hex(*s->current()->params().id_context), to_hex(id3));  // unchanged
}

TEST_F(AppendixB2, ServerInitiatedAfterRenew) {
  const Bytes id = *from_hex("37cbf3210017a2d3");
  auto c = client(true, id);
  auto s = server(true, id);
  expect_same_keys(*c, *s);
  expect_roundtrip(*c, *s, "/before");
  s->renew();

  // Step 1 is omitted: an ordinary request (no 'kid context') gets response #1
  // with ID2 = R2 || ID1, ID1 being the current ID Context.
  Leg one;
  auto r1 = send(*c, *s, one);
  ASSERT_TRUE(r1);
  EXPECT_TRUE(kid_context(one.request).empty());
  EXPECT_EQ(r1->action, B2Action::kSendResponse1);
  auto a1 = answer(*c, *s, one, code::kUnauthorized);
  ASSERT_TRUE(a1) << to_string(a1.error());
  EXPECT_EQ(a1->action, B2Action::kResendRequest);
  Leg two;
  auto r2 = send(*c, *s, two);
  ASSERT_TRUE(r2) << to_string(r2.error());
  EXPECT_EQ(r2->action, B2Action::kDeliver);
  ASSERT_TRUE(answer(*c, *s, two, code::kContent, "x"));
  expect_same_keys(*c, *s);
  EXPECT_NE(to_hex(*c->current()->params().id_context), to_hex(id));
  expect_roundtrip(*c, *s);
}

TEST_F(AppendixB2, RebootedServerWithoutIdContextRecovers) {
  // The pair had no ID Context; the server lost its mutable state.
  auto c = client(true);
  auto s = server(false);
  Leg one;
  auto r1 = send(*c, *s, one);
  ASSERT_TRUE(r1) << to_string(r1.error());
  EXPECT_EQ(r1->action, B2Action::kSendResponse1);
  auto a1 = answer(*c, *s, one, code::kUnauthorized);
  ASSERT_TRUE(a1) << to_string(a1.error());
  EXPECT_EQ(kid_context(one.response).size(), 8u);  // ID2 = R2 || (no ID1) = R2
  Leg two;
  ASSERT_TRUE(send(*c, *s, two));
  ASSERT_TRUE(answer(*c, *s, two, code::kContent, "x"));
  expect_same_keys(*c, *s);
  EXPECT_EQ(c->current()->params().id_context->size(), 16u);
}

TEST_F(AppendixB2, ForgedOrMisdirectedResponse1IsRejected) {
  auto c = client(false);
  auto s = server(false);
  Leg one;
  ASSERT_TRUE(send(*c, *s, one));
  coap::Message resp(coap::Type::kAck, code::kUnauthorized, 7);
  uint8_t out[256], dec[256];
  auto n = s->protect_response(resp, one.sx, out);
  ASSERT_TRUE(n);
  Bytes forged(out, out + *n);
  forged.back() ^= 0x01;
  auto f = c->unprotect_response(forged, one.cx, dec);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), Error::kDecryptionFailed);
  EXPECT_EQ(c->state(), B2State::kSentRequest1);
  // Response #1 bound to another request of ours fails too (external_aad, B.2.2).
  Exchange other = one.cx;
  other.piv[0] ^= 0x01;
  EXPECT_FALSE(c->unprotect_response(ByteView(out, *n), other, dec));
  // The genuine one still works.
  auto g = c->unprotect_response(ByteView(out, *n), one.cx, dec);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->action, B2Action::kResendRequest);
}

TEST_F(AppendixB2, LostResponse1StartsOverWithFreshR1) {
  auto c = client(false);
  auto s = server(false);
  Leg lost;
  ASSERT_TRUE(send(*c, *s, lost));
  Leg one;
  ASSERT_TRUE(send(*c, *s, one));
  EXPECT_NE(to_hex(kid_context(lost.request)), to_hex(kid_context(one.request)));
  EXPECT_EQ(s->num_pending(), 2u);
  ASSERT_TRUE(answer(*c, *s, one, code::kUnauthorized));
  // Response #1 of the abandoned run no longer fits (its CTX1 is gone).
  coap::Message resp(coap::Type::kAck, code::kUnauthorized, 7);
  uint8_t out[256], dec[256];
  auto n = s->protect_response(resp, lost.sx, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(c->unprotect_response(ByteView(out, *n), lost.cx, dec).error(), Error::kContextNotFound);
  Leg two;
  ASSERT_TRUE(send(*c, *s, two));
  ASSERT_TRUE(answer(*c, *s, two, code::kContent));
  expect_same_keys(*c, *s);
}

TEST_F(AppendixB2, R2CacheIsBoundedAndExpires) {
  auto c = client(false);
  auto s = server(false, std::nullopt, 2);
  Leg first;
  ASSERT_TRUE(send(*c, *s, first));
  ASSERT_TRUE(answer(*c, *s, first, code::kUnauthorized));  // client now holds CTX3 for R2 #1
  // Two more request #1 (e.g. replays from an attacker) push R2 #1 out.
  uint8_t dec[256];
  for (int i = 0; i < 2; ++i) {
    Exchange sx;
    auto r = s->unprotect_request(first.request, dec, sx);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->action, B2Action::kSendResponse1);
  }
  EXPECT_EQ(s->num_pending(), 2u);
  // Request #2 of the first run is now an unknown 'kid context': the server
  // treats it as a request #1 with ID1 = R2 || R3 and the run goes on from there.
  Leg two;
  auto r = send(*c, *s, two);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->action, B2Action::kSendResponse1);
  EXPECT_EQ(s->current(), nullptr);
  auto a = answer(*c, *s, two, code::kUnauthorized);
  ASSERT_TRUE(a) << to_string(a.error());
  EXPECT_EQ(a->action, B2Action::kResendRequest);
  EXPECT_EQ(kid_context(two.response).size(), 8u);
  Leg three;
  auto r3 = send(*c, *s, three);
  ASSERT_TRUE(r3) << to_string(r3.error());
  EXPECT_EQ(r3->action, B2Action::kDeliver);
  ASSERT_TRUE(answer(*c, *s, three, code::kContent));
  expect_same_keys(*c, *s);

  // Expiry: a cached R2 is gone after pending_lifetime.
  auto c2 = client(false);
  auto s2 = server(false);
  Leg one;
  ASSERT_TRUE(send(*c2, *s2, one));
  clock_.advance(std::chrono::seconds(61));
  coap::Message resp(coap::Type::kAck, code::kUnauthorized, 7);
  uint8_t out[256];
  EXPECT_EQ(s2->protect_response(resp, one.sx, out).error(), Error::kContextNotFound);
  EXPECT_EQ(s2->num_pending(), 0u);
}

TEST_F(AppendixB2, ForgedRequest2StopsAtLimitV) {
  auto c = client(false);
  auto cfg = config(false);
  cfg.base.limits = KeyLimits{1 << 20, 3, 256};
  auto s = std::move(*B2Server::create(*provider_, std::move(cfg), rand_s_, clock_, false));
  Leg one;
  ASSERT_TRUE(send(*c, *s, one));
  ASSERT_TRUE(answer(*c, *s, one, code::kUnauthorized));
  uint8_t out[256], dec[256];
  Exchange cx, sx;
  auto n = c->protect_request(get(), out, cx);  // request #2 under CTX3
  ASSERT_TRUE(n);
  Bytes forged(out, out + *n);
  forged.back() ^= 1;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s->num_pending(), 1u);
    EXPECT_EQ(s->unprotect_request(forged, dec, sx).error(), Error::kDecryptionFailed);
  }
  // limit_v = 3 failures: the R2 is gone; the genuine request #2 now starts a
  // new run (ID1 = R2 || R3) instead of completing this one.
  EXPECT_EQ(s->num_pending(), 0u);
  auto r = s->unprotect_request(ByteView(out, *n), dec, sx);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->action, B2Action::kSendResponse1);
  EXPECT_EQ(s->current(), nullptr);
}

TEST_F(AppendixB2, RejectsBadConfigurationAndForeignKid) {
  auto cfg = config(true);
  cfg.nonce_len = 0;
  EXPECT_FALSE(B2Client::create(*provider_, cfg, rand_c_, false));
  cfg.nonce_len = 65;
  EXPECT_FALSE(B2Client::create(*provider_, cfg, rand_c_, false));
  auto scfg = config(false);
  scfg.max_pending = 0;
  EXPECT_FALSE(B2Server::create(*provider_, scfg, rand_s_, clock_, false));

  // A request from another kid is not this peer's.
  auto other = config(true);
  other.base.params.sender_id = {0x05};
  auto c = B2Client::create(*provider_, other, rand_c_, false);
  ASSERT_TRUE(c);
  auto s = server(false);
  Leg leg;
  auto r = send(**c, *s, leg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kContextNotFound);
}

}  // namespace
