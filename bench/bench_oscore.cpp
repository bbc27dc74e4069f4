// bench_oscore: OSCORE request protection + verification (RFC 8613 §8.1 + §8.2)
// of a POST with a 64-byte payload, next to the raw AEAD work it is built on:
// AES-CCM-16-64-128 seal + open of 64 bytes through the same crypto provider,
// in the same run. Target: OSCORE throughput >= 40% of raw.
//
//   BM_OscoreProtectVerifyRequest   client protect_request + server unprotect_request
//   BM_RawAeadSealOpen64            provider Aead seal + open, 64 bytes, 20-byte AAD
//   BM_Paired                       both interleaved; reports oscore_ns, raw_ns and
//                                   raw_over_oscore (the fraction of raw speed, >= 0.40)
// Each also reports allocs_per_op: heap allocations (global operator new,
// counted by this binary) per protect+verify / seal+open; the target is 0.
#include <benchmark/benchmark.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <memory>
#include <new>

#include "core/codepoints.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/context.h"

// Allocation counter: every global operator new of this process. (g++ 12
// flags the replaced new/delete pair as mismatched when inlined; it is not.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
std::atomic<uint64_t> g_num_allocs{0};

void* operator new(std::size_t n) {
  g_num_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace acekdc;
using namespace acekdc::oscore;

crypto::Provider& provider() {
  static auto p = crypto::make_openssl_provider();
  return *p;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench_oscore: %s failed\n", what);
    std::abort();
  }
}

std::unique_ptr<Context> make(bool client) {
  ContextConfig cfg;
  cfg.params.aead_alg = cp::alg::kAES_CCM_16_64_128;
  cfg.params.master_secret = Bytes(16, 0x11);
  cfg.params.master_salt = Bytes(8, 0x22);
  cfg.params.sender_id = client ? Bytes{0x01} : Bytes{0x02};
  cfg.params.recipient_id = client ? Bytes{0x02} : Bytes{0x01};
  auto c = Context::create(provider(), std::move(cfg));
  check(c.has_value(), "Context::create");
  return std::move(*c);
}

// One OSCORE round: protect on the client, verify on the server.
struct OscorePair {
  std::unique_ptr<Context> client = make(true);
  std::unique_ptr<Context> server = make(false);
  Bytes datagram;
  coap::MessageView request;
  uint8_t wire[512];
  uint8_t plain[512];
  Exchange cx, sx;

  OscorePair() {
    coap::Message m(coap::Type::kCon, cp::coap::code::kPost, 0x1234);
    m.token = {1, 2, 3, 4};
    m.set_uri_path("/sensors/temp");
    m.add_uint(cp::coap::option::kContentFormat, cp::cf::kOctetStream);
    m.payload.assign(64, 0x61);
    datagram = *m.encode();
    request = *coap::MessageView::parse(datagram);
  }
  // renew replaces contexts whose keys reached their usage limit (untimed).
  bool needs_renew() const { return !client->sender_usable() || !server->recipient_usable(); }
  void renew() {
    client = make(true);
    server = make(false);
  }
  void run() {
    auto n = client->protect_request(request, wire, cx);
    check(n.has_value(), "protect_request");
    auto d = server->unprotect_request(ByteView(wire, *n), plain, sx);
    check(d.has_value(), "unprotect_request");
    benchmark::DoNotOptimize(plain[0]);
  }
};

// The raw AEAD work: seal + open of 64 bytes with a 20-byte AAD (the size of an
// OSCORE AAD) through the provider's Aead object, keys set up once.
struct RawPair {
  std::unique_ptr<crypto::Aead> aead;
  uint8_t nonce[13], aad[20], pt[64], ct[64 + 8], back[64];
  RawPair() {
    auto a = provider().make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x33));
    check(a.has_value(), "make_aead");
    aead = std::move(*a);
    std::memset(nonce, 0x24, sizeof nonce);
    std::memset(aad, 0x42, sizeof aad);
    std::memset(pt, 0x61, sizeof pt);
  }
  void run() {
    nonce[12]++;
    auto s = aead->seal(nonce, aad, pt, ct);
    check(s.has_value(), "seal");
    auto o = aead->open(nonce, aad, ct, back);
    check(o.has_value(), "open");
    benchmark::DoNotOptimize(back[0]);
  }
};

// allocs_per_op: allocations counted between `before` and now, per operation
// (context renewals excluded by the caller).
void report_allocs(benchmark::State& st, uint64_t num_allocs, int64_t num_ops) {
  st.counters["allocs_per_op"] = num_ops > 0 ? static_cast<double>(num_allocs) / static_cast<double>(num_ops) : 0;
}

void BM_OscoreProtectVerifyRequest(benchmark::State& st) {
  OscorePair p;
  p.run();  // warm-up outside the count (first-use setup in the provider)
  uint64_t allocs = 0;
  uint64_t before = g_num_allocs.load();
  for (auto _ : st) {
    if (p.needs_renew()) {
      st.PauseTiming();
      allocs += g_num_allocs.load() - before;
      p.renew();
      p.run();
      before = g_num_allocs.load();
      st.ResumeTiming();
    }
    p.run();
  }
  allocs += g_num_allocs.load() - before;
  report_allocs(st, allocs, st.iterations());
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OscoreProtectVerifyRequest);

void BM_RawAeadSealOpen64(benchmark::State& st) {
  RawPair r;
  r.run();
  const uint64_t before = g_num_allocs.load();
  for (auto _ : st) r.run();
  report_allocs(st, g_num_allocs.load() - before, st.iterations());
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_RawAeadSealOpen64);

// thread_cpu_ns: this thread's CPU time (time on other threads and while
// preempted does not count: on a loaded machine wall time mostly measures that).
double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// BM_Paired interleaves batches of both so machine load affects them alike, and
// times each batch with the thread's CPU clock.
void BM_Paired(benchmark::State& st) {
  OscorePair p;
  RawPair r;
  constexpr int kBatch = 64;
  double oscore_ns = 0, raw_ns = 0;
  int64_t rounds = 0;
  for (auto _ : st) {
    if (p.needs_renew()) {
      st.PauseTiming();
      p.renew();
      st.ResumeTiming();
    }
    const double t0 = thread_cpu_ns();
    for (int i = 0; i < kBatch; ++i) p.run();
    const double t1 = thread_cpu_ns();
    for (int i = 0; i < kBatch; ++i) r.run();
    const double t2 = thread_cpu_ns();
    oscore_ns += t1 - t0;
    raw_ns += t2 - t1;
    rounds += kBatch;
  }
  if (rounds > 0) {
    st.counters["oscore_ns"] = oscore_ns / static_cast<double>(rounds);
    st.counters["raw_ns"] = raw_ns / static_cast<double>(rounds);
    st.counters["raw_over_oscore"] = raw_ns / oscore_ns;
  }
}
BENCHMARK(BM_Paired);

}  // namespace

BENCHMARK_MAIN();
