// OscoreClient: blocking OSCORE requests over UDP for command-line tools, the
// OSCORE counterpart of io::BlockingClient (oscore::SecureClient on its own
// Endpoint, socket and real clock).
//
//   io::OscoreClient client(std::move(ctx));          // a client-side oscore::Context
//   coap::Message req(coap::Type::kCon, cp::coap::code::kGet);
//   req.set_uri_path("/oscore/hello/1");
//   auto r = client.request(*coap::Address::parse("127.0.0.1:5683"), std::move(req), {}, seconds(10));
//   if (r && r->status == coap::ClientStatus::kResponse) print(*r->response);   // verified
//   else if (r && r->error) complain(oscore::to_string(*r->error));
//   client.session().current().next_sequence_number();  // e.g. to persist state afterwards
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "coap/endpoint.h"
#include "io/udp.h"
#include "oscore/secure_client.h"

namespace acekdc::io {

struct OscoreResult {
  coap::ClientStatus status = coap::ClientStatus::kTimeout;
  std::optional<coap::Message> response;  // the verified, decrypted response (kResponse)
  // error: why nothing verified came back (status kBadResponse), or why the request
  // could not be protected (then nothing was sent).
  std::optional<oscore::Error> error;
  // unprotected_response: an answer without OSCORE (RFC 8613 §8.2 error response), not authenticated.
  std::optional<coap::Message> unprotected_response;
};

class OscoreClient {
 public:
  // OscoreClient takes a client-side context (Sender ID = the kid the server
  // knows us by) and wraps it in a Session with `kcfg` for the key update.
  explicit OscoreClient(std::unique_ptr<oscore::Context> ctx, oscore::KeyUpdateConfig kcfg = {},
                        coap::EndpointConfig cfg = {}, oscore::SecureClientConfig scfg = {});
  ~OscoreClient();

  // request protects `req` (the inner request), sends it to `peer` and waits for
  // the verified answer (at most `max_wait`; Block2 bodies and the Echo retry
  // happen inside). Fails only if no socket could be opened.
  Expected<OscoreResult, Error> request(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                        Duration max_wait);
  // observe registers and calls `on_event` for the first response and each
  // verified notification until it returns false, the observation ends or
  // `max_wait` passes; then deregisters (a protected GET with Observe: 1).
  Expected<void, Error> observe(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                Duration max_wait, const std::function<bool(const oscore::SecureEvent&)>& on_event);

  oscore::Session& session() { return *session_; }
  oscore::SecureClient& secure_client() { return *client_; }
  coap::Endpoint& endpoint() { return ep_; }

 private:
  Expected<void, Error> ensure_socket(const coap::Address& peer);
  SystemClock clock_;
  SystemRandom random_;
  coap::Endpoint ep_;
  Loop loop_;
  std::unique_ptr<oscore::Session> session_;
  std::unique_ptr<oscore::SecureClient> client_;
};

}  // namespace acekdc::io
