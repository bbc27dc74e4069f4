// acekdc bench coap: a CoAP load generator. Keeps a window of CON GETs
// outstanding per client socket, reports requests/s, p50/p99 latency and, when
// the server's pid is known, exchanges per server CPU-second (from
// /proc/<pid>/stat). --compare starts our plugtest-server and libcoap's
// coap-server-notls itself, each pinned to one core, and prints the ratio.
// --oscore starts our own bench server (hidden `bench coap-server`) plain and
// with OSCORE (oscore::SecureServer over the same resource tree, one context,
// piggybacked responses), loads both from one client context with many requests
// outstanding, and reports requests per server CPU-second side by side; a third
// run gives the client's sender sequence numbers a FileSequenceStore (chunked
// reservations written ahead by a ThreadSequenceWriter) and reports the client
// CPU it costs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "acekdc/bench_util.h"
#include "acekdc/command.h"
#include "coap/message.h"
#include "coap/server.h"
#include "coap/uri.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "io/udp.h"
#include "oscore/context.h"
#include "oscore/limits.h"
#include "oscore/secure_server.h"
#include "oscore/sequence_store.h"

namespace acekdc::app {
namespace {

struct BenchArgs {
  std::string target;
  int clients = 4;
  double duration = 5;
  int outstanding = 16;
  int pid = 0;
  bool compare = false;
  std::string path = "/";
  int server_core = 0;
  int client_core = 1;
  double warmup = 0.5;
  bool oscore = false;
  int rounds = 2;
  uint64_t seq_chunk = oscore::SequenceAllocator::kDefaultChunk;
};

// The OSCORE context of `bench coap --oscore` and its bench server: fixed
// parameters, BENCHMARK ONLY (both ends are processes this command starts on
// the loopback interface).
constexpr const char* kBenchSecret = "62656e63682d6f6e6c792d7365637265";
constexpr const char* kBenchSalt = "62656e63682d73616c74";
// The bench's key usage limits (seed §2, AES-CCM-16-64-128): limit_q 2^26 so
// that a run at ~400k requests/s is not cut short by the default 2^20, paid for
// with limit_v 2^9 (default 2^10) and still within 2^-54: IA = 2^9/2^64 +
// (2*2^8*(2^26+2^9))^2/2^128 ~ 2^-55 + 2^-58, CA = (2*2^8*2^26)^2/2^128 = 2^-58.
// Context::create checks this as for any configuration; counting stays on.
constexpr oscore::KeyLimits kBenchLimits{uint64_t{1} << 26, uint64_t{1} << 9, uint64_t{1} << 8};

// The clock that sizes background sequence reservations by rate (ContextConfig::clock).
const SystemClock& bench_clock() {
  static const SystemClock clock;
  return clock;
}

std::unique_ptr<oscore::Context> bench_context(crypto::Provider& provider, bool server, oscore::SequenceStore* store,
                                               uint64_t chunk, oscore::SequenceWriter* writer = nullptr) {
  oscore::ContextConfig cfg;
  cfg.clock = &bench_clock();
  cfg.params.master_secret = *from_hex(kBenchSecret);
  cfg.params.master_salt = *from_hex(kBenchSalt);
  cfg.params.sender_id = server ? Bytes{0x01} : Bytes{};
  cfg.params.recipient_id = server ? Bytes{} : Bytes{0x01};
  cfg.store = store;
  cfg.seq_chunk = chunk;
  cfg.seq_writer = writer;
  cfg.limits = kBenchLimits;
  auto c = oscore::Context::create(provider, std::move(cfg));
  if (!c) {
    std::fprintf(stderr, "error: OSCORE context: %s\n", oscore::to_string(c.error()));
    fail_with(kExitFailure);
  }
  return std::move(*c);
}

struct Result {
  uint64_t completed = 0;
  uint64_t timeouts = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0;
  double server_cpu_s = -1;
  double client_cpu_s = 0;   // this thread, while measuring
  uint64_t rejected = 0;     // OSCORE: responses that did not verify
};

double thread_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

using Clock = std::chrono::steady_clock;

double cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  // fields after the comm: state(3) ... utime(14) stime(15)
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void pin_to_core(int core) {
  if (core < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  sched_setaffinity(0, sizeof set, &set);
}

struct Slot {
  Clock::time_point sent;
  uint16_t mid = 0;
  bool busy = false;
  oscore::Exchange exchange;  // --oscore: binds the response to this slot's request
};

struct ClientSock {
  io::UdpSocket sock;
  std::vector<Slot> slots;
  uint16_t next_mid = 0;
};

// encode_request writes a CON GET with a 2-byte token identifying the slot,
// OSCORE-protected with `ctx` if given.
size_t encode_request(const coap::Uri& uri, uint16_t mid, uint16_t slot, uint8_t* out, size_t cap,
                      oscore::Context* ctx = nullptr, oscore::Exchange* ex = nullptr) {
  coap::Message m(coap::Type::kCon, coap::code::kGet, mid);
  m.token = {static_cast<uint8_t>(slot >> 8), static_cast<uint8_t>(slot)};
  uri.apply_to(m);
  if (ctx) {
    m.remove(coap::option::kUriHost);  // not needed inside; keeps the outer message minimal
    m.remove(coap::option::kUriPort);
    auto n = ctx->protect_request(m, MutableByteView(out, cap), *ex);
    return n ? *n : 0;
  }
  Writer w{MutableByteView(out, cap)};
  if (!m.encode_into(w)) return 0;
  return w.size();
}

Result run_load(const coap::Address& peer, const coap::Uri& uri, const BenchArgs& a, int server_pid,
                oscore::Context* ctx = nullptr) {
  std::vector<ClientSock> clients(a.clients);
  for (auto& c : clients) {
    coap::Address local;
    local.family = peer.family;
    auto s = io::UdpSocket::bind(local);
    if (!s) {
      std::fprintf(stderr, "error: %s\n", io::to_string(s.error()));
      fail_with(kExitFailure);
    }
    c.sock = std::move(*s);
    c.slots.resize(a.outstanding);
    c.next_mid = static_cast<uint16_t>(std::rand());
  }
  sockaddr_storage ss{};
  socklen_t sl;
  {
    // connect each socket to the peer: send()/recv() without addresses
    auto fill = [&](const coap::Address& ad) {
      std::memset(&ss, 0, sizeof ss);
      if (ad.family == 4) {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(ad.port);
        std::memcpy(&s4->sin_addr, ad.ip.data(), 4);
        sl = sizeof *s4;
      } else {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(ad.port);
        std::memcpy(&s6->sin6_addr, ad.ip.data(), 16);
        s6->sin6_scope_id = ad.scope_id;
        sl = sizeof *s6;
      }
    };
    fill(peer);
    for (auto& c : clients) ::connect(c.sock.fd(), reinterpret_cast<sockaddr*>(&ss), sl);
  }
  std::vector<uint32_t> lat_us;
  lat_us.reserve(1 << 22);
  Result r;
  const auto timeout = std::chrono::milliseconds(1000);
  uint8_t sendbuf[64][256];
  size_t sendlen[64];
  iovec iov[64];
  mmsghdr msgs[64];
  uint8_t recvbuf[64][1500];
  auto t0 = Clock::now();
  auto measure_start = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.warmup));
  auto end = measure_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.duration));
  bool measuring = false;
  double cpu0 = 0, client_cpu0 = 0;
  uint64_t completed_at_start = 0, total_completed = 0;
  uint8_t plain[1500];
  bool out_of_keys = false;

  auto send_batch = [&](ClientSock& c, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      iov[i] = {sendbuf[i], sendlen[i]};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < n) {
      int k = ::sendmmsg(c.sock.fd(), msgs + done, static_cast<unsigned>(n - done), 0);
      if (k <= 0) break;
      done += static_cast<size_t>(k);
    }
  };
  auto start_slot = [&](ClientSock& c, size_t slot, size_t& n, Clock::time_point now) {
    Slot& s = c.slots[slot];
    s.mid = c.next_mid++;
    s.sent = now;
    s.busy = true;
    sendlen[n] = encode_request(uri, s.mid, static_cast<uint16_t>(slot), sendbuf[n], sizeof sendbuf[n], ctx,
                                &s.exchange);
    if (sendlen[n] == 0) {
      // e.g. the OSCORE sender reached limit_q (2^20 requests per key): the run
      // ends here, measured up to now
      s.busy = false;
      out_of_keys = true;
      return;
    }
    ++n;
  };
  // fill every window
  for (auto& c : clients) {
    size_t n = 0;
    auto now = Clock::now();
    for (size_t i = 0; i < c.slots.size(); ++i) start_slot(c, i, n, now);
    send_batch(c, n);
  }
  std::vector<pollfd> pfds(clients.size());
  auto last_timeout_scan = Clock::now();
  while (true) {
    auto now = Clock::now();
    if (!measuring && now >= measure_start) {
      measuring = true;
      completed_at_start = total_completed;
      lat_us.clear();
      if (server_pid > 0) cpu0 = cpu_seconds(server_pid);
      client_cpu0 = thread_cpu_seconds();
    }
    if (now >= end || out_of_keys) break;
    for (size_t i = 0; i < clients.size(); ++i) pfds[i] = {clients[i].sock.fd(), POLLIN, 0};
    int pr = ::poll(pfds.data(), pfds.size(), 50);
    now = Clock::now();
    if (pr > 0) {
      for (size_t ci = 0; ci < clients.size(); ++ci) {
        if (!(pfds[ci].revents & POLLIN)) continue;
        ClientSock& c = clients[ci];
        for (size_t i = 0; i < 64; ++i) {
          iov[i] = {recvbuf[i], sizeof recvbuf[i]};
          msgs[i].msg_hdr = msghdr{};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int k = ::recvmmsg(c.sock.fd(), msgs, 64, MSG_DONTWAIT, nullptr);
        size_t n = 0;
        for (int i = 0; i < k; ++i) {
          auto v = coap::MessageView::parse(ByteView(recvbuf[i], msgs[i].msg_len));
          if (!v || v->token.size() != 2 || !coap::is_response(v->code)) continue;
          size_t slot = (size_t{v->token[0]} << 8) | v->token[1];
          if (slot >= c.slots.size() || !c.slots[slot].busy) continue;
          Slot& s = c.slots[slot];
          if (v->type == coap::Type::kAck && v->message_id != s.mid) continue;
          if (ctx && !ctx->unprotect_response(ByteView(recvbuf[i], msgs[i].msg_len), s.exchange, plain)) {
            ++r.rejected;  // counted as not completed; the slot starts over
            s.busy = false;
            start_slot(c, slot, n, now);
            continue;
          }
          lat_us.push_back(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(now - s.sent).count()));
          ++total_completed;
          s.busy = false;
          start_slot(c, slot, n, now);
        }
        // recvmmsg results are consumed; reuse buffers for sending
        if (n) send_batch(c, n);
      }
    }
    if (now - last_timeout_scan > std::chrono::milliseconds(100)) {
      last_timeout_scan = now;
      for (auto& c : clients) {
        size_t n = 0;
        for (size_t i = 0; i < c.slots.size() && n < 64; ++i) {
          if (c.slots[i].busy && now - c.slots[i].sent > timeout) {
            ++r.timeouts;
            start_slot(c, i, n, now);
          }
        }
        if (n) send_batch(c, n);
      }
    }
  }
  if (server_pid > 0) r.server_cpu_s = cpu_seconds(server_pid) - cpu0;
  r.client_cpu_s = thread_cpu_seconds() - client_cpu0;
  if (out_of_keys) std::fprintf(stderr, "note: the request could not be protected any more (sender limit); run shortened\n");
  r.seconds = std::chrono::duration<double>(Clock::now() - measure_start).count();
  r.completed = total_completed - completed_at_start;
  if (!lat_us.empty()) {
    std::sort(lat_us.begin(), lat_us.end());
    r.p50_us = lat_us[lat_us.size() / 2];
    r.p99_us = lat_us[std::min(lat_us.size() - 1, lat_us.size() * 99 / 100)];
  }
  return r;
}

void print(const char* label, const Result& r) {
  std::printf("%-28s %10.0f req/s  p50 %7.0f us  p99 %7.0f us  timeouts %llu", label, r.completed / r.seconds,
              r.p50_us, r.p99_us, static_cast<unsigned long long>(r.timeouts));
  if (r.server_cpu_s > 0) {
    std::printf("  server CPU %.2f s  %.0f exchanges/CPU-s", r.server_cpu_s, r.completed / r.server_cpu_s);
  }
  if (r.rejected) std::printf("  not verified %llu", static_cast<unsigned long long>(r.rejected));
  std::printf("\n");
  std::fflush(stdout);
}

int spawn(const std::vector<std::string>& argv, int core) {
  pid_t pid = fork();
  if (pid == 0) {
    pin_to_core(core);
    int devnull = ::open("/dev/null", O_RDWR);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<char*> args;
    for (auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void stop(int pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
}

uint16_t free_port() {
  coap::Address a = *coap::Address::parse("127.0.0.1:0");
  auto s = io::UdpSocket::bind(a);
  return s ? s->local_address().port : 0;
}

bool wait_ready(const coap::Address& peer, const coap::Uri& uri, oscore::Context* ctx = nullptr) {
  BenchArgs probe;
  probe.clients = 1;
  probe.outstanding = 1;
  probe.duration = 0.2;
  probe.warmup = 0;
  for (int i = 0; i < 30; ++i) {
    Result r = run_load(peer, uri, probe, 0, ctx);
    if (r.completed > 0) return true;
  }
  return false;
}

std::string self_exe() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail_with(kExitFailure);
  self[n] = 0;
  return self;
}

// run_oscore: our bench server plain, then with OSCORE (no client store), then
// OSCORE with the client's sequence numbers in a FileSequenceStore.
void run_oscore(const BenchArgs& a) {
  auto provider = crypto::make_openssl_provider();
  const std::string self = self_exe();
  coap::Uri uri;
  uri.host = "127.0.0.1";
  uri.path = "/bench";
  std::printf("server core %d, client core %d, %d clients x %d outstanding on one context, %.1f s each, GET %s\n",
              a.server_core, a.client_core, a.clients, a.outstanding, a.duration, uri.path.c_str());
  auto one = [&](const char* label, bool oscore_on, oscore::Context* ctx) {
    uint16_t port = free_port();
    std::vector<std::string> argv = {self, "bench", "coap-server", "--listen", "127.0.0.1:" + std::to_string(port)};
    if (oscore_on) argv.push_back("--oscore");
    int pid = spawn(argv, a.server_core);
    uri.port = port;
    coap::Address pa = *coap::Address::parse("127.0.0.1:" + std::to_string(port));
    Result r;
    if (wait_ready(pa, uri, ctx)) r = run_load(pa, uri, a, pid, ctx);
    stop(pid);
    print(label, r);
    return r;
  };
  // Plain and OSCORE alternate `rounds` times (the machine's load changes
  // between runs); totals give the ratios. Each OSCORE run gets a fresh context
  // pair (limit_q is 2^20 requests per key).
  auto add = [](Result& sum, const Result& r) {
    sum.completed += r.completed;
    sum.timeouts += r.timeouts;
    sum.seconds += r.seconds;
    sum.server_cpu_s = (sum.server_cpu_s < 0 ? 0 : sum.server_cpu_s) + std::max(r.server_cpu_s, 0.0);
    sum.client_cpu_s += r.client_cpu_s;
    sum.rejected += r.rejected;
  };
  Result plain, os, st;
  uint64_t store_waits = 0;  // sends that waited for a reservation to become durable
  std::string dir = (std::filesystem::temp_directory_path() / ("acekdc-bench-seq-" + std::to_string(getpid()))).string();
  oscore::FileSequenceStore store(dir);
  oscore::ThreadSequenceWriter writer;  // reserves the next chunk off the send path
  for (int round = 0; round < std::max(1, a.rounds); ++round) {
    add(plain, one("plain CoAP (bench server)", false, nullptr));
    auto ctx = bench_context(*provider, false, nullptr, a.seq_chunk);
    add(os, one("OSCORE, no sequence store", true, ctx.get()));
    auto ctx_store = bench_context(*provider, false, &store, a.seq_chunk, &writer);
    add(st, one("OSCORE, FileSequenceStore", true, ctx_store.get()));
    store_waits += ctx_store->sequence_waits();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (plain.server_cpu_s > 0 && os.server_cpu_s > 0 && plain.completed > 0 && os.completed > 0) {
    double e_plain = plain.completed / plain.server_cpu_s, e_os = os.completed / os.server_cpu_s;
    std::printf("OSCORE / plain CoAP, requests per server CPU-second: %.2f (target >= 0.70)\n", e_os / e_plain);
    std::printf("OSCORE / plain CoAP, requests per second: %.2f\n",
                (os.completed / os.seconds) / (plain.completed / plain.seconds));
  }
  if (os.completed > 0 && st.completed > 0 && os.client_cpu_s > 0) {
    double us_none = 1e6 * os.client_cpu_s / os.completed, us_file = 1e6 * st.client_cpu_s / st.completed;
    double rate_none = os.completed / os.seconds, rate_file = st.completed / st.seconds;
    std::printf("sequence number persistence (client sender, FileSequenceStore, chunk %llu sized by rate to ~250 ms, "
                "at most %llu; sends that waited for a write, each context's first included: %llu): client CPU %.2f -> %.2f us/request (%+.1f%%), "
                "requests/s %+.1f%% (target: cost < 5%%); piggybacked responses use no server sequence numbers\n",
                static_cast<unsigned long long>(a.seq_chunk), static_cast<unsigned long long>(64 * a.seq_chunk),
                static_cast<unsigned long long>(store_waits), us_none, us_file, 100.0 * (us_file / us_none - 1),
                100.0 * (rate_file / rate_none - 1));
  }
}

// The hidden `bench coap-server`: our Server with one small resource, plain or
// behind oscore::SecureServer with the bench context. Runs until SIGTERM.
struct BenchServerArgs {
  std::string listen = "127.0.0.1:5683";
  bool oscore = false;
};
io::Loop* g_bench_loop = nullptr;
void on_bench_signal(int) {
  if (g_bench_loop) g_bench_loop->stop();
}

void run_bench_server(const BenchServerArgs& a) {
  auto addr = coap::Address::parse(a.listen);
  if (!addr) {
    std::fprintf(stderr, "error: --listen must be host:port\n");
    fail_with(kExitUsage);
  }
  auto provider = crypto::make_openssl_provider();
  SystemClock clock;
  SystemRandom random;
  coap::Endpoint ep(clock, random);
  coap::Server server(ep);
  server.add("/bench").on(coap::code::kGet, [](coap::Request&, coap::Message& resp) {
    resp.code = coap::code::kContent;
    resp.set_uint(coap::option::kContentFormat, 0);
    resp.set_payload("hello");
  });
  // The server's sender sequence numbers are persisted as `serve` persists
  // them (FileSequenceStore, chunks reserved ahead by a ThreadSequenceWriter);
  // piggybacked responses do not use any.
  const std::filesystem::path seq_dir =
      std::filesystem::temp_directory_path() / ("acekdc-bench-server-seq-" + std::to_string(getpid()));
  std::unique_ptr<oscore::FileSequenceStore> seq_store;
  std::unique_ptr<oscore::ThreadSequenceWriter> seq_writer;
  std::unique_ptr<oscore::SecureServer> secure;
  if (a.oscore) {
    seq_store = std::make_unique<oscore::FileSequenceStore>(seq_dir.string());
    seq_writer = std::make_unique<oscore::ThreadSequenceWriter>();
    secure = std::make_unique<oscore::SecureServer>(ep, server, random, clock);
    if (!secure->add_context(bench_context(*provider, true, seq_store.get(),
                                           oscore::SequenceAllocator::kDefaultChunk, seq_writer.get()))) {
      fail_with(kExitFailure);
    }
  }
  auto sock = io::UdpSocket::bind(*addr);
  if (!sock) {
    std::fprintf(stderr, "error: %s\n", io::to_string(sock.error()));
    fail_with(kExitFailure);
  }
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  g_bench_loop = &loop;
  std::signal(SIGTERM, on_bench_signal);
  std::signal(SIGINT, on_bench_signal);
  loop.run();
  g_bench_loop = nullptr;
  secure.reset();
  seq_writer.reset();  // its jobs run before the store goes
  seq_store.reset();
  std::error_code ec;
  std::filesystem::remove_all(seq_dir, ec);
}

void run(const BenchArgs& a) {
  pin_to_core(a.client_core);
  if (a.oscore) {
    run_oscore(a);
    return;
  }
  if (a.compare) {
    uint16_t p1 = free_port(), p2 = free_port();
    while (p2 == p1) p2 = free_port();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) fail_with(kExitFailure);
    self[n] = 0;
    coap::Uri uri;
    uri.host = "127.0.0.1";
    uri.path = a.path;
    std::printf("server core %d, client core %d, %d clients x %d outstanding, %.1f s each, GET %s\n",
                a.server_core, a.client_core, a.clients, a.outstanding, a.duration, a.path.c_str());
    int ours = spawn({self, "plugtest-server", "--listen", "127.0.0.1:" + std::to_string(p1)}, a.server_core);
    uri.port = p1;
    coap::Address pa = *coap::Address::parse("127.0.0.1:" + std::to_string(p1));
    Result r1;
    if (wait_ready(pa, uri)) r1 = run_load(pa, uri, a, ours);
    stop(ours);
    print("acekdc plugtest-server", r1);
    int theirs = spawn({"coap-server-notls", "-A", "127.0.0.1", "-p", std::to_string(p2)}, a.server_core);
    uri.port = p2;
    coap::Address pb = *coap::Address::parse("127.0.0.1:" + std::to_string(p2));
    Result r2;
    if (wait_ready(pb, uri)) r2 = run_load(pb, uri, a, theirs);
    stop(theirs);
    print("libcoap coap-server-notls", r2);
    if (r1.server_cpu_s > 0 && r2.server_cpu_s > 0 && r2.completed > 0) {
      double e1 = r1.completed / r1.server_cpu_s, e2 = r2.completed / r2.server_cpu_s;
      std::printf("ratio (exchanges per server CPU-second, acekdc / libcoap): %.2f\n", e1 / e2);
      std::printf("ratio (requests per second, acekdc / libcoap): %.2f\n",
                  (r1.completed / r1.seconds) / (r2.completed / r2.seconds));
    }
    return;
  }
  auto uri = coap::Uri::parse(a.target);
  if (!uri) {
    std::fprintf(stderr, "error: --target must be a coap:// URI\n");
    fail_with(kExitUsage);
  }
  auto peer = io::resolve(uri->host, uri->port);
  if (!peer) {
    std::fprintf(stderr, "error: %s\n", io::to_string(peer.error()));
    fail_with(kExitFailure);
  }
  Result r = run_load(*peer, *uri, a, a.pid);
  print(a.target.c_str(), r);
}

Registrar reg("bench-coap", [](CLI::App& root) {
  CLI::App* bench = bench_command(root);
  auto args = std::make_shared<BenchArgs>();
  auto* sub = bench->add_subcommand("coap", "CoAP load generator (CON GETs, windowed)");
  sub->add_option("--target", args->target, "coap://host:port/path to load");
  sub->add_option("--clients", args->clients, "client sockets (default 4)");
  sub->add_option("--duration", args->duration, "seconds to measure (default 5)");
  sub->add_option("--outstanding", args->outstanding, "requests in flight per client (default 16)");
  sub->add_option("--pid", args->pid, "server pid: report exchanges per server CPU-second");
  sub->add_flag("--compare", args->compare,
                "start acekdc plugtest-server and coap-server-notls (each pinned to --server-core) and compare");
  sub->add_option("--path", args->path, "path for --compare (default /)");
  sub->add_option("--server-core", args->server_core, "core for spawned servers (default 0)");
  sub->add_option("--client-core", args->client_core, "core for the load generator (default 1; -1: any)");
  sub->add_flag("--oscore", args->oscore,
                "start our bench server plain and with OSCORE (pinned to --server-core), compare requests per "
                "server CPU-second, and the client CPU cost of a FileSequenceStore");
  sub->add_option("--rounds", args->rounds, "--oscore: plain/OSCORE/store runs alternate this often (default 2)");
  sub->add_option("--seq-chunk", args->seq_chunk, "--oscore: sequence numbers reserved per store write (default 1000)");
  sub->callback([args] {
    if (args->target.empty() && !args->compare && !args->oscore) {
      std::fprintf(stderr, "error: give --target URI, --compare or --oscore\n");
      fail_with(kExitUsage);
    }
    run(*args);
  });
  auto sargs = std::make_shared<BenchServerArgs>();
  auto* srv = bench->add_subcommand("coap-server", "the server `bench coap --oscore` starts (bench keys only)");
  srv->group("");  // hidden
  srv->add_option("--listen", sargs->listen, "host:port (default 127.0.0.1:5683)");
  srv->add_flag("--oscore", sargs->oscore, "serve through oscore::SecureServer with the bench context");
  srv->callback([sargs] { run_bench_server(*sargs); });
});

}  // namespace
}  // namespace acekdc::app
