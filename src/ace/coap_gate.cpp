#include "ace/coap_gate.h"

#include <algorithm>

#include "core/codepoints.h"
#include "core/hex.h"

namespace acekdc::ace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;

namespace {

constexpr std::string_view kTokenPath = "token";
constexpr std::string_view kIntrospectPath = "introspect";
constexpr std::string_view kAuthzInfoPath = "authz-info";

std::string path_of(const coap::Message& m) {
  std::string p = m.uri_path();
  if (!p.empty() && p.front() == '/') p.erase(0, 1);
  return p;
}

// response_to builds the response skeleton for `req` (piggy-backed ACK or NON).
coap::Message response_to(const coap::Message& req, uint8_t c) {
  coap::Message r(req.type == coap::Type::kCon ? coap::Type::kAck : coap::Type::kNon, c, req.message_id);
  r.token = req.token;
  return r;
}

void set_body(coap::Message& r, uint8_t c, Bytes payload, bool ace_cbor) {
  r.code = c;
  r.payload = std::move(payload);
  if (ace_cbor && !r.payload.empty()) r.set_uint(option::kContentFormat, cp::cf::kAceCbor);
}

// path_is: the request's Uri-Path is the single segment `name` (what path_of
// compares, without building the string).
bool path_is(const coap::MessageView& m, std::string_view name) {
  const coap::OptionView* found = nullptr;
  for (const coap::OptionView& o : m.options()) {
    if (o.number != option::kUriPath) continue;
    if (found) return false;
    found = &o;
  }
  return found && as_string(found->value) == name;
}

// ace_cbor_answer: a response view whose only option is Content-Format
// application/ace+cbor (RFC 9200 §8.16), parsed once from static bytes; the caller
// sets type, code, message ID, token and payload (public fields of the view).
const coap::MessageView& ace_cbor_answer() {
  static constexpr uint8_t kCf = static_cast<uint8_t>(cp::cf::kAceCbor);
  static_assert(cp::cf::kAceCbor >= 1 && cp::cf::kAceCbor <= 0xff && option::kContentFormat < 13);
  // ACK 2.01, MID 0, no token; one option (delta 12, length 1: the minimal uint of
  // the Content-Format), payload marker and one payload byte.
  static const uint8_t kBytes[] = {0x60, code::kCreated, 0, 0, static_cast<uint8_t>((option::kContentFormat << 4) | 1),
                                   kCf, 0xff, 0};
  static const coap::MessageView view = *coap::MessageView::parse(ByteView(kBytes, sizeof kBytes));
  return view;
}

// kdc_sequence_key names a KDC context's sequence counter by its ContextKey (unique
// among live contexts; the Sender ID, chosen by the client, is not).
std::string kdc_sequence_key(const ContextKey& k) {
  return "kdc." + (k.id_context ? to_hex(*k.id_context) : std::string("-")) + "." + to_hex(k.recipient_id);
}

}  // namespace

AceCoapGate::AceCoapGate(crypto::Provider& provider, size_t max_datagram)
    : provider_(provider), max_datagram_(max_datagram), scratch_(max_datagram) {}

void AceCoapGate::add_peer(std::string identity, std::unique_ptr<oscore::Context> ctx) {
  const std::string rid(as_string(ctx->config().params.recipient_id));
  peer_by_recipient_[rid].push_back(peers_.size());
  peers_.push_back(Peer{std::move(identity), std::move(ctx)});
}

void AceCoapGate::add_kdc(KdcContext k) {
  const ByteView rid = k.key.recipient_id;
  auto it = kdc_by_recipient_.find(as_string(rid));
  if (it == kdc_by_recipient_.end()) it = kdc_by_recipient_.try_emplace(std::string(as_string(rid))).first;
  it->second.push_back(std::move(k));
  ++num_kdc_contexts_;
}

std::vector<AceCoapGate::KdcContext>* AceCoapGate::kdc_bucket(ByteView recipient_id) {
  auto it = kdc_by_recipient_.find(as_string(recipient_id));
  return it == kdc_by_recipient_.end() ? nullptr : &it->second;
}

void AceCoapGate::drop_kdc(const ContextKey& key) {
  auto it = kdc_by_recipient_.find(as_string(key.recipient_id));
  if (it == kdc_by_recipient_.end()) return;
  num_kdc_contexts_ -= std::erase_if(it->second, [&](const KdcContext& k) { return k.key == key; });
  if (it->second.empty()) kdc_by_recipient_.erase(it);
}

AceCoapGate::KdcContext* AceCoapGate::find_kdc(const ContextKey& key) {
  auto* bucket = kdc_bucket(key.recipient_id);
  if (!bucket) return nullptr;
  for (KdcContext& k : *bucket)
    if (k.key == key) return &k;
  return nullptr;
}

oscore::Context* AceCoapGate::kdc_context(const ContextKey& key) {
  KdcContext* k = find_kdc(key);
  return k ? k->ctx.get() : nullptr;
}

void AceCoapGate::adopt(const TokenPostResult& r) {
  if (r.replaced) {
    drop_kdc(*r.replaced);
    drop_context_push_state(*r.replaced);
  }
  if (!r.established) return;
  oscore::ContextConfig cfg;
  cfg.params = r.established->params;
  cfg.derived_keys = r.established->keys;  // derived once, by AuthzInfo's check
  cfg.store = seq_store_;
  cfg.store_key = kdc_sequence_key(r.established->key);
  auto ctx = oscore::Context::create(provider_, std::move(cfg));
  if (!ctx) return;  // AuthzInfo already checked the derivation; nothing else can fail here
  drop_kdc(r.established->key);
  drop_context_push_state(r.established->key);
  add_kdc(KdcContext{r.established->key, std::move(*ctx), std::nullopt});
}

size_t AceCoapGate::restore_kdc_contexts(const TokenStore& store) {
  size_t n = 0;
  for (const auto& key : store.keys()) {
    auto rec = store.get(key);
    if (!rec || !rec->context || kdc_context(key)) continue;
    oscore::ContextConfig cfg;
    cfg.params = *rec->context;
    cfg.store = seq_store_;
    cfg.store_key = kdc_sequence_key(key);
    // The replay window of before the restart is unknown: a request accepted then could
    // be replayed now. The first request must carry the Echo challenge (RFC 8613
    // Appendix B.1.2), which initialises the window at its Partial IV.
    cfg.replay_window_initialised = false;
    cfg.random = &provider_.random();
    auto ctx = oscore::Context::create(provider_, std::move(cfg));
    if (!ctx) continue;
    add_kdc(KdcContext{key, std::move(*ctx), std::nullopt});
    ++n;
  }
  return n;
}

std::vector<ContextKey> AceCoapGate::purge(int64_t now) {
  if (!kdc_) return {};
  auto gone = kdc_->purge(now);
  for (const auto& g : gone) {
    drop_kdc(g);
    drop_context_push_state(g);
  }
  return gone;
}

Bytes AceCoapGate::handle(ByteView datagram, int64_t now, const coap::Address& from) {
  from_ = &from;
  Bytes out = handle(datagram, now);
  from_ = nullptr;
  return out;
}

std::optional<coap::Address> AceCoapGate::peer_of(const ContextKey& key) const {
  auto it = kdc_by_recipient_.find(as_string(key.recipient_id));
  if (it == kdc_by_recipient_.end()) return std::nullopt;
  for (const KdcContext& k : it->second)
    if (k.key == key) return k.peer;
  return std::nullopt;
}

void AceCoapGate::cancel_observation(uint64_t id) {
  auto it = std::lower_bound(observations_.begin(), observations_.end(), id,
                             [](const Observation& o, uint64_t v) { return o.id < v; });
  if (it == observations_.end() || it->id != id) return;
  if (auto c = obs_by_ctx_.find(ctx_index_key(it->via)); c != obs_by_ctx_.end()) {
    std::erase(c->second, id);
    if (c->second.empty()) obs_by_ctx_.erase(c);
  }
  observations_.erase(it);
  unsent_.erase(id);  // its unsent notification goes with it (never protected)
  if (push_store_) note(push_store_->erase_observation(id));
}

std::string AceCoapGate::ctx_index_key(const ContextKey& k) {
  std::string s(1, static_cast<char>(k.recipient_id.size()));
  s.append(reinterpret_cast<const char*>(k.recipient_id.data()), k.recipient_id.size());
  if (k.id_context) {
    s.push_back('\1');
    s.append(reinterpret_cast<const char*>(k.id_context->data()), k.id_context->size());
  }
  return s;
}

std::vector<uint64_t> AceCoapGate::observations_of(const ContextKey& key) const {
  auto c = obs_by_ctx_.find(ctx_index_key(key));
  return c == obs_by_ctx_.end() ? std::vector<uint64_t>{} : c->second;
}

const AceCoapGate::Observation* AceCoapGate::find_observation(uint64_t id) const {
  auto it = std::lower_bound(observations_.begin(), observations_.end(), id,
                             [](const Observation& o, uint64_t v) { return o.id < v; });
  return it == observations_.end() || it->id != id ? nullptr : &*it;
}

void AceCoapGate::drop_context_push_state(const ContextKey& key) {
  for (uint64_t id : observations_of(key)) cancel_observation(id);
  std::erase_if(pending_requests_, [&](const auto& p) { return p.second.via == key; });
  if (push_store_) note(push_store_->erase_context(key));  // its peer and observations
}

uint32_t AceCoapGate::next_observe_value() {
  const uint32_t v = observe_seq_++ % cp::coap::observe::kSequenceModulus;
  // With a push store the values continue across restarts: reserve ahead in chunks.
  if (push_store_ && observe_seq_ >= observe_reserved_) {
    observe_reserved_ = observe_seq_ + 4096;
    note(push_store_->put_observe_mark(observe_reserved_));
  }
  return v;
}

Expected<size_t, StoreError> AceCoapGate::restore_push_state() {
  restored_.clear();
  if (!push_store_) return size_t{0};
  auto st = push_store_->load();
  if (!st) return unexpected(st.error());
  observe_seq_ = std::max(observe_seq_, st->observe_mark);
  observe_reserved_ = observe_seq_;  // the next notification reserves a new chunk first
  for (const auto& [key, peer] : st->peers) {
    KdcContext* k = find_kdc(key);
    auto addr = coap::Address::parse(peer);
    if (!k || !addr) {
      note(push_store_->erase_context(key));
      continue;
    }
    k->peer = *addr;
  }
  for (const auto& o : st->observations) {
    KdcContext* k = find_kdc(o.via);
    auto addr = coap::Address::parse(o.peer);
    if (!k || !addr || o.request_kid.size() > oscore::kMaxNonceLen || o.request_piv.size() > 5) {
      note(push_store_->erase_observation(o.id));
      continue;
    }
    Observation ob;
    ob.id = o.id;
    ob.via = o.via;
    ob.peer = *addr;
    ob.token = o.token;
    ob.path = o.path;
    std::copy(o.request_kid.begin(), o.request_kid.end(), ob.exchange.kid.begin());
    ob.exchange.kid_len = static_cast<uint8_t>(o.request_kid.size());
    std::copy(o.request_piv.begin(), o.request_piv.end(), ob.exchange.piv.begin());
    ob.exchange.piv_len = static_cast<uint8_t>(o.request_piv.size());
    ob.exchange.observe = true;
    ob.exchange.nonce_used = true;  // the registration's answer used the request nonce
    ob.ctx = k->ctx.get();
    next_observation_ = std::max(next_observation_, o.id + 1);
    restored_.push_back(o.id);
    obs_by_ctx_[ctx_index_key(ob.via)].push_back(ob.id);
    observations_.push_back(std::move(ob));
  }
  std::sort(observations_.begin(), observations_.end(),
            [](const Observation& a, const Observation& b) { return a.id < b.id; });
  return restored_.size();
}

std::vector<AceCoapGate::Outgoing> AceCoapGate::take_outgoing() {
  for (uint64_t id : unclaimed_)
    if (auto o = protect_unsent(id)) outgoing_.push_back(std::move(*o));
  unclaimed_.clear();
  std::vector<Outgoing> out;
  out.swap(outgoing_);
  return out;
}

bool AceCoapGate::notify(uint64_t id, coap::Message response) {
  auto it = std::lower_bound(observations_.begin(), observations_.end(), id,
                             [](const Observation& o, uint64_t v) { return o.id < v; });
  if (it == observations_.end() || it->id != id) return false;
  if (!it->ctx) {
    cancel_observation(id);
    return false;
  }
  auto [u, fresh] = unsent_.insert_or_assign(id, std::move(response));
  if (fresh) unclaimed_.push_back(id);
  return true;
}

std::vector<AceCoapGate::Unsent> AceCoapGate::take_unsent() {
  std::vector<Unsent> out;
  out.reserve(unclaimed_.size());
  for (uint64_t id : unclaimed_) {
    auto it = std::lower_bound(observations_.begin(), observations_.end(), id,
                               [](const Observation& o, uint64_t v) { return o.id < v; });
    if (it != observations_.end() && it->id == id && unsent_.count(id)) out.push_back(Unsent{id, it->peer});
  }
  unclaimed_.clear();
  return out;
}

std::optional<AceCoapGate::Outgoing> AceCoapGate::protect_unsent(uint64_t id) {
  auto u = unsent_.find(id);
  if (u == unsent_.end()) return std::nullopt;
  coap::Message response = std::move(u->second);
  unsent_.erase(u);
  auto it = std::lower_bound(observations_.begin(), observations_.end(), id,
                             [](const Observation& o, uint64_t v) { return o.id < v; });
  if (it == observations_.end() || it->id != id) return std::nullopt;
  oscore::Context* ctx = it->ctx;
  response.type = coap::Type::kCon;
  response.message_id = 0;
  response.token = it->token;
  response.set_uint(option::kObserve, next_observe_value());
  oscore::ProtectOptions po;
  po.partial_iv = true;  // every notification gets its own nonce (RFC 8613 §8.3)
  // Protected into the scratch buffer and copied at its size: a fan-out to N
  // observers keeps N small datagrams, not N buffers of max_datagram bytes.
  auto n = ctx ? ctx->protect_response(response, it->exchange, scratch_, po)
               : unexpected(oscore::Error::kContextNotFound);
  if (!n) {
    cancel_observation(id);
    return std::nullopt;
  }
  return Outgoing{it->peer, Bytes(scratch_.begin(), scratch_.begin() + *n), id, 0};
}

bool AceCoapGate::send_request(const ContextKey& via, coap::Message request) {
  KdcContext* it = find_kdc(via);
  if (!it || !it->peer) return false;
  request.type = coap::Type::kCon;
  request.message_id = 0;
  request.token = {0x6b};
  oscore::Exchange ex;
  auto n = it->ctx->protect_request(request, scratch_, ex);
  if (!n) return false;
  Bytes out(scratch_.begin(), scratch_.begin() + *n);
  const uint64_t id = next_request_++;
  // The oldest unanswered request is forgotten beyond the bound (its answer is then
  // reported as unknown).
  if (pending_requests_.size() >= max_pending_requests_) pending_requests_.erase(pending_requests_.begin());
  pending_requests_.emplace(id, PendingRequest{via, ex});
  outgoing_.push_back(Outgoing{*it->peer, std::move(out), 0, id});
  return true;
}

Expected<uint8_t, oscore::Error> AceCoapGate::check_answer(uint64_t request, ByteView datagram) {
  auto p = pending_requests_.find(request);
  if (p == pending_requests_.end()) return unexpected(oscore::Error::kContextNotFound);
  PendingRequest pr = std::move(p->second);
  pending_requests_.erase(p);
  oscore::Context* ctx = kdc_context(pr.via);
  if (!ctx) return unexpected(oscore::Error::kContextNotFound);
  if (datagram.size() > max_datagram_) return unexpected(oscore::Error::kMalformedMessage);
  auto n = ctx->unprotect_response(datagram, pr.exchange, scratch_);
  if (!n) return unexpected(n.error());
  auto inner = coap::MessageView::parse(ByteView(scratch_.data(), *n));
  if (!inner) return unexpected(oscore::Error::kMalformedMessage);
  return inner->code;
}

void AceCoapGate::forget_request(uint64_t request) { pending_requests_.erase(request); }

Bytes AceCoapGate::handle(ByteView datagram, int64_t now) {
  last_parked_ = 0;
  if (datagram.size() > max_datagram_) return {};
  auto view = coap::MessageView::parse(datagram);
  if (!view) return {};
  if (coap::code_class(view->code) != 0 || view->code == code::kEmpty) return {};
  if (view->type != coap::Type::kCon && view->type != coap::Type::kNon) return {};
  if (view->has(option::kOscore)) return handle_protected(*view, datagram, now);
  return handle_plain(*view, now);
}

Bytes AceCoapGate::handle_plain(const coap::MessageView& view, int64_t now) {
  coap::Message req = coap::Message::from_view(view);
  coap::Message resp = response_to(req, code::kNotFound);
  const std::string path = path_of(req);
  if (path == kAuthzInfoPath && kdc_) {
    if (req.code != code::kPost) {
      set_body(resp, code::kMethodNotAllowed, {}, false);
    } else {
      TokenPostResult r = kdc_->handle_token_post(req.payload, now);
      if (r.introspection_pending) {  // deferred introspection: answered later
        Parked p;
        p.token = std::move(*r.introspection_pending);
        p.resp = resp;
        p.payload = req.payload;
        if (park(std::move(p), resp)) return {};
      } else {
        if (r.code == code::kCreated) adopt(r);
        set_body(resp, r.code, std::move(r.payload), r.ace_cbor);
      }
    }
  } else if ((path == kTokenPath || path == kIntrospectPath) && as_) {
    // Not authenticated: the AS answers invalid_client.
    AsResponse r = as_->handle_token("", req.payload, now);
    set_body(resp, r.code, std::move(r.payload), true);
  }
  auto out = resp.encode();
  return out ? std::move(*out) : Bytes{};
}

// oscore_error_answer is the one place that maps an OSCORE failure to the answer:
// kEchoRequired (a restored context whose replay window is not initialised yet) gets an
// OSCORE-protected 4.01 with Inner Echo = the challenge, under the server's own Partial
// IV (the exchange says so); anything else the unprotected RFC 8613 error response.
Bytes AceCoapGate::oscore_error_answer(const coap::MessageView& outer, ByteView datagram, oscore::Error error,
                                       oscore::Context* ctx, oscore::Exchange* ex) {
  if (error == oscore::Error::kEchoRequired && ctx && ex) {
    coap::Message resp(outer.type == coap::Type::kCon ? coap::Type::kAck : coap::Type::kNon, code::kUnauthorized,
                       outer.message_id);
    resp.token = to_bytes(outer.token);
    resp.set_option(option::kEcho, to_bytes(ctx->echo_challenge()));
    Bytes out(max_datagram_);
    auto m = ctx->protect_response(resp, *ex, out);
    if (!m) return {};
    out.resize(*m);
    ++num_echo_challenges_;
    return out;
  }
  auto e = oscore::build_error_response(datagram, error, scratch_);
  return e ? Bytes(scratch_.begin(), scratch_.begin() + *e) : Bytes{};
}

Bytes AceCoapGate::handle_protected(const coap::MessageView& outer, ByteView datagram, int64_t now) {
  auto opt = oscore::find_oscore_option(outer);  // `outer` is parsed already
  if (!opt) return oscore_error_answer(outer, datagram, opt.error(), nullptr, nullptr);
  oscore::Context* ctx = nullptr;
  const Peer* peer = nullptr;
  KdcContext* client = nullptr;
  if (opt->kid) {  // the AS's peers by Recipient ID: no scan of every client per request
    if (auto it = peer_by_recipient_.find(as_string(*opt->kid)); it != peer_by_recipient_.end()) {
      for (size_t i : it->second) {
        if (peers_[i].ctx->matches_request(*opt)) {
          ctx = peers_[i].ctx.get();
          peer = &peers_[i];
          break;
        }
      }
    }
  }
  if (!ctx && opt->kid) {  // a request without kid matches no context
    if (auto* bucket = kdc_bucket(*opt->kid)) {
      for (KdcContext& k : *bucket) {
        if (k.ctx->matches_request(*opt)) {
          ctx = k.ctx.get();
          client = &k;
          break;
        }
      }
    }
  }
  if (!ctx) return oscore_error_answer(outer, datagram, oscore::Error::kContextNotFound, nullptr, nullptr);
  // The plaintext goes to the scratch buffer, viewed by `inner` (valid until the
  // scratch buffer is written again: the answer is protected into it).
  oscore::Exchange ex;
  coap::MessageView inner;
  auto n = ctx->unprotect_request(outer, *opt, scratch_, ex, &inner);
  if (!n) return oscore_error_answer(outer, datagram, n.error(), ctx, &ex);
  if (peer && as_) {
    const bool token = path_is(inner, kTokenPath);
    if (token || path_is(inner, kIntrospectPath)) return answer_as(outer, inner, *peer, *ctx, ex, token, now);
  }
  if (client && from_ && client->peer != *from_) {
    client->peer = *from_;
    if (push_store_) note(push_store_->put_peer(client->key, from_->to_string()));
  }
  coap::Message req = coap::Message::from_view(inner);
  coap::Message resp = response_to(req, code::kNotFound);
  resp.type = outer.type == coap::Type::kCon ? coap::Type::kAck : coap::Type::kNon;
  resp.message_id = outer.message_id;
  resp.token = to_bytes(outer.token);
  const std::string path = path_of(req);
  const bool as_path = (path == kTokenPath || path == kIntrospectPath) && peer && as_;
  const bool kdc_path = path == kAuthzInfoPath && client && kdc_;
  std::optional<ContextKey> register_as;  // an Observe registration to keep
  if (req.code != code::kPost && (as_path || kdc_path)) {
    set_body(resp, code::kMethodNotAllowed, {}, false);
  } else if (path == kTokenPath && peer && as_) {
    AsResponse r = as_->handle_token(peer->identity, req.payload, now);
    set_body(resp, r.code, std::move(r.payload), true);
  } else if (path == kIntrospectPath && peer && as_) {
    AsResponse r = as_->handle_introspect(peer->identity, req.payload, now);
    set_body(resp, r.code, std::move(r.payload), true);
  } else if (path == kAuthzInfoPath && client && kdc_) {
    ContextKey key = client->key;  // copy: the update does not touch contexts
    TokenPostResult r = kdc_->handle_token_update(key, req.payload, now);
    if (r.introspection_pending) {  // deferred introspection: answered later
      Parked p;
      p.token = std::move(*r.introspection_pending);
      p.over_oscore = true;
      p.via = key;
      p.ex = ex;
      p.resp = resp;
      p.payload = req.payload;
      if (park(std::move(p), resp)) return {};
    } else {
      set_body(resp, r.code, std::move(r.payload), r.ace_cbor);
    }
  } else if (client && kdc_resources_ && path != kAuthzInfoPath) {
    ContextKey key = client->key;  // copy: the handler may not keep references into the gate
    kdc_resources_(key, req, resp, now);
    // Observe (RFC 7641): the handler marks an observable answer with an Observe option.
    const auto obs = req.get_uint(option::kObserve);
    const bool observable = obs && *obs == cp::coap::observe::kRegister && coap::code_class(resp.code) == 2 &&
                            resp.find(option::kObserve) && from_;
    // A registration or deregistration replaces / ends the observation with its token.
    if (obs) {
      for (uint64_t id : observations_of(key)) {
        const Observation* o = find_observation(id);
        if (o && equal(o->token, resp.token)) cancel_observation(id);
      }
    }
    if (observable) {
      const auto mine = observations_of(key);  // ascending: the oldest first
      if (mine.size() >= max_observations_per_context_) cancel_observation(mine.front());
      resp.set_uint(option::kObserve, next_observe_value());
      register_as = key;
    } else {
      resp.remove(option::kObserve);
    }
  }
  // Protected into the scratch buffer and copied at its size (no zero-filled
  // max_datagram buffer per answer).
  // An Observe registration's answer carries its own Partial IV: the context's first
  // sender sequence chunk is reserved (persisted) now, while the member registers,
  // not for every member at once in the first rekey's fan-out (a synchronous
  // reservation per context: two fsyncs each with serve's FileSequenceStore).
  oscore::ProtectOptions rpo;
  rpo.partial_iv = register_as.has_value();
  auto m = ctx->protect_response(resp, ex, scratch_, rpo);
  if (!m) return {};
  Bytes out(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(*m));
  if (register_as) {
    obs_by_ctx_[ctx_index_key(*register_as)].push_back(next_observation_);
    observations_.push_back(Observation{next_observation_++, *register_as, *from_, resp.token, path, ex, ctx});
    if (push_store_) {
      const Observation& o = observations_.back();
      note(push_store_->put_observation(PushObservation{o.id, o.via, o.peer.to_string(), o.token, o.path,
                                                        to_bytes(ex.request_kid()), to_bytes(ex.request_piv())}));
    }
  }
  return out;
}

// answer_as serves POST /token or /introspect of an AS peer: the payload goes from
// the decrypted request (a view into the scratch buffer) to the AS, the inner answer
// is a view of the AS's payload, protected into the scratch buffer; no coap::Message
// is built and nothing is re-parsed.
Bytes AceCoapGate::answer_as(const coap::MessageView& outer, const coap::MessageView& inner, const Peer& peer,
                             oscore::Context& ctx, oscore::Exchange& ex, bool token_path, int64_t now) {
  // A token answer is a view into the AS (written there, no allocation); valid
  // until the AS's next call, i.e. through the protection below.
  AsResponse introspected;
  AsResponseView r;
  if (inner.code != code::kPost) {
    r.code = code::kMethodNotAllowed;  // no payload, no Content-Format (as set_body)
  } else if (token_path) {
    r = as_->handle_token_view(peer.identity, inner.payload, now);
  } else {
    introspected = as_->handle_introspect(peer.identity, inner.payload, now);
    r = AsResponseView{introspected.code, introspected.payload};
  }
  // The inner response: the exchange's type, message ID and token (the outer ones),
  // the AS's code, Content-Format application/ace+cbor with a payload. The option
  // comes from a view parsed once; the payload stays where the AS wrote it.
  coap::MessageView resp = r.payload.empty() ? coap::MessageView{} : ace_cbor_answer();
  resp.type = outer.type == coap::Type::kCon ? coap::Type::kAck : coap::Type::kNon;
  resp.code = r.code;
  resp.message_id = outer.message_id;
  resp.token = outer.token;
  resp.payload = r.payload;
  auto m = ctx.protect_response(resp, ex, scratch_);
  if (!m) return {};
  return Bytes(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(*m));
}

// ---- deferred introspection ----

bool AceCoapGate::park(Parked p, coap::Message& resp) {
  if (parked_.size() >= max_parked_) {
    // Too many POSTs wait for the AS: try again later (RFC 7252 §5.9.3.4). The
    // request this POST just queued is not sent (one already in flight goes on).
    if (kdc_) kdc_->drop_unsent_introspection(p.token);
    set_body(resp, code::kServiceUnavailable, to_bytes(as_bytes(std::string_view("introspection busy"))), false);
    resp.set_uint(option::kMaxAge, busy_max_age_s_);
    return false;
  }
  p.id = next_parked_++;
  last_parked_ = p.id;
  parked_.push_back(std::move(p));
  return true;
}

std::vector<PendingIntrospection> AceCoapGate::take_introspections() {
  return kdc_ ? kdc_->take_pending_introspections() : std::vector<PendingIntrospection>{};
}

Bytes AceCoapGate::finish_parked(Parked& p, int64_t now) {
  coap::Message& resp = p.resp;
  KdcContext* k = nullptr;
  if (p.over_oscore) {
    k = find_kdc(p.via);
    if (!k) return {};  // the context went meanwhile: nothing can protect an answer
    TokenPostResult r = kdc_->handle_token_update(p.via, p.payload, now);
    if (r.introspection_pending)
      set_body(resp, code::kServiceUnavailable, to_bytes(as_bytes(std::string_view("introspection: no answer"))),
               false);
    else
      set_body(resp, r.code, std::move(r.payload), r.ace_cbor);
    Bytes out(max_datagram_);
    auto m = k->ctx->protect_response(resp, p.ex, out);
    if (!m) return {};
    out.resize(*m);
    return out;
  }
  TokenPostResult r = kdc_->handle_token_post(p.payload, now);
  if (r.introspection_pending) {
    set_body(resp, code::kServiceUnavailable, to_bytes(as_bytes(std::string_view("introspection: no answer"))),
             false);
  } else {
    if (r.code == code::kCreated) adopt(r);
    set_body(resp, r.code, std::move(r.payload), r.ace_cbor);
  }
  auto out = resp.encode();
  return out ? std::move(*out) : Bytes{};
}

AceCoapGate::IntrospectionDone AceCoapGate::complete_introspection(ByteView token,
                                                                   const std::optional<IntrospectionReply>& reply,
                                                                   int64_t now) {
  IntrospectionDone done;
  if (!kdc_) return done;
  kdc_->deliver_introspection(token, reply, now);
  std::vector<Parked> mine;
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (equal(it->token, token)) {
      mine.push_back(std::move(*it));
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& p : mine) done.answers.push_back(Completed{p.id, finish_parked(p, now)});
  // Re-checks of installed tokens take their answer here (an inactive one goes).
  done.dropped = purge(now);
  kdc_->release_introspection(token);
  return done;
}

}  // namespace acekdc::ace
