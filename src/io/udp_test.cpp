// Real UDP on loopback: an Endpoint+Server in one Loop, a BlockingClient in another thread.
#include "io/udp.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "coap/server.h"
#include "coap/uri.h"
#include "io/client.h"

namespace acekdc::io {
namespace {

TEST(IoUdp, GetOverLoopbackV4AndV6) {
  for (const char* bind_addr : {"127.0.0.1:0", "[::1]:0"}) {
    SystemClock clock;
    SystemRandom rnd;
    coap::Endpoint ep(clock, rnd);
    coap::Server server(ep);
    server.add("/hello").on(coap::code::kGet, [](coap::Request&, coap::Message& r) {
      r.code = coap::code::kContent;
      r.set_payload("world");
    });
    auto sock = UdpSocket::bind(*coap::Address::parse(bind_addr));
    ASSERT_TRUE(sock) << bind_addr;
    coap::Address server_addr = sock->local_address();
    Loop loop(ep, clock);
    loop.add_socket(std::move(*sock));
    std::thread t([&] { loop.run(); });
    BlockingClient client;
    coap::Message req(coap::Type::kCon, coap::code::kGet);
    req.set_uri_path("/hello");
    auto res = client.request(server_addr, req, {}, seconds(5));
    loop.stop();
    t.join();
    ASSERT_TRUE(res);
    ASSERT_TRUE(res->response) << bind_addr;
    EXPECT_EQ(res->response->code, coap::code::kContent);
    EXPECT_EQ(as_string(res->response->payload), "world");
  }
}

// Ephemeral binds never share a port (with SO_REUSEADDR on port 0 Linux handed
// two sockets the same port now and then: one of them never got its answers).
TEST(IoUdp, EphemeralPortsAreUnique) {
  std::vector<UdpSocket> socks;
  std::set<uint16_t> ports;
  for (int i = 0; i < 512; ++i) {
    auto s = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    ASSERT_TRUE(s);
    ports.insert(s->local_address().port);
    socks.push_back(std::move(*s));
  }
  EXPECT_EQ(ports.size(), socks.size());
}

// Loops on one thread sharing one set of buffers: each serves its own socket's
// requests, interleaved, with the right payloads (no datagram of one loop seen by
// the other).
TEST(IoUdp, LoopsSharingBuffersServeTheirOwnSockets) {
  SystemClock clock;
  SystemRandom rnd;
  constexpr int kLoops = 3;
  std::vector<std::unique_ptr<coap::Endpoint>> eps;
  std::vector<std::unique_ptr<coap::Server>> servers;
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<coap::Address> addrs;
  for (int i = 0; i < kLoops; ++i) {
    eps.push_back(std::make_unique<coap::Endpoint>(clock, rnd));
    servers.push_back(std::make_unique<coap::Server>(*eps.back()));
    servers.back()->add("/who").on(coap::code::kGet, [i](coap::Request&, coap::Message& r) {
      r.code = coap::code::kContent;
      r.set_payload("loop" + std::to_string(i));
    });
    loops.push_back(std::make_unique<Loop>(*eps.back(), clock, loops.empty() ? nullptr : loops[0]->buffers()));
    auto sock = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    ASSERT_TRUE(sock);
    addrs.push_back(sock->local_address());
    loops.back()->add_socket(std::move(*sock));
  }
  EXPECT_EQ(loops[1]->buffers(), loops[0]->buffers());
  EXPECT_EQ(loops[2]->buffers(), loops[0]->buffers());
  std::atomic<bool> stop{false};
  std::thread t([&] {
    while (!stop.load())
      for (auto& l : loops) l->run_once(milliseconds(1));
  });
  BlockingClient client;
  for (int round = 0; round < 4; ++round)
    for (int i = 0; i < kLoops; ++i) {
      coap::Message req(coap::Type::kCon, coap::code::kGet);
      req.set_uri_path("/who");
      auto res = client.request(addrs[static_cast<size_t>(i)], req, {}, seconds(5));
      ASSERT_TRUE(res && res->response) << "loop " << i;
      EXPECT_EQ(as_string(res->response->payload), "loop" + std::to_string(i));
    }
  stop.store(true);
  t.join();
}

TEST(IoUdp, Resolve) {
  auto a = resolve("127.0.0.1", 1234);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "127.0.0.1:1234");
  auto b = resolve("localhost", 5683, 4);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, 4);
}

TEST(CoapUri, Parse) {
  auto u = coap::Uri::parse("coap://[::1]:5684/a/b%20c?x=1&y");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 5684);
  coap::Message m;
  u->apply_to(m);
  EXPECT_EQ(m.uri_path(), "/a/b c");
  EXPECT_EQ(m.all(coap::option::kUriQuery).size(), 2u);
  EXPECT_FALSE(coap::Uri::parse("http://x/"));
  EXPECT_FALSE(coap::Uri::parse("coap://:5/"));
  EXPECT_FALSE(coap::Uri::parse("coap://h:99999/"));
  EXPECT_EQ(coap::Uri::parse("coap://h")->port, 5683);
}

}  // namespace
}  // namespace acekdc::io

#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string_view>

namespace acekdc::io {
namespace {

// A server that joined 224.0.1.187 on loopback answers a NON multicast GET after
// a random delay within Leisure, and stays silent on a multicast 4.04.
TEST(IoUdp, MulticastRequestOnLoopback) {
  SystemClock clock;
  SystemRandom rnd;
  coap::EndpointConfig cfg;
  cfg.leisure = milliseconds(300);
  coap::Endpoint ep(clock, rnd, cfg);
  coap::Server server(ep);
  server.add("/test").on(coap::code::kGet, [](coap::Request& req, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload(req.multicast ? "multicast" : "unicast");
  });
  auto sock = UdpSocket::bind(*coap::Address::parse("0.0.0.0:0"));
  ASSERT_TRUE(sock);
  uint16_t port = sock->local_address().port;
  auto group = *coap::Address::parse_host(cp::coap::kAllCoapNodesIpv4, port);
  if (!sock->join_group(group, if_nametoindex("lo"))) GTEST_SKIP() << "cannot join a multicast group here";
  Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));

  auto csock = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
  ASSERT_TRUE(csock);
  in_addr lo{};
  lo.s_addr = htonl(INADDR_LOOPBACK);
  ::setsockopt(csock->fd(), IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
  unsigned char loop_on = 1;
  ::setsockopt(csock->fd(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop_on, sizeof loop_on);
  coap::Endpoint cep(clock, rnd);
  Loop cloop(cep, clock);
  cloop.add_socket(std::move(*csock));

  std::string got;
  bool done = false;
  coap::Message req(coap::Type::kNon, coap::code::kGet);
  req.set_uri_path("/test");
  coap::RequestOptions o;
  o.confirmable = false;
  o.timeout = seconds(3);
  TimePoint start = clock.now();
  cep.request(group, req, o, [&](const coap::ClientEvent& ev) {
    if (ev.response) got = std::string(as_string(ev.response->payload));
    done = true;
  });
  while (!done && clock.now() - start < seconds(4)) {
    cloop.run_once(milliseconds(5));
    loop.run_once(milliseconds(5));
  }
  if (!done || got.empty()) GTEST_SKIP() << "no multicast delivery on loopback in this environment";
  EXPECT_EQ(got, "multicast");
  EXPECT_LE(clock.now() - start, milliseconds(300) + seconds(1));
}

}  // namespace
}  // namespace acekdc::io

// ---- sendmmsg batching: partial batches, a full socket (EAGAIN), a refused datagram ----
namespace acekdc::io {
namespace {

// BatchHook stands in for sendmmsg(2): it takes at most `cap` datagrams per call
// (then really sends them), answers EAGAIN while `full`, and refuses (EMSGSIZE) the
// datagram whose payload ends with `refuse`.
struct BatchHook {
  unsigned cap = 64;
  bool full = false;
  std::string refuse;
  std::vector<unsigned> calls;  // n of each call
  static int send(int fd, mmsghdr* msgs, unsigned n, void* user) {
    auto& h = *static_cast<BatchHook*>(user);
    h.calls.push_back(n);
    if (h.full) {
      errno = EAGAIN;
      return -1;
    }
    unsigned take = std::min(n, h.cap);
    for (unsigned i = 0; i < take; ++i) {
      const iovec& v = msgs[i].msg_hdr.msg_iov[0];
      std::string_view body(static_cast<const char*>(v.iov_base), v.iov_len);
      if (!h.refuse.empty() && body.ends_with(h.refuse)) {
        if (i == 0) {
          errno = EMSGSIZE;
          return -1;
        }
        take = i;  // as the kernel does: the batch ends before the failing datagram
        break;
      }
    }
    return ::sendmmsg(fd, msgs, take, 0);
  }
};

struct BatchFixture {
  SystemClock clock;
  SystemRandom rnd;
  coap::Endpoint ep{clock, rnd};
  Loop loop{ep, clock};
  UdpSocket sink;
  coap::Address sink_addr;
  BatchHook hook;
  BatchFixture() {
    auto s = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    EXPECT_TRUE(s);
    loop.add_socket(std::move(*s));
    auto k = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
    EXPECT_TRUE(k);
    sink = std::move(*k);
    sink_addr = sink.local_address();
    loop.set_send_batch(&BatchHook::send, &hook);
  }
  // queue_non puts NON datagrams "m<first>" .. "m<first+n-1>" into the endpoint's transmits.
  void queue_non(int first, int n) {
    for (int i = first; i < first + n; ++i) {
      coap::Message m(coap::Type::kNon, coap::code::kPost);
      m.set_payload("m" + std::to_string(i));
      ep.send(sink_addr, std::move(m));
    }
  }
  // received: the payloads that reached the sink, in arrival order.
  std::vector<std::string> received() {
    std::vector<std::string> out;
    for (;;) {
      pollfd p{sink.fd(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) return out;
      uint8_t buf[2048];
      ssize_t n = ::recv(sink.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return out;
      auto v = coap::MessageView::parse(ByteView(buf, static_cast<size_t>(n)));
      out.emplace_back(v ? std::string(as_string(v->payload)) : "?");
    }
  }
  static std::vector<std::string> names(int first, int n, int skip = -1) {
    std::vector<std::string> v;
    for (int i = first; i < first + n; ++i)
      if (i != skip) v.push_back("m" + std::to_string(i));
    return v;
  }
};

TEST(IoUdpBatch, OneCallForABatch) {
  BatchFixture f;
  f.queue_non(0, 10);
  f.loop.flush();
  EXPECT_EQ(f.hook.calls, (std::vector<unsigned>{10}));
  EXPECT_EQ(f.received(), BatchFixture::names(0, 10));
  EXPECT_EQ(f.loop.send_stats().sent, 10u);
}

TEST(IoUdpBatch, PartialBatchIsContinued) {
  BatchFixture f;
  f.hook.cap = 3;
  f.queue_non(0, 10);
  f.loop.flush();
  EXPECT_EQ(f.hook.calls, (std::vector<unsigned>{10, 7, 4, 1}));
  EXPECT_EQ(f.received(), BatchFixture::names(0, 10));
  EXPECT_EQ(f.loop.backlog_size(), 0u);
}

TEST(IoUdpBatch, RefusedDatagramIsDroppedTheRestSent) {
  BatchFixture f;
  f.hook.refuse = "m3";
  f.queue_non(0, 8);
  f.loop.flush();
  // m0..m2 taken, m3 refused (dropped), m4..m7 in a further call
  EXPECT_EQ(f.hook.calls, (std::vector<unsigned>{8, 5, 4}));
  EXPECT_EQ(f.received(), BatchFixture::names(0, 8, 3));
  EXPECT_EQ(f.loop.send_stats().dropped, 1u);
  EXPECT_EQ(f.loop.send_stats().sent, 7u);
}

TEST(IoUdpBatch, FullSocketBacklogsInOrderWithoutBlocking) {
  BatchFixture f;
  f.hook.cap = 2;
  f.queue_non(0, 2);
  f.loop.flush();  // m0, m1 go
  f.hook.full = true;
  f.queue_non(2, 5);
  f.loop.flush();  // EAGAIN: m2..m6 wait in the backlog (flush returns while the socket stays full)
  EXPECT_EQ(f.loop.backlog_size(), 5u);
  EXPECT_EQ(f.loop.send_stats().would_block, 1u);
  f.queue_non(7, 3);
  f.loop.flush();  // behind the backlog: the retry fails again, m7..m9 queue behind
  EXPECT_EQ(f.loop.backlog_size(), 8u);
  EXPECT_EQ(f.received(), BatchFixture::names(0, 2));
  f.hook.full = false;
  f.loop.run_once(milliseconds(50));  // writable: the backlog goes out, in order
  EXPECT_EQ(f.loop.backlog_size(), 0u);
  EXPECT_EQ(f.received(), BatchFixture::names(2, 8));
  f.queue_non(10, 1);
  f.loop.flush();
  EXPECT_EQ(f.received(), BatchFixture::names(10, 1));
}

// The real sendmmsg: 200 datagrams in batches of 64 (4 calls unless the socket
// filled up, then the backlog), all delivered.
TEST(IoUdpBatch, RealSendmmsgManyDatagrams) {
  BatchFixture f;
  f.loop.set_send_batch(nullptr, nullptr);
  f.queue_non(0, 200);
  f.loop.flush();
  EXPECT_EQ(f.loop.send_stats().sent + f.loop.backlog_size(), 200u);
  EXPECT_LE(f.loop.send_stats().syscalls, 200u / 64 + 2);
  size_t got = 0;
  while (f.loop.backlog_size() > 0) {
    got += f.received().size();
    f.loop.run_once(milliseconds(10));
  }
  got += f.received().size();
  EXPECT_EQ(got, 200u);
}

}  // namespace
}  // namespace acekdc::io
