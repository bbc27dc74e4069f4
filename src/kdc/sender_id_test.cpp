#include "kdc/sender_id.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "kdc/memory_store.h"
#include "kdc/sqlite_store.h"
#include "kdc/test_util.h"

namespace acekdc::kdc {
namespace {

using testing::sample_config;
using testing::sample_key;
using testing::sample_member;
using testing::TempDir;

constexpr int64_t kNow = 1700000000;

GroupState empty_group(GroupConfig c = sample_config()) {
  return *GroupState::create(std::move(c), sample_key(0, 0));
}

TEST(SenderIdTest, OneByteWhilePossibleThenTwo) {
  GroupState g = empty_group();
  FakeRandom rng(7);
  std::set<Bytes> seen;
  for (int i = 0; i < 256; ++i) {
    auto id = allocate_sender_id(g, kNow, rng);
    ASSERT_TRUE(id) << i;
    ASSERT_EQ(id->size(), 1u) << i;
    ASSERT_TRUE(seen.insert(*id).second) << i;
    ASSERT_TRUE(g.add_member(sample_member("n" + std::to_string(i), *id)));
  }
  for (int i = 0; i < 300; ++i) {
    auto id = allocate_sender_id(g, kNow, rng);
    ASSERT_TRUE(id);
    ASSERT_EQ(id->size(), 2u);
    ASSERT_TRUE(seen.insert(*id).second);
    ASSERT_TRUE(g.add_member(sample_member("m" + std::to_string(i), *id)));
  }
}

TEST(SenderIdTest, DoesNotReuseReleasedIdsSoon) {
  GroupConfig c = sample_config();
  c.sender_id_reuse_delay_s = 1000;
  GroupState g = empty_group(c);
  FakeRandom rng(3);
  // Fill the 1-byte space, then free one ID.
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(g.add_member(sample_member("n" + std::to_string(i), {static_cast<uint8_t>(i)})));
  }
  ASSERT_TRUE(g.remove_member("n42", kNow));
  // Under the same keying material it is not available at all.
  auto id = allocate_sender_id(g, kNow + 5000, rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->size(), 2u);
  // After a rekey but within the reuse delay: still not chosen.
  ASSERT_TRUE(g.put_key_material(sample_key(1, 1, kNow + 10)));
  id = allocate_sender_id(g, kNow + 999, rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->size(), 2u);
  // Past the delay the short ID is preferred again.
  id = allocate_sender_id(g, kNow + 1000, rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, Bytes{42});
}

TEST(SenderIdTest, PrefersNeverUsedThenOldestReleased) {
  GroupConfig c = sample_config();
  c.sender_id_reuse_delay_s = 10;
  GroupState g = empty_group(c);
  FakeRandom rng(5);
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(g.add_member(sample_member("n" + std::to_string(i), {static_cast<uint8_t>(i)})));
  }
  ASSERT_TRUE(g.remove_member("n9", kNow + 1));
  ASSERT_TRUE(g.remove_member("n3", kNow));
  ASSERT_TRUE(g.remove_member("n200", kNow + 2));
  ASSERT_TRUE(g.put_key_material(sample_key(1, 1)));
  auto id = allocate_sender_id(g, kNow + 100, rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, Bytes{3});  // released longest ago

  // With only a few members, fresh IDs are picked rather than released ones.
  GroupState h = empty_group(c);
  ASSERT_TRUE(h.add_member(sample_member("a", {0x10})));
  ASSERT_TRUE(h.remove_member("a", kNow));
  ASSERT_TRUE(h.put_key_material(sample_key(1, 1)));
  for (int i = 0; i < 50; ++i) {
    auto x = allocate_sender_id(h, kNow + 100, rng);
    ASSERT_TRUE(x);
    EXPECT_NE(*x, Bytes{0x10});
  }
}

TEST(SenderIdTest, RespectsMaxLength) {
  GroupState g = empty_group();
  FakeRandom rng(1);
  SenderIdOptions o;
  o.max_len = 1;
  for (int i = 0; i < 256; ++i) {
    auto id = allocate_sender_id(g, kNow, rng, o);
    ASSERT_TRUE(id);
    ASSERT_TRUE(g.add_member(sample_member("n" + std::to_string(i), *id)));
  }
  auto full = allocate_sender_id(g, kNow, rng, o);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), StoreError::kFull);
}

TEST(SenderIdTest, RetriesWhenAnotherWriterTookTheId) {
  MemoryStore store;
  ASSERT_TRUE(store.create_group(sample_config(), sample_key(0, 0)));
  GroupState stale = *store.load_group("g1");
  // Another KDC node fills every 1-byte ID but 0x05 behind our back.
  for (int i = 0; i < 256; ++i) {
    if (i == 5) continue;
    ASSERT_TRUE(store.add_member("g1", sample_member("o" + std::to_string(i),
                                                     {static_cast<uint8_t>(i)})));
  }
  FakeRandom rng(11);
  auto id = add_member_with_new_sender_id(store, stale, sample_member("me", {}), kNow, rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, Bytes{5});
  EXPECT_EQ(stale, *store.load_group("g1"));  // the cache caught up
  EXPECT_EQ(stale.members.at("me").sender_id, Bytes{5});
}

TEST(SenderIdTest, StoreErrorsReachTheCaller) {
  MemoryStore inner;
  FailingStore store(inner);
  ASSERT_TRUE(store.create_group(sample_config(), sample_key(0, 0)));
  GroupState cache = *store.load_group("g1");
  FakeRandom rng(2);

  store.fail_write(1);  // clean failure: nothing written
  auto r = add_member_with_new_sender_id(store, cache, sample_member("a", {}), kNow, rng);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kIo);
  EXPECT_TRUE(cache.members.empty());
  EXPECT_TRUE(inner.load_group("g1")->members.empty());

  store.fail_write(1, FailingStore::Mode::kAfterWrite);  // lost acknowledgement
  r = add_member_with_new_sender_id(store, cache, sample_member("a", {}), kNow, rng);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kIo);
  EXPECT_TRUE(cache.members.empty());
  EXPECT_EQ(inner.load_group("g1")->members.size(), 1u);  // hence: reload after kIo
  // A retry of the same join is then refused by name, not duplicated.
  r = add_member_with_new_sender_id(store, cache, sample_member("a", {}), kNow, rng);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNameTaken);

  store.fail_write(1);
  auto renewed = renew_sender_id(store, cache, "a", kNow, rng);
  ASSERT_FALSE(renewed);
  EXPECT_EQ(renewed.error(), StoreError::kIo);
  cache = *store.load_group("g1");
  const Bytes old_id = cache.members.at("a").sender_id;
  renewed = renew_sender_id(store, cache, "a", kNow, rng);
  ASSERT_TRUE(renewed);
  EXPECT_NE(*renewed, old_id);
  EXPECT_EQ(inner.load_group("g1")->members.at("a").sender_id, *renewed);
  EXPECT_EQ(cache, *inner.load_group("g1"));
}

// Concurrent joins through separate stores (separate caches, separate SQLite
// connections, as separate KDC nodes would have) never produce a duplicate.
TEST(SenderIdTest, ConcurrentJoinsNeverCollide) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  SqliteOptions fast;
  fast.durable = false;  // collisions are about locking, not fsync
  {
    auto s = SqliteStore::open(path, fast);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
  }
  constexpr int kThreads = 3;
  constexpr int kJoinsEach = 120;  // 360 members: spills into 2-byte IDs
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto s = SqliteStore::open(path, fast);
      if (!s) {
        ++failures;
        return;
      }
      GroupState cache = *(*s)->load_group("g1");
      // The same seed everywhere: the nodes propose the same IDs and must collide.
      FakeRandom rng(99);
      for (int i = 0; i < kJoinsEach; ++i) {
        auto id = add_member_with_new_sender_id(
            **s, cache, sample_member("t" + std::to_string(t) + "-" + std::to_string(i), {}),
            kNow, rng, {}, /*max_attempts=*/64);
        if (!id) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  GroupState g = *(*s)->load_group("g1");
  ASSERT_EQ(g.members.size(), static_cast<size_t>(kThreads * kJoinsEach));
  std::set<Bytes> ids;
  size_t one_byte = 0;
  for (const auto& [name, m] : g.members) {
    EXPECT_TRUE(ids.insert(m.sender_id).second);
    EXPECT_LE(m.sender_id.size(), 2u);
    one_byte += m.sender_id.size() == 1;
  }
  EXPECT_EQ(one_byte, 256u);  // the whole 1-byte space was used first
}

TEST(SenderIdTest, ConcurrentJoinsOnSharedMemoryStore) {
  MemoryStore store;
  ASSERT_TRUE(store.create_group(sample_config(), sample_key(0, 0)));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      GroupState cache = *store.load_group("g1");
      FakeRandom rng(1234);
      for (int i = 0; i < 200; ++i) {
        if (!add_member_with_new_sender_id(store, cache,
                                           sample_member(std::to_string(t) + "/" + std::to_string(i), {}),
                                           kNow, rng, {}, 64)) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  GroupState g = *store.load_group("g1");
  EXPECT_EQ(g.members.size(), 800u);
  EXPECT_EQ(g.by_sender_id.size(), 800u);
}

}  // namespace
}  // namespace acekdc::kdc
