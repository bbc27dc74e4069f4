#include "ace/push_driver.h"

#include "oscore/error.h"

namespace acekdc::ace {

PushDriver::PushDriver(AceCoapGate& gate, coap::Endpoint& endpoint, Log log, size_t per_message_log_limit)
    : gate_(gate), ep_(endpoint), log_(std::move(log)), per_message_log_limit_(per_message_log_limit) {}

size_t PushDriver::send_all() {
  // Notifications first into their peers' queues (unprotected), then the requests
  // (take_outgoing protects only what take_unsent did not hand over: nothing).
  auto unsent = gate_.take_unsent();
  auto out = gate_.take_outgoing();
  const bool each = unsent.size() + out.size() <= per_message_log_limit_;
  log_each_ = each;
  size_t requests = 0;
  if (!unsent.empty()) peers_.reserve(peers_.size() + unsent.size());
  for (const auto& u : unsent) {
    PeerQueue& q = peers_[u.peer];
    q.ids.push_back(u.observation);
    ++queued_;
    if (!q.busy && !q.ready) {
      q.ready = true;
      ready_.push_back(u.peer);
    }
  }
  for (auto& o : out) {
    if (o.observation) {  // cannot happen after take_unsent; sent as it is
      const uint64_t id = o.observation;
      const coap::Address peer = o.peer;
      ++stats_.notifications_sent;
      ep_.send_encoded(o.peer, std::move(o.datagram), [this, id, peer](coap::SendStatus s) {
        if (s == coap::SendStatus::kAcked) {
          ++stats_.notifications_acked;
          return;
        }
        ++stats_.notifications_failed;
        gate_.cancel_observation(id);
      });
      continue;
    }
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
  if (!each) {
    log("push: " + std::to_string(unsent.size()) + " notifications, " + std::to_string(requests) +
        " control path requests");
  }
  pump();
  return unsent.size() + requests;
}

void PushDriver::pump() {
  size_t budget = protect_batch_;
  while (budget > 0 && !ready_.empty()) {
    const coap::Address peer = ready_.front();
    ready_.pop_front();
    auto pit = peers_.find(peer);
    if (pit == peers_.end()) continue;
    PeerQueue& q = pit->second;
    q.ready = false;
    while (!q.empty()) {
      const uint64_t id = q.ids[q.head++];
      if (q.empty()) {
        q.ids.clear();
        q.head = 0;
      }
      --queued_;
      auto o = gate_.protect_unsent(id);  // fresh Partial IV and Observe value now
      if (!o) continue;                   // observation gone (or nothing left to send)
      if (log_each_) log("push: notification to " + peer.to_string());
      ++stats_.notifications_sent;
      --budget;
      q.busy = true;
      // The gate's protected datagram goes out as it is (only its message ID is set).
      ep_.send_encoded(peer, std::move(o->datagram), [this, id, peer](coap::SendStatus s) {
        if (s == coap::SendStatus::kAcked) {
          ++stats_.notifications_acked;
        } else {
          ++stats_.notifications_failed;
          gate_.cancel_observation(id);
          log("push: observer " + peer.to_string() + (s == coap::SendStatus::kReset ? " reset" : " did not answer") +
              ", observation dropped");
        }
        done_with(peer);
      });
      break;  // q may be gone: the callback can run at once (a datagram the endpoint refuses)
    }
    auto again = peers_.find(peer);
    if (again != peers_.end() && !again->second.busy && !again->second.ready && again->second.empty())
      peers_.erase(again);
  }
  if (!ready_.empty()) schedule_pump();
}

void PushDriver::done_with(const coap::Address& peer) {
  auto pit = peers_.find(peer);
  if (pit == peers_.end()) return;
  PeerQueue& q = pit->second;
  q.busy = false;
  if (q.empty()) {
    peers_.erase(pit);
    return;
  }
  if (!q.ready) {
    q.ready = true;
    ready_.push_back(peer);
  }
  schedule_pump();
}

void PushDriver::schedule_pump() {
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  // 1 us later: the loop sends this round's datagrams (and reads the ACKs) first.
  ep_.schedule(ep_.clock().now() + microseconds(1), [this](TimePoint) {
    pump_scheduled_ = false;
    pump();
  });
}

}  // namespace acekdc::ace
