// AsPeerState: the AS's peer contexts across restarts (RFC 8613 Appendix B.1.1 /
// B.1.2): a request accepted before the restart is a replay afterwards, the
// client's next request is served without an extra round, an unreadable window
// costs one Echo round, and the AS's own Partial IVs never repeat.
#include "ace/as_peer_state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/option.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

oscore::ContextConfig peer_cfg(bool as_side) {
  oscore::ContextConfig cfg;
  cfg.params.master_secret = h("6d656d626572312d74657374");
  cfg.params.sender_id = as_side ? Bytes{} : h("01");
  cfg.params.recipient_id = as_side ? h("01") : Bytes{};
  return cfg;
}

class AsRestart : public ::testing::Test {
 protected:
  AsRestart() {
    dir_ = std::filesystem::temp_directory_path() /
           ("acekdc-as-peer-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    AsPolicy pol;
    ClientPolicy c;
    c.id = "member1";
    c.groups = {{"g1", kRoleRequester}};
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128);
    pol.audiences = {a};
    as_ = std::make_unique<AuthorizationServer>(*p_, rnd_, pol);
    oscore::ContextConfig cc = peer_cfg(false);
    cc.store = &client_seq_;  // the client persists its own numbers (as the CLI does)
    cc.seq_chunk = 4;
    client_ = std::move(*oscore::Context::create(*p_, cc));
    start();
  }
  ~AsRestart() override { std::filesystem::remove_all(dir_); }

  // start: a fresh AS process over the same state directory (the old one is gone
  // as after kill -9: nothing was flushed besides what sync() wrote).
  void start() {
    gate_ = std::make_unique<AceCoapGate>(*p_);
    state_ = std::make_unique<AsPeerState>(dir_.string());
    gate_->serve_as(*as_);
    auto ctx = state_->make_context(*p_, peer_cfg(true), rnd_);
    ASSERT_TRUE(ctx);
    as_ctx_ = ctx->get();
    gate_->add_peer("member1", std::move(*ctx));
  }

  Bytes token_request(uint16_t mid, std::optional<Bytes> echo = {}) {
    coap::Message req(coap::Type::kCon, code::kPost, mid);
    req.token = h("7b");
    req.set_uri_path("/token");
    req.set_uint(option::kContentFormat, cp::cf::kAceCbor);
    if (echo) req.set_option(option::kEcho, *echo);
    TokenRequest tr;
    tr.audience = "kdc";
    tr.scope = ScopeParam{false, encode_scope(Scope{{ScopeEntry{"g1", kRoleRequester}}})};
    req.payload = tr.encode();
    uint8_t buf[1024];
    oscore::Exchange ex;
    auto n = client_->protect_request(req, buf, ex);
    EXPECT_TRUE(n);
    Bytes wire(buf, buf + (n ? *n : 0));
    exchanges_[wire] = ex;
    return wire;
  }

  // served: the AS's answer to `wire` (after sync, as the serve loop does); the
  // inner code of a verified answer, or the outer code of an unprotected one.
  uint8_t served(const Bytes& wire, std::optional<Bytes>* echo = nullptr) {
    Bytes out = gate_->handle(wire, kNow);
    EXPECT_TRUE(state_->sync());
    auto outer = coap::Message::parse(out);
    EXPECT_TRUE(outer);
    if (!outer) return 0;
    const auto* osc = outer->find(option::kOscore);
    if (!osc) return outer->code;
    auto ov = oscore::parse_option(osc->value);
    EXPECT_TRUE(ov);
    if (ov && !ov->partial_iv.empty()) as_pivs_.push_back(to_bytes(ov->partial_iv));
    uint8_t dec[1024];
    oscore::Exchange ex = exchanges_.at(wire);  // a copy: a replay's answer verifies too
    auto d = client_->unprotect_response(out, ex, dec);
    EXPECT_TRUE(d);
    if (!d) return 0;
    auto inner = coap::Message::parse(ByteView(dec, *d));
    if (echo && inner->find(option::kEcho)) *echo = to_bytes(inner->find(option::kEcho)->value);
    return inner->code;
  }

  std::filesystem::path slots() const { return dir_ / "replay.slots"; }
  // file_bytes: the slot file's bytes [off, off + n).
  Bytes file_bytes(size_t off, size_t n) const {
    std::ifstream f(slots(), std::ios::binary);
    Bytes b(n);
    f.seekg(static_cast<std::streamoff>(off));
    f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    b.resize(static_cast<size_t>(f.gcount()));
    return b;
  }
  // damage_slots overwrites [off, off + n) of the slot file (a torn or damaged write).
  void damage_slots(size_t off, size_t n) {
    std::fstream f(slots(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(off));
    std::string junk(n, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(n));
  }
  // handled: the AS handles `wire` without committing its window (a request of a
  // loop round whose commit comes at the round's end); the answer stays unsent.
  void handled(const Bytes& wire) { (void)gate_->handle(wire, kNow); }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{9};
  std::filesystem::path dir_;
  std::unique_ptr<AuthorizationServer> as_;
  oscore::MemorySequenceStore client_seq_;
  std::unique_ptr<oscore::Context> client_;
  std::map<Bytes, oscore::Exchange> exchanges_;
  std::unique_ptr<AceCoapGate> gate_;
  std::unique_ptr<AsPeerState> state_;
  oscore::Context* as_ctx_ = nullptr;  // the AS's context of member1 (owned by gate_)
  std::vector<Bytes> as_pivs_;
};

TEST_F(AsRestart, PreRestartRequestIsAReplayNextRequestIsServed) {
  Bytes first = token_request(1);
  EXPECT_EQ(served(first), code::kCreated);
  EXPECT_EQ(served(first), code::kUnauthorized) << "replay before the restart";
  EXPECT_EQ(state_->num_restored(), 0u);

  start();  // kill -9 and restart
  EXPECT_EQ(state_->num_restored(), 1u);
  EXPECT_EQ(served(first), code::kUnauthorized) << "replay after the restart";
  EXPECT_EQ(served(token_request(2)), code::kCreated) << "the next request needs no Echo round";
  EXPECT_EQ(gate_->num_echo_challenges(), 0u);
}

TEST_F(AsRestart, WithoutPersistenceAReplayWouldBeServed) {
  // The weakness this fixes: a context made afresh at restart accepts the replay.
  Bytes first = token_request(1);
  EXPECT_EQ(served(first), code::kCreated);
  std::filesystem::remove_all(dir_);
  start();
  EXPECT_EQ(served(first), code::kCreated);
}

TEST_F(AsRestart, UnreadableWindowMeansEchoAndOwnPartialIvsNeverRepeat) {
  Bytes first = token_request(1);
  EXPECT_EQ(served(first), code::kCreated);
  for (int round = 0; round < 3; ++round) {
    damage_slots(0, std::filesystem::file_size(slots()));  // every slot pair unreadable
    start();
    EXPECT_EQ(state_->num_unreadable(), 1u);
    EXPECT_EQ(served(first), code::kUnauthorized) << "never served without the Echo";
    std::optional<Bytes> echo;
    EXPECT_EQ(served(token_request(10 + round), &echo), code::kUnauthorized);
    ASSERT_TRUE(echo) << "a protected 4.01 with an Echo challenge";
    EXPECT_EQ(served(token_request(20 + round, echo)), code::kCreated) << "the retry with the Echo";
  }
  // Each Echo challenge (two per round: the replay and the fresh request) went out
  // under a Partial IV of the AS's own: never twice, although every restart began afresh.
  ASSERT_EQ(as_pivs_.size(), 6u);
  EXPECT_EQ(std::set<Bytes>(as_pivs_.begin(), as_pivs_.end()).size(), 6u);
}

TEST_F(AsRestart, GroupCommitOneWriteForARoundAllReplaysAfterRestart) {
  // A loop round: three requests handled, then one commit and one sync.
  Bytes a = token_request(1), b = token_request(2), c = token_request(3);
  handled(a);
  handled(b);
  handled(c);
  auto n = state_->commit();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u) << "one window changed: one slot written for the round";
  EXPECT_TRUE(state_->sync_committed());
  start();  // kill -9 after the round's answers left
  EXPECT_EQ(state_->num_restored(), 1u);
  EXPECT_EQ(served(a), code::kUnauthorized);
  EXPECT_EQ(served(b), code::kUnauthorized);
  EXPECT_EQ(served(c), code::kUnauthorized);
  EXPECT_EQ(served(token_request(4)), code::kCreated);
  EXPECT_EQ(gate_->num_echo_challenges(), 0u);
}

TEST_F(AsRestart, CommittedButNotSyncedSurvivesKill9) {
  // kill -9 keeps the page cache: a committed window is read back even if the sync
  // never ran (its answers never left, so accepting less would also be safe).
  Bytes a = token_request(1);
  handled(a);
  ASSERT_TRUE(state_->commit());
  start();
  EXPECT_EQ(served(a), code::kUnauthorized);
}

TEST_F(AsRestart, TornSlotFallsBackToTheLastDurableCopy) {
  Bytes a = token_request(1), b = token_request(2);
  EXPECT_EQ(served(a), code::kCreated);  // slot 0, durable
  const Bytes durable = file_bytes(0, 256);
  handled(b);
  ASSERT_TRUE(state_->commit());  // slot 1, its sync never returns
  EXPECT_EQ(file_bytes(0, 256), durable) << "the durable copy is not overwritten";
  damage_slots(256 + 40, 100);  // power loss tore slot 1
  start();
  EXPECT_EQ(state_->num_restored(), 1u);
  EXPECT_EQ(state_->num_unreadable(), 0u);
  EXPECT_EQ(served(a), code::kUnauthorized) << "answered before: a replay";
  EXPECT_EQ(served(b), code::kCreated) << "its answer never left: accepted once more";
  EXPECT_EQ(gate_->num_echo_challenges(), 0u);
}

TEST_F(AsRestart, CommitBeforeTheSyncReturnedRewritesTheSameSlot) {
  EXPECT_EQ(served(token_request(1)), code::kCreated);  // slot 0, durable
  const Bytes durable = file_bytes(0, 256);
  handled(token_request(2));
  ASSERT_TRUE(state_->commit());  // slot 1, not synced
  handled(token_request(3));
  ASSERT_TRUE(state_->commit());  // a sync still outstanding: slot 1 again
  EXPECT_EQ(file_bytes(0, 256), durable) << "the only durable copy is kept until a sync returned";
  EXPECT_TRUE(state_->sync_committed());
  handled(token_request(4));
  ASSERT_TRUE(state_->commit());  // now slot 0 may be overwritten
  EXPECT_NE(file_bytes(0, 256), durable);
}

TEST_F(AsRestart, WindowOfAnEarlierVersionIsRead) {
  Bytes a = token_request(1);
  EXPECT_EQ(served(a), code::kCreated);
  // An earlier version kept one file per peer (DIR/replay/KEY): the window moved
  // there, no slot file.
  const Bytes serialized = as_ctx_->replay_window().serialize();
  std::filesystem::create_directories(dir_ / "replay");
  {
    std::ofstream f(dir_ / "replay" / AsPeerState::key_of(h("01")), std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(serialized.data()), static_cast<std::streamsize>(serialized.size()));
  }
  std::filesystem::remove(slots());
  start();
  EXPECT_EQ(state_->num_restored(), 1u);
  EXPECT_EQ(served(a), code::kUnauthorized);
  EXPECT_EQ(served(token_request(2)), code::kCreated);
}

TEST_F(AsRestart, DamagedSlotFilesNeverCrashAndNeverServeAReplay) {
  // The slot file is read as untrusted bytes: random damage of a real file (bit
  // flips, truncation, growth) gives a restored window, an Echo round, or (only if
  // the damage hit nothing) the exact window; never a served replay.
  Bytes a = token_request(1);
  EXPECT_EQ(served(a), code::kCreated);
  EXPECT_EQ(served(token_request(2)), code::kCreated);
  const Bytes good = file_bytes(0, std::filesystem::file_size(slots()));
  ASSERT_EQ(good.size(), 512u);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Bytes damaged = good;
    switch (round % 4) {
      case 0:  // bit flips
        for (int k = 0; k < 1 + round % 5; ++k) damaged[rng() % damaged.size()] ^= uint8_t(1u << (rng() % 8));
        break;
      case 1:  // truncated
        damaged.resize(rng() % damaged.size());
        break;
      case 2:  // grown by junk
        for (size_t k = 0, n = rng() % 700; k < n; ++k) damaged.push_back(static_cast<uint8_t>(rng()));
        break;
      case 3:  // a random header over a slot
        for (size_t k = 0; k < 20; ++k) damaged[(rng() % 2) * 256 + k] = static_cast<uint8_t>(rng());
        break;
    }
    {
      std::ofstream f(slots(), std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(damaged.data()), static_cast<std::streamsize>(damaged.size()));
    }
    start();
    if (state_->num_unreadable() == 0) {
      // Restored from a valid slot, or fresh (the whole pair was truncated away: an
      // empty file means never talked to, which a truncation can forge; kill -9 and
      // power loss never truncate a file that was fdatasynced at this size).
      if (state_->num_restored() == 1) EXPECT_EQ(served(a), code::kUnauthorized) << "round " << round;
    } else {
      EXPECT_EQ(state_->num_restored(), 0u);
      EXPECT_EQ(served(a), code::kUnauthorized) << "round " << round;  // Echo first
    }
  }
}

}  // namespace
}  // namespace acekdc::ace
