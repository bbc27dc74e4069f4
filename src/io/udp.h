// io: the only code that touches sockets and the real clock.
//
//   UdpSocket::bind(Address)        a non-blocking UDP socket (IPv4, or IPv6 dual-stack for "::")
//   UdpSocket::join_group(group)    join an IPv4/IPv6 multicast group (receive side)
//   resolve(host, port)             numeric address or DNS name -> Address
//   Loop                            drives one coap::Endpoint over its sockets: poll(2),
//                                   batched recvmmsg/sendmmsg, timers via next_deadline()
//   BlockingClient                  synchronous requests for the CLI (io/client.h)
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coap/endpoint.h"
#include "core/clock.h"
#include "core/expected.h"

struct mmsghdr;  // <sys/socket.h>

namespace acekdc::io {

class SyncPipeline;  // io/sync_pipeline.h

enum class Error {
  kSocket = 1,  // socket(2) or setsockopt failed
  kBind,        // address in use / not available
  kAddress,     // unusable address (family mismatch, not multicast, ...)
  kJoin,        // joining a multicast group failed
  kResolve,     // host name did not resolve
  kTimeout,     // blocking request: no answer in time
};
const char* to_string(Error e);

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& o) noexcept : fd_(o.fd_), family_(o.family_), dual_(o.dual_) { o.fd_ = -1; }
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;

  // bind opens a socket on `local` (port 0: ephemeral). For the IPv6 any-address
  // the socket is dual-stack (IPv4 peers appear as IPv4 addresses).
  static Expected<UdpSocket, Error> bind(const coap::Address& local);
  // join_group joins `group` on interface `ifindex` (0: default) and enables
  // destination-address reporting so the Loop can tell multicast requests apart.
  Expected<void, Error> join_group(const coap::Address& group, unsigned ifindex = 0);
  // set_multicast_send makes multicast requests leave through interface
  // `ifindex` (0: the routing default) with loopback on and hop limit 1.
  Expected<void, Error> set_multicast_send(unsigned ifindex);
  coap::Address local_address() const;
  int fd() const { return fd_; }
  int family() const { return family_; }  // 4 or 6
  bool can_send_to(const coap::Address& a) const { return a.family == family_ || (family_ == 6 && a.family == 4 && dual_); }

 private:
  int fd_ = -1;
  int family_ = 0;
  bool dual_ = false;
};

// resolve turns a host (numeric or a name) into an Address with `port`.
// prefer_family 0: any, 4 or 6.
Expected<coap::Address, Error> resolve(const std::string& host, uint16_t port, int prefer_family = 0);

// Loop runs an Endpoint over sockets until stopped. Single-threaded.
//
// Sending: every round's transmits go out in sendmmsg(2) batches (up to 64
// datagrams per call, consecutive datagrams for one socket grouped). A batch the
// kernel takes only in part is continued from the first datagram not taken; a
// datagram the kernel refuses (unreachable, too large, ...) is dropped and the
// rest of the batch goes on (CON retransmission covers it); when the socket's
// buffer is full (EAGAIN) the rest is copied into a backlog that goes out, in
// order and before anything newer for that socket, when poll(2) reports the
// socket writable: the loop never blocks on a full socket. Receiving: each
// readable socket is drained with recvmmsg(2) in batches of 64.
class Loop {
 public:
  // Buffers: the recvmmsg/sendmmsg arrays (~150 KiB). Loops run by one thread may
  // share one (pass another loop's buffers()): only if no callback of one loop
  // drives another loop (each call finishes with the buffers before it returns).
  struct Buffers;
  Loop(coap::Endpoint& ep, Clock& clock, std::shared_ptr<Buffers> shared_buffers = nullptr);
  std::shared_ptr<Buffers> buffers() const { return buf_; }
  ~Loop();
  void add_socket(UdpSocket s);
  std::vector<UdpSocket>& sockets() { return sockets_; }
  // run_once waits up to max_wait for datagrams or the endpoint's next deadline,
  // processes everything available and sends what the endpoint produced.
  void run_once(Duration max_wait);
  // run loops until stop() (safe from a signal handler) or until `done` returns true.
  void run(const std::function<bool()>& done = {});
  void stop() { stop_.store(true); }
  // flush sends the endpoint's pending transmits now.
  void flush();
  // service, for a caller that waits on the sockets itself (several loops on one
  // thread, one poll for all): without waiting, retries the backlog, drains every
  // socket, runs the endpoint's due timers and sends what it produced.
  void service();
  uint64_t datagrams_received() const { return received_; }
  // Send counters: datagrams handed to the kernel, dropped on a send error, and
  // EAGAIN events (each moved the rest of a batch into the backlog).
  struct SendStats {
    uint64_t sent = 0, dropped = 0, would_block = 0, syscalls = 0;
  };
  const SendStats& send_stats() const { return send_stats_; }
  // backlog_size: datagrams waiting for a full socket to drain.
  size_t backlog_size() const {
    size_t n = 0;
    for (const auto& q : backlog_) n += q.size();
    return n;
  }
  // SendBatch is sendmmsg(2)'s signature (fd, messages, count) -> taken or -1 with
  // errno. set_send_batch replaces the system call (tests: partial batches,
  // EAGAIN, a refused datagram); nullptr restores sendmmsg.
  using SendBatch = int (*)(int fd, mmsghdr* msgs, unsigned n, void* user);
  void set_send_batch(SendBatch fn, void* user) {
    send_batch_ = fn;
    send_batch_user_ = user;
  }
  // set_sync_pipeline: from now on every datagram is sent only when the pipeline
  // says the writes before it are durable (io/sync_pipeline.h); the loop polls its
  // wake_fd. nullptr: send at once (the default). `p` must outlive the loop's use.
  void set_sync_pipeline(SyncPipeline* p) { sync_ = p; }

 private:
  // Backlogged: a datagram that met a full socket (its bytes copied).
  struct Backlogged {
    coap::Address peer;
    Bytes data;
  };
  void drain(size_t i, TimePoint now);
  void send(std::span<const coap::Transmit> tx);
  // send_batch sends msgs[0, n) on socket `si`; returns how many were handled
  // (sent or dropped); fewer than n only when the socket would block.
  size_t send_batch(size_t si, size_t n);
  void retry_backlog();
  bool backlog_for(size_t si) const;
  coap::Endpoint& ep_;
  Clock& clock_;
  std::vector<UdpSocket> sockets_;
  std::shared_ptr<Buffers> buf_;
  std::atomic<bool> stop_{false};
  uint64_t received_ = 0;
  SyncPipeline* sync_ = nullptr;
  std::vector<std::deque<Backlogged>> backlog_;  // per socket, in send order
  SendStats send_stats_;
  SendBatch send_batch_ = nullptr;
  void* send_batch_user_ = nullptr;
};

}  // namespace acekdc::io
