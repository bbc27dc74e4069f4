// BlockingClient: synchronous CoAP requests over UDP for command-line tools.
#pragma once

#include <functional>
#include <optional>

#include "coap/endpoint.h"
#include "io/udp.h"

namespace acekdc::io {

struct ClientResult {
  coap::ClientStatus status = coap::ClientStatus::kTimeout;
  std::optional<coap::Message> response;
  // for a multicast peer: every response with its sender (status kGroupDone at the end)
  std::vector<std::pair<coap::Address, coap::Message>> group_responses;
};

class BlockingClient {
 public:
  explicit BlockingClient(coap::EndpointConfig cfg = {});
  ~BlockingClient();

  // request sends `req` to `peer` and waits for the outcome (at most `max_wait`).
  // To a multicast peer it collects responses for the whole `max_wait`.
  // Fails only if no socket could be opened for the peer's address family.
  Expected<ClientResult, Error> request(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                        Duration max_wait);
  // observe registers and calls `on_event` for the first response and each
  // notification until it returns false, the observation ends or `max_wait`
  // passes; then deregisters (GET with Observe: 1).
  Expected<void, Error> observe(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                Duration max_wait, const std::function<bool(const coap::ClientEvent&)>& on_event);
  coap::Endpoint& endpoint() { return ep_; }

 private:
  Expected<void, Error> ensure_socket(const coap::Address& peer);
  SystemClock clock_;
  SystemRandom random_;
  coap::Endpoint ep_;
  Loop loop_;
};

}  // namespace acekdc::io
