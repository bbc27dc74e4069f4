#include "coap/server.h"

#include <algorithm>

namespace acekdc::coap {

void error_response(Message& resp, uint8_t c, std::string_view diagnostic) {
  resp.code = c;
  resp.clear_options();
  resp.set_payload(diagnostic);
  if (!diagnostic.empty()) resp.set_uint(option::kContentFormat, cp::cf::kTextPlain);
}

std::optional<std::string_view> Request::query(std::string_view key) const {
  for (const OptionView& o : message.options()) {
    if (o.number != option::kUriQuery) continue;
    std::string_view q = as_string(o.value);
    if (q.substr(0, key.size()) != key) continue;
    if (q.size() == key.size()) return std::string_view();
    if (q[key.size()] == '=') return q.substr(key.size() + 1);
  }
  return std::nullopt;
}

std::vector<std::string_view> Request::queries() const {
  std::vector<std::string_view> r;
  for (const OptionView& o : message.options())
    if (o.number == option::kUriQuery) r.push_back(as_string(o.value));
  return r;
}

struct Server::Observer {
  Address peer;
  Bytes token;
  Message request;  // the registering GET (options replayed for each notification)
  TimePoint last_con{};
  bool con_pending = false;
};

struct Server::Block1State {
  Address peer;
  std::string path;
  Bytes request_tag;
  Bytes body;
  TimePoint expiry{};
  uint16_t content_format = 0xffff;
};

Server::Server(Endpoint& ep, ServerConfig cfg) : ep_(ep), cfg_(cfg) {
  ep_.set_request_handler([this](RequestContext& ctx) { on_request(ctx); });
}

Server::~Server() { ep_.set_request_handler(nullptr); }

Resource& Server::add(std::string_view path) {
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  auto it = resources_.find(p);
  if (it != resources_.end()) return *it->second;
  auto r = std::make_unique<Resource>();
  r->path = p;
  Resource& ref = *r;
  resources_.emplace(p, std::move(r));
  return ref;
}

bool Server::remove(std::string_view path) {
  auto it = resources_.find(path);
  if (it == resources_.end()) return false;
  resources_.erase(it);
  auto [b, e] = observers_.equal_range(path);
  observers_.erase(b, e);
  return true;
}

Resource* Server::find(std::string_view path) {
  auto it = resources_.find(path);
  return it == resources_.end() ? nullptr : it->second.get();
}

size_t Server::num_observers(std::string_view path) const {
  auto [b, e] = observers_.equal_range(path);
  return static_cast<size_t>(std::distance(b, e));
}
size_t Server::num_observers() const { return observers_.size(); }

static bool contains(const std::vector<uint16_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

static constexpr std::string_view kWellKnownCore = "/.well-known/core";

void Server::on_request(RequestContext& ctx) {
  const MessageView& m = ctx.request;
  // path from Uri-Path options
  std::string& path = path_scratch_;
  path.clear();
  for (const OptionView& o : m.options()) {
    if (o.number != option::kUriPath) continue;
    path += '/';
    path.append(as_string(o.value));
  }
  if (path.empty()) path = "/";
  if (path == kWellKnownCore && !find(path)) {
    if (m.code != code::kGet) {
      error_response(ctx.response, code::kMethodNotAllowed, "Method Not Allowed");
      return;
    }
    std::string_view filter;
    if (auto q = m.find(option::kUriQuery)) filter = as_string(q->value);
    ctx.response.code = code::kContent;
    ctx.response.set_uint(option::kContentFormat, cp::cf::kLinkFormat);
    ctx.response.set_payload(link_format(filter));
    apply_block2(&m, ctx.response);
    return;
  }
  Resource* r = find(path);
  if (!r) {
    if (!ctx.multicast) error_response(ctx.response, code::kNotFound, "Not Found");
    return;
  }
  const uint8_t method = m.code;
  if (method > 7 || !r->handlers[method]) {
    error_response(ctx.response, code::kMethodNotAllowed, "Method Not Allowed");
    return;
  }
  auto cf = m.get_uint(option::kContentFormat);
  if (!r->accepted_formats.empty() && (cf || !m.payload.empty()) && (!cf || !contains(r->accepted_formats, *cf))) {
    error_response(ctx.response, code::kUnsupportedContentFormat, "Unsupported Content-Format");
    return;
  }
  auto accept = m.get_uint(option::kAccept);
  if (accept && !r->produced_formats.empty() && !contains(r->produced_formats, *accept)) {
    error_response(ctx.response, code::kNotAcceptable, "Not Acceptable");
    return;
  }

  // Block1 (RFC 7959 §2.5): reassemble the request body
  if (const OptionView* b1o = m.find(option::kBlock1)) {
    auto b1 = BlockValue::decode(b1o->value);
    if (!b1) {
      error_response(ctx.response, code::kBadRequest, "Bad Block1 option");
      return;
    }
    if (auto size1 = m.get_uint(option::kSize1); size1 && *size1 > cfg_.max_body_size) {
      error_response(ctx.response, code::kRequestEntityTooLarge, "Request Entity Too Large");
      ctx.response.set_uint(option::kSize1, static_cast<uint32_t>(cfg_.max_body_size));
      return;
    }
    ByteView tag;
    if (auto t = m.find(option::kRequestTag)) tag = t->value;
    // drop expired transfers
    std::erase_if(block1_, [&](const auto& s) { return s->expiry <= ctx.now; });
    auto it = std::find_if(block1_.begin(), block1_.end(), [&](const auto& s) {
      return s->peer == ctx.peer && s->path == path && equal(s->request_tag, tag);
    });
    if (b1->num == 0) {
      if (it == block1_.end()) {
        if (block1_.size() >= cfg_.max_block1_transfers) block1_.erase(block1_.begin());
        block1_.push_back(std::make_unique<Block1State>());
        it = block1_.end() - 1;
      }
      (*it)->peer = ctx.peer;
      (*it)->path = path;
      (*it)->request_tag = to_bytes(tag);
      (*it)->body.clear();
      (*it)->content_format = cf ? static_cast<uint16_t>(*cf) : 0xffff;
    } else if (it == block1_.end() || (*it)->body.size() != b1->offset()) {
      if (it != block1_.end()) block1_.erase(it);
      error_response(ctx.response, code::kRequestEntityIncomplete, "Request Entity Incomplete");
      return;
    }
    Block1State& st = **it;
    if (b1->more && m.payload.size() != b1->size()) {
      block1_.erase(it);
      error_response(ctx.response, code::kBadRequest, "Block1 payload size mismatch");
      return;
    }
    if (st.body.size() + m.payload.size() > cfg_.max_body_size) {
      block1_.erase(it);
      error_response(ctx.response, code::kRequestEntityTooLarge, "Request Entity Too Large");
      ctx.response.set_uint(option::kSize1, static_cast<uint32_t>(cfg_.max_body_size));
      return;
    }
    st.body.insert(st.body.end(), m.payload.begin(), m.payload.end());
    st.expiry = ctx.now + cfg_.block1_lifetime;
    if (b1->more) {
      ctx.response.code = code::kContinue;
      ctx.response.set_uint(option::kBlock1, BlockValue{b1->num, true, b1->szx}.encode());
      return;
    }
    Bytes body = std::move(st.body);
    block1_.erase(it);
    dispatch(ctx, *r, body, path);
    if (!ctx.deferred() && ctx.response.code != 0)
      ctx.response.set_uint(option::kBlock1, BlockValue{b1->num, false, b1->szx}.encode());
    return;
  }
  dispatch(ctx, *r, m.payload, path);
}

void Server::dispatch(RequestContext& ctx, Resource& r, ByteView payload, std::string_view path) {
  const MessageView& m = ctx.request;
  std::optional<uint32_t> obs;
  if (m.code == code::kGet && r.observable) obs = m.get_uint(option::kObserve);
  if (obs && *obs == cp::coap::observe::kDeregister) remove_observer(r.path, ctx.peer, m.token);
  Request req(m, ctx.peer, ctx.multicast, ctx.now, payload, path, &ctx);
  r.handlers[m.code](req, ctx.response);
  if (ctx.deferred()) return;
  Message& resp = ctx.response;
  if (obs && *obs == cp::coap::observe::kRegister && code_class(resp.code) == 2 && !ctx.multicast) {
    // RFC 7641 §4.1: register (or replace the registration with the same token)
    remove_observer(r.path, ctx.peer, m.token);
    if (observers_.size() < cfg_.max_observers) {
      auto o = std::make_unique<Observer>();
      o->peer = ctx.peer;
      o->token = to_bytes(m.token);
      o->request = Message::from_view(m);
      o->request.remove(option::kBlock2);
      o->request.remove(option::kObserve);
      o->last_con = ctx.now;
      observers_.emplace(r.path, std::move(o));
      resp.set_uint(option::kObserve, r.observe_seq);
    }
  } else if (m.code == code::kGet && !obs && r.observable && !m.has(option::kBlock2)) {
    // RFC 7641 §3.6: a GET without Observe and the same token ends the observation
    remove_observer(r.path, ctx.peer, m.token);
  }
  apply_block2(&m, resp);
}

void Server::apply_block2(const MessageView* req, Message& resp) {
  if (code_class(resp.code) != 2) return;
  uint8_t szx = BlockValue::szx_for_size(cfg_.block_size);
  uint32_t num = 0;
  bool asked = false;
  if (req) {
    if (const OptionView* b2o = req->find(option::kBlock2)) {
      auto b2 = BlockValue::decode(b2o->value);
      if (!b2) {
        error_response(resp, code::kBadRequest, "Bad Block2 option");
        return;
      }
      asked = true;
      if (b2->szx < szx) {
        szx = b2->szx;
        num = b2->num;
      } else {
        // server uses larger blocks than asked? use ours; map the offset
        num = static_cast<uint32_t>(b2->offset() / BlockValue{0, false, szx}.size());
      }
    }
  }
  size_t size = BlockValue{0, false, szx}.size();
  if (!asked && resp.payload.size() <= size) return;
  size_t total = resp.payload.size();
  size_t off = size_t{num} * size;
  if (off >= total && !(off == 0 && total == 0)) {
    error_response(resp, code::kBadOption, "Block out of range");
    return;
  }
  size_t len = std::min(size, total - off);
  bool more = off + len < total;
  if (num == 0 || (req && req->has(option::kSize2))) resp.set_uint(option::kSize2, static_cast<uint32_t>(total));
  resp.set_uint(option::kBlock2, BlockValue{num, more, szx}.encode());
  if (off > 0 || len < total) {
    Bytes slice(resp.payload.begin() + off, resp.payload.begin() + off + len);
    resp.payload = std::move(slice);
  }
}

void Server::remove_observer(const std::string& path, const Address& peer, ByteView token) {
  auto [b, e] = observers_.equal_range(path);
  for (auto it = b; it != e;) {
    if (it->second->peer == peer && equal(it->second->token, token)) {
      it = observers_.erase(it);
    } else {
      ++it;
    }
  }
}

void Server::notify(std::string_view path) {
  Resource* r = find(path);
  if (!r) return;
  r->observe_seq = (r->observe_seq + 1) % cp::coap::observe::kSequenceModulus;
  TimePoint now = ep_.clock().now();
  // collect first: sending may call back into remove_observer
  std::vector<std::pair<Address, Bytes>> keys;
  auto [b, e] = observers_.equal_range(path);
  for (auto it = b; it != e; ++it) keys.emplace_back(it->second->peer, it->second->token);
  for (const auto& [peer, token] : keys) {
    auto [b2, e2] = observers_.equal_range(path);
    for (auto it = b2; it != e2; ++it) {
      if (it->second->peer == peer && it->second->token == token) {
        send_notification(*r, *it->second, now);
        break;
      }
    }
  }
}

void Server::send_notification(Resource& r, Observer& o, TimePoint now) {
  auto enc = o.request.encode();
  if (!enc) return;
  auto view = MessageView::parse(*enc);
  if (!view || !r.handlers[code::kGet]) return;
  Message resp;
  std::string path = r.path;
  Request req(*view, o.peer, false, now, view->payload, path, nullptr);
  r.handlers[code::kGet](req, resp);
  if (resp.code == 0) return;
  Address peer = o.peer;
  Bytes token = o.token;
  resp.token = token;
  bool ends = code_class(resp.code) != 2;
  if (!ends) resp.set_uint(option::kObserve, r.observe_seq);
  apply_block2(nullptr, resp);
  bool con = r.con_notifications || now - o.last_con >= cfg_.con_notification_interval || ends;
  resp.type = con ? Type::kCon : Type::kNon;
  if (con) o.last_con = now;
  std::string rpath = r.path;
  if (response_hook_ && !response_hook_(peer, token, resp)) {
    remove_observer(rpath, peer, token);
    return;
  }
  if (ends) remove_observer(rpath, peer, token);
  ep_.send(peer, std::move(resp), [this, rpath, peer, token](SendStatus st) {
    // RFC 7641 §3.6 / §4.5: RST or a CON that times out removes the observer
    if (st != SendStatus::kAcked) remove_observer(rpath, peer, token);
  });
}

void Server::respond_later(const DeferredResponse& d, Message response, SendCallback done) {
  apply_block2(nullptr, response);
  if (response_hook_) {
    response.token = d.token;
    if (!response_hook_(d.peer, d.token, response)) return;
  }
  ep_.send_separate(d, std::move(response), std::move(done));
}

static bool attr_matches(std::string_view value, std::string_view pattern) {
  // RFC 6690 §4.1: relation types are space-separated lists; each element is
  // compared, and a trailing '*' makes the comparison a prefix match.
  bool prefix = !pattern.empty() && pattern.back() == '*';
  if (prefix) pattern.remove_suffix(1);
  if (prefix && value.substr(0, pattern.size()) == pattern) return true;
  while (!value.empty()) {
    size_t sp = value.find(' ');
    std::string_view elem = value.substr(0, sp);
    if (prefix ? elem.substr(0, pattern.size()) == pattern : elem == pattern) return true;
    if (sp == std::string_view::npos) break;
    value.remove_prefix(sp + 1);
  }
  return false;
}

std::string Server::link_format(std::string_view filter) const {
  std::string_view fkey, fval;
  if (!filter.empty()) {
    size_t eq = filter.find('=');
    fkey = filter.substr(0, eq);
    fval = eq == std::string_view::npos ? std::string_view() : filter.substr(eq + 1);
  }
  std::string out;
  for (const auto& [path, r] : resources_) {
    if (r->hidden) continue;
    std::string ct;
    for (size_t i = 0; i < r->attrs.ct.size(); ++i) ct += (i ? " " : "") + std::to_string(r->attrs.ct[i]);
    if (!fkey.empty()) {
      std::string_view v;
      if (fkey == "rt") v = r->attrs.rt;
      else if (fkey == "if") v = r->attrs.if_;
      else if (fkey == "ct") v = ct;
      else if (fkey == "title") v = r->attrs.title;
      else if (fkey == "href") v = path;
      else if (fkey == "obs") { if (!r->observable) continue; }
      else continue;
      if (fkey != "obs" && !attr_matches(v, fval)) continue;
    }
    if (!out.empty()) out += ',';
    out += '<';
    out += path;
    out += '>';
    if (!r->attrs.rt.empty()) out += ";rt=\"" + r->attrs.rt + "\"";
    if (!r->attrs.if_.empty()) out += ";if=\"" + r->attrs.if_ + "\"";
    if (!ct.empty()) out += r->attrs.ct.size() == 1 ? ";ct=" + ct : ";ct=\"" + ct + "\"";
    if (r->observable) out += ";obs";
    if (!r->attrs.title.empty()) out += ";title=\"" + r->attrs.title + "\"";
    if (r->attrs.sz) out += ";sz=" + std::to_string(r->attrs.sz);
  }
  return out;
}

}  // namespace acekdc::coap
