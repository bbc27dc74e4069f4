#include "io/oscore_client.h"

namespace acekdc::io {

OscoreClient::OscoreClient(std::unique_ptr<oscore::Context> ctx, oscore::KeyUpdateConfig kcfg,
                           coap::EndpointConfig cfg, oscore::SecureClientConfig scfg)
    : ep_(clock_, random_, std::move(cfg)),
      loop_(ep_, clock_),
      session_(std::make_unique<oscore::Session>(oscore::Role::kClient, std::move(ctx), random_, clock_, kcfg)),
      client_(std::make_unique<oscore::SecureClient>(ep_, *session_, scfg)) {}

OscoreClient::~OscoreClient() = default;

Expected<void, Error> OscoreClient::ensure_socket(const coap::Address& peer) {
  for (auto& s : loop_.sockets())
    if (s.can_send_to(peer)) return {};
  coap::Address local;
  local.family = peer.family;
  auto s = UdpSocket::bind(local);
  if (!s) return unexpected(s.error());
  loop_.add_socket(std::move(*s));
  return {};
}

Expected<OscoreResult, Error> OscoreClient::request(const coap::Address& peer, coap::Message req,
                                                    coap::RequestOptions opts, Duration max_wait) {
  ACEKDC_TRY(ensure_socket(peer));
  OscoreResult result;
  bool done = false;
  if (!opts.timeout) opts.timeout = max_wait;
  opts.observe = false;
  auto id = client_->request(peer, std::move(req), opts, [&](const oscore::SecureEvent& ev) {
    result.status = ev.status;
    if (ev.response) result.response = *ev.response;
    if (ev.unprotected_response) result.unprotected_response = *ev.unprotected_response;
    result.error = ev.error;
    done = true;
  });
  if (!id) {
    result.status = coap::ClientStatus::kBadResponse;
    result.error = id.error();
    return result;
  }
  TimePoint end = clock_.now() + max_wait;
  while (!done && clock_.now() < end) loop_.run_once(std::min<Duration>(end - clock_.now(), milliseconds(100)));
  if (!done) {
    client_->cancel(*id);
    result = OscoreResult{};
    result.status = coap::ClientStatus::kTimeout;
  }
  loop_.flush();
  return result;
}

Expected<void, Error> OscoreClient::observe(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                            Duration max_wait,
                                            const std::function<bool(const oscore::SecureEvent&)>& on_event) {
  ACEKDC_TRY(ensure_socket(peer));
  opts.observe = true;
  if (!opts.timeout) opts.timeout = max_wait;
  bool done = false, stop = false;
  auto id = client_->request(peer, std::move(req), opts, [&](const oscore::SecureEvent& ev) {
    if (ev.status != coap::ClientStatus::kNotification) done = true;
    if (ev.status == coap::ClientStatus::kCancelled) return;
    if (!on_event(ev)) stop = true;
  });
  if (!id) {
    oscore::SecureEvent ev;
    ev.status = coap::ClientStatus::kBadResponse;
    ev.error = id.error();
    on_event(ev);
    return {};
  }
  TimePoint end = clock_.now() + max_wait;
  while (!done && !stop && clock_.now() < end) loop_.run_once(std::min<Duration>(end - clock_.now(), milliseconds(100)));
  if (!done) {
    client_->cancel(*id, /*deregister=*/true);
    // give the (protected) deregistration a moment to be answered
    TimePoint grace = clock_.now() + milliseconds(500);
    while (ep_.num_exchanges() > 0 && clock_.now() < grace) loop_.run_once(milliseconds(50));
  }
  loop_.flush();
  return {};
}

}  // namespace acekdc::io
