#include "ace/push_driver.h"

#include "oscore/error.h"

namespace acekdc::ace {

PushDriver::PushDriver(AceCoapGate& gate, coap::Endpoint& endpoint, Log log, size_t per_message_log_limit)
    : gate_(gate), ep_(endpoint), log_(std::move(log)), per_message_log_limit_(per_message_log_limit) {}

size_t PushDriver::send_all() {
  auto out = gate_.take_outgoing();
  const bool each = out.size() <= per_message_log_limit_;
  size_t notes = 0, requests = 0;
  for (auto& o : out) {
    if (o.observation) {
      const uint64_t id = o.observation;
      const coap::Address peer = o.peer;
      if (each) log("push: notification to " + peer.to_string());
      ++stats_.notifications_sent;
      ++notes;
      // The gate's protected datagram goes out as it is (only its message ID is set).
      ep_.send_encoded(o.peer, std::move(o.datagram), [this, id, peer](coap::SendStatus s) {
        if (s == coap::SendStatus::kAcked) {
          ++stats_.notifications_acked;
          return;
        }
        ++stats_.notifications_failed;
        gate_.cancel_observation(id);
        log("push: observer " + peer.to_string() + (s == coap::SendStatus::kReset ? " reset" : " did not answer") +
            ", observation dropped");
      });
    } else {
      // A request: the endpoint's exchange assigns its own token (matching the answer).
      auto m = coap::Message::parse(o.datagram);
      if (!m) continue;  // the gate produced it: cannot happen
      const uint64_t id = o.request;
      const coap::Address peer = o.peer;
      if (each) log("push: control path request to " + peer.to_string());
      ++stats_.requests_sent;
      ++requests;
      ep_.request(o.peer, std::move(*m), coap::RequestOptions{}, [this, id, peer](const coap::ClientEvent& ev) {
        if (ev.status != coap::ClientStatus::kResponse || !ev.response) {
          gate_.forget_request(id);
          ++stats_.requests_no_answer;
          log("push: control path at " + peer.to_string() + ": " + coap::to_string(ev.status) +
              " (after retransmissions)");
          return;
        }
        auto wire = ev.response->encode();
        auto c = wire ? gate_.check_answer(id, *wire) : Expected<uint8_t, oscore::Error>(
                                                             unexpected(oscore::Error::kMalformedMessage));
        if (c && coap::code_class(*c) == 2) {
          ++stats_.requests_ok;
          return;
        }
        ++stats_.requests_error;
        stats_.last_request_code = c ? *c : 0;
        log("push: control path at " + peer.to_string() + " answered " +
            (c ? coap::code_string(*c) : std::string("unverifiable (") + oscore::to_string(c.error()) + ")"));
      });
    }
  }
  if (!each) {
    log("push: " + std::to_string(notes) + " notifications, " + std::to_string(requests) +
        " control path requests");
  }
  return notes + requests;
}

}  // namespace acekdc::ace
