// KDC state store benchmarks.
//
//  BM_AddMember/<backend>          one durable add_member transaction per iteration
//  BM_PutKeyMaterial/<backend>     one durable put_key_material (num + 1) per iteration
//  BM_AddMemberGroupCommit/batch:B SqliteStore, durable: add_member inside
//                                  begin_batch/commit_batch windows of B operations
//                                  (group commit: one fsync per window); per iteration
//                                  one add_member, the commit counted in the time
//  BM_StartupLoad100k/Sqlite       SqliteStore::open + load_all() of a database with
//                                  100,000 members in one group (the KDC's startup)
//  BM_LoadAll100k/Memory           load_all() (a deep copy) of a MemoryStore with 100,000
//                                  members
// Counters of the 100k runs: bytes_per_member (heap bytes of the loaded KdcState per
// member, from this binary's operator new with malloc_usable_size) and
// beyond_pubkey (the same minus the heap bytes of the public key itself).
//
// The SQLite databases live under $TMPDIR (default /tmp): durability numbers are
// those of that file system's fsync.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>

#include "kdc/memory_store.h"
#include "kdc/sqlite_store.h"

// ---- live heap byte counter ----
// GCC flags free() on memory from a (replaced) operator new; here both are malloc/free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

static std::atomic<int64_t> g_live_bytes{0};

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept {
  if (!p) return;
  g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }

namespace acekdc::kdc {
namespace {

constexpr int64_t kNow = 1700000000;
constexpr int kBigGroup = 100000;

std::string temp_dir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/acekdc-bench-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  return p ? p : "";
}

GroupConfig big_config() {
  GroupConfig c;
  c.name = "bench";
  c.max_members = 1000000;
  return c;
}

GroupKeyMaterial key(uint64_t num) {
  GroupKeyMaterial k;
  k.num = num;
  k.master_secret = Bytes(16, 0x42);
  k.master_salt = Bytes(8, 0x24);
  k.group_id = Bytes{static_cast<uint8_t>(num >> 24), static_cast<uint8_t>(num >> 16),
                     static_cast<uint8_t>(num >> 8), static_cast<uint8_t>(num)};
  k.exp = kNow + 3600;
  k.established_at = kNow;
  return k;
}

// An Ed25519 COSE_Key is 44-45 bytes: {1: 1, -1: 6, -2: h'32 bytes', 2: kid}.
constexpr size_t kPublicKeyLen = 45;

Member member(uint64_t i) {
  Member m;
  m.node_name = "node-" + std::to_string(i);
  m.sender_id = Bytes{static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                      static_cast<uint8_t>(i)};
  m.roles = (1u << 1) | (1u << 2);
  m.public_key = Bytes(kPublicKeyLen, static_cast<uint8_t>(i));
  m.control_path = "/ctl";
  m.joined_at = kNow;
  m.token_id = Bytes(8, static_cast<uint8_t>(i >> 3));
  return m;
}

std::unique_ptr<Store> make_store(bool sqlite, const std::string& dir) {
  if (!sqlite) return std::make_unique<MemoryStore>();
  auto s = SqliteStore::open(dir + "/kdc.db");
  if (!s) return nullptr;
  return std::move(*s);
}

void BM_AddMember(benchmark::State& state) {
  const bool sqlite = state.range(0) == 1;
  const std::string dir = temp_dir();
  auto store = make_store(sqlite, dir);
  if (!store || !store->create_group(big_config(), key(0))) {
    state.SkipWithError("cannot set up the store");
    return;
  }
  uint64_t i = 0;
  for (auto _ : state) {
    if (!store->add_member("bench", member(i++))) {
      state.SkipWithError("add_member failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  store.reset();
  std::filesystem::remove_all(dir);
}
// Real time: a durable commit mostly waits for fsync, which CPU time does not see.
BENCHMARK(BM_AddMember)->Arg(0)->Arg(1)->ArgName("sqlite")->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_AddMemberGroupCommit(benchmark::State& state) {
  const uint64_t batch = static_cast<uint64_t>(state.range(0));
  const std::string dir = temp_dir();
  auto store = make_store(true, dir);
  if (!store || !store->create_group(big_config(), key(0))) {
    state.SkipWithError("cannot set up the store");
    return;
  }
  uint64_t i = 0;
  for (auto _ : state) {
    if (i % batch == 0 && !store->begin_batch()) {
      state.SkipWithError("begin_batch failed");
      break;
    }
    if (!store->add_member("bench", member(i++))) {
      state.SkipWithError("add_member failed");
      break;
    }
    if (i % batch == 0 && !store->commit_batch()) {
      state.SkipWithError("commit_batch failed");
      break;
    }
  }
  (void)store->commit_batch();
  state.SetItemsProcessed(static_cast<int64_t>(i));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AddMemberGroupCommit)->Arg(1)->Arg(16)->Arg(64)->ArgName("batch")->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_PutKeyMaterial(benchmark::State& state) {
  const bool sqlite = state.range(0) == 1;
  const std::string dir = temp_dir();
  auto store = make_store(sqlite, dir);
  if (!store || !store->create_group(big_config(), key(0))) {
    state.SkipWithError("cannot set up the store");
    return;
  }
  uint64_t num = 0;
  for (auto _ : state) {
    if (!store->put_key_material("bench", key(++num))) {
      state.SkipWithError("put_key_material failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(num));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_PutKeyMaterial)->Arg(0)->Arg(1)->ArgName("sqlite")->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// populate adds kBigGroup members (non-durable while bulk loading).
bool populate(Store& s) {
  if (!s.create_group(big_config(), key(0))) return false;
  for (int i = 0; i < kBigGroup; ++i)
    if (!s.add_member("bench", member(static_cast<uint64_t>(i)))) return false;
  return true;
}

void report_memory(benchmark::State& state, int64_t live_bytes) {
  // Heap bytes of one member's public key vector as malloc hands it out.
  void* p = std::malloc(kPublicKeyLen);
  const double pubkey = static_cast<double>(malloc_usable_size(p));
  std::free(p);
  const double per_member = static_cast<double>(live_bytes) / kBigGroup;
  state.counters["bytes_per_member"] = per_member;
  state.counters["beyond_pubkey"] = per_member - pubkey;
}

void BM_StartupLoad100k_Sqlite(benchmark::State& state) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/kdc.db";
  {
    SqliteOptions bulk;
    bulk.durable = false;
    auto s = SqliteStore::open(path, bulk);
    if (!s || !populate(**s)) {
      state.SkipWithError("cannot populate");
      return;
    }
  }
  int64_t live = 0;
  for (auto _ : state) {
    const int64_t before = g_live_bytes.load();
    auto s = SqliteStore::open(path);
    auto all = (*s)->load_all();
    if (!all || all->groups.size() != 1 || all->groups[0].members.size() != kBigGroup) {
      state.SkipWithError("load_all failed");
      break;
    }
    // Serving needs lookups by node name and Sender ID: both maps are built.
    benchmark::DoNotOptimize(all->groups[0].find_by_sender_id(member(kBigGroup / 2).sender_id));
    state.PauseTiming();
    s->reset();
    live = g_live_bytes.load() - before;
    { KdcState drop = std::move(*all); }
    state.ResumeTiming();
  }
  report_memory(state, live);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StartupLoad100k_Sqlite)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_LoadAll100k_Memory(benchmark::State& state) {
  MemoryStore store;
  if (!populate(store)) {
    state.SkipWithError("cannot populate");
    return;
  }
  int64_t live = 0;
  for (auto _ : state) {
    const int64_t before = g_live_bytes.load();
    auto all = store.load_all();
    benchmark::DoNotOptimize(all);
    state.PauseTiming();
    live = g_live_bytes.load() - before;
    { KdcState drop = std::move(*all); }
    state.ResumeTiming();
  }
  report_memory(state, live);
}
BENCHMARK(BM_LoadAll100k_Memory)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace acekdc::kdc

BENCHMARK_MAIN();
