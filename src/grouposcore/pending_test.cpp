// PendingMessages: OPT4 retention of group messages until new keying material or a
// sender's public key arrives.
#include "grouposcore/pending.h"

#include <gtest/gtest.h>

#include "grouposcore/test_util.h"

namespace acekdc::grouposcore {
namespace {

using namespace test;
using std::chrono::seconds;

const coap::Address kFrom = coap::Address::ipv4(127, 0, 0, 1, 5683);

TEST(Pending, MemberBehindRekeyKeepsThenReadsAfterFetchingMaterial) {
  auto provider = crypto::make_openssl_provider();
  const InputMaterial v1 = material("37cbf3210017a2d4", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  auto a = make_member(*provider, kSidA, kSeedA, v1);
  auto b = make_member(*provider, kSidB, kSeedB);  // still on version 0
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
  std::array<uint8_t, 1500> buf, out;
  GroupExchange ex;
  auto n = a->protect_request(group_get("temp"), buf, ex);
  ASSERT_TRUE(n);
  const ByteView datagram(buf.data(), *n);

  PendingMessages pending;
  const TimePoint t0{};
  GroupExchange ex_b;
  auto rx = b->verify_request(datagram, out, ex_b);
  ASSERT_FALSE(rx);
  ASSERT_EQ(rx.error(), Error::kUnknownGroupId);
  ASSERT_TRUE(pending.keep(datagram, kFrom, t0, rx.error()));
  EXPECT_TRUE(pending.needs_material());

  // Nothing new yet: a retry leaves it kept.
  auto try_with = [&](GroupContext& ctx) {
    return [&](ByteView d, const coap::Address&) {
      auto r = ctx.verify_request(d, out, ex_b);
      return r || !PendingMessages::keeps_for(r.error());
    };
  };
  EXPECT_EQ(pending.retry(t0 + seconds(1), try_with(*b)), 0u);
  EXPECT_EQ(pending.size(), 1u);
  // B fetched version 1 from the KDC and rekeyed: the kept message verifies.
  auto b1 = b->rekey(v1);
  ASSERT_TRUE(b1);
  bool verified = false;
  EXPECT_EQ(pending.retry(t0 + seconds(2),
                          [&](ByteView d, const coap::Address&) {
                            auto r = (*b1)->verify_request(d, out, ex_b);
                            verified = bool(r);
                            return true;
                          }),
            1u);
  EXPECT_TRUE(verified);
  EXPECT_EQ(pending.size(), 0u);
  EXPECT_FALSE(pending.needs_material());
}

TEST(Pending, UnknownSenderKeptUntilKeyArrives) {
  auto provider = crypto::make_openssl_provider();
  auto a = make_member(*provider, kSidA, kSeedA);
  auto b = make_member(*provider, kSidB, kSeedB);
  std::array<uint8_t, 1500> buf, out;
  GroupExchange ex, ex_b;
  auto n = a->protect_request(group_get("temp"), buf, ex);
  ASSERT_TRUE(n);
  auto rx = b->verify_request(ByteView(buf.data(), *n), out, ex_b);
  ASSERT_EQ(rx.error(), Error::kUnknownSender);
  PendingMessages pending;
  ASSERT_TRUE(pending.keep(ByteView(buf.data(), *n), kFrom, TimePoint{}, rx.error()));
  EXPECT_FALSE(pending.needs_material());
  ASSERT_TRUE(b->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
  int ok = 0;
  pending.retry(TimePoint{} + seconds(1), [&](ByteView d, const coap::Address& from) {
    EXPECT_EQ(from, kFrom);
    ok += bool(b->verify_request(d, out, ex_b));
    return true;
  });
  EXPECT_EQ(ok, 1);
}

TEST(Pending, Bounds) {
  PendingLimits lim;
  lim.max_messages = 3;
  lim.max_bytes = 100;
  lim.max_age = seconds(10);
  PendingMessages p(lim);
  const TimePoint t0{};
  const Bytes small(30, 1), big(101, 2);
  // Only the two "fetch and retry" failures are kept.
  EXPECT_FALSE(p.keep(small, kFrom, t0, Error::kBadSignature));
  EXPECT_FALSE(p.keep(small, kFrom, t0, Error::kReplay));
  EXPECT_FALSE(p.keep(big, kFrom, t0, Error::kUnknownGroupId));
  for (int i = 0; i < 5; ++i) {
    Bytes d(30, static_cast<uint8_t>(i));
    EXPECT_TRUE(p.keep(d, kFrom, t0 + seconds(i), Error::kUnknownGroupId));
  }
  EXPECT_EQ(p.size(), 3u);  // the count bound dropped the two oldest
  EXPECT_EQ(p.bytes(), 90u);
  EXPECT_EQ(p.num_dropped(), 2u);
  EXPECT_TRUE(p.keep(Bytes(60, 9), kFrom, t0 + seconds(5), Error::kUnknownSender));
  EXPECT_LE(p.bytes(), 100u);  // the byte bound dropped more
  EXPECT_EQ(p.size(), 2u);
  // Age: at t0 + 14 s the message of t0 + 4 s is exactly 10 s old: kept; at 14.5 s not.
  p.expire(t0 + seconds(14));
  EXPECT_EQ(p.size(), 2u);
  p.expire(t0 + std::chrono::milliseconds(14500));
  EXPECT_EQ(p.size(), 1u);
  std::vector<uint8_t> first_bytes;
  p.retry(t0 + seconds(15), [&](ByteView d, const coap::Address&) {
    first_bytes.push_back(d[0]);
    return false;
  });
  EXPECT_EQ(first_bytes, (std::vector<uint8_t>{9}));
  EXPECT_EQ(p.size(), 1u);
  EXPECT_FALSE(p.needs_material());
}

}  // namespace
}  // namespace acekdc::grouposcore
