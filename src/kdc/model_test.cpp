#include <gtest/gtest.h>

#include "ace/scope.h"  // header-only use: the role bit constants
#include "core/hex.h"
#include "kdc/model.h"
#include "kdc/test_util.h"

namespace acekdc::kdc {
namespace {

using testing::sample_config;
using testing::sample_key;
using testing::sample_member;

TEST(ModelTest, RoleBitsMatchTheAceLayer) {
  // Members store roles with the bit layout of ace::RoleSet.
  static_assert(std::is_same_v<RoleSet, ace::RoleSet>);
  EXPECT_EQ(ace::kRoleRequester, 1u << cp::role::kRequester);
  EXPECT_EQ(ace::kRoleResponder, 1u << cp::role::kResponder);
  EXPECT_EQ(ace::kRoleMonitor, 1u << cp::role::kMonitor);
}

TEST(ModelTest, Defaults) {
  GroupConfig c;
  EXPECT_EQ(c.aead_alg, 10);
  EXPECT_EQ(c.hkdf_alg, 5);
  EXPECT_EQ(c.pub_key_enc, 1);
  EXPECT_EQ(c.sign_info, sign_info_eddsa());
  EXPECT_EQ(sign_info_eddsa().sign_alg, -8);
  EXPECT_EQ(sign_info_eddsa().sign_params, std::vector<int>{1});
  EXPECT_EQ(sign_info_eddsa().sign_key_params, (std::vector<int>{1, 6}));
  EXPECT_EQ(sign_info_es256().sign_alg, -7);
  EXPECT_EQ(sign_info_es256().sign_params, std::vector<int>{2});
  EXPECT_EQ(sign_info_es256().sign_key_params, (std::vector<int>{2, 1}));
  EXPECT_EQ(GroupKeyMaterial{}.num, 0u);
  EXPECT_TRUE(c.rekey.on_join && c.rekey.on_leave && c.rekey.on_expiry);
  EXPECT_EQ(c.key_renewal, KeyRenewal::kNewSenderId);
}

TEST(ModelTest, GroupConfigCborRoundTrip) {
  GroupConfig c = sample_config("grp");
  c.sign_info = sign_info_es256();
  c.aead_alg = cp::alg::kAES_CCM_16_128_256;
  c.policies = {cp::gc::kSeqSyncEcho, 77, 12};
  c.rekey = {false, true, false, 60, 5};
  c.key_lifetime_s = 3600;
  c.departed_key_retention_s = 300;
  c.sender_id_reuse_delay_s = 9;
  c.max_members = 100000;
  c.key_renewal = KeyRenewal::kRekeyGroup;
  const Bytes enc = encode_group_config(c);
  auto dec = decode_group_config(enc);
  ASSERT_TRUE(dec);
  EXPECT_EQ(*dec, c);
  EXPECT_EQ(*decode_group_config(encode_group_config(GroupConfig{.name = "x"})),
            GroupConfig{.name = "x"});

  // Every truncation and every single-bit flip either decodes to something or
  // fails cleanly with kCorrupt.
  for (size_t n = 0; n < enc.size(); ++n) {
    auto t = decode_group_config(ByteView(enc.data(), n));
    ASSERT_FALSE(t) << n;
    EXPECT_EQ(t.error(), StoreError::kCorrupt);
  }
  for (size_t i = 0; i < enc.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      Bytes f = enc;
      f[i] ^= static_cast<uint8_t>(1u << b);
      auto r = decode_group_config(f);
      if (!r) {
        EXPECT_EQ(r.error(), StoreError::kCorrupt);
      }
    }
  }
  Bytes trailing = enc;
  trailing.push_back(0x00);
  EXPECT_FALSE(decode_group_config(trailing));
}

TEST(ModelTest, GroupPoliciesEncoding) {
  // {0: 2, 1: 3600, 2: 0}
  EXPECT_EQ(to_hex(encode_group_policies(GroupPolicies{})), "a3000201190e100200");
  EXPECT_EQ(to_hex(encode_group_policies(GroupPolicies{3, 10, 20})), "a30003010a0214");
}

TEST(ModelTest, FailedOperationsLeaveStateUnchanged) {
  GroupConfig c = sample_config();
  c.max_members = 1;
  GroupState g = *GroupState::create(c, sample_key(0, 0));
  ASSERT_TRUE(g.add_member(sample_member("a", {1})));
  const GroupState before = g;
  EXPECT_EQ(g.add_member(sample_member("b", {2})).error(), StoreError::kFull);
  EXPECT_EQ(g.add_member(sample_member("a", {2})).error(), StoreError::kNameTaken);
  EXPECT_EQ(g.add_member(sample_member("b", {1})).error(), StoreError::kConflict);
  EXPECT_EQ(g.put_key_material(sample_key(2, 1)).error(), StoreError::kStale);
  EXPECT_EQ(g.put_key_material(sample_key(1, 0)).error(), StoreError::kConflict);
  EXPECT_EQ(g.update_member_sender_id("a", {1}, 0).error(), StoreError::kConflict);
  EXPECT_EQ(g.remove_member("zz", 0).error(), StoreError::kNotFound);
  EXPECT_EQ(g, before);
}

TEST(ModelTest, FindByTokenFollowsJoinsAndLeaves) {
  GroupState g = *GroupState::create(sample_config(), sample_key(0, 0));
  Member a = sample_member("a", {1});
  a.token_id = {0xaa, 0x01};
  Member b = sample_member("b", {2});
  b.token_id = {0xbb};
  Member c = sample_member("c", {3});
  c.token_id = {};  // an operator-added member: not indexed
  ASSERT_TRUE(g.add_member(a));
  ASSERT_TRUE(g.add_member(b));
  ASSERT_TRUE(g.add_member(c));
  ASSERT_NE(g.find_by_token(Bytes{0xaa, 0x01}), nullptr);
  EXPECT_EQ(g.find_by_token(Bytes{0xaa, 0x01})->node_name, "a");
  EXPECT_EQ(g.find_by_token(Bytes{0xbb})->node_name, "b");
  EXPECT_EQ(g.find_by_token(Bytes{0xaa}), nullptr);  // a prefix is another token
  EXPECT_EQ(g.find_by_token(Bytes{}), nullptr);
  EXPECT_EQ(g.by_token.size(), 2u);
  ASSERT_TRUE(g.remove_member("a", 0));
  EXPECT_EQ(g.find_by_token(Bytes{0xaa, 0x01}), nullptr);
  EXPECT_EQ(g.by_token.size(), 1u);
  // Two members of one token: the first by node name, then the other after a leave.
  Member d = sample_member("d", {4});
  d.token_id = {0xbb};
  ASSERT_TRUE(g.add_member(d));
  EXPECT_EQ(g.find_by_token(Bytes{0xbb})->node_name, "b");
  ASSERT_TRUE(g.remove_member("b", 0));
  EXPECT_EQ(g.find_by_token(Bytes{0xbb})->node_name, "d");
  // A new Sender ID keeps the index (same node, same token).
  ASSERT_TRUE(g.update_member_sender_id("d", {9}, 0));
  EXPECT_EQ(g.find_by_token(Bytes{0xbb})->node_name, "d");
  // held_by_len counts the members' Sender IDs by length: c {3} and d {9}.
  EXPECT_EQ(g.held_by_len[1], 2u);
  ASSERT_TRUE(g.update_member_sender_id("d", {9, 9}, 0));
  EXPECT_EQ(g.held_by_len[1], 1u);
  EXPECT_EQ(g.held_by_len[2], 1u);
  ASSERT_TRUE(g.remove_member("c", 0));
  EXPECT_EQ(g.held_by_len[1], 0u);
}

TEST(ModelTest, FindByTokenSurvivesHashCollisions) {
  // Entries with the same hash but another token are skipped by comparing the token.
  GroupState g = *GroupState::create(sample_config(), sample_key(0, 0));
  Member a = sample_member("a", {1});
  a.token_id = {0x01};
  ASSERT_TRUE(g.add_member(a));
  g.by_token.emplace(token_id_hash(Bytes{0x02}), "a");  // a forged collision
  EXPECT_EQ(g.find_by_token(Bytes{0x02}), nullptr);
  EXPECT_EQ(g.find_by_token(Bytes{0x01})->node_name, "a");
}

GroupState rekey_group(RekeyPolicy p, uint64_t joins, uint64_t leaves) {
  GroupConfig c = sample_config();
  c.rekey = p;
  GroupKeyMaterial k = sample_key(0, 0, 1000);
  k.exp = 5000;
  GroupState g = *GroupState::create(c, k);
  g.joins_since_rekey = joins;
  g.leaves_since_rekey = leaves;
  return g;
}

TEST(ModelTest, RekeyImmediate) {
  RekeyPolicy p;  // on join, on leave, on expiry, no batching
  auto d = rekey_due(rekey_group(p, 0, 0), 1001);
  EXPECT_FALSE(d.rekey_now);
  EXPECT_EQ(d.check_again_at, 5000 - 60);
  EXPECT_TRUE(rekey_due(rekey_group(p, 1, 0), 1001).rekey_now);
  EXPECT_TRUE(rekey_due(rekey_group(p, 0, 1), 1001).rekey_now);
  EXPECT_TRUE(rekey_due(rekey_group(p, 0, 0), 4940).rekey_now);  // expiry margin
  p.on_join = false;
  EXPECT_FALSE(rekey_due(rekey_group(p, 3, 0), 1001).rekey_now);
  p.on_expiry = false;
  d = rekey_due(rekey_group(p, 0, 0), 6000);
  EXPECT_FALSE(d.rekey_now);
  EXPECT_EQ(d.check_again_at, 0);
}

TEST(ModelTest, RekeyRateLimited) {
  RekeyPolicy p;
  p.on_expiry = false;
  p.min_interval_s = 60;  // established_at = 1000
  auto d = rekey_due(rekey_group(p, 5, 2), 1030);
  EXPECT_FALSE(d.rekey_now);
  EXPECT_EQ(d.check_again_at, 1060);
  EXPECT_TRUE(rekey_due(rekey_group(p, 5, 2), 1060).rekey_now);
  EXPECT_FALSE(rekey_due(rekey_group(p, 0, 0), 5000).rekey_now);
  p.batch_changes = 4;
  EXPECT_TRUE(rekey_due(rekey_group(p, 3, 1), 1001).rekey_now);   // count reached first
  EXPECT_FALSE(rekey_due(rekey_group(p, 2, 1), 1001).rekey_now);
  p.min_interval_s = 0;  // count trigger only
  d = rekey_due(rekey_group(p, 1, 0), 100000);
  EXPECT_FALSE(d.rekey_now);
  EXPECT_EQ(d.check_again_at, 0);
}

}  // namespace
}  // namespace acekdc::kdc
