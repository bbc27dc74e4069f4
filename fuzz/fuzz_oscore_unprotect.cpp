// fuzz_oscore_unprotect: unprotect arbitrary datagrams with fixed contexts (the
// RFC 8613 Appendix C.1 pair). The first input byte picks the path:
//   0: server Context::unprotect_request (also on a server whose replay window
//      is uninitialised, RFC 8613 App. B.1.2: accepted only with the Echo
//      challenge, else kEchoRequired whose 4.01 must carry a fresh Partial IV)
//   1: client Context::unprotect_response
//   2: server Session::unprotect_request (key update paths)
//   3: the rest is a CoAP request: protect it (client), unprotect it (server);
//      the decrypted request must equal the original byte for byte (a Proxy-Uri
//      comes back decomposed; then it must only verify)
//   4: the same for a response (without Observe) to a fixed request
// The contexts are rebuilt for every input so runs are reproducible.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/clock.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/context.h"
#include "oscore/key_update.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

crypto::Provider& provider() {
  static std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  return *p;
}

std::unique_ptr<Context> make(bool client, Random* uninitialised_window = nullptr) {
  ContextConfig cfg;
  if (uninitialised_window) {
    cfg.replay_window_initialised = false;
    cfg.random = uninitialised_window;
  }
  cfg.params.master_secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  cfg.params.master_salt = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
  cfg.params.sender_id = client ? Bytes{} : Bytes{0x01};
  cfg.params.recipient_id = client ? Bytes{0x01} : Bytes{};
  cfg.max_message_len = 1024;
  auto c = Context::create(provider(), std::move(cfg));
  if (!c) std::abort();
  return std::move(*c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 5;
  ByteView msg(data + 1, size - 1);
  uint8_t out[1500];
  Exchange ex;
  if (mode == 0) {
    auto server = make(false);
    auto r = server->unprotect_request(msg, out, ex);
    if (!r) {
      uint8_t resp[256];
      (void)build_error_response(msg, r.error(), resp);
    } else if (*r > sizeof(out)) {
      std::abort();
    }
    FakeRandom random(5);
    auto rebooted = make(false, &random);
    const Bytes challenge = to_bytes(rebooted->echo_challenge());
    auto e = rebooted->unprotect_request(msg, out, ex);
    if (e) {
      auto m = coap::MessageView::parse(ByteView(out, *e));
      if (!m || !m->find(cp::coap::option::kEcho) || !equal(m->find(cp::coap::option::kEcho)->value, challenge) ||
          !rebooted->replay_window().initialised()) {
        std::abort();
      }
    } else if (e.error() == Error::kEchoRequired) {
      if (rebooted->replay_window().initialised()) std::abort();
      coap::Message unauth(coap::Type::kAck, cp::coap::code::kUnauthorized, 1);
      unauth.add_option(cp::coap::option::kEcho, challenge);
      uint8_t resp[256];
      auto n = rebooted->protect_response(unauth, ex, resp);
      if (!n) std::abort();
      auto ov = peek_option(ByteView(resp, *n));
      if (!ov || ov->partial_iv.empty()) std::abort();
    }
  } else if (mode == 1) {
    auto client = make(true);
    // The exchange of the RFC 8613 C.4 request: kid '', Partial IV 0x14.
    ex.piv[0] = 0x14;
    ex.piv_len = 1;
    ex.context_tag = 0;
    (void)client->unprotect_response(msg, ex, out);
  } else if (mode == 3 || mode == 4) {
    if (msg.size() > 900) return 0;
    auto m = coap::MessageView::parse(msg);
    if (!m) return 0;
    auto client = make(true);
    auto server = make(false);
    uint8_t wire[1500];
    Exchange cx, sx;
    if (mode == 3) {
      auto n = client->protect_request(*m, wire, cx);
      if (!n) return 0;  // e.g. not a request code, OSCORE or Proxy-Uri inside
      auto d = server->unprotect_request(ByteView(wire, *n), out, sx);
      if (!d) std::abort();
      // A Proxy-Uri comes back decomposed (RFC 8613 §4.1.3.3), anything else unchanged.
      if (m->has(cp::coap::option::kProxyUri)) return 0;
      if (*d != msg.size() || std::memcmp(out, msg.data(), msg.size()) != 0) std::abort();
    } else {
      if (m->has(cp::coap::option::kObserve)) return 0;
      coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
      auto n = client->protect_request(req, wire, cx);
      if (!n || !server->unprotect_request(ByteView(wire, *n), out, sx)) std::abort();
      auto r = server->protect_response(*m, sx, wire);
      if (!r) return 0;  // e.g. not a response code
      auto d = client->unprotect_response(ByteView(wire, *r), cx, out);
      if (!d || *d != msg.size() || std::memcmp(out, msg.data(), msg.size()) != 0) std::abort();
    }
  } else {
    FakeRandom random(7);
    FakeClock clock;
    Session server(Role::kServer, make(false), random, clock);
    auto r = server.unprotect_request(msg, out, ex);
    if (r) {
      coap::Message resp(coap::Type::kAck, cp::coap::code::kContent, 1);
      (void)server.protect_response(resp, ex, out);
    }
  }
  return 0;
}
