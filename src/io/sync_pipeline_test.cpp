// SyncPipeline: datagrams wait for the sync of every write before them; order kept;
// a failed sync releases nothing and reports once. And over real UDP: a Loop with a
// pipeline answers only after the round's sync returned.
#include "io/sync_pipeline.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "coap/server.h"
#include "io/client.h"
#include "io/udp.h"

namespace acekdc::io {
namespace {

// Gate: sync() blocks until the test allowed that many syncs; answers `ok`.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int allowed = 0;
  int calls = 0;
  bool ok = true;
  bool sync() {
    std::unique_lock lock(mu);
    const int me = ++calls;
    cv.notify_all();  // wait_started
    cv.wait(lock, [&] { return allowed >= me; });
    return ok;
  }
  // wait_started: until the commit thread has entered its n-th sync.
  void wait_started(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return calls >= n; });
  }
  void allow(int n) {
    {
      std::lock_guard lock(mu);
      allowed += n;
    }
    cv.notify_all();
  }
};

coap::Transmit tx(uint8_t tag) { return coap::Transmit{*coap::Address::parse("127.0.0.1:9"), Bytes{tag}}; }

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

TEST(SyncPipeline, HoldsUntilTheSyncOfEveryEarlierWriteReturned) {
  Gate g;
  int failures = 0;
  SyncPipeline p([&] { return g.sync(); }, [&] { ++failures; });
  const coap::Transmit a[] = {tx(1)};
  EXPECT_FALSE(p.hold(a));  // nothing unsynced: send at once
  p.mark_unsynced();
  const coap::Transmit b[] = {tx(2), tx(3)};
  EXPECT_TRUE(p.hold(b));
  g.wait_started(1);  // else round 1's sync could start late and cover round 2 too
  p.mark_unsynced();  // round 2 while round 1's sync runs
  const coap::Transmit c[] = {tx(4)};
  EXPECT_TRUE(p.hold(c));
  EXPECT_TRUE(p.take_released().empty());
  g.allow(1);  // round 1 durable; the thread then starts round 2's sync
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  auto r1 = p.take_released();
  ASSERT_EQ(r1.size(), 2u);
  EXPECT_EQ(r1[0].data, Bytes{2});
  EXPECT_EQ(r1[1].data, Bytes{3});
  EXPECT_TRUE(p.has_held());
  g.allow(1);
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  auto r2 = p.take_released();
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].data, Bytes{4});
  EXPECT_FALSE(p.has_held());
  EXPECT_FALSE(p.hold(a));  // all durable again
  EXPECT_EQ(p.syncs_done(), 2u);
  EXPECT_EQ(failures, 0);
}

// A window opened while a sync runs stays open; its datagrams wait for its own sync,
// not for the running one; on_durable (on the loop's side) commits it.
TEST(SyncPipeline, OpenRoundWaitsForItsOwnSyncAndOnDurableCommitsIt) {
  Gate g;
  SyncPipeline p([&] { return g.sync(); }, [] {});
  int on_durable = 0;
  p.set_on_durable([&] {
    ++on_durable;
    if (on_durable == 1) p.mark_unsynced();  // the open window's commit
  });
  p.mark_unsynced();  // round 1 committed
  g.wait_started(1);
  p.open_round();  // round 2's window: not committed while round 1 syncs
  const coap::Transmit a[] = {tx(1)};
  EXPECT_TRUE(p.hold(a));
  EXPECT_TRUE(p.sync_in_flight());
  g.allow(1);
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  EXPECT_TRUE(p.take_released().empty()) << "round 2 is not durable yet";
  EXPECT_EQ(on_durable, 1);
  EXPECT_TRUE(p.sync_in_flight());  // round 2's sync, asked for by on_durable
  g.allow(1);
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  auto r = p.take_released();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].data, Bytes{1});
  EXPECT_EQ(on_durable, 2);
  EXPECT_FALSE(p.sync_in_flight());
}

// set_inline_below: a fast sync runs on the caller's thread (nothing held), a slow
// one sends the next to the commit thread; datagrams of a window committed from
// on_durable with an inline sync are released without another wake-up.
TEST(SyncPipeline, FastSyncsRunInlineSlowOnesOnTheThread) {
  std::mutex mu;
  std::vector<std::thread::id> ran_on;
  std::atomic<int> delay_ms{0};
  SyncPipeline p(
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
        std::lock_guard lock(mu);
        ran_on.push_back(std::this_thread::get_id());
        return true;
      },
      [] {});
  p.set_inline_below(std::chrono::milliseconds(2));
  p.open_round();
  p.mark_unsynced();  // last sync 0 us: inline
  EXPECT_FALSE(p.sync_in_flight());
  const coap::Transmit a[] = {tx(1)};
  EXPECT_FALSE(p.hold(a)) << "durable already: sent at once";
  delay_ms = 10;
  p.mark_unsynced();  // still inline (the last one was fast), takes 10 ms
  delay_ms = 0;
  p.mark_unsynced();  // the last took >= 2 ms: the commit thread
  const coap::Transmit b[] = {tx(2)};
  const bool held = p.hold(b);
  p.wait_idle();
  if (held) {
    ASSERT_TRUE(wait_readable(p.wake_fd()));
    EXPECT_EQ(p.take_released().size(), 1u);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(ran_on.size(), 3u);
  EXPECT_EQ(ran_on[0], std::this_thread::get_id());
  EXPECT_EQ(ran_on[1], std::this_thread::get_id());
  EXPECT_NE(ran_on[2], std::this_thread::get_id());
  EXPECT_EQ(p.syncs_done(), 3u);
}

TEST(SyncPipeline, InlineSyncFromOnDurableReleasesTheOpenWindow) {
  std::atomic<int> delay_ms{5};
  SyncPipeline p(
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
        return true;
      },
      [] {});
  p.set_inline_below(std::chrono::milliseconds(2));
  int on_durable = 0;
  p.set_on_durable([&] {
    // Commits the open window (once): inline (idle, the last sync was fast).
    if (++on_durable == 1) p.mark_unsynced();
  });
  p.mark_unsynced();  // round 1 inline, slow (5 ms)
  delay_ms = 0;
  p.mark_unsynced();  // round 2: the commit thread (the last sync was slow)
  p.open_round();     // round 3's window, open while round 2 syncs (or just after)
  const coap::Transmit a[] = {tx(7)};
  ASSERT_TRUE(p.hold(a));
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  auto first = p.take_released();  // round 2 durable: on_durable commits and syncs round 3 inline
  EXPECT_TRUE(first.empty());
  EXPECT_EQ(on_durable, 1);
  ASSERT_TRUE(wait_readable(p.wake_fd())) << "the inline sync must wake the loop for the held datagram";
  auto second = p.take_released();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].data, Bytes{7});
  EXPECT_EQ(p.syncs_done(), 3u);
}

TEST(SyncPipeline, RequestsWhileASyncRunsCoalesce) {
  Gate g;
  SyncPipeline p([&] { return g.sync(); }, [] {});
  p.mark_unsynced();
  const coap::Transmit a[] = {tx(1)};
  EXPECT_TRUE(p.hold(a));
  p.mark_unsynced();
  p.mark_unsynced();
  p.mark_unsynced();
  const coap::Transmit b[] = {tx(2)};
  EXPECT_TRUE(p.hold(b));
  g.allow(2);  // the first sync (round 1 or more) and one more covering rounds up to 4
  p.wait_idle();
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  auto r = p.take_released();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_LE(p.syncs_done(), 2u);
}

TEST(SyncPipeline, AFailedSyncReleasesNothingAndReportsOnce) {
  Gate g;
  g.ok = false;
  int failures = 0;
  SyncPipeline p([&] { return g.sync(); }, [&] { ++failures; });
  p.mark_unsynced();
  const coap::Transmit a[] = {tx(1)};
  EXPECT_TRUE(p.hold(a));
  g.allow(10);
  ASSERT_TRUE(wait_readable(p.wake_fd()));
  EXPECT_TRUE(p.take_released().empty());
  EXPECT_EQ(failures, 1);
  EXPECT_FALSE(p.has_held());
  const coap::Transmit b[] = {tx(2)};
  EXPECT_TRUE(p.hold(b));  // nothing goes out after a failure
  EXPECT_TRUE(p.take_released().empty());
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(p.syncs_done(), 0u);
}

// Over UDP: the handler's write is "committed" (mark_unsynced); the client gets no
// answer (not even from the endpoint's duplicate cache for its retransmissions)
// until the sync returned.
TEST(SyncPipeline, LoopAnswersOnlyAfterTheSync) {
  SystemClock clock;
  SystemRandom rnd;
  coap::Endpoint ep(clock, rnd);
  coap::Server server(ep);
  Gate g;
  SyncPipeline pipeline([&] { return g.sync(); }, [] {});
  server.add("/w").on(coap::code::kPost, [&](coap::Request&, coap::Message& r) {
    pipeline.mark_unsynced();
    r.code = coap::code::kChanged;
  });
  auto sock = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
  ASSERT_TRUE(sock);
  const coap::Address addr = sock->local_address();
  Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  loop.set_sync_pipeline(&pipeline);
  std::thread t([&] { loop.run(); });
  std::atomic<bool> answered{false};
  std::optional<coap::Message> got;
  std::thread c([&] {
    BlockingClient client;
    coap::Message req(coap::Type::kCon, coap::code::kPost);
    req.set_uri_path("/w");
    auto res = client.request(addr, req, {}, seconds(20));
    if (res && res->response) got = *res->response;
    answered = true;
  });
  // Past the first retransmission (ACK_TIMEOUT 2-3 s) would be slow; 400 ms shows the hold.
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_FALSE(answered.load());
  g.allow(100);
  c.join();
  loop.stop();
  t.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, coap::code::kChanged);
  EXPECT_GE(pipeline.syncs_done(), 1u);
}

}  // namespace
}  // namespace acekdc::io
