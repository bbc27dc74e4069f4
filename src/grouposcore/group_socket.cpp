#include "grouposcore/group_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

namespace acekdc::grouposcore {

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
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    a.family = 4;
    std::memcpy(a.ip.data(), &s->sin_addr, 4);
    a.port = ntohs(s->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
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

}  // namespace

Expected<GroupSocket, io::Error> GroupSocket::open(const coap::Address& local, std::optional<coap::Address> join,
                                                   unsigned ifindex) {
  auto s = io::UdpSocket::bind(local);
  if (!s) return unexpected(s.error());
  if (join) {
    auto j = s->join_group(*join, ifindex);
    if (!j) return unexpected(j.error());
  }
  auto m = s->set_multicast_send(ifindex);
  if (!m) return unexpected(m.error());
  return GroupSocket(std::move(*s));
}

bool GroupSocket::send_to(ByteView datagram, const coap::Address& peer) {
  if (!socket_.can_send_to(peer)) return false;
  sockaddr_storage ss;
  const socklen_t len = to_sockaddr(peer, socket_.family(), ss);
  return ::sendto(socket_.fd(), datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) ==
         static_cast<ssize_t>(datagram.size());
}

std::optional<size_t> GroupSocket::receive(MutableByteView buf, coap::Address& out_from, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    pollfd p{socket_.fd(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r == 0) return std::nullopt;
    if (r < 0) continue;  // EINTR
    sockaddr_storage ss{};
    socklen_t ss_len = sizeof ss;
    const ssize_t n = ::recvfrom(socket_.fd(), buf.data(), buf.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&ss),
                                 &ss_len);
    if (n < 0 || static_cast<size_t>(n) > buf.size()) continue;  // error or truncated: drop
    out_from = from_sockaddr(ss);
    return static_cast<size_t>(n);
  }
}

}  // namespace acekdc::grouposcore
