#include "io/udp.h"
#include "io/sync_pipeline.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace acekdc::io {

const char* to_string(Error e) {
  switch (e) {
    case Error::kSocket: return "socket error";
    case Error::kBind: return "cannot bind address";
    case Error::kAddress: return "unusable address";
    case Error::kJoin: return "cannot join multicast group";
    case Error::kResolve: return "cannot resolve host";
    case Error::kTimeout: return "timeout";
  }
  return "unknown error";
}

namespace {

socklen_t to_sockaddr(const coap::Address& a, int socket_family, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (socket_family == 4) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(a.port);
    std::memcpy(&s->sin_addr, a.ip.data(), 4);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(a.port);
  if (a.family == 4) {  // v4-mapped on a dual-stack socket
    s->sin6_addr.s6_addr[10] = 0xff;
    s->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&s->sin6_addr.s6_addr[12], a.ip.data(), 4);
  } else {
    std::memcpy(&s->sin6_addr, a.ip.data(), 16);
    s->sin6_scope_id = a.scope_id;
  }
  return sizeof *s;
}

coap::Address from_sockaddr(const sockaddr_storage& ss) {
  coap::Address a;
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    a.family = 4;
    std::memcpy(a.ip.data(), &s->sin_addr, 4);
    a.port = ntohs(s->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    a.port = ntohs(s->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
      a.family = 4;
      std::memcpy(a.ip.data(), &s->sin6_addr.s6_addr[12], 4);
    } else {
      a.family = 6;
      std::memcpy(a.ip.data(), &s->sin6_addr, 16);
      a.scope_id = s->sin6_scope_id;
    }
  }
  return a;
}

bool is_any(const coap::Address& a) {
  size_t n = a.family == 4 ? 4 : 16;
  return std::all_of(a.ip.begin(), a.ip.begin() + n, [](uint8_t b) { return b == 0; });
}

}  // namespace

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    family_ = o.family_;
    dual_ = o.dual_;
    o.fd_ = -1;
  }
  return *this;
}

Expected<UdpSocket, Error> UdpSocket::bind(const coap::Address& local) {
  if (local.family != 4 && local.family != 6) return unexpected(Error::kAddress);
  UdpSocket s;
  s.family_ = local.family;
  s.fd_ = ::socket(local.family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd_ < 0) return unexpected(Error::kSocket);
  int one = 1, zero = 0;
  // SO_REUSEADDR only for a fixed port (a restarted server, a multicast listener):
  // on an ephemeral bind (port 0) Linux may hand two SO_REUSEADDR sockets the same
  // port, and unicast datagrams for it then reach only one of them.
  if (local.port != 0) ::setsockopt(s.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (local.family == 6 && is_any(local)) {
    ::setsockopt(s.fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    s.dual_ = true;
  }
  int buf = 4 << 20;
  ::setsockopt(s.fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  ::setsockopt(s.fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(local, local.family, ss);
  if (::bind(s.fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) return unexpected(Error::kBind);
  return s;
}

Expected<void, Error> UdpSocket::join_group(const coap::Address& group, unsigned ifindex) {
  if (!group.is_multicast()) return unexpected(Error::kAddress);
  int one = 1;
  if (group.family == 4) {
    if (family_ != 4 && !dual_) return unexpected(Error::kAddress);
    ip_mreqn m{};
    std::memcpy(&m.imr_multiaddr, group.ip.data(), 4);
    m.imr_ifindex = static_cast<int>(ifindex);
    int level = family_ == 4 ? IPPROTO_IP : IPPROTO_IP;
    if (::setsockopt(fd_, level, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0) return unexpected(Error::kJoin);
    ::setsockopt(fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    return {};
  }
  if (family_ != 6) return unexpected(Error::kAddress);
  ipv6_mreq m{};
  std::memcpy(&m.ipv6mr_multiaddr, group.ip.data(), 16);
  m.ipv6mr_interface = ifindex ? ifindex : group.scope_id;
  if (::setsockopt(fd_, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) != 0) return unexpected(Error::kJoin);
  ::setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  if (dual_) ::setsockopt(fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  return {};
}

Expected<void, Error> UdpSocket::set_multicast_send(unsigned ifindex) {
  int one = 1;
  if (family_ == 4) {
    ip_mreqn m{};
    m.imr_ifindex = static_cast<int>(ifindex);
    if (ifindex && ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m) != 0) return unexpected(Error::kSocket);
    unsigned char loop = 1, ttl = 1;
    ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    return {};
  }
  if (ifindex && ::setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex) != 0)
    return unexpected(Error::kSocket);
  ::setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
  ::setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &one, sizeof one);
  return {};
}

coap::Address UdpSocket::local_address() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  return from_sockaddr(ss);
}

Expected<coap::Address, Error> resolve(const std::string& host, uint16_t port, int prefer_family) {
  if (auto a = coap::Address::parse_host(host, port)) return *a;
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_family = prefer_family == 4 ? AF_INET : prefer_family == 6 ? AF_INET6 : AF_UNSPEC;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return unexpected(Error::kResolve);
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  coap::Address a = from_sockaddr(ss);
  a.port = port;
  return a;
}

// ---- Loop ----

namespace {
constexpr size_t kBatch = 64;
constexpr size_t kRecvBuf = 2048;  // CoAP over UDP datagrams; bigger ones are truncated and dropped
}  // namespace

struct Loop::Buffers {
  uint8_t data[kBatch][kRecvBuf];
  sockaddr_storage addrs[kBatch];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  alignas(cmsghdr) uint8_t ctrl[kBatch][128];
  // send side
  sockaddr_storage send_addrs[kBatch];
  iovec send_iov[kBatch];
  mmsghdr send_msgs[kBatch];
  Buffers() {
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {data[i], kRecvBuf};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctrl[i];
    }
  }
};

Loop::Loop(coap::Endpoint& ep, Clock& clock, std::shared_ptr<Buffers> shared_buffers)
    : ep_(ep), clock_(clock), buf_(shared_buffers ? std::move(shared_buffers) : std::make_shared<Buffers>()) {}
Loop::~Loop() = default;

void Loop::add_socket(UdpSocket s) {
  sockets_.push_back(std::move(s));
  backlog_.resize(sockets_.size());
}

void Loop::drain(size_t si, TimePoint now) {
  Buffers& b = *buf_;
  int fd = sockets_[si].fd();
  for (int rounds = 0; rounds < 16; ++rounds) {
    for (size_t i = 0; i < kBatch; ++i) {  // recvmmsg wrote these: reset what it changes
      b.msgs[i].msg_hdr.msg_namelen = sizeof b.addrs[i];
      b.msgs[i].msg_hdr.msg_controllen = sizeof b.ctrl[i];
      b.msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = ::recvmmsg(fd, b.msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      if (b.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than we accept
      bool multicast = false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&b.msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&b.msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          multicast = IN_MULTICAST(ntohl(pi.ipi_addr.s_addr));
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          multicast = IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr);
        }
      }
      ++received_;
      ep_.receive(ByteView(b.data[i], b.msgs[i].msg_len), from_sockaddr(b.addrs[i]), now, multicast);
    }
    if (static_cast<size_t>(n) < kBatch) return;
  }
}

void Loop::flush() {
  auto tx = ep_.transmits();
  if (!(sync_ && sync_->hold(tx))) send(tx);
  ep_.clear_transmits();
}

size_t Loop::send_batch(size_t si, size_t n) {
  Buffers& b = *buf_;
  const int fd = sockets_[si].fd();
  size_t done = 0;
  while (done < n) {
    ++send_stats_.syscalls;
    const unsigned left = static_cast<unsigned>(n - done);
    int r = send_batch_ ? send_batch_(fd, b.send_msgs + done, left, send_batch_user_)
                        : ::sendmmsg(fd, b.send_msgs + done, left, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        ++send_stats_.would_block;
        return done;
      }
      // sendmmsg fails only when its first datagram fails (a later failure ends the
      // batch early with the count taken): drop that one, go on with the rest.
      ++send_stats_.dropped;
      ++done;
      continue;
    }
    if (r == 0) {  // nothing taken without an error: treat as a full socket
      ++send_stats_.would_block;
      return done;
    }
    send_stats_.sent += static_cast<uint64_t>(r);
    done += static_cast<size_t>(std::min<unsigned>(static_cast<unsigned>(r), left));
  }
  return done;
}

void Loop::retry_backlog() {
  Buffers& b = *buf_;
  for (size_t si = 0; si < backlog_.size(); ++si) {
    auto& q = backlog_[si];
    while (!q.empty()) {
      const size_t n = std::min(q.size(), kBatch);
      for (size_t k = 0; k < n; ++k) {
        Backlogged& d = q[k];
        socklen_t len = to_sockaddr(d.peer, sockets_[si].family(), b.send_addrs[k]);
        b.send_iov[k] = {d.data.data(), d.data.size()};
        b.send_msgs[k].msg_hdr = msghdr{};
        b.send_msgs[k].msg_hdr.msg_name = &b.send_addrs[k];
        b.send_msgs[k].msg_hdr.msg_namelen = len;
        b.send_msgs[k].msg_hdr.msg_iov = &b.send_iov[k];
        b.send_msgs[k].msg_hdr.msg_iovlen = 1;
      }
      const size_t taken = send_batch(si, n);
      q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(taken));
      if (taken < n) break;  // still full
    }
  }
}

bool Loop::backlog_for(size_t si) const { return si < backlog_.size() && !backlog_[si].empty(); }

void Loop::send(std::span<const coap::Transmit> tx) {
  if (tx.empty() || sockets_.empty()) return;
  if (backlog_size() > 0) retry_backlog();
  Buffers& b = *buf_;
  size_t i = 0;
  while (i < tx.size()) {
    // group consecutive transmits for the same socket into one sendmmsg
    size_t si = 0;
    while (si < sockets_.size() && !sockets_[si].can_send_to(tx[i].peer)) ++si;
    if (si == sockets_.size()) {
      ++i;
      continue;
    }
    size_t n = 0;
    while (i + n < tx.size() && n < kBatch && sockets_[si].can_send_to(tx[i + n].peer)) {
      const coap::Transmit& t = tx[i + n];
      socklen_t len = to_sockaddr(t.peer, sockets_[si].family(), b.send_addrs[n]);
      b.send_iov[n] = {const_cast<uint8_t*>(t.data.data()), t.data.size()};
      b.send_msgs[n].msg_hdr = msghdr{};
      b.send_msgs[n].msg_hdr.msg_name = &b.send_addrs[n];
      b.send_msgs[n].msg_hdr.msg_namelen = len;
      b.send_msgs[n].msg_hdr.msg_iov = &b.send_iov[n];
      b.send_msgs[n].msg_hdr.msg_iovlen = 1;
      ++n;
    }
    // Behind a backlog a datagram waits its turn (order per socket is kept).
    const size_t taken = backlog_for(si) ? 0 : send_batch(si, n);
    for (size_t k = taken; k < n; ++k) backlog_[si].push_back(Backlogged{tx[i + k].peer, tx[i + k].data});
    i += n;
  }
}

void Loop::service() {
  flush();
  TimePoint now = clock_.now();
  if (backlog_size() > 0) retry_backlog();
  for (size_t i = 0; i < sockets_.size(); ++i) drain(i, now);
  if (auto dl = ep_.next_deadline(); dl && *dl <= now) ep_.handle_timeout(now);
  flush();
}

void Loop::run_once(Duration max_wait) {
  flush();
  TimePoint now = clock_.now();
  Duration wait = max_wait;
  if (auto dl = ep_.next_deadline()) wait = std::min(wait, *dl > now ? *dl - now : Duration::zero());
  pollfd pfds[9];
  size_t n = std::min<size_t>(sockets_.size(), 8);
  for (size_t i = 0; i < n; ++i)
    pfds[i] = {sockets_[i].fd(), static_cast<short>(POLLIN | (backlog_for(i) ? POLLOUT : 0)), 0};
  const bool poll_sync = sync_ && sync_->wake_fd() >= 0;
  if (poll_sync) pfds[n] = {sync_->wake_fd(), POLLIN, 0};
  // ppoll: the wait to the endpoint's deadline to the microsecond (poll's
  // milliseconds rounded a timer due in 1 us up to a 1 ms sleep).
  const int64_t us = std::max<int64_t>(std::chrono::ceil<microseconds>(wait).count(), 0);
  const timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  int r = ::ppoll(pfds, n + (poll_sync ? 1 : 0), &ts, nullptr);
  now = clock_.now();
  if (r > 0) {
    // A finished sync first: the earlier rounds' held answers go out before this round.
    if (poll_sync && (pfds[n].revents & POLLIN)) send(sync_->take_released());
    for (size_t i = 0; i < n; ++i)
      if (pfds[i].revents & POLLOUT) {
        retry_backlog();
        break;
      }
    for (size_t i = 0; i < n; ++i)
      if (pfds[i].revents & POLLIN) drain(i, now);
  }
  if (auto dl = ep_.next_deadline(); dl && *dl <= now) ep_.handle_timeout(now);
  flush();
}

void Loop::run(const std::function<bool()>& done) {
  while (!stop_.load()) {
    if (done && done()) return;
    run_once(milliseconds(200));
  }
}

}  // namespace acekdc::io
