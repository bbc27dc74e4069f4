// Message protection (RFC 8613 §8) against Appendix C.4-C.8 byte for byte, plus
// limits, replay, Observe and error responses.
#include <gtest/gtest.h>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/context.h"
#include "oscore/recording_provider_test.h"
#include "oscore/rfc_vectors_test.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

// ContextConfig for one side of RFC 8613 Appendix C.1/C.2/C.3.
ContextConfig rfc_config(const char* section, uint64_t initial_seq) {
  auto v = test::rfc8613_section(section);
  ContextConfig c;
  c.params.master_secret = v["Master Secret"];
  if (v.count("Master Salt")) c.params.master_salt = v["Master Salt"];
  c.params.sender_id = v["Sender ID"];
  c.params.recipient_id = v["Recipient ID"];
  if (v.count("ID Context")) c.params.id_context = v["ID Context"];
  c.initial_seq = initial_seq;
  return c;
}

class Protect : public ::testing::Test {
 protected:
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  std::unique_ptr<Context> make(const char* section, uint64_t seq, bool kid_context = false) {
    auto cfg = rfc_config(section, seq);
    cfg.send_kid_context = kid_context;
    auto c = Context::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return c ? std::move(*c) : nullptr;
  }
};

struct RequestCase {
  const char* vector;   // C.4 / C.5 / C.6
  const char* client;   // derivation section of the client
  const char* server;
  bool kid_context;
};

class ProtectRequest : public Protect, public ::testing::WithParamInterface<RequestCase> {};

TEST_P(ProtectRequest, MatchesAppendixCAndRoundTrips) {
  const auto& tc = GetParam();
  auto v = test::rfc8613_section(tc.vector);
  const Bytes& plain = v["Unprotected CoAP request"];
  const Bytes& wire = v["Protected CoAP request (OSCORE message)"];
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(wire.empty());

  auto client = make(tc.client, 20, tc.kid_context);
  auto req = coap::MessageView::parse(plain);
  ASSERT_TRUE(req);
  uint8_t out[256];
  Exchange ex;
  auto n = client->protect_request(*req, out, ex);
  ASSERT_TRUE(n) << to_string(n.error());
  EXPECT_EQ(to_hex(ByteView(out, *n)), to_hex(wire));
  EXPECT_EQ(client->count_q(), 1u);
  EXPECT_EQ(client->next_sequence_number(), 21u);
  EXPECT_EQ(to_hex(ex.request_piv()), "14");

  // The owning Message form protects to the same bytes (sequence 20 again).
  auto client2 = make(tc.client, 20, tc.kid_context);
  auto msg = coap::Message::parse(plain);
  ASSERT_TRUE(msg);
  Exchange ex2;
  auto n2 = client2->protect_request(*msg, out, ex2);
  ASSERT_TRUE(n2);
  EXPECT_EQ(to_hex(ByteView(out, *n2)), to_hex(wire));

  // The server recovers the original request exactly.
  auto server = make(tc.server, 0);
  uint8_t dec[256];
  Exchange sx;
  auto d = server->unprotect_request(wire, dec, sx);
  ASSERT_TRUE(d) << to_string(d.error());
  EXPECT_EQ(to_hex(ByteView(dec, *d)), to_hex(plain));
  EXPECT_EQ(to_hex(sx.request_piv()), "14");
  // A second copy is a replay and is not counted as a forgery.
  auto again = server->unprotect_request(wire, dec, sx);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Error::kReplay);
  EXPECT_EQ(server->count_v(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AppendixC, ProtectRequest,
                         ::testing::Values(RequestCase{"C.4.", "C.1.1.", "C.1.2.", false},
                                           RequestCase{"C.5.", "C.2.1.", "C.2.2.", false},
                                           RequestCase{"C.6.", "C.3.1.", "C.3.2.", true}));

// C.7 (no Partial IV) and C.8 (Partial IV 0): responses to the C.4 request.
TEST_F(Protect, ResponsesC7AndC8) {
  auto c4 = test::rfc8613_section("C.4.");
  for (const char* sec : {"C.7.", "C.8."}) {
    const bool with_piv = std::string(sec) == "C.8.";
    auto v = test::rfc8613_section(sec);
    const Bytes& plain = v["Unprotected CoAP response"];
    const Bytes& wire = v["Protected CoAP response (OSCORE message)"];
    ASSERT_FALSE(plain.empty());

    auto server = make("C.1.2.", 0);
    uint8_t buf[256];
    Exchange sx;
    ASSERT_TRUE(server->unprotect_request(c4["Protected CoAP request (OSCORE message)"], buf, sx));
    auto resp = coap::MessageView::parse(plain);
    ASSERT_TRUE(resp);
    ProtectOptions po;
    po.partial_iv = with_piv;
    auto n = server->protect_response(*resp, sx, buf, po);
    ASSERT_TRUE(n) << to_string(n.error());
    EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(wire)) << sec;

    // The client (C.4 state: request kid '' and Partial IV 0x14) recovers the response.
    auto client = make("C.1.1.", 20);
    Exchange cx;
    ASSERT_TRUE(client->protect_request(*coap::MessageView::parse(c4["Unprotected CoAP request"]), buf, cx));
    uint8_t dec[256];
    auto d = client->unprotect_response(wire, cx, dec);
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_EQ(to_hex(ByteView(dec, *d)), to_hex(plain)) << sec;
    // Only one response to a non-Observe request.
    EXPECT_EQ(client->unprotect_response(wire, cx, dec).error(), Error::kReplay);
  }
}

TEST_F(Protect, RequestNonceIsNeverReusedForASecondResponse) {
  auto client = make("C.1.1.", 0);
  auto server = make("C.1.2.", 0);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  req.set_uri_path("/a");
  uint8_t wire[256], dec[256];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  ASSERT_TRUE(server->unprotect_request(ByteView(wire, *n), dec, sx));
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
  uint8_t r1[128], r2[128];
  auto a = server->protect_response(resp, sx, r1);
  auto b = server->protect_response(resp, sx, r2);  // falls back to a fresh Partial IV
  ASSERT_TRUE(a && b);
  auto oa = peek_option(ByteView(r1, *a));
  auto ob = peek_option(ByteView(r2, *b));
  ASSERT_TRUE(oa && ob);
  EXPECT_TRUE(oa->partial_iv.empty());
  EXPECT_FALSE(ob->partial_iv.empty());
}

TEST_F(Protect, ObserveNotifications) {
  auto client = make("C.1.1.", 0);
  auto server = make("C.1.2.", 0);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 7);
  req.token = {1, 2};
  req.set_uri_path("/obs");
  req.add_uint(cp::coap::option::kObserve, 0);
  uint8_t wire[256], dec[256];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  auto outer = coap::MessageView::parse(ByteView(wire, *n));
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer->code, cp::coap::code::kFetch);  // §4.1.3.5
  EXPECT_TRUE(outer->has(cp::coap::option::kObserve));
  auto d = server->unprotect_request(ByteView(wire, *n), dec, sx);
  ASSERT_TRUE(d);
  EXPECT_TRUE(sx.observe);
  auto got = coap::Message::parse(ByteView(dec, *d));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, cp::coap::code::kGet);
  EXPECT_EQ(got->get_uint(cp::coap::option::kObserve), 0u);

  std::vector<Bytes> notes;
  for (uint32_t i = 0; i < 3; ++i) {
    coap::Message note(coap::Type::kNon, cp::coap::code::kContent, static_cast<uint16_t>(100 + i));
    note.token = {1, 2};
    note.add_uint(cp::coap::option::kObserve, 5 + i);
    note.set_payload("v" + std::to_string(i));
    uint8_t out[128];
    ProtectOptions po;
    po.partial_iv = i > 0;  // the first notification may reuse the request nonce
    auto m = server->protect_response(note, sx, out, po);
    ASSERT_TRUE(m);
    auto o = coap::MessageView::parse(ByteView(out, *m));
    EXPECT_EQ(o->code, cp::coap::code::kContent);
    notes.emplace_back(out, out + *m);
  }
  // Delivered out of order: 2 first, then 1 (stale), then 0 (no Partial IV, first use).
  auto r = client->unprotect_response(notes[2], cx, dec);
  ASSERT_TRUE(r) << to_string(r.error());
  auto m2 = coap::Message::parse(ByteView(dec, *r));
  // Notification 0 reused the request nonce, 1 got Partial IV 0, 2 got Partial IV 1:
  // the decrypted Observe is the low 3 bytes of the Partial IV.
  EXPECT_EQ(m2->get_uint(cp::coap::option::kObserve), 1u);
  EXPECT_EQ(as_string(m2->payload), "v2");
  EXPECT_EQ(client->unprotect_response(notes[1], cx, dec).error(), Error::kReplay);
  EXPECT_TRUE(client->unprotect_response(notes[0], cx, dec));
  EXPECT_EQ(client->unprotect_response(notes[0], cx, dec).error(), Error::kReplay);
  EXPECT_EQ(client->count_v(), 0u);
}

TEST_F(Protect, BlockAndMaxAgeAreInnerUriHostIsOuter) {
  auto client = make("C.1.1.", 0);
  auto server = make("C.1.2.", 0);
  coap::Message req(coap::Type::kCon, cp::coap::code::kPut, 3);
  req.add_string(cp::coap::option::kUriHost, "h");
  req.add_uint(cp::coap::option::kUriPort, 5684);
  req.set_uri_path("/fw");
  req.add_uint(cp::coap::option::kBlock1, coap::BlockValue{2, true, 2}.encode());
  req.add_uint(cp::coap::option::kSize1, 4096);
  req.payload.assign(64, 0x5a);
  uint8_t wire[256], dec[256];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  auto outer = coap::MessageView::parse(ByteView(wire, *n));
  ASSERT_TRUE(outer);
  std::vector<uint16_t> numbers;
  for (const auto& o : outer->options()) numbers.push_back(o.number);
  EXPECT_EQ(numbers, (std::vector<uint16_t>{3, 7, 9}));  // Block1/Size1/Uri-Path encrypted
  auto d = server->unprotect_request(ByteView(wire, *n), dec, sx);
  ASSERT_TRUE(d);
  auto got = coap::Message::parse(ByteView(dec, *d));
  ASSERT_TRUE(got);
  EXPECT_TRUE(*got == req);
}

TEST_F(Protect, ProxyUriIsDecomposed) {
  auto client = make("C.1.1.", 0);
  auto server = make("C.1.2.", 0);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 4);
  req.add_string(cp::coap::option::kProxyUri, "coap://example.com:5683/a%20b/c?x=1&y");
  req.add_uint(cp::coap::option::kAccept, 60);
  uint8_t wire[256], dec[256];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  auto outer = coap::Message::parse(ByteView(wire, *n));
  ASSERT_TRUE(outer);
  // Outer: OSCORE and Proxy-Uri reduced to scheme://authority (§4.1.3.3).
  ASSERT_EQ(outer->options().size(), 2u);
  EXPECT_EQ(outer->options()[0].number, cp::coap::option::kOscore);
  EXPECT_EQ(outer->find(cp::coap::option::kProxyUri)->str(), "coap://example.com:5683");
  auto d = server->unprotect_request(ByteView(wire, *n), dec, sx);
  ASSERT_TRUE(d) << to_string(d.error());
  auto got = coap::Message::parse(ByteView(dec, *d));
  ASSERT_TRUE(got);
  auto paths = got->all(cp::coap::option::kUriPath);
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(as_string(paths[0]), "a b");
  EXPECT_EQ(as_string(paths[1]), "c");
  auto queries = got->all(cp::coap::option::kUriQuery);
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(as_string(queries[0]), "x=1");
  EXPECT_EQ(as_string(queries[1]), "y");
  EXPECT_EQ(got->get_uint(cp::coap::option::kAccept), 60u);
  EXPECT_EQ(got->find(cp::coap::option::kProxyUri)->str(), "coap://example.com:5683");

  // A root path gives no Uri-Path.
  coap::Message root(coap::Type::kCon, cp::coap::code::kGet, 5);
  root.add_string(cp::coap::option::kProxyUri, "coaps://[2001:db8::1]/");
  n = client->protect_request(root, wire, cx);
  ASSERT_TRUE(n);
  d = server->unprotect_request(ByteView(wire, *n), dec, sx);
  ASSERT_TRUE(d);
  got = coap::Message::parse(ByteView(dec, *d));
  EXPECT_FALSE(got->has(cp::coap::option::kUriPath));
  EXPECT_EQ(got->find(cp::coap::option::kProxyUri)->str(), "coaps://[2001:db8::1]");

  for (const char* bad : {"example.com/a", "coap://", "coap://h/a%2", "coap://h/a%zz", "coap://h/#f"}) {
    coap::Message b(coap::Type::kCon, cp::coap::code::kGet, 6);
    b.add_string(cp::coap::option::kProxyUri, bad);
    EXPECT_EQ(client->protect_request(b, wire, cx).error(), Error::kInvalidArgument) << bad;
  }
  coap::Message mixed(coap::Type::kCon, cp::coap::code::kGet, 7);
  mixed.add_string(cp::coap::option::kProxyUri, "coap://h/a");
  mixed.set_uri_path("/b");
  EXPECT_EQ(client->protect_request(mixed, wire, cx).error(), Error::kInvalidArgument);
}

TEST_F(Protect, SenderLimitStopsTheKey) {
  auto cfg = rfc_config("C.1.1.", 0);
  cfg.limits = KeyLimits{3, 16, 256};
  auto client = Context::create(*provider_, std::move(cfg));
  ASSERT_TRUE(client);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t out[128];
  Exchange ex;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*client)->protect_request(req, out, ex));
  EXPECT_EQ((*client)->count_q(), 3u);
  for (int i = 0; i < 2; ++i) {
    auto r = (*client)->protect_request(req, out, ex);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Error::kSenderLimitReached);
  }
  EXPECT_FALSE((*client)->sender_usable());
  EXPECT_EQ((*client)->next_sequence_number(), 3u);  // no number spent on the dead key
}

TEST_F(Protect, RecipientLimitCountsOnlyFailedDecryptions) {
  auto client = make("C.1.1.", 0);
  auto cfg = rfc_config("C.1.2.", 0);
  cfg.limits = KeyLimits{1 << 20, 2, 256};
  auto server = std::move(*Context::create(*provider_, std::move(cfg)));
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t wire[128], dec[128];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  Bytes good(wire, wire + *n);
  ASSERT_TRUE(server->unprotect_request(good, dec, sx));
  EXPECT_EQ(server->unprotect_request(good, dec, sx).error(), Error::kReplay);
  EXPECT_EQ(server->count_v(), 0u);

  for (int i = 0; i < 2; ++i) {
    auto m = client->protect_request(req, wire, cx);
    ASSERT_TRUE(m);
    wire[*m - 1] ^= 1;  // corrupt the tag
    EXPECT_EQ(server->unprotect_request(ByteView(wire, *m), dec, sx).error(), Error::kDecryptionFailed);
  }
  EXPECT_EQ(server->count_v(), 2u);
  EXPECT_FALSE(server->recipient_usable());
  // Even a valid message is no longer decrypted with this Recipient Key.
  auto m = client->protect_request(req, wire, cx);
  ASSERT_TRUE(m);
  EXPECT_EQ(server->unprotect_request(ByteView(wire, *m), dec, sx).error(), Error::kRecipientLimitReached);
  EXPECT_EQ(server->count_v(), 2u);
}

TEST_F(Protect, RefusesWeakLimitsAndHonoursExp) {
  auto cfg = rfc_config("C.1.1.", 0);
  cfg.limits = KeyLimits{1 << 20, 1 << 20, 256};  // IA 2^-44 for AES-CCM-16-64-128
  EXPECT_EQ(Context::create(*provider_, cfg).error(), Error::kLimitsTooWeak);
  FakeClock clock(1000);
  cfg.limits.reset();
  cfg.exp = 1010;
  EXPECT_EQ(Context::create(*provider_, cfg).error(), Error::kInvalidArgument);  // exp without clock
  cfg.clock = &clock;
  auto c = Context::create(*provider_, cfg);
  ASSERT_TRUE(c);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t out[128];
  Exchange ex;
  EXPECT_TRUE((*c)->protect_request(req, out, ex));
  clock.advance(std::chrono::seconds(10));
  EXPECT_EQ((*c)->protect_request(req, out, ex).error(), Error::kContextExpired);
  uint8_t dec[128];
  EXPECT_EQ((*c)->unprotect_request(ByteView(out, 20), dec, ex).error(), Error::kContextExpired);
}

TEST_F(Protect, SequenceStorePersistsAcrossRestart) {
  MemorySequenceStore store;
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t out[128];
  Exchange ex;
  {
    auto cfg = rfc_config("C.1.1.", 0);
    cfg.store = &store;
    cfg.seq_chunk = 50;
    auto c = std::move(*Context::create(*provider_, cfg));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->protect_request(req, out, ex));
    EXPECT_EQ(*store.load(c->config().store_key), 50u);
  }
  auto cfg = rfc_config("C.1.1.", 0);
  cfg.store = &store;
  cfg.seq_chunk = 50;
  auto c = std::move(*Context::create(*provider_, cfg));
  EXPECT_EQ(c->next_sequence_number(), 50u);
  ASSERT_TRUE(c->protect_request(req, out, ex));
  EXPECT_EQ(to_hex(ex.request_piv()), "32");
  store.fail_after(0);
  cfg.store_key = "other";
  auto d = std::move(*Context::create(*provider_, cfg));
  EXPECT_EQ(d->protect_request(req, out, ex).error(), Error::kStorageFailure);
  EXPECT_EQ(d->count_q(), 0u);
}

// A store with a writer (SequenceStore::set_writer) makes the contexts created
// with it reserve ahead through that writer; a context's own seq_writer wins.
TEST_F(Protect, StoreWriterReservesAhead) {
  MemorySequenceStore store;
  ManualSequenceWriter store_writer, own_writer;
  FakeClock clock;
  store.set_writer(&store_writer, &clock);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t out[128];
  Exchange ex;
  auto cfg = rfc_config("C.1.1.", 0);
  cfg.store = &store;
  cfg.seq_chunk = 10;
  cfg.seq_max_wait = std::chrono::milliseconds(0);
  auto c = std::move(*Context::create(*provider_, cfg));
  // The first reservation is queued on the store's writer: nothing sent before it ran.
  EXPECT_EQ(c->protect_request(req, out, ex).error(), Error::kStorageFailure);
  EXPECT_EQ(store_writer.num_pending(), 1u);
  EXPECT_EQ(store_writer.run_all(), 1u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->protect_request(req, out, ex));
  // The low-water mark: the next chunk is queued, and sending goes on meanwhile.
  ASSERT_TRUE(c->protect_request(req, out, ex));
  EXPECT_EQ(store_writer.num_pending(), 1u);
  EXPECT_EQ(*store.load(c->config().store_key), 10u);
  store_writer.run_all();
  EXPECT_EQ(*store.load(c->config().store_key), 20u);

  cfg.store_key = "own";
  cfg.seq_writer = &own_writer;
  auto d = std::move(*Context::create(*provider_, cfg));
  EXPECT_FALSE(d->protect_request(req, out, ex));
  EXPECT_EQ(own_writer.num_pending(), 1u);
  EXPECT_EQ(store_writer.num_pending(), 0u);
}

TEST_F(Protect, RejectsWhatCannotBeProtected) {
  auto c = make("C.1.1.", 0);
  uint8_t out[128];
  Exchange ex;
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
  EXPECT_EQ(c->protect_request(resp, out, ex).error(), Error::kInvalidArgument);
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  req.add_option(cp::coap::option::kOscore, {});
  EXPECT_EQ(c->protect_request(req, out, ex).error(), Error::kInvalidArgument);
  req.remove(cp::coap::option::kOscore);
  ASSERT_TRUE(c->protect_request(req, out, ex));
  const Bytes piv_before(ex.request_piv().begin(), ex.request_piv().end());
  coap::Message big(coap::Type::kCon, cp::coap::code::kPost, 1);
  big.payload.assign(200, 'x');
  EXPECT_EQ(c->protect_request(big, out, ex).error(), Error::kBufferTooSmall);
  // 64 options are fine for the parser, but 64 Observe options would make 65
  // outer options, more than any receiver parses (found by fuzz_oscore_unprotect).
  coap::Message many(coap::Type::kCon, cp::coap::code::kGet, 1);
  for (size_t i = 0; i < coap::kMaxOptions; ++i) many.add_option(cp::coap::option::kObserve, {});
  uint8_t big_out[512];
  EXPECT_EQ(c->protect_request(many, big_out, ex).error(), Error::kInvalidArgument);
  // A failed protection leaves the caller's exchange alone.
  EXPECT_EQ(Bytes(ex.request_piv().begin(), ex.request_piv().end()), piv_before);
}

TEST_F(Protect, ServerErrorsAndTheirResponses) {
  auto server = make("C.1.2.", 0);
  auto c4 = test::rfc8613_section("C.4.");
  Bytes wire = c4["Protected CoAP request (OSCORE message)"];
  uint8_t dec[128], resp[128];
  Exchange sx;

  // Unknown kid -> 4.01 "Security context not found"
  auto other = make("C.2.2.", 0);  // expects kid 0x00
  auto e = other->unprotect_request(wire, dec, sx);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), Error::kContextNotFound);
  auto n = build_error_response(wire, e.error(), resp);
  ASSERT_TRUE(n);
  // ACK, 4.01, same MID and token, Max-Age 0 (delta 14: d0 01, empty uint), diagnostic
  EXPECT_EQ(to_hex(ByteView(resp, *n)),
            "64815d1f00003974d001ff" + to_hex(as_bytes("Security context not found")));

  // Corrupted ciphertext -> 4.00 "Decryption failed"
  Bytes bad = wire;
  bad.back() ^= 0x80;
  e = server->unprotect_request(bad, dec, sx);
  EXPECT_EQ(e.error(), Error::kDecryptionFailed);
  EXPECT_EQ(error_response(e.error())->code, cp::coap::code::kBadRequest);
  EXPECT_STREQ(error_response(e.error())->diagnostic, "Decryption failed");

  // Malformed option (reserved bit) -> 4.02 "Failed to decode COSE"
  Bytes mal = wire;
  mal[4 + 4 + 10 + 1] |= 0x80;  // first byte of the OSCORE option value
  e = server->unprotect_request(mal, dec, sx);
  EXPECT_EQ(e.error(), Error::kMalformedOption);
  EXPECT_EQ(error_response(e.error())->code, cp::coap::code::kBadOption);
  // No OSCORE option at all
  e = server->unprotect_request(c4["Unprotected CoAP request"], dec, sx);
  EXPECT_EQ(e.error(), Error::kContextNotFound);
  // Replay -> 4.01 "Replay detected"
  ASSERT_TRUE(server->unprotect_request(wire, dec, sx));
  e = server->unprotect_request(wire, dec, sx);
  EXPECT_STREQ(error_response(e.error())->diagnostic, "Replay detected");
  EXPECT_FALSE(error_response(Error::kCrypto));
}

// Issue 4: "the request after limit_q is refused; a flood of forged messages
// stops at limit_v and the recipient key is not used again; replays do not
// count" (key-limits draft §2.3), checked on the AEAD calls themselves.
class Limits : public ::testing::Test {
 protected:
  recording::RecordingProvider::Log log_;
  recording::RecordingProvider provider_{log_};
  std::unique_ptr<Context> make(const char* section, std::optional<KeyLimits> limits = std::nullopt) {
    auto cfg = rfc_config(section, 0);
    cfg.limits = limits;
    auto c = Context::create(provider_, std::move(cfg));
    EXPECT_TRUE(c);
    return c ? std::move(*c) : nullptr;
  }
};

TEST_F(Limits, TheMessageAfterLimitQIsRefusedWithoutSealing) {
  auto client = make("C.1.1.", KeyLimits{4, 16, 256});
  auto server = make("C.1.2.", KeyLimits{2, 16, 256});
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
  uint8_t wire[128], dec[128];
  std::vector<Exchange> answered;
  for (int i = 0; i < 3; ++i) {
    Exchange cx, sx;
    auto n = client->protect_request(req, wire, cx);
    ASSERT_TRUE(n);
    ASSERT_TRUE(server->unprotect_request(ByteView(wire, *n), dec, sx));
    const size_t seals = log_.num_seals;
    const uint64_t seq = server->next_sequence_number();
    auto r = server->protect_response(resp, sx, wire);
    if (i < 2) {
      ASSERT_TRUE(r);
      EXPECT_EQ(log_.num_seals, seals + 1);
    } else {  // the third response: count_q would exceed limit_q = 2
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error(), Error::kSenderLimitReached);
      EXPECT_EQ(log_.num_seals, seals);  // nothing encrypted
      EXPECT_EQ(server->next_sequence_number(), seq);
    }
  }
  EXPECT_EQ(server->count_q(), 2u);
  // Client: requests 4 is the last (limit_q = 4, 3 used).
  Exchange cx;
  ASSERT_TRUE(client->protect_request(req, wire, cx));
  EXPECT_EQ(client->protect_request(req, wire, cx).error(), Error::kSenderLimitReached);
  EXPECT_EQ(client->count_q(), 4u);
}

TEST_F(Limits, ForgedFloodStopsAtLimitVAndTheKeyIsNotUsedAgain) {
  auto client = make("C.1.1.");
  auto server = make("C.1.2.", KeyLimits{1 << 20, 5, 256});
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  uint8_t wire[128], dec[128];
  Exchange cx, sx;

  // A genuine request, then replays of it: rejected before decryption, not counted.
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  const Bytes genuine(wire, wire + *n);
  ASSERT_TRUE(server->unprotect_request(genuine, dec, sx));
  const size_t opens_after_genuine = log_.num_opens;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(server->unprotect_request(genuine, dec, sx).error(), Error::kReplay);
  EXPECT_EQ(server->count_v(), 0u);
  EXPECT_EQ(log_.num_opens, opens_after_genuine);

  // A flood of 100 forgeries (fresh Partial IVs, bad tags).
  int failed = 0, refused = 0;
  for (int i = 0; i < 100; ++i) {
    auto m = client->protect_request(req, wire, cx);
    ASSERT_TRUE(m);
    wire[*m - 1] ^= 0x5a;
    auto r = server->unprotect_request(ByteView(wire, *m), dec, sx);
    ASSERT_FALSE(r);
    if (r.error() == Error::kDecryptionFailed) ++failed;
    if (r.error() == Error::kRecipientLimitReached) ++refused;
  }
  EXPECT_EQ(failed, 5);
  EXPECT_EQ(refused, 95);
  EXPECT_EQ(server->count_v(), 5u);
  EXPECT_EQ(log_.num_opens, opens_after_genuine + 5);  // the Recipient Key was not used again
  // Not even for a genuine request, nor for a replay.
  auto g = client->protect_request(req, wire, cx);
  ASSERT_TRUE(g);
  EXPECT_EQ(server->unprotect_request(ByteView(wire, *g), dec, sx).error(), Error::kRecipientLimitReached);
  EXPECT_EQ(server->unprotect_request(genuine, dec, sx).error(), Error::kRecipientLimitReached);
  EXPECT_EQ(log_.num_opens, opens_after_genuine + 5);
  EXPECT_EQ(to_string(Error::kRecipientLimitReached), std::string("recipient key usage limit reached"));
}

TEST_F(Limits, ClientCountsForgedResponsesButNotReplayedOnes) {
  auto client = make("C.1.1.", KeyLimits{1 << 20, 3, 256});
  auto server = make("C.1.2.");
  coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
  coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
  uint8_t wire[128], dec[128], rwire[128];
  Exchange cx, sx;
  auto n = client->protect_request(req, wire, cx);
  ASSERT_TRUE(n);
  ASSERT_TRUE(server->unprotect_request(ByteView(wire, *n), dec, sx));
  auto r = server->protect_response(resp, sx, rwire);
  ASSERT_TRUE(r);
  const Bytes good(rwire, rwire + *r);
  Bytes forged = good;
  forged.back() ^= 1;
  EXPECT_EQ(client->unprotect_response(forged, cx, dec).error(), Error::kDecryptionFailed);
  EXPECT_EQ(client->count_v(), 1u);
  ASSERT_TRUE(client->unprotect_response(good, cx, dec));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(client->unprotect_response(good, cx, dec).error(), Error::kReplay);
  EXPECT_EQ(client->count_v(), 1u);
  for (int i = 0; i < 10; ++i) {
    Exchange cx2;
    ASSERT_TRUE(client->protect_request(req, wire, cx2));
    auto e = client->unprotect_response(forged, cx2, dec);
    ASSERT_FALSE(e);
  }
  EXPECT_EQ(client->count_v(), 3u);
  EXPECT_FALSE(client->recipient_usable());
}

}  // namespace
