#include "ace/as.h"

#include <algorithm>
#include <cstring>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/algorithms.h"
#include "cose/encrypt0.h"
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

void AuthorizationServer::note_expiry(int64_t exp, uint64_t key) {
  if (expiry_fifo_.empty() || expiry_fifo_.back().first <= exp) {
    expiry_fifo_.emplace_back(exp, key);
  } else {
    expiries_.emplace(exp, key);
  }
}

void AuthorizationServer::purge(int64_t now) {
  for (;;) {
    uint64_t key = 0;
    if (!expiry_fifo_.empty() && expiry_fifo_.front().first <= now) {
      key = expiry_fifo_.front().second;
      expiry_fifo_.pop_front();
    } else if (!expiries_.empty() && expiries_.top().first <= now) {
      key = expiries_.top().second;
      expiries_.pop();
    } else {
      break;
    }
    auto it = materials_.find(key);
    if (it != materials_.end() && it->second.exp <= now) materials_.erase(it);
  }
}

uint64_t AuthorizationServer::material_key(size_t audience, ByteView id) {
  uint64_t h = 0xcbf29ce484222325ULL ^ (static_cast<uint64_t>(audience) * 0x9e3779b97f4a7c15ULL);
  for (uint8_t b : id) h = (h ^ b) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

AuthorizationServer::Material* AuthorizationServer::find_material(size_t audience, ByteView id) {
  auto it = materials_.find(material_key(audience, id));
  if (it == materials_.end() || it->second.audience != audience || !equal(as_bytes(it->second.id), id))
    return nullptr;
  return &it->second;
}

crypto::Aead* AuthorizationServer::token_aead(size_t audience) {
  if (token_aeads_.size() != policy_.audiences.size()) token_aeads_.resize(policy_.audiences.size());
  auto& slot = token_aeads_[audience];
  if (slot) return slot.get();
  const AudiencePolicy& a = policy_.audiences[audience];
  if (!a.shared_key || !a.shared_key->alg) return nullptr;
  if (cose::family(*a.shared_key->alg) != cose::AlgFamily::kAead) return nullptr;
  if (!cose::check_key_for_alg(*a.shared_key, *a.shared_key->alg)) return nullptr;
  auto aead = provider_.make_aead(*a.shared_key->alg, a.shared_key->k);
  if (!aead) return nullptr;
  slot = std::move(*aead);
  return slot.get();
}

namespace {

// MaterialView: the OSCORE_Input_Material of a new token, viewing the random bytes.
struct MaterialView {
  ByteView id, ms, salt, context_id;  // salt / context_id empty: absent
  std::optional<int> hkdf, alg;
};

// put_material writes OSCORE_Input_Material (RFC 9203 §3.2.1) in ascending key order,
// as OscoreInputMaterial::encode does.
void put_material(cbor::Encoder& e, const MaterialView& m) {
  e.put_map(2 + (m.hkdf ? 1 : 0) + (m.alg ? 1 : 0) + (m.salt.empty() ? 0 : 1) + (m.context_id.empty() ? 0 : 1));
  e.put_int(cp::osc::kId).put_bstr(m.id);
  e.put_int(cp::osc::kMs).put_bstr(m.ms);
  if (m.hkdf) e.put_int(cp::osc::kHkdf).put_int(*m.hkdf);
  if (m.alg) e.put_int(cp::osc::kAlg).put_int(*m.alg);
  if (!m.salt.empty()) e.put_int(cp::osc::kSalt).put_bstr(m.salt);
  if (!m.context_id.empty()) e.put_int(cp::osc::kContextId).put_bstr(m.context_id);
}

}  // namespace

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
  const size_t aud_index = static_cast<size_t>(aud - policy_.audiences.data());
  const size_t client_index = static_cast<size_t>(client - policy_.clients.data());
  Material* update = nullptr;
  ByteView update_id;
  if (req->req_cnf) {
    if (req->req_cnf->cose_key || req->req_cnf->osc)
      return error_response(cp::ace::kErrUnsupportedPopKey, "only req_cnf kid is supported with coap_oscore");
    Material* m = find_material(aud_index, *req->req_cnf->kid);
    if (m && m->client == client_index) {
      update = m;
      update_id = *req->req_cnf->kid;
    }
    if (!update) return error_response(cp::ace::kErrInvalidRequest, "req_cnf kid was not issued to this client");
  }
  if (!validate_audience(*aud).empty()) return internal_error();
  if (!update && materials_.size() >= policy_.max_materials) return {cp::coap::code::kServiceUnavailable, {}};

  const int64_t lifetime = std::max<int64_t>(client->max_lifetime, 1);
  const int64_t exp = now + lifetime;

  // Randomness in one draw: id | ms | salt | contextId | cti.
  const size_t id_len = update ? 0 : policy_.id_len;
  const size_t ms_len = update ? 0 : aud->master_secret_len;
  const size_t salt_len = update ? 0 : aud->salt_len;
  const size_t ctx_len = update ? 0 : aud->context_id_len;
  constexpr size_t kCtiLen = 8;
  random_buf_.resize(id_len + ms_len + salt_len + ctx_len + kCtiLen);
  random_.fill(random_buf_);
  const uint8_t* r = random_buf_.data();
  MaterialView mat;
  mat.id = ByteView(r, id_len);
  mat.ms = ByteView(r + id_len, ms_len);
  mat.salt = ByteView(r + id_len + ms_len, salt_len);
  mat.context_id = ByteView(r + id_len + ms_len + salt_len, ctx_len);
  const ByteView cti(r + id_len + ms_len + salt_len + ctx_len, kCtiLen);
  mat.alg = aud->aead_alg;
  mat.hkdf = aud->hkdf_alg;
  uint64_t new_key = 0;
  if (!update) {
    // The id must be unique per audience among live material (and its hash among
    // all material).
    for (int tries = 0;; ++tries) {
      new_key = material_key(aud_index, mat.id);
      if (!materials_.count(new_key)) break;
      if (tries > 16) {
        secure_zero(random_buf_);
        return internal_error();
      }
      random_.fill(MutableByteView(random_buf_.data(), id_len));
    }
  }

  // The claims (RFC 8392; keys ascending, as cwt::Claims::encode writes them): iss,
  // aud, exp, iat, cti, cnf, scope, ace_profile.
  // Written into a buffer sized once (a Writer over a span: no resize per item).
  claims_buf_.resize(192 + policy_.issuer.size() + aud->name.size() + scope_bytes.size() + id_len + ms_len +
                     salt_len + ctx_len + update_id.size());
  {
    Writer w{MutableByteView(claims_buf_)};
    cbor::Encoder e(w);
    e.put_map(8);
    e.put_int(cp::claim::kIss).put_tstr(policy_.issuer);
    e.put_int(cp::claim::kAud).put_tstr(aud->name);
    e.put_int(cp::claim::kExp).put_int(exp);
    e.put_int(cp::claim::kIat).put_int(now);
    e.put_int(cp::claim::kCti).put_bstr(cti);
    e.put_int(cp::claim::kCnf).put_map(1);
    if (update) {
      e.put_int(cp::cnf::kKid).put_bstr(update_id);
    } else {
      e.put_int(cp::cnf::kOscoreInputMaterial);
      put_material(e, mat);
    }
    e.put_int(cp::claim::kScope).put_bstr(scope_bytes);
    e.put_int(cp::claim::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
    if (!e.ok()) {
      secure_zero(claims_buf_);
      secure_zero(random_buf_);
      return internal_error();
    }
    claims_buf_.resize(w.size());
  }

  token_buf_.clear();
  bool made = false;
  if (aud->protection == TokenProtection::kEncrypt0) {
    if (crypto::Aead* aead = token_aead(aud_index)) {
      // COSE_Encrypt0 written directly with the audience's keyed AEAD.
      uint8_t iv[32];
      const size_t iv_len = aead->info().nonce_len;
      if (iv_len <= sizeof iv) {
        provider_.random().fill(MutableByteView(iv, iv_len));
        made = static_cast<bool>(cose::encrypt0_write(*aead, aud->shared_key->kid, ByteView(iv, iv_len),
                                                      claims_buf_, {}, true, token_buf_));
      }
    }
  }
  if (!made) {
    // Other protections (COSE_Sign1, nested) through the general CWT code.
    auto claims = cwt::Claims::decode(claims_buf_);
    Expected<Bytes, cwt::Error> token = unexpected(cwt::Error::kWrongKey);
    if (claims) {
      if (aud->protection == TokenProtection::kEncrypt0) {
        token = cwt::create_encrypted(provider_, *claims, *aud->shared_key);
      } else {
        token = cwt::create_signed(provider_, *claims, *policy_.signing_key);
        if (token && aud->shared_key) {
          Bytes inner = std::move(*token);
          token = cwt::encrypt_token(provider_, inner, *aud->shared_key);
          secure_zero(inner);
        }
      }
      // The claims hold the master secret: wipe the copy.
      claims->cnf = cbor::Value();
    }
    if (token) {
      token_buf_ = std::move(*token);
      made = true;
    }
  }
  secure_zero(claims_buf_);
  if (!made) {
    secure_zero(random_buf_);
    return internal_error();
  }

  // The Access Information (keys ascending, as TokenResponse::encode writes them).
  const bool with_cnf = update == nullptr;
  Bytes out(token_buf_.size() + scope_bytes.size() + id_len + ms_len + salt_len + ctx_len + 160);
  {
    Writer w{MutableByteView(out)};
    cbor::Encoder e(w);
    e.put_map(3 + (with_cnf ? 1 : 0) + (same_scope ? 0 : 1));
    e.put_int(cp::ace::kAccessToken).put_bstr(token_buf_);
    e.put_int(cp::ace::kExpiresIn).put_uint(static_cast<uint64_t>(lifetime));
    if (with_cnf) {
      e.put_int(cp::ace::kCnf).put_map(1).put_int(cp::cnf::kOscoreInputMaterial);
      put_material(e, mat);
    }
    if (!same_scope) e.put_int(cp::ace::kScope).put_bstr(scope_bytes);
    e.put_int(cp::ace::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
    if (!e.ok()) {
      secure_zero(out);
      secure_zero(random_buf_);
      return internal_error();
    }
    out.resize(w.size());
  }

  // Commit state only now.
  if (update) {
    if (exp > update->exp) {
      update->exp = exp;
      note_expiry(exp, material_key(aud_index, update_id));
    }
  } else {
    materials_.emplace(new_key, Material{client_index, aud_index, exp, std::string(as_string(mat.id))});
    note_expiry(exp, new_key);
  }
  secure_zero(random_buf_);
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
