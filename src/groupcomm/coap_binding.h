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
//
// Key push (seed §4.2 / §7; docs/groupcomm.md): after every rekey the binding sends
// each member its Key Distribution Response (as GET nodes/NODENAME answers it)
//   - as an Observe notification to every observation on /ace-group/G/nodes/NODENAME
//     (a GET nodes/NODENAME with Observe: 0 is answered as observable), and
//   - as a POST to the member's control_path, when it gave one at join, to the
//     address of the member's last request, the KDC acting as client on the
//     member's context;
// a member that is gone gets nothing (its observations are dropped); one that
// left without its own DELETE (evicted) and gave a control_path gets a DELETE
// there. Everything goes out through the gate's queue (AceCoapGate::take_outgoing).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

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

  // attach installs this binding as `gate`'s KDC resource handler; pushes go
  // through `gate` (which must outlive the binding).
  void attach(ace::AceCoapGate& gate);

  // poll pushes the RekeyEvents the manager produced outside a request (e.g. a
  // rekey() on expiry); handle() does it after each request.
  void poll(int64_t now);

  // restore_control_paths: after a KDC restart, finds for every current member with a
  // control_path the /authz-info context its membership's token belongs to (a token
  // cti or the material id of the context's record) and remembers it, so that rekeys
  // reach the control path before the member's next request (the context's address
  // comes from the gate's push state). Returns how many members were found.
  size_t restore_control_paths();

  // Pushes: counters of what was queued (tests, logs).
  struct PushStats {
    uint64_t notifications = 0, control_posts = 0, control_deletes = 0;
  };
  const PushStats& push_stats() const { return stats_; }

 private:
  ace::AuthzInfo& authz_;
  ace::TokenStore& tokens_;
  kdc::Store& store_;
  // Known: a member's context and control_path as last seen.
  struct Known {
    ace::ContextKey via;
    std::string control_path;
  };
  // push: `requester` (may be null) caused the rekey and has the new material in
  // its answer already: no control_path POST to it. Its cost is O(observations +
  // members with a control_path) when nobody left since the previous rekey
  // (RekeyEvent::departures == 0, e.g. a rekey on join); otherwise it walks every
  // known member of the group to find the departed ones (and on the group's first push).
  void push(const RekeyEvent& e, const kdc::GroupState& g, const ace::ContextKey* requester);
  // learn_control_path records `key`'s member's control_path (from the group's
  // snapshot) for the POSTs of later pushes.
  void learn_control_path(const std::string& group, const std::string& node, Known& k);
  void process_events(const ace::ContextKey* requester);
  void note_request(const ace::ContextKey& via, const std::vector<std::string>& segs, uint8_t method,
                    const Response& out);

  GroupManager& mgr_;
  Observer observer_;
  ace::AceCoapGate* gate_ = nullptr;
  std::map<std::string, Known> known_;  // key: GROUP "/" NODENAME
  // with_control_path_: per group, the known_ nodes whose control_path is not empty.
  // walked_groups_: groups whose known_ entries a push has walked once; until then a
  // push walks them all (so entries known_ got without note_request, e.g. restored at
  // startup, join with_control_path_).
  std::map<std::string, std::set<std::string>, std::less<>> with_control_path_;
  std::set<std::string, std::less<>> walked_groups_;
  PushStats stats_;
};

}  // namespace acekdc::groupcomm
