// IntrospectionDriver: the KDC's introspection at the AS (RFC 9200 §5.9) without
// blocking its event loop. It runs AceCoapGate's deferred introspection
// (AuthzInfo::set_deferred_introspection) on the KDC's coap::Endpoint:
//
//   gate.handle(...) parks a token POST that needs the AS's answer; answer(ctx, out)
//   then defers the CoAP response (an empty ACK for a CON) instead of filling it;
//   pump() sends each queued introspection request to the AS as a CON (retransmitted
//   by the Endpoint) protected with the KDC-AS OSCORE context; the verified answer,
//   or nothing within `timeout`, goes to gate.complete_introspection, and the
//   parked POSTs' responses leave as separate responses (2.01, or the RFC 9200
//   error: 4.01 inactive, 4.03, the local failure / 5.03 without an answer).
//   Meanwhile every other request is served as usual.
//
// A verified 4.01 with an Echo option from the AS (an AS whose replay window is
// not trustworthy, RFC 8613 Appendix B.1.2) makes the driver send the request once
// more with that Echo. Re-checks of installed tokens (AuthzInfo::purge) are
// queued by the gate's purge() like token POSTs; the driver also runs purge()
// every `recheck_every` so that revocation is noticed without traffic.
//
// Single-threaded: everything runs on the Endpoint's loop. The driver, the gate
// and the Endpoint must outlive every exchange the driver started (the
// destructor cancels them).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "ace/coap_gate.h"
#include "coap/endpoint.h"
#include "oscore/context.h"

namespace acekdc::ace {

struct IntrospectionDriverConfig {
  coap::Address as;                  // the AS's /introspect endpoint
  std::string path = "/introspect";
  // timeout: an introspection without a verified answer by then counts as no
  // answer (the Endpoint retransmits the CON meanwhile: ACK_TIMEOUT 2-3 s).
  Duration timeout = seconds(5);
  // recheck_every: how often purge() runs without requests (0: only on requests).
  Duration recheck_every = seconds(10);
};

class IntrospectionDriver {
 public:
  // ctx: the KDC's side of the KDC-AS OSCORE context (Sender ID = the kid the AS
  // knows the KDC by), ideally with a sequence store (RFC 8613 Appendix B.1.1).
  IntrospectionDriver(coap::Endpoint& ep, AceCoapGate& gate, std::unique_ptr<oscore::Context> ctx,
                      IntrospectionDriverConfig config);
  ~IntrospectionDriver();
  IntrospectionDriver(const IntrospectionDriver&) = delete;
  IntrospectionDriver& operator=(const IntrospectionDriver&) = delete;

  // answer puts the gate's answer `out` (gate.handle's result for this request)
  // into ctx.response, or defers the response when the gate parked the request.
  // Then it sends the introspection requests the request caused (pump()).
  void answer(coap::RequestContext& ctx, ByteView out);
  // pump sends the introspection requests the gate has queued.
  void pump();
  // start_rechecks arms the periodic purge (call once the loop runs).
  void start_rechecks();

  // on_done: told after each completed introspection (the parked answers were
  // sent) and each periodic purge, with the contexts purge dropped; e.g. to log
  // and to send the pushes an eviction caused.
  void set_on_done(std::function<void(const AceCoapGate::IntrospectionDone&)> f) { on_done_ = std::move(f); }

  size_t num_in_flight() const { return flights_.size(); }
  size_t num_deferred() const { return deferred_.size(); }
  struct Stats {
    uint64_t sent = 0, answered = 0, no_answer = 0, echo_resends = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Flight {
    Bytes token;
    Bytes request;  // the IntrospectionRequest payload
    oscore::Exchange exchange;
    uint64_t exchange_id = 0;  // Endpoint::request id
    uint64_t timer = 0;
    bool echo_sent = false;
  };
  void send(uint64_t flight, std::optional<Bytes> echo);
  void on_event(uint64_t flight, const coap::ClientEvent& ev);
  void finish(uint64_t flight, std::optional<IntrospectionReply> reply);
  void recheck();

  coap::Endpoint& ep_;
  AceCoapGate& gate_;
  std::unique_ptr<oscore::Context> ctx_;
  IntrospectionDriverConfig config_;
  std::map<uint64_t, Flight> flights_;
  std::map<uint64_t, coap::DeferredResponse> deferred_;  // by the gate's parked id
  std::function<void(const AceCoapGate::IntrospectionDone&)> on_done_;
  uint64_t next_flight_ = 1;
  uint64_t recheck_timer_ = 0;
  Stats stats_;
};

}  // namespace acekdc::ace
