// The key-push helpers of `acekdc serve` (serve_push.h). No subcommand of its own;
// the cmd_ prefix puts it into the acekdc binary's sources.
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "acekdc/serve_push.h"
#include "core/codepoints.h"
#include "groupcomm/params.h"

namespace acekdc::app {

coap::EndpointConfig push_endpoint_config(size_t max_queued) {
  coap::EndpointConfig c;
  c.max_queued_per_peer = max_queued;
  return c;
}

ace::PushDriver& push_driver(coap::Endpoint& ep, ace::AceCoapGate& gate) {
  static std::mutex mu;
  static std::map<coap::Endpoint*, std::unique_ptr<ace::PushDriver>> drivers;
  std::lock_guard<std::mutex> lock(mu);
  auto& d = drivers[&ep];
  if (!d) {
    d = std::make_unique<ace::PushDriver>(gate, ep, [](const std::string& line) {
      std::fprintf(stderr, "%s\n", line.c_str());
    });
  }
  return *d;
}

size_t notify_restored(ace::AceCoapGate& gate, kdc::Store& store) {
  size_t n = 0;
  for (uint64_t id : gate.restored_observations()) {
    std::string path;
    for (const auto& o : gate.observations())
      if (o.id == id) path = o.path;
    // ace-group/GROUPNAME/nodes/NODENAME
    const std::string prefix = "ace-group/";
    const size_t nodes = path.find("/nodes/");
    if (path.compare(0, prefix.size(), prefix) != 0 || nodes == std::string::npos) continue;
    const std::string group = path.substr(prefix.size(), nodes - prefix.size());
    const std::string node = path.substr(nodes + 7);
    auto g = store.group_snapshot(group);
    if (!g || !*g || !(*g)->members.count(node)) {
      gate.cancel_observation(id);  // the member (or its group) went while the KDC was down
      continue;
    }
    auto m = (*g)->members.find(node);
    groupcomm::KeyDistribution kd;
    kd.config = &(*g)->config;
    kd.key = &(*g)->key;
    if ((m->second.roles & ~ace::kRoleMonitor) != 0) kd.sender_id = ByteView(m->second.sender_id);
    auto payload = groupcomm::encode_key_distribution(kd);
    if (!payload) continue;
    coap::Message note(coap::Type::kCon, cp::coap::code::kContent, 0);
    note.set_uint(cp::coap::option::kContentFormat, cp::cf::kAceGroupcommCbor);
    note.payload = std::move(*payload);
    if (gate.notify(id, std::move(note))) ++n;
  }
  return n;
}

}  // namespace acekdc::app
