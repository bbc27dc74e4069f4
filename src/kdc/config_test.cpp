#include "kdc/config.h"

#include <gtest/gtest.h>

namespace acekdc::kdc {
namespace {

// expect_error parses `text` and checks the error code and that the message
// contains `fragment` (the line and the path of the culprit).
void expect_error(const std::string& text, ConfigErrc code, const std::string& fragment) {
  auto r = parse_config(text);
  ASSERT_FALSE(r) << text;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(fragment), std::string::npos)
      << "message: " << r.error().message << "\nexpected to contain: " << fragment;
}

TEST(ConfigTest, DefaultConfiguration) {
  auto r = parse_config(kDefaultConfig);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->store.backend, StoreConfig::Backend::kSqlite);
  EXPECT_EQ(r->store.path, "acekdc.db");
  ASSERT_EQ(r->groups.size(), 1u);
  const GroupConfig& g = r->groups[0];
  EXPECT_EQ(g.name, "demo-group");
  EXPECT_EQ(g.aead_alg, cp::alg::kAES_CCM_16_64_128);
  EXPECT_EQ(g.hkdf_alg, cp::alg::kHMAC256_256);
  EXPECT_EQ(g.sign_info, sign_info_eddsa());
  EXPECT_EQ(g.pub_key_enc, 1);
  EXPECT_TRUE(g.rekey.on_join);
  EXPECT_TRUE(g.rekey.on_leave);
  EXPECT_EQ(g.rekey.min_interval_s, 0u);
  EXPECT_EQ(g.rekey.batch_changes, 0u);
  EXPECT_EQ(g.policies.seq_sync_method, cp::gc::kSeqSyncBaseline);
  EXPECT_EQ(g.key_renewal, KeyRenewal::kNewSenderId);
  EXPECT_TRUE(validate_group_config(g));
}

TEST(ConfigTest, EmptyConfigurationIsValid) {
  auto r = parse_config("");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->groups.empty());
  EXPECT_EQ(r->store, StoreConfig{});
}

TEST(ConfigTest, FullGroup) {
  auto r = parse_config(R"(
[store]
backend = "memory"

[[group]]
name = "lights.floor-2"
aead = 30
hkdf = -10
sign_alg = "ES256"
max_members = 50
multicast_address = "239.255.0.7"
key_lifetime = 600
departed_key_retention = 120
sender_id_reuse_delay = 60
key_renewal = "rekey-group"
[group.policies]
seq_sync = 3
key_update_check_interval = 30
expiration_delta = 5
[group.rekey]
on_join = false
min_interval = 60
batch_changes = 10

[[group]]
name = "g2"
multicast_address = "ff05::fd"
)");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->store.backend, StoreConfig::Backend::kMemory);
  ASSERT_EQ(r->groups.size(), 2u);
  const GroupConfig& g = r->groups[0];
  EXPECT_EQ(g.name, "lights.floor-2");
  EXPECT_EQ(g.aead_alg, cp::alg::kAES_CCM_16_128_128);
  EXPECT_EQ(g.hkdf_alg, cp::alg::kHMAC256_256);  // -10 read as 5
  EXPECT_EQ(g.sign_info, sign_info_es256());
  EXPECT_EQ(g.max_members, 50u);
  EXPECT_EQ(g.multicast_address, "239.255.0.7");
  EXPECT_EQ(g.key_lifetime_s, 600u);
  EXPECT_EQ(g.departed_key_retention_s, 120u);
  EXPECT_EQ(g.sender_id_reuse_delay_s, 60u);
  EXPECT_EQ(g.key_renewal, KeyRenewal::kRekeyGroup);
  EXPECT_EQ(g.policies, (GroupPolicies{cp::gc::kSeqSyncEcho, 30, 5}));
  EXPECT_EQ(g.rekey, (RekeyPolicy{false, true, true, 60, 10}));
  // Unspecified keys keep their defaults.
  GroupConfig expected;
  expected.name = "g2";
  expected.multicast_address = "ff05::fd";
  EXPECT_EQ(r->groups[1], expected);
}

TEST(ConfigTest, SyntaxError) {
  expect_error("[[group]]\nname = \"a\"\nmax_members = \n", ConfigErrc::kSyntax, "line 3");
}

TEST(ConfigTest, UnknownKeysRejected) {
  expect_error("[[group]]\nname = \"a\"\nmax_member = 5\n", ConfigErrc::kUnknownKey,
               "line 3: group[0].max_member: unknown key");
  expect_error("[[group]]\nname = \"a\"\n[group.rekey]\non_joins = true\n", ConfigErrc::kUnknownKey,
               "group[0].rekey.on_joins");
  expect_error("[[group]]\nname = \"a\"\n[group.policies]\nfoo = 1\n", ConfigErrc::kUnknownKey,
               "group[0].policies.foo");
  expect_error("[store]\nfile = \"x\"\n", ConfigErrc::kUnknownKey, "store.file");
  expect_error("[groups]\nname = \"a\"\n", ConfigErrc::kUnknownKey, "line 1: groups: unknown key");
}

TEST(ConfigTest, MissingName) {
  expect_error("[[group]]\naead = 10\n", ConfigErrc::kMissingKey, "group[0].name: required");
}

TEST(ConfigTest, WrongTypes) {
  expect_error("[[group]]\nname = 5\n", ConfigErrc::kWrongType, "group[0].name: expected a string");
  expect_error("[[group]]\nname = \"a\"\nmax_members = \"10\"\n", ConfigErrc::kWrongType,
               "line 3: group[0].max_members: expected an integer");
  expect_error("[[group]]\nname = \"a\"\nmax_members = 1.5\n", ConfigErrc::kWrongType,
               "max_members");
  expect_error("[[group]]\nname = \"a\"\n[group.rekey]\non_join = 1\n", ConfigErrc::kWrongType,
               "group[0].rekey.on_join: expected true or false");
  expect_error("[[group]]\nname = \"a\"\nrekey = 3\n", ConfigErrc::kWrongType,
               "group[0].rekey: expected a table");
  expect_error("group = 3\n", ConfigErrc::kWrongType, "group: expected [[group]] tables");
  expect_error("[[group]]\nname = \"a\"\nkey_renewal = 1\n", ConfigErrc::kWrongType,
               "key_renewal: expected a string");
}

TEST(ConfigTest, BadValues) {
  expect_error("[[group]]\nname = \"a/b\"\n", ConfigErrc::kBadValue, "group[0].name");
  expect_error("[[group]]\nname = \"\"\n", ConfigErrc::kBadValue, "group[0].name");
  expect_error("[[group]]\nname = \"a\"\naead = \"AES-GCM\"\n", ConfigErrc::kBadValue,
               "line 3: group[0].aead: unknown value \"AES-GCM\"");
  expect_error("[[group]]\nname = \"a\"\naead = 99\n", ConfigErrc::kBadValue,
               "aead: unsupported value 99");
  expect_error("[[group]]\nname = \"a\"\nsign_alg = \"RS256\"\n", ConfigErrc::kBadValue,
               "sign_alg");
  expect_error("[[group]]\nname = \"a\"\nsign_alg = -35\n", ConfigErrc::kBadValue, "sign_alg");
  expect_error("[[group]]\nname = \"a\"\npub_key_enc = 2\n", ConfigErrc::kBadValue, "pub_key_enc");
  expect_error("[[group]]\nname = \"a\"\nmax_members = 0\n", ConfigErrc::kBadValue,
               "max_members: must be between 1 and 1000000");
  expect_error("[[group]]\nname = \"a\"\nkey_lifetime = -5\n", ConfigErrc::kBadValue,
               "key_lifetime");
  expect_error("[[group]]\nname = \"a\"\ndeparted_key_retention = 5000000000\n",
               ConfigErrc::kBadValue, "departed_key_retention");
  expect_error("[[group]]\nname = \"a\"\nmulticast_address = \"192.0.2.1\"\n",
               ConfigErrc::kBadValue, "multicast_address: not an IPv4 or IPv6 multicast address");
  expect_error("[[group]]\nname = \"a\"\nmulticast_address = \"2001:db8::1\"\n",
               ConfigErrc::kBadValue, "multicast_address");
  expect_error("[[group]]\nname = \"a\"\n[group.policies]\nseq_sync = 4\n", ConfigErrc::kBadValue,
               "group[0].policies.seq_sync");
  expect_error("[[group]]\nname = \"a\"\n[group.policies]\nseq_sync = \"sometimes\"\n",
               ConfigErrc::kBadValue, "\"best-effort\", \"baseline\", \"echo\"");
  expect_error("[[group]]\nname = \"a\"\nkey_renewal = \"never\"\n", ConfigErrc::kBadValue,
               "key_renewal");
  expect_error("[store]\nbackend = \"postgres\"\n", ConfigErrc::kBadValue, "store.backend");
  expect_error("[store]\npath = \"\"\n", ConfigErrc::kBadValue, "store.path");
}

TEST(ConfigTest, NonAsciiRefused) {
  // Refused before the TOML parser sees it: toml++ 3.3 has undefined behaviour on some
  // non-ASCII input (found by fuzz_kdc_config), so configuration files are ASCII.
  expect_error("[[group]]\nname = \"a\"\n[group\xca\x8drekey]\n", ConfigErrc::kSyntax,
               "line 3: non-ASCII character");
  expect_error("[[group]]\nn\xc3\xa4me = \"a\"\n", ConfigErrc::kSyntax, "line 2");
  expect_error("# caf\xc3\xa9\n[[group]]\nname = \"a\"\n", ConfigErrc::kSyntax, "line 1");
  expect_error("[[group]]\nname = \"gr\xc3\xbcppe\"\n", ConfigErrc::kSyntax, "line 2");
  expect_error("[store]\nbaf = -10\nsign_alg =+\"E\xd2\x98\n", ConfigErrc::kSyntax, "line 3");
}

TEST(ConfigTest, DuplicateGroups) {
  expect_error("[[group]]\nname = \"a\"\n[[group]]\nname = \"b\"\n[[group]]\nname = \"a\"\n",
               ConfigErrc::kDuplicateGroup, "line 6: group[2].name: group \"a\" is defined twice");
}

TEST(ConfigTest, ValidateGroupConfigInCode) {
  GroupConfig c;
  c.name = "ok";
  EXPECT_TRUE(validate_group_config(c));
  GroupConfig bad = c;
  bad.sign_info.sign_key_params = {1, 7};  // Ed448 is not configured
  EXPECT_FALSE(validate_group_config(bad));
  bad = c;
  bad.aead_alg = 4;
  EXPECT_FALSE(validate_group_config(bad));
  bad = c;
  bad.max_members = 0;
  EXPECT_FALSE(validate_group_config(bad));
  bad = c;
  bad.name = "x y";
  EXPECT_FALSE(validate_group_config(bad));
}

}  // namespace
}  // namespace acekdc::kdc
