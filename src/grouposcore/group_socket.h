// GroupSocket: the UDP side of Group OSCORE for tools and tests (`acekdc group
// send|listen`): one socket that sends group requests to a (multicast) address and
// receives requests and responses. The protocol work stays in GroupContext; this only
// moves datagrams (blocking, with a timeout). Library: acekdc_grouposcore_io.
#pragma once

#include <optional>

#include "coap/address.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/expected.h"
#include "io/udp.h"

namespace acekdc::grouposcore {

class GroupSocket {
 public:
  // open binds `local` (port 0: ephemeral); with `join`, joins that multicast group
  // (receivers); multicast sends leave through `ifindex` (0: routing default) with
  // loopback on and hop limit 1. Errors: those of io::UdpSocket.
  static Expected<GroupSocket, io::Error> open(const coap::Address& local,
                                               std::optional<coap::Address> join = std::nullopt,
                                               unsigned ifindex = 0);
  // send_to sends one datagram; false if the kernel refused it.
  bool send_to(ByteView datagram, const coap::Address& peer);
  // receive waits up to `timeout` for one datagram, writes it into `buf` (a longer one
  // is truncated and dropped) and returns its length and sender; nullopt on timeout.
  std::optional<size_t> receive(MutableByteView buf, coap::Address& out_from, Duration timeout);
  coap::Address local_address() const { return socket_.local_address(); }

 private:
  explicit GroupSocket(io::UdpSocket s) : socket_(std::move(s)) {}
  io::UdpSocket socket_;
};

}  // namespace acekdc::grouposcore
