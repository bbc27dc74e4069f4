// serve_push: the KDC's key push in `acekdc serve` (and `bench rekey-e2e`), beside
// cmd_serve.cpp: the PushDriver per endpoint, the KDC endpoint's configuration for
// push, and the fresh notification each restored observation gets after a restart
// (docs/kdc-state.md "Rekey delivery, end to end").
#pragma once

#include <cstddef>

#include "ace/coap_gate.h"
#include "ace/push_driver.h"
#include "coap/endpoint.h"
#include "kdc/store.h"

namespace acekdc::app {

// push_endpoint_config: the KDC endpoint's configuration. NSTART stays 1 per peer
// address (RFC 7252 §4.7: many members behind one address share it); the per-peer
// queue holds what waits for it, up to max_queued (a push that does not fit is
// reported as a timeout and its observation ends).
coap::EndpointConfig push_endpoint_config(size_t max_queued = 65536);

// push_driver: the PushDriver of `ep` (created on first use, logging to stderr,
// kept for the process's lifetime: the endpoint's callbacks refer to it).
ace::PushDriver& push_driver(coap::Endpoint& ep, ace::AceCoapGate& gate);

// notify_restored queues, for every observation restore_push_state restored, a
// notification with the member's current key distribution (as GET nodes/NODENAME
// answers it; RFC 7641 §4.2: the observer learns the current state, and a member
// that missed a rekey while the KDC was down catches up). An observation whose
// member is gone is cancelled. Returns how many notifications were queued.
size_t notify_restored(ace::AceCoapGate& gate, kdc::Store& store);

}  // namespace acekdc::app
