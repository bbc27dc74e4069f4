// The client's decoders against the KDC's own encoders (groupcomm/params.h), their
// refusals, and the StateDir files (round trip, mode 0600, a leave marks stale).
#include "client/responses.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ace/scope.h"
#include "client/state.h"
#include "cose/key.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/params.h"
#include "kdc/test_util.h"

namespace acekdc::client {
namespace {

TEST(ResponsesTest, KeyDistributionRoundTrip) {
  kdc::GroupConfig cfg = kdc::testing::sample_config("g1");
  kdc::GroupKeyMaterial key = kdc::testing::sample_key(7, 3);
  Bytes sid = {0x2a};
  Bytes pk = kdc::testing::sample_member("n1", {0x01}).public_key;
  groupcomm::KeyDistribution kd;
  kd.config = &cfg;
  kd.key = &key;
  kd.sender_id = ByteView(sid);
  kd.include_pub_keys = true;
  auto p = crypto::make_openssl_provider();
  auto kp = p->generate_keypair(cp::crv::kEd25519);
  ASSERT_TRUE(kp);
  Bytes cose = cose::CoseKey::from_keypair(*kp).encode(false);
  Bytes other = {0x05};
  kd.members.push_back(groupcomm::MemberKey{other, cose, ace::kRoleRequester | ace::kRoleResponder});
  auto payload = groupcomm::encode_key_distribution(kd);
  ASSERT_TRUE(payload);
  auto k = decode_key_distribution(*payload);
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(k->num, 7u);
  EXPECT_EQ(k->group_id, key.group_id);
  EXPECT_EQ(k->master_secret, key.master_secret);
  EXPECT_EQ(k->master_salt, key.master_salt);
  ASSERT_TRUE(k->sender_id);
  EXPECT_EQ(*k->sender_id, sid);
  ASSERT_EQ(k->pub_keys.size(), 1u);
  EXPECT_EQ(k->pub_keys[0].sender_id, other);
  EXPECT_EQ(k->pub_keys[0].roles, (std::vector<std::string>{"requester", "responder"}));
  EXPECT_EQ(k->pub_keys[0].x, kp->x);

  // The pub-key response: the same entries; none stored: h''.
  auto pr = groupcomm::encode_pub_keys_response(kd.members);
  ASSERT_TRUE(pr);
  auto keys = decode_pub_keys(*pr);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].sender_id, other);
  auto none = groupcomm::encode_pub_keys_response({});
  ASSERT_TRUE(none);
  auto empty = decode_pub_keys(*none);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(ResponsesTest, SmallResponses) {
  auto n = decode_num(groupcomm::encode_num(12));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 12u);
  auto s = decode_sender_id_response(groupcomm::encode_sender_id_response(Bytes{0x09}));
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, Bytes{0x09});
  kdc::GroupPolicies gp;
  auto pol = decode_policies(groupcomm::encode_policies_response(gp));
  ASSERT_TRUE(pol);
  EXPECT_FALSE(pol->empty());
  auto r = find_rsnonce(groupcomm::encode_rsnonce_response(Bytes{1, 2, 3}));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (Bytes{1, 2, 3}));
  EXPECT_FALSE(find_rsnonce(groupcomm::encode_num(1)));
}

TEST(ResponsesTest, Refusals) {
  // Not a map, num missing, key without contextId, wrong types, garbage.
  for (const char* hex : {"", "01", "a0", "a1096161", "a2090108a0", "a20901" "08a10240", "a209010840", "ff",
                          "a3090108a206420102024101" "0d01"}) {
    auto k = decode_key_distribution(*from_hex(hex));
    EXPECT_FALSE(k) << hex;
    if (!k) EXPECT_EQ(k.error().error, Error::kBadResponse);
  }
  // pub_keys with a peer_roles of another length; a non-bstr pub_keys.
  EXPECT_FALSE(decode_pub_keys(*from_hex("a10d01")));
  EXPECT_FALSE(decode_pub_keys(*from_hex("a20d4180" "0e81" "6972657175657374" "6572")));
  EXPECT_FALSE(decode_num(*from_hex("20")));
  EXPECT_FALSE(decode_sender_id_response(*from_hex("a1150a")));
  EXPECT_FALSE(decode_policies(*from_hex("a110a10061")));
}

TEST(StateDirTest, FilesRoundTripPrivateAndStaleAfterLeave) {
  kdc::testing::TempDir dir;
  StateDir st(dir.path() + "/s");
  Session s;
  s.params.sender_id = {0x01};
  s.params.recipient_id = {0x42};
  s.params.master_secret = Bytes(16, 0x11);
  s.params.master_salt = {0x22, 0x23};
  s.node = "nabc";
  s.rsnonce = {9, 9};
  s.control_path = "/ctl";
  ASSERT_TRUE(st.save_session("g1", s));
  auto l = st.load_session("g1");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->params.master_secret, s.params.master_secret);
  EXPECT_EQ(l->params.master_salt, s.params.master_salt);
  EXPECT_EQ(l->node, "nabc");
  EXPECT_EQ(l->rsnonce, s.rsnonce);
  EXPECT_EQ(l->control_path, "/ctl");
  struct stat sb {};
  ASSERT_EQ(::stat(st.group_file("g1", ".session").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 077, 0u);

  GroupKeys k;
  k.num = 3;
  k.group_id = {0xfe, 0x01};
  k.sender_id = Bytes{0x05};
  k.master_secret = Bytes(16, 0x33);
  ASSERT_TRUE(st.save_keys("g1", StoredKeys{k, false}));
  st.forget_membership("g1");
  EXPECT_EQ(st.load_session("g1").error().error, Error::kNotJoined);
  auto stale = st.load_keys("g1");
  ASSERT_TRUE(stale);
  EXPECT_TRUE(stale->left);
  EXPECT_EQ(stale->keys.num, 3u);
  EXPECT_EQ(stale->keys.group_id, k.group_id);
  EXPECT_EQ(*stale->keys.sender_id, Bytes{0x05});
  EXPECT_EQ(st.load_keys("other").error().error, Error::kNotJoined);
  // A lock can be taken again after release.
  { auto lock = st.lock(); ASSERT_TRUE(lock); }
  EXPECT_TRUE(st.lock());
}

// Two processes of one state (two stores here) never get the same sequence numbers:
// load() claims a chunk, and a claim is extended only while nobody else claimed.
TEST(StateDirTest, ClaimingSequenceStoreGivesDisjointChunks) {
  kdc::testing::TempDir dir;
  StateDir st(dir.path() + "/s");
  auto sa = st.seq_store("kdc-seq");
  auto sb = st.seq_store("kdc-seq");
  ASSERT_TRUE(sa);
  ASSERT_TRUE(sb);
  ClaimingSequenceStore a(st.path(), std::move(*sa), 16);
  ClaimingSequenceStore b(st.path(), std::move(*sb), 16);
  auto pa = a.load("k");
  ASSERT_TRUE(pa);
  EXPECT_EQ(*pa, 0u);
  auto pb = b.load("k");  // the other process starts above a's claim
  ASSERT_TRUE(pb);
  EXPECT_EQ(*pb, 16u);
  EXPECT_TRUE(a.reserve("k", 16));                      // inside the claim
  EXPECT_FALSE(a.reserve("k", 32));                     // b claimed [16, 32): refused
  EXPECT_TRUE(b.reserve("k", 48));                      // nobody claimed since b: extended
  auto pc = a.load("k");                                // a new context of a starts above
  ASSERT_TRUE(pc);
  EXPECT_EQ(*pc, 48u);
  // The allocator on top hands out disjoint numbers.
  oscore::SequenceAllocator x(&a, "k2", 16), y(&b, "k2", 16);
  ASSERT_TRUE(x.start());
  ASSERT_TRUE(y.start());
  for (int i = 0; i < 16; ++i) {
    auto nx = x.next();
    auto ny = y.next();
    ASSERT_TRUE(nx);
    ASSERT_TRUE(ny);
    EXPECT_NE(*nx, *ny);
    EXPECT_LT(*nx, 16u);
    EXPECT_GE(*ny, 16u);
  }
  EXPECT_FALSE(x.next());  // x's claim is used up and y claimed next: no reuse
}

}  // namespace
}  // namespace acekdc::client
