// fuzz_coap_server: the server's whole receive path (Endpoint + Server with
// block-wise, observe, separate responses) on arbitrary datagrams with a fake
// clock. The input is split into datagrams: [1 byte flags][2 byte length][bytes]...
// flags bit 0..1 pick one of 4 peers, bit 2 = multicast, bits 3..7 advance the clock.
#include <memory>

#include "coap/server.h"

using namespace acekdc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FakeClock clock;
  FakeRandom rnd(1);
  coap::EndpointConfig cfg;
  cfg.dedup_capacity = 32;
  coap::Endpoint ep(clock, rnd, cfg);
  coap::ServerConfig scfg;
  scfg.block_size = 32;
  scfg.max_body_size = 512;
  scfg.max_block1_transfers = 4;
  scfg.max_observers = 8;
  coap::Server server(ep, scfg);
  std::string state = "initial";
  server.add("/test").on(coap::code::kGet, [&](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload(state);
  });
  auto& up = server.add("/up");
  up.on(coap::code::kPut, [&](coap::Request& req, coap::Message& r) {
    state = std::string(as_string(req.payload));
    r.code = coap::code::kChanged;
  });
  up.on(coap::code::kGet, [&](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload(state + state + state);
  });
  up.accepted_formats = {0, 60};
  auto& obs = server.add("/obs");
  obs.observable = true;
  obs.on(coap::code::kGet, [&](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload(state);
  });
  std::vector<coap::DeferredResponse> deferred;
  server.add("/sep").on(coap::code::kGet, [&](coap::Request& req, coap::Message&) {
    if (req.can_defer()) deferred.push_back(req.defer());
  });
  coap::Address peers[4] = {coap::Address::ipv4(10, 0, 0, 1, 1000), coap::Address::ipv4(10, 0, 0, 2, 1000),
                            *coap::Address::parse("[fe80::1]:5683"), coap::Address::ipv4(10, 0, 0, 1, 1001)};
  size_t pos = 0;
  while (pos + 3 <= size) {
    uint8_t flags = data[pos];
    size_t len = (size_t{data[pos + 1]} << 8) | data[pos + 2];
    pos += 3;
    len = std::min(len, size - pos);
    clock.advance(std::chrono::milliseconds((flags >> 3) * 700));
    ep.receive(ByteView(data + pos, len), peers[flags & 3], clock.now(), flags & 4);
    pos += len;
    if (flags & 0x80) server.notify("/obs");
    if (!deferred.empty() && (flags & 0x40)) {
      coap::Message m(coap::Type::kCon, coap::code::kContent);
      m.set_payload("late");
      server.respond_later(deferred.back(), m);
      deferred.pop_back();
    }
    if (auto dl = ep.next_deadline(); dl && *dl <= clock.now()) ep.handle_timeout(clock.now());
    // everything the endpoint emits must itself be a well-formed message
    for (const auto& t : ep.transmits()) {
      if (!coap::MessageView::parse(t.data)) __builtin_trap();
    }
    ep.clear_transmits();
  }
  return 0;
}
