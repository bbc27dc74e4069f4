// Replay window (RFC 8613 §7.4) and sequence number persistence (Appendix B.1.1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

TEST_F(FileStoreTest, UnwritableDirectoryFails) {
  FileSequenceStore s("/proc/definitely/not/writable");
  EXPECT_EQ(s.reserve("k", 1).error(), Error::kStorageFailure);
}

}  // namespace
