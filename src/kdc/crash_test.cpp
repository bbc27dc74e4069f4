// Crash safety of SqliteStore: a child process writes a stream of add_member and
// put_key_material transactions and reports each acknowledged one through a pipe;
// the parent kills it with SIGKILL at a random (seeded) moment, reopens the
// database and checks that every acknowledged operation is there, that num never
// went back, and that PRAGMA integrity_check passes.
//
// This exercises atomicity and the commit protocol against a process crash; the
// kernel still holds written pages, so it does not simulate a power loss.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

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
  uint32_t kind;  // 1 = member i added, 2 = key material version i stored, 3 = child error
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

void run_one(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
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
    child(path, fds[1]);
  }
  close(fds[1]);

  std::map<uint64_t, bool> members_acked;
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
  // At most the one operation in flight at the kill may have committed unacknowledged.
  EXPECT_LE(g->members.size(), members_acked.size() + 1);
  EXPECT_GE(g->key.num, max_num_acked) << "num went back";
  EXPECT_LE(g->key.num, max_num_acked + 1);
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

TEST(SqliteCrashTest, AcknowledgedWritesSurviveKill9) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    run_one(seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace acekdc::kdc
