// Deterministic tests of messaging, server and client with FakeClock, FakeRandom
// and the simulated network (loss, duplication, reordering).
#include "coap/endpoint.h"

#include <gtest/gtest.h>

#include "coap/server.h"
#include "coap/sim.h"
#include "core/hex.h"

namespace acekdc::coap {
namespace {

const Address kClient = Address::ipv4(10, 0, 0, 1, 40000);
const Address kServer = Address::ipv4(10, 0, 0, 2, 5683);

struct Fixture {
  FakeClock clock;
  FakeRandom crng{1}, srng{2};
  EndpointConfig ccfg, scfg;
  std::unique_ptr<Endpoint> client, server_ep;
  std::unique_ptr<Server> server;
  std::unique_ptr<sim::Network> net;
  int handler_calls = 0;

  explicit Fixture(uint64_t seed = 7, sim::LinkParams lp = {}, EndpointConfig cc = {}, EndpointConfig sc = {},
                   ServerConfig svc = {}) {
    client = std::make_unique<Endpoint>(clock, crng, cc);
    server_ep = std::make_unique<Endpoint>(clock, srng, sc);
    server = std::make_unique<Server>(*server_ep, svc);
    net = std::make_unique<sim::Network>(clock, seed, lp);
    net->attach(kClient, *client);
    net->attach(kServer, *server_ep);
    server->add("/test").on(code::kGet, [this](Request& req, Message& resp) {
      ++handler_calls;
      resp.code = code::kContent;
      resp.set_uint(option::kContentFormat, cp::cf::kTextPlain);
      resp.set_payload("hello");
    });
  }

  // get sends one request and runs the network until the callback fired.
  ClientEvent run_request(Message req, RequestOptions opts = {}, Message* out = nullptr,
                          Duration max = seconds(300)) {
    ClientEvent result;
    bool done = false;
    client->request(kServer, std::move(req), opts, [&](const ClientEvent& ev) {
      result = ev;
      if (ev.response && out) *out = *ev.response;
      result.response = nullptr;
      if (ev.status != ClientStatus::kNotification) done = true;
    });
    net->run(max);
    EXPECT_TRUE(done);
    return result;
  }
};

Message get(std::string_view path) {
  Message m(Type::kCon, code::kGet);
  m.set_uri_path(path);
  return m;
}

TEST(CoapEndpoint, PiggybackedResponse) {
  Fixture f;
  Message resp;
  auto ev = f.run_request(get("/test"), {}, &resp);
  EXPECT_EQ(ev.status, ClientStatus::kResponse);
  EXPECT_EQ(resp.code, code::kContent);
  EXPECT_EQ(resp.type, Type::kAck);
  EXPECT_EQ(as_string(resp.payload), "hello");
  EXPECT_EQ(f.net->sent(kClient).size(), 1u);
  EXPECT_EQ(f.net->sent(kServer).size(), 1u);
}

TEST(CoapEndpoint, RetransmissionBackoff) {
  Fixture f;
  f.net->drop_next(kClient, 2);
  TimePoint start = f.clock.now();
  Message resp;
  auto ev = f.run_request(get("/test"), {}, &resp);
  EXPECT_EQ(ev.status, ClientStatus::kResponse);
  EXPECT_EQ(f.net->sent(kClient).size(), 3u);
  // first timeout in [2, 3] s, second twice that: total in [6, 9] s
  auto elapsed = f.clock.now() - start;
  EXPECT_GE(elapsed, seconds(6));
  EXPECT_LE(elapsed, seconds(9) + milliseconds(10));
  EXPECT_EQ(f.client->stats().retransmissions, 2u);
}

TEST(CoapEndpoint, RetransmissionGivesUp) {
  EndpointConfig cc;
  cc.max_retransmit = 3;
  cc.ack_timeout = seconds(1);
  cc.ack_random_factor = 1.0;
  Fixture f(7, {}, cc);
  f.net->drop_next(kClient, 100);
  TimePoint start = f.clock.now();
  auto ev = f.run_request(get("/test"));
  EXPECT_EQ(ev.status, ClientStatus::kTimeout);
  EXPECT_EQ(f.net->sent(kClient).size(), 4u);  // 1 + MAX_RETRANSMIT
  EXPECT_EQ(f.clock.now() - start, seconds(1 + 2 + 4 + 8));
}

TEST(CoapEndpoint, DuplicateConReplaysResponse) {
  Fixture f;
  Message req = get("/test");
  req.message_id = 0x1234;
  req.token = {1, 2};
  auto bytes = *req.encode();
  f.net->inject(kClient, kServer, bytes);
  f.net->inject(kClient, kServer, bytes);
  f.net->run(seconds(1));
  EXPECT_EQ(f.handler_calls, 1);
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(f.server_ep->stats().duplicates, 1u);
  // after EXCHANGE_LIFETIME the same MID is new again
  f.clock.advance(seconds(248));
  f.net->inject(kClient, kServer, bytes);
  f.net->run(seconds(1));
  EXPECT_EQ(f.handler_calls, 2);
}

// RequestContext::encoded_response: the bytes go out with only type and message
// ID rewritten (and are replayed for a duplicate); with another token the
// Message is encoded as usual.
TEST(CoapEndpoint, EncodedResponse) {
  Fixture f;
  Bytes encoded;
  f.server_ep->set_request_handler([&](RequestContext& ctx) {
    Message pre(Type::kCon, code::kChanged, 0x7777);
    pre.token.assign(ctx.request.token.begin(), ctx.request.token.end());
    if (ctx.request.has(option::kUriQuery)) pre.token = {9, 9};  // not the request's token
    pre.add_uint(option::kContentFormat, cp::cf::kTextPlain);
    pre.set_payload("pre-encoded");
    encoded = *pre.encode();
    ctx.response.code = code::kContent;
    ctx.response.set_payload("from the Message");
    ctx.encoded_response = encoded;
  });
  Message req = get("/test");
  req.message_id = 0x1234;
  req.token = {1, 2};
  auto bytes = *req.encode();
  f.net->inject(kClient, kServer, bytes);
  f.net->inject(kClient, kServer, bytes);
  f.net->run(seconds(1));
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], out[1]);  // the duplicate gets the same reply
  auto v = MessageView::parse(out[0]);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, Type::kAck);
  EXPECT_EQ(v->message_id, 0x1234);
  EXPECT_EQ(v->code, code::kChanged);
  EXPECT_EQ(as_string(v->payload), "pre-encoded");
  Bytes expected = encoded;
  expected[0] = static_cast<uint8_t>((expected[0] & 0xcf) | (static_cast<uint8_t>(Type::kAck) << 4));
  expected[2] = 0x12;
  expected[3] = 0x34;
  EXPECT_EQ(out[0], expected);

  Message other = get("/test");
  other.add_string(option::kUriQuery, "x");
  other.message_id = 0x1235;
  other.token = {1, 3};
  f.net->inject(kClient, kServer, *other.encode());
  f.net->run(seconds(1));
  ASSERT_EQ(out.size(), 3u);
  auto w = MessageView::parse(out[2]);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->code, code::kContent);
  EXPECT_EQ(as_string(w->payload), "from the Message");
  EXPECT_EQ(Bytes(w->token.begin(), w->token.end()), (Bytes{1, 3}));
}

// An encoded_response with the request's token that is not a well-formed
// response (bad option nibble, truncated option, a request code) is never sent:
// the reply is a 5.00, also for the duplicate.
TEST(CoapEndpoint, MalformedEncodedResponseNeverSent) {
  Fixture f;
  Bytes encoded;
  int calls = 0;
  f.server_ep->set_request_handler([&](RequestContext& ctx) {
    ++calls;
    Message pre(Type::kAck, code::kChanged, 0x7777);
    pre.token.assign(ctx.request.token.begin(), ctx.request.token.end());
    pre.set_payload("secret-ish");
    encoded = *pre.encode();
    const size_t opt_at = 4 + pre.token.size();
    if (ctx.request.message_id == 0x2001) encoded.insert(encoded.begin() + opt_at, 0xf1);  // reserved nibble
    if (ctx.request.message_id == 0x2002) encoded.insert(encoded.begin() + opt_at, 0x1d);  // ext. length cut off
    if (ctx.request.message_id == 0x2003) encoded[1] = code::kPost;                        // a request code
    if (ctx.request.message_id == 0x2002) encoded.resize(opt_at + 2);
    ctx.response.code = code::kChanged;
    ctx.encoded_response = encoded;
  });
  for (uint16_t mid : {0x2001, 0x2002, 0x2003}) {
    Message req = get("/test");
    req.message_id = mid;
    req.token = {7, static_cast<uint8_t>(mid)};
    f.net->inject(kClient, kServer, *req.encode());
    f.net->inject(kClient, kServer, *req.encode());  // duplicate CON
  }
  f.net->run(seconds(1));
  EXPECT_EQ(calls, 3);
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 6u);
  for (size_t i = 0; i < out.size(); ++i) {
    auto v = MessageView::parse(out[i]);
    ASSERT_TRUE(v) << i;
    EXPECT_EQ(v->type, Type::kAck);
    EXPECT_EQ(v->code, code::kInternalServerError) << i;
    EXPECT_TRUE(v->payload.empty());
    EXPECT_EQ(v->message_id, 0x2001 + i / 2);
    EXPECT_EQ(Bytes(v->token.begin(), v->token.end()), (Bytes{7, static_cast<uint8_t>(0x2001 + i / 2)}));
  }
  EXPECT_EQ(out[0], out[1]);
}

TEST(CoapEndpoint, MalformedConGetsRstNonDropped) {
  Fixture f;
  f.net->inject(kClient, kServer, *from_hex("40011234f1"));  // CON with reserved nibble
  f.net->inject(kClient, kServer, *from_hex("50011235f1"));  // NON, same problem
  f.net->inject(kClient, kServer, *from_hex("60011236f1"));  // ACK, malformed
  f.net->inject(kClient, kServer, *from_hex("40001237"));    // CON ping
  f.net->run(seconds(1));
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(to_hex(out[0]), "70001234");
  EXPECT_EQ(to_hex(out[1]), "70001237");
}

TEST(CoapEndpoint, UnrecognizedCriticalOption) {
  Fixture f;
  Message req = get("/test");
  req.add_option(2049, as_bytes("x"));  // odd = critical, unknown
  Message resp;
  f.run_request(req, {}, &resp);
  EXPECT_EQ(resp.code, code::kBadOption);
  EXPECT_EQ(f.handler_calls, 0);
  Message req2 = get("/test");
  req2.add_option(2048, as_bytes("x"));  // even = elective: ignored
  f.run_request(req2, {}, &resp);
  EXPECT_EQ(resp.code, code::kContent);
}

TEST(CoapEndpoint, SeparateResponse) {
  Fixture f;
  std::optional<DeferredResponse> pending;
  f.server->add("/separate").on(code::kGet, [&](Request& req, Message&) { pending = req.defer(); });
  ClientEvent result;
  Message resp;
  bool done = false;
  f.client->request(kServer, get("/separate"), {}, [&](const ClientEvent& ev) {
    result = ev;
    if (ev.response) resp = *ev.response;
    done = true;
  });
  f.net->run(seconds(5));
  ASSERT_TRUE(pending);
  EXPECT_FALSE(done);
  ASSERT_EQ(f.net->sent(kServer).size(), 1u);
  EXPECT_EQ(f.net->sent(kServer)[0].size(), 4u);  // empty ACK
  Message later(Type::kCon, code::kContent);
  later.set_payload("late");
  f.server->respond_later(*pending, later);
  f.net->run(seconds(5));
  ASSERT_TRUE(done);
  EXPECT_EQ(resp.type, Type::kCon);
  EXPECT_EQ(as_string(resp.payload), "late");
  // client ACKed the CON response, so no retransmission from the server
  EXPECT_EQ(f.server_ep->stats().retransmissions, 0u);
}

TEST(CoapEndpoint, NonRequestNonResponse) {
  Fixture f;
  RequestOptions o;
  o.confirmable = false;
  Message resp;
  auto ev = f.run_request(get("/test"), o, &resp);
  EXPECT_EQ(ev.status, ClientStatus::kResponse);
  EXPECT_EQ(resp.type, Type::kNon);
}

TEST(CoapEndpoint, NstartQueues) {
  Fixture f;
  int done = 0;
  for (int i = 0; i < 3; ++i) f.client->request(kServer, get("/test"), {}, [&](const ClientEvent&) { ++done; });
  EXPECT_EQ(f.client->transmits().size(), 1u);  // NSTART = 1
  f.net->run(seconds(5));
  EXPECT_EQ(done, 3);
}

// send_encoded: the bytes go out unchanged but for a fresh message ID, as a CON
// that is retransmitted, ACKed and queued behind NSTART like send(); a NON-typed
// datagram goes as NON; a datagram that is not CoAP is reported, not sent.
TEST(CoapEndpoint, SendEncoded) {
  EndpointConfig cc;
  cc.ack_random_factor = 1.0;
  Fixture f(7, {}, cc);
  Message m = get("/test");  // the server answers it piggybacked: the CON is ACKed
  m.message_id = 0xaaaa;
  m.token = {9, 8, 7};
  m.set_payload("payload");
  const Bytes enc = *m.encode();
  std::vector<SendStatus> st;
  f.net->drop_next(kClient, 1);
  const uint16_t mid1 = f.client->send_encoded(kServer, enc, [&](SendStatus s) { st.push_back(s); });
  const uint16_t mid2 = f.client->send_encoded(kServer, enc, [&](SendStatus s) { st.push_back(s); });
  EXPECT_NE(mid1, mid2);
  ASSERT_EQ(f.client->transmits().size(), 1u);  // NSTART = 1: the second waits
  Bytes want = enc;
  want[2] = static_cast<uint8_t>(mid1 >> 8);
  want[3] = static_cast<uint8_t>(mid1);
  EXPECT_EQ(f.client->transmits()[0].data, want);
  f.net->run(seconds(10));
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0], SendStatus::kAcked);
  EXPECT_EQ(st[1], SendStatus::kAcked);
  EXPECT_EQ(f.client->stats().retransmissions, 1u);  // the dropped first copy
  ASSERT_EQ(f.net->sent(kClient).size(), 3u);
  EXPECT_EQ(f.net->sent(kClient)[0], want);
  EXPECT_EQ(f.net->sent(kClient)[1], want);  // the retransmission: same bytes, same MID

  Bytes non = enc;
  non[0] = static_cast<uint8_t>((non[0] & 0xcf) | (static_cast<uint8_t>(Type::kNon) << 4));
  f.client->clear_transmits();
  const uint16_t mid3 = f.client->send_encoded(kServer, non);
  ASSERT_EQ(f.client->transmits().size(), 1u);
  auto v = MessageView::parse(f.client->transmits()[0].data);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, Type::kNon);
  EXPECT_EQ(v->message_id, mid3);

  f.client->clear_transmits();
  int bad = 0;
  f.client->send_encoded(kServer, Bytes{0x40, 0x01}, [&](SendStatus s) { bad += s == SendStatus::kTimeout; });
  f.client->send_encoded(kServer, Bytes{0x80, 0x01, 0, 0}, [&](SendStatus s) { bad += s == SendStatus::kTimeout; });
  EXPECT_EQ(bad, 2);
  EXPECT_EQ(f.client->transmits().size(), 0u);
}

TEST(CoapEndpoint, UnexpectedResponseGetsRst) {
  Fixture f;
  Message resp(Type::kCon, code::kContent, 0x4444);
  resp.token = {9, 9};
  f.net->inject(kServer, kClient, *resp.encode());
  f.net->run(seconds(1));
  ASSERT_EQ(f.net->sent(kClient).size(), 1u);
  EXPECT_EQ(to_hex(f.net->sent(kClient)[0]), "70004444");
}

TEST(CoapServer, AutomaticErrors) {
  Fixture f;
  Resource& r = f.server->add("/fmt");
  r.accepted_formats = {cp::cf::kCbor};
  r.produced_formats = {cp::cf::kTextPlain};
  r.on(code::kPost, [](Request&, Message& resp) { resp.code = code::kChanged; });
  Message resp;
  f.run_request(get("/nothing"), {}, &resp);
  EXPECT_EQ(resp.code, code::kNotFound);
  EXPECT_EQ(as_string(resp.payload), "Not Found");
  Message del = get("/test");
  del.code = code::kDelete;
  f.run_request(del, {}, &resp);
  EXPECT_EQ(resp.code, code::kMethodNotAllowed);
  Message post(Type::kCon, code::kPost);
  post.set_uri_path("/fmt");
  post.set_uint(option::kContentFormat, cp::cf::kJson);
  post.set_payload("{}");
  f.run_request(post, {}, &resp);
  EXPECT_EQ(resp.code, code::kUnsupportedContentFormat);
  post.set_uint(option::kContentFormat, cp::cf::kCbor);
  post.set_uint(option::kAccept, cp::cf::kJson);
  f.run_request(post, {}, &resp);
  EXPECT_EQ(resp.code, code::kNotAcceptable);
  post.set_uint(option::kAccept, cp::cf::kTextPlain);
  f.run_request(post, {}, &resp);
  EXPECT_EQ(resp.code, code::kChanged);
}

TEST(CoapServer, WellKnownCore) {
  Fixture f;
  Resource& r = f.server->add("/obs");
  r.observable = true;
  r.attrs.rt = "observe";
  r.attrs.ct = {0};
  r.on(code::kGet, [](Request&, Message& resp) { resp.code = code::kContent; });
  f.server->add("/hidden").hidden = true;
  Message resp;
  f.run_request(get("/.well-known/core"), {}, &resp);
  EXPECT_EQ(resp.code, code::kContent);
  EXPECT_EQ(resp.get_uint(option::kContentFormat), cp::cf::kLinkFormat);
  EXPECT_EQ(as_string(resp.payload), "</obs>;rt=\"observe\";ct=0;obs,</test>");
  Message q = get("/.well-known/core");
  q.add_uri_query("rt=obs*");
  f.run_request(q, {}, &resp);
  EXPECT_EQ(as_string(resp.payload), "</obs>;rt=\"observe\";ct=0;obs");
}

std::string big_text(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += "line " + std::to_string(i) + "\n";
  s.resize(n);
  return s;
}

TEST(CoapServer, Block2Download) {
  ServerConfig sc;
  sc.block_size = 64;
  Fixture f(7, {}, {}, {}, sc);
  std::string body = big_text(1000);
  f.server->add("/large").on(code::kGet, [&](Request&, Message& resp) {
    resp.code = code::kContent;
    resp.set_payload(body);
  });
  Message resp;
  auto ev = f.run_request(get("/large"), {}, &resp);
  EXPECT_EQ(ev.status, ClientStatus::kResponse);
  EXPECT_EQ(as_string(resp.payload), body);
  EXPECT_EQ(f.net->sent(kClient).size(), 16u);  // ceil(1000 / 64)
  // early negotiation of a smaller size by the client
  RequestOptions o;
  o.block2_size = 32;
  f.run_request(get("/large"), o, &resp);
  EXPECT_EQ(as_string(resp.payload), body);
  EXPECT_EQ(f.net->sent(kClient).size(), 16u + 32u);
}

TEST(CoapServer, Block2OutOfRange) {
  Fixture f;
  Message req = get("/test");
  req.message_id = 1;
  req.add_uint(option::kBlock2, BlockValue{5, false, 0}.encode());
  f.server_ep->receive(*req.encode(), kClient, f.clock.now());
  ASSERT_EQ(f.server_ep->transmits().size(), 1u);
  EXPECT_EQ(MessageView::parse(f.server_ep->transmits()[0].data)->code, code::kBadOption);
}

TEST(CoapServer, Block1Upload) {
  ServerConfig sc;
  sc.max_body_size = 4000;
  Fixture f(7, {}, {}, {}, sc);
  Bytes got;
  f.server->add("/large-create").on(code::kPost, [&](Request& req, Message& resp) {
    got = to_bytes(req.payload);
    resp.code = code::kCreated;
    resp.set_location_path("/large-create/1");
  });
  std::string body = big_text(3000);
  Message post(Type::kCon, code::kPost);
  post.set_uri_path("/large-create");
  post.set_payload(body);
  RequestOptions o;
  o.block1_size = 256;
  Message resp;
  auto ev = f.run_request(post, o, &resp);
  EXPECT_EQ(ev.status, ClientStatus::kResponse);
  EXPECT_EQ(resp.code, code::kCreated);
  EXPECT_EQ(as_string(got), body);
  EXPECT_EQ(resp.location_path(), "/large-create/1");
  auto b1 = BlockValue::decode(resp.find(option::kBlock1)->value);
  EXPECT_EQ(b1->num, 11u);
  EXPECT_FALSE(b1->more);
  // too large: 4.13 with Size1
  post.set_payload(big_text(5000));
  ev = f.run_request(post, o, &resp);
  EXPECT_EQ(resp.code, code::kRequestEntityTooLarge);
  EXPECT_EQ(resp.get_uint(option::kSize1), 4000u);
}

TEST(CoapServer, Block1OutOfOrderIs408) {
  Fixture f;
  f.server->add("/up").on(code::kPut, [](Request&, Message& resp) { resp.code = code::kChanged; });
  Message put(Type::kCon, code::kPut);
  put.set_uri_path("/up");
  put.add_uint(option::kBlock1, BlockValue{3, true, 0}.encode());
  put.payload = Bytes(16, 'x');
  put.message_id = 1;
  f.server_ep->receive(*put.encode(), kClient, f.clock.now());
  ASSERT_EQ(f.server_ep->transmits().size(), 1u);
  EXPECT_EQ(MessageView::parse(f.server_ep->transmits()[0].data)->code, code::kRequestEntityIncomplete);
}

TEST(CoapServer, ObserveNotifyAndDeregister) {
  Fixture f;
  int value = 0;
  Resource& r = f.server->add("/obs");
  r.observable = true;
  r.on(code::kGet, [&](Request&, Message& resp) {
    resp.code = code::kContent;
    resp.set_payload(std::to_string(value));
  });
  std::vector<std::string> seen;
  std::vector<uint32_t> seqs;
  RequestOptions o;
  o.observe = true;
  uint64_t id = f.client->request(kServer, get("/obs"), o, [&](const ClientEvent& ev) {
    if (ev.response) seen.push_back(std::string(as_string(ev.response->payload)));
    if (ev.observe) seqs.push_back(*ev.observe);
  });
  f.net->run(seconds(1));
  EXPECT_EQ(f.server->num_observers("/obs"), 1u);
  for (int i = 1; i <= 3; ++i) {
    value = i;
    f.server->notify("/obs");
    f.net->run(seconds(1));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"0", "1", "2", "3"}));
  ASSERT_EQ(seqs.size(), 4u);
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
  f.client->cancel(id, /*deregister=*/true);
  f.net->run(seconds(1));
  EXPECT_EQ(f.server->num_observers("/obs"), 0u);
  // the deregistration's response is consumed, not answered with RST
  auto& out = f.net->sent(kClient);
  auto last = MessageView::parse(out.back());
  ASSERT_TRUE(last);
  EXPECT_EQ(last->get_uint(option::kObserve), 1u);
  EXPECT_EQ(f.client->num_exchanges(), 0u);
}

TEST(CoapServer, ObserveRstRemovesObserver) {
  Fixture f;
  Resource& r = f.server->add("/obs");
  r.observable = true;
  r.on(code::kGet, [&](Request&, Message& resp) { resp.code = code::kContent; });
  RequestOptions o;
  o.observe = true;
  uint64_t id = f.client->request(kServer, get("/obs"), o, [](const ClientEvent&) {});
  f.net->run(seconds(1));
  EXPECT_EQ(f.server->num_observers("/obs"), 1u);
  f.client->cancel(id, /*deregister=*/false);  // forget: next notification gets RST
  f.server->notify("/obs");
  f.net->run(seconds(1));
  EXPECT_EQ(f.server->num_observers("/obs"), 0u);
}

TEST(CoapServer, ObserveClientDropsReordered) {
  Fixture f;
  Resource& r = f.server->add("/obs");
  r.observable = true;
  r.on(code::kGet, [&](Request&, Message& resp) { resp.code = code::kContent; });
  std::vector<uint32_t> seqs;
  Bytes token;
  RequestOptions o;
  o.observe = true;
  o.confirmable = false;
  f.client->request(kServer, get("/obs"), o, [&](const ClientEvent& ev) {
    if (ev.observe) seqs.push_back(*ev.observe);
  });
  token = MessageView::parse(f.client->transmits()[0].data)->token.size() ? to_bytes(MessageView::parse(f.client->transmits()[0].data)->token) : Bytes{};
  f.net->run(seconds(1));
  auto notif = [&](uint32_t seq, uint16_t mid) {
    Message n(Type::kNon, code::kContent, mid);
    n.token = token;
    n.add_uint(option::kObserve, seq);
    f.net->inject(kServer, kClient, *n.encode());
    f.net->run(milliseconds(10));
  };
  notif(10, 100);
  notif(9, 101);   // older: dropped
  notif(11, 102);
  f.clock.advance(seconds(200));
  notif(5, 103);   // older number but > 128 s later: accepted
  EXPECT_EQ(seqs, (std::vector<uint32_t>{2, 10, 11, 5}));
}

TEST(CoapServer, ConNotificationInterval) {
  ServerConfig sc;
  sc.con_notification_interval = seconds(10);
  Fixture f(7, {}, {}, {}, sc);
  Resource& r = f.server->add("/obs");
  r.observable = true;
  r.on(code::kGet, [&](Request&, Message& resp) { resp.code = code::kContent; });
  RequestOptions o;
  o.observe = true;
  f.client->request(kServer, get("/obs"), o, [](const ClientEvent&) {});
  f.net->run(seconds(1));
  size_t before = f.net->sent(kServer).size();
  f.server->notify("/obs");  // NON
  f.net->run(seconds(1));
  f.clock.advance(seconds(11));
  f.server->notify("/obs");  // CON (interval passed)
  f.net->run(seconds(1));
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), before + 2);
  EXPECT_EQ(MessageView::parse(out[before])->type, Type::kNon);
  EXPECT_EQ(MessageView::parse(out[before + 1])->type, Type::kCon);
}

TEST(CoapServer, MulticastLeisureAndSuppression) {
  EndpointConfig sc;
  sc.leisure = seconds(2);
  Fixture f(7, {}, {}, sc);
  Address group = *Address::parse("224.0.1.187:5683");
  Message req = get("/test");
  req.type = Type::kNon;
  req.message_id = 77;
  req.token = {5};
  f.net->inject(kClient, kServer, *req.encode());
  // the simulator delivers to the server as unicast; emulate multicast delivery directly
  f.server_ep->receive(*req.encode(), kClient, f.clock.now(), /*multicast=*/true);
  EXPECT_EQ(f.server_ep->transmits().size(), 0u);  // delayed
  auto dl = f.server_ep->next_deadline();
  ASSERT_TRUE(dl);
  EXPECT_LE(*dl - f.clock.now(), seconds(2));
  Message nf = get("/nothing");
  nf.type = Type::kNon;
  nf.message_id = 78;
  f.server_ep->receive(*nf.encode(), kClient, f.clock.now(), true);
  f.clock.advance(seconds(3));
  f.server_ep->handle_timeout(f.clock.now());
  ASSERT_EQ(f.server_ep->transmits().size(), 1u);  // 4.04 suppressed
  EXPECT_EQ(MessageView::parse(f.server_ep->transmits()[0].data)->code, code::kContent);
  // CON to multicast is ignored
  f.server_ep->clear_transmits();
  Message con = get("/test");
  con.message_id = 79;
  f.server_ep->receive(*con.encode(), kClient, f.clock.now(), true);
  EXPECT_FALSE(f.server_ep->next_deadline());
  (void)group;
}

TEST(CoapServer, NoResponseOption) {
  Fixture f;
  Message req = get("/test");
  req.type = Type::kNon;
  req.message_id = 5;
  req.add_uint(option::kNoResponse, 2);  // suppress 2.xx
  f.server_ep->receive(*req.encode(), kClient, f.clock.now());
  EXPECT_EQ(f.server_ep->transmits().size(), 0u);
  EXPECT_EQ(f.handler_calls, 1);
}

// Many requests over a lossy, duplicating, reordering network: every request
// completes with the right answer and duplicates never re-run a handler.
TEST(CoapSimulation, LossyNetwork) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    sim::LinkParams lp;
    lp.loss = 0.2;
    lp.duplicate = 0.2;
    lp.min_delay = milliseconds(1);
    lp.max_delay = milliseconds(400);
    EndpointConfig cc;
    cc.nstart = 8;
    cc.max_retransmit = 8;
    // EXCHANGE_LIFETIME must cover MAX_TRANSMIT_SPAN for these parameters (RFC 7252 §4.8.2)
    EndpointConfig sc;
    sc.exchange_lifetime = seconds(2000);
    Fixture f(seed, lp, cc, sc);
    int counter = 0;
    f.server->add("/count").on(code::kPost, [&](Request& req, Message& resp) {
      ++counter;
      resp.code = code::kChanged;
      resp.payload = to_bytes(req.payload);
    });
    int ok = 0, failed = 0;
    const int n = 100;
    for (int i = 0; i < n; ++i) {
      Message m(Type::kCon, code::kPost);
      m.set_uri_path("/count");
      m.set_payload(std::to_string(i));
      f.client->request(kServer, m, {}, [&, i](const ClientEvent& ev) {
        if (ev.status == ClientStatus::kResponse && as_string(ev.response->payload) == std::to_string(i)) {
          ++ok;
        } else {
          ++failed;
        }
      });
    }
    f.net->run(seconds(2000));
    EXPECT_EQ(ok, n) << "seed " << seed;
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(counter, n) << "seed " << seed;  // at-most-once execution thanks to dedup
    EXPECT_GT(f.net->dropped(), 0u);
    EXPECT_EQ(f.client->num_exchanges(), 0u);
  }
}

TEST(CoapSimulation, DedupCacheBounded) {
  EndpointConfig sc;
  sc.dedup_capacity = 16;
  Fixture f(7, {}, {}, sc);
  for (int i = 0; i < 100; ++i) {
    Message m = get("/test");
    m.message_id = static_cast<uint16_t>(i);
    f.server_ep->receive(*m.encode(), kClient, f.clock.now());
  }
  EXPECT_EQ(f.handler_calls, 100);
  // the newest 16 are still remembered, the oldest are not
  Message m = get("/test");
  m.message_id = 99;
  f.server_ep->receive(*m.encode(), kClient, f.clock.now());
  EXPECT_EQ(f.handler_calls, 100);
  m.message_id = 0;
  f.server_ep->receive(*m.encode(), kClient, f.clock.now());
  EXPECT_EQ(f.handler_calls, 101);
}

}  // namespace
}  // namespace acekdc::coap

namespace acekdc::coap {
namespace {

// Per-exchange state stays bounded: a large reply to a GET is not kept (the
// duplicate is processed again), a large reply to a POST is kept (at most once).
TEST(CoapSimulation, LargeRepliesNotCachedForIdempotent) {
  Fixture f;
  int gets = 0, posts = 0;
  auto& r = f.server->add("/big");
  r.on(code::kGet, [&](Request&, Message& resp) {
    ++gets;
    resp.code = code::kContent;
    resp.payload.assign(1000, 'g');
  });
  r.on(code::kPost, [&](Request&, Message& resp) {
    ++posts;
    resp.code = code::kChanged;
    resp.payload.assign(1000, 'p');
  });
  for (uint8_t method : {code::kGet, code::kPost}) {
    Message m(Type::kCon, method, method);
    m.set_uri_path("/big");
    auto enc = *m.encode();
    f.server_ep->receive(enc, kClient, f.clock.now());
    f.server_ep->receive(enc, kClient, f.clock.now());
    ASSERT_EQ(f.server_ep->transmits().size(), 2u);
    EXPECT_EQ(f.server_ep->transmits()[0].data, f.server_ep->transmits()[1].data);
    f.server_ep->clear_transmits();
  }
  EXPECT_EQ(gets, 2);
  EXPECT_EQ(posts, 1);
}

}  // namespace
}  // namespace acekdc::coap

namespace acekdc::coap {
namespace {

// RFC 7959 §3.1 Figure 2 (simple blockwise GET): 2.05 0/1/128, 1/1/128, 2/0/128.
TEST(CoapRfc7959, Figure2SimpleBlockwiseGet) {
  ServerConfig sc;
  sc.block_size = 128;
  Fixture f(7, {}, {}, {}, sc);
  f.server->add("/status").on(code::kGet, [](Request&, Message& resp) {
    resp.code = code::kContent;
    resp.payload.assign(300, 's');
  });
  Message resp;
  f.run_request(get("/status"), {}, &resp);
  EXPECT_EQ(resp.payload.size(), 300u);
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 3u);
  const char* want[] = {"0/1/128", "1/1/128", "2/0/128"};
  for (size_t i = 0; i < 3; ++i) {
    auto v = MessageView::parse(out[i]);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->code, code::kContent);
    auto b = BlockValue::decode(v->find(option::kBlock2)->value);
    std::string got = std::to_string(b->num) + (b->more ? "/1/" : "/0/") + std::to_string(b->size());
    EXPECT_EQ(got, want[i]);
    EXPECT_EQ(v->payload.size(), i < 2 ? 128u : 44u);
    EXPECT_EQ(v->has(option::kSize2), i == 0);
  }
  // the client asked for blocks 1 and 2 explicitly
  auto& req = f.net->sent(kClient);
  ASSERT_EQ(req.size(), 3u);
  EXPECT_FALSE(MessageView::parse(req[0])->has(option::kBlock2));
  EXPECT_EQ(BlockValue::decode(MessageView::parse(req[2])->find(option::kBlock2)->value)->num, 2u);
}

// RFC 7959 §3.2 Figure 6 (simple atomic blockwise PUT): 2.31 0/1/128, 2.31 1/1/128, 2.04 2/0/128.
TEST(CoapRfc7959, Figure6AtomicBlockwisePut) {
  Fixture f;
  Bytes stored;
  f.server->add("/options").on(code::kPut, [&](Request& req, Message& resp) {
    stored = to_bytes(req.payload);
    resp.code = code::kChanged;
  });
  Message put(Type::kCon, code::kPut);
  put.set_uri_path("/options");
  put.payload.assign(300, 'o');
  RequestOptions o;
  o.block1_size = 128;
  Message resp;
  f.run_request(put, o, &resp);
  EXPECT_EQ(stored.size(), 300u);
  auto& out = f.net->sent(kServer);
  ASSERT_EQ(out.size(), 3u);
  uint8_t codes[] = {code::kContinue, code::kContinue, code::kChanged};
  const char* want[] = {"0/1/128", "1/1/128", "2/0/128"};
  for (size_t i = 0; i < 3; ++i) {
    auto v = MessageView::parse(out[i]);
    EXPECT_EQ(v->code, codes[i]);
    auto b = BlockValue::decode(v->find(option::kBlock1)->value);
    EXPECT_EQ(std::to_string(b->num) + (b->more ? "/1/" : "/0/") + std::to_string(b->size()), want[i]);
  }
}

}  // namespace
}  // namespace acekdc::coap

namespace acekdc::coap {
namespace {

TEST(CoapEndpoint, ResponseWithUnknownCriticalOptionRejected) {
  Fixture f;
  f.server->add("/weird").on(code::kGet, [](Request&, Message& resp) {
    resp.code = code::kContent;
    resp.add_option(2049, as_bytes("?"));
  });
  auto ev = f.run_request(get("/weird"));
  EXPECT_EQ(ev.status, ClientStatus::kBadResponse);
  // separate CON response with the same problem is answered with RST
  std::optional<DeferredResponse> d;
  f.server->add("/weird-sep").on(code::kGet, [&](Request& req, Message&) { d = req.defer(); });
  ClientEvent got;
  f.client->request(kServer, get("/weird-sep"), {}, [&](const ClientEvent& e) { got = e; });
  f.net->run(seconds(1));
  ASSERT_TRUE(d);
  Message later(Type::kCon, code::kContent);
  later.add_option(2049, as_bytes("?"));
  f.server->respond_later(*d, later);
  f.net->run(seconds(1));
  EXPECT_EQ(got.status, ClientStatus::kBadResponse);
  EXPECT_EQ(MessageView::parse(f.net->sent(kClient).back())->type, Type::kRst);
}

}  // namespace
}  // namespace acekdc::coap

namespace acekdc::coap {
namespace {

// Notifications larger than a block: the first block comes as the notification,
// the client fetches the rest (RFC 7959 §3.4) and delivers whole bodies.
TEST(CoapServer, ObserveWithBlock2) {
  ServerConfig sc;
  sc.block_size = 128;
  Fixture f(7, {}, {}, {}, sc);
  char fill = 'a';
  Resource& r = f.server->add("/big-obs");
  r.observable = true;
  r.on(code::kGet, [&](Request&, Message& resp) {
    resp.code = code::kContent;
    resp.payload.assign(300, static_cast<uint8_t>(fill));
  });
  std::vector<std::string> bodies;
  RequestOptions o;
  o.observe = true;
  f.client->request(kServer, get("/big-obs"), o, [&](const ClientEvent& ev) {
    if (ev.response) bodies.emplace_back(as_string(ev.response->payload));
  });
  f.net->run(seconds(1));
  fill = 'b';
  f.server->notify("/big-obs");
  f.net->run(seconds(1));
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], std::string(300, 'a'));
  EXPECT_EQ(bodies[1], std::string(300, 'b'));
  EXPECT_EQ(f.server->num_observers("/big-obs"), 1u);
}

}  // namespace
}  // namespace acekdc::coap

namespace acekdc::coap {
namespace {

// A NON request to a group reaches two servers; both answer after a Leisure
// delay, the client collects both responses with their senders, then kGroupDone.
TEST(CoapSimulation, GroupRequestCollectsResponses) {
  FakeClock clock;
  FakeRandom r1(1), r2(2), r3(3);
  EndpointConfig scfg;
  scfg.leisure = seconds(1);
  Endpoint client(clock, r1), s1(clock, r2, scfg), s2(clock, r3, scfg);
  Server srv1(s1), srv2(s2);
  srv1.add("/id").on(code::kGet, [](Request&, Message& m) { m.code = code::kContent; m.set_payload("one"); });
  srv2.add("/id").on(code::kGet, [](Request&, Message& m) { m.code = code::kContent; m.set_payload("two"); });
  Address a1 = Address::ipv4(10, 0, 0, 11, 5683), a2 = Address::ipv4(10, 0, 0, 12, 5683);
  sim::Network net(clock, 9);
  net.attach(kClient, client);
  net.attach(a1, s1);
  net.attach(a2, s2);
  Address group = *Address::parse("224.0.1.187:5683");
  std::map<std::string, std::string> got;
  bool done = false;
  RequestOptions o;
  o.timeout = seconds(3);
  client.request(group, get("/id"), o, [&](const ClientEvent& ev) {
    if (ev.status == ClientStatus::kResponse) got[ev.from->to_string()] = std::string(as_string(ev.response->payload));
    if (ev.status == ClientStatus::kGroupDone) done = true;
  });
  EXPECT_EQ(MessageView::parse(client.transmits()[0].data)->type, Type::kNon);
  net.run(seconds(10));
  EXPECT_TRUE(done);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got[a1.to_string()], "one");
  EXPECT_EQ(got[a2.to_string()], "two");
  // a 4.04 to a group request is suppressed by every server
  got.clear();
  done = false;
  client.request(group, get("/nothing"), o, [&](const ClientEvent& ev) {
    if (ev.status == ClientStatus::kResponse) got[ev.from->to_string()] = "x";
    if (ev.status == ClientStatus::kGroupDone) done = true;
  });
  net.run(seconds(10));
  EXPECT_TRUE(done);
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace acekdc::coap
