#include "io/client.h"

namespace acekdc::io {

BlockingClient::BlockingClient(coap::EndpointConfig cfg) : ep_(clock_, random_, std::move(cfg)), loop_(ep_, clock_) {}
BlockingClient::~BlockingClient() = default;

Expected<void, Error> BlockingClient::ensure_socket(const coap::Address& peer) {
  for (auto& s : loop_.sockets())
    if (s.can_send_to(peer)) return {};
  coap::Address local;
  local.family = peer.family;
  auto s = UdpSocket::bind(local);
  if (!s) return unexpected(s.error());
  if (peer.is_multicast()) ACEKDC_TRY(s->set_multicast_send(peer.scope_id));
  loop_.add_socket(std::move(*s));
  return {};
}

Expected<ClientResult, Error> BlockingClient::request(const coap::Address& peer, coap::Message req,
                                                      coap::RequestOptions opts, Duration max_wait) {
  ACEKDC_TRY(ensure_socket(peer));
  ClientResult result;
  bool done = false;
  if (!opts.timeout) opts.timeout = max_wait;
  uint64_t id = ep_.request(peer, std::move(req), opts, [&](const coap::ClientEvent& ev) {
    if (ev.status == coap::ClientStatus::kNotification) return;
    if (peer.is_multicast() && ev.status == coap::ClientStatus::kResponse && ev.response && ev.from) {
      result.group_responses.emplace_back(*ev.from, *ev.response);
      return;
    }
    result.status = ev.status;
    if (ev.response) result.response = *ev.response;
    done = true;
  });
  TimePoint end = clock_.now() + max_wait + milliseconds(peer.is_multicast() ? 200 : 0);
  while (!done && clock_.now() < end) loop_.run_once(std::min<Duration>(end - clock_.now(), milliseconds(100)));
  if (!done) {
    ep_.cancel(id);
    result.status = peer.is_multicast() ? coap::ClientStatus::kGroupDone : coap::ClientStatus::kTimeout;
  }
  loop_.flush();
  return result;
}

Expected<void, Error> BlockingClient::observe(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                              Duration max_wait,
                                              const std::function<bool(const coap::ClientEvent&)>& on_event) {
  ACEKDC_TRY(ensure_socket(peer));
  opts.observe = true;
  if (!opts.timeout) opts.timeout = max_wait;
  bool done = false, stop = false;
  uint64_t id = ep_.request(peer, std::move(req), opts, [&](const coap::ClientEvent& ev) {
    if (ev.status != coap::ClientStatus::kNotification) done = true;
    if (ev.status == coap::ClientStatus::kCancelled) return;
    if (!on_event(ev)) stop = true;
  });
  TimePoint end = clock_.now() + max_wait;
  while (!done && !stop && clock_.now() < end) loop_.run_once(std::min<Duration>(end - clock_.now(), milliseconds(100)));
  if (!done) {
    ep_.cancel(id, /*deregister=*/true);
    // give the deregistration a moment to be answered
    TimePoint grace = clock_.now() + milliseconds(500);
    while (ep_.next_deadline() && clock_.now() < grace) loop_.run_once(milliseconds(50));
  }
  loop_.flush();
  return {};
}

}  // namespace acekdc::io
