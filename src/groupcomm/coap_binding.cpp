#include "groupcomm/coap_binding.h"

#include <iterator>
#include <string>
#include <vector>

#include "core/codepoints.h"
#include "core/hex.h"

namespace acekdc::groupcomm {

namespace option = cp::coap::option;

GroupCoapBinding::GroupCoapBinding(ace::AuthzInfo& authz, ace::TokenStore& tokens, kdc::Store& store,
                                   GroupManager& mgr, Observer observer)
    : authz_(authz), tokens_(tokens), store_(store), mgr_(mgr), observer_(std::move(observer)) {}

void GroupCoapBinding::attach(ace::AceCoapGate& gate) {
  gate_ = &gate;
  gate.set_kdc_resource_handler(
      [this](const ace::ContextKey& via, const coap::Message& req, coap::Message& resp, int64_t now) {
        handle(via, req, resp, now);
      });
}

void GroupCoapBinding::handle(const ace::ContextKey& via, const coap::Message& req, coap::Message& resp,
                              int64_t now) {
  std::vector<std::string> segs;
  for (const auto& o : req.options())
    if (o.number == option::kUriPath) segs.emplace_back(o.value.begin(), o.value.end());
  if (segs.empty() || segs[0] != "ace-group") return;
  Request r;
  r.method = req.code;
  for (const auto& s : segs) r.path.push_back(s);
  if (auto cf = req.get_uint(option::kContentFormat)) r.content_format = static_cast<uint16_t>(*cf);
  r.payload = req.payload;

  std::optional<Requester> who;
  // The client's record as the token store holds it (lent, not copied; nothing
  // below changes the token store before `who` is built).
  const ace::ClientRecord* rec = tokens_.find(via);
  auto scope = rec ? authz_.scope_of_record(*rec, now) : std::nullopt;
  if (rec && scope && !rec->tokens.empty()) {
    const ace::StoredToken& t = rec->tokens.back();
    who.emplace();
    who->client_id = "osc:" + to_hex(rec->material_id);
    who->token_id = t.cti.empty() ? rec->material_id : t.cti;
    who->scope = std::move(*scope);
    who->rsnonce = rec->rsnonce;
    kdc::TokenRecord tr;
    tr.token_id = who->token_id;
    tr.client_id = who->client_id;
    tr.scope = ace::encode_scope(who->scope);
    tr.exp = t.exp;
    if (auto p = store_.put_token(tr); !p) {
      resp.code = cp::coap::code::kServiceUnavailable;
      if (observer_.on_request) observer_.on_request(req, resp.code);
      return;
    }
  }
  Response out = mgr_.handle(who ? &*who : nullptr, r, now);
  if (!out.new_rsnonce.empty() && who) {
    if (const ace::ClientRecord* cur = tokens_.find(via)) {  // looked up again: lent records do not outlive changes
      ace::ClientRecord updated = *cur;
      updated.rsnonce = out.new_rsnonce;
      (void)tokens_.put_moved(std::move(updated));  // on failure the client is asked for a new signature again
    }
  }
  note_request(via, segs, req.code, out);
  // GET nodes/NODENAME with Observe: 0 answered 2.05: observable (the gate keeps it).
  const bool node_get = segs.size() == 4 && segs[2] == "nodes" && req.code == cp::coap::code::kGet;
  if (node_get && out.code == cp::coap::code::kContent && req.get_uint(option::kObserve) == 0u)
    resp.set_uint(option::kObserve, 0);
  process_events(&via);
  if (observer_.on_request) observer_.on_request(req, out.code);
  resp.code = out.code;
  for (const auto& l : out.location_path) resp.add_string(option::kLocationPath, l);
  if (out.content_format) resp.set_uint(option::kContentFormat, *out.content_format);
  resp.payload = std::move(out.payload);
}

void GroupCoapBinding::learn_control_path(const std::string& group, const std::string& node, Known& k) {
  auto g = store_.group_snapshot(group);  // shared, not a copy of the group
  if (!g) return;
  auto m = (*g)->members.find(node);
  k.control_path = m == (*g)->members.end() ? std::string() : m->second.control_path;
  if (!k.control_path.empty()) with_control_path_[group].insert(node);
}

void GroupCoapBinding::note_request(const ace::ContextKey& via, const std::vector<std::string>& segs,
                                    uint8_t method, const Response& out) {
  if (segs.size() < 2) return;
  const std::string& group = segs[1];
  if (segs.size() == 2 && method == cp::coap::code::kPost && out.code == cp::coap::code::kCreated &&
      !out.location_path.empty()) {
    const std::string& node = out.location_path.back();
    Known& k = known_[group + "/" + node];
    k = Known{via, {}};
    learn_control_path(group, node, k);
  } else if (segs.size() >= 4 && segs[2] == "nodes" && coap::code_class(out.code) == 2) {
    const std::string key = group + "/" + segs[3];
    if (segs.size() == 4 && method == cp::coap::code::kDelete) {
      known_.erase(key);  // left by itself: nothing more for it
      if (auto it = with_control_path_.find(group); it != with_control_path_.end()) it->second.erase(segs[3]);
    } else if (auto it = known_.find(key); it != known_.end()) {
      it->second.via = via;
    } else {
      Known& k = known_[key];
      k = Known{via, {}};
      learn_control_path(group, segs[3], k);
    }
  }
}

void GroupCoapBinding::poll(int64_t now) { process_events(nullptr); }

size_t GroupCoapBinding::restore_control_paths() {
  std::map<Bytes, ace::ContextKey> by_token;
  for (const auto& k : tokens_.keys()) {
    auto rec = tokens_.get(k);
    if (!rec) continue;
    by_token.emplace(rec->material_id, k);
    for (const auto& t : rec->tokens)
      if (!t.cti.empty()) by_token.emplace(t.cti, k);
  }
  auto names = store_.list_groups();
  if (!names) return 0;
  size_t n = 0;
  for (const auto& name : *names) {
    auto g = store_.group_snapshot(name);
    if (!g || !*g) continue;
    for (const auto& [node, m] : (*g)->members) {
      if (m.control_path.empty() || m.token_id.empty()) continue;
      auto it = by_token.find(m.token_id);
      if (it == by_token.end()) continue;
      known_[name + "/" + node] = Known{it->second, m.control_path};
      ++n;
    }
  }
  return n;
}

void GroupCoapBinding::process_events(const ace::ContextKey* requester) {
  for (const auto& e : mgr_.take_events()) {
    auto g = store_.group_snapshot(e.group);  // shared, not a copy of the group
    if (observer_.on_rekey) observer_.on_rekey(e, g ? ByteView((*g)->key.group_id) : ByteView{});
    if (g && gate_) push(e, **g, requester);
  }
}

void GroupCoapBinding::push(const RekeyEvent& e, const kdc::GroupState& g, const ace::ContextKey* requester) {
  auto distribution = [&](const kdc::Member& m) -> std::optional<Bytes> {
    KeyDistribution kd;
    kd.config = &g.config;
    kd.key = &g.key;
    if ((m.roles & ~ace::kRoleMonitor) != 0) kd.sender_id = ByteView(m.sender_id);
    auto p = encode_key_distribution(kd);
    if (!p) return std::nullopt;
    return std::move(*p);
  };
  // Observations on /ace-group/G/nodes/NODENAME.
  const std::string prefix = "ace-group/" + g.config.name + "/nodes/";
  std::vector<std::pair<uint64_t, std::string>> obs;
  for (const auto& o : gate_->observations())
    if (o.path.size() > prefix.size() && o.path.compare(0, prefix.size(), prefix) == 0)
      obs.emplace_back(o.id, o.path.substr(prefix.size()));
  for (const auto& [id, node] : obs) {
    auto m = g.members.find(node);
    if (m == g.members.end()) {
      gate_->cancel_observation(id);  // gone: gets nothing
      continue;
    }
    auto payload = distribution(m->second);
    if (!payload) continue;
    coap::Message n(coap::Type::kCon, cp::coap::code::kContent, 0);
    n.set_uint(option::kContentFormat, cp::cf::kAceGroupcommCbor);
    n.payload = std::move(*payload);
    if (gate_->notify(id, std::move(n))) ++stats_.notifications;
  }
  // control_path: POST to the members that gave one, DELETE to the evicted.
  const std::string& group = g.config.name;
  std::set<std::string>& with_path = with_control_path_[group];
  // visit handles one known member: returns false when it is gone (entry dropped).
  auto visit = [&](std::map<std::string, Known>::iterator it, const std::string& node) -> bool {
    auto m = g.members.find(node);
    if (m == g.members.end()) {
      if (!it->second.control_path.empty()) {
        coap::Message del(coap::Type::kCon, cp::coap::code::kDelete, 0);
        del.set_uri_path(it->second.control_path);
        if (gate_->send_request(it->second.via, std::move(del))) ++stats_.control_deletes;
      }
      with_path.erase(node);
      known_.erase(it);
      return false;
    }
    it->second.control_path = m->second.control_path;
    if (m->second.control_path.empty()) {
      with_path.erase(node);
      return true;
    }
    with_path.insert(node);
    if (!(requester && it->second.via == *requester)) {
      auto payload = distribution(m->second);
      if (payload) {
        coap::Message post(coap::Type::kCon, cp::coap::code::kPost, 0);
        post.set_uri_path(m->second.control_path);
        post.set_uint(option::kContentFormat, cp::cf::kAceGroupcommCbor);
        post.payload = std::move(*payload);
        if (gate_->send_request(it->second.via, std::move(post))) ++stats_.control_posts;
      }
    }
    return true;
  };
  const std::string gprefix = group + "/";
  const bool first_push = walked_groups_.insert(group).second;
  if (e.departures > 0 || first_push) {
    // Someone left since the previous rekey (or this group was never walked): find
    // them among every known member.
    for (auto it = known_.lower_bound(gprefix);
         it != known_.end() && it->first.compare(0, gprefix.size(), gprefix) == 0;) {
      auto next = std::next(it);
      visit(it, it->first.substr(gprefix.size()));
      it = next;
    }
  } else {
    // Everyone known is still a member: only the control paths need a message.
    const std::vector<std::string> nodes(with_path.begin(), with_path.end());
    for (const auto& node : nodes) {
      auto it = known_.find(gprefix + node);
      if (it == known_.end()) {
        with_path.erase(node);
        continue;
      }
      visit(it, node);
    }
  }
  (void)e;
}

}  // namespace acekdc::groupcomm
