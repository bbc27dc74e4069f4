#include "ace/params.h"

#include <initializer_list>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"

namespace acekdc::ace {

const char* to_string(Error e) {
  switch (e) {
    case Error::kMalformed: return "malformed payload";
    case Error::kDuplicateKey: return "duplicate key";
    case Error::kUnknownKey: return "unknown key";
    case Error::kWrongType: return "wrong type";
    case Error::kMissingParameter: return "missing parameter";
    case Error::kBadValue: return "unacceptable value";
    case Error::kTooLarge: return "too large";
  }
  return "ace error";
}

std::string ParamError::describe() const {
  std::string s = to_string(error);
  if (key) s += " " + std::to_string(*key);
  return s;
}

namespace {

constexpr size_t kMaxPayload = 64 * 1024;

cbor::Limits strict_limits() {
  cbor::Limits l;
  l.max_depth = 16;
  l.allow_indefinite = false;
  l.max_length = kMaxPayload;
  return l;
}

Unexpected<ParamError> err(Error e, std::optional<int64_t> key = std::nullopt) {
  return unexpected(ParamError{e, key});
}

// read_map walks one ace+cbor map: every key must be an integer in `known` and appear
// once; on_param(key, decoder) reads the value. The whole input must be the map.
template <class F>
Expected<void, ParamError> read_map(ByteView in, std::initializer_list<int64_t> known, F&& on_param) {
  if (in.size() > kMaxPayload) return err(Error::kTooLarge);
  cbor::Decoder d(in, strict_limits());
  uint64_t n;
  if (!d.read_map(n)) return err(Error::kMalformed);
  if (n > in.size()) return err(Error::kMalformed);
  uint64_t seen = 0;  // bit i: known[i] seen
  for (uint64_t i = 0; i < n; ++i) {
    if (!d.next_is(cbor::Major::kUnsigned) && !d.next_is(cbor::Major::kNegative)) {
      if (!d.ok() || d.at_end()) return err(Error::kMalformed);
      return err(Error::kUnknownKey);
    }
    int64_t key;
    if (!d.read_int(key)) return err(d.error() == cbor::Error::kOverflow ? Error::kUnknownKey : Error::kMalformed);
    size_t idx = 0;
    bool found = false;
    for (int64_t k : known) {
      if (k == key) {
        found = true;
        break;
      }
      ++idx;
    }
    if (!found) return err(Error::kUnknownKey, key);
    if (seen & (uint64_t{1} << idx)) return err(Error::kDuplicateKey, key);
    seen |= uint64_t{1} << idx;
    ACEKDC_TRY(on_param(key, d));
    if (!d.ok()) return err(Error::kMalformed, key);
  }
  if (!d.finish()) return err(Error::kMalformed);
  return {};
}

Expected<Bytes, ParamError> get_bstr(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kBytes)) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  ByteView b;
  if (!d.read_bstr(b)) return err(Error::kMalformed, key);
  return to_bytes(b);
}

Expected<std::string, ParamError> get_tstr(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kText)) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  std::string_view s;
  if (!d.read_tstr(s)) return err(Error::kMalformed, key);
  return std::string(s);
}

// get_bstr_view / get_tstr_view: as get_bstr / get_tstr, viewing the input.
Expected<ByteView, ParamError> get_bstr_view(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kBytes)) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  ByteView b;
  if (!d.read_bstr(b)) return err(Error::kMalformed, key);
  return b;
}

Expected<std::string_view, ParamError> get_tstr_view(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kText)) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  std::string_view s;
  if (!d.read_tstr(s)) return err(Error::kMalformed, key);
  return s;
}

Expected<uint64_t, ParamError> get_uint(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kUnsigned)) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  uint64_t v;
  if (!d.read_uint(v)) return err(Error::kMalformed, key);
  return v;
}

Expected<int64_t, ParamError> get_int(cbor::Decoder& d, int64_t key) {
  if (!d.next_is(cbor::Major::kUnsigned) && !d.next_is(cbor::Major::kNegative))
    return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  int64_t v;
  if (!d.read_int(v)) return err(d.error() == cbor::Error::kOverflow ? Error::kBadValue : Error::kMalformed, key);
  return v;
}

Expected<void, ParamError> get_null(cbor::Decoder& d, int64_t key) {
  if (!d.next_is_null()) return err(d.ok() ? Error::kWrongType : Error::kMalformed, key);
  if (!d.read_null()) return err(Error::kMalformed, key);
  return {};
}

Expected<AlgId, ParamError> get_alg(cbor::Decoder& d, int64_t key) {
  if (d.next_is(cbor::Major::kText)) {
    auto s = get_tstr(d, key);
    if (!s) return unexpected(s.error());
    return AlgId(std::move(*s));
  }
  auto i = get_int(d, key);
  if (!i) return unexpected(i.error());
  return AlgId(*i);
}

Expected<ScopeParam, ParamError> get_scope(cbor::Decoder& d, int64_t key) {
  ScopeParam s;
  if (d.next_is(cbor::Major::kText)) {
    auto t = get_tstr(d, key);
    if (!t) return unexpected(t.error());
    s.is_text = true;
    s.value = to_bytes(as_bytes(*t));
    return s;
  }
  auto b = get_bstr(d, key);
  if (!b) return unexpected(b.error());
  s.value = std::move(*b);
  return s;
}

// get_value reads any item (maps for cnf/rs_cnf) into a Value.
Expected<cbor::Value, ParamError> get_value(cbor::Decoder& d, int64_t key) {
  ByteView item;
  if (!d.read_item(item)) return err(Error::kMalformed, key);
  auto v = cbor::decode(item, strict_limits());
  if (!v) return err(Error::kMalformed, key);
  return std::move(*v);
}

cbor::Value alg_value(const AlgId& a) {
  if (const auto* i = std::get_if<int64_t>(&a)) return cbor::Value::integer(*i);
  return cbor::Value::text(std::get<std::string>(a));
}

void put_scope(cbor::Encoder& e, const ScopeParam& s) {
  if (s.is_text) {
    e.put_tstr(as_string(s.value));
  } else {
    e.put_bstr(s.value);
  }
}

}  // namespace

// ---- OSCORE_Input_Material ----

cbor::Value OscoreInputMaterial::to_value() const {
  cbor::Value m = cbor::Value::map();
  if (id) m.set(cp::osc::kId, cbor::Value::bytes(*id));
  if (version) m.set(cp::osc::kVersion, cbor::Value::uint(*version));
  if (ms) m.set(cp::osc::kMs, cbor::Value::bytes(*ms));
  if (hkdf) m.set(cp::osc::kHkdf, alg_value(*hkdf));
  if (alg) m.set(cp::osc::kAlg, alg_value(*alg));
  if (salt) m.set(cp::osc::kSalt, cbor::Value::bytes(*salt));
  if (context_id) m.set(cp::osc::kContextId, cbor::Value::bytes(*context_id));
  return m;
}

Bytes OscoreInputMaterial::encode() const { return cbor::encode(to_value()); }

Expected<OscoreInputMaterial, ParamError> OscoreInputMaterial::decode(ByteView in) {
  OscoreInputMaterial m;
  auto r = read_map(in,
                    {cp::osc::kId, cp::osc::kVersion, cp::osc::kMs, cp::osc::kHkdf, cp::osc::kAlg,
                     cp::osc::kSalt, cp::osc::kContextId},
                    [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
                      switch (key) {
                        case cp::osc::kId: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          m.id = std::move(*v);
                          return {};
                        }
                        case cp::osc::kVersion: {
                          auto v = get_uint(d, key);
                          if (!v) return unexpected(v.error());
                          m.version = *v;
                          return {};
                        }
                        case cp::osc::kMs: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          m.ms = std::move(*v);
                          return {};
                        }
                        case cp::osc::kHkdf: {
                          auto v = get_alg(d, key);
                          if (!v) return unexpected(v.error());
                          m.hkdf = std::move(*v);
                          return {};
                        }
                        case cp::osc::kAlg: {
                          auto v = get_alg(d, key);
                          if (!v) return unexpected(v.error());
                          m.alg = std::move(*v);
                          return {};
                        }
                        case cp::osc::kSalt: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          m.salt = std::move(*v);
                          return {};
                        }
                        default: {  // kContextId
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          m.context_id = std::move(*v);
                          return {};
                        }
                      }
                    });
  if (!r) return unexpected(r.error());
  return m;
}

Expected<OscoreInputMaterial, ParamError> OscoreInputMaterial::from_value(const cbor::Value& v) {
  // The checks of decode(), on the Value directly (no encode / decode round trip,
  // no extra copy of the master secret).
  const cbor::MapEntries* entries = v.as_map();
  if (!entries) return err(Error::kWrongType);
  if (v.indefinite()) return err(Error::kMalformed);
  OscoreInputMaterial m;
  uint32_t seen = 0;
  for (const auto& entry : *entries) {
    const cbor::Value& k = entry.first;
    const cbor::Value& val = entry.second;  // (not a structured binding: lambdas below capture it)
    if (!k.is_uint() && k.type() != cbor::Value::Type::kNegative) return err(Error::kUnknownKey);
    auto key = k.as_int();
    if (!key) return err(Error::kUnknownKey);
    if (*key < cp::osc::kId || *key > cp::osc::kContextId) return err(Error::kUnknownKey, *key);
    const uint32_t bit = uint32_t{1} << *key;
    if (seen & bit) return err(Error::kDuplicateKey, *key);
    seen |= bit;
    auto bstr = [&](std::optional<Bytes>& out) -> Expected<void, ParamError> {
      if (!val.is_bytes() || val.indefinite()) return err(val.is_bytes() ? Error::kMalformed : Error::kWrongType, *key);
      out = to_bytes(val.bytes_view());
      return {};
    };
    auto alg = [&](std::optional<AlgId>& out) -> Expected<void, ParamError> {
      if (const std::string* t = val.as_text()) {
        if (val.indefinite()) return err(Error::kMalformed, *key);
        out = AlgId(*t);
        return {};
      }
      if (!val.is_uint() && val.type() != cbor::Value::Type::kNegative) return err(Error::kWrongType, *key);
      auto i = val.as_int();
      if (!i) return err(Error::kBadValue, *key);
      out = AlgId(*i);
      return {};
    };
    switch (*key) {
      case cp::osc::kId: ACEKDC_TRY(bstr(m.id)); break;
      case cp::osc::kVersion: {
        auto u = val.as_uint();
        if (!val.is_uint() || !u) return err(Error::kWrongType, *key);
        m.version = *u;
        break;
      }
      case cp::osc::kMs: ACEKDC_TRY(bstr(m.ms)); break;
      case cp::osc::kHkdf: ACEKDC_TRY(alg(m.hkdf)); break;
      case cp::osc::kAlg: ACEKDC_TRY(alg(m.alg)); break;
      case cp::osc::kSalt: ACEKDC_TRY(bstr(m.salt)); break;
      default: ACEKDC_TRY(bstr(m.context_id)); break;  // kContextId
    }
  }
  return m;
}

// ---- Cnf ----

cbor::Value Cnf::to_value() const {
  cbor::Value m = cbor::Value::map();
  if (cose_key) m.set(cp::cnf::kCoseKey, *cose_key);
  if (kid) m.set(cp::cnf::kKid, cbor::Value::bytes(*kid));
  if (osc) m.set(cp::cnf::kOscoreInputMaterial, osc->to_value());
  return m;
}

Expected<Cnf, ParamError> Cnf::from_value(const cbor::Value& v) {
  const cbor::MapEntries* entries = v.as_map();
  if (!entries) return err(Error::kWrongType);
  if (entries->size() != 1) return err(entries->empty() ? Error::kMissingParameter : Error::kBadValue);
  const auto& [k, val] = entries->front();
  auto key = k.as_int();
  if (!key) return err(Error::kUnknownKey);
  Cnf c;
  switch (*key) {
    case cp::cnf::kOscoreInputMaterial: {
      auto m = OscoreInputMaterial::from_value(val);
      if (!m) return unexpected(m.error());
      c.osc = std::move(*m);
      return c;
    }
    case cp::cnf::kKid:
      if (!val.is_bytes()) return err(Error::kWrongType, *key);
      c.kid = *val.as_bytes();
      return c;
    case cp::cnf::kCoseKey:
      if (!val.is_map()) return err(Error::kWrongType, *key);
      c.cose_key = val;
      return c;
    default:
      return err(Error::kUnknownKey, *key);
  }
}

// ---- Token request / response ----

Bytes TokenRequest::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  size_t n = (req_cnf ? 1 : 0) + (audience ? 1 : 0) + (scope ? 1 : 0) + (client_id ? 1 : 0) +
             (grant_type ? 1 : 0) + (ace_profile_requested ? 1 : 0);
  e.put_map(n);
  if (req_cnf) e.put_int(cp::ace::kReqCnf).put_raw(cbor::encode(req_cnf->to_value()));
  if (audience) e.put_int(cp::ace::kAudience).put_tstr(*audience);
  if (scope) put_scope(e.put_int(cp::ace::kScope), *scope);
  if (client_id) e.put_int(cp::ace::kClientId).put_tstr(*client_id);
  if (grant_type) e.put_int(cp::ace::kGrantType).put_uint(*grant_type);
  if (ace_profile_requested) e.put_int(cp::ace::kAceProfile).put_null();
  return out;
}

Expected<TokenRequestView, ParamError> TokenRequestView::decode(ByteView in) {
  TokenRequestView t;
  auto r = read_map(
      in,
      {cp::ace::kReqCnf, cp::ace::kAudience, cp::ace::kScope, cp::ace::kClientId, cp::ace::kGrantType,
       cp::ace::kAceProfile},
      [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
        switch (key) {
          case cp::ace::kReqCnf: {
            auto v = get_value(d, key);
            if (!v) return unexpected(v.error());
            auto c = Cnf::from_value(*v);
            if (!c) return unexpected(ParamError{c.error().error, key});
            t.req_cnf = std::move(*c);
            return {};
          }
          case cp::ace::kAudience: {
            auto v = get_tstr_view(d, key);
            if (!v) return unexpected(v.error());
            t.audience = *v;
            return {};
          }
          case cp::ace::kScope: {
            ScopeParamView s;
            if (d.next_is(cbor::Major::kText)) {
              auto v = get_tstr_view(d, key);
              if (!v) return unexpected(v.error());
              s.is_text = true;
              s.value = as_bytes(*v);
            } else {
              auto v = get_bstr_view(d, key);
              if (!v) return unexpected(v.error());
              s.value = *v;
            }
            t.scope = s;
            return {};
          }
          case cp::ace::kClientId: {
            auto v = get_tstr_view(d, key);
            if (!v) return unexpected(v.error());
            t.client_id = *v;
            return {};
          }
          case cp::ace::kGrantType: {
            auto v = get_uint(d, key);
            if (!v) return unexpected(v.error());
            t.grant_type = *v;
            return {};
          }
          default: {  // kAceProfile: null in a request
            auto v = get_null(d, key);
            if (!v) return unexpected(v.error());
            t.ace_profile_requested = true;
            return {};
          }
        }
      });
  if (!r) return unexpected(r.error());
  return t;
}

Expected<TokenRequest, ParamError> TokenRequest::decode(ByteView in) {
  auto v = TokenRequestView::decode(in);
  if (!v) return unexpected(v.error());
  TokenRequest t;
  t.grant_type = v->grant_type;
  if (v->client_id) t.client_id = std::string(*v->client_id);
  if (v->scope) t.scope = ScopeParam{v->scope->is_text, to_bytes(v->scope->value)};
  if (v->audience) t.audience = std::string(*v->audience);
  t.req_cnf = std::move(v->req_cnf);
  t.ace_profile_requested = v->ace_profile_requested;
  return t;
}

Bytes TokenResponse::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  size_t n = 1 + (expires_in ? 1 : 0) + (cnf ? 1 : 0) + (scope ? 1 : 0) + (token_type ? 1 : 0) +
             (ace_profile ? 1 : 0) + (rs_cnf ? 1 : 0);
  e.put_map(n);
  e.put_int(cp::ace::kAccessToken).put_bstr(access_token);
  if (expires_in) e.put_int(cp::ace::kExpiresIn).put_uint(*expires_in);
  if (cnf) e.put_int(cp::ace::kCnf).put_raw(cbor::encode(cnf->to_value()));
  if (scope) put_scope(e.put_int(cp::ace::kScope), *scope);
  if (token_type) e.put_int(cp::ace::kTokenType).put_int(*token_type);
  if (ace_profile) e.put_int(cp::ace::kAceProfile).put_int(*ace_profile);
  if (rs_cnf) e.put_int(cp::ace::kRsCnf).put_raw(cbor::encode(*rs_cnf));
  return out;
}

Expected<TokenResponse, ParamError> TokenResponse::decode(ByteView in) {
  TokenResponse t;
  bool have_token = false;
  auto r = read_map(
      in,
      {cp::ace::kAccessToken, cp::ace::kExpiresIn, cp::ace::kCnf, cp::ace::kScope, cp::ace::kTokenType,
       cp::ace::kAceProfile, cp::ace::kRsCnf},
      [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
        switch (key) {
          case cp::ace::kAccessToken: {
            auto v = get_bstr(d, key);
            if (!v) return unexpected(v.error());
            t.access_token = std::move(*v);
            have_token = true;
            return {};
          }
          case cp::ace::kExpiresIn: {
            auto v = get_uint(d, key);
            if (!v) return unexpected(v.error());
            t.expires_in = *v;
            return {};
          }
          case cp::ace::kCnf: {
            auto v = get_value(d, key);
            if (!v) return unexpected(v.error());
            auto c = Cnf::from_value(*v);
            if (!c) return unexpected(ParamError{c.error().error, key});
            t.cnf = std::move(*c);
            return {};
          }
          case cp::ace::kScope: {
            auto v = get_scope(d, key);
            if (!v) return unexpected(v.error());
            t.scope = std::move(*v);
            return {};
          }
          case cp::ace::kTokenType: {
            auto v = get_int(d, key);
            if (!v) return unexpected(v.error());
            t.token_type = *v;
            return {};
          }
          case cp::ace::kAceProfile: {
            auto v = get_int(d, key);
            if (!v) return unexpected(v.error());
            t.ace_profile = *v;
            return {};
          }
          default: {  // kRsCnf
            auto v = get_value(d, key);
            if (!v) return unexpected(v.error());
            if (!v->is_map()) return err(Error::kWrongType, key);
            t.rs_cnf = std::move(*v);
            return {};
          }
        }
      });
  if (!r) return unexpected(r.error());
  if (!have_token) return err(Error::kMissingParameter, cp::ace::kAccessToken);
  return t;
}

// ---- Error response ----

Bytes ErrorResponse::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(description ? 2 : 1);
  e.put_int(cp::ace::kError).put_int(error);
  if (description) e.put_int(cp::ace::kErrorDescription).put_tstr(*description);
  return out;
}

Expected<ErrorResponse, ParamError> ErrorResponse::decode(ByteView in) {
  ErrorResponse t;
  bool have_error = false;
  auto r = read_map(in, {cp::ace::kError, cp::ace::kErrorDescription},
                    [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
                      if (key == cp::ace::kError) {
                        auto v = get_int(d, key);
                        if (!v) return unexpected(v.error());
                        t.error = *v;
                        have_error = true;
                        return {};
                      }
                      auto v = get_tstr(d, key);
                      if (!v) return unexpected(v.error());
                      t.description = std::move(*v);
                      return {};
                    });
  if (!r) return unexpected(r.error());
  if (!have_error) return err(Error::kMissingParameter, cp::ace::kError);
  return t;
}

uint8_t error_coap_code(int64_t error) {
  return error == cp::ace::kErrInvalidClient ? cp::coap::code::kUnauthorized : cp::coap::code::kBadRequest;
}

const char* error_name(int64_t error) {
  switch (error) {
    case cp::ace::kErrInvalidRequest: return "invalid_request";
    case cp::ace::kErrInvalidClient: return "invalid_client";
    case cp::ace::kErrInvalidGrant: return "invalid_grant";
    case cp::ace::kErrUnauthorizedClient: return "unauthorized_client";
    case cp::ace::kErrUnsupportedGrantType: return "unsupported_grant_type";
    case cp::ace::kErrInvalidScope: return "invalid_scope";
    case cp::ace::kErrUnsupportedPopKey: return "unsupported_pop_key";
    case cp::ace::kErrIncompatibleAceProfiles: return "incompatible_ace_profiles";
  }
  return "unknown_error";
}

// ---- Introspection ----

Bytes IntrospectionRequest::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(1).put_int(cp::ace::kToken).put_bstr(token);
  return out;
}

Expected<IntrospectionRequest, ParamError> IntrospectionRequest::decode(ByteView in) {
  IntrospectionRequest t;
  bool have = false;
  auto r = read_map(in, {cp::ace::kToken}, [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
    auto v = get_bstr(d, key);
    if (!v) return unexpected(v.error());
    t.token = std::move(*v);
    have = true;
    return {};
  });
  if (!r) return unexpected(r.error());
  if (!have) return err(Error::kMissingParameter, cp::ace::kToken);
  return t;
}

Expected<IntrospectionResponse, ParamError> IntrospectionResponse::decode(ByteView in) {
  if (in.size() > kMaxPayload) return err(Error::kTooLarge);
  cbor::Limits l = strict_limits();
  l.reject_duplicate_keys = true;
  auto v = cbor::decode(in, l);
  if (!v || !v->is_map()) return err(Error::kMalformed);
  IntrospectionResponse r;
  cbor::MapEntries rest;
  bool have_active = false;
  for (const auto& [k, val] : *v->as_map()) {
    if (k.as_int() == int64_t{cp::ace::kActive}) {
      auto b = val.as_bool();
      if (!b) return err(Error::kWrongType, cp::ace::kActive);
      r.active = *b;
      have_active = true;
    } else {
      rest.emplace_back(k, val);
    }
  }
  if (!have_active) return err(Error::kMissingParameter, cp::ace::kActive);
  auto claims = cwt::Claims::from_value(cbor::Value::map(std::move(rest)));
  if (!claims) return err(Error::kWrongType);
  r.claims = std::move(*claims);
  return r;
}

// ---- Token POST ----

Bytes AuthzInfoRequest::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  size_t n = 1 + (nonce1 ? 1 : 0) + (client_recipient_id ? 1 : 0) + (sign_info_requested ? 1 : 0) +
             (pub_key_enc_requested ? 1 : 0);
  e.put_map(n);
  e.put_int(cp::ace::kAccessToken).put_bstr(access_token);
  if (nonce1) e.put_int(cp::ace::kNonce1).put_bstr(*nonce1);
  if (client_recipient_id) e.put_int(cp::ace::kAceClientRecipientId).put_bstr(*client_recipient_id);
  if (sign_info_requested) e.put_int(cp::ace::kSignInfo).put_null();
  if (pub_key_enc_requested) e.put_int(cp::ace::kPubKeyEnc).put_null();
  return out;
}

Expected<AuthzInfoRequest, ParamError> AuthzInfoRequest::decode(ByteView in) {
  AuthzInfoRequest t;
  bool have_token = false;
  auto r = read_map(in,
                    {cp::ace::kAccessToken, cp::ace::kNonce1, cp::ace::kAceClientRecipientId,
                     cp::ace::kSignInfo, cp::ace::kPubKeyEnc},
                    [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
                      switch (key) {
                        case cp::ace::kAccessToken: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          t.access_token = std::move(*v);
                          have_token = true;
                          return {};
                        }
                        case cp::ace::kNonce1: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          t.nonce1 = std::move(*v);
                          return {};
                        }
                        case cp::ace::kAceClientRecipientId: {
                          auto v = get_bstr(d, key);
                          if (!v) return unexpected(v.error());
                          t.client_recipient_id = std::move(*v);
                          return {};
                        }
                        case cp::ace::kSignInfo: {
                          auto v = get_null(d, key);
                          if (!v) return unexpected(v.error());
                          t.sign_info_requested = true;
                          return {};
                        }
                        default: {  // kPubKeyEnc
                          auto v = get_null(d, key);
                          if (!v) return unexpected(v.error());
                          t.pub_key_enc_requested = true;
                          return {};
                        }
                      }
                    });
  if (!r) return unexpected(r.error());
  if (!have_token) return err(Error::kMissingParameter, cp::ace::kAccessToken);
  return t;
}

cbor::Value SignInfo::to_value() const {
  return cbor::Value::array({alg_value(sign_alg), sign_parameters, sign_key_parameters});
}

Expected<SignInfo, ParamError> SignInfo::from_value(const cbor::Value& v) {
  const cbor::Array* a = v.as_array();
  if (!a) return err(Error::kWrongType, cp::ace::kSignInfo);
  if (a->size() != 3) return err(Error::kBadValue, cp::ace::kSignInfo);
  SignInfo s;
  if (auto i = (*a)[0].as_int()) {
    s.sign_alg = *i;
  } else if (const std::string* t = (*a)[0].as_text()) {
    s.sign_alg = *t;
  } else {
    return err(Error::kWrongType, cp::ace::kSignInfo);
  }
  s.sign_parameters = (*a)[1];
  s.sign_key_parameters = (*a)[2];
  return s;
}

Bytes AuthzInfoResponse::encode() const {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  size_t n = (nonce2 ? 1 : 0) + (server_recipient_id ? 1 : 0) + (sign_info.empty() ? 0 : 1) +
             (rsnonce ? 1 : 0) + (has_pub_key_enc ? 1 : 0);
  e.put_map(n);
  if (nonce2) e.put_int(cp::ace::kNonce2).put_bstr(*nonce2);
  if (server_recipient_id) e.put_int(cp::ace::kAceServerRecipientId).put_bstr(*server_recipient_id);
  if (!sign_info.empty()) {
    e.put_int(cp::ace::kSignInfo);
    if (sign_info.size() == 1) {
      e.put_raw(cbor::encode(sign_info.front().to_value()));
    } else {
      e.put_array(sign_info.size());
      for (const auto& s : sign_info) e.put_raw(cbor::encode(s.to_value()));
    }
  }
  if (rsnonce) e.put_int(cp::ace::kRsNonce).put_bstr(*rsnonce);
  if (has_pub_key_enc) {
    e.put_int(cp::ace::kPubKeyEnc);
    auto put_one = [&](const std::optional<int64_t>& p) {
      if (p) {
        e.put_int(*p);
      } else {
        e.put_null();
      }
    };
    if (pub_key_enc.size() == 1) {
      put_one(pub_key_enc.front());
    } else {
      e.put_array(pub_key_enc.size());
      for (const auto& p : pub_key_enc) put_one(p);
    }
  }
  return out;
}

Expected<AuthzInfoResponse, ParamError> AuthzInfoResponse::decode(ByteView in) {
  AuthzInfoResponse t;
  auto r = read_map(
      in,
      {cp::ace::kNonce2, cp::ace::kAceServerRecipientId, cp::ace::kSignInfo, cp::ace::kRsNonce,
       cp::ace::kPubKeyEnc},
      [&](int64_t key, cbor::Decoder& d) -> Expected<void, ParamError> {
        switch (key) {
          case cp::ace::kNonce2: {
            auto v = get_bstr(d, key);
            if (!v) return unexpected(v.error());
            t.nonce2 = std::move(*v);
            return {};
          }
          case cp::ace::kAceServerRecipientId: {
            auto v = get_bstr(d, key);
            if (!v) return unexpected(v.error());
            t.server_recipient_id = std::move(*v);
            return {};
          }
          case cp::ace::kRsNonce: {
            auto v = get_bstr(d, key);
            if (!v) return unexpected(v.error());
            t.rsnonce = std::move(*v);
            return {};
          }
          case cp::ace::kSignInfo: {
            auto v = get_value(d, key);
            if (!v) return unexpected(v.error());
            const cbor::Array* a = v->as_array();
            if (!a) return err(Error::kWrongType, key);
            if (a->empty()) return err(Error::kBadValue, key);
            if ((*a)[0].is_array()) {  // one triple per group
              for (const auto& item : *a) {
                auto s = SignInfo::from_value(item);
                if (!s) return unexpected(s.error());
                t.sign_info.push_back(std::move(*s));
              }
            } else {
              auto s = SignInfo::from_value(*v);
              if (!s) return unexpected(s.error());
              t.sign_info.push_back(std::move(*s));
            }
            return {};
          }
          default: {  // kPubKeyEnc
            auto v = get_value(d, key);
            if (!v) return unexpected(v.error());
            t.has_pub_key_enc = true;
            auto one = [&](const cbor::Value& x) -> Expected<void, ParamError> {
              if (x.is_null()) {
                t.pub_key_enc.push_back(std::nullopt);
                return {};
              }
              auto i = x.as_int();
              if (!i) return err(Error::kWrongType, key);
              t.pub_key_enc.push_back(*i);
              return {};
            };
            if (const cbor::Array* a = v->as_array()) {
              if (a->empty()) return err(Error::kBadValue, key);
              for (const auto& x : *a) ACEKDC_TRY(one(x));
              return {};
            }
            return one(*v);
          }
        }
      });
  if (!r) return unexpected(r.error());
  return t;
}

}  // namespace acekdc::ace
