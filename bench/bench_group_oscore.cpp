// bench_group_oscore: Group OSCORE group mode (grouposcore/group_context.h) requests of a
// NON POST with a 64-byte payload, next to the raw primitives they are built on, in the
// same run and through the same crypto provider (Ed25519, AES-CCM-16-64-128):
//
//   BM_GroupProtectRequest     member A: protect_request (sign + AEAD + keystream)
//   BM_GroupVerifyRequest      member B: verify_request of A's messages (verify + AEAD)
//   BM_RawEd25519Sign          Signer::sign of a message the size of a group request's
//                              Countersign_structure
//   BM_RawEd25519Verify        Verifier::verify of the same
//   BM_RawAeadSeal64           Aead::seal of 64 bytes
//   BM_VerifyPaired            verify_request and raw verify interleaved; reports
//                              group_ns, raw_ns and group_over_raw (target >= 0.80)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "grouposcore/group_context.h"
#include "grouposcore/test_util.h"

namespace {

using namespace acekdc;
using namespace acekdc::grouposcore;
using namespace acekdc::grouposcore::test;

crypto::Provider& provider() {
  static auto p = crypto::make_openssl_provider();
  return *p;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench_group_oscore: %s failed\n", what);
    std::abort();
  }
}

// The Countersign_structure of the benchmarked request is about this long.
constexpr size_t kTbsLen = 220;

coap::Message request() {
  coap::Message m(coap::Type::kNon, cp::coap::code::kPost, 0x1234);
  m.token = {0x7a, 0x7b};
  m.set_uri_path("sensors/temp");
  m.payload.assign(64, 0x42);
  return m;
}

std::unique_ptr<GroupContext> member(const char* sid, const char* seed, const char* peer_sid,
                                     const char* peer_seed) {
  auto c = make_member(provider(), sid, seed);
  check(c != nullptr, "create");
  check(bool(c->add_member_key(public_cose_key(member_key(provider(), peer_seed), hx(peer_sid)))), "add key");
  return c;
}

// Messages: a batch of A's requests (each sequence number verifies once at B).
struct Messages {
  std::vector<Bytes> items;
  explicit Messages(size_t n) {
    auto a = member(kSidA, kSeedA, kSidB, kSeedB);
    const coap::Message m = request();
    std::array<uint8_t, 1500> buf;
    for (size_t i = 0; i < n; ++i) {
      GroupExchange ex;
      auto len = a->protect_request(m, buf, ex);
      check(bool(len), "protect");
      items.emplace_back(buf.begin(), buf.begin() + *len);
    }
  }
};

const Messages& messages() {
  static Messages m(20000);
  return m;
}

void BM_GroupProtectRequest(benchmark::State& state) {
  auto a = member(kSidA, kSeedA, kSidB, kSeedB);
  const coap::Message m = request();
  std::array<uint8_t, 1500> buf;
  GroupExchange ex;
  for (auto _ : state) {
    auto n = a->protect_request(m, buf, ex);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_GroupVerifyRequest(benchmark::State& state) {
  const auto& msgs = messages().items;
  auto b = member(kSidB, kSeedB, kSidA, kSeedA);
  std::array<uint8_t, 1500> out;
  size_t i = 0;
  for (auto _ : state) {
    if (i == msgs.size()) {  // every message verified once: start over with a fresh B
      state.PauseTiming();
      b = member(kSidB, kSeedB, kSidA, kSeedA);
      i = 0;
      state.ResumeTiming();
    }
    GroupExchange ex;
    auto r = b->verify_request(msgs[i++], out, ex);
    if (!r) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

struct Raw {
  std::unique_ptr<crypto::Signer> signer;
  std::unique_ptr<crypto::Verifier> verifier;
  std::unique_ptr<crypto::Aead> aead;
  Bytes msg = Bytes(kTbsLen, 0x33);
  std::array<uint8_t, 64> sig{};
  Raw() {
    auto kp = member_key(provider(), kSeedA);
    auto s = provider().make_signer(cp::alg::kEdDSA, kp);
    crypto::KeyPair pub = kp;
    pub.d.clear();
    auto v = provider().make_verifier(cp::alg::kEdDSA, pub);
    const Bytes key(16, 0x11);
    auto a = provider().make_aead(cp::alg::kAES_CCM_16_64_128, key);
    check(s && v && a, "raw setup");
    signer = std::move(*s);
    verifier = std::move(*v);
    aead = std::move(*a);
    check(bool(signer->sign(msg, sig)), "raw sign");
  }
};

void BM_RawEd25519Sign(benchmark::State& state) {
  Raw raw;
  std::array<uint8_t, 64> sig;
  for (auto _ : state) {
    auto r = raw.signer->sign(raw.msg, sig);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawEd25519Verify(benchmark::State& state) {
  Raw raw;
  for (auto _ : state) {
    auto r = raw.verifier->verify(raw.msg, raw.sig);
    if (!r) state.SkipWithError("raw verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawAeadSeal64(benchmark::State& state) {
  Raw raw;
  const std::array<uint8_t, 13> nonce{};
  const std::array<uint8_t, 20> aad{};
  std::array<uint8_t, 64> pt{};
  std::array<uint8_t, 64 + 8> ct;
  for (auto _ : state) {
    auto r = raw.aead->seal(nonce, aad, pt, ct);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// BM_VerifyPaired: alternating blocks of group verification and raw signature
// verification, so that both see the same machine state.
void BM_VerifyPaired(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const auto& msgs = messages().items;
  Raw raw;
  auto b = member(kSidB, kSeedB, kSidA, kSeedA);
  std::array<uint8_t, 1500> out;
  constexpr int kBlock = 200;
  size_t i = 0;
  double group_s = 0, raw_s = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    if (i + kBlock > msgs.size()) {
      state.PauseTiming();
      b = member(kSidB, kSeedB, kSidA, kSeedA);
      i = 0;
      state.ResumeTiming();
    }
    auto t0 = Clock::now();
    for (int k = 0; k < kBlock; ++k) {
      GroupExchange ex;
      auto r = b->verify_request(msgs[i++], out, ex);
      if (!r) state.SkipWithError("verify failed");
    }
    auto t1 = Clock::now();
    for (int k = 0; k < kBlock; ++k) {
      auto r = raw.verifier->verify(raw.msg, raw.sig);
      benchmark::DoNotOptimize(r);
    }
    auto t2 = Clock::now();
    group_s += std::chrono::duration<double>(t1 - t0).count();
    raw_s += std::chrono::duration<double>(t2 - t1).count();
    n += kBlock;
  }
  if (n > 0) {
    state.counters["group_ns"] = group_s / n * 1e9;
    state.counters["raw_ns"] = raw_s / n * 1e9;
    state.counters["group_over_raw"] = raw_s / group_s;  // fraction of the raw verification rate
  }
}

BENCHMARK(BM_GroupProtectRequest);
BENCHMARK(BM_GroupVerifyRequest);
BENCHMARK(BM_RawEd25519Sign);
BENCHMARK(BM_RawEd25519Verify);
BENCHMARK(BM_RawAeadSeal64);
BENCHMARK(BM_VerifyPaired)->Iterations(50);

}  // namespace

BENCHMARK_MAIN();
