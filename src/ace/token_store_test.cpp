#include "ace/token_store.h"

#include <gtest/gtest.h>

namespace acekdc::ace {
namespace {

ClientRecord record(uint8_t rid, std::optional<Bytes> ctx, Bytes material, size_t num_tokens = 1) {
  ClientRecord r;
  r.key = ContextKey{Bytes{rid}, std::move(ctx)};
  r.sender_id = Bytes{0x42};
  r.material_id = std::move(material);
  for (size_t i = 0; i < num_tokens; ++i) {
    StoredToken t;
    t.cti = Bytes{static_cast<uint8_t>(i)};
    t.exp = 1000 + static_cast<int64_t>(i);
    t.raw = Bytes(40, static_cast<uint8_t>(i));
    r.tokens.push_back(std::move(t));
  }
  return r;
}

std::vector<Bytes> recipient_ids(const MemoryTokenStore& s) {
  std::vector<Bytes> out;
  for (const auto& k : s.keys()) out.push_back(k.recipient_id);
  return out;
}

TEST(MemoryTokenStoreTest, EraseKeepsOrderAndEveryIndex) {
  MemoryTokenStore s;
  for (uint8_t i = 0; i < 5; ++i) ASSERT_TRUE(s.put(record(i, std::nullopt, Bytes{0xa0, i})));
  ASSERT_TRUE(s.erase(ContextKey{Bytes{1}, std::nullopt}));
  ASSERT_TRUE(s.erase(ContextKey{Bytes{3}, std::nullopt}));
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{0}, {2}, {4}}));
  EXPECT_FALSE(s.contains(ContextKey{Bytes{1}, std::nullopt}));
  for (uint8_t i : {0, 2, 4}) {
    auto r = s.get(ContextKey{Bytes{i}, std::nullopt});
    ASSERT_TRUE(r) << int(i);
    EXPECT_EQ(r->material_id, (Bytes{0xa0, i}));
    auto k = s.find_material(Bytes{0xa0, i});
    ASSERT_TRUE(k) << int(i);
    EXPECT_EQ(k->recipient_id, Bytes{i});
  }
  EXPECT_FALSE(s.find_material(Bytes{0xa0, 1}));
  EXPECT_FALSE(s.find_material(Bytes{0xa0, 3}));
  EXPECT_EQ(s.size(), 3u);
}

TEST(MemoryTokenStoreTest, EraseOfTheFirstHolderOfAMaterialHandsItToTheNext) {
  MemoryTokenStore s;
  ASSERT_TRUE(s.put(record(0, std::nullopt, Bytes{0x01})));
  ASSERT_TRUE(s.put(record(1, Bytes{0x77}, Bytes{0xee})));  // same material, two records
  ASSERT_TRUE(s.put(record(2, std::nullopt, Bytes{0x02})));
  ASSERT_TRUE(s.put(record(3, std::nullopt, Bytes{0xee})));
  ASSERT_EQ(s.find_material(Bytes{0xee})->recipient_id, Bytes{1});
  ASSERT_TRUE(s.erase(ContextKey{Bytes{1}, Bytes{0x77}}));
  auto k = s.find_material(Bytes{0xee});
  ASSERT_TRUE(k);
  EXPECT_EQ(k->recipient_id, Bytes{3});
  ASSERT_TRUE(s.erase(ContextKey{Bytes{3}, std::nullopt}));
  EXPECT_FALSE(s.find_material(Bytes{0xee}));
  EXPECT_EQ(s.find_material(Bytes{0x02})->recipient_id, Bytes{2});
  // Erasing an absent key is a no-op.
  ASSERT_TRUE(s.erase(ContextKey{Bytes{9}, std::nullopt}));
  EXPECT_EQ(s.size(), 2u);
}

TEST(MemoryTokenStoreTest, PutMovedStoresTheRecordAndReplacesBySameKey) {
  MemoryTokenStore s(2);
  ClientRecord a = record(0, std::nullopt, Bytes{0x01}, 2);
  ASSERT_TRUE(s.put_moved(std::move(a)));
  auto got = s.get(ContextKey{Bytes{0}, std::nullopt});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->tokens.size(), 2u);
  EXPECT_EQ(got->tokens[1].raw, Bytes(40, 1));
  // Same key, another material: replaced, the material index follows.
  ASSERT_TRUE(s.put_moved(record(0, std::nullopt, Bytes{0x02}, 1)));
  EXPECT_EQ(s.size(), 1u);
  EXPECT_FALSE(s.find_material(Bytes{0x01}));
  EXPECT_EQ(s.find_material(Bytes{0x02})->recipient_id, Bytes{0});
  ASSERT_TRUE(s.put_moved(record(1, std::nullopt, Bytes{0x03})));
  auto full = s.put_moved(record(2, std::nullopt, Bytes{0x04}));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), StoreError::kFull);
}

TEST(MemoryTokenStoreTest, CopyTokensIfCopiesOnlyTheKeptOnesInOrder) {
  MemoryTokenStore s;
  ASSERT_TRUE(s.put(record(0, std::nullopt, Bytes{0x01}, 4)));
  auto kept = s.copy_tokens_if(ContextKey{Bytes{0}, std::nullopt},
                               [](const StoredToken& t) { return t.exp % 2 == 1; });
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].exp, 1001);
  EXPECT_EQ(kept[1].exp, 1003);
  EXPECT_EQ(s.get(ContextKey{Bytes{0}, std::nullopt})->tokens.size(), 4u) << "the record is unchanged";
  EXPECT_TRUE(s.copy_tokens_if(ContextKey{Bytes{5}, std::nullopt}, [](const StoredToken&) { return true; }).empty());
}


TEST(MemoryTokenStoreTest, ReplaceTakesTheOldRecordsRoomAndPutsTheNewOneLast) {
  MemoryTokenStore s(3);
  ASSERT_TRUE(s.put(record(0, std::nullopt, Bytes{0x01})));
  ASSERT_TRUE(s.put(record(1, std::nullopt, Bytes{0xee})));
  ASSERT_TRUE(s.put(record(2, std::nullopt, Bytes{0x02})));
  // Full: a re-posted material (same material, new key) still fits.
  ASSERT_FALSE(s.put(record(3, std::nullopt, Bytes{0xee})));
  ASSERT_TRUE(s.replace(ContextKey{Bytes{1}, std::nullopt}, record(3, std::nullopt, Bytes{0xee}, 2)));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{0}, {2}, {3}}));
  EXPECT_FALSE(s.contains(ContextKey{Bytes{1}, std::nullopt}));
  EXPECT_TRUE(s.contains_id(Bytes{3}, std::nullopt));
  EXPECT_FALSE(s.contains_id(Bytes{3}, Bytes{}));  // an empty ID Context is not an absent one
  EXPECT_EQ(s.get(ContextKey{Bytes{3}, std::nullopt})->tokens.size(), 2u);
  EXPECT_EQ(s.find_material(Bytes{0xee})->recipient_id, Bytes{3});
  // Another material, and an ID Context.
  ASSERT_TRUE(s.replace(ContextKey{Bytes{0}, std::nullopt}, record(0, Bytes{0x77}, Bytes{0x05})));
  EXPECT_FALSE(s.find_material(Bytes{0x01}));
  EXPECT_EQ(s.find_material(Bytes{0x05})->id_context, Bytes{0x77});
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{2}, {3}, {0}}));
  // Old record absent, or the same key: put_moved.
  ASSERT_TRUE(s.replace(ContextKey{Bytes{9}, std::nullopt}, record(2, std::nullopt, Bytes{0x06})));
  EXPECT_EQ(s.find_material(Bytes{0x06})->recipient_id, Bytes{2});
  EXPECT_FALSE(s.find_material(Bytes{0x02}));
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{2}, {3}, {0}}));
  EXPECT_FALSE(s.replace(ContextKey{Bytes{9}, std::nullopt}, record(4, std::nullopt, Bytes{0x07})));  // full
  // The new key held by a third record: it is overwritten, the old one erased.
  ASSERT_TRUE(s.replace(ContextKey{Bytes{2}, std::nullopt}, record(3, std::nullopt, Bytes{0x08})));
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{3}, {0}}));
  EXPECT_FALSE(s.find_material(Bytes{0xee}));
  EXPECT_EQ(s.find_material(Bytes{0x08})->recipient_id, Bytes{3});
  // Erased slots are reused; order stays insertion order.
  ASSERT_TRUE(s.put(record(5, std::nullopt, Bytes{0x09})));
  EXPECT_EQ(recipient_ids(s), (std::vector<Bytes>{{3}, {0}, {5}}));
}

TEST(MemoryTokenStoreTest, ReplaceOfTheEarliestOfTwoHoldersHandsTheMaterialOn) {
  MemoryTokenStore s;
  ASSERT_TRUE(s.put(record(0, std::nullopt, Bytes{0xee})));
  ASSERT_TRUE(s.put(record(1, std::nullopt, Bytes{0xee})));
  ASSERT_EQ(s.find_material(Bytes{0xee})->recipient_id, Bytes{0});
  // 0 is replaced by 2 (same material, now the last): 1 is the earliest holder.
  ASSERT_TRUE(s.replace(ContextKey{Bytes{0}, std::nullopt}, record(2, std::nullopt, Bytes{0xee})));
  EXPECT_EQ(s.find_material(Bytes{0xee})->recipient_id, Bytes{1});
  ASSERT_TRUE(s.erase(ContextKey{Bytes{1}, std::nullopt}));
  EXPECT_EQ(s.find_material(Bytes{0xee})->recipient_id, Bytes{2});
  // A put under an existing key with another material moves the material index.
  ASSERT_TRUE(s.put(record(2, std::nullopt, Bytes{0xdd})));
  EXPECT_FALSE(s.find_material(Bytes{0xee}));
  EXPECT_EQ(s.find_material(Bytes{0xdd})->recipient_id, Bytes{2});
  // Long IDs (beyond the stack key buffer) index like short ones.
  ClientRecord big = record(7, Bytes(60, 0x33), Bytes{0x10});
  big.key.recipient_id = Bytes(40, 0x44);
  ASSERT_TRUE(s.put(big));
  EXPECT_TRUE(s.contains_id(Bytes(40, 0x44), Bytes(60, 0x33)));
  EXPECT_FALSE(s.contains_id(Bytes(40, 0x44), Bytes(59, 0x33)));
  ASSERT_TRUE(s.erase(big.key));
  EXPECT_EQ(s.size(), 1u);
}

}  // namespace
}  // namespace acekdc::ace
