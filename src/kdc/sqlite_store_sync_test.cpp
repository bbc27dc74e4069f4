// SqliteStore::set_deferred_sync / sync_committed (the pipelined group commit,
// io::SyncPipeline): a window's commit is visible at once, sync_committed makes it
// durable and may run on another thread while the store is written.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kdc/sqlite_store.h"
#include "kdc/test_util.h"

namespace acekdc::kdc {
namespace {

using testing::sample_config;
using testing::sample_key;
using testing::sample_member;
using testing::TempDir;

TEST(SqliteStoreSync, DeferredWindowIsVisibleAtCommitAndSyncs) {
  TempDir dir;
  auto s = SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 1)));
  (*s)->set_deferred_sync(true);
  ASSERT_TRUE((*s)->begin_batch());
  ASSERT_TRUE((*s)->add_member("g1", sample_member("n1", Bytes{0x01})));
  ASSERT_TRUE((*s)->commit_batch());
  // Another connection sees the commit (visible) before any sync.
  auto other = SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(other);
  auto g = (*other)->load_group("g1");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->members.size(), 1u);
  EXPECT_TRUE((*s)->sync_committed());
  // Outside a window the store is durable per operation again; a second window works.
  ASSERT_TRUE((*s)->add_member("g1", sample_member("n2", Bytes{0x02})));
  ASSERT_TRUE((*s)->begin_batch());
  ASSERT_TRUE((*s)->add_member("g1", sample_member("n3", Bytes{0x03})));
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_TRUE((*s)->sync_committed());
  s->reset();
  other->reset();
  auto again = SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->load_group("g1")->members.size(), 3u);
}

TEST(SqliteStoreSync, SyncRunsBesideWritesOnAnotherThread) {
  TempDir dir;
  SqliteOptions o;
  o.cache_groups = true;
  auto s = SqliteStore::open(dir.file("kdc.db"), o);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 1)));
  (*s)->set_deferred_sync(true);
  std::atomic<bool> stop{false};
  std::atomic<int> syncs{0}, sync_failures{0};
  std::thread t([&] {
    while (!stop.load()) {
      if ((*s)->sync_committed()) ++syncs;
      else ++sync_failures;
    }
  });
  // At least 150 windows, and on until the other thread has synced a few times
  // beside them (it may be scheduled late on a loaded machine).
  int windows = 0;
  for (; windows < 150 || (syncs.load() < 3 && windows < 30000); ++windows) {
    const int i = windows;
    ASSERT_TRUE((*s)->begin_batch());
    ASSERT_TRUE((*s)->add_member("g1", sample_member("n" + std::to_string(i),
                                                     Bytes{static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)})));
    ASSERT_TRUE((*s)->commit_batch());
  }
  stop = true;
  t.join();
  EXPECT_GE(syncs.load(), 3);
  EXPECT_EQ(sync_failures.load(), 0);
  EXPECT_TRUE((*s)->sync_committed());
  EXPECT_TRUE((*s)->integrity_check());
  EXPECT_EQ((*s)->load_group("g1")->members.size(), static_cast<size_t>(windows));
}

TEST(SqliteStoreSync, InMemoryHasNothingToSync) {
  auto s = SqliteStore::open(":memory:");
  ASSERT_TRUE(s);
  EXPECT_TRUE((*s)->sync_committed());
}

}  // namespace
}  // namespace acekdc::kdc
