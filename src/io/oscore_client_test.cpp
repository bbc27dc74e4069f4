// OSCORE over real UDP on loopback: a SecureServer in one Loop, an OscoreClient
// in this thread.
#include "io/oscore_client.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "coap/server.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/secure_server.h"

namespace acekdc::io {
namespace {

std::unique_ptr<oscore::Context> make(crypto::Provider& p, Bytes sender, Bytes recipient) {
  oscore::ContextConfig cfg;
  cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
  cfg.params.master_salt = *from_hex("9e7ca92223786340");
  cfg.params.sender_id = std::move(sender);
  cfg.params.recipient_id = std::move(recipient);
  auto c = oscore::Context::create(p, std::move(cfg));
  EXPECT_TRUE(c);
  return std::move(*c);
}

TEST(IoOscore, RequestAndObserveOverLoopback) {
  auto provider = crypto::make_openssl_provider();
  SystemClock clock;
  SystemRandom rnd;
  coap::Endpoint ep(clock, rnd);
  coap::Server server(ep);
  std::string big(2500, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  server.add("/hello").on(coap::code::kGet, [](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload("world");
  });
  server.add("/big").on(coap::code::kGet, [&](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload(big);
  });
  int value = 0;
  auto& obs = server.add("/obs");
  obs.observable = true;
  obs.on(coap::code::kGet, [&](coap::Request&, coap::Message& r) {
    r.code = coap::code::kContent;
    r.set_payload("n" + std::to_string(value));
  });
  // notifications every 50 ms, from the loop's own thread
  std::function<void(TimePoint)> tick = [&](TimePoint now) {
    ++value;
    server.notify("/obs");
    ep.schedule(now + milliseconds(50), tick);
  };
  ep.schedule(clock.now() + milliseconds(50), tick);
  oscore::SecureServer secure(ep, server, rnd, clock);
  ASSERT_TRUE(secure.add_context(make(*provider, {0x01}, {})));
  auto sock = UdpSocket::bind(*coap::Address::parse("127.0.0.1:0"));
  ASSERT_TRUE(sock);
  coap::Address server_addr = sock->local_address();
  Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  std::thread t([&] { loop.run(); });

  OscoreClient client(make(*provider, {}, {0x01}));
  coap::Message req(coap::Type::kCon, coap::code::kGet);
  req.set_uri_path("/hello");
  auto res = client.request(server_addr, req, {}, seconds(5));
  coap::Message big_req(coap::Type::kCon, coap::code::kGet);
  big_req.set_uri_path("/big");
  auto res_big = client.request(server_addr, big_req, {}, seconds(5));
  // an unprotected path that is not allowed: a 4.01 over plain CoAP
  OscoreClient stranger(make(*provider, {0x09}, {0x01}));
  auto res_stranger = stranger.request(server_addr, req, {}, seconds(5));
  coap::Message obs_req(coap::Type::kCon, coap::code::kGet);
  obs_req.set_uri_path("/obs");
  std::vector<std::string> seen;
  auto res_obs = client.observe(server_addr, obs_req, {}, seconds(5), [&](const oscore::SecureEvent& ev) {
    if (ev.response) seen.emplace_back(as_string(ev.response->payload));
    return seen.size() < 3;
  });
  loop.stop();
  t.join();

  ASSERT_TRUE(res_obs);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_NE(seen[0], seen[1]);
  EXPECT_NE(seen[1], seen[2]);
  EXPECT_EQ(server.num_observers("/obs"), 0u);  // the protected deregistration arrived

  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, coap::ClientStatus::kResponse);
  ASSERT_TRUE(res->response);
  EXPECT_EQ(as_string(res->response->payload), "world");
  ASSERT_TRUE(res_big && res_big->response);
  EXPECT_EQ(as_string(res_big->response->payload), big);
  ASSERT_TRUE(res_stranger);
  EXPECT_EQ(res_stranger->status, coap::ClientStatus::kBadResponse);
  EXPECT_EQ(res_stranger->error, oscore::Error::kContextNotFound);
  ASSERT_TRUE(res_stranger->unprotected_response);
  EXPECT_EQ(res_stranger->unprotected_response->code, coap::code::kUnauthorized);
}

}  // namespace
}  // namespace acekdc::io
