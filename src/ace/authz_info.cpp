#include "ace/authz_info.h"

#include <string.h>  // explicit_bzero

#include <algorithm>
#include <set>

#include "ace/oscore_profile.h"
#include "cbor/cbor.h"
#include "core/writer.h"
#include "core/codepoints.h"
#include "cwt/cwt.h"

namespace acekdc::ace {

namespace code = cp::coap::code;

namespace {

// wipe_byte_strings zeroes every byte string inside `v` (maps, arrays, tags): the
// master secret of a verified token's cnf claim, once its typed copy is made. The
// tree must be owned by the caller alone (its nodes are shared between copies).
void wipe_byte_strings(const cbor::Value& v) {
  if (const Bytes* b = v.as_bytes()) {
    secure_zero(const_cast<Bytes&>(*b));
  } else if (const auto* m = v.as_map()) {
    for (const auto& [k, e] : *m) wipe_byte_strings(e);
  } else if (const auto* a = v.as_array()) {
    for (const auto& e : *a) wipe_byte_strings(e);
  } else if (const cbor::Value* t = v.tag_content()) {
    wipe_byte_strings(*t);
  }
}

Unexpected<AuthzInfo::Failure> failure(uint8_t c, std::string d) {
  return unexpected(AuthzInfo::Failure{c, std::move(d)});
}

// read_material reads the usual cnf claim of a verified token (its encoded map,
// checked by cwt::ClaimsView), {OSCORE_Input_Material: {...}} with integer keys and
// algorithm ids, into views; false for anything else (then cnf_general decides, with
// the answers of the general path).
bool read_material(ByteView cnf, MaterialView& out) {
  cbor::Decoder d(cnf);
  uint64_t n = 0, m = 0;
  int64_t label = 0;
  if (!d.read_map(n) || n != 1 || !d.next_is(cbor::Major::kUnsigned) || !d.read_int(label) ||
      label != cp::cnf::kOscoreInputMaterial || !d.next_is(cbor::Major::kMap) || !d.read_map(m) ||
      m > cp::osc::kContextId + 1)
    return false;
  MaterialView v;
  uint32_t seen = 0;
  for (uint64_t i = 0; i < m; ++i) {
    int64_t key = 0;
    if (!d.next_is(cbor::Major::kUnsigned) || !d.read_int(key) || key < cp::osc::kId || key > cp::osc::kContextId ||
        (seen & (uint32_t{1} << key)))
      return false;
    seen |= uint32_t{1} << key;
    ByteView b;
    int64_t a = 0;
    uint64_t u = 0;
    switch (key) {
      case cp::osc::kVersion:
        if (!d.next_is(cbor::Major::kUnsigned) || !d.read_uint(u)) return false;
        v.version = u;
        break;
      case cp::osc::kHkdf:
      case cp::osc::kAlg:
        if (!(d.next_is(cbor::Major::kUnsigned) || d.next_is(cbor::Major::kNegative)) || !d.read_int(a)) return false;
        (key == cp::osc::kHkdf ? v.hkdf : v.alg) = a;
        break;
      default:  // id, ms, salt, contextId: byte strings
        if (!d.next_is(cbor::Major::kBytes) || !d.read_bstr(b)) return false;
        (key == cp::osc::kId ? v.id : key == cp::osc::kMs ? v.ms : key == cp::osc::kSalt ? v.salt : v.context_id) = b;
        break;
    }
  }
  if (!d.finish()) return false;
  out = v;
  return true;
}

// cnf_general: Cnf::from_value of the decoded cnf map (its answers and errors); the
// decoded copy of the material is wiped.
Expected<Cnf, ParamError> cnf_general(ByteView cnf) {
  auto v = cbor::decode(cnf);
  if (!v) return unexpected(ParamError{Error::kMalformed, std::nullopt});
  auto c = Cnf::from_value(*v);
  wipe_byte_strings(*v);
  return c;
}

// to_material: the OscoreInputMaterial of a view (owned copies).
OscoreInputMaterial to_material(const MaterialView& v) {
  OscoreInputMaterial m;
  if (v.id) m.id = to_bytes(*v.id);
  m.version = v.version;
  if (v.ms) m.ms = to_bytes(*v.ms);
  if (v.hkdf) m.hkdf = AlgId(*v.hkdf);
  if (v.alg) m.alg = AlgId(*v.alg);
  if (v.salt) m.salt = to_bytes(*v.salt);
  if (v.context_id) m.context_id = to_bytes(*v.context_id);
  return m;
}

// RequestView: a token POST's parameters as views into the payload.
struct RequestView {
  ByteView access_token;
  std::optional<ByteView> nonce1;
  std::optional<ByteView> client_recipient_id;
  bool sign_info_requested = false;
  bool pub_key_enc_requested = false;
  static RequestView of(const AuthzInfoRequest& r) {
    RequestView v;
    v.access_token = r.access_token;
    if (r.nonce1) v.nonce1 = ByteView(*r.nonce1);
    if (r.client_recipient_id) v.client_recipient_id = ByteView(*r.client_recipient_id);
    v.sign_info_requested = r.sign_info_requested;
    v.pub_key_enc_requested = r.pub_key_enc_requested;
    return v;
  }
};

// read_request reads the usual token POST (one definite map of access_token, nonce1,
// ace_client_recipientid and the null sign_info / pub_key_enc requests, each once,
// nothing else) without copies. False for anything else: AuthzInfoRequest::decode
// then decides (its answers, its errors); what this accepts, that accepts alike.
bool read_request(ByteView in, RequestView& out) {
  cbor::Limits limits;  // AuthzInfoRequest::decode's
  limits.max_depth = 16;
  limits.allow_indefinite = false;
  limits.max_length = 64 * 1024;
  if (in.size() > limits.max_length) return false;
  cbor::Decoder d(in, limits);
  uint64_t n = 0;
  if (!d.read_map(n) || n > 5) return false;
  bool have_token = false;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t key = 0;
    if (!d.next_is(cbor::Major::kUnsigned) || !d.read_int(key)) return false;
    ByteView b;
    switch (key) {
      case cp::ace::kAccessToken:
        if (have_token || !d.next_is(cbor::Major::kBytes) || !d.read_bstr(b)) return false;
        out.access_token = b;
        have_token = true;
        break;
      case cp::ace::kNonce1:
        if (out.nonce1 || !d.next_is(cbor::Major::kBytes) || !d.read_bstr(b)) return false;
        out.nonce1 = b;
        break;
      case cp::ace::kAceClientRecipientId:
        if (out.client_recipient_id || !d.next_is(cbor::Major::kBytes) || !d.read_bstr(b)) return false;
        out.client_recipient_id = b;
        break;
      case cp::ace::kSignInfo:
        if (out.sign_info_requested || !d.next_is_null() || !d.read_null()) return false;
        out.sign_info_requested = true;
        break;
      case cp::ace::kPubKeyEnc:
        if (out.pub_key_enc_requested || !d.next_is_null() || !d.read_null()) return false;
        out.pub_key_enc_requested = true;
        break;
      default: return false;
    }
  }
  return have_token && d.finish();
}

// PlainWipe wipes the first `len` bytes of a token's plaintext buffer on scope exit.
struct PlainWipe {
  uint8_t* data;
  const size_t& len;
  ~PlainWipe() { explicit_bzero(data, len); }  // memset that is never elided
};

bool groups_overlap(const Scope& a, const Scope& b) {
  for (const auto& e : a.entries)
    if (b.find(e.group)) return true;
  return false;
}

}  // namespace

AuthzInfo::AuthzInfo(crypto::Provider& provider, Random& random, TokenStore& store, AuthzInfoConfig config)
    : provider_(provider), random_(random), store_(store), config_(std::move(config)) {}

TokenPostResult AuthzInfo::pending(ByteView token) const {
  TokenPostResult r;
  r.introspection_pending = to_bytes(token);
  return r;
}

TokenPostResult AuthzInfo::fail(uint8_t c, std::string diagnostic) const {
  TokenPostResult r;
  r.code = c;
  r.payload = to_bytes(as_bytes(diagnostic));
  return r;
}

void AuthzInfo::set_introspection(Introspector* introspector, IntrospectionConfig config) {
  introspector_ = introspector;
  deferred_ = false;
  introspection_ = config;
  cache_.clear();
}

void AuthzInfo::set_deferred_introspection(IntrospectionConfig config) {
  introspector_ = nullptr;
  deferred_ = true;
  introspection_ = config;
  cache_.clear();
  pending_.clear();
  in_flight_.clear();
  delivered_.clear();
}

std::vector<PendingIntrospection> AuthzInfo::take_pending_introspections() {
  std::vector<PendingIntrospection> out;
  out.swap(pending_);
  return out;
}

void AuthzInfo::deliver_introspection(ByteView token, const std::optional<IntrospectionReply>& reply, int64_t now) {
  Bytes key = to_bytes(token);
  if (!in_flight_.count(key)) return;
  auto a = answer_of(key, reply, now);
  if (!a) {  // the AS answered 4.03
    CachedAnswer f;
    f.forbidden = true;
    f.fetched = now;
    delivered_[key] = f;
  } else {
    delivered_[key] = std::move(*a);
  }
}

void AuthzInfo::release_introspection(ByteView token) {
  Bytes key = to_bytes(token);
  in_flight_.erase(key);
  delivered_.erase(key);
  std::erase_if(pending_, [&](const PendingIntrospection& p) { return p.token == key; });
}

void AuthzInfo::drop_unsent_introspection(ByteView token) {
  Bytes key = to_bytes(token);
  if (std::erase_if(pending_, [&](const PendingIntrospection& p) { return p.token == key; }) > 0)
    in_flight_.erase(key);
}

Expected<std::optional<AuthzInfo::CachedAnswer>, AuthzInfo::Failure> AuthzInfo::introspect(ByteView token,
                                                                                            int64_t now,
                                                                                            bool force) {
  Bytes key = to_bytes(token);
  if (deferred_) {
    auto d = delivered_.find(key);
    if (d != delivered_.end()) {
      if (d->second && d->second->forbidden) return failure(code::kForbidden, "access token for another audience (AS)");
      return d->second;
    }
  }
  if (!force) {
    auto it = cache_.find(key);
    if (it != cache_.end() && now < it->second.valid_until) return std::optional<CachedAnswer>(it->second);
  }
  if (deferred_) {
    if (in_flight_.insert(key).second) {
      IntrospectionRequest req;
      req.token = key;
      ++num_introspections_;
      pending_.push_back(PendingIntrospection{key, req.encode()});
    }
    return failure(0, "waiting for the AS's introspection answer");
  }
  IntrospectionRequest req;
  req.token = key;
  ++num_introspections_;
  return answer_of(key, introspector_->introspect(req.encode(), now), now);
}

Expected<std::optional<AuthzInfo::CachedAnswer>, AuthzInfo::Failure> AuthzInfo::answer_of(
    const Bytes& key, const std::optional<IntrospectionReply>& reply, int64_t now) {
  if (!reply) return std::optional<CachedAnswer>{};
  if (reply->code == code::kForbidden) return failure(code::kForbidden, "access token for another audience (AS)");
  if (reply->code != code::kCreated && reply->code != code::kContent) return std::optional<CachedAnswer>{};
  auto r = IntrospectionResponse::decode(reply->payload);
  if (!r) return std::optional<CachedAnswer>{};
  CachedAnswer a;
  a.active = r->active;
  a.fetched = now;
  a.valid_until = now + std::max<int64_t>(introspection_.cache_ttl, 0);
  if (a.active) {
    if (r->claims.exp) a.valid_until = std::min(a.valid_until, r->claims.exp->seconds());
    a.claims = std::move(r->claims);
  }
  if (!cache_.count(key) && cache_.size() >= introspection_.max_cache && !cache_.empty()) {
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->second.fetched < oldest->second.fetched) oldest = it;
    cache_.erase(oldest);
  }
  if (introspection_.max_cache > 0) cache_[key] = a;
  return std::optional<CachedAnswer>(std::move(a));
}

// TokenCheck: a token that passed the checks: its record part, and its cnf as
// views into the plaintext (the one-pass path) or owned (the general path, or a cnf
// outside the usual shape).
struct AuthzInfo::TokenCheck {
  StoredToken stored;
  std::optional<MaterialView> material_view;  // one pass: views into the caller's plaintext
  std::optional<Cnf> cnf;                     // otherwise
  // material: the OSCORE_Input_Material, if the cnf holds one (views valid while this
  // object and the plaintext are).
  std::optional<MaterialView> material() const {
    if (material_view) return material_view;
    if (cnf && cnf->osc) return MaterialView::of(*cnf->osc);
    return std::nullopt;
  }
};

Expected<AuthzInfo::TokenCheck, AuthzInfo::Failure> AuthzInfo::check_token(ByteView token, int64_t now,
                                                                          MutableByteView plain, size_t& plain_len) {
  // The token shape the AS writes, verified and read in one pass without a claims
  // tree (cwt::verify_view); anything else, and every failure, takes the general path
  // (validate_general). A token that verifies locally is introspected only in kAlways
  // mode.
  if (!introspecting() || introspection_.mode == IntrospectMode::kFallback) {
    cwt::VerifyOptions vo;
    vo.now = now;
    vo.check_time = false;
    if (auto view = cwt::verify_view(provider_, token, config_.as_keys, vo, plain, plain_len)) {
      auto stored = accept_view(*view, token, now);
      if (!stored) return unexpected(std::move(stored.error()));
      TokenCheck t;
      t.stored = std::move(*stored);
      MaterialView m;
      if (read_material(*view->cnf, m)) {
        t.material_view = m;
      } else {
        auto cnf = cnf_general(*view->cnf);
        if (!cnf) return failure(code::kBadRequest, "cnf: " + cnf.error().describe());
        t.cnf = std::move(*cnf);
      }
      return t;
    }
  }
  auto v = validate_general(token, now);
  if (!v) return unexpected(std::move(v.error()));
  TokenCheck t;
  t.stored = std::move(v->stored);
  t.cnf = std::move(v->cnf);
  return t;
}

Expected<AuthzInfo::ValidToken, AuthzInfo::Failure> AuthzInfo::validate_token(ByteView token, int64_t now) {
  uint8_t plain[kMaxViewPlaintext];
  size_t plain_len = 0;
  PlainWipe wipe{plain, plain_len};  // the claims hold the master secret
  auto t = check_token(token, now, plain, plain_len);
  if (!t) return unexpected(std::move(t.error()));
  ValidToken v;
  v.stored = std::move(t->stored);
  if (t->cnf) {
    v.cnf = std::move(*t->cnf);
  } else {
    v.cnf.osc = to_material(*t->material_view);
  }
  return v;
}

Expected<AuthzInfo::ValidToken, AuthzInfo::Failure> AuthzInfo::validate_general(ByteView token, int64_t now) {
  cwt::VerifyOptions vo;
  vo.now = now;
  vo.check_time = false;
  auto claims = cwt::verify(provider_, token, config_.as_keys, vo);
  // The claims' cnf holds the master secret: wiped when this function returns (the
  // typed copies made from it are wiped by their own destructors).
  struct WipeCnf {
    const Expected<cwt::Claims, cwt::Error>& c;
    ~WipeCnf() {
      if (c && c->cnf) wipe_byte_strings(*c->cnf);
    }
  } wipe_cnf{claims};
  Failure local{0, {}};
  if (!claims) {
    switch (claims.error()) {
      case cwt::Error::kMalformed:
      case cwt::Error::kUnexpectedTag:
      case cwt::Error::kBadHeader:
      case cwt::Error::kInvalidClaims:
      case cwt::Error::kNestingTooDeep:
      case cwt::Error::kTooLarge:
        local = Failure{code::kBadRequest,
                        std::string("access token does not parse: ") + cwt::to_string(claims.error())};
        break;
      default:
        local = Failure{code::kUnauthorized,
                        std::string("access token not verified: ") + cwt::to_string(claims.error())};
    }
  }
  if (introspecting() && (introspection_.mode == IntrospectMode::kAlways || !claims)) {
    auto a = introspect(token, now, false);
    if (!a) return unexpected(a.error());  // code 0: deferred, waiting for the AS
    if (!*a) {
      if (!claims) return unexpected(Failure{local.code, local.diagnostic + " (no answer from the AS)"});
      return failure(code::kServiceUnavailable, "introspection: no answer from the AS");
    }
    if (!(*a)->active) return failure(code::kUnauthorized, "access token not active (AS)");
    auto v = accept_claims(claims ? *claims : (*a)->claims, token, now);
    if (v) v->stored.introspected = true;
    return v;
  }
  if (!claims) return unexpected(std::move(local));
  return accept_claims(*claims, token, now);
}

Expected<AuthzInfo::ValidToken, AuthzInfo::Failure> AuthzInfo::accept_claims(const cwt::Claims& c, ByteView token,
                                                                            int64_t now) const {
  if (config_.issuer && c.iss && *c.iss != *config_.issuer)
    return failure(code::kUnauthorized, "access token from another issuer");
  cwt::VerifyOptions tv;
  tv.now = now;
  if (auto t = cwt::check_claims(c, tv); !t)
    return failure(code::kUnauthorized, t.error() == cwt::Error::kExpired ? "access token expired"
                                                                          : "access token not yet valid");
  if (!c.aud || *c.aud != config_.audience) return failure(code::kForbidden, "access token for another audience");
  if (!c.scope) return failure(code::kBadRequest, "access token without scope");
  if (!c.scope->is_bytes()) return failure(code::kBadRequest, "scope is not a byte string");
  auto scope = parse_scope(*c.scope->as_bytes());
  if (!scope) return failure(code::kBadRequest, to_string(scope.error()));
  if (config_.require_known_groups) {
    for (const auto& e : scope->entries)
      if (!config_.groups.count(e.group)) return failure(code::kBadRequest, "scope names an unknown group");
  }
  if (c.ace_profile && *c.ace_profile != cp::ace::kProfileCoapOscore)
    return failure(code::kBadRequest, "access token for another ACE profile");
  if (!c.exp) return failure(code::kBadRequest, "access token without exp");
  if (!c.cnf) return failure(code::kBadRequest, "access token without cnf");
  auto cnf = Cnf::from_value(*c.cnf);
  if (!cnf) return failure(code::kBadRequest, "cnf: " + cnf.error().describe());

  ValidToken v;
  v.stored.cti = c.cti.value_or(Bytes{});
  v.stored.issuer = c.iss;
  v.stored.scope = std::move(*scope);
  v.stored.exp = c.exp->seconds();
  v.stored.raw = to_bytes(token);
  v.cnf = std::move(*cnf);
  return v;
}

Expected<StoredToken, AuthzInfo::Failure> AuthzInfo::accept_view(const cwt::ClaimsView& c, ByteView token,
                                                                 int64_t now) const {
  // accept_claims' checks, in its order, with its answers (the cnf's are the caller's).
  if (config_.issuer && c.iss && *c.iss != *config_.issuer)
    return failure(code::kUnauthorized, "access token from another issuer");
  if (c.exp && now >= *c.exp) return failure(code::kUnauthorized, "access token expired");
  if (c.nbf && now < *c.nbf) return failure(code::kUnauthorized, "access token not yet valid");
  if (!c.aud || *c.aud != config_.audience) return failure(code::kForbidden, "access token for another audience");
  if (!c.scope) return failure(code::kBadRequest, "access token without scope");
  if (c.scope_is_text) return failure(code::kBadRequest, "scope is not a byte string");
  auto scope = parse_scope(*c.scope);
  if (!scope) return failure(code::kBadRequest, to_string(scope.error()));
  if (config_.require_known_groups) {
    for (const auto& e : scope->entries)
      if (!config_.groups.count(e.group)) return failure(code::kBadRequest, "scope names an unknown group");
  }
  if (c.ace_profile && *c.ace_profile != cp::ace::kProfileCoapOscore)
    return failure(code::kBadRequest, "access token for another ACE profile");
  if (!c.exp) return failure(code::kBadRequest, "access token without exp");
  if (!c.cnf) return failure(code::kBadRequest, "access token without cnf");

  StoredToken t;
  if (c.cti) t.cti.assign(c.cti->begin(), c.cti->end());
  if (c.iss) t.issuer.emplace(*c.iss);
  t.scope = std::move(*scope);
  t.exp = *c.exp;
  t.raw.assign(token.begin(), token.end());
  return t;
}

Expected<void, AuthzInfo::Failure> AuthzInfo::add_sign_info(const Scope& scope, bool sign_info, bool pub_key_enc,
                                                            AuthzInfoResponse& resp) const {
  if (!sign_info && !pub_key_enc) return {};
  for (const auto& e : scope.entries) {
    auto it = config_.groups.find(e.group);
    if (it == config_.groups.end()) return failure(code::kBadRequest, "no signature information for a group");
    if (sign_info) resp.sign_info.push_back(it->second.sign_info);
    if (pub_key_enc) resp.pub_key_enc.push_back(it->second.pub_key_enc);
  }
  resp.has_pub_key_enc = pub_key_enc;
  return {};
}

Bytes AuthzInfo::pick_recipient_id(ByteView id1, const std::optional<Bytes>& id_context) const {
  // Shortest free identifier: counter values encoded big-endian in the fewest bytes
  // (0 as one zero byte), skipping ID1 and IDs in use with the same ID Context.
  // The scan starts at rid_hint_, the lowest counter value that may still be free,
  // and checks each candidate with one lookup: O(1) per POST in the usual case. The
  // hint is dropped (scan from 0) for another ID Context and when the store shrank
  // since the last pick (an erase freed an ID). After outside changes that erase and
  // add as many records, a longer ID may be chosen; it is still free.
  if (id_context != rid_hint_context_ || store_.size() < rid_hint_size_) rid_hint_ = 0;
  if (id_context != rid_hint_context_) rid_hint_context_ = id_context;
  bool hint_set = false;
  for (uint64_t n = rid_hint_;; ++n) {
    uint8_t buf[8];
    size_t len = 0;
    for (uint64_t v = n;; v >>= 8) {  // big-endian, fewest bytes
      buf[7 - len++] = static_cast<uint8_t>(v & 0xff);
      if (v < 0x100) break;
    }
    const ByteView id(buf + 8 - len, len);
    if (store_.contains_id(id, id_context)) continue;
    if (!hint_set) {  // the first free value (it may be ID1): next scans start here
      rid_hint_ = n;
      hint_set = true;
    }
    if (equal(id, id1)) continue;
    rid_hint_size_ = store_.size() + 1;  // what the store holds once the caller put the record
    return to_bytes(id);
  }
}

TokenPostResult AuthzInfo::handle_token_post(ByteView payload, int64_t now) {
  TokenPostResult r;  // one object, filled in place (returned without a copy)
  post_token(payload, now, r);
  return r;
}

void AuthzInfo::post_token(ByteView payload, int64_t now, TokenPostResult& r) {
  if (payload.size() > config_.max_payload) return void(r = fail(code::kRequestEntityTooLarge, "payload too large"));
  // The usual request is read in place; anything else decoded (and answered) by
  // AuthzInfoRequest::decode, which then owns the bytes the views point to.
  RequestView req;
  std::optional<AuthzInfoRequest> decoded;
  if (!read_request(payload, req)) {
    auto d = AuthzInfoRequest::decode(payload);
    if (!d) return void(r = fail(code::kBadRequest, d.error().describe()));
    decoded = std::move(*d);
    req = RequestView::of(*decoded);
  }
  if (!req.nonce1) return void(r = fail(code::kBadRequest, "nonce1 missing"));
  if (!req.client_recipient_id) return void(r = fail(code::kBadRequest, "ace_client_recipientid missing"));
  if (req.nonce1->empty() || req.nonce1->size() > config_.max_nonce1_len)
    return void(r = fail(code::kBadRequest, "nonce1 length not acceptable"));

  // The token's plaintext stays here until the POST is done: the material is read
  // from it in place (wiped on the way out: it holds the master secret).
  uint8_t plain[kMaxViewPlaintext];
  size_t plain_len = 0;
  PlainWipe wipe{plain, plain_len};
  auto valid = check_token(req.access_token, now, plain, plain_len);
  if (!valid && valid.error().code == 0) return void(r = pending(req.access_token));
  if (!valid) return void(r = fail(valid.error().code, valid.error().diagnostic));
  const std::optional<MaterialView> material = valid->material();
  if (!material) return void(r = fail(code::kBadRequest, "cnf holds no OSCORE_Input_Material"));
  const MaterialView& osc = *material;
  if (!osc.id) return void(r = fail(code::kBadRequest, "OSCORE_Input_Material without id"));
  std::optional<Bytes> id_context;
  if (osc.context_id) id_context.emplace(osc.context_id->begin(), osc.context_id->end());

  const bool sign_info = req.sign_info_requested || req.pub_key_enc_requested;
  AuthzInfoResponse resp;  // only with sign_info / pub_key_enc (else encoded below)
  if (auto s = add_sign_info(valid->stored.scope, req.sign_info_requested, req.pub_key_enc_requested, resp); !s)
    return void(r = fail(s.error().code, s.error().diagnostic));

  const ByteView id1 = *req.client_recipient_id;
  Bytes id2 = pick_recipient_id(id1, id_context);
  uint8_t n2_buf[32];  // nonce2 on the stack (8 bytes by default)
  Bytes n2_heap;
  if (config_.nonce2_len > sizeof n2_buf) n2_heap.resize(config_.nonce2_len);
  const MutableByteView n2 = n2_heap.empty() ? MutableByteView(n2_buf, config_.nonce2_len) : MutableByteView(n2_heap);
  random_.fill(n2);
  auto params = derive_context_params(osc, *req.nonce1, n2, id1, id2, Side::kServer);
  if (!params) return void(r = fail(code::kBadRequest, "OSCORE setup: " + params.error().describe()));
  // Check now that the OSCORE context can be made (algorithms, ID lengths); the keys
  // go to whoever creates the context (EstablishedContext::keys).
  EstablishedContext& est = r.established.emplace();
  {
    auto keys = oscore::derive_keys(provider_, *params);
    if (!keys) {
      return void(r = fail(code::kBadRequest, std::string("OSCORE setup: ") + oscore::to_string(keys.error())));
    }
    est.keys.emplace(*keys);
  }

  ClientRecord rec;
  rec.rsnonce = random_.bytes(config_.rsnonce_len);
  // The 2.01's payload (replaced by the failure answer if the store refuses).
  if (sign_info) {
    resp.nonce2 = to_bytes(n2);
    resp.server_recipient_id = id2;
    resp.rsnonce = rec.rsnonce;
    r.payload = resp.encode();
  } else {
    // AuthzInfoResponse::encode's bytes for {nonce2, ace_server_recipientid, rsnonce}.
    r.payload.reserve(16 + n2.size() + id2.size() + rec.rsnonce.size());
    Writer w(r.payload);
    cbor::Encoder e(w);
    e.put_map(3);
    e.put_int(cp::ace::kNonce2).put_bstr(n2);
    e.put_int(cp::ace::kAceServerRecipientId).put_bstr(id2);
    e.put_int(cp::ace::kRsNonce).put_bstr(rec.rsnonce);
  }
  est.key = ContextKey{id2, id_context};
  rec.key = ContextKey{std::move(id2), std::move(id_context)};
  rec.sender_id = to_bytes(id1);
  rec.material_id = to_bytes(*osc.id);
  rec.context = *params;
  r.replaced = store_.find_material(rec.material_id);
  if (r.replaced) {
    // The same material posted again (RFC 9203 §4.1): the new context replaces the old
    // one; tokens of the old one for other groups stay valid for the client.
    struct Keep {
      int64_t now;
      const Scope& scope;
      size_t max;
      size_t n = 0;
    } keep{now, valid->stored.scope, config_.max_tokens_per_client};
    rec.tokens = store_.copy_tokens_if(*r.replaced, [&keep](const StoredToken& t) {
      if (t.exp <= keep.now || groups_overlap(t.scope, keep.scope) || keep.n + 1 >= keep.max) return false;
      ++keep.n;
      return true;
    });
  }
  est.scope = valid->stored.scope;
  est.exp = valid->stored.exp;
  est.rsnonce = rec.rsnonce;
  rec.tokens.push_back(std::move(valid->stored));
  // One store change: the new record in, the replaced one out.
  auto put = r.replaced ? store_.replace(*r.replaced, std::move(rec)) : store_.put_moved(std::move(rec));
  if (!put) return void(r = fail(code::kServiceUnavailable, to_string(put.error())));

  r.code = code::kCreated;
  r.ace_cbor = true;
  est.params = std::move(*params);
}

TokenPostResult AuthzInfo::handle_token_update(const ContextKey& via, ByteView payload, int64_t now) {
  if (payload.size() > config_.max_payload) return fail(code::kRequestEntityTooLarge, "payload too large");
  auto rec = store_.get(via);
  if (!rec) return fail(code::kUnauthorized, "no access token for this security context");
  auto req = AuthzInfoRequest::decode(payload);
  if (!req) return fail(code::kBadRequest, req.error().describe());
  auto valid = validate_token(req->access_token, now);
  if (!valid && valid.error().code == 0) return pending(req->access_token);
  if (!valid) return fail(code::kUnauthorized, valid.error().diagnostic);
  if (!valid->cnf.kid || !equal(*valid->cnf.kid, rec->material_id))
    return fail(code::kUnauthorized, "cnf kid does not name this security context's material");

  AuthzInfoResponse resp;
  if (auto s = add_sign_info(valid->stored.scope, req->sign_info_requested, req->pub_key_enc_requested, resp); !s)
    return fail(s.error().code, s.error().diagnostic);

  ClientRecord next = *rec;
  std::erase_if(next.tokens, [&](const StoredToken& t) {
    return t.exp <= now || groups_overlap(t.scope, valid->stored.scope);
  });
  if (next.tokens.size() + 1 > config_.max_tokens_per_client)
    return fail(code::kServiceUnavailable, "too many access tokens for this client");
  next.tokens.push_back(valid->stored);
  next.rsnonce = random_.bytes(config_.rsnonce_len);
  if (auto p = store_.put(next); !p) return fail(code::kServiceUnavailable, to_string(p.error()));

  resp.rsnonce = next.rsnonce;
  TokenPostResult r;
  r.code = code::kCreated;
  r.payload = resp.encode();
  r.ace_cbor = true;
  r.updated_scope = scope_of(via, now);
  return r;
}

std::vector<ContextKey> AuthzInfo::purge(int64_t now) {
  std::vector<ContextKey> gone;
  size_t rechecks = 0;
  for (const auto& k : store_.keys()) {
    auto rec = store_.get(k);
    if (!rec) continue;
    size_t before = rec->tokens.size();
    std::erase_if(rec->tokens, [&](const StoredToken& t) { return t.exp <= now; });
    std::vector<StoredToken> inactive;
    if (introspecting()) {
      for (auto it = rec->tokens.begin(); it != rec->tokens.end();) {
        bool drop = false;
        if (it->introspected) {
          auto c = cache_.find(it->raw);
          if (c != cache_.end() && now - c->second.fetched < introspection_.cache_ttl) {
            drop = !c->second.active;
          } else if (rechecks < introspection_.max_rechecks && now >= rechecks_paused_until_) {
            ++rechecks;
            auto a = introspect(it->raw, now, true);
            const bool waiting = !a && a.error().code == 0;  // deferred: asked, no answer yet
            drop = !waiting && (!a || (*a && !(*a)->active));  // a 4.03 from the AS counts as inactive
            if (a && !*a) rechecks_paused_until_ = now + std::max<int64_t>(introspection_.cache_ttl, 1);
          }
        }
        if (drop) {
          inactive.push_back(std::move(*it));
          it = rec->tokens.erase(it);
        } else {
          ++it;
        }
      }
    }
    bool dropped = false;
    if (rec->tokens.empty()) {
      if (store_.erase(k)) {
        gone.push_back(k);
        dropped = true;
      }
    } else if (rec->tokens.size() != before) {
      (void)store_.put(*rec);
    }
    if (on_inactive_)
      for (const auto& t : inactive) on_inactive_(k, t, dropped);
  }
  return gone;
}

std::optional<Scope> AuthzInfo::scope_of(const ContextKey& key, int64_t now) const {
  const ClientRecord* rec = store_.find(key);
  if (!rec) return std::nullopt;
  return scope_of_record(*rec, now);
}

std::optional<Scope> AuthzInfo::scope_of_record(const ClientRecord& rec, int64_t now) {
  Scope out;
  for (const auto& t : rec.tokens) {
    if (t.exp <= now) continue;
    for (const auto& e : t.scope.entries) {
      auto it = std::find_if(out.entries.begin(), out.entries.end(),
                             [&](const ScopeEntry& x) { return x.group == e.group; });
      if (it == out.entries.end()) {
        out.entries.push_back(e);
      } else {
        it->roles |= e.roles;
      }
    }
  }
  if (out.entries.empty()) return std::nullopt;
  return out;
}

std::optional<Bytes> AuthzInfo::rsnonce(const ContextKey& key) const {
  auto rec = store_.get(key);
  if (!rec || rec->rsnonce.empty()) return std::nullopt;
  return rec->rsnonce;
}

Expected<Bytes, StoreError> AuthzInfo::fresh_rsnonce(const ContextKey& key) {
  auto rec = store_.get(key);
  if (!rec) return unexpected(StoreError::kNotFound);
  rec->rsnonce = random_.bytes(config_.rsnonce_len);
  ACEKDC_TRY(store_.put(*rec));
  return rec->rsnonce;
}

}  // namespace acekdc::ace
