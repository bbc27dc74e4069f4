// Crash safety of SqliteStore: a child process writes a stream of add_member and
// put_key_material transactions and reports each acknowledged one through a pipe;
// the parent kills it with SIGKILL at a random (seeded) moment, reopens the
// database and checks that every acknowledged operation is there, that num never
// went back, and that PRAGMA integrity_check passes.
//
// This exercises atomicity and the commit protocol against a process crash; the
// kernel still holds written pages, so it does not simulate a power loss.
//
// The batched variant does the same with group commit: the child runs its
// operations in begin_batch / commit_batch windows of 1..8 operations, announces
// each window before committing it and acknowledges its operations only after
// commit_batch returned. The parent then also checks that the database holds
// exactly a prefix of the operations ending at a window boundary (a batch is all
// or nothing).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "core/random.h"
#include "kdc/sqlite_store.h"
#include "kdc/test_util.h"

namespace acekdc::kdc {
namespace {

using testing::sample_config;
using testing::sample_key;
using testing::sample_member;
using testing::TempDir;

constexpr int64_t kNow = 1700000000;

// Ack: one acknowledged operation, written to the pipe in one write().
struct Ack {
  uint32_t kind;  // 1 = member i added, 2 = key material version i stored, 3 = child error,
                  // 4 = batch of operations [.., i) about to commit (batched mode)
  uint32_t pad;
  uint64_t i;
};

Bytes sender_id_for(uint64_t i) {
  return Bytes{static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
}

GroupKeyMaterial key_for(uint64_t num) {
  GroupKeyMaterial k = sample_key(num, 0, kNow + static_cast<int64_t>(num));
  k.group_id = Bytes{0x6b, static_cast<uint8_t>(num >> 16), static_cast<uint8_t>(num >> 8),
                     static_cast<uint8_t>(num)};
  k.master_secret[0] = static_cast<uint8_t>(num);
  return k;
}

Member member_for(uint64_t i) {
  return sample_member("node-" + std::to_string(i), sender_id_for(i), kNow + static_cast<int64_t>(i));
}

// op_is_member: operation i of the stream adds member i; the others store the
// next key material version.
bool op_is_member(uint64_t i) { return i % 3 != 2; }

[[noreturn]] void batched_child(const std::string& path, int fd, uint64_t seed) {
  auto s = SqliteStore::open(path);
  auto report = [&](uint32_t kind, uint64_t i) {
    Ack a{kind, 0, i};
    if (::write(fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a)) _exit(2);
  };
  if (!s) {
    report(3, 0);
    _exit(1);
  }
  FakeRandom rng(seed * 7919);
  uint64_t num = 0;
  uint64_t i = 0;
  while (i < 1000000) {
    const uint64_t n = 1 + rng.uniform(8);
    if (!(*s)->begin_batch()) {
      report(3, i);
      _exit(1);
    }
    std::vector<Ack> acks;
    for (uint64_t k = 0; k < n; ++k, ++i) {
      if (op_is_member(i)) {
        if (!(*s)->add_member("g1", member_for(i))) {
          report(3, i);
          _exit(1);
        }
        acks.push_back(Ack{1, 0, i});
      } else {
        if (!(*s)->put_key_material("g1", key_for(num + 1))) {
          report(3, i);
          _exit(1);
        }
        ++num;
        acks.push_back(Ack{2, 0, num});
      }
    }
    report(4, i);
    if (!(*s)->commit_batch()) {
      report(3, i);
      _exit(1);
    }
    for (const Ack& a : acks) report(a.kind, a.i);
  }
  _exit(0);
}

[[noreturn]] void child(const std::string& path, int fd) {
  auto s = SqliteStore::open(path);
  auto report = [&](uint32_t kind, uint64_t i) {
    Ack a{kind, 0, i};
    if (::write(fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a)) _exit(2);
  };
  if (!s) {
    report(3, 0);
    _exit(1);
  }
  uint64_t num = 0;
  for (uint64_t i = 0; i < 1000000; ++i) {
    if (i % 3 != 2) {
      if (!(*s)->add_member("g1", member_for(i))) {
        report(3, i);
        _exit(1);
      }
      report(1, i);
    } else {
      if (!(*s)->put_key_material("g1", key_for(num + 1))) {
        report(3, i);
        _exit(1);
      }
      ++num;
      report(2, num);
    }
  }
  _exit(0);
}

void run_one(uint64_t seed, bool batched = false) {
  SCOPED_TRACE("seed " + std::to_string(seed) + (batched ? " batched" : ""));
  TempDir dir;
  const std::string path = dir.file("kdc.db");
  {
    auto s = SqliteStore::open(path);
    ASSERT_TRUE(s);
    GroupConfig c = sample_config();
    c.max_members = 1000000;
    ASSERT_TRUE((*s)->create_group(c, key_for(0)));
  }
  FakeRandom rng(seed);
  const uint64_t kill_after_acks = 1 + rng.uniform(150);
  // Half the runs kill right after reading an ack (the child is then inside its
  // next transaction), the others after a random delay of up to 2 ms.
  const uint64_t extra_delay_us = rng.uniform(2) ? 0 : rng.uniform(2000);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    if (batched) batched_child(path, fds[1], seed);
    child(path, fds[1]);
  }
  close(fds[1]);

  std::map<uint64_t, bool> members_acked;
  std::vector<uint64_t> batch_ends{0};
  uint64_t max_num_acked = 0;
  uint64_t acks = 0;
  bool killed = false;
  bool child_error = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Ack a;
  for (;;) {
    if (!killed && acks >= kill_after_acks) {
      std::this_thread::sleep_for(std::chrono::microseconds(extra_delay_us));
      kill(pid, SIGKILL);
      killed = true;
    }
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
    const ssize_t n = read(fds[0], &a, sizeof a);
    if (n == 0) break;  // child gone and pipe drained: every ack it sent is read
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof a));
    ++acks;
    if (a.kind == 1) members_acked[a.i] = true;
    if (a.kind == 2) max_num_acked = std::max(max_num_acked, a.i);
    if (a.kind == 3) child_error = true;
    if (a.kind == 4) batch_ends.push_back(a.i);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(child_error);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto s = SqliteStore::open(path);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->integrity_check());
  auto g = (*s)->load_group("g1");
  ASSERT_TRUE(g);
  for (const auto& [i, ok] : members_acked) {
    auto it = g->members.find("node-" + std::to_string(i));
    ASSERT_NE(it, g->members.end()) << "acknowledged member " << i << " lost";
    EXPECT_EQ(it->second, member_for(i));
  }
  // At most the one operation (or batch) in flight at the kill may have committed
  // unacknowledged.
  if (!batched) {
    EXPECT_LE(g->members.size(), members_acked.size() + 1);
  }
  if (batched) {
    // The committed operations are exactly ops [0, end) for an announced batch end.
    uint64_t end = 0;
    uint64_t keys = 0;
    for (uint64_t i = 0;; ++i) {
      const bool present = op_is_member(i)
                               ? g->members.count("node-" + std::to_string(i)) == 1
                               : keys < g->key.num;
      if (!present) break;
      if (!op_is_member(i)) ++keys;
      end = i + 1;
    }
    EXPECT_EQ(keys, g->key.num) << "a key version beyond the committed prefix";
    size_t members_in_prefix = 0;
    for (uint64_t i = 0; i < end; ++i) members_in_prefix += op_is_member(i) ? 1 : 0;
    EXPECT_EQ(g->members.size(), members_in_prefix) << "a member beyond the committed prefix";
    EXPECT_NE(std::find(batch_ends.begin(), batch_ends.end(), end), batch_ends.end())
        << "committed prefix ends at op " << end << ", inside a batch";
  }
  EXPECT_GE(g->key.num, max_num_acked) << "num went back";
  EXPECT_LE(g->key.num, max_num_acked + (batched ? 8 : 1));
  EXPECT_EQ(g->key, key_for(g->key.num));
  // Every version up to the current one left its Group ID, and nothing else.
  ASSERT_EQ(g->used_group_ids.size(), g->key.num + 1);
  for (uint64_t v = 0; v <= g->key.num; ++v) {
    auto it = g->used_group_ids.find(key_for(v).group_id);
    ASSERT_NE(it, g->used_group_ids.end());
    EXPECT_EQ(it->second, v);
  }
  // The store carries on from where it stopped.
  EXPECT_TRUE((*s)->put_key_material("g1", key_for(g->key.num + 1)));
  EXPECT_TRUE((*s)->add_member("g1", member_for(999999)));
  ::testing::Test::RecordProperty("acks_seed_" + std::to_string(seed), static_cast<int>(acks));
}

TEST(SqliteCrashTest, BatchedAcknowledgedWritesSurviveKill9) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    run_one(seed, /*batched=*/true);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(SqliteCrashTest, AcknowledgedWritesSurviveKill9) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    run_one(seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace acekdc::kdc
