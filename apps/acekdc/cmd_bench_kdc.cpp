// acekdc bench join / bench rekey: the KDC's join throughput and rekey fan-out,
// each printed with the crypto-only bound measured in the same run (issue 6,
// "Speed and memory it must reach"; docs/kdc-state.md "Measured").
//
//   acekdc bench join --members N --concurrency C
//     An in-process KDC built as `acekdc serve` builds it (AuthzInfo over a
//     SqliteTokenStore, AceCoapGate with a FileSequenceStore, GroupManager,
//     GroupCoapBinding, SqliteStore with the group cache, all in a temporary
//     directory; one group commit of both SQLite files per loop round, whose fsyncs
//     run on a commit thread while the loop goes on (io::SyncPipeline); answers sent
//     only after them) serves on 127.0.0.1 on the main thread (named "kdc", as serve
//     runs its KDC loop on its main thread; the clients have their own). The group
//     has the demo group's rekey policy (rekey on join and leave), printed; joins
//     in one store round share that round's rekey (GroupManager, docs/kdc-state.md).
//     N clients get their access tokens from the in-process AS before the clock
//     starts (the /token exchange is not timed); then C flows at a time run, each:
//     token POST to /authz-info (OSCORE context derivation) and the OSCORE-protected
//     join with an Ed25519 proof of possession. One client thread plays the C devices:
//     each holds its Ed25519 key loaded (per join it signs N_S || N_C over the KDC's
//     rsnonce), derives its context from the KDC's answer, verifies the OSCORE
//     response, and sends each request as soon as it is ready (not after a whole
//     batch of answers). Printed: joins/s, p50, p99 (token POST start to join
//     response), the KDC thread's CPU time per join (user / system) and its time in
//     commits, the client thread's CPU time per join, and the crypto-only bound: the KDC's cryptography of one join
//     (token Encrypt0 decryption, OSCORE context derivation, PoP verification, one
//     AEAD open and one AEAD seal, and the random draws: nonce2, rsnonce, node name
//     and the rekeys' new master secret, salt and Group ID as often per join as the
//     path rekeyed: once per store round with joins) in a
//     tight loop on one core (the KDC handles a join on one thread), and the ratio.
//
//   acekdc bench rekey --members N
//     N members are written straight into a SqliteStore (not timed), each with its
//     client-KDC OSCORE context and an Observe-style exchange. Timed: one durable
//     rekey and the fan-out: for every member its key distribution message
//     (encode_key_distribution with its Sender ID) protected as an OSCORE
//     notification. The KDC's side is measured, not the time until members hold the new
//     version; the output says so (the push layer's Observe / control_path delivery
//     is not driven here). Crypto-only bound: the same N AEAD seals.
//     Then the memory check: RSS growth per member when the KDC (store opened as
//     serve opens it, with cache_groups) loads the N-member group for its first
//     request (the cached copy plus the request's copy), and the time from opening
//     the store to that first load.
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "ace/sqlite_token_store.h"
#include "ace/token_store.h"
#include "acekdc/bench_util.h"
#include "acekdc/command.h"
#include "acekdc/kdc_setup.h"
#include "coap/endpoint.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/encrypt0.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/manager.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "io/sync_pipeline.h"
#include "io/udp.h"
#include "kdc/sqlite_store.h"
#include "oscore/context.h"
#include "oscore/sequence_store.h"

namespace acekdc::app {
namespace {

using Clk = std::chrono::steady_clock;

double secs_since(Clk::time_point t0) { return std::chrono::duration<double>(Clk::now() - t0).count(); }

// thread_cpu_s: CPU time the calling thread has used.
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ThreadCpu: the calling thread's CPU time, split into user and system time.
struct ThreadCpu {
  double user_s = 0;
  double sys_s = 0;
  double total() const { return user_s + sys_s; }
  ThreadCpu operator-(const ThreadCpu& o) const { return {user_s - o.user_s, sys_s - o.sys_s}; }
};

ThreadCpu thread_cpu() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6; };
  return {s(ru.ru_utime), s(ru.ru_stime)};
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitFailure);
}

// rss_bytes: the process's resident set size (/proc/self/statm).
int64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages_total = 0, pages_rss = 0;
  in >> pages_total >> pages_rss;
  return pages_rss * sysconf(_SC_PAGESIZE);
}

constexpr const char* kGroup = "bench-group";
const Bytes kTokenKey = Bytes{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

// ---- bench join ----

// bench_group: the bench group, with the demo group's policies (kdc::kDefaultConfig:
// rekey on every join and leave, i.e. GroupConfig's defaults).
kdc::GroupConfig bench_group() {
  kdc::GroupConfig g;
  g.name = kGroup;
  g.max_members = 1000000;
  return g;
}

// policy_text describes a rekey policy for the output.
std::string policy_text(const kdc::RekeyPolicy& p) {
  std::string s = std::string("on_join=") + (p.on_join ? "yes" : "no") + " on_leave=" + (p.on_leave ? "yes" : "no") +
                  " on_expiry=" + (p.on_expiry ? "yes" : "no") + " min_interval=" + std::to_string(p.min_interval_s) +
                  "s batch_changes=" + std::to_string(p.batch_changes);
  if (p.on_join && p.min_interval_s == 0 && p.batch_changes == 0) s += " (the demo policy: a durable rekey on join, one per store round with joins)";
  return s;
}

// KdcServer: the KDC as `acekdc serve` builds it, on 127.0.0.1:0 (run() serves).
class KdcServer {
 public:
  // dir: where the files go (as serve's state directory); token_capacity: how many
  // client records /authz-info keeps (one per joining client).
  // pipelined: the group commit's fsyncs on a commit thread (io::SyncPipeline, as
  // serve); false: both fsyncs inside the round on the KDC thread (the baseline).
  KdcServer(const std::string& dir, size_t token_capacity, bool pipelined = true) {
    kdc::GroupConfig g = bench_group();
    cose::CoseKey shared = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
    ace::AuthzInfoConfig kcfg;
    kcfg.audience = "kdc";
    kcfg.issuer = "acekdc-as";
    kcfg.as_keys.keys.push_back(shared);
    kcfg.groups[kGroup] = ace_group_config(g);
    // As serve: /authz-info state in kdc-tokens.sqlite, KDC sequence numbers in kdc-seq/.
    auto ts = ace::SqliteTokenStore::open(dir + "/kdc-tokens.sqlite", token_capacity);
    if (!ts) die(std::string("cannot open the token store: ") + ace::to_string(ts.error()));
    tokens_ = std::move(*ts);
    std::error_code ec;
    std::filesystem::create_directories(dir + "/kdc-seq", ec);
    seq_ = std::make_unique<oscore::FileSequenceStore>(dir + "/kdc-seq", true);  // as serve: indexed
    authz_ = std::make_unique<ace::AuthzInfo>(*provider_, random_, *tokens_, kcfg);
    gate_ = std::make_unique<ace::AceCoapGate>(*provider_);
    gate_->serve_kdc(*authz_);
    gate_->set_sequence_store(seq_.get());
    kdc::SqliteOptions sopts;
    sopts.cache_groups = true;  // as serve opens it
    auto s = kdc::SqliteStore::open(dir + "/kdc.db", sopts);
    if (!s) die(std::string("cannot open the KDC store: ") + kdc::to_string(s.error()));
    store_ = std::move(*s);
    if (!store_->create_group(g, first_group_key(random_, clock_.unix_time(), g))) die("create_group failed");
    mgr_ = std::make_unique<groupcomm::GroupManager>(*store_, *provider_, random_);
    binding_ = std::make_unique<groupcomm::GroupCoapBinding>(*authz_, *tokens_, *store_, *mgr_);
    binding_->attach(*gate_);
    auto sock = io::UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    if (!sock) die("cannot bind the KDC socket");
    address_ = sock->local_address();
    ep_ = std::make_unique<coap::Endpoint>(clock_, random_);
    // The serve loop's handler (cmd_serve.cpp serve_gate) with its pipelined group
    // commit of both stores (the token store's first, as serve does): the round's
    // COMMITs on this thread without fsync, the fsyncs of both WAL files on the
    // pipeline's commit thread; every answer is held until they returned.
    tokens_->set_deferred_sync(pipelined);
    store_->set_deferred_sync(pipelined);
    if (pipelined) sync_ = std::make_unique<io::SyncPipeline>(
        [this] {
          const auto t0 = Clk::now();
          const double c0 = thread_cpu_s();
          const bool ok = tokens_->sync_committed() && store_->sync_committed();
          sync_s_ += secs_since(t0);
          last_sync_done_ns_ = Clk::now().time_since_epoch().count();
          if (pthread_equal(pthread_self(), kdc_thread_)) {  // run inline (set_inline_below)
            inline_sync_s_ += secs_since(t0);
            ++inline_syncs_;
          }
          sync_cpu_s_ += thread_cpu_s() - c0;
          return ok;
        },
        [] { die("KDC store sync (fsync) failed"); });
    if (sync_) sync_->set_inline_below(milliseconds(1));  // as serve
    // While a sync runs the next window stays open and is committed when it
    // returned (on_durable): one COMMIT per fsync, as serve.
    if (sync_) sync_->set_on_durable([this] {
      // How long the finished sync's answers waited for the loop to notice (it
      // looks between drains, a drain being up to 1,024 datagrams).
      const int64_t done = last_sync_done_ns_.load();
      if (done != 0) {
        release_wait_s_ += static_cast<double>(Clk::now().time_since_epoch().count() - done) * 1e-9;
        ++release_waits_;
      }
      if (store_->in_batch()) commit_round();
    });
    ep_->set_request_handler([this](coap::RequestContext& ctx) {
      if (!store_->in_batch() && store_->begin_batch()) {
        tokens_->begin_batch();
        if (sync_) sync_->open_round();
        ep_->schedule(ctx.now, [this](TimePoint) {
          if (!(sync_ && sync_->sync_in_flight())) commit_round();
        });
      }
      // As serve: the received datagram goes to the gate as it is, and the gate's
      // answer (a whole message echoing MID and token) goes out as it is.
      gate_out_ = gate_->handle(ctx.datagram, clock_.unix_time(), ctx.peer);
      auto resp = coap::MessageView::parse(gate_out_);
      if (!resp) return;  // nothing sent (a CON gets an empty ACK)
      ctx.response.code = resp->code;
      ctx.encoded_response = gate_out_;
    });
    loop_ = std::make_unique<io::Loop>(*ep_, clock_);
    loop_->add_socket(std::move(*sock));
    if (sync_) loop_->set_sync_pipeline(sync_.get());
  }
  ~KdcServer() = default;

  // commit_round: the open window of both stores (serve_gate's commit_round).
  void commit_round() {
    const auto t0 = Clk::now();
    if (!tokens_->commit_batch()) die("KDC token store commit failed");
    if (!store_->commit_batch()) die("KDC store commit failed");
    if (sync_) sync_->mark_unsynced();
    commit_s_ += secs_since(t0);
    ++commits_;
  }

  // run serves on the calling thread until stop(): the process's main thread, as
  // `acekdc serve` runs its KDC loop (and so with the main malloc arena, as serve).
  void run() {
    pthread_setname_np(pthread_self(), "kdc");  // perf report --comm kdc
    const double c0 = thread_cpu_s();
    const ThreadCpu t0 = thread_cpu();
    loop_->run([this] { return stop_.load(); });
    cpu_s_ = thread_cpu_s() - c0;
    cpu_ = thread_cpu() - t0;
  }
  // stop ends run() (from another thread).
  void stop() {
    stop_ = true;
    if (loop_) loop_->stop();
  }
  const coap::Address& address() const { return address_; }
  uint64_t commits() const { return commits_; }
  // cpu_s: the KDC thread's CPU time in run() (after it returned); commit_s: its time in commits
  // (without fsync); sync_s: the commit thread's time in the fsyncs; syncs: how many.
  double cpu_s() const { return cpu_s_; }
  ThreadCpu cpu() const { return cpu_; }
  // sync_cpu_s: CPU time the syncs used (on whichever thread ran them).
  double sync_cpu_s() const { return sync_cpu_s_.load(); }
  double commit_s() const { return commit_s_; }
  double sync_s() const { return sync_s_.load(); }
  // inline_sync_s / inline_syncs: the syncs run on the KDC thread (set_inline_below).
  double inline_sync_s() const { return inline_sync_s_; }
  uint64_t inline_syncs() const { return inline_syncs_; }
  // release_wait_s / release_waits: time from a sync's return to the loop's release of
  // the answers it made durable (on_durable), summed, and how many.
  double release_wait_s() const { return release_wait_s_; }
  uint64_t release_waits() const { return release_waits_; }
  uint64_t syncs() const { return sync_ ? sync_->syncs_done() : 0; }
  kdc::SqliteStore& store() { return *store_; }

 private:
  SystemClock clock_;
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  // The KDC's draws, as serve: OpenSSL's CSPRNG (a DRBG seeded by the OS, no
  // system call per draw); the bound draws from the same kind.
  Random& random_ = provider_->random();
  std::unique_ptr<ace::SqliteTokenStore> tokens_;
  std::unique_ptr<oscore::FileSequenceStore> seq_;
  std::unique_ptr<ace::AuthzInfo> authz_;
  std::unique_ptr<ace::AceCoapGate> gate_;
  std::unique_ptr<kdc::SqliteStore> store_;
  std::unique_ptr<groupcomm::GroupManager> mgr_;
  std::unique_ptr<groupcomm::GroupCoapBinding> binding_;
  std::unique_ptr<coap::Endpoint> ep_;
  std::unique_ptr<io::SyncPipeline> sync_;  // declared before loop_: outlives it
  std::unique_ptr<io::Loop> loop_;
  coap::Address address_;
  Bytes gate_out_;  // the gate's answer to the request being handled (sent by the endpoint)
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> commits_{0};
  double commit_s_ = 0;  // written by the KDC thread, read after stop()
  std::atomic<double> sync_s_{0};  // written by the commit thread
  // The syncs the pipeline ran inline on the KDC thread (it blocks meanwhile).
  pthread_t kdc_thread_ = pthread_self();  // the constructing thread runs run()
  double inline_sync_s_ = 0;
  uint64_t inline_syncs_ = 0;
  std::atomic<int64_t> last_sync_done_ns_{0};  // steady_clock time the last sync returned
  double release_wait_s_ = 0;  // summed: sync returned -> the loop released its answers
  uint64_t release_waits_ = 0;
  std::atomic<double> sync_cpu_s_{0};
  double cpu_s_ = 0;
  ThreadCpu cpu_;
};

// Joiner: one client's token and key, and its flow's state.
struct Joiner {
  ace::TokenResponse token;
  cose::CoseKey key;
  // The device's signing key loaded once (as a device holds it), and its public
  // COSE_Key as sent in client_cred: per join it still signs N_S || N_C.
  std::unique_ptr<crypto::Signer> signer;
  Bytes cred;
  ace::ClientTokenPost post;
  std::unique_ptr<oscore::Context> ctx;
  oscore::Exchange ex;
  Clk::time_point started;
};

// issue_tokens gets one token per client from an in-process AS (as serve's AS
// would answer /token), with the group's requester+responder roles.
std::vector<Joiner> make_joiners(crypto::Provider& provider, size_t n) {
  SystemRandom random;
  ace::AsPolicy pol;
  ace::AudiencePolicy aud;
  aud.name = "kdc";
  aud.shared_key = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
  pol.audiences = {aud};
  pol.max_materials = n + 16;
  for (size_t i = 0; i < n; ++i) {
    ace::ClientPolicy c;
    c.id = "bench" + std::to_string(i);
    c.groups[kGroup] = ace::kRoleRequester | ace::kRoleResponder;
    pol.clients.push_back(std::move(c));
  }
  ace::AuthorizationServer as(provider, random, pol);
  if (auto v = as.validate(); !v.empty()) die("AS policy: " + v);
  ace::Scope scope;
  scope.entries.push_back(ace::ScopeEntry{kGroup, ace::kRoleRequester | ace::kRoleResponder});
  const int64_t now = SystemClock().unix_time();
  std::vector<Joiner> out(n);
  for (size_t i = 0; i < n; ++i) {
    ace::TokenRequest tr;
    tr.audience = "kdc";
    tr.scope = ace::ScopeParam{false, ace::encode_scope(scope)};
    ace::AsResponse r = as.handle_token("bench" + std::to_string(i), tr.encode(), now);
    if (r.code != cp::coap::code::kCreated) die("the AS refused a token");
    auto t = ace::TokenResponse::decode(r.payload);
    if (!t || !t->cnf || !t->cnf->osc) die("bad token response");
    out[i].token = std::move(*t);
    auto kp = provider.generate_keypair(cp::crv::kEd25519);
    if (!kp) die("cannot generate an Ed25519 key");
    out[i].key = cose::CoseKey::from_keypair(*kp);
    auto signer = provider.make_signer(cp::alg::kEdDSA, *kp);
    if (!signer) die("cannot load an Ed25519 signing key");
    out[i].signer = std::move(*signer);
    out[i].cred = out[i].key.encode(false);
  }
  return out;
}

// crypto_join_bound: joins per second if the KDC did nothing but one join's
// cryptography, on one core.
// rekeys_per_join: how many rekeys the path made per join (with on_join, one per
// store round that had joins: a round's later joiners get that round's key); each
// draws a master secret, salt and Group ID, here as often as the path drew them.
// out_cpu_per_join: the loop's CPU time per join (seconds), which unlike the rate
// does not depend on how much of a core the machine's load left to the loop.
double crypto_join_bound(crypto::Provider& provider, const Joiner& sample, double seconds_to_run,
                         double rekeys_per_join, double* out_cpu_per_join) {
  Random& random = provider.random();  // as the KDC's (KdcServer::random_)
  double rekeys_owed = 0;
  const cose::CoseKey shared = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
  kdc::SignInfo si;
  Bytes n_s = random.bytes(8), n_c = random.bytes(8);
  Bytes sig = *groupcomm::sign_pop(provider, cp::alg::kEdDSA, sample.key, n_s, n_c);
  Bytes cred = sample.key.encode(false);
  oscore::ContextParams params;
  params.master_secret = random.bytes(16);
  params.master_salt = random.bytes(8);
  params.sender_id = {0x01};
  params.recipient_id = {0x02};
  params.id_context = random.bytes(8);
  auto aead = provider.make_aead(cp::alg::kAES_CCM_16_64_128, random.bytes(16));
  if (!aead) die("no AEAD");
  Bytes nonce(13, 0x01), aad(20, 0x02), plain(120, 0x03), sealed(200), opened(200);
  size_t iterations = 0;
  uint8_t draws_sink = 0;
  const double cpu0 = thread_cpu_s();
  const auto t0 = Clk::now();
  do {
    for (int k = 0; k < 16; ++k) {
      auto t = cose::encrypt0_decrypt(provider, shared, sample.token.access_token);
      oscore::ContextConfig cfg;
      cfg.params = params;
      auto ctx = oscore::Context::create(provider, std::move(cfg));
      auto key = groupcomm::verify_pop(provider, si, cred, n_s, n_c, sig);
      auto n = (*aead)->seal(nonce, aad, plain, sealed);
      auto m = (*aead)->open(nonce, aad, ByteView(sealed.data(), n ? *n : 0), opened);
      if (!t || !ctx || !key || !n || !m) die("crypto-only loop failed");
      // The KDC's random draws (the provider's CSPRNG, as serve): nonce2, rsnonce,
      // node name, and the rekey's new master secret, salt and Group ID as often as
      // the path rekeyed.
      Bytes n2 = random.bytes(8), rs = random.bytes(8), name = random.bytes(4);
      rekeys_owed += rekeys_per_join;
      if (rekeys_owed >= 1.0) {
        rekeys_owed -= 1.0;
        Bytes ms = random.bytes(16), salt = random.bytes(8), gid = random.bytes(4);
        draws_sink ^= ms[0] ^ salt[0] ^ gid[0];
      }
      draws_sink ^= n2[0] ^ rs[0] ^ name[0];
      ++iterations;
    }
  } while (secs_since(t0) < seconds_to_run);
  const double rate = static_cast<double>(iterations) / secs_since(t0);
  *out_cpu_per_join = (thread_cpu_s() - cpu0) / static_cast<double>(iterations);
  if (draws_sink == 0x5a) std::fflush(stdout);  // keeps the draws observable
  return rate;
}

struct JoinArgs {
  size_t members = 1000;
  // 1024 flows keep the KDC busy: each join waits for two durable group commits
  // (token POST, join), so with few flows the KDC idles on fsync latency (C=16:
  // 4-5 joins per commit); a KDC serves many devices at once (docs/kdc-state.md).
  size_t concurrency = 1024;
  double timeout_s = 10;
  bool no_pipeline = false;  // the baseline: fsyncs inside the round on the KDC thread
};

void run_join(const JoinArgs& a) {
  if (a.members == 0 || a.concurrency == 0) die("--members and --concurrency must be > 0");
  auto provider = crypto::make_openssl_provider();
  std::printf("setting up: %zu tokens from the in-process AS, %zu Ed25519 keys...\n", a.members, a.members);
  std::fflush(stdout);
  std::vector<Joiner> joiners = make_joiners(*provider, a.members);
  TempDir dir("bench-kdc");
  KdcServer server(dir.path, std::max<size_t>(4096, a.members), !a.no_pipeline);
  uint64_t num_before = 0;  // the group's key version before the joins (their rekeys: num after - this)
  if (auto g0 = server.store().load_group(kGroup)) num_before = g0->key.num;
  // The bound is measured around the path, a second before it and a second after
  // it on the same thread, and the ratio taken against their mean: on a shared
  // machine the core's speed drifts, and one measurement taken afterwards alone
  // swung the ratio by +-20 points. The slice after counts the rekeys' draws as
  // often as the path rekeyed; the slice before (the count not known yet) counts
  // none: its bound is faster by those few draws per round, which can only lower
  // the ratio.
  pthread_setname_np(pthread_self(), "bound");
  double crypto_cpu_before = 0;
  const double bound_before = crypto_join_bound(*provider, joiners.front(), 1.0, 0.0, &crypto_cpu_before);
  // The clients (the load generator) run on their own thread; the KDC serves on this
  // one, the process's main thread, as in serve.
  std::vector<double> latencies_ms;
  latencies_ms.reserve(a.members);
  size_t failed = 0;
  std::string first_failure;
  double elapsed = 0;
  ThreadCpu client_cpu;
  uint64_t commits = 0;
  std::thread client_thread([&] {
  pthread_setname_np(pthread_self(), "client");
  SystemClock clock;
  SystemRandom random;
  // One endpoint stands for C clients: it may have C CONs outstanding at the KDC
  // (NSTART would otherwise serialize them).
  coap::EndpointConfig ecfg;
  ecfg.nstart = static_cast<int>(a.concurrency);
  coap::Endpoint ep(clock, random, ecfg);
  io::Loop loop(ep, clock);
  auto sock = io::UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
  if (!sock) die("cannot bind the client socket");
  loop.add_socket(std::move(*sock));
  const coap::Address kdc = server.address();

  size_t next = 0, done = 0;
  coap::RequestOptions opts;
  opts.timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout_s));

  // The client's constant parts and scratch buffers, made once (each device has
  // its scope, its join path and its buffers ready; one thread plays them all).
  Bytes scope_bytes;
  {
    ace::Scope scope;
    scope.entries.push_back(ace::ScopeEntry{kGroup, ace::kRoleRequester | ace::kRoleResponder});
    scope_bytes = ace::encode_scope(scope);
  }
  const std::string join_path = std::string("/ace-group/") + kGroup;
  Bytes protect_buf(2048), unprotect_buf(8192);

  std::function<void()> start_next;
  auto fail = [&](const std::string& why) {
    ++failed;
    ++done;
    if (first_failure.empty()) first_failure = why;
    start_next();
  };
  auto join_step = [&](Joiner& j, const coap::ClientEvent& ev) {
    if (ev.status != coap::ClientStatus::kResponse || !ev.response) return fail("token POST: no response");
    if (ev.response->code != coap::code::kCreated) return fail("token POST: " + coap::code_string(ev.response->code));
    ace::AuthzInfoResponse air;
    auto params = ace::finish_token_post(*j.token.cnf->osc, j.post, ev.response->payload, &air);
    if (!params || !air.rsnonce) return fail("token POST: no context / rsnonce");
    oscore::ContextConfig cfg;
    cfg.params = std::move(*params);
    auto ctx = oscore::Context::create(*provider, std::move(cfg));
    if (!ctx) return fail("client context");
    j.ctx = std::move(*ctx);
    uint8_t pop_msg[2 * 64];
    uint8_t cnonce[8];
    uint8_t sig[64];
    if (air.rsnonce->size() > 64) return fail("token POST: oversized rsnonce");
    random.fill(MutableByteView(cnonce, sizeof cnonce));
    std::memcpy(pop_msg, air.rsnonce->data(), air.rsnonce->size());
    std::memcpy(pop_msg + air.rsnonce->size(), cnonce, sizeof cnonce);
    auto sig_len = j.signer->sign(ByteView(pop_msg, air.rsnonce->size() + sizeof cnonce), MutableByteView(sig, sizeof sig));
    if (!sig_len) return fail("sign_pop");
    groupcomm::JoinRequest jr;
    jr.scope = scope_bytes;
    jr.client_cred = j.cred;
    jr.cnonce = ByteView(cnonce, sizeof cnonce);
    jr.client_cred_verify = ByteView(sig, *sig_len);
    coap::Message req(coap::Type::kCon, coap::code::kPost, 0);
    req.set_uri_path(join_path);
    req.set_uint(coap::option::kContentFormat, cp::cf::kAceGroupcommCbor);
    req.payload = groupcomm::encode_join_request(jr);
    auto n = j.ctx->protect_request(req, protect_buf, j.ex);
    if (!n) return fail("protect");
    auto outer = coap::Message::parse(ByteView(protect_buf.data(), *n));
    if (!outer) return fail("protect: bad message");
    ep.request(kdc, std::move(*outer), opts, [&, jp = &j](const coap::ClientEvent& e2) {
      if (e2.status != coap::ClientStatus::kResponse || !e2.response) return fail("join: no response");
      auto wire = e2.response->encode();
      auto d = wire ? jp->ctx->unprotect_response(*wire, jp->ex, unprotect_buf)
                    : Expected<size_t, oscore::Error>(unexpected(oscore::Error::kMalformedMessage));
      if (!d) return fail("join: response not OSCORE-verified");
      auto inner = coap::Message::parse(ByteView(unprotect_buf.data(), *d));
      if (!inner || inner->code != coap::code::kCreated)
        return fail("join: " + (inner ? coap::code_string(inner->code) + " " +
                                          std::string(as_string(inner->payload))
                                      : std::string("bad inner response")));
      latencies_ms.push_back(secs_since(jp->started) * 1000.0);
      ++done;
      start_next();
    });
    loop.flush();  // this device sends its join now, not after the whole batch of answers
  };
  start_next = [&]() {
    if (next >= joiners.size()) return;
    Joiner& j = joiners[next++];
    j.started = Clk::now();
    Bytes rid = {static_cast<uint8_t>(0x10 + next % 200)};
    j.post = ace::prepare_token_post(j.token.access_token, rid, random, true);
    coap::Message p(coap::Type::kCon, coap::code::kPost, 0);
    p.set_uri_path("/authz-info");
    p.set_uint(coap::option::kContentFormat, cp::cf::kAceCbor);
    p.payload = j.post.payload;
    ep.request(kdc, std::move(p), opts, [&, jp = &j](const coap::ClientEvent& ev) { join_step(*jp, ev); });
    loop.flush();  // each simulated device sends as soon as it is ready
  };

  std::printf("joining %zu members, %zu at a time, over UDP loopback...\n", a.members, a.concurrency);
  std::fflush(stdout);
  const uint64_t commits_before = server.commits();
  const ThreadCpu client_cpu0 = thread_cpu();
  const auto t0 = Clk::now();
  for (size_t i = 0; i < a.concurrency; ++i) start_next();
  while (done < joiners.size()) {
    loop.run_once(milliseconds(50));
    if (secs_since(t0) > a.timeout_s + static_cast<double>(a.members)) break;
  }
  elapsed = secs_since(t0);
  client_cpu = thread_cpu() - client_cpu0;
  commits = server.commits() - commits_before;
  server.stop();
  });
  server.run();
  client_thread.join();
  const size_t ok = latencies_ms.size();
  auto g = server.store().load_group(kGroup);

  pthread_setname_np(pthread_self(), "bound");  // perf report --comm kdc: the path only
  std::printf("crypto-only bound: measuring one join's KDC cryptography in a tight loop...\n");
  std::fflush(stdout);
  const kdc::RekeyPolicy policy = bench_group().rekey;
  const bool rekey_every_join = policy.on_join && policy.min_interval_s == 0 && policy.batch_changes == 0;
  // The rekeys the path made: one per store round with joins (on_join: a round's
  // later joiners get that round's new key); the bound draws their randomness as often.
  const uint64_t rekeys = g && g->key.num > num_before ? g->key.num - num_before : 0;
  const double rekeys_per_join = ok ? static_cast<double>(rekeys) / static_cast<double>(ok) : 0.0;
  double crypto_cpu_after = 0;
  const double bound_after = crypto_join_bound(*provider, joiners.front(), 1.0, rekeys_per_join, &crypto_cpu_after);
  const double bound = (bound_before + bound_after) / 2;
  const double crypto_cpu_per_join = (crypto_cpu_before + crypto_cpu_after) / 2;
  const double rate = static_cast<double>(ok) / elapsed;
  std::printf("\nbench join: %zu members, concurrency %zu, SQLite stores (group state and /authz-info tokens;\n"
              "  WAL; one group commit of both per loop round, %s)\n",
              a.members, a.concurrency,
              a.no_pipeline ? "fsync'd on the KDC thread (--no-pipeline)"
                            : "its fsyncs pipelined on a commit thread: answers held until durable");
  std::printf("  rekey policy     %s\n", policy_text(policy).c_str());
  std::printf("  joins ok         %zu (failed %zu%s%s)\n", ok, failed, first_failure.empty() ? "" : ", first: ",
              first_failure.c_str());
  std::printf("  group size after %zu members, num %llu (%llu rekeys: %.3f per join, one per store round with joins)\n",
              g ? g->members.size() : 0, g ? static_cast<unsigned long long>(g->key.num) : 0ULL,
              static_cast<unsigned long long>(rekeys), rekeys_per_join);
  std::printf("  elapsed          %.3f s\n", elapsed);
  std::printf("  joins/s          %.0f\n", rate);
  std::printf("  latency p50      %.2f ms\n", percentile(latencies_ms, 0.50));
  std::printf("  latency p99      %.2f ms\n", percentile(latencies_ms, 0.99));
  std::printf("  store commits    %llu (%.1f joins per commit), %.3f s in commits on the KDC thread (%s)\n",
              static_cast<unsigned long long>(commits),
              commits ? static_cast<double>(ok) / static_cast<double>(commits) : 0.0, server.commit_s(),
              a.no_pipeline ? "with their fsyncs" : "without fsync");
  if (!a.no_pipeline)
    std::printf("  fsyncs           %llu rounds of two WAL fsyncs (%.1f joins per round), %.3f s in them (both threads)\n",
              static_cast<unsigned long long>(server.syncs()),
              server.syncs() ? static_cast<double>(ok) / static_cast<double>(server.syncs()) : 0.0, server.sync_s());
  if (!a.no_pipeline)
    std::printf("  inline syncs     %llu of them on the KDC thread (set_inline_below 1 ms), %.3f s blocking it\n",
                static_cast<unsigned long long>(server.inline_syncs()), server.inline_sync_s());
  if (!a.no_pipeline)
    std::printf("  release wait     %.3f s summed over %llu syncs from the sync's return to the loop releasing\n"
                "                   its answers (the loop notices between drains of up to 1,024 datagrams)\n",
                server.release_wait_s(), static_cast<unsigned long long>(server.release_waits()));
  const double kdc_cpu_per_join = ok ? server.cpu_s() / static_cast<double>(ok) : 0.0;
  const double per_join_us = ok ? 1e6 / static_cast<double>(ok) : 0.0;
  std::printf("  KDC thread CPU   %.3f s = %.0f us per join (user %.0f, system %.0f); the bound's crypto: %.0f us CPU per join (%.0f us wall)\n",
              server.cpu_s(), 1e6 * kdc_cpu_per_join, per_join_us * server.cpu().user_s,
              per_join_us * server.cpu().sys_s, 1e6 * crypto_cpu_per_join, 1e6 / bound);
  std::printf("  client CPU       %.3f s = %.0f us per join (user %.0f, system %.0f): the load generator (its thread:\n"
              "                   token POST, context derivation, PoP signing, OSCORE protect/verify, UDP)\n",
              client_cpu.total(), per_join_us * client_cpu.total(), per_join_us * client_cpu.user_s,
              per_join_us * client_cpu.sys_s);
  if (!a.no_pipeline)
    std::printf("  sync CPU         %.3f s = %.0f us per join (the fsyncs' CPU, on the commit or the KDC thread)\n",
                server.sync_cpu_s(), per_join_us * server.sync_cpu_s());
  std::printf("  wall per join    %.0f us (elapsed / joins)\n", ok ? 1e6 * elapsed / static_cast<double>(ok) : 0.0);
  std::printf("  CPU efficiency   %.1f%% (crypto CPU per join / KDC CPU per join: the share of the KDC's CPU\n"
              "                   that is the join's cryptography; the rest is CoAP, SQLite, CBOR, bookkeeping)\n",
              kdc_cpu_per_join > 0 ? 100.0 * crypto_cpu_per_join / kdc_cpu_per_join : 0.0);
  std::printf("  crypto-only bound %.0f joins/s on one core (token decrypt + OSCORE derivation + Ed25519 PoP verify\n"
              "                   + AEAD open/seal + random draws%s)\n",
              bound, rekey_every_join ? " incl. the rekeys' as often as the path rekeyed" : "");
  std::printf("                   (the mean of %.0f /s measured before the path and %.0f /s after it)\n",
              bound_before, bound_after);
  std::printf("  ratio            %.1f%% of the crypto-only bound (target >= 70%%; %.1f%% / %.1f%% of the slices)\n",
              100.0 * rate / bound, 100.0 * rate / bound_before, 100.0 * rate / bound_after);
  if (failed) fail_with(kExitFailure);
}

// ---- bench rekey ----

struct RekeyArgs {
  size_t members = 10000;
};

void run_rekey(const RekeyArgs& a) {
  if (a.members == 0) die("--members must be > 0");
  auto provider = crypto::make_openssl_provider();
  SystemClock clock;
  SystemRandom random;
  TempDir dir("bench-kdc");
  const std::string path = dir.path + "/kdc.db";
  kdc::GroupConfig g;
  g.name = kGroup;
  g.max_members = 10000000;
  std::printf("setting up: %zu members written into the store, their KDC contexts...\n", a.members);
  std::fflush(stdout);
  struct Peer {
    std::unique_ptr<oscore::Context> ctx;  // the KDC's side of the member's context
    oscore::Exchange ex;                     // its Observe registration on nodes/NODENAME
    Bytes sender_id;
  };
  std::vector<Peer> peers(a.members);
  {
    kdc::SqliteOptions bulk;
    bulk.durable = false;
    auto s = kdc::SqliteStore::open(path, bulk);
    if (!s) die("cannot open the store");
    if (!(*s)->create_group(g, first_group_key(random, clock.unix_time(), g))) die("create_group failed");
    auto kp = provider->generate_keypair(cp::crv::kEd25519);
    Bytes pub = cose::CoseKey::from_keypair(*kp).encode(false);
    if (!(*s)->begin_batch()) die("begin_batch failed");
    for (size_t i = 0; i < a.members; ++i) {
      kdc::Member m;
      m.node_name = "n" + std::to_string(i);
      m.sender_id = {static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      m.roles = ace::kRoleRequester | ace::kRoleResponder;
      m.public_key = pub;
      m.joined_at = clock.unix_time();
      if (!(*s)->add_member(kGroup, m)) die("add_member failed");
      // The member's client-KDC context and an Observe GET it sent (the registration).
      oscore::ContextParams p;
      p.master_secret = random.bytes(16);
      p.master_salt = random.bytes(8);
      p.sender_id = {0x4b};
      p.recipient_id = {static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      p.id_context = random.bytes(8);
      oscore::ContextParams cp_ = p;
      std::swap(cp_.sender_id, cp_.recipient_id);
      oscore::ContextConfig scfg, ccfg;
      scfg.params = std::move(p);
      ccfg.params = std::move(cp_);
      auto sctx = oscore::Context::create(*provider, std::move(scfg));
      auto cctx = oscore::Context::create(*provider, std::move(ccfg));
      if (!sctx || !cctx) die("context");
      coap::Message get(coap::Type::kCon, coap::code::kGet, 0);
      get.set_uri_path(std::string("/ace-group/") + kGroup + "/nodes/" + m.node_name);
      get.set_uint(coap::option::kObserve, 0);
      Bytes buf(512), dec(512);
      oscore::Exchange cex;
      auto n = (*cctx)->protect_request(get, buf, cex);
      auto d = n ? (*sctx)->unprotect_request(ByteView(buf.data(), *n), dec, peers[i].ex)
                 : Expected<size_t, oscore::Error>(unexpected(n.error()));
      if (!d) die("registration");
      peers[i].ctx = std::move(*sctx);
      peers[i].sender_id = m.sender_id;
    }
    if (!(*s)->commit_batch()) die("commit_batch failed");
  }
  // The KDC restarts on the populated store (durable mode, as serve runs).
  const int64_t rss0 = rss_bytes();
  const auto t_open = Clk::now();
  kdc::SqliteOptions sopts;
  sopts.cache_groups = true;  // as serve opens it
  auto s = kdc::SqliteStore::open(path, sopts);
  if (!s) die("cannot reopen the store");
  groupcomm::GroupManager mgr(**s, *provider, random);
  auto first = (*s)->load_group(kGroup);  // the first request's work: the group materialized
  const double start_serve_s = secs_since(t_open);
  if (!first || first->members.size() != a.members) die("load_group failed");
  const int64_t rss1 = rss_bytes();
  size_t pub_len = first->members.begin()->second.public_key.size();
  { kdc::GroupState drop = std::move(*first); }

  // Timed: the durable rekey, then one protected key distribution per member.
  const auto t0 = Clk::now();
  auto num = mgr.rekey(kGroup, clock.unix_time());
  if (!num) die(std::string("rekey failed: ") + kdc::to_string(num.error()));
  auto gs = (*s)->load_group(kGroup);
  if (!gs) die("load_group failed");
  const double t_rekey = secs_since(t0);
  Bytes out(1024);
  size_t bytes_out = 0;
  for (size_t i = 0; i < a.members; ++i) {
    groupcomm::KeyDistribution kd;
    kd.config = &gs->config;
    kd.key = &gs->key;
    kd.sender_id = ByteView(peers[i].sender_id);
    auto payload = groupcomm::encode_key_distribution(kd);
    if (!payload) die("encode_key_distribution failed");
    coap::Message note(coap::Type::kCon, coap::code::kContent, 0);
    note.set_uint(coap::option::kObserve, static_cast<uint32_t>(*num));
    note.set_uint(coap::option::kContentFormat, cp::cf::kAceGroupcommCbor);
    note.payload = std::move(*payload);
    oscore::ProtectOptions po;
    po.partial_iv = true;
    auto n = peers[i].ctx->protect_response(note, peers[i].ex, out, po);
    if (!n) die(std::string("protect notification: ") + oscore::to_string(n.error()));
    bytes_out += *n;
  }
  const double t_total = secs_since(t0);

  // Crypto-only bound: the same number of AEAD seals of a key distribution's size.
  auto aead = provider->make_aead(cp::alg::kAES_CCM_16_64_128, random.bytes(16));
  Bytes nonce(13, 0x01), aad(20, 0x02), plain(bytes_out / a.members, 0x03), sealed(plain.size() + 16);
  const auto tc = Clk::now();
  for (size_t i = 0; i < a.members; ++i) {
    nonce[12] = static_cast<uint8_t>(i);
    if (!(*aead)->seal(nonce, aad, plain, sealed)) die("seal");
  }
  const double t_crypto = secs_since(tc);

  const double fanout = static_cast<double>(a.members) / (t_total - t_rekey);
  std::printf("\nbench rekey: %zu members, SQLite store (WAL, synchronous=FULL)\n", a.members);
  std::printf("  NOTE: this bench does not drive the push delivery (Observe / control_path of\n"
              "  GroupCoapBinding) over the network: measured is the KDC's fan-out (producing all %zu\n"
              "  OSCORE-protected key distribution notifications), not the time until the members\n"
              "  hold the new version.\n", a.members);
  std::printf("  rekey (durable put_key_material + load)  %.2f ms, new num %llu\n", t_rekey * 1000.0,
              static_cast<unsigned long long>(*num));
  std::printf("  fan-out          %.3f s for %zu messages (%zu bytes each on average)\n", t_total - t_rekey,
              a.members, bytes_out / a.members);
  std::printf("  total            %.3f s from rekey to the last message (target: 10,000 members < 1 s)\n",
              t_total);
  std::printf("  fan-out rate     %.0f members/s (target >= 50,000/s)\n", fanout);
  std::printf("  crypto-only bound %.0f members/s (%zu AEAD seals of that size, one core)\n",
              static_cast<double>(a.members) / t_crypto, a.members);
  std::printf("  ratio            %.1f%% of the crypto-only bound\n", 100.0 * (t_crypto / (t_total - t_rekey)));
  std::printf("memory / startup (store opened as serve does, with the group cache; RSS counts the\n"
              "cached copy and the first request's copy of the group):\n");
  std::printf("  open store + first load_group of %zu members: %.3f s (target start+serve < 2 s at 100k)\n",
              a.members, start_serve_s);
  const double per_member = static_cast<double>(rss1 - rss0) / static_cast<double>(a.members);
  std::printf("  RSS growth       %.0f bytes/member, %.0f beyond the %zu-byte public key (target <= 1024)\n",
              per_member, per_member - static_cast<double>(pub_len), pub_len);
}

Registrar reg("bench-kdc", [](CLI::App& root) {
  CLI::App* bench = bench_command(root);
  auto ja = std::make_shared<JoinArgs>();
  auto* join = bench->add_subcommand("join", "KDC joins/s (token POST + OSCORE join, Ed25519 PoP) vs the crypto-only bound");
  join->add_option("--members", ja->members, "members that join (default 1000)");
  join->add_option("--concurrency", ja->concurrency, "joins in flight at once (default 1024: saturates the KDC; 16 shows the fsync-latency-bound case)");
  join->add_flag("--no-pipeline", ja->no_pipeline,
                 "baseline: the round's fsyncs on the KDC thread before its answers (no commit thread)");
  join->add_option("--timeout", ja->timeout_s, "per-request timeout in seconds (default 10)");
  join->callback([ja] { run_join(*ja); });
  auto ra = std::make_shared<RekeyArgs>();
  auto* rekey = bench->add_subcommand("rekey", "KDC rekey fan-out to N members vs the crypto-only bound; memory per member");
  rekey->add_option("--members", ra->members, "members of the group (default 10000)");
  rekey->callback([ra] { run_rekey(*ra); });
});

}  // namespace
}  // namespace acekdc::app
