// GroupCoapBinding: the KDC's /ace-group/* resources (GroupManager) behind the
// OSCORE contexts that ace::AceCoapGate derives at /authz-info (docs/serve.md).
//
// For each request the binding builds the groupcomm::Requester from the context's
// record at the KDC: client_id "osc:" + hex(OSCORE_Input_Material id) (bound by
// the token's cnf, unchanged by token updates), token_id the newest token's cti
// (the material id when the token has none), scope the union of the context's
// unexpired tokens, rsnonce the last N_S sent. The token is recorded in the kdc::Store
// (put_token) so that GroupManager can match memberships to it. A new rsnonce
// from the manager is remembered in the ace::TokenStore. Sans-I/O: the caller (the
// gate) has decrypted the request and protects the response.
#pragma once

#include <functional>

#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/token_store.h"
#include "coap/message.h"
#include "groupcomm/manager.h"
#include "kdc/store.h"

namespace acekdc::groupcomm {

class GroupCoapBinding {
 public:
  // on_rekey: called for every RekeyEvent after a request, with the group's new
  // Group ID (never give it secrets). on_request: the request and its answer code.
  struct Observer {
    std::function<void(const RekeyEvent& e, ByteView group_id)> on_rekey;
    std::function<void(const coap::Message& req, uint8_t code)> on_request;
  };

  // The references must outlive the binding.
  GroupCoapBinding(ace::AuthzInfo& authz, ace::TokenStore& tokens, kdc::Store& store, GroupManager& mgr,
                   Observer observer = {});

  // handle serves one decrypted request that arrived over the context `via`; a path
  // not under /ace-group leaves `resp` untouched (the gate's 4.04). Fits
  // ace::AceCoapGate::KdcResourceHandler.
  void handle(const ace::ContextKey& via, const coap::Message& req, coap::Message& resp, int64_t now);

  // attach installs this binding as `gate`'s KDC resource handler.
  void attach(ace::AceCoapGate& gate);

 private:
  ace::AuthzInfo& authz_;
  ace::TokenStore& tokens_;
  kdc::Store& store_;
  GroupManager& mgr_;
  Observer observer_;
};

}  // namespace acekdc::groupcomm
