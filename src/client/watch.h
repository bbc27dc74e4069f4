// watch: receive the KDC's key pushes for one group membership (seed draft §4.2 /
// §7: Observe on nodes/NODENAME, or POSTs to the member's control_path) and store
// each new keying material in the member's StateDir.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "client/kdc_client.h"

namespace acekdc::client {

// Update: one piece of keying material received.
struct Update {
  GroupKeys keys;
  std::string via;     // "registration", "notification", "control_path", "poll"
  std::string reason;  // empty: the draft's payload does not say
  bool evicted = false;  // the KDC sent DELETE to the control path (keys empty)
};

struct WatchOptions {
  std::optional<Duration> duration;  // nullopt: until stopped (or the observation ends)
  int max_updates = 0;               // stop after this many pushed updates (0: no limit)
  // control: serve the control path on `listen` instead of observing; a GET
  // nodes/NODENAME is sent from that socket first so that the KDC learns the address.
  bool control = false;
  coap::Address listen;
  // poll: also GET nodes/NODENAME at this interval (the Key Update Check Interval),
  // reporting a version not seen yet; an ended observation is then not an error.
  std::optional<Duration> poll;
  const std::atomic<bool>* stop = nullptr;  // set to end the watch early (signal handler)
};

// watch calls `on_update` for the current material (via "registration") and for
// each push, after storing it. Returns when the duration passed, max_updates were
// seen, the member was evicted, or stop was set; kNoResponse if the KDC never
// answered the registration or the observation ended; kNotJoined without a
// session; kInvalidArgument for control mode when the join gave no control_path.
Expected<void, Failure> watch(GroupMember& member, UdpTransport& transport, const WatchOptions& options,
                              const std::function<void(const Update&)>& on_update);

}  // namespace acekdc::client
