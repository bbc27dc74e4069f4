// Real UDP on loopback: an Endpoint+Server in one Loop, a BlockingClient in another thread.
#include "io/udp.h"

#include <gtest/gtest.h>

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
#include <sys/socket.h>

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
