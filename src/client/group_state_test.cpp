// What a member keeps for Group OSCORE in its StateDir: the group's signature
// algorithm (recorded from the KDC's material), and the Sender Sequence Number claims
// of several processes of one member (ClaimingSequenceStore) under a GroupContext that
// restarts its sequence on a fresh claim instead of failing (a long-running `client
// listen` next to a `client send` of the same --state).
#include <gtest/gtest.h>

#include <set>

#include "client/state.h"
#include "coap/message.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/params.h"
#include "grouposcore/group_context.h"
#include "kdc/test_util.h"

namespace acekdc::client {
namespace {

using grouposcore::GroupConfig;
using grouposcore::GroupContext;
using grouposcore::GroupExchange;

TEST(GroupStateTest, SignAlgorithmFromTheKdcMaterialIsStored) {
  kdc::GroupConfig cfg = kdc::testing::sample_config("g1");
  cfg.sign_info = kdc::sign_info_es256();
  kdc::GroupKeyMaterial key = kdc::testing::sample_key(2, 1);
  groupcomm::KeyDistribution kd;
  kd.config = &cfg;
  kd.key = &key;
  auto payload = groupcomm::encode_key_distribution(kd);
  ASSERT_TRUE(payload);
  auto sign = sign_algorithm_of(*payload);
  ASSERT_TRUE(sign);
  EXPECT_EQ(sign->alg, cp::alg::kES256);
  EXPECT_EQ(to_hex(sign->params), "828102820201");  // [[2], [2, 1]]: EC2, EC2 P-256
  EXPECT_EQ(sign_curve(sign->alg), cp::crv::kP256);
  EXPECT_EQ(sign_curve(cp::alg::kEdDSA), cp::crv::kEd25519);
  EXPECT_EQ(sign_curve(cp::alg::kES256 - 100), 0);
  EXPECT_FALSE(sign_algorithm_of(*from_hex("a0")));        // no 'key'
  EXPECT_FALSE(sign_algorithm_of(*from_hex("a108a10a60")));  // sign_alg not an integer
  EXPECT_FALSE(sign_algorithm_of(*from_hex("ff")));

  kdc::testing::TempDir dir;
  StateDir st(dir.path() + "/s");
  GroupKeys k;
  k.num = 2;
  k.group_id = {0x01, 0x02};
  k.master_secret = Bytes(16, 0x33);
  ASSERT_TRUE(st.save_keys("g1", StoredKeys{k, false, *sign}));
  auto l = st.load_keys("g1");
  ASSERT_TRUE(l);
  ASSERT_TRUE(l->sign);
  EXPECT_EQ(l->sign->alg, cp::alg::kES256);
  EXPECT_EQ(l->sign->params, sign->params);
  // Kept as "left" after a leave; absent in a file written without it.
  st.forget_membership("g1");
  l = st.load_keys("g1");
  ASSERT_TRUE(l && l->sign && l->left);
  EXPECT_EQ(l->sign->alg, cp::alg::kES256);
  ASSERT_TRUE(st.save_keys("g2", StoredKeys{k, false}));
  l = st.load_keys("g2");
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->sign);
}

// Two processes of one member (one StateDir, two stores) protecting under the same
// Group ID and Sender ID.
class ClaimRestartTest : public ::testing::Test {
 protected:
  std::unique_ptr<ClaimingSequenceStore> store() {
    auto s = st_.seq_store("group-seq");
    EXPECT_TRUE(s);
    return std::make_unique<ClaimingSequenceStore>(st_.path(), std::move(*s), kChunk);
  }
  std::unique_ptr<GroupContext> member(oscore::SequenceStore* store, bool restart, std::string_view sid = "0a",
                                       std::string_view seed = kSeedA) {
    GroupConfig cfg;
    cfg.material.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.material.master_salt = *from_hex("9e7ca92223786340");
    cfg.material.group_id = *from_hex("37cbf321");
    cfg.sender_id = *from_hex(sid);
    cfg.own_key.crv = cp::crv::kEd25519;
    cfg.own_key.d = *from_hex(seed);
    cfg.store = store;
    cfg.seq_chunk = kChunk;
    cfg.restart_sequence_on_failure = restart;
    auto c = GroupContext::create(*provider_, std::move(cfg));
    EXPECT_TRUE(c) << (c ? "" : grouposcore::to_string(c.error()));
    return c ? std::move(*c) : nullptr;
  }
  // send protects one request; returns its Partial IV as a number, or the error.
  Expected<uint64_t, grouposcore::Error> send(GroupContext& ctx, Bytes* out_datagram = nullptr) {
    coap::Message m(coap::Type::kNon, cp::coap::code::kPost, 1);
    m.set_uri_path("group");
    m.set_payload("x");
    std::array<uint8_t, 512> buf;
    GroupExchange ex;
    auto n = ctx.protect_request(m, buf, ex);
    if (!n) return unexpected(n.error());
    if (out_datagram) out_datagram->assign(buf.begin(), buf.begin() + *n);
    uint64_t v = 0;
    for (uint8_t b : ex.request_piv()) v = (v << 8) | b;
    return v;
  }
  bool receive(GroupContext& rx, ByteView datagram, grouposcore::Error* out_error = nullptr) {
    std::array<uint8_t, 512> out;
    GroupExchange ex;
    auto r = rx.verify_request(datagram, out, ex);
    if (!r && out_error) *out_error = r.error();
    return static_cast<bool>(r);
  }
  static constexpr uint64_t kChunk = 4;
  static constexpr const char* kSeedA = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
  static constexpr const char* kSeedB = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  kdc::testing::TempDir dir_;
  StateDir st_{dir_.path() + "/member"};
};

// The listener's claim runs out after the member's `send` claimed: without the restart
// it fails for good; with it, it continues on a fresh claim and no Partial IV is ever
// used twice. A receiver accepts every message of both processes.
TEST_F(ClaimRestartTest, ContextRestartsOnAFreshClaimInsteadOfFailing) {
  for (bool restart : {false, true}) {
    SCOPED_TRACE(restart ? "restart on" : "restart off");
    kdc::testing::TempDir d;
    st_ = StateDir(d.path() + "/member");
    auto sl = store();
    auto ss = store();
    auto listener = member(sl.get(), restart);
    auto receiver_store = std::make_unique<oscore::MemorySequenceStore>();
    auto receiver = member(receiver_store.get(), false, "0b", kSeedB);
    ASSERT_TRUE(listener && receiver);
    crypto::KeyPair a;
    a.crv = cp::crv::kEd25519;
    a.d = *from_hex(kSeedA);
    ASSERT_TRUE(provider_->complete_public(a));
    ASSERT_TRUE(receiver->add_member_key(cose::CoseKey::from_keypair(a, Bytes{0x0a}, std::nullopt, false)));

    std::set<uint64_t> used;
    auto take = [&](GroupContext& ctx) {
      Bytes dg;
      auto piv = send(ctx, &dg);
      if (!piv) return false;
      EXPECT_TRUE(used.insert(*piv).second) << "Partial IV " << *piv << " used twice";
      EXPECT_TRUE(receive(*receiver, dg)) << "Partial IV " << *piv;
      return true;
    };
    for (uint64_t i = 0; i < kChunk; ++i) ASSERT_TRUE(take(*listener));  // [0, 4): the listener's claim
    {
      auto sender = member(ss.get(), restart);  // `client send` claims [4, 8)
      ASSERT_TRUE(sender);
      ASSERT_TRUE(take(*sender));
      ASSERT_TRUE(take(*sender));
    }
    if (!restart) {
      auto e = send(*listener);  // the listener cannot extend its claim
      ASSERT_FALSE(e);
      EXPECT_EQ(e.error(), grouposcore::Error::kStorageFailure);
      EXPECT_EQ(listener->num_sequence_restarts(), 0u);
      continue;
    }
    ASSERT_TRUE(take(*listener));  // restarted on a fresh claim [8, 12)
    EXPECT_EQ(listener->num_sequence_restarts(), 1u);
    EXPECT_TRUE(used.count(2 * kChunk)) << "the fresh claim starts above the sender's";
    // Both go on, each restarting when the other claimed in between.
    auto sender = member(ss.get(), restart);  // [12, 16)
    ASSERT_TRUE(sender);
    for (int round = 0; round < 5; ++round) {
      for (uint64_t i = 0; i < kChunk + 1; ++i) ASSERT_TRUE(take(*listener));
      for (uint64_t i = 0; i < kChunk + 1; ++i) ASSERT_TRUE(take(*sender));
    }
    EXPECT_GE(listener->num_sequence_restarts(), 5u);
    EXPECT_EQ(used.size(), kChunk + 2 + 1 + 10 * (kChunk + 1));
  }
}

// A restart keeps the Recipient Contexts: a message received before it is still a
// replay after it.
TEST_F(ClaimRestartTest, RestartKeepsReplayWindows) {
  auto sl = store();
  auto listener = member(sl.get(), true);
  auto other_store = std::make_unique<oscore::MemorySequenceStore>();
  auto other = member(other_store.get(), false, "0b", kSeedB);
  ASSERT_TRUE(listener && other);
  crypto::KeyPair b;
  b.crv = cp::crv::kEd25519;
  b.d = *from_hex(kSeedB);
  ASSERT_TRUE(provider_->complete_public(b));
  ASSERT_TRUE(listener->add_member_key(cose::CoseKey::from_keypair(b, Bytes{0x0b}, std::nullopt, false)));
  Bytes dg;
  ASSERT_TRUE(send(*other, &dg));
  ASSERT_TRUE(receive(*listener, dg));
  ASSERT_TRUE(listener->restart_sequence());
  grouposcore::Error e{};
  EXPECT_FALSE(receive(*listener, dg, &e));
  EXPECT_EQ(e, grouposcore::Error::kReplay);
  // And the restarted sender starts above everything claimed before.
  auto piv = send(*listener);
  ASSERT_TRUE(piv);
  EXPECT_EQ(*piv, kChunk);  // [0, 4) claimed at create, a fresh [4, 8) at the restart
}

}  // namespace
}  // namespace acekdc::client
