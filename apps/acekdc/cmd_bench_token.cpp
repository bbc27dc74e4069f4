// acekdc bench token: tokens per second of the AS as `acekdc serve` runs it, over UDP
// loopback, with the crypto-only bound of one token measured in the same run (issue 5;
// docs/ace.md "The AS in serve: tokens per second over UDP").
//
//   acekdc bench token --clients N --concurrency C --tokens T
//
// The AS: an AuthorizationServer behind an AceCoapGate with one pre-established
// OSCORE context per client, each made by ace::AsPeerState::make_context in a
// temporary state directory (as-peers/, as serve's STATE/as-peers) with the
// sequence-number reservations written by a ThreadSequenceWriter, served by the serve
// loop's request handler (cmd_serve.cpp serve_gate, AS part) on the main thread
// (named "as"): the replay windows a loop round's requests changed are committed
// once at the round's end (AsPeerState::commit: one pwrite per changed window into
// as-peers/replay.slots) and made durable by an io::SyncPipeline (one fdatasync per
// sync; under 1 ms inline on the AS thread, else on its commit thread), and the
// round's answers are held until then (group commit). --per-request-sync: the
// baseline, AsPeerState::sync() (commit + fdatasync) after every request on the AS
// thread, as serve did before the group commit.
// The load generator, on its own thread ("client"), plays N clients, each with its
// real client-side OSCORE context; C requests are outstanding at once (one per client
// at most). Each client protects a POST /token (audience kdc, scope
// bench-group:requester), sends it as soon as its previous answer was checked, and
// checks its answer: OSCORE-verified and decrypted, a 2.01 whose Access Information
// parses and carries cnf and expires_in.
// Printed: tokens/s, latency p50 / p99, the AS thread's CPU per token (user /
// system), the sync's CPU, the client thread's CPU per token, and the crypto-only
// bound: every cryptographic operation of the AS path for one token (OSCORE AEAD
// open of the request, the random draws of the OSCORE_Input_Material id, master
// secret, salt and cti, the token's 13-byte IV, the AEAD seal of the claims in the
// COSE_Encrypt0, the OSCORE AEAD seal of the response; real sizes, taken from the
// run's first exchange; as bench_ace's BM_AsTokenOverOscoreCryptoOnly) in a tight
// loop on one thread. The bound is measured in blocks between the load phases
// (interleaved: bound, load, bound, load, bound, load, bound), so a change of the
// machine's load hits both; ratio = tokens/s / bound tokens/s.
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ace/as.h"
#include "ace/as_peer_state.h"
#include "ace/coap_gate.h"
#include "ace/params.h"
#include "ace/scope.h"
#include "acekdc/bench_util.h"
#include "acekdc/command.h"
#include "coap/endpoint.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/key.h"
#include "cose/structures.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"
#include "io/sync_pipeline.h"
#include "io/udp.h"
#include "oscore/aad.h"
#include "oscore/context.h"
#include "oscore/sequence_store.h"

namespace acekdc::app {
namespace {

using Clk = std::chrono::steady_clock;

double secs_since(Clk::time_point t0) { return std::chrono::duration<double>(Clk::now() - t0).count(); }

// ThreadCpu: a thread's CPU time, user and system.
struct ThreadCpu {
  double user_s = 0;
  double sys_s = 0;
  double total() const { return user_s + sys_s; }
  ThreadCpu operator-(const ThreadCpu& o) const { return {user_s - o.user_s, sys_s - o.sys_s}; }
  ThreadCpu operator+(const ThreadCpu& o) const { return {user_s + o.user_s, sys_s + o.sys_s}; }
};

ThreadCpu thread_cpu() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6; };
  return {s(ru.ru_utime), s(ru.ru_stime)};
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitFailure);
}

constexpr const char* kGroup = "bench-group";
const Bytes kTokenKey = Bytes{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

// client_id / client_secret: client i's OSCORE Sender ID (1-3 bytes) and Master Secret.
Bytes client_id(size_t i) {
  if (i < 0x80) return {static_cast<uint8_t>(i + 1)};
  if (i < 0x8000) return {static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
  return {static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
}
Bytes client_secret(size_t i) {
  Bytes s(16, 0x5c);
  s[0] = static_cast<uint8_t>(i);
  s[1] = static_cast<uint8_t>(i >> 8);
  s[2] = static_cast<uint8_t>(i >> 16);
  return s;
}

struct TokenArgs {
  size_t clients = 256;
  size_t concurrency = 64;
  size_t tokens = 30000;
  double timeout_s = 10;
  bool per_request_sync = false;  // the baseline: commit + fdatasync per request
  double bound_s = 1.0;           // each of the bound's blocks
  int64_t inline_below_us = 1000; // SyncPipeline::set_inline_below (serve: 1 ms)
};

// AsServer: the AS as `acekdc serve` builds and runs it (cmd_serve.cpp: the AS part
// of run() and serve_gate), on 127.0.0.1:0.
class AsServer {
 public:
  AsServer(const std::string& state_dir, size_t num_clients, bool per_request_sync, int64_t inline_below_us)
      : state_(state_dir + "/as-peers"), per_request_sync_(per_request_sync) {
    ace::AsPolicy pol;
    pol.issuer = "acekdc-as";
    ace::AudiencePolicy aud;
    aud.name = "kdc";
    aud.shared_key = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
    pol.audiences = {aud};
    for (size_t i = 0; i < num_clients; ++i) {
      ace::ClientPolicy c;
      c.id = "c" + std::to_string(i);
      c.groups[kGroup] = ace::kRoleRequester | ace::kRoleResponder;
      pol.clients.push_back(std::move(c));
    }
    as_ = std::make_unique<ace::AuthorizationServer>(*provider_, random_, pol);
    if (auto v = as_->validate(); !v.empty()) die("AS policy: " + v);
    gate_ = std::make_unique<ace::AceCoapGate>(*provider_);
    gate_->serve_as(*as_);
    for (size_t i = 0; i < num_clients; ++i) {
      oscore::ContextConfig cfg;
      cfg.params.master_secret = client_secret(i);
      cfg.params.recipient_id = client_id(i);
      cfg.seq_writer = &seq_writer_;
      cfg.clock = &clock_;
      auto ctx = state_.make_context(*provider_, std::move(cfg), random_);
      if (!ctx) die(std::string("client context: ") + oscore::to_string(ctx.error()));
      gate_->add_peer("c" + std::to_string(i), std::move(*ctx));
    }
    auto sock = io::UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    if (!sock) die("cannot bind the AS socket");
    address_ = sock->local_address();
    ep_ = std::make_unique<coap::Endpoint>(clock_, random_, coap::EndpointConfig{});
    if (!per_request_sync_) {
      // serve_gate's pipeline for the AS (no KDC on this loop): the sync makes the
      // committed windows durable; a failure is fatal (serve exits).
      sync_ = std::make_unique<io::SyncPipeline>(
          [this] {
            const auto t0 = Clk::now();
            const double c0 = thread_cpu_s();
            const bool ok = state_.sync_committed();
            sync_s_ += secs_since(t0);
            sync_cpu_s_ += thread_cpu_s() - c0;
            return ok;
          },
          [] { die("AS replay window fdatasync failed"); });
      sync_->set_inline_below(microseconds(inline_below_us));  // serve: 1 ms
      sync_->set_on_durable([this] {
        if (round_open_) commit_round();
      });
    }
    // serve_gate's request handler, AS part.
    ep_->set_request_handler([this](coap::RequestContext& ctx) {
      coap::Message req = coap::Message::from_view(ctx.request);
      auto datagram = req.encode();
      if (!datagram) return;
      Bytes out = gate_->handle(*datagram, clock_.unix_time(), ctx.peer);
      if (per_request_sync_) {
        const auto t0 = Clk::now();
        const double c0 = thread_cpu_s();
        auto s = state_.sync();
        sync_s_ += secs_since(t0);
        sync_cpu_s_ += thread_cpu_s() - c0;
        ++per_request_syncs_;
        if (!s) die(std::string("AS replay window not saved: ") + oscore::to_string(s.error()));
      } else if (!round_open_) {  // the windows this round changes: one commit at its end
        round_open_ = true;
        sync_->open_round();
        ep_->schedule(ctx.now, [this](TimePoint) {
          if (round_open_ && !sync_->sync_in_flight()) commit_round();  // else on_durable commits it
        });
      }
      auto resp = coap::Message::parse(out);
      if (!resp) return;
      ctx.response.code = resp->code;
      for (const auto& o : resp->options()) ctx.response.add_option(o.number, o.value);
      ctx.response.payload = std::move(resp->payload);
      if (const int64_t now = clock_.unix_time(); now != last_purge_) {
        last_purge_ = now;
        (void)gate_->purge(now);
      }
    });
    loop_ = std::make_unique<io::Loop>(*ep_, clock_);
    loop_->add_socket(std::move(*sock));
    if (sync_) loop_->set_sync_pipeline(sync_.get());
  }

  // commit_round: serve_gate's commit_as_round.
  void commit_round() {
    round_open_ = false;
    auto r = state_.commit();
    if (!r) die(std::string("AS replay window not written: ") + oscore::to_string(r.error()));
    windows_written_ += *r;
    ++commits_;
    sync_->mark_unsynced();
  }

  // run serves on the calling thread until stop() (serve runs its AS loop on a
  // thread of its own; here it is the main thread, named "as" for perf).
  void run() {
    pthread_setname_np(pthread_self(), "as");
    const ThreadCpu t0 = thread_cpu();
    loop_->run([this] { return stop_.load(); });
    cpu_ = cpu_ + (thread_cpu() - t0);
  }
  // stop ends run() (from another thread) within one loop wait (the loop itself is
  // not stopped: run() serves again after reset_stop()).
  void stop() { stop_ = true; }
  void reset_stop() { stop_ = false; }
  const coap::Address& address() const { return address_; }
  ThreadCpu cpu() const { return cpu_; }
  double sync_s() const { return sync_s_; }
  double sync_cpu_s() const { return sync_cpu_s_; }
  uint64_t syncs() const { return sync_ ? sync_->syncs_done() : per_request_syncs_; }
  uint64_t commits() const { return per_request_sync_ ? per_request_syncs_ : commits_; }
  uint64_t windows_written() const { return windows_written_; }
  const char* sync_mode() const {
    return per_request_sync_ ? "--per-request-sync: AsPeerState::sync() (commit + fdatasync) after every request"
                             : "group commit: one AsPeerState::commit per loop round, fdatasync via io::SyncPipeline";
  }

 private:
  SystemClock clock_;
  SystemRandom random_;
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  ace::AsPeerState state_;
  const bool per_request_sync_;
  oscore::ThreadSequenceWriter seq_writer_;  // declared after state_: drained before it goes
  std::unique_ptr<ace::AuthorizationServer> as_;
  std::unique_ptr<ace::AceCoapGate> gate_;
  std::unique_ptr<coap::Endpoint> ep_;
  std::unique_ptr<io::SyncPipeline> sync_;  // declared before loop_: outlives it
  std::unique_ptr<io::Loop> loop_;
  coap::Address address_;
  bool round_open_ = false;
  uint64_t commits_ = 0;
  uint64_t windows_written_ = 0;
  uint64_t per_request_syncs_ = 0;
  std::atomic<bool> stop_{false};
  int64_t last_purge_ = 0;
  ThreadCpu cpu_;
  std::atomic<double> sync_s_{0};  // the sync's thread (the AS's or the commit thread)
  std::atomic<double> sync_cpu_s_{0};
};

// BenchClient: one client's OSCORE context and its outstanding exchange.
struct BenchClient {
  std::unique_ptr<oscore::Context> ctx;
  oscore::Exchange ex;
  Clk::time_point started;
};

// Sizes: what the bound needs of a real exchange.
struct Sizes {
  size_t req_ct = 0;   // OSCORE ciphertext of the request (its payload)
  size_t resp_ct = 0;  // OSCORE ciphertext of the response
  Bytes claims;        // the token's claims (the COSE_Encrypt0 plaintext)
};

// LoadGen: the load generator's state, used on the client thread only.
struct LoadGen {
  crypto::Provider* provider = nullptr;
  std::vector<BenchClient> clients;
  Bytes token_request;  // the /token payload (the same for every client)
  std::vector<double> latencies_ms;
  size_t failed = 0;
  std::string first_failure;
  Sizes sizes;  // of the first exchange
  ThreadCpu cpu;
};

// run_phase: `count` token requests, `concurrency` outstanding, over UDP to `as`,
// on the calling thread; returns the elapsed time.
double run_phase(LoadGen& g, const coap::Address& as, size_t count, size_t concurrency, double timeout_s) {
  SystemClock clock;
  SystemRandom random;
  coap::EndpointConfig ecfg;
  ecfg.nstart = static_cast<int>(concurrency);  // one endpoint plays C clients
  coap::Endpoint ep(clock, random, ecfg);
  io::Loop loop(ep, clock);
  auto sock = io::UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
  if (!sock) die("cannot bind the client socket");
  loop.add_socket(std::move(*sock));
  coap::RequestOptions opts;
  opts.timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(timeout_s));
  Bytes protect_buf(1024), plain_buf(2048);
  std::deque<size_t> idle;
  for (size_t i = 0; i < g.clients.size(); ++i) idle.push_back(i);
  size_t started = 0, done = 0, in_flight = 0;
  std::function<void()> start_next;
  auto fail = [&](const std::string& why) {
    ++g.failed;
    if (g.first_failure.empty()) g.first_failure = why;
  };
  auto on_answer = [&](size_t ci, const coap::ClientEvent& ev) {
    BenchClient& c = g.clients[ci];
    ++done;
    --in_flight;
    idle.push_back(ci);
    if (ev.status != coap::ClientStatus::kResponse || !ev.response)
      return fail(std::string("no response: ") + coap::to_string(ev.status));
    auto wire = ev.response->encode();
    if (!wire) return fail("bad response");
    auto n = c.ctx->unprotect_response(*wire, c.ex, plain_buf);
    if (!n) return fail(std::string("response not OSCORE-verified: ") + oscore::to_string(n.error()));
    auto inner = coap::Message::parse(ByteView(plain_buf.data(), *n));
    if (!inner || inner->code != cp::coap::code::kCreated)
      return fail("answer " + (inner ? coap::code_string(inner->code) : std::string("unparsable")));
    auto t = ace::TokenResponse::decode(inner->payload);
    if (!t || !t->cnf || !t->cnf->osc || !t->expires_in || t->access_token.empty())
      return fail("Access Information without access_token / cnf / expires_in");
    if (g.sizes.resp_ct == 0) {
      g.sizes.resp_ct = ev.response->payload.size();
      g.sizes.claims = to_bytes(ByteView(t->access_token));  // replaced by the claims below
    }
    g.latencies_ms.push_back(secs_since(c.started) * 1000.0);
  };
  start_next = [&]() {
    while (started < count && in_flight < concurrency && !idle.empty()) {
      const size_t ci = idle.front();
      idle.pop_front();
      BenchClient& c = g.clients[ci];
      coap::Message req(coap::Type::kCon, cp::coap::code::kPost, 0);
      req.set_uri_path("/token");
      req.set_uint(cp::coap::option::kContentFormat, cp::cf::kAceCbor);
      req.payload = g.token_request;
      c.started = Clk::now();
      auto n = c.ctx->protect_request(req, protect_buf, c.ex);
      if (!n) die(std::string("protect_request: ") + oscore::to_string(n.error()));
      auto outer = coap::Message::parse(ByteView(protect_buf.data(), *n));
      if (!outer) die("protect_request: bad message");
      if (g.sizes.req_ct == 0) g.sizes.req_ct = outer->payload.size();
      ++started;
      ++in_flight;
      ep.request(as, std::move(*outer), opts, [&, ci](const coap::ClientEvent& ev) {
        on_answer(ci, ev);
        start_next();
      });
      loop.flush();  // each client sends as soon as it is ready
    }
  };
  const ThreadCpu c0 = thread_cpu();
  const auto t0 = Clk::now();
  start_next();
  while (done < count) {
    loop.run_once(milliseconds(50));
    if (secs_since(t0) > timeout_s + 60.0 + static_cast<double>(count) * 0.01) break;
  }
  const double elapsed = secs_since(t0);
  g.cpu = g.cpu + (thread_cpu() - c0);
  if (done < count) fail("timed out with " + std::to_string(count - done) + " requests outstanding");
  return elapsed;
}

// CryptoBound: one token's cryptography on the AS path (see the file comment), on
// keyed AEAD objects as the OSCORE contexts and the AS hold them.
class CryptoBound {
 public:
  CryptoBound(crypto::Provider& p, const Sizes& s) : p_(p), claims_(s.claims) {
    if (s.req_ct < 8 || s.resp_ct < 8) die("bound: no OSCORE payload sizes");
    uint8_t aad[oscore::kMaxAadLen];
    auto aad_len = oscore::build_aad(cp::alg::kAES_CCM_16_64_128, Bytes{0x01}, Bytes{0x05}, {}, aad);
    if (!aad_len) die("bound: aad");
    oscore_aad_.assign(aad, aad + *aad_len);
    Bytes prot = *from_hex("a1010a");  // {alg: AES-CCM-16-64-128}, as the AS writes it
    cose::append_enc_structure(token_aad_, cose::kContextEncrypt0, prot, {});
    req_aead_ = std::move(*p.make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x31)));
    resp_aead_ = std::move(*p.make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x32)));
    token_aead_ = std::move(*p.make_aead(cp::alg::kAES_CCM_16_64_128, kTokenKey));
    Bytes req_plain(s.req_ct - 8, 0x44);
    req_cipher_.resize(s.req_ct);
    req_out_.resize(s.req_ct);
    if (!req_aead_->seal(nonce_, oscore_aad_, req_plain, req_cipher_)) die("bound: seal");
    resp_plain_.assign(s.resp_ct - 8, 0x55);
    resp_out_.resize(s.resp_ct);
    token_out_.resize(claims_.size() + 8);
  }
  // run: tokens per second of the bound over `seconds` (wall, this thread); adds
  // the thread's CPU time and the count to cpu_s / ops.
  double run(double seconds) {
    size_t n = 0;
    const double c0 = thread_cpu_s();
    const auto t0 = Clk::now();
    do {
      for (int k = 0; k < 64; ++k) {
        auto a = req_aead_->open(nonce_, oscore_aad_, req_cipher_, req_out_);
        random_.fill(MutableByteView(rnd_, sizeof rnd_));  // id | ms | salt | cti (38 bytes, one draw)
        p_.random().fill(MutableByteView(iv_, sizeof iv_));
        auto b = token_aead_->seal(ByteView(iv_, sizeof iv_), token_aad_, claims_, token_out_);
        auto d = resp_aead_->seal(nonce_, oscore_aad_, resp_plain_, resp_out_);
        if (!a || !b || !d) die("bound: crypto failed");
        sink_ ^= req_out_[0] ^ token_out_[0] ^ resp_out_[0] ^ rnd_[0] ^ iv_[0];
      }
      n += 64;
    } while (secs_since(t0) < seconds);
    const double elapsed = secs_since(t0);
    cpu_s += thread_cpu_s() - c0;
    ops += n;
    wall_s += elapsed;
    return static_cast<double>(n) / elapsed;
  }
  double cpu_s = 0;
  double wall_s = 0;
  size_t ops = 0;
  uint8_t sink() const { return sink_; }

 private:
  crypto::Provider& p_;
  SystemRandom random_;  // as serve's AS draws its material
  Bytes claims_;
  Bytes oscore_aad_, token_aad_;
  Bytes nonce_ = Bytes(13, 0x5a);
  std::unique_ptr<crypto::Aead> req_aead_, resp_aead_, token_aead_;
  Bytes req_cipher_, req_out_, resp_plain_, resp_out_, token_out_;
  uint8_t rnd_[38] = {};
  uint8_t iv_[13] = {};
  uint8_t sink_ = 0;
};

void run_token(const TokenArgs& a) {
  if (a.clients == 0 || a.concurrency == 0 || a.tokens == 0) die("--clients, --concurrency, --tokens must be > 0");
  const size_t concurrency = std::min(a.concurrency, a.clients);  // one outstanding request per client
  auto provider = crypto::make_openssl_provider();
  TempDir dir("bench-token");
  std::printf("setting up: the AS with %zu client contexts (state in a temporary as-peers/)...\n", a.clients);
  std::fflush(stdout);
  AsServer server(dir.path, a.clients, a.per_request_sync, a.inline_below_us);
  LoadGen g;
  g.provider = provider.get();
  g.clients.resize(a.clients);
  for (size_t i = 0; i < a.clients; ++i) {
    oscore::ContextConfig cfg;
    cfg.params.master_secret = client_secret(i);
    cfg.params.sender_id = client_id(i);
    auto ctx = oscore::Context::create(*provider, std::move(cfg));
    if (!ctx) die("client context");
    g.clients[i].ctx = std::move(*ctx);
  }
  {
    ace::TokenRequest tr;
    tr.audience = "kdc";
    ace::Scope scope;
    scope.entries.push_back(ace::ScopeEntry{kGroup, ace::kRoleRequester});
    tr.scope = ace::ScopeParam{false, ace::encode_scope(scope)};
    g.token_request = tr.encode();
  }
  g.latencies_ms.reserve(a.tokens + 64);

  // Warm-up (not counted): one request per client, which also gives the bound its sizes.
  std::printf("warm-up: one token per client...\n");
  std::fflush(stdout);
  constexpr int kPhases = 3;
  double phase_s[kPhases] = {};
  double bound_rate[kPhases + 1] = {};
  std::unique_ptr<CryptoBound> bound;
  ThreadCpu client_cpu;
  size_t ok = 0, failed = 0;
  std::string first_failure;
  std::atomic<int> step{0};  // client thread: phase requests; main thread: serves
  std::thread client_thread([&] {
    pthread_setname_np(pthread_self(), "client");
    run_phase(g, server.address(), a.clients, concurrency, a.timeout_s);
    server.stop();
  });
  server.run();
  client_thread.join();
  if (g.failed) die("warm-up failed: " + g.first_failure);
  {
    auto t = g.sizes.claims;  // the warm-up's access token: its claims, for the bound's seal size
    cwt::VerifyOptions vo;
    vo.check_time = false;
    auto claims = cwt::verify(*provider, t, cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128), vo);
    if (!claims) die("warm-up token does not verify with the token key");
    g.sizes.claims = claims->encode();
  }
  bound = std::make_unique<CryptoBound>(*provider, g.sizes);
  g.latencies_ms.clear();
  g.cpu = {};
  const ThreadCpu as_cpu0 = server.cpu();
  const double sync_s0 = server.sync_s(), sync_cpu0 = server.sync_cpu_s();
  const uint64_t syncs0 = server.syncs();
  const uint64_t commits0 = server.commits();
  (void)step;

  std::printf("measuring: %zu tokens, %zu clients, %zu outstanding; the bound in %d blocks between %d load phases...\n",
              a.tokens, a.clients, concurrency, kPhases + 1, kPhases);
  std::fflush(stdout);
  const size_t per_phase = (a.tokens + kPhases - 1) / kPhases;
  for (int ph = 0; ph <= kPhases; ++ph) {
    pthread_setname_np(pthread_self(), "bound");  // perf report --comm as: the AS loop alone
    bound_rate[ph] = bound->run(a.bound_s);
    if (ph == kPhases) break;
    server.reset_stop();
    std::thread ct([&, ph] {
      pthread_setname_np(pthread_self(), "client");
      phase_s[ph] = run_phase(g, server.address(), per_phase, concurrency, a.timeout_s);
      server.stop();
    });
    server.run();
    ct.join();
  }
  ok = g.latencies_ms.size();
  failed = g.failed;
  first_failure = g.first_failure;
  client_cpu = g.cpu;
  const ThreadCpu as_cpu = server.cpu() - as_cpu0;
  double elapsed = 0;
  for (double s : phase_s) elapsed += s;
  const double rate = static_cast<double>(ok) / elapsed;
  double bound_sum = 0, bound_min = 1e30, bound_max = 0;
  for (double b : bound_rate) {
    bound_sum += b;
    bound_min = std::min(bound_min, b);
    bound_max = std::max(bound_max, b);
  }
  const double bound_avg = bound_sum / (kPhases + 1);
  const double per_tok_us = ok ? 1e6 / static_cast<double>(ok) : 0.0;
  const double bound_cpu_us = 1e6 * bound->cpu_s / static_cast<double>(bound->ops);
  const double syncs = static_cast<double>(server.syncs() - syncs0);
  std::printf("\nbench token: %zu clients, %zu outstanding, %zu tokens over UDP loopback (AS on the main thread)\n",
              a.clients, concurrency, ok + failed);
  std::printf("  replay windows   %s\n", server.sync_mode());
  std::printf("  tokens ok        %zu (failed %zu%s%s)\n", ok, failed, first_failure.empty() ? "" : ", first: ",
              first_failure.c_str());
  std::printf("  elapsed          %.3f s (phases %.3f / %.3f / %.3f)\n", elapsed, phase_s[0], phase_s[1], phase_s[2]);
  std::printf("  tokens/s         %.0f\n", rate);
  std::printf("  latency p50      %.2f ms\n", percentile(g.latencies_ms, 0.50));
  std::printf("  latency p99      %.2f ms\n", percentile(g.latencies_ms, 0.99));
  const double commits = static_cast<double>(server.commits() - commits0);
  std::printf("  commits          %.0f (%.1f tokens per commit)\n", commits,
              commits > 0 ? static_cast<double>(ok) / commits : 0.0);
  std::printf("  syncs            %.0f (%.1f tokens per fdatasync), %.3f s wall in syncs, %.1f us sync CPU per token\n",
              syncs, syncs > 0 ? static_cast<double>(ok) / syncs : 0.0, server.sync_s() - sync_s0,
              per_tok_us * (server.sync_cpu_s() - sync_cpu0));
  std::printf("  AS thread CPU    %.0f us per token (user %.0f, system %.0f)\n", per_tok_us * as_cpu.total(),
              per_tok_us * as_cpu.user_s, per_tok_us * as_cpu.sys_s);
  std::printf("  client CPU       %.0f us per token (user %.0f, system %.0f): the load generator's thread\n",
              per_tok_us * client_cpu.total(), per_tok_us * client_cpu.user_s, per_tok_us * client_cpu.sys_s);
  std::printf("  bound crypto CPU %.1f us per token (%.1f%% of the AS thread's CPU per token)\n", bound_cpu_us,
              as_cpu.total() > 0 ? 100.0 * bound_cpu_us / (per_tok_us * as_cpu.total()) : 0.0);
  std::printf("  crypto-only bound %.0f tokens/s on one thread (blocks %.0f .. %.0f; OSCORE open + random 38 B +\n"
              "                   IV 13 B + token seal + OSCORE seal, real sizes: request %zu, response %zu, claims %zu)\n",
              bound_avg, bound_min, bound_max, g.sizes.req_ct, g.sizes.resp_ct, g.sizes.claims.size());
  std::printf("  ratio            %.1f%% of the crypto-only bound (target >= 70%%)\n", 100.0 * rate / bound_avg);
  if (bound->sink() == 0x5a) std::fflush(stdout);  // keeps the crypto observable
  if (failed) fail_with(kExitFailure);
}

Registrar reg("bench-token", [](CLI::App& root) {
  CLI::App* bench = bench_command(root);
  auto ta = std::make_shared<TokenArgs>();
  auto* tok = bench->add_subcommand("token", "AS tokens/s over UDP as serve runs it vs the crypto-only bound");
  tok->add_option("--clients", ta->clients, "pre-established OSCORE clients of the AS (default 256)");
  tok->add_option("--concurrency", ta->concurrency, "requests outstanding at once, one per client at most (default 64)");
  tok->add_option("--tokens", ta->tokens, "tokens measured (default 30000)");
  tok->add_option("--timeout", ta->timeout_s, "per-request timeout in seconds (default 10)");
  tok->add_option("--bound-seconds", ta->bound_s, "length of each of the bound's four blocks (default 1)");
  tok->add_option("--inline-below-us", ta->inline_below_us,
                  "syncs faster than this run inline on the AS thread (default 1000, as serve; 0: always the commit thread)");
  tok->add_flag("--per-request-sync", ta->per_request_sync,
                "baseline: commit + fdatasync of the replay window after every request (no group commit)");
  tok->callback([ta] { run_token(*ta); });
});

}  // namespace
}  // namespace acekdc::app
