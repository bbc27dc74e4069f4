#include "groupcomm/coap_binding.h"

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
  auto rec = tokens_.get(via);
  auto scope = authz_.scope_of(via, now);
  if (rec && scope && !rec->tokens.empty()) {
    const ace::StoredToken& t = rec->tokens.back();
    who.emplace();
    who->client_id = "osc:" + to_hex(rec->material_id);
    who->token_id = t.cti.empty() ? rec->material_id : t.cti;
    who->scope = *scope;
    who->rsnonce = rec->rsnonce;
    kdc::TokenRecord tr;
    tr.token_id = who->token_id;
    tr.client_id = who->client_id;
    tr.scope = ace::encode_scope(*scope);
    tr.exp = t.exp;
    if (auto p = store_.put_token(tr); !p) {
      resp.code = cp::coap::code::kServiceUnavailable;
      if (observer_.on_request) observer_.on_request(req, resp.code);
      return;
    }
  }
  Response out = mgr_.handle(who ? &*who : nullptr, r, now);
  if (!out.new_rsnonce.empty() && rec) {
    rec->rsnonce = out.new_rsnonce;
    (void)tokens_.put(*rec);  // on failure the client is asked for a new signature again
  }
  for (const auto& e : mgr_.take_events()) {
    if (!observer_.on_rekey) continue;
    auto g = store_.load_group(e.group);
    observer_.on_rekey(e, g ? ByteView(g->key.group_id) : ByteView{});
  }
  if (observer_.on_request) observer_.on_request(req, out.code);
  resp.code = out.code;
  for (const auto& l : out.location_path) resp.add_string(option::kLocationPath, l);
  if (out.content_format) resp.set_uint(option::kContentFormat, *out.content_format);
  resp.payload = std::move(out.payload);
}

}  // namespace acekdc::groupcomm
