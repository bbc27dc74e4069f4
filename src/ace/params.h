// ACE parameter codecs (application/ace+cbor, RFC 9200 §5.8, RFC 9203 §3.2/§4.1,
// seed draft §3.3): token request and response, error response, introspection,
// OSCORE_Input_Material, and the token POST to /authz-info with its 2.01 answer.
//
// Parsing is strict: the payload must be exactly one definite-length CBOR map with
// integer keys; a key this codec does not know, a key given twice, or a value of
// the wrong type is an error naming the key. Every number comes from
// core/codepoints.h. Encoders write the keys in ascending order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cbor/value.h"
#include "core/bytes.h"
#include "cwt/cwt.h"
#include "core/expected.h"

namespace acekdc::ace {

// Error: why a payload (or a parameter set) was refused.
enum class Error : uint8_t {
  kMalformed = 1,     // not one well-formed CBOR map (or indefinite length, trailing bytes)
  kDuplicateKey,      // a key appears twice
  kUnknownKey,        // a key this message does not define (or a non-integer key)
  kWrongType,         // a value of the wrong CBOR type
  kMissingParameter,  // a required parameter is absent
  kBadValue,          // right type, value not acceptable (unknown grant type, bad length, ...)
  kTooLarge,          // above a configured limit
};
const char* to_string(Error e);

// ParamError: an Error and the parameter (map key) it concerns, if any.
struct ParamError {
  Error error;
  std::optional<int64_t> key;
  // describe returns e.g. "duplicate key 5"; never includes parameter values.
  std::string describe() const;
};

// AlgId: a COSE algorithm given as integer or text (OSCORE_Input_Material hkdf/alg).
using AlgId = std::variant<int64_t, std::string>;

// ScopeParam: the 'scope' parameter, a byte string (this profile, seed Figure 4) or
// a text string (RFC 9200 allows both).
struct ScopeParam {
  bool is_text = false;
  Bytes value;  // the byte string, or the UTF-8 text
  friend bool operator==(const ScopeParam&, const ScopeParam&) = default;
};

// OscoreInputMaterial (RFC 9203 §3.2.1). ms is secret (zeroed on destruction).
struct OscoreInputMaterial {
  std::optional<Bytes> id;          // 0
  std::optional<uint64_t> version;  // 1
  std::optional<Bytes> ms;          // 2
  std::optional<AlgId> hkdf;        // 3
  std::optional<AlgId> alg;         // 4
  std::optional<Bytes> salt;        // 5
  std::optional<Bytes> context_id;  // 6

  OscoreInputMaterial() = default;
  OscoreInputMaterial(const OscoreInputMaterial&) = default;
  OscoreInputMaterial& operator=(const OscoreInputMaterial&) = default;
  OscoreInputMaterial(OscoreInputMaterial&&) = default;
  OscoreInputMaterial& operator=(OscoreInputMaterial&&) = default;
  ~OscoreInputMaterial() {
    if (ms) secure_zero(*ms);
  }

  cbor::Value to_value() const;
  Bytes encode() const;
  // decode / from_value: strict (an unrecognized parameter is kUnknownKey, RFC 9203 §4.2).
  static Expected<OscoreInputMaterial, ParamError> decode(ByteView cbor);
  static Expected<OscoreInputMaterial, ParamError> from_value(const cbor::Value& v);
};

// Cnf: a confirmation ('cnf' / 'req_cnf' / 'rs_cnf', RFC 9201 / RFC 8747) with exactly
// one method: an OSCORE_Input_Material (osc 4), a key reference (kid 3) or a COSE_Key
// (1, kept as CBOR).
struct Cnf {
  std::optional<OscoreInputMaterial> osc;
  std::optional<Bytes> kid;
  std::optional<cbor::Value> cose_key;
  cbor::Value to_value() const;
  static Expected<Cnf, ParamError> from_value(const cbor::Value& v);
};

// TokenRequest (RFC 9200 §5.8.1).
struct TokenRequest {
  std::optional<uint64_t> grant_type;   // 33; absent = client_credentials
  std::optional<std::string> client_id; // 24
  std::optional<ScopeParam> scope;      // 9
  std::optional<std::string> audience;  // 5
  std::optional<Cnf> req_cnf;           // 4
  bool ace_profile_requested = false;   // 38 sent as null (RFC 9200 §5.8.4.3)
  Bytes encode() const;
  static Expected<TokenRequest, ParamError> decode(ByteView cbor);
};

// TokenRequestView: a TokenRequest whose strings view the decoded payload (valid as
// long as those bytes are): decode makes no copy of client_id, scope or audience
// (req_cnf, rare, is decoded as in TokenRequest). The same checks and errors as
// TokenRequest::decode, which is built on it.
struct ScopeParamView {
  bool is_text = false;
  ByteView value;  // the byte string, or the UTF-8 text
};
struct TokenRequestView {
  std::optional<uint64_t> grant_type;
  std::optional<std::string_view> client_id;
  std::optional<ScopeParamView> scope;
  std::optional<std::string_view> audience;
  std::optional<Cnf> req_cnf;
  bool ace_profile_requested = false;
  static Expected<TokenRequestView, ParamError> decode(ByteView cbor);
};

// TokenResponse: the Access Information (RFC 9200 §5.8.2, RFC 9203 §4.2).
struct TokenResponse {
  Bytes access_token;                 // 1
  std::optional<uint64_t> expires_in; // 2
  std::optional<Cnf> cnf;             // 8
  std::optional<ScopeParam> scope;    // 9
  std::optional<int64_t> token_type;  // 34
  std::optional<int64_t> ace_profile; // 38
  std::optional<cbor::Value> rs_cnf;  // 41
  Bytes encode() const;
  static Expected<TokenResponse, ParamError> decode(ByteView cbor);
};

// ErrorResponse (RFC 9200 §5.8.3).
struct ErrorResponse {
  int64_t error = 0;                       // 30, cp::ace::kErr*
  std::optional<std::string> description;  // 31
  Bytes encode() const;
  static Expected<ErrorResponse, ParamError> decode(ByteView cbor);
};
// error_coap_code maps an 'error' value to the CoAP response code of RFC 9200
// §5.8.3: 4.01 for invalid_client, 4.00 for everything else.
uint8_t error_coap_code(int64_t error);
// error_name returns "invalid_request" etc. ("unknown_error" otherwise).
const char* error_name(int64_t error);

// IntrospectionRequest (RFC 9200 §5.9.1): the token.
struct IntrospectionRequest {
  Bytes token;  // 11
  Bytes encode() const;
  static Expected<IntrospectionRequest, ParamError> decode(ByteView cbor);
};

// IntrospectionResponse (RFC 9200 §5.9.2): 'active' (required, bool) and, for an
// active token, its claims under the CWT labels (iss, aud, exp, cti, scope, cnf,
// ace_profile, ...), kept in `claims` (registered claims type-checked, others in
// claims.other). Errors: kMalformed (not one definite-length map with no duplicate
// key), kMissingParameter / kWrongType for 'active' (10), kWrongType for a registered
// claim of the wrong type (key unknown then).
struct IntrospectionResponse {
  bool active = false;
  cwt::Claims claims;
  static Expected<IntrospectionResponse, ParamError> decode(ByteView cbor);
};

// AuthzInfoRequest: the token POST (RFC 9203 §4.1, seed §3.3).
struct AuthzInfoRequest {
  Bytes access_token;                         // 1
  std::optional<Bytes> nonce1;                // 40
  std::optional<Bytes> client_recipient_id;   // 43
  bool sign_info_requested = false;           // 45 = null
  bool pub_key_enc_requested = false;         // 204 = null
  Bytes encode() const;
  static Expected<AuthzInfoRequest, ParamError> decode(ByteView cbor);
};

// SignInfo: [sign_alg, sign_parameters, sign_key_parameters] of one group (seed §3.3).
struct SignInfo {
  AlgId sign_alg = int64_t{0};
  cbor::Value sign_parameters;       // null when none
  cbor::Value sign_key_parameters;   // null when none
  cbor::Value to_value() const;
  static Expected<SignInfo, ParamError> from_value(const cbor::Value& v);
};

// AuthzInfoResponse: the 2.01 to a token POST. sign_info / pub_key_enc hold one entry
// per group of the token's scope, in scope order. On the wire (seed §3.3): with one
// group sign_info is the bare [alg, params, key_params] array and pub_key_enc a bare
// int / null; with several (the seed's TODO) an array of those, one per group.
struct AuthzInfoResponse {
  std::optional<Bytes> nonce2;                  // 42
  std::optional<Bytes> server_recipient_id;     // 44
  std::optional<Bytes> rsnonce;                 // 46
  std::vector<SignInfo> sign_info;              // 45 (absent when empty)
  bool has_pub_key_enc = false;                 // 204 present
  std::vector<std::optional<int64_t>> pub_key_enc;  // nullopt = null
  Bytes encode() const;
  static Expected<AuthzInfoResponse, ParamError> decode(ByteView cbor);
};

}  // namespace acekdc::ace
