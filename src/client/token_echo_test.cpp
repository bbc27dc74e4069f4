// request_token against an AS that lost its replay window for us (a restart with an
// unreadable STATE/as-peers window): the AS answers a protected 4.01 with Echo
// (RFC 8613 Appendix B.1.2, RFC 9175) and the client repeats the request with it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ace/as.h"
#include "ace/as_peer_state.h"
#include "ace/coap_gate.h"
#include "client/kdc_client.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/sequence_store.h"

namespace acekdc::client {
namespace {

constexpr int64_t kNow = 1700000000;
Bytes h(const char* s) { return *from_hex(s); }

// GateTransport hands each request datagram to an in-process AS gate.
class GateTransport final : public Transport {
 public:
  explicit GateTransport(ace::AceCoapGate& gate) : gate_(gate) {}
  Expected<Bytes, Failure> exchange(const coap::Address&, ByteView request, Duration) override {
    ++exchanges;
    return gate_.handle(to_bytes(request), kNow);
  }
  int exchanges = 0;

 private:
  ace::AceCoapGate& gate_;
};

class TokenEcho : public ::testing::Test {
 protected:
  TokenEcho() {
    dir_ = std::filesystem::temp_directory_path() / ("acekdc-token-echo-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    ace::AsPolicy pol;
    ace::ClientPolicy c;
    c.id = "member1";
    c.groups = {{"g1", ace::kRoleRequester}};
    pol.clients = {c};
    ace::AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128);
    pol.audiences = {a};
    as_ = std::make_unique<ace::AuthorizationServer>(*p_, rnd_, pol);
  }
  ~TokenEcho() override { std::filesystem::remove_all(dir_); }

  // start_as: an AS process over the state directory; `garbage_window` makes the
  // stored replay window of member1 unreadable (then the AS must challenge).
  void start_as(bool garbage_window) {
    if (garbage_window) {
      std::filesystem::create_directories(dir_ / "replay");
      std::ofstream f(dir_ / "replay" / ace::AsPeerState::key_of(h("01")), std::ios::trunc);
      f << "garbage";
    }
    gate_ = std::make_unique<ace::AceCoapGate>(*p_);
    state_ = std::make_unique<ace::AsPeerState>(dir_.string());
    gate_->serve_as(*as_);
    oscore::ContextConfig cfg;
    cfg.params.master_secret = h("6d656d626572312d74657374");
    cfg.params.sender_id = {};
    cfg.params.recipient_id = h("01");
    auto ctx = state_->make_context(*p_, cfg, rnd_);
    ASSERT_TRUE(ctx);
    gate_->add_peer("member1", std::move(*ctx));
  }

  TokenRequestConfig request() {
    TokenRequestConfig tc;
    tc.id = h("01");
    tc.secret = h("6d656d626572312d74657374");
    tc.audience = "kdc";
    tc.scope = ace::Scope{{ace::ScopeEntry{"g1", ace::kRoleRequester}}};
    tc.seq_store = &client_seq_;
    return tc;
  }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{5};
  std::filesystem::path dir_;
  std::unique_ptr<ace::AuthorizationServer> as_;
  std::unique_ptr<ace::AceCoapGate> gate_;
  std::unique_ptr<ace::AsPeerState> state_;
  oscore::MemorySequenceStore client_seq_;
};

TEST_F(TokenEcho, FreshAsServesWithoutEcho) {
  start_as(false);
  GateTransport t(*gate_);
  auto r = request_token(*p_, t, request());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(t.exchanges, 1);
  EXPECT_EQ(gate_->num_echo_challenges(), 0u);
}

TEST_F(TokenEcho, AsWithUnreadableWindowChallengesAndTheClientRepeats) {
  start_as(true);
  ASSERT_EQ(state_->num_unreadable(), 1u);
  GateTransport t(*gate_);
  auto r = request_token(*p_, t, request());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(t.exchanges, 2) << "one Echo round";
  EXPECT_EQ(gate_->num_echo_challenges(), 1u);
  EXPECT_TRUE(r->cnf && r->cnf->osc);
}

}  // namespace
}  // namespace acekdc::client
