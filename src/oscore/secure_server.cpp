#include "oscore/secure_server.h"

#include <algorithm>

#include "oscore/option.h"

namespace acekdc::oscore {

namespace opt = cp::coap::option;
namespace ccode = cp::coap::code;

// Entry: one peer, either with a key update Session or with a B2Server.
struct SecureServer::Entry {
  ContextId id = 0;
  std::unique_ptr<Session> session;
  std::unique_ptr<B2Server> b2;
  ByteView recipient_id() const {
    return session ? session->current().recipient_id() : ByteView(b2->config().base.params.recipient_id);
  }
  std::optional<ByteView> id_context() const {
    const auto& idc = session ? session->current().params().id_context : b2->config().base.params.id_context;
    if (!idc) return std::nullopt;
    return ByteView(*idc);
  }
};

// PendingExchange: a protected request whose response(s) the Server sends on its
// own later (a deferred response, Observe notifications).
struct SecureServer::PendingExchange {
  coap::Address peer;
  Bytes token;
  ContextId id = 0;
  Exchange exchange;
  bool observe = false;  // notifications follow; kept until a non-2.xx one
};

// OuterBlock1: one OSCORE request being reassembled from outer Block1
// fragments (RFC 8613 §4.1.3.4.2). `key` is the OSCORE option value and the
// Request-Tag options: the fragments of one OSCORE message share them.
struct SecureServer::OuterBlock1 {
  coap::Address peer;
  Bytes key;
  Bytes body;
  TimePoint started;
};

SecureServer::SecureServer(coap::Endpoint& ep, coap::Server& server, Random& random, const Clock& clock,
                           SecureServerConfig cfg)
    : ep_(ep), server_(server), random_(random), clock_(clock), cfg_(cfg) {
  // A reassembled request may be as large as MAX_UNFRAGMENTED_SIZE.
  inner_buf_.resize(std::max(cfg_.max_message_len, cfg_.max_unfragmented_size));
  outer_buf_.resize(cfg_.max_message_len);
  ep_.set_request_handler([this](coap::RequestContext& ctx) { on_request(ctx); });
  server_.set_response_hook(
      [this](const coap::Address& peer, ByteView token, coap::Message& resp) { return on_outgoing(peer, token, resp); });
}

SecureServer::~SecureServer() {
  server_.set_response_hook(nullptr);
  // hand the Endpoint back to the plain Server
  ep_.set_request_handler([s = &server_](coap::RequestContext& ctx) { s->handle_request(ctx); });
}

Expected<ContextId, Error> SecureServer::add_context(std::unique_ptr<Context> ctx, KeyUpdateConfig kcfg) {
  if (!ctx) return unexpected(Error::kInvalidArgument);
  return add_session(std::make_unique<Session>(Role::kServer, std::move(ctx), random_, clock_, kcfg));
}

Expected<ContextId, Error> SecureServer::add_session(std::unique_ptr<Session> session) {
  if (!session) return unexpected(Error::kInvalidArgument);
  auto e = std::make_unique<Entry>();
  e->session = std::move(session);
  return add_entry(std::move(e));
}

Expected<ContextId, Error> SecureServer::add_b2(std::unique_ptr<B2Server> b2) {
  if (!b2) return unexpected(Error::kInvalidArgument);
  auto e = std::make_unique<Entry>();
  e->b2 = std::move(b2);
  return add_entry(std::move(e));
}

Expected<ContextId, Error> SecureServer::add_entry(std::unique_ptr<Entry> e) {
  const auto idc = e->id_context();
  for (const auto& c : contexts_) {
    if (!equal(e->recipient_id(), c->recipient_id())) continue;
    // A B.2 peer takes any ID Context for its kid: no other context may share the kid.
    if (e->b2 || c->b2) return unexpected(Error::kInvalidArgument);
    const auto other = c->id_context();
    const bool same_idc = idc.has_value() == other.has_value() && (!idc || equal(*idc, *other));
    if (same_idc) return unexpected(Error::kInvalidArgument);
  }
  e->id = next_id_++;
  const ContextId id = e->id;
  contexts_.push_back(std::move(e));
  return id;
}

bool SecureServer::matches(const Entry& e, const OptionValue& ov) const {
  if (e.session) return e.session->current().matches_request(ov);
  return ov.kid && equal(*ov.kid, e.recipient_id());
}

B2Server* SecureServer::b2(ContextId id) {
  Entry* e = entry(id);
  return e ? e->b2.get() : nullptr;
}

bool SecureServer::remove_context(ContextId id) {
  auto it = std::find_if(contexts_.begin(), contexts_.end(), [&](const auto& e) { return e->id == id; });
  if (it == contexts_.end()) return false;
  contexts_.erase(it);
  std::erase_if(pending_, [&](const auto& p) { return p->id == id; });
  return true;
}

SecureServer::Entry* SecureServer::entry(ContextId id) {
  for (auto& e : contexts_)
    if (e->id == id) return e.get();
  return nullptr;
}

Session* SecureServer::session(ContextId id) {
  Entry* e = entry(id);
  return e ? e->session.get() : nullptr;
}

std::optional<ContextId> SecureServer::find_context(ByteView kid, std::optional<ByteView> kid_context) const {
  OptionValue ov;
  ov.kid = kid;
  ov.kid_context = kid_context;
  for (const auto& e : contexts_)
    if (matches(*e, ov)) return e->id;
  return std::nullopt;
}

void SecureServer::allow_unprotected(std::string_view path) {
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  unprotected_paths_.insert(std::move(p));
}

void SecureServer::disallow_unprotected(std::string_view path) {
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  unprotected_paths_.erase(p);
}

void SecureServer::forget(const coap::Address& peer, ByteView token) {
  std::erase_if(pending_, [&](const auto& p) { return p->peer == peer && equal(p->token, token); });
  std::erase_if(plain_, [&](const auto& p) { return p.first == peer && equal(p.second, token); });
}

void SecureServer::on_request(coap::RequestContext& ctx) {
  current_.reset();
  if (ctx.request.has(opt::kOscore)) {
    if (ctx.request.has(opt::kBlock1)) return handle_outer_block1(ctx);
    handle_protected(ctx);
    return;
  }
  // An unprotected request: only where the policy allows it.
  if (!cfg_.allow_unprotected_all) {
    std::string path;
    for (const coap::OptionView& o : ctx.request.options()) {
      if (o.number != opt::kUriPath) continue;
      path += '/';
      path.append(as_string(o.value));
    }
    if (path.empty()) path.push_back('/');  // (not = "/": GCC 12 -Wrestrict false positive, PR 105329)
    if (!unprotected_paths_.contains(path)) {
      ++stats_.rejected;
      coap::error_response(ctx.response, ccode::kUnauthorized, "OSCORE required");
      return;
    }
  }
  forget(ctx.peer, ctx.request.token);  // the token no longer names a protected exchange
  ++stats_.unprotected_requests;
  if (observer_) observer_(std::nullopt, ctx.request, ctx.peer);
  inflight_ = Inflight{&ctx.peer, ctx.request.token, nullptr, nullptr};
  server_.handle_request(ctx);
  inflight_.reset();
  // Later responses of the Server to this exchange go out unprotected (on_outgoing).
  const bool observed = ctx.request.has(opt::kObserve) && ctx.response.has(opt::kObserve);
  if (ctx.deferred() || observed) {
    if (plain_.size() >= cfg_.max_exchanges) plain_.erase(plain_.begin());
    plain_.emplace_back(ctx.peer, to_bytes(ctx.request.token));
  }
}

void SecureServer::handle_outer_block1(coap::RequestContext& ctx) {
  const coap::MessageView& req = ctx.request;
  auto refuse = [&](uint8_t code, const char* diagnostic) {
    ++stats_.outer_block1_refused;
    coap::error_response(ctx.response, code, diagnostic);
  };
  const coap::OptionView* b1o = req.find(opt::kBlock1);
  auto b1 = req.count(opt::kBlock1) == 1 && b1o ? coap::BlockValue::decode(b1o->value) : std::nullopt;
  if (!b1) return refuse(ccode::kBadRequest, "Bad Block1");
  // The fragments of one OSCORE message carry the same OSCORE option (and Request-Tag).
  Bytes key;
  for (const coap::OptionView& o : req.options()) {
    if (o.number != opt::kOscore && o.number != opt::kRequestTag) continue;
    key.push_back(static_cast<uint8_t>(o.number >> 8));
    key.push_back(static_cast<uint8_t>(o.number));
    key.push_back(static_cast<uint8_t>(o.value.size()));
    key.insert(key.end(), o.value.begin(), o.value.end());
  }
  std::erase_if(outer_block1_, [&](const auto& t) { return ctx.now - t->started >= cfg_.outer_block1_lifetime; });
  auto it = std::find_if(outer_block1_.begin(), outer_block1_.end(),
                         [&](const auto& t) { return t->peer == ctx.peer && equal(t->key, key); });
  const size_t limit = cfg_.max_unfragmented_size;
  auto too_large = [&] {
    refuse(ccode::kRequestEntityTooLarge, "Request Entity Too Large");
    ctx.response.set_uint(opt::kSize1, static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
  };
  if (b1->num == 0) {
    if (it != outer_block1_.end()) outer_block1_.erase(it);
    if (auto size1 = req.get_uint(opt::kSize1); size1 && *size1 > limit) return too_large();
    if (outer_block1_.size() >= cfg_.max_outer_block1_transfers) outer_block1_.erase(outer_block1_.begin());
    auto t = std::make_unique<OuterBlock1>();
    t->peer = ctx.peer;
    t->key = std::move(key);
    t->started = ctx.now;
    outer_block1_.push_back(std::move(t));
    it = outer_block1_.end() - 1;
  } else if (it == outer_block1_.end() || b1->offset() != (*it)->body.size()) {
    if (it != outer_block1_.end()) outer_block1_.erase(it);
    return refuse(ccode::kRequestEntityIncomplete, "Request Entity Incomplete");
  }
  OuterBlock1& t = **it;
  // RFC 7959 §2.2: every block but the last carries exactly the block size.
  if (b1->more && req.payload.size() != b1->size()) {
    outer_block1_.erase(it);
    return refuse(ccode::kBadRequest, "Bad Block1");
  }
  if (t.body.size() + req.payload.size() > limit) {
    outer_block1_.erase(it);
    return too_large();
  }
  t.body.insert(t.body.end(), req.payload.begin(), req.payload.end());
  if (b1->more) {
    ctx.response.code = ccode::kContinue;
    ctx.response.set_uint(opt::kBlock1, b1->encode());
    return;
  }
  // The last block: the whole OSCORE message, processed as if it had come in one
  // datagram (header, token and outer options of the last block).
  coap::Message whole = coap::Message::from_view(req);
  whole.remove(opt::kBlock1);
  whole.remove(opt::kSize1);
  whole.payload = std::move(t.body);
  outer_block1_.erase(it);
  auto enc = whole.encode();
  if (!enc) return refuse(ccode::kBadRequest, "Bad Block1");
  reassembled_ = std::move(*enc);
  auto view = coap::MessageView::parse(reassembled_, ep_.config().limits);
  if (!view) return refuse(ccode::kBadRequest, "Bad Block1");
  ++stats_.outer_block1_reassembled;
  coap::RequestContext whole_ctx(*view, ctx.peer, ctx.multicast, ctx.response, ctx.now);
  whole_ctx.datagram = reassembled_;
  handle_protected(whole_ctx);
  if (whole_ctx.deferred()) {
    (void)ctx.defer();
    return;
  }
  // RFC 7959 §2.3: the final response names the last block (an Outer option).
  if (ctx.response.code != 0) ctx.response.set_uint(opt::kBlock1, coap::BlockValue{b1->num, false, b1->szx}.encode());
}

void SecureServer::reject(coap::RequestContext& ctx, Error e) {
  ++stats_.rejected;
  auto answer = error_response(e);
  if (!answer) {
    ctx.response.code = 0;  // dropped silently (a CON is still ACKed)
    return;
  }
  // RFC 8613 §8.2: unprotected, Max-Age 0, optional diagnostic payload.
  coap::error_response(ctx.response, answer->code, answer->diagnostic);
  ctx.response.set_uint(opt::kMaxAge, 0);
}

bool SecureServer::protect_into(Entry& e, const coap::Message& inner, Exchange& ex, const ProtectOptions& po,
                                coap::Message& outer) {
  auto n = e.session ? e.session->protect_response(inner, ex, outer_buf_, po)
                     : e.b2->protect_response(inner, ex, outer_buf_, po);
  if (!n) {
    ++stats_.protect_failures;
    return false;
  }
  auto v = coap::MessageView::parse(ByteView(outer_buf_.data(), *n));
  if (!v) {
    ++stats_.protect_failures;
    return false;
  }
  if (protect_observer_ && e.session) protect_observer_(e.id, *e.session, ByteView(outer_buf_.data(), *n));
  // Rewritten in place (type, message ID and token stay: the Endpoint sets
  // them for a piggybacked response, the Server already did for the others).
  outer.code = v->code;
  outer.clear_options();
  for (const coap::OptionView& o : v->options()) outer.add_option(o.number, o.value);
  outer.payload.assign(v->payload.begin(), v->payload.end());
  return true;
}

void SecureServer::handle_protected(coap::RequestContext& ctx) {
  // The message and option the Endpoint already parsed: verified from these
  // views, never parsed or copied again (also for a request built above the
  // Endpoint, which has no datagram).
  if (ctx.request.count(opt::kOscore) != 1) return reject(ctx, Error::kMalformedOption);
  auto ov = parse_option(ctx.request.find(opt::kOscore)->value);
  if (!ov) return reject(ctx, ov.error());
  if (!ov->kid) return reject(ctx, Error::kMalformedOption);  // a request carries kid (§6.1)
  // §8.2 step 2: every context the kid / kid context select is tried in turn
  // until one verifies.
  Entry* e = nullptr;
  Exchange ex;
  Expected<size_t, Error> n = unexpected(Error::kContextNotFound);
  bool send_response1 = false;
  // A Session hands the verified request over as a view (into inner_buf_ and
  // the outer message); a B2Server writes a datagram, parsed below.
  coap::MessageView inner;
  bool have_inner = false;
  for (auto& c : contexts_) {
    if (!matches(*c, *ov)) continue;
    e = c.get();
    if (e->b2) {
      // Appendix B.2 works on datagrams: the Endpoint's, or the request re-encoded.
      ByteView d = ctx.datagram;
      if (d.empty()) {
        auto enc = coap::Message::from_view(ctx.request).encode();
        if (!enc) return reject(ctx, Error::kMalformedMessage);
        b2_datagram_ = std::move(*enc);
        d = b2_datagram_;
      }
      auto r = e->b2->unprotect_request(d, inner_buf_, ex);
      if (r) {
        n = r->len;
        send_response1 = r->action == B2Action::kSendResponse1;
      } else {
        n = unexpected(r.error());
      }
    } else {
      n = e->session->unprotect_request(ctx.request, *ov, inner_buf_, ex, &inner);
      have_inner = n.has_value();
    }
    if (n || n.error() != Error::kDecryptionFailed) break;
  }
  if (!e) return reject(ctx, Error::kContextNotFound);
  if (n && send_response1) {
    // Appendix B.2 step 2: request #1 verified but not acted on; response #1 is
    // a 4.01 Unauthorized under CTX2 with 'kid context' R2.
    coap::Message r1(ctx.request.type, ccode::kUnauthorized);
    r1.token.assign(ctx.request.token.begin(), ctx.request.token.end());
    ++stats_.b2_responses1;
    if (!protect_into(*e, r1, ex, ProtectOptions{}, ctx.response)) ctx.response.code = 0;
    return;
  }
  if (!n) {
    if (n.error() != Error::kEchoRequired || !e->session) return reject(ctx, n.error());
    // Appendix B.1.2 / RFC 9175: a protected 4.01 carrying our Echo challenge,
    // under our own Partial IV.
    Context& cur = e->session->current();
    // The Session names the context that verified the request (CTX_1, CTX_NEW
    // after a restart mid-update); the challenge goes out under it.
    if (ex.context_tag == 0) ex.context_tag = cur.tag();
    coap::Message challenge(ctx.request.type, ccode::kUnauthorized);
    challenge.token.assign(ctx.request.token.begin(), ctx.request.token.end());
    challenge.set_option(opt::kEcho, cur.echo_challenge());
    ProtectOptions po;
    po.partial_iv = true;
    ++stats_.echo_challenges;
    if (!protect_into(*e, challenge, ex, po, ctx.response)) ctx.response.code = 0;
    return;
  }
  if (!have_inner) {
    auto parsed = coap::MessageView::parse(ByteView(inner_buf_.data(), *n), ep_.config().limits);
    if (!parsed) return reject(ctx, Error::kMalformedMessage);
    inner = *parsed;
  } else if (inner.num_options() > std::min(ep_.config().limits.max_options, coap::kMaxOptions)) {
    // The Endpoint's parser limit applies to the decrypted request too.
    return reject(ctx, Error::kMalformedMessage);
  }
  ++stats_.protected_requests;
  forget(ctx.peer, ctx.request.token);

  coap::Message& iresp = inner_resp_;
  iresp.code = 0;
  iresp.clear_options();
  iresp.payload.clear();
  coap::RequestContext ictx(inner, ctx.peer, ctx.multicast, iresp, ctx.now);
  current_ = e->id;
  if (observer_) observer_(e->id, inner, ctx.peer);
  inflight_ = Inflight{&ctx.peer, ctx.request.token, e, &ex};
  responded_inflight_ = false;
  server_.handle_request(ictx);
  inflight_.reset();
  current_.reset();

  auto remember = [&](bool observe) {
    if (pending_.size() >= cfg_.max_exchanges) pending_.erase(pending_.begin());
    auto p = std::make_unique<PendingExchange>();
    p->peer = ctx.peer;
    p->token = to_bytes(ctx.request.token);
    p->id = e->id;
    p->exchange = ex;
    // 'id detail' belongs to the first response of a key update only: kept for
    // a separate response, dropped for the notifications after a piggybacked one.
    if (observe) p->exchange.id_detail_len = 0;
    p->observe = observe;
    pending_.push_back(std::move(p));
  };
  if (ictx.deferred()) {
    // §8.3: the separate response will be protected with a fresh Partial IV
    // when the Server sends it (on_outgoing), unless the handler already did.
    (void)ctx.defer();
    if (!responded_inflight_) remember(false);
    return;
  }
  if (iresp.code == 0) {
    ctx.response.code = 0;
    return;
  }
  iresp.type = inner.type;
  iresp.token.assign(inner.token.begin(), inner.token.end());
  if (!e->session || (!reassembled_.empty() && ctx.datagram.data() == reassembled_.data())) {
    // A B.2 peer (no Session), or a request reassembled from outer Block1
    // (handle_outer_block1 answers on the Endpoint's own context and adds an
    // outer Block1 to the response): the response is rewritten in place.
    if (!protect_into(*e, iresp, ex, ProtectOptions{}, ctx.response)) {
      ctx.response.code = 0;
      return;
    }
  } else {
    // Piggybacked: the protected datagram goes out as it is (the Endpoint sets
    // only type and message ID in its header), not parsed and re-encoded.
    auto sealed = e->session->protect_response(iresp, ex, outer_buf_, ProtectOptions{});
    if (!sealed) {
      ++stats_.protect_failures;
      ctx.response.code = 0;
      return;
    }
    const ByteView outer(outer_buf_.data(), *sealed);
    if (protect_observer_) protect_observer_(e->id, *e->session, outer);
    ctx.response.code = outer[1];  // the outer code (2.04 / 2.05), for the Endpoint's rules
    ctx.encoded_response = outer;
  }
  // The Server registered an observer: its notifications come through on_outgoing.
  if (inner.has(opt::kObserve) && iresp.has(opt::kObserve) && coap::code_class(iresp.code) == 2) {
    remember(true);
  }
}

bool SecureServer::on_outgoing(const coap::Address& peer, ByteView token, coap::Message& resp) {
  if (inflight_ && *inflight_->peer == peer && equal(inflight_->token, token)) {
    // sent by the handler while its request is being dispatched
    if (!inflight_->entry) return true;
    ProtectOptions po;
    po.partial_iv = true;
    responded_inflight_ = true;
    return protect_into(*inflight_->entry, resp, *inflight_->exchange, po, resp);
  }
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p->peer == peer && equal(p->token, token); });
  if (it == pending_.end()) {
    // An unprotected exchange the policy allowed: sent as it is. Anything else
    // (a protected exchange dropped from the table) is not sent at all.
    auto pit = std::find_if(plain_.begin(), plain_.end(),
                            [&](const auto& p) { return p.first == peer && equal(p.second, token); });
    if (pit == plain_.end()) return false;
    if (!resp.has(opt::kObserve) || coap::code_class(resp.code) != 2) plain_.erase(pit);
    return true;
  }
  PendingExchange& p = **it;
  Entry* e = entry(p.id);
  if (!e) {
    pending_.erase(it);
    return false;
  }
  // Notifications and separate responses: always a fresh Partial IV (§8.3 step 3).
  ProtectOptions po;
  po.partial_iv = true;
  const bool ends = !p.observe || coap::code_class(resp.code) != 2 || !resp.has(opt::kObserve);
  bool ok = protect_into(*e, resp, p.exchange, po, resp);
  if (ends || !ok) pending_.erase(std::find_if(pending_.begin(), pending_.end(), [&](const auto& q) {
    return q->peer == peer && equal(q->token, token);
  }));
  return ok;
}

}  // namespace acekdc::oscore
