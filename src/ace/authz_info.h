// AuthzInfo: the KDC's /authz-info endpoint core (RFC 9200 §5.10.1, RFC 9203 §4.1-§4.3,
// seed draft §3.3), sans-I/O.
//
//   AuthzInfo ai(provider, random, store, config);
//   TokenPostResult r = ai.handle_token_post(payload, now);     // unprotected POST
//   if (r.established) make an OSCORE context from r.established->params;
//   if (r.replaced) drop the OSCORE context r.replaced (same material re-posted);
//   TokenPostResult u = ai.handle_token_update(ctx_key, payload, now);  // over OSCORE
//   for (auto& k : ai.purge(now)) drop the OSCORE context k (all its tokens expired);
//
// Token checks, in the order of RFC 9200 §5.10.1.1 (first failure answers):
//   payload not an ace+cbor token POST, token not a CWT (incl. bad
//   COSE headers)                                                 -> 4.00
//   COSE protection does not verify with the AS keys              -> 4.01
//   iss differs from the configured issuer                        -> 4.01
//   exp passed / nbf in the future                                -> 4.01
//   aud absent or not this KDC                                    -> 4.03
//   scope absent / malformed (parse_scope) / unknown group        -> 4.00
//   ace_profile other than coap_oscore                            -> 4.00
//   exp absent, cnf absent or not OSCORE_Input_Material with id and ms, an
//   unrecognized osc parameter, nonce1 / ace_client_recipientid missing,
//   an algorithm or ID the OSCORE derivation refuses                -> 4.00
//   (update over OSCORE: any verification failure, cnf kid not the context's
//   material id                                                   -> 4.01)
// Every error carries a diagnostic payload (text, RFC 7252 §5.5.2) and changes
// no state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ace/params.h"
#include "ace/scope.h"
#include "ace/token_store.h"
#include "core/bytes.h"
#include "core/random.h"
#include "cose/key.h"
#include "crypto/provider.h"
#include "oscore/derivation.h"

namespace acekdc::ace {

// GroupConfig: what the KDC tells a client about a group on request (seed §3.3).
struct GroupConfig {
  SignInfo sign_info;                  // [sign_alg, sign_parameters, sign_key_parameters]
  std::optional<int64_t> pub_key_enc;  // nullopt: null (no public key repository)
};

struct AuthzInfoConfig {
  std::string audience;                // this KDC's audience (aud must equal it)
  std::optional<std::string> issuer;   // when set, a token's iss (if present) must equal it
  cose::KeySet as_keys;                // shared symmetric key(s) and/or the AS public key
  std::map<std::string, GroupConfig> groups;  // the groups this KDC serves
  bool require_known_groups = true;    // a scope naming another group is refused (4.00)
  size_t nonce2_len = 8;               // RFC 9203 §4.2: 64 bits recommended
  size_t rsnonce_len = 8;
  size_t max_nonce1_len = 32;
  size_t max_payload = 2048;
  size_t max_tokens_per_client = 8;
};

// EstablishedContext: the OSCORE context to create after a successful token POST.
struct EstablishedContext {
  ContextKey key;
  oscore::ContextParams params;  // RFC 9203 §4.3, the KDC's side (holds the master secret)
  Scope scope;                   // the token's scope
  int64_t exp = 0;
  Bytes rsnonce;                 // N_S sent in the response
};

// TokenPostResult: the CoAP answer and what changed.
struct TokenPostResult {
  uint8_t code = 0;
  Bytes payload;          // ace+cbor map on 2.01; a diagnostic text on errors
  bool ace_cbor = false;  // payload is application/ace+cbor
  std::optional<EstablishedContext> established;  // unprotected POST success
  std::optional<ContextKey> replaced;             // an older context for the same material
  std::optional<Scope> updated_scope;             // update success: the client's new scope
};

class AuthzInfo {
 public:
  // provider, random and store must outlive this object.
  AuthzInfo(crypto::Provider& provider, Random& random, TokenStore& store, AuthzInfoConfig config);

  // handle_token_post: an unprotected POST to /authz-info (RFC 9203 §4.1). On 2.01 the
  // payload holds nonce2, ace_server_recipientid, rsnonce and, if asked with null,
  // sign_info / pub_key_enc; `established` carries the derived context parameters.
  TokenPostResult handle_token_post(ByteView payload, int64_t now);

  // handle_token_update: a POST to /authz-info protected with the OSCORE context `via`
  // (RFC 9203 §4.1, update of access rights). The token's cnf must be {kid: id} of
  // the context's OSCORE_Input_Material. The new token replaces the client's tokens
  // whose scope shares a group with it and is kept beside the others (several
  // tokens per client, one per scope / AS). 2.01 with rsnonce (seed §3.3) and, if
  // asked, sign_info / pub_key_enc; no nonce2 / recipient ID.
  TokenPostResult handle_token_update(const ContextKey& via, ByteView payload, int64_t now);

  // purge drops expired tokens and returns the contexts left without any token
  // (their records are erased: the KDC must drop those OSCORE contexts).
  std::vector<ContextKey> purge(int64_t now);

  // scope_of: the union of the scopes of the client's unexpired tokens (nullopt if
  // unknown or none valid).
  std::optional<Scope> scope_of(const ContextKey& key, int64_t now) const;
  // rsnonce: the last N_S sent to the client (REQ17).
  std::optional<Bytes> rsnonce(const ContextKey& key) const;
  // fresh_rsnonce draws and remembers a new N_S for the client (REQ17: a KDC that
  // holds none answers 4.00 with a fresh one). kNotFound for an unknown client.
  Expected<Bytes, StoreError> fresh_rsnonce(const ContextKey& key);

  const AuthzInfoConfig& config() const { return config_; }

  struct Failure {
    uint8_t code;
    std::string diagnostic;
  };
  struct ValidToken {
    StoredToken stored;
    Cnf cnf;
  };
  // validate_token runs the token checks above (without the cnf-method checks).
  Expected<ValidToken, Failure> validate_token(ByteView token, int64_t now) const;

 private:
  TokenPostResult fail(uint8_t code, std::string diagnostic) const;
  Expected<void, Failure> add_sign_info(const Scope& scope, const AuthzInfoRequest& req,
                                        AuthzInfoResponse& resp) const;
  Bytes pick_recipient_id(ByteView id1, const std::optional<Bytes>& id_context) const;

  crypto::Provider& provider_;
  Random& random_;
  TokenStore& store_;
  AuthzInfoConfig config_;
};

}  // namespace acekdc::ace
