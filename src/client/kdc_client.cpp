#include "client/kdc_client.h"

#include "cbor/value.h"
#include "coap/uri.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "io/client.h"
#include "io/udp.h"

namespace acekdc::client {

namespace code = cp::coap::code;
namespace option = cp::coap::option;

namespace {

Unexpected<Failure> fail(Error e, std::string detail = {}, uint8_t c = 0) {
  return unexpected(Failure{e, c, std::move(detail)});
}

constexpr size_t kMaxDatagram = 8192;

}  // namespace

Failure refused(const char* what, const coap::Message& r) {
  std::string diag;
  if (!r.find(option::kContentFormat)) diag = std::string(as_string(r.payload));
  std::string d = std::string(what) + ": " + coap::code_string(r.code);
  if (!diag.empty()) d += " " + diag;
  return Failure{Error::kRefused, r.code, d};
}

// ---- UdpTransport ----

UdpTransport::UdpTransport() : client_(std::make_unique<io::BlockingClient>()) {}
UdpTransport::~UdpTransport() = default;

Expected<Bytes, Failure> UdpTransport::exchange(const coap::Address& peer, ByteView request, Duration wait) {
  auto m = coap::Message::parse(request);
  if (!m) return fail(Error::kInvalidArgument, "request does not parse");
  auto r = client_->request(peer, *m, coap::RequestOptions{}, wait);
  if (!r || !r->response) return fail(Error::kNoResponse, "no response from " + peer.to_string());
  auto out = r->response->encode();
  if (!out) return fail(Error::kBadResponse, "response does not encode");
  return std::move(*out);
}

Expected<std::pair<coap::Address, std::string>, Failure> resolve_uri(const std::string& uri) {
  auto u = coap::Uri::parse(uri);
  if (!u) return fail(Error::kInvalidArgument, "not a coap:// URI: " + uri);
  auto a = io::resolve(u->host, u->port);
  if (!a) return fail(Error::kInvalidArgument, "cannot resolve " + u->host);
  return std::make_pair(*a, u->path);
}

// ---- token ----

// oscore_round_trip protects `req` with `ctx`, exchanges it with `peer` and returns the
// verified inner response, parsed (buf and dec: the caller's datagram buffers).
static Expected<coap::Message, Failure> oscore_round_trip(oscore::Context& ctx, Transport& transport,
                                                          const coap::Address& peer, const coap::Message& req,
                                                          Duration wait, Bytes& buf, Bytes& dec) {
  oscore::Exchange ex;
  auto n = ctx.protect_request(req, buf, ex);
  if (!n) return fail(Error::kCrypto, std::string("protect: ") + oscore::to_string(n.error()));
  auto wire = transport.exchange(peer, ByteView(buf.data(), *n), wait);
  if (!wire) return unexpected(wire.error());
  auto d = ctx.unprotect_response(*wire, ex, dec);
  if (!d) {
    auto plain = coap::Message::parse(*wire);
    return fail(Error::kNotVerified, std::string(oscore::to_string(d.error())) +
                                         (plain ? " (" + coap::code_string(plain->code) + ")" : ""));
  }
  auto inner = coap::Message::parse(ByteView(dec.data(), *d));
  if (!inner) return fail(Error::kBadResponse, "inner response does not parse");
  return std::move(*inner);
}

Expected<ace::TokenResponse, Failure> request_token(crypto::Provider& provider, Transport& transport,
                                                    const TokenRequestConfig& c) {
  if (c.id.empty() || c.secret.empty()) return fail(Error::kInvalidArgument, "client id and secret are required");
  oscore::ContextConfig cfg;
  cfg.params.master_secret = c.secret;
  cfg.params.sender_id = c.id;
  cfg.params.recipient_id = {};
  if (c.seq_store) {
    cfg.store = c.seq_store;
    cfg.seq_chunk = 16;
  } else {
    cfg.initial_seq = c.initial_seq;
  }
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) return fail(Error::kCrypto, std::string("OSCORE context: ") + oscore::to_string(ctx.error()));

  ace::TokenRequest tr;
  if (!c.audience.empty()) tr.audience = c.audience;
  tr.scope = ace::ScopeParam{false, ace::encode_scope(c.scope)};
  coap::Message req(coap::Type::kCon, code::kPost, 0);
  req.token = {0x01};
  req.set_uri_path(c.path);
  req.set_uint(option::kContentFormat, cp::cf::kAceCbor);
  req.payload = tr.encode();
  Bytes buf(kMaxDatagram);
  Bytes dec(kMaxDatagram);
  // An AS that restarted without a trustworthy replay window for us answers a verified
  // 4.01 with Echo (RFC 8613 Appendix B.1.2, RFC 9175 §2.3): send the same request once
  // more with that Echo, under a fresh sequence number.
  std::optional<coap::Message> resp;
  for (int attempt = 0;; ++attempt) {
    auto parsed = oscore_round_trip(**ctx, transport, c.as, req, c.timeout, buf, dec);
    if (!parsed) return unexpected(parsed.error());
    auto echo = echo_challenge_of(*parsed);
    if (!echo || attempt > 0) {
      resp = std::move(*parsed);
      break;
    }
    req.set_option(option::kEcho, *echo);
  }
  if (resp->code != code::kCreated) {
    auto e = ace::ErrorResponse::decode(resp->payload);
    std::string detail = coap::code_string(resp->code);
    if (e) detail += std::string(" ") + ace::error_name(e->error);
    if (e && e->description) detail += ": " + *e->description;
    return fail(Error::kRefused, detail, resp->code);
  }
  auto t = ace::TokenResponse::decode(resp->payload);
  if (!t) return fail(Error::kBadResponse, "token response: " + t.error().describe());
  if (!t->cnf || !t->cnf->osc || !t->cnf->osc->id)
    return fail(Error::kBadResponse, "no OSCORE_Input_Material in the token response");
  return std::move(*t);
}

Expected<KdcSession, Failure> post_token(Transport& transport, Random& random, ace::TokenResponse token,
                                         const coap::Address& kdc, const std::string& path, ByteView recipient_id,
                                         bool sign_info, Duration timeout) {
  if (!token.cnf || !token.cnf->osc) return fail(Error::kInvalidArgument, "token response without cnf.osc");
  ace::ClientTokenPost sent = ace::prepare_token_post(token.access_token, recipient_id, random, sign_info);
  coap::Message p(coap::Type::kCon, code::kPost, 0);
  p.token = {0x03};
  p.set_uri_path(path);
  p.set_uint(option::kContentFormat, cp::cf::kAceCbor);
  p.payload = sent.payload;
  auto dg = p.encode();
  if (!dg) return fail(Error::kInvalidArgument, "token POST does not encode");
  auto wire = transport.exchange(kdc, *dg, timeout);
  if (!wire) return unexpected(wire.error());
  auto r = coap::Message::parse(*wire);
  if (!r) return fail(Error::kBadResponse, "token POST response does not parse");
  if (r->code != code::kCreated)
    return fail(Error::kRefused, coap::code_string(r->code) + " " + std::string(as_string(r->payload)), r->code);
  KdcSession s;
  auto params = ace::finish_token_post(*token.cnf->osc, sent, r->payload, &s.authz);
  if (!params) return fail(Error::kBadResponse, "OSCORE setup: " + params.error().describe());
  s.params = std::move(*params);
  s.token = std::move(token);
  return s;
}

// ---- GroupMember ----

GroupMember::GroupMember(crypto::Provider& provider, Transport& transport, StateDir state, std::string group,
                         coap::Address kdc, Duration timeout)
    : provider_(provider),
      transport_(transport),
      state_(std::move(state)),
      group_(std::move(group)),
      kdc_(kdc),
      timeout_(timeout) {}

Expected<void, Failure> GroupMember::load() {
  if (loaded_) return {};
  auto s = state_.load_session(group_);
  if (!s) return unexpected(s.error());
  session_ = std::move(*s);
  loaded_ = true;
  return {};
}

Expected<std::unique_ptr<oscore::Context>, Failure> GroupMember::context() {
  if (auto l = load(); !l) return unexpected(l.error());
  // Each Context claims its own chunk of sequence numbers under STATE/lock
  // (ClaimingSequenceStore), so another process of the same state (a `client
  // listen` or `watch` next to a `client leave`) never uses the same numbers.
  constexpr uint64_t kChunk = 16;
  if (!seq_) {
    auto seq = state_.seq_store("kdc-seq");
    if (!seq) return unexpected(seq.error());
    seq_ = std::make_unique<ClaimingSequenceStore>(state_.path(), std::move(*seq), kChunk);
  }
  oscore::ContextConfig cfg;
  cfg.params = session_.params;
  cfg.store = seq_.get();
  cfg.seq_chunk = kChunk;
  auto ctx = oscore::Context::create(provider_, std::move(cfg));
  if (!ctx) return fail(Error::kCrypto, std::string("OSCORE context: ") + oscore::to_string(ctx.error()));
  return std::move(*ctx);
}

std::optional<Bytes> echo_challenge_of(const coap::Message& inner) {
  if (inner.code != code::kUnauthorized) return std::nullopt;
  const auto* echo = inner.find(option::kEcho);
  if (!echo) return std::nullopt;
  return to_bytes(echo->value);
}

Expected<coap::Message, Failure> GroupMember::call(uint8_t method, const std::string& path, ByteView payload) {
  auto ctx = context();
  if (!ctx) return unexpected(ctx.error());
  coap::Message req(coap::Type::kCon, method, 0);
  req.token = {0x02};
  req.set_uri_path(path);
  if (!payload.empty()) {
    req.set_uint(option::kContentFormat, cp::cf::kAceGroupcommCbor);
    req.payload = to_bytes(payload);
  }
  Bytes buf(kMaxDatagram);
  Bytes dec(kMaxDatagram);
  // A verified 4.01 with Echo (a KDC that restarted, RFC 8613 Appendix B.1.2, RFC 9175
  // §2.3) makes us send the same request once more with the Echo option as an inner
  // option, under a fresh sequence number.
  for (int attempt = 0;; ++attempt) {
    auto resp = oscore_round_trip(**ctx, transport_, kdc_, req, timeout_, buf, dec);
    if (!resp) return unexpected(resp.error());
    auto echo = echo_challenge_of(*resp);
    if (!echo || attempt > 0) return std::move(*resp);
    ++echo_rounds_;
    req.set_option(option::kEcho, *echo);
  }
}

Expected<JoinResult, Failure> GroupMember::join(Random& random, const JoinConfig& c) {
  if (!c.roles) return fail(Error::kInvalidArgument, "no role");
  ace::Scope scope;
  scope.entries.push_back(ace::ScopeEntry{group_, c.roles});
  TokenRequestConfig tc;
  tc.as = c.as;
  tc.id = c.id;
  tc.secret = c.secret;
  tc.audience = c.audience;
  tc.scope = scope;
  tc.timeout = timeout_;
  auto as_seq = state_.seq_store("seq");
  if (!as_seq) return unexpected(as_seq.error());
  tc.seq_store = as_seq->get();
  Expected<ace::TokenResponse, Failure> t = fail(Error::kState);
  {
    auto lock = state_.lock();
    if (!lock) return unexpected(lock.error());
    t = request_token(provider_, transport_, tc);
  }
  if (!t) return unexpected(t.error());
  auto ks = post_token(transport_, random, std::move(*t), kdc_, "/authz-info", c.recipient_id, true, timeout_);
  if (!ks) return unexpected(ks.error());
  if (!ks->authz.rsnonce) return fail(Error::kBadResponse, "the KDC sent no rsnonce");
  session_ = Session{};
  session_.params = ks->params;
  session_.rsnonce = *ks->authz.rsnonce;
  session_.control_path = c.control_path;
  loaded_ = true;

  const bool monitor_only = c.roles == ace::kRoleMonitor;
  // The group's signature algorithm from sign_info (seed §3.3): the key we make fits
  // it. None we support (or none given): EdDSA, and the KDC's PoP check decides.
  SignAlgorithm sign{cp::alg::kEdDSA, {}};
  if (!ks->authz.sign_info.empty()) {
    const auto* alg = std::get_if<int64_t>(&ks->authz.sign_info.front().sign_alg);
    if (alg && sign_curve(*alg) != 0) sign.alg = *alg;
  }
  std::optional<cose::CoseKey> key;
  if (!monitor_only) {
    auto kp = provider_.generate_keypair(sign_curve(sign.alg));
    if (!kp) return fail(Error::kCrypto, "cannot generate a key pair for the group's sign_alg");
    key = cose::CoseKey::from_keypair(*kp);
  }
  coap::Message r;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Bytes scope_bytes = ace::encode_scope(scope);
    groupcomm::JoinRequest jr;
    jr.scope = scope_bytes;
    jr.get_pub_keys = c.get_pub_keys;
    if (!c.control_path.empty()) jr.control_path = c.control_path;
    Bytes cred, cnonce, sig;
    if (key) {
      cred = key->encode(false);
      cnonce = random.bytes(8);
      auto s = groupcomm::sign_pop(provider_, static_cast<int>(sign.alg), *key, session_.rsnonce, cnonce);
      if (!s) return fail(Error::kCrypto, std::string("sign_pop: ") + groupcomm::to_string(s.error()));
      sig = std::move(*s);
      jr.client_cred = cred;
      jr.cnonce = cnonce;
      jr.client_cred_verify = sig;
    }
    auto resp = call(code::kPost, base(), groupcomm::encode_join_request(jr));
    if (!resp) return unexpected(resp.error());
    r = std::move(*resp);
    if (r.code != code::kBadRequest || attempt > 0) break;
    auto n = find_rsnonce(r.payload);  // REQ17: sign again over the fresh N_S
    if (!n) break;
    session_.rsnonce = *n;
  }
  if (r.code != code::kCreated) return unexpected(refused("join", r));
  auto keys = decode_key_distribution(r.payload);
  if (!keys) return unexpected(keys.error());
  JoinResult out;
  out.location = r.location_path();
  out.node = out.location.substr(out.location.find_last_of('/') + 1);
  session_.node = out.node;
  if (auto s = state_.save_session(group_, session_); !s) return unexpected(s.error());
  if (key)
    if (auto s = state_.save_private_key(group_, *key); !s) return unexpected(s.error());
  if (auto a = sign_algorithm_of(r.payload)) sign = std::move(*a);
  if (auto s = state_.save_keys(group_, StoredKeys{*keys, false, sign}); !s) return unexpected(s.error());
  out.keys = std::move(*keys);
  return out;
}

Expected<GroupKeys, Failure> GroupMember::get_keys(const std::string& path) {
  auto r = call(code::kGet, path, {});
  if (!r) return unexpected(r.error());
  if (r->code != code::kContent) return unexpected(refused("keys", *r));
  auto k = decode_key_distribution(r->payload);
  if (!k) return unexpected(k.error());
  if (auto s = accept_keys(*k, sign_algorithm_of(r->payload)); !s) return unexpected(s.error());
  return k;
}

Expected<GroupKeys, Failure> GroupMember::keys() { return get_keys(base()); }

Expected<GroupKeys, Failure> GroupMember::node_keys() {
  if (auto l = load(); !l) return unexpected(l.error());
  return get_keys(base() + "/nodes/" + session_.node);
}

Expected<void, Failure> GroupMember::accept_keys(GroupKeys k, std::optional<SignAlgorithm> sign) {
  auto old = state_.load_keys(group_);
  if (!k.sender_id && old && old->keys.sender_id) k.sender_id = old->keys.sender_id;
  if (!sign && old) sign = old->sign;
  return state_.save_keys(group_, StoredKeys{std::move(k), false, std::move(sign)});
}

Expected<std::vector<PubKey>, Failure> GroupMember::pub_keys(const std::vector<Bytes>& ids) {
  auto r = ids.empty() ? call(code::kGet, base() + "/pub-key", {})
                       : call(code::kFetch, base() + "/pub-key", groupcomm::encode_pub_key_fetch(ids));
  if (!r) return unexpected(r.error());
  if (r->code != code::kContent) return unexpected(refused("pub-keys", *r));
  return decode_pub_keys(r->payload);
}

Expected<std::vector<Policy>, Failure> GroupMember::policies() {
  auto r = call(code::kGet, base() + "/policies", {});
  if (!r) return unexpected(r.error());
  if (r->code != code::kContent) return unexpected(refused("policies", *r));
  return decode_policies(r->payload);
}

Expected<uint64_t, Failure> GroupMember::version() {
  auto r = call(code::kGet, base() + "/ctx-num", {});
  if (!r) return unexpected(r.error());
  if (r->code != code::kContent) return unexpected(refused("version", *r));
  return decode_num(r->payload);
}

Expected<Bytes, Failure> GroupMember::renew() {
  if (auto l = load(); !l) return unexpected(l.error());
  auto r = call(code::kPut, base() + "/nodes/" + session_.node, {});
  if (!r) return unexpected(r.error());
  if (r->code != code::kContent) return unexpected(refused("renew", *r));
  auto sid = decode_sender_id_response(r->payload);
  if (!sid) return unexpected(sid.error());
  if (auto k = state_.load_keys(group_)) {
    k->keys.sender_id = *sid;
    if (auto s = state_.save_keys(group_, *k); !s) return unexpected(s.error());
  }
  return sid;
}

Expected<cose::CoseKey, Failure> GroupMember::update_pub_key(Random& random) {
  if (auto l = load(); !l) return unexpected(l.error());
  int64_t sign_alg = cp::alg::kEdDSA;  // the group's, as stored at join / keys
  if (auto k = state_.load_keys(group_); k && k->sign) sign_alg = k->sign->alg;
  if (sign_curve(sign_alg) == 0) return fail(Error::kState, "the stored sign_alg is not supported");
  auto kp = provider_.generate_keypair(sign_curve(sign_alg));
  if (!kp) return fail(Error::kCrypto, "cannot generate a key pair for the group's sign_alg");
  cose::CoseKey key = cose::CoseKey::from_keypair(*kp);
  coap::Message r;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Bytes cred = key.encode(false);
    Bytes cnonce = random.bytes(8);
    // N_S: the last rsnonce the KDC sent (REQ17); an empty one makes the KDC send a fresh one.
    Bytes sig;
    if (!session_.rsnonce.empty()) {
      auto s = groupcomm::sign_pop(provider_, static_cast<int>(sign_alg), key, session_.rsnonce, cnonce);
      if (!s) return fail(Error::kCrypto, std::string("sign_pop: ") + groupcomm::to_string(s.error()));
      sig = std::move(*s);
    } else {
      sig = Bytes(64, 0);
    }
    auto resp = call(code::kPost, base() + "/nodes/" + session_.node + "/pub-key",
                     groupcomm::encode_pub_key_update(cred, cnonce, sig));
    if (!resp) return unexpected(resp.error());
    r = std::move(*resp);
    if (r.code != code::kBadRequest || attempt > 0) break;
    auto n = find_rsnonce(r.payload);
    if (!n) break;
    session_.rsnonce = *n;
    if (auto s = state_.save_session(group_, session_); !s) return unexpected(s.error());
  }
  if (r.code != code::kChanged) return unexpected(refused("update-pub-key", r));
  if (auto s = state_.save_private_key(group_, key); !s) return unexpected(s.error());
  return key;
}

Expected<void, Failure> GroupMember::leave() {
  if (auto l = load(); !l) return unexpected(l.error());
  auto r = call(code::kDelete, base() + "/nodes/" + session_.node, {});
  if (!r) return unexpected(r.error());
  if (r->code != code::kDeleted) return unexpected(refused("leave", *r));
  state_.forget_membership(group_);
  loaded_ = false;
  return {};
}

Expected<ObserveRequest, Failure> GroupMember::protect_observe(ByteView echo) {
  auto ctx = context();
  if (!ctx) return unexpected(ctx.error());
  coap::Message req(coap::Type::kCon, code::kGet, 0);
  req.token = {0x04};
  req.set_uint(option::kObserve, 0);
  req.set_uri_path(base() + "/nodes/" + session_.node);
  if (!echo.empty()) req.set_option(option::kEcho, echo);
  ObserveRequest o;
  o.datagram.resize(kMaxDatagram);
  auto n = (*ctx)->protect_request(req, o.datagram, o.exchange);
  if (!n) return fail(Error::kCrypto, std::string("protect: ") + oscore::to_string(n.error()));
  o.datagram.resize(*n);
  o.ctx = std::move(*ctx);
  return o;
}

}  // namespace acekdc::client
