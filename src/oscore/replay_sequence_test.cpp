// Replay window (RFC 8613 §7.4) and sequence number persistence (Appendix B.1.1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "oscore/replay.h"
#include "oscore/sequence_store.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

bool accept(ReplayWindow& w, uint64_t seq) {
  if (!w.check(seq)) return false;
  w.update(seq);
  return true;
}

TEST(ReplayWindow, AcceptsOnceAndSlides) {
  ReplayWindow w;  // default 32
  EXPECT_EQ(w.size(), 32u);
  EXPECT_TRUE(accept(w, 5));
  EXPECT_FALSE(accept(w, 5));
  EXPECT_TRUE(accept(w, 0));   // older but inside the window
  EXPECT_FALSE(accept(w, 0));
  EXPECT_TRUE(accept(w, 40));  // slides: 5 is now 35 behind
  EXPECT_FALSE(w.check(5));
  EXPECT_FALSE(w.check(8));    // offset 32 == size: outside
  EXPECT_TRUE(w.check(9));     // offset 31: inside and unseen
  EXPECT_TRUE(accept(w, 9));
  EXPECT_FALSE(accept(w, 9));
  EXPECT_EQ(w.highest(), 40u);
}

TEST(ReplayWindow, CheckDoesNotUpdate) {
  ReplayWindow w(16);
  EXPECT_TRUE(w.check(3));
  EXPECT_TRUE(w.check(3));  // check alone never marks
  EXPECT_FALSE(w.any());
  w.update(3);
  EXPECT_FALSE(w.check(3));
}

TEST(ReplayWindow, LargeWindowAcrossWordBoundaries) {
  ReplayWindow w(1024);
  EXPECT_EQ(w.size(), 1024u);
  for (uint64_t s = 0; s < 2000; s += 3) ASSERT_TRUE(accept(w, s)) << s;
  // Everything still in the window that was accepted is a replay; the gaps are not.
  for (uint64_t s = 1998 - 1023; s <= 1998; ++s) {
    EXPECT_EQ(w.check(s).has_value(), s % 3 != 0) << s;
  }
  EXPECT_FALSE(w.check(1998 - 1024));  // just outside
  // A jump by 100 (not a multiple of 64) keeps older marks at the right offsets.
  ASSERT_TRUE(accept(w, 2098));
  EXPECT_FALSE(w.check(1998));
  EXPECT_FALSE(w.check(1995));
  EXPECT_TRUE(w.check(1997));
  EXPECT_TRUE(accept(w, 1997));
  // A jump beyond the window clears it.
  ASSERT_TRUE(accept(w, 100000));
  EXPECT_FALSE(w.check(2098));
  EXPECT_TRUE(w.check(100000 - 1023));
}

TEST(ReplayWindow, SizeIsClamped) {
  EXPECT_EQ(ReplayWindow(0).size(), 1u);
  EXPECT_EQ(ReplayWindow(5000).size(), ReplayWindow::kMaxSize);
  ReplayWindow w(1);
  EXPECT_TRUE(accept(w, 10));
  EXPECT_FALSE(accept(w, 9));
  EXPECT_TRUE(accept(w, 11));
}

TEST(ReplayWindow, StampChangesWithEveryChangeAndNeverRepeats) {
  ReplayWindow w(64);
  const uint64_t s0 = w.stamp();
  EXPECT_EQ(w.stamp(), s0) << "a check is not a change";
  ASSERT_TRUE(w.check(5));
  EXPECT_EQ(w.stamp(), s0);
  w.update(5);
  const uint64_t s1 = w.stamp();
  EXPECT_NE(s1, s0);
  w.update(3);  // inside the window: only a bit changes
  EXPECT_NE(w.stamp(), s1);
  ReplayWindow copy = w;
  EXPECT_EQ(copy.stamp(), w.stamp()) << "a copy has the same content";
  auto back = ReplayWindow::deserialize(w.serialize());
  ASSERT_TRUE(back);
  EXPECT_NE(back->stamp(), w.stamp()) << "a replacement never carries an earlier stamp";
  const uint64_t s2 = w.stamp();
  w.mark_uninitialised();
  EXPECT_NE(w.stamp(), s2);
  const uint64_t s3 = w.stamp();
  w.initialise_at(9);
  EXPECT_NE(w.stamp(), s3);
}

TEST(Sequence, ReservesInChunksBeforeUse) {
  MemorySequenceStore store;
  SequenceAllocator a(&store, "k", 10);
  ASSERT_TRUE(a.start());
  EXPECT_EQ(store.num_writes(), 0u);
  for (uint64_t i = 0; i < 10; ++i) {
    auto s = a.next();
    ASSERT_TRUE(s);
    EXPECT_EQ(*s, i);
    EXPECT_EQ(*store.load("k"), 10u);  // reserved before number 0 was handed out
  }
  EXPECT_EQ(store.num_writes(), 1u);
  EXPECT_EQ(*a.next(), 10u);
  EXPECT_EQ(*store.load("k"), 20u);
  EXPECT_EQ(store.num_writes(), 2u);
}

TEST(Sequence, RestartStartsAtPersistedReservation) {
  MemorySequenceStore store;
  {
    SequenceAllocator a(&store, "ctx", 1000);
    ASSERT_TRUE(a.start());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.next());
  }  // "crash" after using 0..4
  SequenceAllocator b(&store, "ctx", 1000);
  ASSERT_TRUE(b.start());
  EXPECT_EQ(*b.next(), 1000u);  // never reuses 0..999
  EXPECT_EQ(*store.load("ctx"), 2000u);
}

TEST(Sequence, StorageFailureHandsOutNothing) {
  MemorySequenceStore store;
  store.fail_after(1);
  SequenceAllocator a(&store, "k", 2);
  ASSERT_TRUE(a.start());
  EXPECT_EQ(*a.next(), 0u);
  EXPECT_EQ(*a.next(), 1u);
  auto r = a.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kStorageFailure);
  EXPECT_EQ(a.peek(), 2u);
  store.fail_after(-1);
  EXPECT_EQ(*a.next(), 2u);
}

TEST(Sequence, NeverWrapsPast2To40) {
  MemorySequenceStore store;
  const uint64_t max = (uint64_t{1} << 40) - 1;
  ASSERT_TRUE(store.reserve("k", max - 1));
  SequenceAllocator a(&store, "k", 1000);
  ASSERT_TRUE(a.start());
  EXPECT_EQ(*a.next(), max - 1);
  EXPECT_EQ(*store.load("k"), max + 1);  // the reservation is capped
  EXPECT_EQ(*a.next(), max);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.next().error(), Error::kSequenceExhausted);
}

TEST(Sequence, WithoutStoreCountsFromInitial) {
  SequenceAllocator a(nullptr, "k");
  ASSERT_TRUE(a.start(20));
  EXPECT_EQ(*a.next(), 20u);
  EXPECT_EQ(*a.next(), 21u);
}

// ---- Reservation ahead of use, off the send path ----

SequenceAllocatorOptions manual_options(ManualSequenceWriter& w) {
  SequenceAllocatorOptions o;
  o.writer = &w;
  o.max_wait = std::chrono::milliseconds(0);
  return o;
}

TEST(SequenceAsync, FirstNumberWaitsForTheFirstReservation) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  SequenceAllocator a(&store, "k", 10, manual_options(w));
  ASSERT_TRUE(a.start());
  // Nothing durable yet and the write has not run: fails cleanly, hands out nothing.
  auto r = a.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kStorageFailure);
  EXPECT_EQ(a.peek(), 0u);
  EXPECT_TRUE(a.write_in_flight());
  EXPECT_EQ(w.run_all(), 1u);
  EXPECT_EQ(*store.load("k"), 10u);
  EXPECT_EQ(*a.next(), 0u);
}

TEST(SequenceAsync, NextChunkIsWrittenAtLowWaterWhileSendsContinue) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  SequenceAllocator a(&store, "k", 10, manual_options(w));
  ASSERT_TRUE(a.start());
  (void)a.next();
  w.run_all();
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(*a.next(), i);
  EXPECT_EQ(w.num_pending(), 0u);  // 5 reserved numbers left: not yet low
  EXPECT_EQ(*a.next(), 5u);        // crosses the low-water mark (chunk / 2)
  EXPECT_EQ(w.num_pending(), 1u);
  // The write is in flight: numbers below the durable limit keep coming.
  for (uint64_t i = 6; i < 10; ++i) {
    EXPECT_EQ(*a.next(), i);
    EXPECT_EQ(*store.load("k"), 10u);
  }
  // The durable limit is reached and the write has not completed: nothing beyond it.
  EXPECT_EQ(a.next().error(), Error::kStorageFailure);
  EXPECT_EQ(a.peek(), 10u);
  EXPECT_EQ(a.reserved_upto(), 10u);
  w.run_all();
  EXPECT_EQ(*store.load("k"), 20u);
  EXPECT_EQ(*a.next(), 10u);
  EXPECT_EQ(store.num_writes(), 2u);
}

TEST(SequenceAsync, CompletedWriteMeansNoStallAtTheChunkBoundary) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  SequenceAllocator a(&store, "k", 100, manual_options(w));
  ASSERT_TRUE(a.start());
  (void)a.next();
  w.run_all();
  for (uint64_t i = 0; i < 1000; ++i) {
    auto s = a.next();
    ASSERT_TRUE(s) << i;
    EXPECT_EQ(*s, i);
    EXPECT_LT(*s, *store.load("k"));
    w.run_all();  // the "event loop" runs the writes between messages
  }
  EXPECT_EQ(store.num_writes(), 11u);  // one per chunk, 10 used + 1 ahead
}

TEST(SequenceAsync, ChunkGrowsWhenTheSenderOutrunsTheWrites) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  SequenceAllocatorOptions o = manual_options(w);
  o.max_chunk = 40;
  SequenceAllocator a(&store, "k", 10, o);
  ASSERT_TRUE(a.start());
  (void)a.next();
  w.run_all();
  EXPECT_EQ(a.current_chunk(), 10u);
  uint64_t expected = 0;
  for (int round = 0; round < 6; ++round) {
    // Use everything durable while the write stays in flight, up to the limit.
    for (;;) {
      auto s = a.next();
      if (!s) {
        EXPECT_EQ(s.error(), Error::kStorageFailure);
        break;
      }
      EXPECT_EQ(*s, expected++);
      EXPECT_LT(*s, *store.load("k"));
    }
    w.run_all();
  }
  EXPECT_EQ(a.current_chunk(), 40u);  // 10 -> 20 -> 40, capped
  EXPECT_EQ(a.num_waits(), 7u);        // the first number, then each round at the durable limit
  EXPECT_LE(*store.load("k"), a.peek() + 2 * 40);
}

// With a clock, each reservation lasts about chunk_interval at the sender's
// recent rate: fewer writes for a fast sender, `chunk` for a slow one, never
// above max_chunk, and never a number above the durable reservation.
TEST(SequenceAsync, ChunkIsSizedByTheRate) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  FakeClock clock;
  SequenceAllocatorOptions o = manual_options(w);
  o.clock = &clock;
  o.chunk_interval = std::chrono::milliseconds(100);
  o.max_chunk = 4000;
  SequenceAllocator a(&store, "k", 100, o);
  ASSERT_TRUE(a.start());
  (void)a.next();
  w.run_all();
  uint64_t expected = 0;
  // send_for: `per_ms` numbers every millisecond for `ms` milliseconds; the
  // writer runs every millisecond (a write completes within 1 ms).
  auto send_for = [&](int ms, uint64_t per_ms) {
    for (int t = 0; t < ms; ++t) {
      for (uint64_t i = 0; i < per_ms; ++i) {
        auto s = a.next();
        ASSERT_TRUE(s);
        ASSERT_EQ(*s, expected++);
        ASSERT_LT(*s, *store.load("k"));
      }
      clock.advance(std::chrono::milliseconds(1));
      w.run_all();
    }
  };
  // 10 numbers per ms = 10,000/s: ~1,000 per 100 ms.
  send_for(500, 10);
  EXPECT_GE(a.current_chunk(), 900u);
  EXPECT_LE(a.current_chunk(), 1100u);
  const uint64_t writes_fast = store.num_writes();
  send_for(1000, 10);
  EXPECT_LE(store.num_writes() - writes_fast, 12u);  // ~1 write per 100 ms (chunk 100: 100)
  // 100 per ms would be 10,000 per 100 ms: capped at max_chunk.
  send_for(300, 100);
  EXPECT_EQ(a.current_chunk(), 4000u);
  // Slow again (1 per ms = 100 per 100 ms): back down to the configured chunk.
  send_for(12000, 1);
  EXPECT_EQ(a.current_chunk(), 100u);
  // A crash now loses at most one chunk plus the low-water remainder.
  EXPECT_LE(*store.load("k") - a.peek(), 2 * a.current_chunk() + 4000u);
  EXPECT_EQ(a.num_waits(), 1u);  // the first number only: every later write was durable in time
}

TEST(SequenceAsync, FailedWriteSurfacesAndNothingBeyondTheDurableLimitIsUsed) {
  MemorySequenceStore store;
  store.fail_after(1);
  ManualSequenceWriter w;
  SequenceAllocator a(&store, "k", 10, manual_options(w));
  ASSERT_TRUE(a.start());
  (void)a.next();
  w.run_all();
  for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(*a.next(), i);
  ASSERT_EQ(w.run_all(), 1u);  // the write for 10..19 fails
  auto r = a.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kStorageFailure);
  EXPECT_EQ(a.peek(), 6u);
  // Numbers already durable stay usable; the write is retried, and keeps failing.
  std::vector<uint64_t> used;
  for (int i = 0; i < 20; ++i) {
    auto s = a.next();
    if (s) used.push_back(*s);
    w.run_all();
  }
  EXPECT_EQ(used, (std::vector<uint64_t>{6, 7, 8, 9}));
  EXPECT_EQ(*store.load("k"), 10u);
  // Storage recovers: the next retry succeeds and numbering goes on without a gap.
  store.fail_after(-1);
  (void)a.next();
  w.run_all();
  EXPECT_EQ(*a.next(), 10u);
  EXPECT_EQ(*store.load("k"), 20u);
}

TEST(SequenceAsync, CrashWithWriteInFlightRestartsAtDurableValue) {
  MemorySequenceStore store;
  uint64_t last_used = 0;
  {
    ManualSequenceWriter w;
    SequenceAllocator a(&store, "k", 10, manual_options(w));
    ASSERT_TRUE(a.start());
    (void)a.next();
    w.run_all();
    for (int i = 0; i < 8; ++i) last_used = *a.next();
    EXPECT_TRUE(a.write_in_flight());
  }  // "kill -9": the queued write for 10..19 never ran
  EXPECT_EQ(*store.load("k"), 10u);
  SequenceAllocator b(&store, "k", 10);
  ASSERT_TRUE(b.start());
  auto s = b.next();
  ASSERT_TRUE(s);
  EXPECT_GT(*s, last_used);
  EXPECT_EQ(*s, 10u);
}

TEST(SequenceAsync, AllocatorMayGoAwayBeforeItsWriteRuns) {
  MemorySequenceStore store;
  ManualSequenceWriter w;
  {
    SequenceAllocator a(&store, "k", 4, manual_options(w));
    ASSERT_TRUE(a.start());
    (void)a.next();
  }
  EXPECT_EQ(w.run_all(), 1u);  // the job owns what it writes to
  EXPECT_EQ(*store.load("k"), 4u);
}

// GatedStore: reserve() blocks while the gate is closed (a slow fsync, stretched).
class GatedStore final : public SequenceStore {
 public:
  Expected<uint64_t, Error> load(std::string_view key) override { return inner_.load(key); }
  Expected<void, Error> reserve(std::string_view key, uint64_t upto) override {
    {
      std::unique_lock lock(mu_);
      ++num_started_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
    }
    return inner_.reserve(key, upto);
  }
  void set_open(bool open) {
    std::lock_guard lock(mu_);
    open_ = open;
    cv_.notify_all();
  }
  void wait_started(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return num_started_ >= n; });
  }
  uint64_t durable(std::string_view key) { return *inner_.load(key); }

 private:
  MemorySequenceStore inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int num_started_ = 0;
};

TEST(SequenceAsync, ThreadWriterSendsContinueWhileWriteIsSlowAndWaitsAtTheLimit) {
  GatedStore store;
  ThreadSequenceWriter writer;
  SequenceAllocatorOptions o;
  o.writer = &writer;
  o.max_wait = std::chrono::milliseconds(30000);
  SequenceAllocator a(&store, "k", 10, o);
  ASSERT_TRUE(a.start());
  EXPECT_EQ(*a.next(), 0u);  // waited for the first write (gate open)
  EXPECT_EQ(store.durable("k"), 10u);
  store.set_open(false);
  for (uint64_t i = 1; i < 6; ++i) EXPECT_EQ(*a.next(), i);
  store.wait_started(2);  // the writer thread is now stuck in the second write
  for (uint64_t i = 6; i < 10; ++i) {
    EXPECT_EQ(*a.next(), i);  // sends continue while the write is in flight
    EXPECT_EQ(store.durable("k"), 10u);
  }
  std::atomic<bool> opened{false};
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    opened = true;
    store.set_open(true);
  });
  auto s = a.next();  // at the durable limit: blocks until the write is durable
  EXPECT_TRUE(opened.load());
  opener.join();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, 10u);
  EXPECT_GE(store.durable("k"), 20u);  // the next write (a doubled chunk) may be done too
  EXPECT_EQ(a.current_chunk(), 20u);   // it had to wait: the chunk grows
}

TEST(SequenceAsync, ThreadWriterGivesUpAfterMaxWait) {
  GatedStore store;
  ThreadSequenceWriter writer;
  SequenceAllocatorOptions o;
  o.writer = &writer;
  o.max_wait = std::chrono::milliseconds(20);
  SequenceAllocator a(&store, "k", 4, o);
  ASSERT_TRUE(a.start());
  store.set_open(false);
  auto r = a.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::kStorageFailure);
  EXPECT_EQ(a.peek(), 0u);
  store.set_open(true);  // the same write completes; the next call takes it in
  for (int i = 0; i < 10000 && store.durable("k") != 4u; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto s = a.next();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, 0u);
  EXPECT_EQ(store.durable("k"), 4u);
}

TEST(SequenceAsync, ThreadWriterInvariantHoldsUnderLoad) {
  MemorySequenceStore store;
  ThreadSequenceWriter writer;
  SequenceAllocatorOptions o;
  o.writer = &writer;
  SequenceAllocator a(&store, "k", 7, o);
  ASSERT_TRUE(a.start());
  for (uint64_t i = 0; i < 20000; ++i) {
    auto s = a.next();
    ASSERT_TRUE(s);
    ASSERT_EQ(*s, i);
    ASSERT_LT(*s, *store.load("k"));  // durable before use, always
  }
}

TEST(Sequence, KeyNamesContextAndSender) {
  const uint8_t ctx[] = {0x37, 0xcb};
  const uint8_t sid[] = {0x01};
  EXPECT_EQ(sequence_key(ctx, true, sid), "37cb.01");
  EXPECT_EQ(sequence_key({}, false, {}), "-.-");
  EXPECT_EQ(sequence_key({}, true, sid), ".01");
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("oscore_seq_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(FileStoreTest, PersistsAcrossInstances) {
  {
    FileSequenceStore s(dir_.string());
    EXPECT_EQ(*s.load("37cb.01"), 0u);  // missing file = nothing used yet
    SequenceAllocator a(&s, "37cb.01", 1000);
    ASSERT_TRUE(a.start());
    EXPECT_EQ(*a.next(), 0u);
  }
  FileSequenceStore s2(dir_.string());
  EXPECT_EQ(*s2.load("37cb.01"), 1000u);
  SequenceAllocator b(&s2, "37cb.01", 1000);
  ASSERT_TRUE(b.start());
  EXPECT_EQ(*b.next(), 1000u);
  EXPECT_EQ(*s2.load("37cb.01"), 2000u);
  // No temporary file is left behind, and other keys are independent.
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().extension(), ".01");
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_EQ(*s2.load("-.02"), 0u);
}

TEST_F(FileStoreTest, BackgroundWriterKeepsRestartAboveEveryUsedNumber) {
  uint64_t last_used = 0;
  {
    FileSequenceStore s(dir_.string());
    ThreadSequenceWriter writer;
    SequenceAllocatorOptions o;
    o.writer = &writer;
    SequenceAllocator a(&s, "37cb.01", 50, o);
    ASSERT_TRUE(a.start());
    for (int i = 0; i < 230; ++i) {
      auto n = a.next();
      ASSERT_TRUE(n);
      last_used = *n;
      ASSERT_LT(*n, *s.load("37cb.01"));
    }
  }  // the writer drains before the store goes
  FileSequenceStore s2(dir_.string());
  SequenceAllocator b(&s2, "37cb.01", 50);
  ASSERT_TRUE(b.start());
  EXPECT_GT(*b.next(), last_used);
}

TEST_F(FileStoreTest, CorruptFileIsAnError) {
  FileSequenceStore s(dir_.string());
  ASSERT_TRUE(s.reserve("a", 5));
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    std::ofstream(e.path()) << "12x\n";
  }
  EXPECT_EQ(s.load("a").error(), Error::kStorageFailure);
  SequenceAllocator a(&s, "a");
  EXPECT_EQ(a.start().error(), Error::kStorageFailure);
}

TEST_F(FileStoreTest, KeysCannotEscapeTheDirectory) {
  FileSequenceStore s(dir_.string());
  ASSERT_TRUE(s.reserve("../../x/y", 7));
  EXPECT_EQ(*s.load("../../x/y"), 7u);
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

// The store lists its directory once: keys with files written before it was made
// (by an earlier run) and by its own reserve() are read; a key without a file is 0
// without opening anything.
TEST_F(FileStoreTest, DirectoryIndexedAtOpen) {
  {
    FileSequenceStore s(dir_.string(), true);  // no directory yet
    EXPECT_EQ(*s.load("aa.01"), 0u);
    ASSERT_TRUE(s.reserve("aa.01", 64));
    EXPECT_EQ(*s.load("aa.01"), 64u);  // its own write, in the index
    ASSERT_TRUE(s.reserve("aa.01", 128));
    EXPECT_EQ(*s.load("aa.01"), 128u);
    EXPECT_EQ(*s.load("aa.02"), 0u);
  }
  std::ofstream(dir_ / "seq_bb.03.tmp") << "999\n";  // a crash's leftover: not a key's file
  FileSequenceStore s2(dir_.string(), true);
  EXPECT_EQ(*s2.load("aa.01"), 128u);  // written by the earlier store: listed at open
  EXPECT_EQ(*s2.load("bb.03"), 0u);
  ASSERT_TRUE(s2.reserve("bb.03", 5));
  EXPECT_EQ(*s2.load("bb.03"), 5u);
  // A file that appears later behind the store's back is not seen (one store
  // object per directory), a store made afterwards sees it.
  FileSequenceStore other(dir_.string());
  ASSERT_TRUE(other.reserve("cc.04", 9));
  EXPECT_EQ(*s2.load("cc.04"), 0u);
  EXPECT_EQ(*FileSequenceStore(dir_.string(), true).load("cc.04"), 9u);
  EXPECT_EQ(*FileSequenceStore(dir_.string()).load("cc.04"), 9u);  // without the index: opened
}

TEST_F(FileStoreTest, UnwritableDirectoryFails) {
  FileSequenceStore s("/proc/definitely/not/writable");
  EXPECT_EQ(s.reserve("k", 1).error(), Error::kStorageFailure);
}

}  // namespace
