// bench_coap: CoAP codec and server-path micro-benchmarks.
#include <benchmark/benchmark.h>

#include "coap/endpoint.h"
#include "coap/message.h"
#include "coap/server.h"

using namespace acekdc;

static coap::Message typical_request() {
  coap::Message m(coap::Type::kCon, coap::code::kGet, 0x1234);
  m.token = {1, 2, 3, 4, 5, 6, 7, 8};
  m.set_uri_path("/seg1/seg2/seg3");
  m.add_uri_query("a=1&b=2");
  m.add_uint(coap::option::kAccept, 60);
  return m;
}

// BM_CoapDecodeView: MessageView::parse of a GET with 6 options (no allocation).
static void BM_CoapDecodeView(benchmark::State& state) {
  Bytes enc = *typical_request().encode();
  for (auto _ : state) {
    auto v = coap::MessageView::parse(enc);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * enc.size());
}
BENCHMARK(BM_CoapDecodeView);

// BM_CoapDecodeOwning: Message::parse (copies into an owning Message).
static void BM_CoapDecodeOwning(benchmark::State& state) {
  Bytes enc = *typical_request().encode();
  for (auto _ : state) {
    auto m = coap::Message::parse(enc);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_CoapDecodeOwning);

// BM_CoapEncodeFixedBuffer: Message::encode_into a stack buffer.
static void BM_CoapEncodeFixedBuffer(benchmark::State& state) {
  coap::Message m = typical_request();
  uint8_t buf[256];
  for (auto _ : state) {
    Writer w{MutableByteView(buf)};
    auto r = m.encode_into(w);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(buf[0]);
  }
}
BENCHMARK(BM_CoapEncodeFixedBuffer);

// BM_CoapEncodeVector: Message::encode into a new vector.
static void BM_CoapEncodeVector(benchmark::State& state) {
  coap::Message m = typical_request();
  for (auto _ : state) {
    auto r = m.encode();
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_CoapEncodeVector);

// BM_CoapServerGetExchange: one CON GET through Endpoint::receive + Server
// dispatch to a piggybacked 2.05, without sockets (unique MIDs: no dedup hits).
static void BM_CoapServerGetExchange(benchmark::State& state) {
  FakeClock clock;
  FakeRandom rnd(1);
  coap::Endpoint ep(clock, rnd);
  coap::Server server(ep);
  server.add("/test").on(coap::code::kGet, [](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_uint(coap::option::kContentFormat, 0);
    r.set_payload("hello world");
  });
  coap::Message req(coap::Type::kCon, coap::code::kGet, 0);
  req.token = {1, 2, 3, 4};
  req.set_uri_path("/test");
  Bytes enc = *req.encode();
  coap::Address peer = coap::Address::ipv4(127, 0, 0, 1, 40000);
  uint16_t mid = 0;
  for (auto _ : state) {
    ++mid;
    enc[2] = static_cast<uint8_t>(mid >> 8);
    enc[3] = static_cast<uint8_t>(mid);
    ep.receive(enc, peer, clock.now());
    benchmark::DoNotOptimize(ep.transmits().data());
    ep.clear_transmits();
  }
}
BENCHMARK(BM_CoapServerGetExchange);

BENCHMARK_MAIN();
