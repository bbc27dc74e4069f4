// The same Store test suite against every backend (MemoryStore, SqliteStore), plus
// SQLite-only tests (persistence, schema, corrupt files) and FailingStore.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
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

struct MemoryBackend {
  static std::unique_ptr<Store> make(const TempDir&) { return std::make_unique<MemoryStore>(); }
};
struct SqliteBackend {
  static std::unique_ptr<Store> make(const TempDir& dir) {
    auto s = SqliteStore::open(dir.file("kdc.db"));
    EXPECT_TRUE(s.has_value()) << (s ? "" : to_string(s.error()));
    return s ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
  }
};

template <class Backend>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Backend::make(dir_);
    ASSERT_NE(store_, nullptr);
  }
  GroupState load(std::string_view name = "g1") {
    auto g = store_->load_group(name);
    EXPECT_TRUE(g.has_value());
    return g ? *g : GroupState{};
  }
  void create(GroupConfig c = sample_config()) {
    ASSERT_TRUE(store_->create_group(c, sample_key(0, 0)));
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// The same suite with SqliteOptions::cache_groups (load_group from the mirrored copy).
struct SqliteCachedBackend {
  static std::unique_ptr<Store> make(const TempDir& dir) {
    SqliteOptions o;
    o.cache_groups = true;
    auto s = SqliteStore::open(dir.file("kdc.db"), o);
    EXPECT_TRUE(s.has_value()) << (s ? "" : to_string(s.error()));
    return s ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
  }
};

using Backends = ::testing::Types<MemoryBackend, SqliteBackend, SqliteCachedBackend>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryBackend>) return "Memory";
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "SqliteCached";
  }
};
TYPED_TEST_SUITE(StoreTest, Backends, BackendNames);

TYPED_TEST(StoreTest, CreateAndLoadGroup) {
  GroupConfig c = sample_config();
  c.sign_info = sign_info_es256();
  c.rekey.min_interval_s = 30;
  c.key_renewal = KeyRenewal::kRekeyGroup;
  ASSERT_TRUE(this->store_->create_group(c, sample_key(0, 7)));
  GroupState g = this->load();
  EXPECT_EQ(g.config, c);
  EXPECT_EQ(g.key, sample_key(0, 7));
  EXPECT_TRUE(g.members.empty());
  ASSERT_EQ(g.used_group_ids.size(), 1u);
  EXPECT_EQ(g.used_group_ids.begin()->first, sample_key(0, 7).group_id);

  auto again = this->store_->create_group(c, sample_key(0, 8));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), StoreError::kConflict);
  EXPECT_EQ(this->load().key, sample_key(0, 7));

  ASSERT_TRUE(this->store_->create_group(sample_config("a-group"), sample_key(0, 1)));
  auto names = this->store_->list_groups();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"a-group", "g1"}));
  auto missing = this->store_->load_group("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreTest, CreateRejectsInvalid) {
  auto r = this->store_->create_group(sample_config(), sample_key(1, 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  GroupKeyMaterial k = sample_key(0, 0);
  k.group_id.clear();
  r = this->store_->create_group(sample_config(), k);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  r = this->store_->create_group(sample_config(""), sample_key(0, 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  EXPECT_TRUE(this->store_->list_groups()->empty());
}

TYPED_TEST(StoreTest, UpdateGroupConfig) {
  this->create();
  GroupConfig c = sample_config();
  c.max_members = 3;
  c.policies.seq_sync_method = cp::gc::kSeqSyncEcho;
  ASSERT_TRUE(this->store_->update_group_config(c));
  EXPECT_EQ(this->load().config, c);
  auto r = this->store_->update_group_config(sample_config("other"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);
}

// group_snapshot: equal to load_group, and unchanged by later writes (copy-on-write
// in a caching backend); a snapshot taken after the writes sees them.
TYPED_TEST(StoreTest, GroupSnapshotIsImmutable) {
  this->create();
  Store& s = *this->store_;
  ASSERT_TRUE(s.add_member("g1", sample_member("alice", {0x01})));
  auto before = s.group_snapshot("g1");
  ASSERT_TRUE(before);
  EXPECT_EQ((*before)->members, this->load().members);
  EXPECT_EQ((*before)->key, this->load().key);
  ASSERT_TRUE(s.add_member("g1", sample_member("bob", {0x02})));
  ASSERT_TRUE(s.put_key_material("g1", sample_key(1, 9)));
  EXPECT_EQ((*before)->members.size(), 1u);
  EXPECT_EQ((*before)->key.num, 0u);
  auto after = s.group_snapshot("g1");
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->members.size(), 2u);
  EXPECT_EQ((*after)->key.num, 1u);
  EXPECT_EQ((*after)->members, this->load().members);
  // Without another holder the cached state may be updated in place; the result
  // is still what the store holds.
  after->reset();
  before->reset();
  ASSERT_TRUE(s.remove_member("g1", "bob", 100));
  auto last = s.group_snapshot("g1");
  ASSERT_TRUE(last);
  EXPECT_EQ((*last)->members.size(), 1u);
  EXPECT_EQ((*last)->retired, this->load().retired);
  EXPECT_EQ((*last)->members, this->load().members);
  auto missing = s.group_snapshot("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreTest, AddMemberEnforcesUniqueness) {
  this->create();
  Store& s = *this->store_;
  ASSERT_TRUE(s.add_member("g1", sample_member("alice", {0x01})));

  auto r = s.add_member("g1", sample_member("bob", {0x01}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);
  r = s.add_member("g1", sample_member("alice", {0x02}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNameTaken);
  r = s.add_member("nope", sample_member("carol", {0x03}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);
  r = s.add_member("g1", sample_member("carol", {}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  r = s.add_member("g1", sample_member("", {0x04}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);

  ASSERT_TRUE(s.add_member("g1", sample_member("bob", {0x00, 0x01})));
  GroupState g = this->load();
  ASSERT_EQ(g.members.size(), 2u);
  EXPECT_EQ(g.members.at("alice"), sample_member("alice", {0x01}));
  ASSERT_NE(g.find_by_sender_id(Bytes{0x00, 0x01}), nullptr);
  EXPECT_EQ(g.find_by_sender_id(Bytes{0x00, 0x01})->node_name, "bob");
  EXPECT_EQ(g.find_by_sender_id(Bytes{0x02}), nullptr);
  EXPECT_EQ(g.joins_since_rekey, 2u);
  EXPECT_EQ(g.leaves_since_rekey, 0u);
}

TYPED_TEST(StoreTest, MaxMembers) {
  GroupConfig c = sample_config();
  c.max_members = 2;
  this->create(c);
  Store& s = *this->store_;
  ASSERT_TRUE(s.add_member("g1", sample_member("a", {1})));
  ASSERT_TRUE(s.add_member("g1", sample_member("b", {2})));
  auto r = s.add_member("g1", sample_member("c", {3}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kFull);
  ASSERT_TRUE(s.remove_member("g1", "a", kNow));
  EXPECT_TRUE(s.add_member("g1", sample_member("c", {3})));
}

TYPED_TEST(StoreTest, RemovedSenderIdNotReusedUnderSameKeyingMaterial) {
  this->create();
  Store& s = *this->store_;
  const Member alice = sample_member("alice", {0x01});
  ASSERT_TRUE(s.add_member("g1", alice));
  auto removed = s.remove_member("g1", "alice", kNow + 5);
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, alice);
  auto again = s.remove_member("g1", "alice", kNow + 6);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), StoreError::kNotFound);

  GroupState g = this->load();
  EXPECT_TRUE(g.members.empty());
  EXPECT_EQ(g.leaves_since_rekey, 1u);
  ASSERT_EQ(g.retired.count(Bytes{0x01}), 1u);
  EXPECT_EQ(g.retired.at(Bytes{0x01}), (RetiredSenderId{{0x01}, kNow + 5, 0}));
  EXPECT_TRUE(g.departed.empty());  // retention 0 by default

  // Same keying material: the ID stays burnt (nonce reuse otherwise).
  auto r = s.add_member("g1", sample_member("bob", {0x01}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);
  // The name is free again.
  ASSERT_TRUE(s.add_member("g1", sample_member("alice", {0x02})));
  // After a rekey the old ID may be given out again.
  ASSERT_TRUE(s.put_key_material("g1", sample_key(1, 1)));
  ASSERT_TRUE(s.add_member("g1", sample_member("bob", {0x01})));
  EXPECT_EQ(this->load().retired.count(Bytes{0x01}), 0u);
}

TYPED_TEST(StoreTest, DepartedKeysKeptForRetention) {
  GroupConfig c = sample_config();
  c.departed_key_retention_s = 100;
  c.sender_id_reuse_delay_s = 10;
  this->create(c);
  Store& s = *this->store_;
  Member m = sample_member("alice", {0x07});
  ASSERT_TRUE(s.add_member("g1", m));
  Member monitor = sample_member("mon", {0x08});
  monitor.public_key.clear();
  ASSERT_TRUE(s.add_member("g1", monitor));
  ASSERT_TRUE(s.remove_member("g1", "alice", kNow));
  ASSERT_TRUE(s.remove_member("g1", "mon", kNow));
  GroupState g = this->load();
  ASSERT_EQ(g.departed.size(), 1u);  // a monitor has no key to keep
  EXPECT_EQ(g.departed.at(Bytes{0x07}),
            (DepartedKey{{0x07}, "alice", m.roles, m.public_key, kNow}));

  auto n = s.purge_departed("g1", kNow + 99);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);  // retired IDs are from the current num: kept too
  ASSERT_TRUE(s.put_key_material("g1", sample_key(1, 1)));
  n = s.purge_departed("g1", kNow + 99);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);  // 0x08's retirement (no departed key, past the reuse delay)
  n = s.purge_departed("g1", kNow + 100);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);  // the departed key and then its retired ID
  g = this->load();
  EXPECT_TRUE(g.departed.empty());
  EXPECT_TRUE(g.retired.empty());
  auto missing = s.purge_departed("nope", kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreTest, UpdateMemberKeyAndSenderId) {
  GroupConfig c = sample_config();
  c.departed_key_retention_s = 60;
  this->create(c);
  Store& s = *this->store_;
  ASSERT_TRUE(s.add_member("g1", sample_member("alice", {0x01})));
  ASSERT_TRUE(s.add_member("g1", sample_member("bob", {0x02})));

  const Bytes new_key(45, 0x22);
  ASSERT_TRUE(s.update_member_key("g1", "alice", new_key));
  EXPECT_EQ(this->load().members.at("alice").public_key, new_key);
  auto r = s.update_member_key("g1", "zed", new_key);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);

  r = s.update_member_sender_id("g1", "alice", Bytes{0x02}, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);
  r = s.update_member_sender_id("g1", "alice", Bytes{0x01}, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);  // its own current ID is not "new"
  r = s.update_member_sender_id("g1", "alice", Bytes{}, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  r = s.update_member_sender_id("g1", "zed", Bytes{0x09}, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);

  ASSERT_TRUE(s.update_member_sender_id("g1", "alice", Bytes{0x03}, kNow));
  GroupState g = this->load();
  EXPECT_EQ(g.members.at("alice").sender_id, Bytes{0x03});
  ASSERT_NE(g.find_by_sender_id(Bytes{0x03}), nullptr);
  EXPECT_EQ(g.find_by_sender_id(Bytes{0x03})->node_name, "alice");
  EXPECT_EQ(g.find_by_sender_id(Bytes{0x01}), nullptr);
  EXPECT_EQ(g.retired.count(Bytes{0x01}), 1u);
  ASSERT_EQ(g.departed.count(Bytes{0x01}), 1u);  // old ID's key still served (REQ13)
  EXPECT_EQ(g.departed.at(Bytes{0x01}).public_key, new_key);
  EXPECT_EQ(g.joins_since_rekey, 2u);  // not a membership change
  EXPECT_EQ(g.leaves_since_rekey, 0u);
  // The retired ID cannot be taken under the same keying material.
  r = s.update_member_sender_id("g1", "bob", Bytes{0x01}, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);
}

TYPED_TEST(StoreTest, KeyMaterialNumAdvancesByOneAndGroupIdsNeverRepeat) {
  this->create();
  Store& s = *this->store_;
  ASSERT_TRUE(s.add_member("g1", sample_member("alice", {0x01})));
  for (uint64_t bad : {uint64_t{0}, uint64_t{2}, uint64_t{100}}) {
    auto r = s.put_key_material("g1", sample_key(bad, 9));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), StoreError::kStale) << bad;
  }
  ASSERT_TRUE(s.put_key_material("g1", sample_key(1, 1)));
  GroupState g = this->load();
  EXPECT_EQ(g.key, sample_key(1, 1));
  EXPECT_EQ(g.joins_since_rekey, 0u);

  // The Group ID of version 0 cannot come back.
  auto r = s.put_key_material("g1", sample_key(2, 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);
  r = s.put_key_material("g1", sample_key(1, 2));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kStale);
  GroupKeyMaterial no_gid = sample_key(2, 2);
  no_gid.group_id.clear();
  r = s.put_key_material("g1", no_gid);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);
  r = s.put_key_material("nope", sample_key(1, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);

  ASSERT_TRUE(s.put_key_material("g1", sample_key(2, 2)));
  g = this->load();
  EXPECT_EQ(g.key.num, 2u);
  EXPECT_EQ(g.used_group_ids.size(), 3u);
  EXPECT_EQ(g.used_group_ids.at(sample_key(0, 1).group_id), 1u);
}

TYPED_TEST(StoreTest, Tokens) {
  Store& s = *this->store_;
  const TokenRecord t1{{0x01}, "client-a", {0x81, 0x82}, kNow + 10};
  const TokenRecord t2{{0x02}, "client-a", {0x83}, 0};
  const TokenRecord t3{{0x03}, "client-b", {0x84}, kNow + 20};
  ASSERT_TRUE(s.put_token(t1));
  ASSERT_TRUE(s.put_token(t2));
  ASSERT_TRUE(s.put_token(t3));
  auto got = s.get_token(Bytes{0x01});
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, t1);
  auto mine = s.tokens_for_client("client-a");
  ASSERT_TRUE(mine);
  EXPECT_EQ(*mine, (std::vector<TokenRecord>{t1, t2}));
  EXPECT_TRUE(s.tokens_for_client("nobody")->empty());

  TokenRecord t1b = t1;
  t1b.scope = {0x99};
  ASSERT_TRUE(s.put_token(t1b));
  EXPECT_EQ(*s.get_token(Bytes{0x01}), t1b);

  auto r = s.put_token(TokenRecord{{}, "x", {}, 0});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kInvalid);

  auto n = s.purge_expired_tokens(kNow + 10);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(s.get_token(Bytes{0x01}).error(), StoreError::kNotFound);
  n = s.purge_expired_tokens(kNow + 1000000);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);  // t3; t2 has no exp
  ASSERT_TRUE(s.get_token(Bytes{0x02}));

  ASSERT_TRUE(s.delete_token(Bytes{0x02}));
  auto d = s.delete_token(Bytes{0x02});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), StoreError::kNotFound);
}

OscoreContextRecord sample_context(uint8_t id) {
  OscoreContextRecord c;
  c.key = ContextKey{{0x37, 0xcb, id}, {id}};
  c.sender_id = {};  // the KDC's Sender ID may be empty
  c.master_secret = Bytes(16, static_cast<uint8_t>(id + 1));
  c.master_salt = Bytes(8, 0x9e);
  c.token_id = {0x01};
  c.seq_reserved = 0;
  return c;
}

TYPED_TEST(StoreTest, OscoreContextsAndSequenceReservation) {
  Store& s = *this->store_;
  OscoreContextRecord c = sample_context(1);
  ASSERT_TRUE(s.put_context(c));
  ASSERT_TRUE(s.put_context(sample_context(2)));
  auto got = s.get_context(c.key);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, c);

  ASSERT_TRUE(s.reserve_sequence(c.key, 1000));
  ASSERT_TRUE(s.reserve_sequence(c.key, 1000));  // idempotent
  auto r = s.reserve_sequence(c.key, 999);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kStale);
  EXPECT_EQ(s.get_context(c.key)->seq_reserved, 1000u);
  r = s.reserve_sequence(ContextKey{{}, {0x55}}, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kNotFound);

  // Re-putting the same keys cannot reopen used sequence numbers...
  ASSERT_TRUE(s.put_context(c));
  EXPECT_EQ(s.get_context(c.key)->seq_reserved, 1000u);
  // ...while a context with new keys starts afresh.
  OscoreContextRecord fresh = c;
  fresh.master_secret = Bytes(16, 0x77);
  ASSERT_TRUE(s.put_context(fresh));
  EXPECT_EQ(*s.get_context(c.key), fresh);

  ASSERT_TRUE(s.delete_context(c.key));
  auto d = s.delete_context(c.key);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), StoreError::kNotFound);
  EXPECT_EQ(s.get_context(c.key).error(), StoreError::kNotFound);
}

TYPED_TEST(StoreTest, LoadAllReturnsEverything) {
  Store& s = *this->store_;
  GroupConfig c2 = sample_config("g2");
  c2.departed_key_retention_s = 50;
  this->create();
  ASSERT_TRUE(s.create_group(c2, sample_key(0, 3)));
  ASSERT_TRUE(s.add_member("g1", sample_member("a", {1})));
  ASSERT_TRUE(s.add_member("g2", sample_member("a", {1})));  // names and IDs are per group
  ASSERT_TRUE(s.add_member("g2", sample_member("b", {2})));
  ASSERT_TRUE(s.remove_member("g2", "b", kNow));
  ASSERT_TRUE(s.put_key_material("g2", sample_key(1, 4)));
  ASSERT_TRUE(s.put_token(TokenRecord{{9}, "c", {1}, 5}));
  ASSERT_TRUE(s.put_context(sample_context(3)));

  auto all = s.load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->groups.size(), 2u);
  EXPECT_EQ(all->groups[0], this->load("g1"));
  EXPECT_EQ(all->groups[1], this->load("g2"));
  EXPECT_EQ(all->groups[1].departed.size(), 1u);
  EXPECT_EQ(all->groups[1].key.num, 1u);
  EXPECT_EQ(all->tokens, (std::vector<TokenRecord>{{{9}, "c", {1}, 5}}));
  EXPECT_EQ(all->contexts, (std::vector<OscoreContextRecord>{sample_context(3)}));
}

TYPED_TEST(StoreTest, AgreesWithGroupStateModel) {
  // A deterministic random walk of operations applied both to the store and to a
  // GroupState: results and final states must agree.
  GroupConfig c = sample_config();
  c.max_members = 12;
  c.departed_key_retention_s = 40;
  c.sender_id_reuse_delay_s = 20;
  this->create(c);
  GroupState model = *GroupState::create(c, sample_key(0, 0));
  Store& s = *this->store_;
  uint64_t x = 12345;
  auto rnd = [&](uint64_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (x >> 33) % n;
  };
  int64_t now = kNow;
  for (int i = 0; i < 300; ++i) {
    now += static_cast<int64_t>(rnd(5));
    const std::string name = "n" + std::to_string(rnd(16));
    const Bytes sid{static_cast<uint8_t>(rnd(20))};
    switch (rnd(6)) {
      case 0:
      case 1: {
        Member m = sample_member(name, sid, now);
        auto a = s.add_member("g1", m);
        auto b = model.add_member(m);
        ASSERT_EQ(a.has_value(), b.has_value()) << i;
        if (!a) {
          EXPECT_EQ(a.error(), b.error()) << i;
        }
        break;
      }
      case 2: {
        auto a = s.remove_member("g1", name, now);
        auto b = model.remove_member(name, now);
        ASSERT_EQ(a.has_value(), b.has_value()) << i;
        if (a) {
          EXPECT_EQ(*a, *b);
        }
        break;
      }
      case 3: {
        auto a = s.update_member_sender_id("g1", name, sid, now);
        auto b = model.update_member_sender_id(name, sid, now);
        ASSERT_EQ(a.has_value(), b.has_value()) << i;
        if (!a) {
          EXPECT_EQ(a.error(), b.error()) << i;
        }
        break;
      }
      case 4: {
        GroupKeyMaterial k = sample_key(model.key.num + rnd(2), static_cast<uint8_t>(rnd(40)), now);
        auto a = s.put_key_material("g1", k);
        auto b = model.put_key_material(k);
        ASSERT_EQ(a.has_value(), b.has_value()) << i;
        if (!a) {
          EXPECT_EQ(a.error(), b.error()) << i;
        }
        break;
      }
      case 5: {
        auto a = s.purge_departed("g1", now);
        ASSERT_TRUE(a);
        EXPECT_EQ(*a, model.purge_departed(now)) << i;
        break;
      }
    }
  }
  EXPECT_EQ(this->load(), model);
}

// ---- FailingStore ----

TEST(FailingStoreTest, FailsTheNthWriteOnly) {
  MemoryStore inner;
  FailingStore s(inner);
  ASSERT_TRUE(s.create_group(sample_config(), sample_key(0, 0)));
  s.fail_write(2);
  ASSERT_TRUE(s.add_member("g1", sample_member("a", {1})));
  auto r = s.add_member("g1", sample_member("b", {2}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kIo);
  EXPECT_EQ(inner.load_group("g1")->members.size(), 1u);  // not forwarded
  EXPECT_TRUE(s.load_group("g1"));                        // reads pass
  ASSERT_TRUE(s.add_member("g1", sample_member("b", {2})));
  EXPECT_EQ(s.num_writes(), 3u);
}

TEST(FailingStoreTest, AfterWriteAndSticky) {
  MemoryStore inner;
  FailingStore s(inner);
  ASSERT_TRUE(s.create_group(sample_config(), sample_key(0, 0)));
  s.fail_write(1, FailingStore::Mode::kAfterWrite, StoreError::kBusy, /*sticky=*/true);
  auto r = s.put_key_material("g1", sample_key(1, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kBusy);
  EXPECT_EQ(inner.load_group("g1")->key.num, 1u);  // applied, but reported as failed
  auto t = s.put_token(TokenRecord{{1}, "c", {}, 0});
  ASSERT_FALSE(t);
  EXPECT_EQ(inner.get_token(Bytes{1})->client_id, "c");
  s.fail_write(0);
  EXPECT_TRUE(s.purge_expired_tokens(kNow));
}

// ---- SQLite only ----

TEST(SqliteStoreTest, StateSurvivesReopen) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  {
    auto s = SqliteStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
    ASSERT_TRUE((*s)->add_member("g1", sample_member("alice", {0x01})));
    ASSERT_TRUE((*s)->put_key_material("g1", sample_key(1, 1)));
    OscoreContextRecord c = sample_context(1);
    ASSERT_TRUE((*s)->put_context(c));
    ASSERT_TRUE((*s)->reserve_sequence(c.key, 2000));
  }
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  auto v = (*s)->schema_version();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, SqliteStore::kCurrentSchemaVersion);
  auto g = (*s)->load_group("g1");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, sample_key(1, 1));
  EXPECT_EQ(g->members.at("alice"), sample_member("alice", {0x01}));
  EXPECT_EQ((*s)->get_context(sample_context(1).key)->seq_reserved, 2000u);
  EXPECT_TRUE((*s)->integrity_check());

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SqliteStoreTest, UsesWalAndFullSync) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  // journal_mode=WAL is persistent in the file: check it from another connection.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(h);
}

TEST(SqliteStoreTest, RejectsNewerSchema) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  ASSERT_TRUE(SqliteStore::open(path));
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "INSERT INTO schema_migrations VALUES (99, 0)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  auto s = SqliteStore::open(path);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), StoreError::kSchemaTooNew);
}

TEST(SqliteStoreTest, NotADatabase) {
  TempDir dir;
  const std::string path = dir.file("garbage.db");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::string junk(8192, 'x');
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  ::close(fd);
  auto s = SqliteStore::open(path);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), StoreError::kCorrupt);
}

TEST(SqliteStoreTest, UnopenablePath) {
  auto s = SqliteStore::open("/nonexistent-dir-acekdc/kdc.db");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), StoreError::kIo);
}

TEST(SqliteStoreTest, CorruptConfigBlobIsReported) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  {
    auto s = SqliteStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
  }
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "UPDATE kdc_group SET config = x'a1'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->load_group("g1").error(), StoreError::kCorrupt);
  EXPECT_EQ((*s)->load_all().error(), StoreError::kCorrupt);
  EXPECT_EQ((*s)->add_member("g1", sample_member("a", {1})).error(), StoreError::kCorrupt);
}

TEST(SqliteStoreTest, ConcurrentFirstOpenMigratesOnce) {
  for (int round = 0; round < 5; ++round) {
    TempDir dir;
    const std::string path = dir.file("kdc.db");
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    std::vector<std::string> errors(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        auto s = SqliteStore::open(path);
        if (!s) {
          errors[t] = to_string(s.error());
          return;
        }
        auto v = (*s)->schema_version();
        if (v && *v == SqliteStore::kCurrentSchemaVersion) {
          ++ok;
        } else {
          errors[t] = v ? "version " + std::to_string(*v) : std::string(to_string(v.error()));
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 4) << errors[0] << "|" << errors[1] << "|" << errors[2] << "|" << errors[3];
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM schema_migrations", -1, &st, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), SqliteStore::kCurrentSchemaVersion);
    sqlite3_finalize(st);
    sqlite3_close(h);
  }
}

TEST(SqliteStoreTest, BusyWhenAnotherWriterHoldsTheLock) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  SqliteOptions impatient;
  impatient.busy_timeout_ms = 50;
  auto s = SqliteStore::open(path, impatient);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto r = (*s)->add_member("g1", sample_member("a", {1}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kBusy);
  auto k = (*s)->put_key_material("g1", sample_key(1, 1));
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error(), StoreError::kBusy);
  EXPECT_TRUE((*s)->load_group("g1"));  // readers are not blocked in WAL mode
  ASSERT_EQ(sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(h);
  ASSERT_TRUE((*s)->add_member("g1", sample_member("a", {1})));  // and nothing is stuck
  EXPECT_EQ((*s)->load_group("g1")->key.num, 0u);
}

TEST(SqliteStoreTest, SecondConnectionSeesCommittedWrites) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  auto a = SqliteStore::open(path);
  auto b = SqliteStore::open(path);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->create_group(sample_config(), sample_key(0, 0)));
  ASSERT_TRUE((*b)->add_member("g1", sample_member("x", {1})));
  auto r = (*a)->add_member("g1", sample_member("y", {1}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kConflict);  // checked in the database, not a cache
  ASSERT_TRUE((*a)->put_key_material("g1", sample_key(1, 1)));
  auto stale = (*b)->put_key_material("g1", sample_key(1, 2));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error(), StoreError::kStale);
}

// ---- group commit (begin_batch / commit_batch) ----

// members_seen_by_other: the member count a second connection (another process) reads.
size_t members_seen_by_other(const std::string& path) {
  sqlite3* h = nullptr;
  size_t n = 9999;
  if (sqlite3_open(path.c_str(), &h) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM member", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      n = static_cast<size_t>(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return n;
}

TEST(SqliteBatchTest, WritesBecomeDurableOnlyAtCommit) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
  ASSERT_FALSE((*s)->in_batch());
  ASSERT_TRUE((*s)->begin_batch());
  EXPECT_TRUE((*s)->in_batch());
  auto again = (*s)->begin_batch();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), StoreError::kConflict);
  ASSERT_TRUE((*s)->add_member("g1", sample_member("a", {1})));
  ASSERT_TRUE((*s)->add_member("g1", sample_member("b", {2})));
  ASSERT_TRUE((*s)->put_key_material("g1", sample_key(1, 1)));
  // Inside the batch the store reads its own writes and enforces its rules on them.
  EXPECT_EQ((*s)->load_group("g1")->members.size(), 2u);
  auto dup = (*s)->add_member("g1", sample_member("c", {1}));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error(), StoreError::kConflict);
  auto stale = (*s)->put_key_material("g1", sample_key(1, 2));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error(), StoreError::kStale);
  // Nothing is visible (durable) to anyone else yet.
  EXPECT_EQ(members_seen_by_other(path), 0u);
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_FALSE((*s)->in_batch());
  EXPECT_EQ(members_seen_by_other(path), 2u);
  EXPECT_EQ((*s)->batches_committed(), 1u);
  EXPECT_EQ((*s)->batched_ops(), 3u);  // the two failed operations were not counted
  // A failed operation inside the batch left nothing behind (its savepoint was rolled back).
  auto g = (*s)->load_group("g1");
  EXPECT_EQ(g->key, sample_key(1, 1));
  EXPECT_EQ(g->members.count("c"), 0u);
  EXPECT_TRUE((*s)->integrity_check());
  // Without a window, operations commit one by one again.
  ASSERT_TRUE((*s)->add_member("g1", sample_member("d", {4})));
  EXPECT_EQ(members_seen_by_other(path), 3u);
  EXPECT_TRUE((*s)->commit_batch());  // no window: nothing to do
}

TEST(SqliteBatchTest, ClosingWithoutCommitLosesTheBatch) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  {
    auto s = SqliteStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
    ASSERT_TRUE((*s)->begin_batch());
    ASSERT_TRUE((*s)->add_member("g1", sample_member("a", {1})));
    ASSERT_TRUE((*s)->put_key_material("g1", sample_key(1, 1)));
  }
  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  auto g = (*s)->load_group("g1");
  EXPECT_EQ(g->members.size(), 0u);
  EXPECT_EQ(g->key.num, 0u);
}

TEST(SqliteBatchTest, EmptyAndReadOnlyBatchesCommitNothing) {
  TempDir dir;
  auto s = SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->create_group(sample_config(), sample_key(0, 0)));
  ASSERT_TRUE((*s)->begin_batch());
  ASSERT_TRUE((*s)->commit_batch());
  ASSERT_TRUE((*s)->begin_batch());
  EXPECT_TRUE((*s)->load_group("g1"));
  auto missing = (*s)->remove_member("g1", "nobody", kNow);
  EXPECT_FALSE(missing);
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_EQ((*s)->batches_committed(), 0u);
}

TEST(SqliteBatchTest, BatchHoldsTheWriteLockUntilCommit) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  SqliteOptions impatient;
  impatient.busy_timeout_ms = 50;
  auto a = SqliteStore::open(path, impatient);
  auto b = SqliteStore::open(path, impatient);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->create_group(sample_config(), sample_key(0, 0)));
  ASSERT_TRUE((*a)->begin_batch());
  ASSERT_TRUE((*a)->add_member("g1", sample_member("a", {1})));
  auto r = (*b)->add_member("g1", sample_member("b", {1}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StoreError::kBusy);
  ASSERT_TRUE((*a)->commit_batch());
  auto after = (*b)->add_member("g1", sample_member("b", {1}));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), StoreError::kConflict);  // sees the committed batch
}

TEST(SqliteBatchTest, ConcurrentThreadsShareOneCommit) {
  TempDir dir;
  auto s = SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(s);
  GroupConfig c = sample_config();
  c.max_members = 1000;
  ASSERT_TRUE((*s)->create_group(c, sample_key(0, 0)));
  ASSERT_TRUE((*s)->begin_batch());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int n = t * 25 + i;
        if ((*s)->add_member("g1", sample_member("m" + std::to_string(n),
                                                 {static_cast<uint8_t>(n + 1)})))
          ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(ok.load(), 100);
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_EQ((*s)->batches_committed(), 1u);
  EXPECT_EQ((*s)->batched_ops(), 100u);
  EXPECT_EQ((*s)->load_group("g1")->members.size(), 100u);
}

TEST(MemoryBatchTest, AcceptedAndIgnored) {
  MemoryStore s;
  ASSERT_TRUE(s.begin_batch());
  ASSERT_TRUE(s.create_group(sample_config(), sample_key(0, 0)));
  ASSERT_TRUE(s.commit_batch());
  EXPECT_TRUE(s.load_group("g1"));
}

// ---- SqliteOptions::cache_groups ----

TEST(SqliteCacheTest, CachedGroupFollowsWritesAndOtherConnections) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  SqliteOptions cached;
  cached.cache_groups = true;
  auto a = SqliteStore::open(path, cached);
  auto b = SqliteStore::open(path);
  ASSERT_TRUE(a && b);
  GroupConfig c = sample_config();
  c.departed_key_retention_s = 100;
  ASSERT_TRUE((*a)->create_group(c, sample_key(0, 0)));
  ASSERT_TRUE((*a)->load_group("g1"));  // now cached
  ASSERT_TRUE((*a)->add_member("g1", sample_member("x", {1})));
  ASSERT_TRUE((*a)->add_member("g1", sample_member("y", {2})));
  ASSERT_TRUE((*a)->put_key_material("g1", sample_key(1, 1)));
  ASSERT_TRUE((*a)->remove_member("g1", "y", kNow));
  ASSERT_TRUE((*a)->update_member_sender_id("g1", "x", Bytes{3}, kNow));
  ASSERT_TRUE((*a)->update_member_key("g1", "x", Bytes(45, 0x22)));
  // The cached copy equals what the database holds (read by an uncached connection).
  EXPECT_EQ(*(*a)->load_group("g1"), *(*b)->load_group("g1"));
  // Another connection writes: the cached copy is dropped and reloaded.
  ASSERT_TRUE((*b)->add_member("g1", sample_member("z", {4})));
  ASSERT_TRUE((*b)->put_key_material("g1", sample_key(2, 2)));
  auto g = (*a)->load_group("g1");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->key, sample_key(2, 2));
  EXPECT_NE(g->find_member("z"), nullptr);
  EXPECT_EQ(*g, *(*b)->load_group("g1"));
  // A rule the database enforces still holds through the cache.
  auto dup = (*a)->add_member("g1", sample_member("w", {4}));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error(), StoreError::kConflict);
  EXPECT_EQ(*(*a)->load_group("g1"), *(*b)->load_group("g1"));
}

TEST(SqliteCacheTest, UncommittedBatchIsNotKept) {
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  SqliteOptions cached;
  cached.cache_groups = true;
  {
    auto a = SqliteStore::open(path, cached);
    ASSERT_TRUE(a);
    ASSERT_TRUE((*a)->create_group(sample_config(), sample_key(0, 0)));
    ASSERT_TRUE((*a)->begin_batch());
    ASSERT_TRUE((*a)->add_member("g1", sample_member("x", {1})));
    EXPECT_EQ((*a)->load_group("g1")->members.size(), 1u);  // the batch reads its own write
  }  // closed without commit_batch: the batch is lost
  auto a = SqliteStore::open(path, cached);
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)->load_group("g1")->members.size(), 0u);
}

}  // namespace
}  // namespace acekdc::kdc
