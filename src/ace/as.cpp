#include "ace/as.h"

#include <algorithm>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cwt/cwt.h"

namespace acekdc::ace {

namespace {

AsResponse error_response(int64_t error, std::string description) {
  ErrorResponse e;
  e.error = error;
  e.description = std::move(description);
  return {error_coap_code(error), e.encode()};
}

AsResponse internal_error() { return {cp::coap::code::kInternalServerError, {}}; }

}  // namespace

Scope grant_scope(const ClientPolicy& client, const Scope& requested) {
  Scope out;
  for (const auto& e : requested.entries) {
    auto it = client.groups.find(e.group);
    if (it == client.groups.end() || it->second == 0) continue;
    RoleSet allowed = it->second & kAllRoles;
    RoleSet roles;
    if (e.roles == 0) {
      roles = roles_valid(allowed) ? allowed : static_cast<RoleSet>(allowed & ~kRoleMonitor);
    } else {
      roles = e.roles & allowed;
    }
    if (roles == 0 || !roles_valid(roles)) continue;
    out.entries.push_back(ScopeEntry{e.group, roles});
  }
  return out;
}

AuthorizationServer::AuthorizationServer(crypto::Provider& provider, Random& random, AsPolicy policy)
    : provider_(provider), random_(random), policy_(std::move(policy)) {}

std::string AuthorizationServer::validate_audience(const AudiencePolicy& a) const {
  if (a.protection == TokenProtection::kEncrypt0 && !a.shared_key)
    return "audience " + a.name + ": COSE_Encrypt0 protection needs a shared key";
  if (a.protection == TokenProtection::kSign1 && !policy_.signing_key)
    return "audience " + a.name + ": COSE_Sign1 protection needs the AS signing key";
  if (a.shared_key && !a.shared_key->is_symmetric())
    return "audience " + a.name + ": the shared key must be symmetric";
  if (a.master_secret_len == 0) return "audience " + a.name + ": empty master secret";
  if (policy_.id_len == 0) return "OSCORE_Input_Material id length 0";
  return {};
}

std::string AuthorizationServer::validate() const {
  for (const auto& a : policy_.audiences) {
    std::string v = validate_audience(a);
    if (!v.empty()) return v;
  }
  return {};
}

const ClientPolicy* AuthorizationServer::find_client(std::string_view id) const {
  for (const auto& c : policy_.clients)
    if (c.id == id) return &c;
  return nullptr;
}

const AudiencePolicy* AuthorizationServer::find_audience(std::string_view name) const {
  for (const auto& a : policy_.audiences)
    if (a.name == name) return &a;
  return nullptr;
}

void AuthorizationServer::purge(int64_t now) {
  std::erase_if(materials_, [&](const Material& m) { return m.exp <= now; });
}

AsResponse AuthorizationServer::handle_token(std::string_view client_id, ByteView payload, int64_t now) {
  purge(now);
  if (payload.size() > policy_.max_payload)
    return error_response(cp::ace::kErrInvalidRequest, "request too large");
  const ClientPolicy* client = client_id.empty() ? nullptr : find_client(client_id);
  if (!client) return error_response(cp::ace::kErrInvalidClient, "client not authenticated or unknown");

  auto req = TokenRequest::decode(payload);
  if (!req) return error_response(cp::ace::kErrInvalidRequest, req.error().describe());
  if (req->client_id && *req->client_id != client->id)
    return error_response(cp::ace::kErrInvalidClient, "client_id does not match the authenticated client");
  if (req->grant_type && *req->grant_type != static_cast<uint64_t>(cp::ace::kGrantClientCredentials))
    return error_response(cp::ace::kErrUnsupportedGrantType, "only client_credentials is supported");

  // Audience: named, or the only one configured.
  const AudiencePolicy* aud = nullptr;
  if (req->audience) {
    aud = find_audience(*req->audience);
  } else if (policy_.audiences.size() == 1) {
    aud = &policy_.audiences.front();
  }
  if (!aud) return error_response(cp::ace::kErrInvalidRequest, "unknown or missing audience");
  if (!client->audiences.empty() &&
      std::find(client->audiences.begin(), client->audiences.end(), aud->name) == client->audiences.end())
    return error_response(cp::ace::kErrInvalidRequest, "audience not allowed for this client");

  // Scope (seed §3.1: a byte string in the format of Figure 4).
  if (!req->scope) return error_response(cp::ace::kErrInvalidScope, "scope required");
  if (req->scope->is_text) return error_response(cp::ace::kErrInvalidScope, "scope must be a byte string");
  auto requested = parse_scope(req->scope->value);
  if (!requested) return error_response(cp::ace::kErrInvalidScope, to_string(requested.error()));
  Scope granted = grant_scope(*client, *requested);
  if (granted.entries.empty()) return error_response(cp::ace::kErrInvalidScope, "no requested scope entry is allowed");
  const bool same_scope = granted == *requested;
  Bytes scope_bytes = same_scope ? req->scope->value : encode_scope(granted);

  // Proof-of-possession: fresh OSCORE_Input_Material, or an update (RFC 9203 §4.1).
  const Material* update = nullptr;
  if (req->req_cnf) {
    if (req->req_cnf->cose_key || req->req_cnf->osc)
      return error_response(cp::ace::kErrUnsupportedPopKey, "only req_cnf kid is supported with coap_oscore");
    for (const auto& m : materials_) {
      if (m.client == client->id && m.audience == aud->name && equal(m.id, *req->req_cnf->kid)) {
        update = &m;
        break;
      }
    }
    if (!update) return error_response(cp::ace::kErrInvalidRequest, "req_cnf kid was not issued to this client");
  }
  if (!validate_audience(*aud).empty()) return internal_error();
  if (!update && materials_.size() >= policy_.max_materials) return {cp::coap::code::kServiceUnavailable, {}};

  const int64_t lifetime = std::max<int64_t>(client->max_lifetime, 1);
  const int64_t exp = now + lifetime;

  cwt::Claims claims;
  claims.iss = policy_.issuer;
  claims.aud = aud->name;
  claims.exp = exp;
  claims.iat = now;
  claims.cti = random_.bytes(8);
  claims.scope = cbor::Value::bytes(scope_bytes);
  claims.ace_profile = cp::ace::kProfileCoapOscore;

  std::optional<OscoreInputMaterial> material;
  Cnf token_cnf;
  if (update) {
    token_cnf.kid = update->id;
  } else {
    material.emplace();
    Bytes id;
    for (int tries = 0;; ++tries) {
      id = random_.bytes(policy_.id_len);
      bool clash = std::any_of(materials_.begin(), materials_.end(),
                               [&](const Material& m) { return m.audience == aud->name && equal(m.id, id); });
      if (!clash) break;
      if (tries > 16) return internal_error();
    }
    material->id = id;
    material->ms = random_.bytes(aud->master_secret_len);
    if (aud->salt_len > 0) material->salt = random_.bytes(aud->salt_len);
    if (aud->context_id_len > 0) material->context_id = random_.bytes(aud->context_id_len);
    if (aud->aead_alg) material->alg = int64_t{*aud->aead_alg};
    if (aud->hkdf_alg) material->hkdf = int64_t{*aud->hkdf_alg};
    token_cnf.osc = *material;
  }
  claims.cnf = token_cnf.to_value();

  Expected<Bytes, cwt::Error> token = unexpected(cwt::Error::kWrongKey);
  if (aud->protection == TokenProtection::kEncrypt0) {
    token = cwt::create_encrypted(provider_, claims, *aud->shared_key);
  } else {
    token = cwt::create_signed(provider_, claims, *policy_.signing_key);
    if (token && aud->shared_key) {
      Bytes inner = std::move(*token);
      token = cwt::encrypt_token(provider_, inner, *aud->shared_key);
      secure_zero(inner);
    }
  }
  if (claims.cnf) {
    // The claims hold the master secret: wipe the copy.
    claims.cnf = cbor::Value();
  }
  if (!token) return internal_error();

  TokenResponse resp;
  resp.access_token = std::move(*token);
  resp.expires_in = static_cast<uint64_t>(lifetime);
  resp.ace_profile = cp::ace::kProfileCoapOscore;
  if (!same_scope) resp.scope = ScopeParam{false, scope_bytes};
  if (material) {
    Cnf c;
    c.osc = std::move(*material);
    resp.cnf = std::move(c);
  }
  Bytes out = resp.encode();

  // Commit state only now.
  if (update) {
    for (auto& m : materials_)
      if (&m == update) m.exp = std::max(m.exp, exp);
  } else {
    materials_.push_back(Material{client->id, aud->name, *resp.cnf->osc->id, exp});
  }
  return {cp::coap::code::kCreated, std::move(out)};
}

AsResponse AuthorizationServer::handle_introspect(std::string_view requester, ByteView payload, int64_t now) {
  const AudiencePolicy* rs = requester.empty() ? nullptr : find_audience(requester);
  if (!rs) return error_response(cp::ace::kErrInvalidClient, "requester not authenticated or unknown");
  if (payload.size() > policy_.max_payload)
    return error_response(cp::ace::kErrInvalidRequest, "request too large");
  auto req = IntrospectionRequest::decode(payload);
  if (!req) return error_response(cp::ace::kErrInvalidRequest, req.error().describe());

  cose::KeySet keys;
  for (const auto& a : policy_.audiences)
    if (a.shared_key) keys.keys.push_back(*a.shared_key);
  if (policy_.signing_key) keys.keys.push_back(policy_.signing_key->public_key());
  cwt::VerifyOptions vo;
  vo.now = now;
  vo.check_time = false;
  auto inactive = [] {
    Bytes out;
    Writer w(out);
    cbor::Encoder e(w);
    e.put_map(1).put_int(cp::ace::kActive).put_bool(false);
    return AsResponse{cp::coap::code::kCreated, std::move(out)};
  };
  auto claims = cwt::verify(provider_, req->token, keys, vo);
  if (!claims) return inactive();
  if (!claims->aud || *claims->aud != rs->name) return {cp::coap::code::kForbidden, {}};
  if (claims->iss && *claims->iss != policy_.issuer) return inactive();
  cwt::VerifyOptions tv;
  tv.now = now;
  tv.require_exp = true;
  if (!cwt::check_claims(*claims, tv)) return inactive();
  if (claims->cti && std::find(revoked_.begin(), revoked_.end(), *claims->cti) != revoked_.end()) return inactive();

  cbor::Value m = cbor::Value::map();
  m.set(cp::ace::kActive, cbor::Value::boolean(true));
  if (claims->iss) m.set(cp::claim::kIss, cbor::Value::text(*claims->iss));
  m.set(cp::claim::kAud, cbor::Value::text(*claims->aud));
  m.set(cp::claim::kExp, cbor::Value::integer(claims->exp->seconds()));
  if (claims->iat) m.set(cp::claim::kIat, cbor::Value::integer(claims->iat->seconds()));
  if (claims->cti) m.set(cp::claim::kCti, cbor::Value::bytes(*claims->cti));
  if (claims->cnf) m.set(cp::claim::kCnf, *claims->cnf);
  if (claims->scope) m.set(cp::claim::kScope, *claims->scope);
  if (claims->ace_profile) m.set(cp::claim::kAceProfile, cbor::Value::integer(*claims->ace_profile));
  cbor::EncodeOptions eo;
  eo.deterministic = true;
  return {cp::coap::code::kCreated, cbor::encode(m, eo)};
}

bool AuthorizationServer::revoke(ByteView cti) {
  if (cti.empty() || revoked_.size() >= policy_.max_materials) return false;
  revoked_.push_back(to_bytes(cti));
  return true;
}

}  // namespace acekdc::ace
