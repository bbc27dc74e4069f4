// PushDriver: sends what an AceCoapGate queued for push (Observe notifications and
// the KDC's requests to members' control paths) over a coap::Endpoint as CON
// messages, and follows each one up:
//   - a notification that is ACKed counts as delivered; one that is reset, or
//     times out after the CON retransmissions (RFC 7252 §4.2: ACK_TIMEOUT doubling,
//     MAX_RETRANSMIT), ends its observation (RFC 7641 §4.5) and is counted/logged;
//   - a control_path request is retransmitted the same way; its answer is
//     OSCORE-verified (AceCoapGate::check_answer) and its inner code checked: 2.xx
//     counts as delivered, an error code or an answer that does not verify is
//     counted and logged, and no answer after the retransmissions too.
// Notifications are protected lazily: send_all takes the gate's unsent
// notifications (AceCoapGate::take_unsent) into a queue per peer address and
// protects one only when it can leave: at most one notification outstanding per
// address (RFC 7252 §4.7 NSTART 1; members behind one address share it), the next
// one for that address protected when the previous is ACKed (or failed), and at
// most protect_batch per loop round (the rest in a timer 1 us later, so the round's
// datagrams leave before more are protected). A rekey thus starts sending after
// the first member's protect, not after all of them; each protect takes a fresh
// Partial IV, and a notification superseded before it was protected costs none.
// Control_path requests are protected by the gate and queued in the Endpoint
// (EndpointConfig::max_queued_per_peer; one that does not fit is reported as a
// timeout).
// Sans-I/O like the Endpoint: the caller's loop sends the Endpoint's transmits.
// The driver, the gate and the endpoint must outlive every pending callback
// (destroy the endpoint first, or keep all three for the loop's lifetime).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ace/coap_gate.h"
#include "coap/endpoint.h"

namespace acekdc::ace {

class PushDriver {
 public:
  // Log: one line per failure (and a summary per send_all); never secrets.
  using Log = std::function<void(const std::string& line)>;
  // per_message_log_limit: send_all logs each message it sends when it sends at
  // most this many, else one summary line.
  PushDriver(AceCoapGate& gate, coap::Endpoint& endpoint, Log log = {}, size_t per_message_log_limit = 8);

  // send_all takes the gate's queued pushes: control_path requests are sent,
  // notifications queued per peer and the first ones protected and sent (see
  // above). Returns how many were taken.
  size_t send_all();
  // set_protect_batch: notifications protected and sent per loop round (>= 1).
  void set_protect_batch(size_t n) { protect_batch_ = n ? n : 1; }
  // num_queued: notifications waiting in the per-peer queues (not protected yet).
  size_t num_queued() const { return queued_; }

  struct Stats {
    uint64_t notifications_sent = 0, notifications_acked = 0, notifications_failed = 0;
    uint64_t requests_sent = 0, requests_ok = 0, requests_error = 0, requests_no_answer = 0;
    // last_request_error: the inner code (or 0 when it did not verify) of the last failed request.
    uint8_t last_request_code = 0;
  };
  const Stats& stats() const { return stats_; }
  // in_flight: pushes sent whose outcome is not known yet.
  uint64_t in_flight() const {
    return stats_.notifications_sent - stats_.notifications_acked - stats_.notifications_failed +
           stats_.requests_sent - stats_.requests_ok - stats_.requests_error - stats_.requests_no_answer;
  }

 private:
  void log(const std::string& s) {
    if (log_) log_(s);
  }
  AceCoapGate& gate_;
  coap::Endpoint& ep_;
  // PeerQueue: the observations with a notification waiting for this address.
  // (A vector with a read index, not a deque: a deque allocates ~600 bytes even for
  // the one id a member's own address usually holds.)
  struct PeerQueue {
    std::vector<uint64_t> ids;
    size_t head = 0;  // ids[head, size) wait
    bool empty() const { return head == ids.size(); }
    bool busy = false;   // a notification to this address is outstanding
    bool ready = false;  // listed in ready_
  };
  // pump protects and sends up to protect_batch_ notifications of ready peers;
  // schedules itself for the next round when more are ready.
  void pump();
  void schedule_pump();
  void done_with(const coap::Address& peer);
  Log log_;
  size_t per_message_log_limit_;
  Stats stats_;
  std::unordered_map<coap::Address, PeerQueue, coap::AddressHash> peers_;
  std::deque<coap::Address> ready_;  // peers with a queued notification and none outstanding
  size_t queued_ = 0;
  size_t protect_batch_ = 64;
  bool pump_scheduled_ = false;
  bool log_each_ = false;
};

}  // namespace acekdc::ace
