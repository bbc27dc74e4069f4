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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coap/endpoint.h"
#include "core/clock.h"
#include "core/expected.h"

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
class Loop {
 public:
  Loop(coap::Endpoint& ep, Clock& clock);
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
  uint64_t datagrams_received() const { return received_; }
  // set_sync_pipeline: from now on every datagram is sent only when the pipeline
  // says the writes before it are durable (io/sync_pipeline.h); the loop polls its
  // wake_fd. nullptr: send at once (the default). `p` must outlive the loop's use.
  void set_sync_pipeline(SyncPipeline* p) { sync_ = p; }

 private:
  struct Buffers;
  void drain(size_t i, TimePoint now);
  void send(std::span<const coap::Transmit> tx);
  coap::Endpoint& ep_;
  Clock& clock_;
  std::vector<UdpSocket> sockets_;
  std::unique_ptr<Buffers> buf_;
  std::atomic<bool> stop_{false};
  uint64_t received_ = 0;
  SyncPipeline* sync_ = nullptr;
};

}  // namespace acekdc::io
