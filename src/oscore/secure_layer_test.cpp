// OSCORE as a layer over CoAP: SecureClient and SecureServer on two Endpoints
// wired through the simulator (coap/sim.h) with a FakeClock.
#include <gtest/gtest.h>

#include "coap/server.h"
#include "coap/sim.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/secure_client.h"
#include "oscore/secure_server.h"

using namespace acekdc;
using namespace acekdc::oscore;
namespace code = cp::coap::code;
namespace opt = cp::coap::option;

namespace {

const coap::Address kClient = coap::Address::ipv4(10, 0, 0, 1, 40000);
const coap::Address kClient2 = coap::Address::ipv4(10, 0, 0, 3, 40000);
const coap::Address kServer = coap::Address::ipv4(10, 0, 0, 2, 5683);
const coap::Address kProxy = coap::Address::ipv4(10, 0, 0, 9, 5683);

std::string big_body() {
  std::string s;
  for (int i = 0; s.size() < 3000; ++i) s += "block-" + std::to_string(i) + ";";
  s.resize(3000);
  return s;
}

struct Captured {
  std::vector<SecureEvent> events;  // pointers cleared
  std::vector<coap::Message> responses;
  std::vector<std::optional<coap::Message>> unprotected;
  SecureCallback cb() {
    return [this](const SecureEvent& ev) {
      SecureEvent copy = ev;
      copy.response = nullptr;
      copy.unprotected_response = nullptr;
      events.push_back(copy);
      responses.push_back(ev.response ? *ev.response : coap::Message{});
      unprotected.push_back(ev.unprotected_response ? std::optional<coap::Message>(*ev.unprotected_response)
                                                    : std::nullopt);
    };
  }
};

class SecureLayer : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  FakeClock clock_;
  FakeRandom rand_cep_{1}, rand_sep_{2}, rand_srv_{3}, rand_cs_{4}, rand_cep2_{5};
  coap::Endpoint client_ep_{clock_, rand_cep_};
  coap::Endpoint client_ep2_{clock_, rand_cep2_};
  coap::Endpoint server_ep_{clock_, rand_sep_};
  coap::sim::Network net_{clock_, 11};
  coap::Server server_{server_ep_};
  SecureServer secure_{server_ep_, server_, rand_srv_, clock_};
  std::string big_ = big_body();
  int obs_value_ = 0;
  std::string stored_ = "initial";
  Bytes last_post_;
  std::vector<std::optional<ContextId>> seen_contexts_;
  std::optional<coap::DeferredResponse> deferred_;

  void SetUp() override {
    net_.attach(kClient, client_ep_);
    net_.attach(kClient2, client_ep2_);
    net_.attach(kServer, server_ep_);
    server_.add("/oscore/hello/1").on(code::kGet, [this](coap::Request&, coap::Message& resp) {
      seen_contexts_.push_back(secure_.current_context());
      resp.code = code::kContent;
      resp.set_uint(opt::kContentFormat, 0);
      resp.set_payload("Hello World!");
    });
    server_.add("/oscore/hello/coap").on(code::kGet, [](coap::Request&, coap::Message& resp) {
      resp.code = code::kContent;
      resp.set_payload("Hello World!");
    });
    secure_.allow_unprotected("/oscore/hello/coap");
    auto& r = server_.add("/r");
    r.on(code::kGet, [this](coap::Request&, coap::Message& resp) {
      resp.code = code::kContent;
      resp.set_payload(stored_);
    });
    r.on(code::kPut, [this](coap::Request& req, coap::Message& resp) {
      stored_ = std::string(as_string(req.payload));
      resp.code = code::kChanged;
    });
    r.on(code::kPost, [this](coap::Request& req, coap::Message& resp) {
      last_post_ = to_bytes(req.payload);
      resp.code = code::kCreated;
      resp.set_location_path("/r/1");
    });
    r.on(code::kDelete, [this](coap::Request&, coap::Message& resp) {
      stored_.clear();
      resp.code = code::kDeleted;
    });
    auto& obs = server_.add("/obs");
    obs.observable = true;
    obs.on(code::kGet, [this](coap::Request&, coap::Message& resp) {
      resp.code = code::kContent;
      resp.set_payload("value " + std::to_string(obs_value_));
    });
    server_.add("/big").on(code::kGet, [this](coap::Request&, coap::Message& resp) {
      resp.code = code::kContent;
      resp.set_payload(big_);
    });
    server_.add("/slow").on(code::kGet, [this](coap::Request& req, coap::Message&) {
      deferred_ = req.defer();
    });
  }

  std::unique_ptr<Context> make(Bytes sender, Bytes recipient, const char* secret = "0102030405060708090a0b0c0d0e0f10",
                                bool window_initialised = true) {
    ContextConfig cfg;
    cfg.params.master_secret = *from_hex(secret);
    cfg.params.master_salt = *from_hex("9e7ca92223786340");
    cfg.params.sender_id = std::move(sender);
    cfg.params.recipient_id = std::move(recipient);
    cfg.replay_window_initialised = window_initialised;
    cfg.random = &rand_srv_;
    auto c = Context::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  static KeyUpdateConfig no_auto() {
    KeyUpdateConfig k;
    k.auto_threshold.reset();
    return k;
  }
  // A client session for Sender ID `id` and the matching server context.
  std::unique_ptr<Session> pair(Bytes id, ContextId* out_id = nullptr, bool window_initialised = true) {
    auto added = secure_.add_context(make({0x01}, id, "0102030405060708090a0b0c0d0e0f10", window_initialised), no_auto());
    EXPECT_TRUE(added);
    if (out_id && added) *out_id = *added;
    return std::make_unique<Session>(Role::kClient, make(id, {0x01}), rand_cs_, clock_, no_auto());
  }
  void run() { net_.run(seconds(30)); }

  coap::Message req(uint8_t method, const char* path) {
    coap::Message m(coap::Type::kCon, method);
    m.set_uri_path(path);
    return m;
  }
  // one_shot sends a request through `client` and returns the single event.
  SecureEvent one_shot(SecureClient& client, coap::Message m, Captured& cap, coap::RequestOptions o = {}) {
    auto id = client.request(kServer, std::move(m), o, cap.cb());
    EXPECT_TRUE(id);
    run();
    EXPECT_EQ(cap.events.size(), 1u);
    return cap.events.empty() ? SecureEvent{} : cap.events.back();
  }
};

// The decrypted request reaches the handler as a view: without outer options
// straight from the plaintext, with Class U options (Uri-Host, Uri-Port: Outer
// only, RFC 8613 §4.1.3.2) merged back in; inner options, token and payload
// are the same either way.
TEST_F(SecureLayer, DecryptedRequestWithAndWithoutOuterOptions) {
  struct Seen {
    std::string host, path, payload, query;
    std::optional<uint32_t> port, format;
  };
  std::vector<Seen> seen;
  server_.add("/v/w").on(code::kPost, [&](coap::Request& r, coap::Message& resp) {
    const coap::OptionView* host = r.message.find(opt::kUriHost);
    seen.push_back({host ? std::string(as_string(host->value)) : "", std::string(r.path),
                    std::string(as_string(r.payload)), std::string(r.query("q").value_or("")),
                    r.message.get_uint(opt::kUriPort), r.content_format()});
    resp.code = code::kChanged;
    resp.set_payload(std::string(as_string(r.message.token)));
  });
  auto session = pair({0x42});
  SecureClient client(client_ep_, *session);
  for (bool outer : {false, true}) {
    auto m = req(code::kPost, "/v/w");
    m.add_string(opt::kUriQuery, "q=1");
    m.set_uint(opt::kContentFormat, 60);
    m.set_payload("body");
    if (outer) {
      m.set_option(opt::kUriHost, as_bytes("example.net"));
      m.set_uint(opt::kUriPort, 61616);
    }
    coap::RequestOptions o;
    o.token = Bytes{0x74, 0x6b};  // "tk"
    Captured cap;
    auto ev = one_shot(client, std::move(m), cap, o);
    ASSERT_EQ(ev.status, coap::ClientStatus::kResponse) << outer;
    EXPECT_EQ(cap.responses[0].code, code::kChanged);
    EXPECT_EQ(as_string(cap.responses[0].payload), "tk");
  }
  ASSERT_EQ(seen.size(), 2u);
  for (const Seen& s : seen) {
    EXPECT_EQ(s.path, "/v/w");
    EXPECT_EQ(s.payload, "body");
    EXPECT_EQ(s.query, "1");
    EXPECT_EQ(s.format, 60u);
  }
  EXPECT_EQ(seen[0].host, "");
  EXPECT_FALSE(seen[0].port.has_value());
  EXPECT_EQ(seen[1].host, "example.net");
  EXPECT_EQ(seen[1].port, 61616u);
  // The Uri-Host went out in the clear (Class U), the query and format did not.
  bool host_on_wire = false;
  for (const Bytes& d : net_.sent(kClient)) {
    auto v = coap::MessageView::parse(d);
    ASSERT_TRUE(v);
    if (v->code == 0) continue;
    EXPECT_FALSE(v->has(opt::kUriQuery));
    EXPECT_FALSE(v->has(opt::kContentFormat));
    host_on_wire = host_on_wire || v->has(opt::kUriHost);
  }
  EXPECT_TRUE(host_on_wire);
}

TEST_F(SecureLayer, GetPostPutDelete) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  {
    Captured cap;
    auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
    ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
    EXPECT_EQ(cap.responses[0].code, code::kContent);
    EXPECT_EQ(as_string(cap.responses[0].payload), "Hello World!");
    EXPECT_EQ(cap.responses[0].get_uint(opt::kContentFormat), 0u);
    EXPECT_FALSE(cap.responses[0].has(opt::kOscore));
  }
  {
    Captured cap;
    auto m = req(code::kPut, "/r");
    m.set_payload("new value");
    one_shot(client, std::move(m), cap);
    EXPECT_EQ(cap.responses[0].code, code::kChanged);
    EXPECT_EQ(stored_, "new value");
  }
  {
    Captured cap;
    auto m = req(code::kPost, "/r");
    m.set_payload("posted");
    one_shot(client, std::move(m), cap);
    EXPECT_EQ(cap.responses[0].code, code::kCreated);
    EXPECT_EQ(cap.responses[0].location_path(), "/r/1");
    EXPECT_EQ(as_string(last_post_), "posted");
  }
  {
    Captured cap;
    one_shot(client, req(code::kDelete, "/r"), cap);
    EXPECT_EQ(cap.responses[0].code, code::kDeleted);
    EXPECT_TRUE(stored_.empty());
  }
  EXPECT_EQ(secure_.stats().protected_requests, 4u);
  EXPECT_EQ(secure_.stats().rejected, 0u);
  // On the wire every request was POST (FETCH for Observe) with an OSCORE option and no Uri-Path.
  for (const Bytes& d : net_.sent(kClient)) {
    auto v = coap::MessageView::parse(d);
    ASSERT_TRUE(v);
    if (v->code == 0) continue;
    EXPECT_EQ(v->code, code::kPost);
    EXPECT_TRUE(v->has(opt::kOscore));
    EXPECT_FALSE(v->has(opt::kUriPath));
  }
}

TEST_F(SecureLayer, UnprotectedPolicy) {
  // /oscore/hello/coap is open; /oscore/hello/1 needs OSCORE.
  std::vector<coap::Message> got;
  auto cb = [&](const coap::ClientEvent& ev) {
    if (ev.response) got.push_back(*ev.response);
  };
  client_ep_.request(kServer, req(code::kGet, "/oscore/hello/coap"), {}, cb);
  client_ep_.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, cb);
  run();
  ASSERT_EQ(got.size(), 2u);
  std::sort(got.begin(), got.end(), [](const auto& a, const auto& b) { return a.code < b.code; });
  EXPECT_EQ(got[0].code, code::kContent);
  EXPECT_EQ(as_string(got[0].payload), "Hello World!");
  EXPECT_EQ(got[1].code, code::kUnauthorized);
  EXPECT_EQ(secure_.stats().unprotected_requests, 1u);
  EXPECT_EQ(secure_.stats().rejected, 1u);
}

TEST_F(SecureLayer, UnknownKidIs401) {
  auto known = pair({0x07});
  // A client whose Sender ID the server has no context for.
  Session stranger(Role::kClient, make({0x42}, {0x01}), rand_cs_, clock_, no_auto());
  SecureClient client(client_ep_, stranger);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
  EXPECT_EQ(ev.status, coap::ClientStatus::kBadResponse);
  ASSERT_TRUE(ev.error);
  EXPECT_EQ(*ev.error, Error::kContextNotFound);
  ASSERT_TRUE(cap.unprotected[0]);
  EXPECT_EQ(cap.unprotected[0]->code, code::kUnauthorized);
  EXPECT_EQ(cap.unprotected[0]->get_uint(opt::kMaxAge), 0u);
  EXPECT_TRUE(seen_contexts_.empty());
}

// protect_raw protects `m` with `s` and returns the outer message (for tampering / replay).
coap::Message protect_raw(Session& s, const coap::Message& m) {
  uint8_t buf[512];
  Exchange ex;
  auto n = s.protect_request(m, buf, ex);
  EXPECT_TRUE(n);
  return *coap::Message::parse(ByteView(buf, *n));
}

TEST_F(SecureLayer, TamperedIs400AndReplayIs401) {
  auto session = pair({});
  coap::Message outer = protect_raw(*session, req(code::kGet, "/oscore/hello/1"));
  coap::Message tampered = outer;
  tampered.payload[0] ^= 0x01;
  std::vector<coap::Message> got;
  auto cb = [&](const coap::ClientEvent& ev) {
    if (ev.response) got.push_back(*ev.response);
  };
  client_ep_.request(kServer, tampered, {}, cb);
  run();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].code, code::kBadRequest);
  EXPECT_FALSE(got[0].has(opt::kOscore));
  EXPECT_EQ(as_string(got[0].payload), "Decryption failed");
  // The genuine message is accepted once (a new CoAP message each time, so the
  // Endpoint's deduplication does not hide the replay) ...
  client_ep_.request(kServer, outer, {}, cb);
  run();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].code, code::kChanged);  // outer code of a protected response
  EXPECT_TRUE(got[1].has(opt::kOscore));
  // ... and replayed: 4.01.
  client_ep_.request(kServer, outer, {}, cb);
  run();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].code, code::kUnauthorized);
  EXPECT_EQ(as_string(got[2].payload), "Replay detected");
  EXPECT_EQ(seen_contexts_.size(), 1u);
  EXPECT_EQ(secure_.stats().rejected, 2u);
}

TEST_F(SecureLayer, ObserveThreeNotifications) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  auto id = client.request(kServer, req(code::kGet, "/obs"), o, cap.cb());
  ASSERT_TRUE(id);
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  EXPECT_EQ(server_.num_observers("/obs"), 1u);
  for (int i = 1; i <= 3; ++i) {
    obs_value_ = i;
    server_.notify("/obs");
    run();
  }
  ASSERT_EQ(cap.events.size(), 4u);
  for (int i = 0; i <= 3; ++i) {
    EXPECT_EQ(cap.events[i].status, coap::ClientStatus::kNotification);
    EXPECT_EQ(as_string(cap.responses[i].payload), "value " + std::to_string(i));
  }
  // Observe values grow; the notifications went out under fresh Partial IVs.
  EXPECT_LT(*cap.events[1].observe, *cap.events[2].observe);
  EXPECT_LT(*cap.events[2].observe, *cap.events[3].observe);
  std::set<Bytes> pivs;
  for (const Bytes& d : net_.sent(kServer)) {
    auto v = coap::MessageView::parse(d);
    if (!v || v->code == 0) continue;
    auto ov = peek_option(d);
    ASSERT_TRUE(ov);
    if (!ov->partial_iv.empty()) pivs.insert(to_bytes(ov->partial_iv));
  }
  EXPECT_EQ(pivs.size(), 3u);  // the first response reused the request nonce
  // A replayed (old) notification is dropped by the client.
  const Bytes old = net_.sent(kServer)[1];
  net_.inject(kServer, kClient, old);
  run();
  EXPECT_EQ(cap.events.size(), 4u);
  client.cancel(*id);
  EXPECT_EQ(cap.events.back().status, coap::ClientStatus::kCancelled);
  // The next notification is rejected with RST, which ends the observation.
  server_.notify("/obs");
  run();
  EXPECT_EQ(server_.num_observers("/obs"), 0u);
}

TEST_F(SecureLayer, Block2Of3000ByteResource) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/big"), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(cap.responses[0].payload.size(), 3000u);
  EXPECT_EQ(as_string(cap.responses[0].payload), big_);
  EXPECT_FALSE(cap.responses[0].has(opt::kBlock2));
  EXPECT_EQ(secure_.stats().protected_requests, 3u);  // 1024 + 1024 + 952
  // No outer Block2: block-wise is inner only.
  for (const Bytes& d : net_.sent(kServer)) {
    auto v = coap::MessageView::parse(d);
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->has(opt::kBlock2));
  }
}

TEST_F(SecureLayer, SmallerBlock2AndInnerBlock1) {
  auto session = pair({});
  SecureClientConfig ccfg;
  ccfg.block2_size = 256;
  SecureClient client(client_ep_, *session, ccfg);
  Captured cap;
  one_shot(client, req(code::kGet, "/big"), cap);
  EXPECT_EQ(as_string(cap.responses[0].payload), big_);
  EXPECT_EQ(secure_.stats().protected_requests, 12u);  // ceil(3000 / 256)
  Captured cap2;
  auto m = req(code::kPost, "/r");
  m.set_payload(big_);
  one_shot(client, std::move(m), cap2);
  EXPECT_EQ(cap2.responses[0].code, code::kCreated);
  EXPECT_EQ(as_string(last_post_), big_);
}

TEST_F(SecureLayer, TwoContextsOnOneServer) {
  ContextId id_a = 0, id_b = 0;
  auto sa = pair({}, &id_a);
  auto sb = pair({0x02}, &id_b);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(secure_.num_contexts(), 2u);
  // The same Recipient ID twice is refused.
  EXPECT_FALSE(secure_.add_context(make({0x01}, {0x02}), no_auto()));
  SecureClient ca(client_ep_, *sa);
  SecureClient cb(client_ep2_, *sb);
  Captured cap_a, cap_b;
  ASSERT_TRUE(ca.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, cap_a.cb()));
  ASSERT_TRUE(cb.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, cap_b.cb()));
  run();
  ASSERT_EQ(cap_a.events.size(), 1u);
  ASSERT_EQ(cap_b.events.size(), 1u);
  EXPECT_EQ(cap_a.responses[0].code, code::kContent);
  EXPECT_EQ(cap_b.responses[0].code, code::kContent);
  ASSERT_EQ(seen_contexts_.size(), 2u);
  std::set<ContextId> ids;
  for (auto& c : seen_contexts_) ids.insert(c.value_or(0));
  EXPECT_EQ(ids, (std::set<ContextId>{id_a, id_b}));
  EXPECT_EQ(secure_.find_context(Bytes{0x02}, std::nullopt), id_b);
  // Removing B: its client is now unknown (4.01).
  EXPECT_TRUE(secure_.remove_context(id_b));
  Captured cap_c;
  auto ev = one_shot(cb, req(code::kGet, "/oscore/hello/1"), cap_c);
  EXPECT_EQ(ev.status, coap::ClientStatus::kBadResponse);
  EXPECT_EQ(ev.error, Error::kContextNotFound);
}

TEST_F(SecureLayer, ClientInitiatedKeyUpdate) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  const Bytes secret_before = session->current().params().master_secret;
  session->request_key_update();
  for (int i = 0; i < 2; ++i) {
    Captured cap;
    auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
    ASSERT_EQ(ev.status, coap::ClientStatus::kResponse) << i;
    EXPECT_EQ(as_string(cap.responses[0].payload), "Hello World!");
  }
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
  EXPECT_NE(session->current().params().master_secret, secret_before);
  EXPECT_EQ(session->current().params().master_secret, secure_.session(sid)->current().params().master_secret);
}

TEST_F(SecureLayer, ServerInitiatedKeyUpdate) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  const Bytes secret_before = session->current().params().master_secret;
  secure_.session(sid)->request_key_update();
  for (int i = 0; i < 3; ++i) {
    Captured cap;
    auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
    ASSERT_EQ(ev.status, coap::ClientStatus::kResponse) << i;
  }
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
  EXPECT_NE(session->current().params().master_secret, secret_before);
  EXPECT_EQ(session->current().params().master_secret, secure_.session(sid)->current().params().master_secret);
}

TEST_F(SecureLayer, EchoAfterServerRestart) {
  ContextId sid = 0;
  auto session = pair({}, &sid, /*window_initialised=*/false);
  SecureClient client(client_ep_, *session);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(cap.responses[0].code, code::kContent);
  EXPECT_EQ(secure_.stats().echo_challenges, 1u);
  EXPECT_EQ(seen_contexts_.size(), 1u);  // the handler ran once, for the resend
  EXPECT_TRUE(secure_.session(sid)->current().replay_window().initialised());
  // Later requests need no Echo.
  Captured cap2;
  one_shot(client, req(code::kGet, "/oscore/hello/1"), cap2);
  EXPECT_EQ(cap2.responses[0].code, code::kContent);
  EXPECT_EQ(secure_.stats().echo_challenges, 1u);
}

TEST_F(SecureLayer, EchoChallengeWithoutRetryIsProtected401) {
  auto session = pair({}, nullptr, /*window_initialised=*/false);
  coap::Message outer = protect_raw(*session, req(code::kGet, "/oscore/hello/1"));
  std::vector<Bytes> raw;
  client_ep_.request(kServer, outer, {}, [&](const coap::ClientEvent& ev) {
    if (ev.response) raw.push_back(*ev.response->encode());
  });
  run();
  ASSERT_EQ(raw.size(), 1u);
  auto v = coap::MessageView::parse(raw[0]);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->code, code::kChanged);  // protected: the 4.01 is inside
  auto ov = peek_option(raw[0]);
  ASSERT_TRUE(ov);
  EXPECT_FALSE(ov->partial_iv.empty());  // never the request's nonce (Appendix B.1.2)
  EXPECT_TRUE(seen_contexts_.empty());
}

TEST_F(SecureLayer, SeparateResponseIsProtectedWithFreshPartialIv) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/slow"), {}, cap.cb()));
  run();
  ASSERT_TRUE(deferred_);
  EXPECT_TRUE(cap.events.empty());
  coap::Message later(coap::Type::kCon, code::kContent);
  later.set_payload("done later");
  server_.respond_later(*deferred_, later);
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  EXPECT_EQ(cap.events[0].status, coap::ClientStatus::kResponse);
  EXPECT_EQ(as_string(cap.responses[0].payload), "done later");
  const Bytes& last = net_.sent(kServer).back();
  auto ov = peek_option(last);
  if (!ov) {
    // the last datagram may be the ACK of our ACK; find the response
    for (const Bytes& d : net_.sent(kServer))
      if (auto o = peek_option(d)) ov = o;
  }
  ASSERT_TRUE(ov);
  EXPECT_FALSE(ov->partial_iv.empty());
}

TEST_F(SecureLayer, ServerWithAnotherKeyAnswers400) {
  auto session = pair({});
  // The server answers with a context that has a different key.
  secure_.remove_context(*secure_.find_context(Bytes{}, std::nullopt));
  ASSERT_TRUE(secure_.add_context(make({0x01}, {}, "0102030405060708090a0b0c0d0e0f11"), no_auto()));
  SecureClient client(client_ep_, *session);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
  // The server cannot decrypt: an unprotected 4.00.
  EXPECT_EQ(ev.status, coap::ClientStatus::kBadResponse);
  EXPECT_EQ(ev.error, Error::kContextNotFound);
  ASSERT_TRUE(cap.unprotected[0]);
  EXPECT_EQ(cap.unprotected[0]->code, code::kBadRequest);
}

TEST_F(SecureLayer, TamperedResponseIsRejected) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  net_.drop_next(kServer, 1);  // the genuine piggybacked response is lost ...
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, cap.cb()));
  net_.run(milliseconds(100));
  ASSERT_TRUE(cap.events.empty());
  Bytes forged = net_.sent(kServer).back();  // ... and a tampered copy arrives instead
  forged.back() ^= 0x80;
  net_.inject(kServer, kClient, forged);
  net_.run(milliseconds(100));
  ASSERT_EQ(cap.events.size(), 1u);
  EXPECT_EQ(cap.events[0].status, coap::ClientStatus::kBadResponse);
  EXPECT_EQ(cap.events[0].error, Error::kDecryptionFailed);
  EXPECT_EQ(cap.unprotected[0], std::nullopt);
}

TEST_F(SecureLayer, UnprotectedObserveWhereAllowed) {
  secure_.allow_unprotected("/obs");
  std::vector<coap::Message> got;
  coap::RequestOptions o;
  o.observe = true;
  client_ep_.request(kServer, req(code::kGet, "/obs"), o, [&](const coap::ClientEvent& ev) {
    if (ev.response) got.push_back(*ev.response);
  });
  run();
  obs_value_ = 5;
  server_.notify("/obs");
  run();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(as_string(got[1].payload), "value 5");
  EXPECT_FALSE(got[1].has(opt::kOscore));
}

// A protected observation dropped from a full exchange table is not continued
// unprotected: its next notification is not sent and the observation ends.
TEST_F(SecureLayer, FullExchangeTableFailsClosed) {
  const coap::Address kServer2 = coap::Address::ipv4(10, 0, 0, 4, 5683);
  FakeRandom r1{21}, r2{22};
  coap::Endpoint ep2(clock_, r1);
  coap::Server server2(ep2);
  int value = 0;
  auto& obs = server2.add("/obs");
  obs.observable = true;
  obs.on(code::kGet, [&](coap::Request&, coap::Message& resp) {
    resp.code = code::kContent;
    resp.set_payload("v" + std::to_string(value));
  });
  SecureServerConfig cfg;
  cfg.max_exchanges = 1;
  SecureServer secure2(ep2, server2, r2, clock_, cfg);
  net_.attach(kServer2, ep2);
  ASSERT_TRUE(secure2.add_context(make({0x01}, {}), no_auto()));
  ASSERT_TRUE(secure2.add_context(make({0x01}, {0x02}), no_auto()));
  Session sa(Role::kClient, make({}, {0x01}), rand_cs_, clock_, no_auto());
  Session sb(Role::kClient, make({0x02}, {0x01}), rand_cs_, clock_, no_auto());
  SecureClient ca(client_ep_, sa), cb(client_ep2_, sb);
  Captured cap_a, cap_b;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(ca.request(kServer2, req(code::kGet, "/obs"), o, cap_a.cb()));
  run();
  ASSERT_TRUE(cb.request(kServer2, req(code::kGet, "/obs"), o, cap_b.cb()));
  run();
  EXPECT_EQ(server2.num_observers("/obs"), 2u);
  value = 1;
  server2.notify("/obs");
  run();
  EXPECT_EQ(cap_a.events.size(), 1u);  // A's exchange was dropped: nothing sent
  ASSERT_EQ(cap_b.events.size(), 2u);
  EXPECT_EQ(as_string(cap_b.responses[1].payload), "v1");
  EXPECT_EQ(server2.num_observers("/obs"), 1u);
  for (const Bytes& d : net_.sent(kServer2)) {
    auto v = coap::MessageView::parse(d);
    ASSERT_TRUE(v);
    if (v->code != 0) EXPECT_TRUE(v->has(opt::kOscore));
  }
}

// Two contexts with the same kid but different ID Contexts, and a client that
// does not send its kid context: the server tries both.
TEST_F(SecureLayer, SameKidDifferentIdContextTriesEach) {
  auto with_idc = [&](Bytes sender, Bytes recipient, const char* idc) {
    ContextConfig cfg;
    cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.params.sender_id = std::move(sender);
    cfg.params.recipient_id = std::move(recipient);
    cfg.params.id_context = *from_hex(idc);
    return std::move(*Context::create(*provider_, std::move(cfg)));
  };
  ASSERT_TRUE(secure_.add_context(with_idc({0x01}, {0x05}, "aa"), no_auto()));
  auto id_b = secure_.add_context(with_idc({0x01}, {0x05}, "bb"), no_auto());
  ASSERT_TRUE(id_b);
  Session s(Role::kClient, with_idc({0x05}, {0x01}, "bb"), rand_cs_, clock_, no_auto());
  SecureClient client(client_ep_, s);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  ASSERT_EQ(seen_contexts_.size(), 1u);
  EXPECT_EQ(seen_contexts_[0], *id_b);
}

TEST_F(SecureLayer, ObserveDeregistrationIsProtected) {
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  auto id = client.request(kServer, req(code::kGet, "/obs"), o, cap.cb());
  ASSERT_TRUE(id);
  run();
  ASSERT_EQ(server_.num_observers("/obs"), 1u);
  const size_t sent_before = net_.sent(kClient).size();
  client.cancel(*id, /*deregister=*/true);
  run();
  EXPECT_EQ(server_.num_observers("/obs"), 0u);  // removed by the request, no notification needed
  EXPECT_EQ(secure_.stats().protected_requests, 2u);
  EXPECT_EQ(secure_.stats().rejected, 0u);
  ASSERT_GT(net_.sent(kClient).size(), sent_before);
  const Bytes& dereg = net_.sent(kClient)[sent_before];
  auto v = coap::MessageView::parse(dereg);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->has(opt::kOscore));
  EXPECT_FALSE(v->has(opt::kUriPath));
  ASSERT_EQ(cap.events.size(), 2u);
  EXPECT_EQ(cap.events.back().status, coap::ClientStatus::kCancelled);
}

TEST_F(SecureLayer, ObserveLargeNotificationsAreCompleted) {
  auto& big_obs = server_.add("/big-obs");
  big_obs.observable = true;
  big_obs.on(code::kGet, [this](coap::Request&, coap::Message& resp) {
    resp.code = code::kContent;
    resp.set_payload(std::to_string(obs_value_) + big_);
  });
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/big-obs"), o, cap.cb()));
  run();
  obs_value_ = 7;
  server_.notify("/big-obs");
  run();
  ASSERT_EQ(cap.events.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cap.events[i].status, coap::ClientStatus::kNotification);
    EXPECT_EQ(cap.responses[i].payload.size(), big_.size() + 1);
    EXPECT_FALSE(cap.responses[i].has(opt::kBlock2));
  }
  EXPECT_EQ(as_string(cap.responses[0].payload), "0" + big_);
  EXPECT_EQ(as_string(cap.responses[1].payload), "7" + big_);
  EXPECT_EQ(server_.num_observers("/big-obs"), 1u);  // the Block2 GETs did not end it
  EXPECT_EQ(client.num_requests(), 1u);              // only the observation is left
}

// A handler that defers and answers at once (respond_later inside the handler).
TEST_F(SecureLayer, RespondLaterInsideTheHandler) {
  server_.add("/instant").on(code::kGet, [this](coap::Request& req, coap::Message&) {
    coap::Message later(coap::Type::kCon, code::kContent);
    later.set_payload("at once");
    server_.respond_later(req.defer(), later);
  });
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/instant"), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(as_string(cap.responses[0].payload), "at once");
  EXPECT_EQ(secure_.stats().protect_failures, 0u);
}

// Server-initiated key update whose first message is a notification (Figure 6
// with R1 in a notification), completed by the client's next request.
TEST_F(SecureLayer, ServerInitiatedKeyUpdateInANotification) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/obs"), o, cap.cb()));
  run();
  secure_.session(sid)->request_key_update();
  obs_value_ = 1;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 2u);
  EXPECT_EQ(as_string(cap.responses[1].payload), "value 1");
  Captured cap2;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap2);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
  // The observation goes on across the update: the next notifications are
  // protected with CTX_NEW and verified with it (the client deleted CTX_OLD).
  ASSERT_EQ(session->retained_old(), nullptr);
  for (int i = 2; i <= 3; ++i) {
    obs_value_ = i;
    server_.notify("/obs");
    run();
  }
  ASSERT_EQ(cap.events.size(), 4u);
  EXPECT_EQ(cap.events[2].status, coap::ClientStatus::kNotification);
  EXPECT_EQ(as_string(cap.responses[2].payload), "value 2");
  EXPECT_EQ(as_string(cap.responses[3].payload), "value 3");
  EXPECT_LT(*cap.events[2].observe, *cap.events[3].observe);
  EXPECT_EQ(server_.num_observers("/obs"), 1u);
  EXPECT_EQ(client.num_requests(), 1u);
}

// Notifications across a key update, checked on the wire: after the update
// every notification verifies with CTX_NEW only, never with CTX_OLD, and an old
// notification replayed is dropped (Notification Number, RFC 8613 §7.4.1).
TEST_F(SecureLayer, ObservationSurvivesClientInitiatedKeyUpdate) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/obs"), o, cap.cb()));
  run();
  obs_value_ = 1;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 2u);
  const Bytes old_secret = session->current().params().master_secret;
  const size_t sent_before = net_.sent(kServer).size();
  // Figure 5: the client's next request carries R1 under CTX_1; the server
  // answers under CTX_NEW (R1|R2) and awaits key confirmation.
  session->request_key_update();
  Captured c1;
  ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), c1).status, coap::ClientStatus::kResponse);
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(secure_.session(sid)->state(), KeyUpdateState::kServerAwaitingConfirm);
  // A notification while the server awaits confirmation already uses CTX_NEW.
  obs_value_ = 2;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 3u);
  EXPECT_EQ(as_string(cap.responses[2].payload), "value 2");
  // Key confirmation, then more notifications.
  Captured c2;
  ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), c2).status, coap::ClientStatus::kResponse);
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
  obs_value_ = 3;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 4u);
  EXPECT_EQ(cap.events[3].status, coap::ClientStatus::kNotification);
  EXPECT_EQ(as_string(cap.responses[3].payload), "value 3");
  EXPECT_LT(*cap.events[2].observe, *cap.events[3].observe);
  // On the wire: the notifications after the update do not verify under a
  // copy of CTX_OLD (a fresh client context with the old secret and the
  // registration's exchange), i.e. they were protected with CTX_NEW.
  std::vector<Bytes> notes;
  for (size_t i = sent_before; i < net_.sent(kServer).size(); ++i) {
    const Bytes& d = net_.sent(kServer)[i];
    auto v = coap::MessageView::parse(d);
    if (v && v->has(opt::kObserve) && v->has(opt::kOscore)) notes.push_back(d);
  }
  ASSERT_EQ(notes.size(), 2u);
  auto reg = peek_option(net_.sent(kClient)[0]);
  ASSERT_TRUE(reg);
  auto verify_with = [&](const ContextParams& p, const Bytes& d) {
    ContextConfig cfg;
    cfg.params = p;
    auto c = Context::create(*provider_, cfg);
    EXPECT_TRUE(c);
    Exchange ex;
    ex.piv_len = static_cast<uint8_t>(reg->partial_iv.size());
    std::copy(reg->partial_iv.begin(), reg->partial_iv.end(), ex.piv.begin());
    ex.observe = true;
    Bytes out(2048);
    return (*c)->unprotect_response(d, ex, out);
  };
  ContextParams old_params = session->current().params();
  old_params.master_secret = old_secret;
  old_params.master_salt = *from_hex("9e7ca92223786340");
  for (const Bytes& d : notes) {
    EXPECT_TRUE(verify_with(session->current().params(), d));
    auto r = verify_with(old_params, d);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Error::kDecryptionFailed);
  }
  // A replayed notification from before the update is dropped.
  net_.inject(kServer, kClient, net_.sent(kServer)[sent_before - 1]);
  run();
  EXPECT_EQ(cap.events.size(), 4u);
  EXPECT_NE(session->current().params().master_secret, old_secret);
  EXPECT_EQ(server_.num_observers("/obs"), 1u);
  // The protected deregistration goes out under CTX_NEW and ends it at the server.
  client.cancel(1, /*deregister=*/true);
  run();
  EXPECT_EQ(server_.num_observers("/obs"), 0u);
}

// Figure 6 with the server's answer under CTX_NEW lost: the client, holding
// CTX_NEW, verifies the next notification with it and takes that as key
// confirmation (CTX_OLD deleted).
TEST_F(SecureLayer, NotificationUnderCtxNewConfirmsFigure6) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/obs"), o, cap.cb()));
  run();
  secure_.session(sid)->request_key_update();
  Captured c1;
  ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), c1).status, coap::ClientStatus::kResponse);
  ASSERT_EQ(session->state(), KeyUpdateState::kClientHasNew);
  // The request under CTX_NEW (R1|R2) as NON; the server's answer is lost.
  coap::RequestOptions non;
  non.confirmable = false;
  Captured c2;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/oscore/hello/1"), non, c2.cb()));
  net_.drop_next(kServer, 1);
  run();
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
  ASSERT_EQ(session->state(), KeyUpdateState::kClientHasNew);
  obs_value_ = 5;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 2u);
  EXPECT_EQ(as_string(cap.responses[1].payload), "value 5");
  EXPECT_EQ(session->state(), KeyUpdateState::kIdle);
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(session->current().params().master_secret, secure_.session(sid)->current().params().master_secret);
}

// With a retention period (§3.4) the client still accepts a late notification
// protected with CTX_OLD; after the period it no longer does.
TEST_F(SecureLayer, ObservationAcrossKeyUpdateWithRetention) {
  KeyUpdateConfig k = no_auto();
  k.retention = seconds(100);
  ContextId sid = *secure_.add_context(make({0x01}, {}), k);
  auto session = std::make_unique<Session>(Role::kClient, make({}, {0x01}), rand_cs_, clock_, k);
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/obs"), o, cap.cb()));
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  // Two notifications under CTX_OLD, held back by the network.
  std::vector<Bytes> late;
  for (int i = 1; i <= 2; ++i) {
    obs_value_ = i;
    net_.drop_next(kServer, 1);
    server_.notify("/obs");
    run();
    late.push_back(net_.sent(kServer).back());
  }
  ASSERT_EQ(cap.events.size(), 1u);
  secure_.session(sid)->request_key_update();  // Figure 6 in the next response
  for (int i = 0; i < 2; ++i) {
    Captured c;
    ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), c).status, coap::ClientStatus::kResponse);
  }
  ASSERT_EQ(session->updates_completed(), 1u);
  ASSERT_EQ(secure_.session(sid)->updates_completed(), 1u);
  ASSERT_NE(session->retained_old(), nullptr);
  // Within the retention period the first late one verifies with CTX_OLD.
  net_.inject(kServer, kClient, late[0]);
  run();
  ASSERT_EQ(cap.events.size(), 2u);
  EXPECT_EQ(as_string(cap.responses[1].payload), "value 1");
  // After it, CTX_OLD is gone: the second late one is dropped.
  clock_.advance(seconds(101));
  net_.inject(kServer, kClient, late[1]);
  run();
  EXPECT_EQ(cap.events.size(), 2u);
  EXPECT_EQ(session->retained_old(), nullptr);
  // A new notification (CTX_NEW) is accepted.
  obs_value_ = 3;
  server_.notify("/obs");
  run();
  ASSERT_EQ(cap.events.size(), 3u);
  EXPECT_EQ(as_string(cap.responses[2].payload), "value 3");
  EXPECT_EQ(server_.num_observers("/obs"), 1u);
}

// Client-initiated key update (Figure 5) whose response is a separate one: it
// must carry R1|R2 although it is sent later.
TEST_F(SecureLayer, ClientInitiatedKeyUpdateWithSeparateResponse) {
  ContextId sid = 0;
  auto session = pair({}, &sid);
  SecureClient client(client_ep_, *session);
  session->request_key_update();
  Captured cap;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/slow"), {}, cap.cb()));
  run();
  ASSERT_TRUE(deferred_);
  coap::Message later(coap::Type::kCon, code::kContent);
  later.set_payload("later");
  server_.respond_later(*deferred_, later);
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  ASSERT_EQ(cap.events[0].status, coap::ClientStatus::kResponse);
  EXPECT_EQ(as_string(cap.responses[0].payload), "later");
  Captured cap2;
  one_shot(client, req(code::kGet, "/oscore/hello/1"), cap2);
  EXPECT_EQ(session->updates_completed(), 1u);
  EXPECT_EQ(secure_.session(sid)->updates_completed(), 1u);
}

// The Endpoint refuses a request at once (too many exchanges): the callback
// still hears about it.
TEST_F(SecureLayer, RefusedByTheEndpointIsReported) {
  coap::EndpointConfig cfg;
  cfg.max_client_exchanges = 1;
  FakeRandom r{31};
  coap::Endpoint small_ep(clock_, r, cfg);
  auto session = pair({});
  SecureClient client(small_ep, *session);
  Captured a, b;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, a.cb()));
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/oscore/hello/1"), {}, b.cb()));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].status, coap::ClientStatus::kCancelled);
  EXPECT_EQ(client.num_requests(), 1u);
}

// A notification with an error code ends the observation (RFC 7641 §3.2), and
// arrives protected and verified.
TEST_F(SecureLayer, ObservationEndsWithAnErrorNotification) {
  bool broken = false;
  auto& r = server_.add("/obs2");
  r.observable = true;
  r.on(code::kGet, [&](coap::Request&, coap::Message& resp) {
    if (broken) {
      coap::error_response(resp, code::kServiceUnavailable, "gone");
      return;
    }
    resp.code = code::kContent;
    resp.set_payload("ok");
  });
  auto session = pair({});
  SecureClient client(client_ep_, *session);
  Captured cap;
  coap::RequestOptions o;
  o.observe = true;
  ASSERT_TRUE(client.request(kServer, req(code::kGet, "/obs2"), o, cap.cb()));
  run();
  server_.notify("/obs2");
  run();
  broken = true;
  server_.notify("/obs2");
  run();
  ASSERT_EQ(cap.events.size(), 3u);
  EXPECT_EQ(cap.events[1].status, coap::ClientStatus::kNotification);
  EXPECT_EQ(cap.events[2].status, coap::ClientStatus::kResponse);
  EXPECT_EQ(cap.responses[2].code, code::kServiceUnavailable);
  EXPECT_EQ(as_string(cap.responses[2].payload), "gone");
  EXPECT_EQ(server_.num_observers("/obs2"), 0u);
  EXPECT_EQ(client.num_requests(), 0u);
}

// ---- Outer block-wise (RFC 8613 §4.1.3.4.2): a proxy fragments the OSCORE message ----

std::string pattern(size_t n) {
  std::string p;
  for (size_t i = 0; p.size() < n; ++i) p += "frag" + std::to_string(i) + ",";
  p.resize(n);
  return p;
}

size_t count_code(const std::vector<Bytes>& sent, uint8_t c) {
  size_t k = 0;
  for (const Bytes& d : sent) {
    auto v = coap::MessageView::parse(d);
    if (v && v->code == c) ++k;
  }
  return k;
}

// A proxy (a plain CoAP endpoint) forwards one OSCORE request in 64-byte Outer
// Block1 blocks: the server answers 2.31 to each, reassembles the OSCORE
// message, verifies it whole, and the final response is protected.
TEST_F(SecureLayer, OuterBlock1FromAProxyIsReassembled) {
  auto session = pair({});
  const std::string body = pattern(700);
  auto m = req(code::kPost, "/r");
  m.set_payload(body);
  Bytes buf(2048);
  Exchange ex;
  auto n = session->protect_request(m, buf, ex);
  ASSERT_TRUE(n);
  auto outer = coap::Message::parse(ByteView(buf.data(), *n));
  ASSERT_TRUE(outer);
  FakeRandom rp{41};
  coap::Endpoint proxy(clock_, rp);
  net_.attach(kProxy, proxy);
  coap::RequestOptions o;
  o.block1_size = 64;
  std::optional<coap::Message> got;
  proxy.request(kServer, *outer, o, [&](const coap::ClientEvent& ev) {
    if (ev.response) got = *ev.response;
  });
  run();
  ASSERT_TRUE(got);
  EXPECT_EQ(as_string(last_post_), body);
  EXPECT_EQ(secure_.stats().outer_block1_reassembled, 1u);
  EXPECT_EQ(secure_.stats().protected_requests, 1u);
  const size_t blocks = (*n + 63) / 64;  // more than 11 blocks of the ~720-byte message
  EXPECT_GE(blocks, 11u);
  EXPECT_EQ(count_code(net_.sent(kServer), code::kContinue), blocks - 1);
  // The final response names the last block and verifies with the client's session.
  auto b1 = got->get_uint(opt::kBlock1);
  ASSERT_TRUE(b1);
  EXPECT_EQ(*b1 >> 4, blocks - 1);
  auto d = got->encode();
  ASSERT_TRUE(d);
  Bytes plain(2048);
  auto r = session->unprotect_response(*d, ex, plain);
  ASSERT_TRUE(r);
  auto inner = coap::Message::parse(ByteView(plain.data(), *r));
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->code, code::kCreated);
}

// Fragments beyond MAX_UNFRAGMENTED_SIZE: 4.13 with Size1 = the limit (from the
// announced Size1 at once, or when the blocks add up to more); a block out of
// sequence: 4.08. Nothing is unprotected.
TEST_F(SecureLayer, OuterBlock1BeyondTheLimitIs413) {
  pair({});
  auto oscore_value = *from_hex("090001");  // Partial IV 1, kid empty
  uint16_t mid = 100;
  auto block = [&](uint32_t num, bool more, size_t len, std::optional<uint32_t> size1) {
    coap::Message m(coap::Type::kCon, code::kPost);
    m.message_id = mid++;
    m.token = {0x42};
    m.set_option(opt::kOscore, oscore_value);
    m.set_uint(opt::kBlock1, coap::BlockValue{num, more, 2}.encode());
    if (size1) m.set_uint(opt::kSize1, *size1);
    m.payload.assign(len, 0x5a);
    return *m.encode();
  };
  auto last_reply = [&] {
    auto v = coap::Message::parse(net_.sent(kServer).back());
    EXPECT_TRUE(v);
    return *v;
  };
  // Announced too large.
  net_.inject(kProxy, kServer, block(0, true, 64, 4096));
  run();
  auto a = last_reply();
  EXPECT_EQ(a.code, code::kRequestEntityTooLarge);
  EXPECT_EQ(a.get_uint(opt::kSize1), 2048u);
  // No Size1: the blocks add up beyond 2048 bytes.
  uint32_t num = 0;
  for (; num < 40; ++num) {
    net_.inject(kProxy, kServer, block(num, true, 64, std::nullopt));
    run();
    if (last_reply().code != code::kContinue) break;
  }
  EXPECT_EQ(num, 2048u / 64);  // blocks 0..31 fit exactly, block 32 does not
  auto b = last_reply();
  EXPECT_EQ(b.code, code::kRequestEntityTooLarge);
  EXPECT_EQ(b.get_uint(opt::kSize1), 2048u);
  // The transfer is gone: the next block is out of sequence.
  net_.inject(kProxy, kServer, block(num + 1, false, 10, std::nullopt));
  run();
  EXPECT_EQ(last_reply().code, code::kRequestEntityIncomplete);
  EXPECT_EQ(secure_.stats().protected_requests, 0u);
  EXPECT_EQ(secure_.stats().outer_block1_reassembled, 0u);
  EXPECT_EQ(secure_.stats().outer_block1_refused, 3u);
}

// A proxy fragments the protected response with Outer Block2: the client's
// Endpoint fetches the blocks, the SecureClient verifies the whole message; above
// max_unfragmented_size it is discarded unverified.
class OuterBlock2 : public SecureLayer {
 protected:
  FakeRandom rand_proxy_{43};
  coap::Endpoint proxy_{clock_, rand_proxy_};
  std::unique_ptr<Session> origin_;  // the origin server's side of the context
  Bytes whole_;                       // the protected response the proxy fragments
  int fetched_ = 0;

  void SetUp() override {
    SecureLayer::SetUp();
    net_.attach(kProxy, proxy_);
    origin_ = std::make_unique<Session>(Role::kServer, make({0x01}, {}), rand_srv_, clock_, no_auto());
    proxy_.set_request_handler([this](coap::RequestContext& c) {
      auto b2o = c.request.find(opt::kBlock2);
      const uint32_t num = b2o ? coap::BlockValue::decode(b2o->value)->num : 0;
      if (num == 0) {
        auto ov = find_oscore_option(c.request);
        ASSERT_TRUE(ov);
        Exchange ex;
        Bytes plain(2048);
        ASSERT_TRUE(origin_->unprotect_request(c.request, *ov, plain, ex));
        coap::Message resp(coap::Type::kAck, code::kContent);
        resp.token.assign(c.request.token.begin(), c.request.token.end());
        resp.set_payload(pattern(700));
        whole_.resize(2048);
        auto n = origin_->protect_response(resp, ex, whole_);
        ASSERT_TRUE(n);
        whole_.resize(*n);
      }
      ++fetched_;
      auto w = coap::Message::parse(whole_);
      ASSERT_TRUE(w);
      const size_t off = size_t{num} * 64;
      const size_t len = std::min<size_t>(64, w->payload.size() - off);
      c.response.code = w->code;
      for (const coap::Option& o : w->options()) c.response.add_option(o.number, o.value);
      c.response.set_uint(opt::kBlock2, coap::BlockValue{num, off + len < w->payload.size(), 2}.encode());
      c.response.payload.assign(w->payload.begin() + off, w->payload.begin() + off + len);
    });
  }
};

TEST_F(OuterBlock2, ClientReassemblesBeforeVerifying) {
  auto session = std::make_unique<Session>(Role::kClient, make({}, {0x01}), rand_cs_, clock_, no_auto());
  SecureClient client(client_ep_, *session);
  Captured cap;
  ASSERT_TRUE(client.request(kProxy, req(code::kGet, "/big"), {}, cap.cb()));
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  ASSERT_EQ(cap.events[0].status, coap::ClientStatus::kResponse);
  EXPECT_EQ(cap.responses[0].code, code::kContent);
  EXPECT_EQ(as_string(cap.responses[0].payload), pattern(700));
  EXPECT_EQ(fetched_, static_cast<int>((coap::Message::parse(whole_)->payload.size() + 63) / 64));
  EXPECT_GE(fetched_, 11);
}

TEST_F(OuterBlock2, BeyondMaxUnfragmentedSizeIsDiscarded) {
  auto session = std::make_unique<Session>(Role::kClient, make({}, {0x01}), rand_cs_, clock_, no_auto());
  SecureClientConfig cfg;
  cfg.max_unfragmented_size = 512;
  SecureClient client(client_ep_, *session, cfg);
  Captured cap;
  ASSERT_TRUE(client.request(kProxy, req(code::kGet, "/big"), {}, cap.cb()));
  run();
  ASSERT_EQ(cap.events.size(), 1u);
  EXPECT_EQ(cap.events[0].status, coap::ClientStatus::kBadResponse);
  EXPECT_EQ(cap.events[0].error, Error::kBufferTooSmall);
  // Never verified: the recipient's count_v did not move (nothing was tried).
  EXPECT_EQ(session->current().count_v(), 0u);
}

// ---- Appendix B.2 through the layer ----

B2Config b2_config(Bytes sender, Bytes recipient, Random* random) {
  B2Config c;
  c.base.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
  c.base.params.master_salt = *from_hex("9e7ca92223786340");
  c.base.params.sender_id = std::move(sender);
  c.base.params.recipient_id = std::move(recipient);
  c.base.params.id_context = *from_hex("37cbf3210017a2d3");
  c.base.random = random;
  return c;
}

// A client that lost its context (no established one) runs B.2 with a server
// that has one: request #1 (kid context R1) gets the protected 4.01 response #1,
// the client resends as request #2 under CTX3, which the server dispatches.
TEST_F(SecureLayer, AppendixB2ClientWithoutContext) {
  auto server_b2 = B2Server::create(*provider_, b2_config({0x01}, {}, &rand_srv_), rand_srv_, clock_, true);
  ASSERT_TRUE(server_b2);
  auto sid = secure_.add_b2(std::move(*server_b2));
  ASSERT_TRUE(sid);
  auto client_b2 = B2Client::create(*provider_, b2_config({}, {0x01}, &rand_cs_), rand_cs_, false);
  ASSERT_TRUE(client_b2);
  SecureClient client(client_ep_, **client_b2);
  Captured cap;
  auto ev = one_shot(client, req(code::kGet, "/oscore/hello/1"), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(as_string(cap.responses[0].payload), "Hello World!");
  EXPECT_EQ(secure_.stats().b2_responses1, 1u);
  EXPECT_EQ(secure_.stats().protected_requests, 1u);  // request #1 was not dispatched
  EXPECT_EQ(seen_contexts_.size(), 1u);
  EXPECT_EQ((*client_b2)->state(), B2State::kEstablished);
  // Both now hold CTX3: same ID Context R2 || R3 (16 bytes), not the configured one.
  B2Server* sb = secure_.b2(*sid);
  ASSERT_NE(sb, nullptr);
  ASSERT_NE(sb->current(), nullptr);
  EXPECT_EQ(sb->current()->params().id_context, (*client_b2)->current()->params().id_context);
  EXPECT_EQ(sb->current()->params().id_context->size(), 16u);
  EXPECT_EQ(secure_.session(*sid), nullptr);
  // On the wire: response #1 is a protected 4.01 (outer 2.04 + 'kid context'), then request #2.
  const auto& from_server = net_.sent(kServer);
  ASSERT_GE(from_server.size(), 2u);
  auto r1 = peek_option(from_server[0]);
  ASSERT_TRUE(r1);
  ASSERT_TRUE(r1->kid_context);
  EXPECT_EQ(r1->kid_context->size(), 8u);
  // Ordinary requests under CTX3 follow, no B.2 round.
  Captured cap2;
  ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), cap2).status, coap::ClientStatus::kResponse);
  EXPECT_EQ(secure_.stats().b2_responses1, 1u);
  // The client renews: a new run, a new ID Context.
  const Bytes idc3 = *sb->current()->params().id_context;
  (*client_b2)->renew();
  Captured cap3;
  ASSERT_EQ(one_shot(client, req(code::kGet, "/oscore/hello/1"), cap3).status, coap::ClientStatus::kResponse);
  EXPECT_EQ(secure_.stats().b2_responses1, 2u);
  EXPECT_NE(*sb->current()->params().id_context, idc3);
  EXPECT_EQ(sb->current()->params().id_context, (*client_b2)->current()->params().id_context);
  // A replayed request #2 of the first run is never acted on: its ID Context is
  // not the current one any more, so it can only start a new run (response #1).
  const size_t dispatched = secure_.stats().protected_requests;
  std::optional<Bytes> old_request2;
  for (const Bytes& d : net_.sent(kClient)) {
    auto ov = peek_option(d);
    if (ov && ov->kid_context && equal(*ov->kid_context, idc3)) {
      old_request2 = d;
      break;
    }
  }
  ASSERT_TRUE(old_request2);
  auto replay = coap::Message::parse(*old_request2);
  ASSERT_TRUE(replay);
  replay->message_id = 0xbeef;  // past the Endpoint's deduplication
  net_.inject(kClient, kServer, *replay->encode());
  run();
  EXPECT_EQ(secure_.stats().protected_requests, dispatched);
  EXPECT_EQ(secure_.stats().b2_responses1, 3u);
}

// A server that lost its context (rebooted without the mutable part) answers the
// first request of a client with an established context with response #1; the
// client's SecureClient resends it as request #2 and gets the answer.
TEST_F(SecureLayer, AppendixB2ServerWithoutContext) {
  auto server_b2 = B2Server::create(*provider_, b2_config({0x01}, {}, &rand_srv_), rand_srv_, clock_, false);
  ASSERT_TRUE(server_b2);
  auto sid = secure_.add_b2(std::move(*server_b2));
  ASSERT_TRUE(sid);
  auto client_b2 = B2Client::create(*provider_, b2_config({}, {0x01}, &rand_cs_), rand_cs_, true);
  ASSERT_TRUE(client_b2);
  SecureClient client(client_ep_, **client_b2);
  Captured cap;
  auto m = req(code::kPut, "/r");
  m.set_payload("after reboot");
  auto ev = one_shot(client, std::move(m), cap);
  ASSERT_EQ(ev.status, coap::ClientStatus::kResponse);
  EXPECT_EQ(cap.responses[0].code, code::kChanged);
  EXPECT_EQ(stored_, "after reboot");
  EXPECT_EQ(secure_.stats().b2_responses1, 1u);
  ASSERT_NE(secure_.b2(*sid)->current(), nullptr);
  // ID3 = R2 || R3, while the client's ID1 was its configured ID Context.
  EXPECT_EQ(secure_.b2(*sid)->current()->params().id_context->size(), 16u);
}

// A B.2 peer claims its kid for every ID Context: no other context may share it.
TEST_F(SecureLayer, AppendixB2PeerOwnsItsKid) {
  pair({0x07});
  auto b = B2Server::create(*provider_, b2_config({0x01}, {0x07}, &rand_srv_), rand_srv_, clock_, true);
  ASSERT_TRUE(b);
  auto r = secure_.add_b2(std::move(*b));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kInvalidArgument);
  auto ok = B2Server::create(*provider_, b2_config({0x01}, {0x08}, &rand_srv_), rand_srv_, clock_, true);
  EXPECT_TRUE(secure_.add_b2(std::move(*ok)));
}

// Appendix B.2 through a fragmenting proxy: requests #1 and #2 arrive in outer
// Block1 blocks; the B2Server sees each reassembled message whole.
TEST_F(SecureLayer, AppendixB2ThroughOuterBlock1) {
  auto server_b2 = B2Server::create(*provider_, b2_config({0x01}, {}, &rand_srv_), rand_srv_, clock_, true);
  ASSERT_TRUE(server_b2);
  ASSERT_TRUE(secure_.add_b2(std::move(*server_b2)));
  auto client_b2 = B2Client::create(*provider_, b2_config({}, {0x01}, &rand_cs_), rand_cs_, false);
  ASSERT_TRUE(client_b2);
  FakeRandom rp{47};
  coap::Endpoint proxy(clock_, rp);
  net_.attach(kProxy, proxy);
  const std::string body = pattern(300);
  auto send_fragmented = [&](Exchange& ex) -> std::optional<coap::Message> {
    auto m = req(code::kPost, "/r");
    m.set_payload(body);
    Bytes buf(2048);
    auto n = (*client_b2)->protect_request(m, buf, ex);
    EXPECT_TRUE(n);
    if (!n) return std::nullopt;
    coap::RequestOptions o;
    o.block1_size = 64;
    std::optional<coap::Message> got;
    proxy.request(kServer, *coap::Message::parse(ByteView(buf.data(), *n)), o,
                  [&](const coap::ClientEvent& ev) {
                    if (ev.response) got = *ev.response;
                  });
    run();
    return got;
  };
  Exchange ex1;
  auto r1 = send_fragmented(ex1);
  ASSERT_TRUE(r1);
  Bytes plain(2048);
  auto v1 = (*client_b2)->unprotect_response(*r1->encode(), ex1, plain);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->action, B2Action::kResendRequest);
  EXPECT_TRUE(last_post_.empty());  // request #1 was not acted on
  Exchange ex2;
  auto r2 = send_fragmented(ex2);
  ASSERT_TRUE(r2);
  auto v2 = (*client_b2)->unprotect_response(*r2->encode(), ex2, plain);
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->action, B2Action::kDeliver);
  EXPECT_EQ(as_string(last_post_), body);
  EXPECT_EQ(secure_.stats().outer_block1_reassembled, 2u);
  EXPECT_EQ(secure_.stats().b2_responses1, 1u);
  EXPECT_EQ((*client_b2)->state(), B2State::kEstablished);
}

}  // namespace
