// evict_for_inactive_token: what the KDC does when the AS says one of its installed
// access tokens is no longer active (RFC 9200 §5.9 introspection answered
// {active: false}, e.g. revoked): the token's record in the KDC store is marked
// dead (exp = now) and GroupManager evicts the members it no longer covers through
// its eviction-on-expiry path (a member stays when another live token of the same
// client covers the group; rekey per the group's policy, RekeyEvent::kEviction,
// Eviction records in take_evictions()). Header-only glue, called from
// ace::AuthzInfo's TokenInactiveHandler (acekdc serve).
//
// Call it while the member's OSCORE context still exists (the handler runs before
// the gate drops it) and then GroupCoapBinding::poll(now): the rekey is pushed and
// an evicted member's control_path gets its DELETE over that context.
#pragma once

#include "core/bytes.h"
#include "groupcomm/manager.h"
#include "kdc/store.h"

namespace acekdc::groupcomm {

// evict_for_inactive_token returns tick()'s report (num_evicted, num_rekeys). A
// token unknown to the store (never used at /ace-group) changes nothing there; the
// tick still runs. A store error on the token is returned as is.
inline Expected<TickReport, kdc::StoreError> evict_for_inactive_token(kdc::Store& store, GroupManager& mgr,
                                                                       ByteView token_id, int64_t now) {
  if (!token_id.empty()) {
    auto t = store.get_token(token_id);
    if (t) {
      t->exp = now;  // dead from now on (token_lifetime_for: 0 < exp <= now)
      if (auto p = store.put_token(*t); !p) return unexpected(p.error());
    } else if (t.error() != kdc::StoreError::kNotFound) {
      return unexpected(t.error());
    }
  }
  mgr.recheck_tokens();
  return mgr.tick(now);
}

}  // namespace acekdc::groupcomm
