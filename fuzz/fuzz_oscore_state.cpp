// fuzz_oscore_state: the parsers added for reboots and RFC 8613 Appendix B.2.
// The first input byte picks the path:
//   0: ReplayWindow::deserialize; an accepted window re-serializes to exactly
//      the input (strict, canonical format) and behaves like its copy.
//   1: Session::restore of a saved key-update state (client or server by the
//      second byte); a restored session's export_state must restore again.
//   2: B2Server::unprotect_request of an arbitrary datagram (kid context R2 ||
//      R3, ID1 taken from the request), and protect_response on success.
//   3: B2Client: a request #1 is sent, the rest is its response (#1 with R2 or not).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/clock.h"
#include "core/random.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/appendix_b2.h"
#include "oscore/key_update.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

crypto::Provider& provider() {
  static std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  return *p;
}

ContextConfig base(bool client) {
  ContextConfig cfg;
  cfg.params.master_secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  cfg.params.master_salt = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
  cfg.params.sender_id = client ? Bytes{} : Bytes{0x01};
  cfg.params.recipient_id = client ? Bytes{0x01} : Bytes{};
  cfg.max_message_len = 1024;
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0] % 4;
  ByteView rest(data + 1, size - 1);
  FakeRandom random(3);
  FakeClock clock;
  uint8_t out[1500];
  if (mode == 0) {
    auto w = ReplayWindow::deserialize(rest);
    if (!w) return 0;
    const Bytes again = w->serialize();
    if (again.size() != rest.size() || std::memcmp(again.data(), rest.data(), rest.size()) != 0) std::abort();
    auto copy = ReplayWindow::deserialize(again);
    if (!copy) std::abort();
    for (uint64_t s = w->highest() > 70 ? w->highest() - 70 : 0; s <= w->highest() + 2; ++s) {
      if (bool(copy->check(s)) != bool(w->check(s))) std::abort();
    }
  } else if (mode == 1) {
    const Role role = (rest[0] & 1) ? Role::kServer : Role::kClient;
    ByteView state = rest.subspan(1);
    auto s = Session::restore(role, provider(), base(role == Role::kClient), state, random, clock);
    if (!s) return 0;
    const Bytes exported = (*s)->export_state();
    auto again = Session::restore(role, provider(), base(role == Role::kClient), exported, random, clock);
    if (!again) std::abort();
  } else if (mode == 2) {
    auto server = B2Server::create(provider(), B2Config{base(false)}, random, clock, true);
    if (!server) std::abort();
    Exchange ex;
    auto r = (*server)->unprotect_request(rest, out, ex);
    if (r) {
      if (r->len > sizeof(out)) std::abort();
      coap::Message resp(coap::Type::kAck, cp::coap::code::kUnauthorized, 1);
      if (!(*server)->protect_response(resp, ex, out)) std::abort();
    }
  } else {
    auto client = B2Client::create(provider(), B2Config{base(true)}, random, false);
    if (!client) std::abort();
    coap::Message req(coap::Type::kCon, cp::coap::code::kGet, 1);
    Exchange ex;
    if (!(*client)->protect_request(req, out, ex)) std::abort();
    auto r = (*client)->unprotect_response(rest, ex, out);
    if (r && r->len > sizeof(out)) std::abort();
  }
  return 0;
}
