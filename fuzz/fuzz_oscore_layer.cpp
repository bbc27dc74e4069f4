// fuzz_oscore_layer: oscore::SecureServer and oscore::SecureClient over two
// coap::Endpoints, driven by records from the input:
//   [kind][len][len bytes]
//   kind % 5 == 0: the bytes as a datagram to the server (outer message, anything)
//   kind % 5 == 1: the bytes as an INNER request (code || options || payload),
//                  protected with a valid client context (kind bit 3: the context
//                  whose server side has an uninitialised replay window), so the
//                  decrypted request reaches the resource tree with arbitrary
//                  Block1/Block2/Observe/Echo options
//   kind % 5 == 2: the bytes as a datagram to the client (responses to its
//                  outstanding SecureClient requests, forged or not)
//   kind % 5 == 3: time passes (len * 100 ms), the server notifies observers and
//                  answers a deferred request
//   kind % 5 == 4: the client sends a request (GET/POST/Observe/Block2 by len)
// After each record the datagrams both sides produced are delivered to the other.
// Everything is rebuilt per input (FakeClock, FakeRandom): reproducible.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

#include "coap/server.h"
#include "core/clock.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/secure_client.h"
#include "oscore/secure_server.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

crypto::Provider& provider() {
  static std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  return *p;
}

std::unique_ptr<Context> make(bool client, Bytes client_id, Random* uninitialised = nullptr) {
  ContextConfig cfg;
  cfg.params.master_secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  cfg.params.master_salt = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
  cfg.params.sender_id = client ? client_id : Bytes{0x01};
  cfg.params.recipient_id = client ? Bytes{0x01} : client_id;
  cfg.max_message_len = 1024;
  if (uninitialised) {
    cfg.replay_window_initialised = false;
    cfg.random = uninitialised;
  }
  auto c = Context::create(provider(), std::move(cfg));
  if (!c) std::abort();
  return std::move(*c);
}

const coap::Address kClient = coap::Address::ipv4(10, 0, 0, 1, 40000);
const coap::Address kServer = coap::Address::ipv4(10, 0, 0, 2, 5683);

KeyUpdateConfig no_auto() {
  KeyUpdateConfig k;
  k.auto_threshold.reset();
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FakeClock clock;
  FakeRandom r1{1}, r2{2}, r3{3}, r4{4};
  coap::Endpoint server_ep(clock, r1), client_ep(clock, r2);
  coap::Server server(server_ep);
  std::optional<coap::DeferredResponse> deferred;
  auto& res = server.add("/r");
  res.observable = true;
  res.on(cp::coap::code::kGet, [](coap::Request&, coap::Message& resp) {
    resp.code = cp::coap::code::kContent;
    resp.payload.assign(1500, 'x');
  });
  res.on(cp::coap::code::kPost, [](coap::Request& req, coap::Message& resp) {
    resp.code = cp::coap::code::kChanged;
    resp.payload.assign(req.payload.begin(), req.payload.end());
  });
  server.add("/slow").on(cp::coap::code::kGet, [&](coap::Request& req, coap::Message&) {
    if (req.can_defer()) deferred = req.defer();
  });
  server.add("/open").on(cp::coap::code::kGet, [](coap::Request&, coap::Message& resp) {
    resp.code = cp::coap::code::kContent;
  });
  SecureServer secure(server_ep, server, r3, clock);
  secure.allow_unprotected("/open");
  if (!secure.add_context(make(false, {}), no_auto())) std::abort();
  if (!secure.add_context(make(false, {0x02}, &r3), no_auto())) std::abort();
  // raw client contexts for kind 1 (inner requests), and a SecureClient
  auto raw_a = make(true, {});
  auto raw_b = make(true, {0x02});
  Session session(Role::kClient, make(true, {0x03}), r4, clock, no_auto());  // unknown to the server
  Session session_ok(Role::kClient, make(true, {0x02}), r4, clock, no_auto());
  SecureClient client(client_ep, session_ok);
  SecureClient stranger(client_ep, session);
  auto ignore = [](const SecureEvent&) {};

  auto pump = [&] {
    for (int round = 0; round < 8; ++round) {
      bool any = false;
      for (const coap::Transmit& t : server_ep.transmits()) {
        client_ep.receive(t.data, kServer, clock.now());
        any = true;
      }
      server_ep.clear_transmits();
      for (const coap::Transmit& t : client_ep.transmits()) {
        server_ep.receive(t.data, kClient, clock.now());
        any = true;
      }
      client_ep.clear_transmits();
      if (!any) break;
    }
  };

  size_t pos = 0;
  int steps = 0;
  while (pos + 2 <= size && steps++ < 64) {
    const uint8_t kind = data[pos];
    const size_t len = data[pos + 1];
    pos += 2;
    if (len > size - pos) break;
    const ByteView bytes(data + pos, len);
    pos += len;
    switch (kind % 5) {
      case 0:
        server_ep.receive(bytes, kClient, clock.now());
        break;
      case 1: {
        auto inner = coap::Message::parse_inner(bytes);
        if (!inner || !coap::is_request(inner->code)) break;
        inner->type = (kind & 0x40) ? coap::Type::kNon : coap::Type::kCon;
        inner->message_id = static_cast<uint16_t>(steps * 257 + kind);
        inner->token = {static_cast<uint8_t>(steps), kind};
        uint8_t out[1280];
        Exchange ex;
        Context& ctx = (kind & 0x08) ? *raw_b : *raw_a;
        auto n = ctx.protect_request(*inner, out, ex);
        if (n) server_ep.receive(ByteView(out, *n), kClient, clock.now());
        break;
      }
      case 2:
        client_ep.receive(bytes, kServer, clock.now());
        break;
      case 3:
        clock.advance(milliseconds(100) * static_cast<int>(len));
        server_ep.handle_timeout(clock.now());
        client_ep.handle_timeout(clock.now());
        server.notify("/r");
        if (deferred) {
          coap::Message later(coap::Type::kCon, cp::coap::code::kContent);
          later.payload.assign(bytes.begin(), bytes.end());
          server.respond_later(*deferred, std::move(later));
          deferred.reset();
        }
        break;
      case 4: {
        coap::Message m(coap::Type::kCon, (len & 1) ? cp::coap::code::kPost : cp::coap::code::kGet);
        m.set_uri_path((len & 4) ? "/slow" : "/r");
        if (len & 1) m.payload.assign(static_cast<size_t>(len) * 8, 'p');
        coap::RequestOptions o;
        o.observe = (len & 2) != 0;
        (void)((len & 8) ? stranger : client).request(kServer, std::move(m), o, ignore);
        break;
      }
    }
    pump();
  }
  return 0;
}
