// bench_cbor: decoding and encoding an ACE group join request (draft-ietf-ace-
// key-groupcomm-05 §4.1.2.1: scope, get_pub_keys, client_cred, cnonce,
// client_cred_verify) with the pull Decoder / Encoder, next to the owning Value.
//
// Names: JoinRequest/<Decode|Encode>/<Pull|Value>. The pull benchmarks count
// heap allocations (operator new is replaced in this binary) and fail if there
// is any: the hot path must not allocate.
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

#include "cbor/cbor.h"
#include "cbor/value.h"
#include "core/codepoints.h"

// ---- allocation counting for this binary
#if defined(__GNUC__) && !defined(__clang__)
// GCC flags free() on memory from a (replaced) operator new; here both are malloc/free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace acekdc;
using namespace acekdc::cbor;
namespace gc = acekdc::cp::gc;

struct JoinFields {
  std::array<uint8_t, 44> client_cred{};
  std::array<uint8_t, 8> cnonce{};
  std::array<uint8_t, 64> client_cred_verify{};
  std::array<uint8_t, 64> scope_buf{};
  size_t scope_len = 0;
};

const JoinFields& fields() {
  static const JoinFields f = [] {
    JoinFields j;
    for (size_t i = 0; i < j.client_cred.size(); ++i) j.client_cred[i] = static_cast<uint8_t>(i);
    for (size_t i = 0; i < j.cnonce.size(); ++i) j.cnonce[i] = static_cast<uint8_t>(0xc0 + i);
    for (size_t i = 0; i < j.client_cred_verify.size(); ++i)
      j.client_cred_verify[i] = static_cast<uint8_t>(0x80 ^ i);
    // scope: bstr-wrapped [group name, [roles]]
    Writer w{MutableByteView(j.scope_buf)};
    Encoder e(w);
    e.put_array(2).put_tstr("gid-example-group-01").put_array(2).put_tstr("requester").put_tstr("monitor");
    j.scope_len = w.size();
    return j;
  }();
  return f;
}

// encode_join writes the join request with the Encoder; returns bytes written (0 on overflow).
size_t encode_join(const JoinFields& f, MutableByteView buf) {
  Writer w(buf);
  Encoder e(w);
  e.put_map(5);
  e.put_int(gc::kScope).put_bstr(ByteView(f.scope_buf.data(), f.scope_len));
  e.put_int(gc::kGetPubKeys).put_array(0);
  e.put_int(gc::kClientCred).put_bstr(f.client_cred);
  e.put_int(gc::kCnonce).put_bstr(f.cnonce);
  e.put_int(gc::kClientCredVerify).put_bstr(f.client_cred_verify);
  return e.ok() ? w.size() : 0;
}

struct Join {
  ByteView scope, client_cred, cnonce, client_cred_verify;
  bool get_pub_keys = false;
};

// decode_join walks every field with the pull Decoder.
bool decode_join(ByteView in, Join& out) {
  Decoder d(in);
  uint64_t n;
  if (!d.read_map(n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t key;
    if (!d.read_int(key)) return false;
    switch (key) {
      case gc::kScope: d.read_bstr(out.scope); break;
      case gc::kGetPubKeys: {
        uint64_t m;
        if (d.read_array(m)) {
          out.get_pub_keys = true;
          for (uint64_t k = 0; k < m; ++k) d.skip();
        }
        break;
      }
      case gc::kClientCred: d.read_bstr(out.client_cred); break;
      case gc::kCnonce: d.read_bstr(out.cnonce); break;
      case gc::kClientCredVerify: d.read_bstr(out.client_cred_verify); break;
      default: d.skip();
    }
  }
  return d.finish();
}

const Bytes& join_bytes() {
  static const Bytes b = [] {
    std::array<uint8_t, 512> buf{};
    const size_t n = encode_join(fields(), buf);
    return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }();
  return b;
}

void BM_JoinRequest_Decode_Pull(benchmark::State& state) {
  const Bytes& in = join_bytes();
  Join j;
  if (!decode_join(in, j) || j.cnonce.size() != 8 || j.client_cred_verify.size() != 64) {
    state.SkipWithError("join request did not decode");
    return;
  }
  const uint64_t before = g_allocs.load();
  for (auto _ : state) {
    Join out;
    const bool ok = decode_join(in, out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out);
  }
  const uint64_t allocs = g_allocs.load() - before;
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
  state.counters["bytes"] = static_cast<double>(in.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
  if (allocs != 0) state.SkipWithError("the pull decode path allocated");
}
BENCHMARK(BM_JoinRequest_Decode_Pull)->Name("JoinRequest/Decode/Pull");

void BM_JoinRequest_Decode_PullDeterministic(benchmark::State& state) {
  const Bytes& in = join_bytes();
  Limits det;
  det.deterministic = true;
  const uint64_t before = g_allocs.load();
  for (auto _ : state) {
    // Same walk, with the strict deterministic checks (whole map checked once).
    Decoder d(in, det);
    uint64_t n;
    bool ok = d.read_map(n);
    for (uint64_t i = 0; ok && i < n; ++i) {
      int64_t key;
      ByteView b;
      uint64_t m;
      ok = d.read_int(key) && (key == gc::kGetPubKeys ? d.read_array(m) : d.read_bstr(b));
    }
    ok = ok && d.finish();
    benchmark::DoNotOptimize(ok);
  }
  const uint64_t allocs = g_allocs.load() - before;
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
  if (allocs != 0) state.SkipWithError("the pull decode path allocated");
}
BENCHMARK(BM_JoinRequest_Decode_PullDeterministic)->Name("JoinRequest/Decode/PullDeterministic");

void BM_JoinRequest_Encode_Pull(benchmark::State& state) {
  const JoinFields& f = fields();
  std::array<uint8_t, 256> buf{};
  const uint64_t before = g_allocs.load();
  size_t n = 0;
  for (auto _ : state) {
    n = encode_join(f, buf);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(buf.data());
  }
  const uint64_t allocs = g_allocs.load() - before;
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
  state.counters["bytes"] = static_cast<double>(n);
  if (n == 0 || !equal(ByteView(buf.data(), n), join_bytes())) state.SkipWithError("encoding differs");
  if (allocs != 0) state.SkipWithError("the fixed-buffer encode path allocated");
}
BENCHMARK(BM_JoinRequest_Encode_Pull)->Name("JoinRequest/Encode/Pull");

void BM_JoinRequest_Decode_Value(benchmark::State& state) {
  const Bytes& in = join_bytes();
  const uint64_t before = g_allocs.load();
  for (auto _ : state) {
    auto v = decode(in);
    benchmark::DoNotOptimize(v);
  }
  state.counters["allocs_per_iter"] = benchmark::Counter(
      static_cast<double>(g_allocs.load() - before) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_JoinRequest_Decode_Value)->Name("JoinRequest/Decode/Value");

void BM_JoinRequest_Encode_Value(benchmark::State& state) {
  auto v = decode(join_bytes());
  if (!v) {
    state.SkipWithError("decode failed");
    return;
  }
  std::array<uint8_t, 256> buf{};
  const uint64_t before = g_allocs.load();
  for (auto _ : state) {
    Writer w{MutableByteView(buf)};
    Encoder e(w);
    encode(*v, e);
    benchmark::DoNotOptimize(buf.data());
    benchmark::DoNotOptimize(e.ok());
  }
  state.counters["allocs_per_iter"] = benchmark::Counter(
      static_cast<double>(g_allocs.load() - before) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_JoinRequest_Encode_Value)->Name("JoinRequest/Encode/Value");

}  // namespace

BENCHMARK_MAIN();
