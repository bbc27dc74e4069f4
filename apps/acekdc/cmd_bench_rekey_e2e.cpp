// acekdc bench rekey-e2e: the time until every member of an N-member group holds the
// new keying material after a rekey, end to end over UDP loopback (issue 6: "a
// 10,000-member group holds the new keying material within 1 second over
// loopback"; docs/kdc-state.md "Rekey delivery, end to end").
//
//   acekdc bench rekey-e2e --members N [--observe | --control-path] [--sockets S]
//
// The KDC is built as `acekdc serve` builds it (AuthzInfo with a SqliteTokenStore,
// the KDC contexts' sequence numbers in a FileSequenceStore, AceCoapGate with its
// SqlitePushStore, SqliteStore with the group cache, GroupManager,
// GroupCoapBinding, group commit per loop round, PushDriver) and runs its loop in
// its own thread on 127.0.0.1:0. Setup (not timed): N + 1 members get a token from
// an in-process AS and POST it to the KDC's /authz-info (the real token POST, run
// through the gate in-process: the OSCORE context is derived and recorded as a
// join leaves it); their membership rows are written into the KDC store (no PoP
// join: the output says so). The simulated members (this thread) hold all
// members' client contexts over S UDP sockets on 127.0.0.1, each socket with its
// own coap::Endpoint (default: one socket per member, i.e. one address per member
// as with real devices, when RLIMIT_NOFILE allows after raising the soft limit to
// the hard one; else as many as it allows; the output prints the topology), all
// waited on with one epoll set; each member registers its Observe on nodes/NODENAME (or,
// with --control-path, sends a GET nodes/NODENAME from its socket so that the KDC
// learns its address; its control_path is "rekey").
// Timed: the extra member leaves (DELETE nodes/NODENAME over OSCORE: the KDC rekeys
// on leave) and the clock runs until every member has received, OSCORE-verified
// (its own context and registration exchange; fresh Partial IV, replay check) and
// parsed the key distribution with the new num, and acknowledged it (the ACK /
// the protected 2.04 leaves in the same loop round). Printed: time to all,
// members/s, p50/p99 per-member latency, losses and retransmissions, the KDC
// thread's CPU time, and the time until the KDC saw every ACK / answer.
// Where things live: the KDC store (kdc.db, one fsync per commit, in the timed
// path) and the push store in TMPDIR (disk); the token store and the sequence
// number files, written only during setup (10,000 fsync'd writes each), in
// /dev/shm when it exists (--setup-dir to choose).
#include <pthread.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>
#include <sys/resource.h>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "ace/push_driver.h"
#include "ace/push_store.h"
#include "ace/sqlite_token_store.h"
#include "acekdc/bench_util.h"
#include "acekdc/command.h"
#include "acekdc/kdc_setup.h"
#include "client/responses.h"
#include "coap/endpoint.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/manager.h"
#include "io/udp.h"
#include "kdc/sqlite_store.h"
#include "oscore/context.h"
#include "oscore/sequence_store.h"

namespace acekdc::app {
namespace {

using Clk = std::chrono::steady_clock;
double secs(Clk::duration d) { return std::chrono::duration<double>(d).count(); }

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitFailure);
}

double thread_cpu_s(pthread_t t) {
  clockid_t cid;
  if (pthread_getcpuclockid(t, &cid) != 0) return 0;
  timespec ts{};
  clock_gettime(cid, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

constexpr const char* kGroup = "bench-group";
constexpr const char* kControlPath = "rekey";
const Bytes kTokenKey = Bytes{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

struct Args {
  size_t members = 1000;
  bool control = false;
  size_t sockets = 0;  // 0: one per member (as many as the fd limit allows)
  int kdc_nstart = 1;
  size_t protect_batch = 64;  // PushDriver::set_protect_batch
  double timeout_s = 30;
  std::string setup_dir;
  double pause_s = 0;  // after setup, before the trigger (to attach a profiler)
};

// Kdc: the KDC as serve builds it, in its own thread.
class Kdc {
 public:
  Kdc(const std::string& dir, const std::string& setup_dir, size_t capacity, int nstart, size_t protect_batch) {
    kdc::GroupConfig g;
    g.name = kGroup;
    g.max_members = 10000000;
    group_ = g;
    cose::CoseKey shared = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
    ace::AuthzInfoConfig kcfg;
    kcfg.audience = "kdc";
    kcfg.issuer = "acekdc-as";
    kcfg.as_keys.keys.push_back(shared);
    kcfg.groups[kGroup] = ace_group_config(g);
    auto ts = ace::SqliteTokenStore::open(setup_dir + "/kdc-tokens.sqlite", capacity);
    if (!ts) die("cannot open the token store");
    tokens_ = std::move(*ts);
    std::filesystem::create_directories(setup_dir + "/kdc-seq");
    seq_ = std::make_unique<oscore::FileSequenceStore>(setup_dir + "/kdc-seq");
    authz_ = std::make_unique<ace::AuthzInfo>(*provider_, random_, *tokens_, kcfg);
    gate_ = std::make_unique<ace::AceCoapGate>(*provider_);
    gate_->serve_kdc(*authz_);
    gate_->set_sequence_store(seq_.get());
    auto ps = ace::SqlitePushStore::open(dir + "/kdc-push.sqlite");
    if (!ps) die("cannot open the push store");
    push_store_ = std::move(*ps);
    gate_->set_push_store(push_store_.get());
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
    coap::EndpointConfig ecfg;
    ecfg.nstart = nstart;
    ecfg.max_queued_per_peer = capacity;  // one notification per member may wait for NSTART
    ecfg.max_client_exchanges = capacity;
    ep_ = std::make_unique<coap::Endpoint>(clock_, random_, ecfg);
    driver_ = std::make_unique<ace::PushDriver>(*gate_, *ep_, [this](const std::string& line) {
      if (line.find("push: ") == 0 && (line.find(" dropped") != std::string::npos ||
                                       line.find("answered") != std::string::npos ||
                                       line.find("control path at") != std::string::npos)) {
        if (++failure_lines_ <= 5) std::fprintf(stderr, "kdc: %s\n", line.c_str());
      }
    });
    driver_->set_protect_batch(protect_batch);
    // The serve loop's handler (cmd_serve.cpp serve_gate): group commit per round,
    // pushes sent just after the round.
    ep_->set_request_handler([this](coap::RequestContext& ctx) {
      if (!store_->in_batch() && store_->begin_batch()) {
        ep_->schedule(ctx.now, [this](TimePoint) {
          if (!store_->commit_batch()) die("KDC store commit failed");
          if (gate_->has_outgoing() && !pushed_at_.load()) committed_at_.store(Clk::now().time_since_epoch().count());
        });
      }
      const bool first_timed = target_.load() && !handled_at_.load();
      if (first_timed) {
        handled_at_.store(Clk::now().time_since_epoch().count());
        handle_cpu_s_ = thread_cpu_s(pthread_self());
      }
      coap::Message req = coap::Message::from_view(ctx.request);
      auto datagram = req.encode();
      if (!datagram) return;
      Bytes out = gate_->handle(*datagram, clock_.unix_time(), ctx.peer);
      auto resp = coap::Message::parse(out);
      if (!resp) return;
      ctx.response.code = resp->code;
      for (const auto& o : resp->options()) ctx.response.add_option(o.number, o.value);
      ctx.response.payload = std::move(resp->payload);
      // Token expiry has a granularity of seconds: purge at most once per second
      // (as serve does; a purge walks every client record).
      if (const int64_t now = clock_.unix_time(); now != last_purge_) {
        last_purge_ = now;
        (void)gate_->purge(now);
      }
      if (gate_->has_outgoing()) {
        if (target_.load() && !queued_at_.load()) {
          queued_at_.store(Clk::now().time_since_epoch().count());
          handle_cpu_s_ = thread_cpu_s(pthread_self()) - handle_cpu_s_;
        }
        ep_->schedule(ctx.now + microseconds(1), [this](TimePoint) {
          driver_->send_all();
          if (target_.load() && !pushed_at_.load()) pushed_at_.store(Clk::now().time_since_epoch().count());
        });
      }
    });
    loop_ = std::make_unique<io::Loop>(*ep_, clock_);
    loop_->add_socket(std::move(*sock));
  }
  ~Kdc() { stop(); }

  void start() {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        loop_->run_once(milliseconds(100));
        const auto& st = driver_->stats();
        notifications_acked_.store(st.notifications_acked);
        requests_ok_.store(st.requests_ok);
        failures_.store(st.notifications_failed + st.requests_error + st.requests_no_answer);
        retransmissions_.store(ep_->stats().retransmissions);
        const uint64_t done = st.notifications_acked + st.requests_ok;
        if (target_.load() && st.notifications_sent + st.requests_sent >= target_.load() && !all_sent_at_.load())
          all_sent_at_.store(Clk::now().time_since_epoch().count());
        if (target_.load() && done >= target_.load() && !all_answered_at_.load())
          all_answered_at_.store(Clk::now().time_since_epoch().count());
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  pthread_t native() { return thread_.native_handle(); }

  // token_post runs one unprotected POST /authz-info through the gate (setup).
  Bytes token_post(ByteView payload) {
    coap::Message p(coap::Type::kCon, coap::code::kPost, 1);
    p.token = {0x01};
    p.set_uri_path("/authz-info");
    p.set_uint(coap::option::kContentFormat, cp::cf::kAceCbor);
    p.payload = to_bytes(payload);
    auto d = p.encode();
    if (!d) die("token POST encode");
    Bytes out = gate_->handle(*d, clock_.unix_time());
    auto r = coap::Message::parse(out);
    if (!r || r->code != coap::code::kCreated) die("token POST refused");
    return std::move(r->payload);
  }

  crypto::Provider& provider() { return *provider_; }
  kdc::SqliteStore& store() { return *store_; }
  ace::TokenStore& tokens() { return *tokens_; }
  const coap::Address& address() const { return address_; }
  void expect_answers(uint64_t n) { target_.store(n); }
  int64_t all_answered_at() const { return all_answered_at_.load(); }
  // Steps of the rekey round (steady clock ticks; 0: not seen): request handled
  // (rekey done, notifications protected), commit done, pushes handed to the endpoint.
  int64_t handled_at() const { return handled_at_.load(); }
  int64_t queued_at() const { return queued_at_.load(); }
  int64_t committed_at() const { return committed_at_.load(); }
  int64_t pushed_at() const { return pushed_at_.load(); }
  int64_t all_sent_at() const { return all_sent_at_.load(); }  // the last push protected and handed over
  // handle_cpu_s: the KDC thread's CPU time for the rekey request (read after stop()).
  double handle_cpu_s() const { return handle_cpu_s_; }
  uint64_t notifications_acked() const { return notifications_acked_.load(); }
  uint64_t requests_ok() const { return requests_ok_.load(); }
  uint64_t failures() const { return failures_.load(); }
  uint64_t retransmissions() const { return retransmissions_.load(); }

 private:
  SystemClock clock_;
  SystemRandom random_;
  kdc::GroupConfig group_;
  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  std::unique_ptr<ace::SqliteTokenStore> tokens_;
  std::unique_ptr<oscore::FileSequenceStore> seq_;
  std::unique_ptr<ace::AuthzInfo> authz_;
  std::unique_ptr<ace::AceCoapGate> gate_;
  std::unique_ptr<ace::SqlitePushStore> push_store_;
  std::unique_ptr<kdc::SqliteStore> store_;
  std::unique_ptr<groupcomm::GroupManager> mgr_;
  std::unique_ptr<groupcomm::GroupCoapBinding> binding_;
  std::unique_ptr<coap::Endpoint> ep_;
  std::unique_ptr<ace::PushDriver> driver_;
  std::unique_ptr<io::Loop> loop_;
  coap::Address address_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> target_{0}, notifications_acked_{0}, requests_ok_{0}, failures_{0}, retransmissions_{0};
  std::atomic<int64_t> all_answered_at_{0}, handled_at_{0}, queued_at_{0}, committed_at_{0}, pushed_at_{0},
      all_sent_at_{0};
  int failure_lines_ = 0;
  int64_t last_purge_ = 0;
  double handle_cpu_s_ = 0;
};

// Member: one simulated member's client side.
struct Member {
  std::string node;
  Bytes kdc_sender_id;  // the member's Recipient ID (ID1), the KDC's Sender ID: unique here
  std::unique_ptr<oscore::Context> ctx;
  oscore::Exchange registration;
  size_t socket = 0;
  bool registered = false;
  double latency_s = -1;  // from the trigger to holding the new num
};

// Sim: S sockets, each with its own Endpoint and Loop (S = the members + 1 by
// default: each member a device with its own address, as in a deployment, so the
// KDC's NSTART 1 applies per member). One epoll set for all sockets: a round
// services only the loops whose socket is ready or whose endpoint has a timer due
// (a min-heap of deadlines, refreshed for the loops a round touched), so a round
// costs what is ready, not a walk over every socket.
struct Sim {
  SystemClock clock;
  SystemRandom random;
  std::vector<std::unique_ptr<coap::Endpoint>> eps;
  std::vector<std::unique_ptr<io::Loop>> loops;
  std::vector<int> fds;
  std::vector<uint8_t> want_out;  // socket registered for EPOLLOUT (its loop has a backlog)
  int epfd = -1;
  using Deadline = std::pair<TimePoint, size_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> timers;
  std::vector<size_t> dirty;  // loops used outside service() (a request issued): flush + deadline
  std::vector<epoll_event> events;
  Sim(size_t sockets, size_t members) {
    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    const size_t per_socket = (members + sockets - 1) / sockets;
    for (size_t i = 0; i < sockets; ++i) {
      coap::EndpointConfig cfg;
      cfg.max_client_exchanges = per_socket + 16;  // every observation is an open exchange
      cfg.max_queued_per_peer = per_socket + 16;
      cfg.nstart = 16;  // setup only: registrations of the members behind this socket
      eps.push_back(std::make_unique<coap::Endpoint>(clock, random, cfg));
      // One thread runs all loops and no callback drives another loop: they share
      // one set of recvmmsg/sendmmsg buffers (not 10,000 x 150 KiB).
      loops.push_back(std::make_unique<io::Loop>(*eps.back(), clock, loops.empty() ? nullptr : loops[0]->buffers()));
      auto sock = io::UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
      if (!sock) die("cannot bind member socket " + std::to_string(i) + " (file descriptors?)");
      fds.push_back(sock->fd());
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (::epoll_ctl(epfd, EPOLL_CTL_ADD, sock->fd(), &ev) != 0) die("epoll_ctl");
      loops.back()->add_socket(std::move(*sock));
    }
    want_out.assign(sockets, 0);
    events.resize(std::min<size_t>(sockets, 1024));
  }
  ~Sim() {
    if (epfd >= 0) ::close(epfd);
  }
  // touch: loop i got work outside service() (a request): flushed and its deadline
  // noted at the next round.
  void touch(size_t i) { dirty.push_back(i); }
  void after_service(size_t i) {
    if (auto dl = eps[i]->next_deadline()) timers.emplace(*dl, i);
    const bool out = loops[i]->backlog_size() > 0;
    if (out != static_cast<bool>(want_out[i])) {
      epoll_event ev{};
      ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
      ev.data.u64 = i;
      ::epoll_ctl(epfd, EPOLL_CTL_MOD, fds[i], &ev);
      want_out[i] = out;
    }
  }
  // run_once waits up to `wait` for any socket or deadline, then services the
  // loops whose socket is ready or whose endpoint has a timer due.
  void run_once(Duration wait) {
    for (size_t i : dirty) {
      loops[i]->flush();
      after_service(i);
    }
    dirty.clear();
    TimePoint now = clock.now();
    if (!timers.empty()) wait = std::min(wait, timers.top().first > now ? timers.top().first - now : Duration::zero());
    const int64_t us = std::max<int64_t>(std::chrono::ceil<microseconds>(wait).count(), 0);
    const timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
    const int r = ::epoll_pwait2(epfd, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    now = clock.now();
    for (int k = 0; k < r; ++k) {
      const size_t i = static_cast<size_t>(events[static_cast<size_t>(k)].data.u64);
      loops[i]->service();
      after_service(i);
    }
    // Due timers (an entry may be stale: its loop's deadline moved; it is re-queued).
    while (!timers.empty() && timers.top().first <= now) {
      const size_t i = timers.top().second;
      timers.pop();
      auto dl = eps[i]->next_deadline();
      if (!dl) continue;
      if (*dl > now) {
        timers.emplace(*dl, i);
        continue;
      }
      loops[i]->service();
      after_service(i);
    }
  }
};

// raise_fd_limit: the soft RLIMIT_NOFILE up to the hard limit; returns the soft limit now.
size_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? (size_t{1} << 20) : static_cast<size_t>(rl.rlim_cur);
}

void run(const Args& a) {
  if (a.members == 0) die("--members must be > 0");
  TempDir dir("rekey-e2e");
  std::string setup_base = a.setup_dir;
  if (setup_base.empty()) setup_base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : dir.path;
  TempDir setup("rekey-e2e", setup_base);
  const size_t n = a.members;
  const size_t total = n + 1;  // the last one leaves to trigger the rekey
  // Topology: by default one socket (one address) per member, as each member is a
  // device of its own in a deployment (RFC 7252 §4.7 NSTART applies per address);
  // the soft fd limit is raised to the hard one and, if that is not enough, the
  // members share what it allows. --sockets S: S sockets, members spread over them.
  const size_t fd_limit = raise_fd_limit();
  constexpr size_t kFdReserve = 256;  // KDC socket, stores, epoll, stdio
  const size_t fd_avail = fd_limit > kFdReserve + 8 ? fd_limit - kFdReserve : 8;
  size_t sockets = a.sockets ? a.sockets : total;
  std::string topology;
  if (a.sockets == 0 && sockets <= fd_avail) {
    topology = "one socket per member (" + std::to_string(sockets) + " sockets, fd limit " + std::to_string(fd_limit) + ")";
  } else if (a.sockets == 0) {
    sockets = fd_avail;
    topology = std::to_string(sockets) + " sockets shared by " + std::to_string(total) +
               " members (fd limit " + std::to_string(fd_limit) + " too low for one per member)";
  } else {
    if (sockets > fd_avail) die("--sockets " + std::to_string(sockets) + " exceeds the fd limit " + std::to_string(fd_limit));
    topology = std::to_string(sockets) + " sockets shared by " + std::to_string(total) + " members (--sockets)";
  }
  Kdc kdc(dir.path, setup.path, total + 16, a.kdc_nstart, a.protect_batch);
  crypto::Provider& provider = kdc.provider();
  SystemClock clock;
  SystemRandom random;

  std::printf("setting up %zu members (+1 that leaves): token from the in-process AS, real token POST to the\n"
              "KDC's /authz-info (in-process, context derived and recorded), membership rows written into\n"
              "the KDC store (no PoP join)...\n", n);
  std::fflush(stdout);
  const auto t_setup = Clk::now();
  ace::AsPolicy pol;
  ace::AudiencePolicy aud;
  aud.name = "kdc";
  aud.shared_key = cose::CoseKey::symmetric(kTokenKey, {}, cp::alg::kAES_CCM_16_64_128);
  pol.audiences = {aud};
  pol.issuer = "acekdc-as";
  pol.max_materials = total + 16;
  for (size_t i = 0; i < total; ++i) {
    ace::ClientPolicy c;
    c.id = "m" + std::to_string(i);
    c.groups[kGroup] = ace::kRoleRequester | ace::kRoleResponder;
    pol.clients.push_back(std::move(c));
  }
  ace::AuthorizationServer as(provider, random, pol);
  if (auto v = as.validate(); !v.empty()) die("AS policy: " + v);
  ace::Scope scope;
  scope.entries.push_back(ace::ScopeEntry{kGroup, ace::kRoleRequester | ace::kRoleResponder});
  auto kp = provider.generate_keypair(cp::crv::kEd25519);
  if (!kp) die("Ed25519 key");
  const Bytes pub = cose::CoseKey::from_keypair(*kp).encode(false);
  std::vector<Member> members(total);
  std::unordered_map<std::string, size_t> by_kid;  // KDC Sender ID -> member (control path)
  if (!kdc.store().begin_batch()) die("begin_batch");
  for (size_t i = 0; i < total; ++i) {
    const int64_t now = clock.unix_time();
    ace::TokenRequest tr;
    tr.audience = "kdc";
    tr.scope = ace::ScopeParam{false, ace::encode_scope(scope)};
    ace::AsResponse r = as.handle_token("m" + std::to_string(i), tr.encode(), now);
    if (r.code != cp::coap::code::kCreated) die("the AS refused a token");
    auto t = ace::TokenResponse::decode(r.payload);
    if (!t || !t->cnf || !t->cnf->osc) die("bad token response");
    Member& m = members[i];
    m.kdc_sender_id = {static_cast<uint8_t>(0x80 | (i >> 16)), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    ace::ClientTokenPost post = ace::prepare_token_post(t->access_token, m.kdc_sender_id, random, false);
    Bytes answer = kdc.token_post(post.payload);
    auto params = ace::finish_token_post(*t->cnf->osc, post, answer);
    if (!params) die("token POST answer");
    ace::ContextKey key;
    key.recipient_id = params->sender_id;  // the KDC's Recipient ID = the client's Sender ID
    key.id_context = params->id_context;
    auto rec = kdc.tokens().get(key);
    if (!rec || rec->tokens.empty()) die("the token POST left no record");
    oscore::ContextConfig cfg;
    cfg.params = std::move(*params);
    auto ctx = oscore::Context::create(provider, std::move(cfg));
    if (!ctx) die("client context");
    m.ctx = std::move(*ctx);
    kdc::Member km;
    km.node_name = "n" + std::to_string(i);
    km.sender_id = {static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    km.roles = ace::kRoleRequester | ace::kRoleResponder;
    km.public_key = pub;
    km.joined_at = now;
    km.token_id = rec->tokens.back().cti.empty() ? rec->material_id : rec->tokens.back().cti;
    if (a.control && i < n) km.control_path = kControlPath;
    if (auto r = kdc.store().add_member(kGroup, km); !r) die(std::string("add_member: ") + kdc::to_string(r.error()));
    m.node = km.node_name;
    m.socket = i % sockets;
    by_kid[std::string(m.kdc_sender_id.begin(), m.kdc_sender_id.end())] = i;
  }
  if (!kdc.store().commit_batch()) die("commit_batch failed");
  auto g0 = kdc.store().load_group(kGroup);
  if (!g0) die("load_group");
  const uint64_t old_num = g0->key.num;
  kdc.start();
  const coap::Address kdc_addr = kdc.address();

  Sim sim(sockets, total);
  // The members' plaintext / answer buffers (this thread only; callbacks do not nest).
  Bytes scratch_in(4096), scratch_out(4096);
  // The control path server: the KDC's POST to /rekey, answered with a protected 2.04.
  Clk::time_point t0{};
  bool timing = false;
  size_t holding = 0;
  uint64_t bad = 0;
  auto accept = [&](Member& m, ByteView payload) -> bool {
    auto k = client::decode_key_distribution(payload);
    if (!k) return false;
    if (timing && k->num == old_num + 1 && m.latency_s < 0) {
      m.latency_s = secs(Clk::now() - t0);
      ++holding;
    }
    return true;
  };
  for (size_t s = 0; s < sockets; ++s) {
    sim.eps[s]->set_request_handler([&](coap::RequestContext& rc) {
      auto opt = rc.request.find(coap::option::kOscore);
      auto ov = opt ? oscore::parse_option(opt->value) : Expected<oscore::OptionValue, oscore::Error>(
                                                             unexpected(oscore::Error::kMalformedMessage));
      auto it = ov && ov->kid ? by_kid.find(std::string(ov->kid->begin(), ov->kid->end())) : by_kid.end();
      if (it == by_kid.end()) {
        ++bad;
        rc.response.code = coap::code::kUnauthorized;
        return;
      }
      Member& m = members[it->second];
      coap::Message in = coap::Message::from_view(rc.request);
      auto dg = in.encode();
      Bytes& plain = scratch_in;
      oscore::Exchange sx;
      auto pn = dg ? m.ctx->unprotect_request(*dg, plain, sx) : Expected<size_t, oscore::Error>(
                                                                    unexpected(oscore::Error::kMalformedMessage));
      if (!pn) {
        ++bad;
        rc.response.code = coap::code::kUnauthorized;
        return;
      }
      auto inner = coap::Message::parse(ByteView(plain.data(), *pn));
      coap::Message resp(coap::Type::kAck, coap::code::kChanged, 0);
      if (!inner || inner->code != coap::code::kPost || !accept(m, inner->payload)) resp.code = coap::code::kBadRequest;
      Bytes& out = scratch_out;
      auto pm = m.ctx->protect_response(resp, sx, out);
      if (!pm) return;
      auto outer = coap::Message::parse(ByteView(out.data(), *pm));
      if (!outer) return;
      rc.response.code = outer->code;
      for (const auto& o : outer->options()) rc.response.add_option(o.number, o.value);
      rc.response.payload = std::move(outer->payload);
    });
  }

  // Registrations (not timed): Observe GET nodes/NODENAME, or a plain GET for the control path.
  size_t registered = 0, reg_failed = 0;
  // One protect buffer for all registrations (a fresh 2 KiB buffer per member left
  // 10,000 free 2 KiB chunks in this thread's heap that the next larger malloc,
  // e.g. the first notification's decode, walked: ms at the trigger).
  Bytes buf(2048);
  for (size_t i = 0; i < n; ++i) {
    Member& m = members[i];
    coap::Message req(coap::Type::kCon, coap::code::kGet, 0);
    if (!a.control) req.set_uint(coap::option::kObserve, 0);
    req.set_uri_path(std::string("/ace-group/") + kGroup + "/nodes/" + m.node);
    auto pn = m.ctx->protect_request(req, buf, m.registration);
    if (!pn) die("protect registration");
    auto outer = coap::Message::parse(ByteView(buf.data(), *pn));
    if (!outer) die("registration");
    outer->remove(coap::option::kObserve);  // the endpoint adds the outer Observe: 0 itself
    coap::RequestOptions opts;
    opts.observe = !a.control;
    opts.timeout = seconds(3600);
    sim.touch(m.socket);
    sim.eps[m.socket]->request(kdc_addr, std::move(*outer), opts, [&, i](const coap::ClientEvent& ev) {
      Member& mm = members[i];
      if (ev.status != coap::ClientStatus::kResponse && ev.status != coap::ClientStatus::kNotification) {
        if (!mm.registered) ++reg_failed;
        return;
      }
      auto dg = ev.response->encode();
      if (!dg) return;
      Bytes& dec = scratch_in;
      auto d = mm.ctx->unprotect_response(*dg, mm.registration, dec);
      if (!d) {
        ++bad;
        return;
      }
      auto inner = coap::Message::parse(ByteView(dec.data(), *d));
      if (!inner || inner->code != coap::code::kContent) {
        if (!mm.registered) ++reg_failed;
        return;
      }
      if (!mm.registered) {
        mm.registered = true;
        ++registered;
        return;
      }
      if (!accept(mm, inner->payload)) ++bad;
    });
  }
  const auto t_reg = Clk::now();
  while (registered + reg_failed < n && secs(Clk::now() - t_reg) < a.timeout_s + static_cast<double>(n) / 100.0)
    sim.run_once(milliseconds(50));
  if (registered < n) die("only " + std::to_string(registered) + " of " + std::to_string(n) + " members registered");
  std::printf("setup done in %.1f s (registrations %.1f s)\n", secs(Clk::now() - t_setup), secs(Clk::now() - t_reg));
  std::fflush(stdout);

  if (a.pause_s > 0) {
    std::printf("pausing %.1f s before the trigger (pid %d)\n", a.pause_s, static_cast<int>(getpid()));
    std::fflush(stdout);
    const auto until = Clk::now() + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(a.pause_s));
    while (Clk::now() < until) sim.run_once(milliseconds(50));
  }
  // Timed: the leave of the extra member triggers the rekey.
  Member& leaver = members[n];
  coap::Message del(coap::Type::kCon, coap::code::kDelete, 0);
  del.set_uri_path(std::string("/ace-group/") + kGroup + "/nodes/" + leaver.node);
  oscore::Exchange lex;
  auto pn = leaver.ctx->protect_request(del, buf, lex);
  if (!pn) die("protect leave");
  auto louter = coap::Message::parse(ByteView(buf.data(), *pn));
  if (!louter) die("leave");
  bool left = false;
  kdc.expect_answers(n);
  const double kdc_cpu0 = thread_cpu_s(kdc.native());
  const double sim_cpu0 = thread_cpu_s(pthread_self());
  const uint64_t retrans0 = kdc.retransmissions();
  timing = true;
  t0 = Clk::now();
  sim.touch(leaver.socket);
  sim.eps[leaver.socket]->request(kdc_addr, std::move(*louter), coap::RequestOptions{}, [&](const coap::ClientEvent& ev) {
    if (ev.status != coap::ClientStatus::kResponse) return;
    auto dg = ev.response->encode();
    Bytes dec(4096);
    auto d = dg ? leaver.ctx->unprotect_response(*dg, lex, dec) : Expected<size_t, oscore::Error>(
                                                                     unexpected(oscore::Error::kMalformedMessage));
    if (!d) return;
    auto inner = coap::Message::parse(ByteView(dec.data(), *d));
    left = inner && inner->code == coap::code::kDeleted;
  });
  while ((holding < n || !kdc.all_answered_at()) && secs(Clk::now() - t0) < a.timeout_s)
    sim.run_once(milliseconds(20));
  const double t_all = holding == n ? percentile([&] {
    std::vector<double> v;
    for (size_t i = 0; i < n; ++i) v.push_back(members[i].latency_s);
    return v;
  }(), 1.0) : secs(Clk::now() - t0);
  const int64_t answered_at = kdc.all_answered_at();
  const double t_answered =
      answered_at ? secs(Clk::duration(answered_at) - t0.time_since_epoch()) : -1.0;
  const double kdc_cpu = thread_cpu_s(kdc.native()) - kdc_cpu0;
  auto since_t0_ms = [&](int64_t at) {
    return at ? 1000.0 * secs(Clk::duration(at) - t0.time_since_epoch()) : -1.0;
  };
  const double sim_cpu = thread_cpu_s(pthread_self()) - sim_cpu0;
  const uint64_t retrans = kdc.retransmissions() - retrans0;
  kdc.stop();

  std::vector<double> lat;
  for (size_t i = 0; i < n; ++i)
    if (members[i].latency_s >= 0) lat.push_back(members[i].latency_s * 1000.0);
  std::printf("\nbench rekey-e2e: %zu members, %s delivery, %zu member sockets on 127.0.0.1, KDC NSTART %d per peer\n",
              n, a.control ? "control_path POST" : "Observe notification", sockets, a.kdc_nstart);
  std::printf("  topology         %s; members' side: one epoll set\n", topology.c_str());
  std::printf("  members          token POST real, memberships written into the store (no PoP join)\n");
  std::printf("  trigger          leave of one more member (DELETE nodes/NODENAME, rekey on leave)%s\n",
              left ? "" : " [leave answer not seen]");
  std::printf("  holding new num  %zu of %zu (num %llu -> %llu)\n", holding, n,
              static_cast<unsigned long long>(old_num), static_cast<unsigned long long>(old_num + 1));
  std::printf("  time to all      %.3f s (target: 10,000 members < 1 s)\n", t_all);
  std::printf("  KDC saw all ACKs %s\n",
              t_answered >= 0 ? (std::to_string(t_answered) + " s").c_str() : "not within the timeout");
  std::printf("  KDC steps        request in at %.1f ms, rekey done + pushes queued %.1f ms, commit done %.1f ms, "
              "first pushes protected and handed to the endpoint %.1f ms, the last %.1f ms (the rekey request: "
              "%.1f ms KDC CPU)\n",
              since_t0_ms(kdc.handled_at()), since_t0_ms(kdc.queued_at()), since_t0_ms(kdc.committed_at()),
              since_t0_ms(kdc.pushed_at()), since_t0_ms(kdc.all_sent_at()), kdc.handle_cpu_s() * 1000.0);
  std::printf("  members/s        %.0f (target >= 50,000/s)\n", static_cast<double>(holding) / t_all);
  std::printf("  latency p50      %.1f ms\n", percentile(lat, 0.50));
  std::printf("  latency p99      %.1f ms\n", percentile(lat, 0.99));
  std::printf("  losses           %zu members without the new num, %llu push failures at the KDC, %llu bad messages\n",
              n - holding, static_cast<unsigned long long>(kdc.failures()), static_cast<unsigned long long>(bad));
  std::printf("  retransmissions  %llu (KDC endpoint)\n", static_cast<unsigned long long>(retrans));
  std::printf("  KDC CPU          %.3f s (its thread, trigger to end), members' CPU %.3f s\n", kdc_cpu, sim_cpu);
  std::printf("  files            KDC store + push store in %s, token store + sequence files in %s\n",
              dir.path.c_str(), setup.path.c_str());
  if (a.pause_s > 0)  // steady_clock is CLOCK_MONOTONIC: `perf record -k mono` --time windows
    std::printf("  trigger at       CLOCK_MONOTONIC %.6f s, all held at %.6f s\n", secs(t0.time_since_epoch()),
                secs(t0.time_since_epoch()) + t_all);
  if (holding < n) fail_with(kExitFailure);
}

Registrar reg("bench-rekey-e2e", [](CLI::App& root) {
  CLI::App* bench = bench_command(root);
  auto a = std::make_shared<Args>();
  auto* sub = bench->add_subcommand("rekey-e2e",
                                    "time until N members hold a rekey's new material over UDP loopback (Observe or control_path)");
  sub->add_option("--members", a->members, "members of the group (default 1000)");
  auto observe = std::make_shared<bool>(false);
  auto* obs = sub->add_flag("--observe", *observe, "deliver by Observe notifications (the default)");
  auto* ctl = sub->add_flag("--control-path", a->control, "deliver by POST to each member's control_path");
  obs->excludes(ctl);
  sub->add_option("--sockets", a->sockets, "UDP sockets the simulated members share (default: one per member, fd limit permitting)");
  sub->add_option("--kdc-nstart", a->kdc_nstart, "the KDC endpoint's NSTART per peer (default 1, RFC 7252)");
  sub->add_option("--protect-batch", a->protect_batch, "notifications the KDC protects and sends per loop round (default 64)");
  sub->add_option("--timeout", a->timeout_s, "seconds to wait for delivery (default 30)");
  sub->add_option("--pause", a->pause_s, "seconds to wait between setup and the trigger (attach a profiler)");
  sub->add_option("--setup-dir", a->setup_dir, "where the token store and sequence files go (default /dev/shm)");
  sub->callback([a, observe] { run(*a); });
});

}  // namespace
}  // namespace acekdc::app
