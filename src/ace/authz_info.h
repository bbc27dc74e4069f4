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
//
// Introspection (RFC 9200 §5.9), optional: set_introspection(introspector, config).
// The round trip to the AS is the Introspector's (the serve loop does a blocking
// CoAP request over the KDC-AS OSCORE context; tests call the AS core directly);
// this class builds the request, parses the answer and caches it for
// IntrospectionConfig::cache_ttl (never past the token's exp). Modes:
//   kFallback: only a token that does not verify locally (no key, opaque, ...) is
//              sent to the AS; an active answer supplies its claims.
//   kAlways:   every token is also checked at the AS (local claims are used when
//              the token verifies locally, the AS's otherwise).
// Outcomes: {active: false} -> 4.01 "access token not active"; the AS answers 4.03
// -> 4.03; no usable answer -> the local failure (kFallback) or 5.03 (kAlways, or a
// kFallback token the KDC cannot read at all). Installed tokens that were checked
// at the AS are checked again by purge() when their cached answer is older than
// cache_ttl (at most max_rechecks per call); an inactive one is removed, the
// token-inactive handler is told (the group layer evicts the member), and a
// context left without tokens is returned by purge() like an expired one. No
// answer on a re-check keeps the token and pauses all re-checks for cache_ttl
// (so an unreachable AS does not stall every purge).
//
// Deferred introspection (set_deferred_introspection: no Introspector, nothing
// blocks): a token whose AS answer is needed and not cached makes
// handle_token_post / handle_token_update return code 0 with
// `introspection_pending` = the token, and queues an IntrospectionRequest
// (take_pending_introspections; one per token while it is in flight). The caller
// sends it, and when the answer came (or did not: nullopt, e.g. timeout) calls
// deliver_introspection, handles the same POST again (it then uses that answer),
// runs purge() (re-checks take their answers the same way: purge queues a request
// instead of blocking) and finally release_introspection(token).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
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

// IntrospectionReply: the AS's answer to one introspection request.
struct IntrospectionReply {
  uint8_t code = 0;  // CoAP response code (2.01 expected)
  Bytes payload;     // application/ace+cbor
};

// Introspector: the transport to the AS's /introspect endpoint (authenticated, e.g.
// OSCORE). introspect sends `request` (an encoded IntrospectionRequest) and returns
// the answer, or nullopt when none arrived (timeout, I/O or OSCORE failure). It may
// block; it is called from handle_token_post / handle_token_update / purge.
class Introspector {
 public:
  virtual ~Introspector() = default;
  virtual std::optional<IntrospectionReply> introspect(ByteView request, int64_t now) = 0;
};

enum class IntrospectMode : uint8_t {
  kFallback,  // only tokens that do not verify locally
  kAlways,    // every token
};

// PendingIntrospection: an introspection request the caller must send to the AS
// (deferred mode); `token` names it in deliver_introspection.
struct PendingIntrospection {
  Bytes token;
  Bytes request;  // encoded IntrospectionRequest (application/ace+cbor)
};

struct IntrospectionConfig {
  IntrospectMode mode = IntrospectMode::kFallback;
  int64_t cache_ttl = 60;    // seconds an answer is reused (and installed tokens re-checked)
  size_t max_cache = 1024;   // cached answers; the oldest is dropped beyond
  size_t max_rechecks = 16;  // installed tokens re-introspected per purge()
};

// TokenInactiveHandler: told when purge() removes an installed token because the AS
// answered {active: false}; context_dropped when the client has no token left
// (its OSCORE context goes too).
using TokenInactiveHandler =
    std::function<void(const ContextKey& key, const StoredToken& token, bool context_dropped)>;

// EstablishedContext: the OSCORE context to create after a successful token POST.
struct EstablishedContext {
  ContextKey key;
  oscore::ContextParams params;  // RFC 9203 §4.3, the KDC's side (holds the master secret)
  Scope scope;                   // the token's scope
  int64_t exp = 0;
  Bytes rsnonce;                 // N_S sent in the response
  // keys: oscore::derive_keys(params), computed by the POST's check; pass it as
  // oscore::ContextConfig::derived_keys so the context is not derived twice.
  std::optional<oscore::DerivedKeys> keys;
};

// TokenPostResult: the CoAP answer and what changed.
struct TokenPostResult {
  uint8_t code = 0;
  Bytes payload;          // ace+cbor map on 2.01; a diagnostic text on errors
  bool ace_cbor = false;  // payload is application/ace+cbor
  std::optional<EstablishedContext> established;  // unprotected POST success
  std::optional<ContextKey> replaced;             // an older context for the same material
  std::optional<Scope> updated_scope;             // update success: the client's new scope
  // introspection_pending (code 0, deferred introspection): the POST waits for the
  // AS's answer about this token; nothing changed, answer nothing yet.
  std::optional<Bytes> introspection_pending;
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
  // scope_of_record: scope_of() for a record the caller holds (e.g. lent by
  // TokenStore::find): no store lookup, no copy of the record.
  static std::optional<Scope> scope_of_record(const ClientRecord& rec, int64_t now);
  // rsnonce: the last N_S sent to the client (REQ17).
  std::optional<Bytes> rsnonce(const ContextKey& key) const;
  // fresh_rsnonce draws and remembers a new N_S for the client (REQ17: a KDC that
  // holds none answers 4.00 with a fresh one). kNotFound for an unknown client.
  Expected<Bytes, StoreError> fresh_rsnonce(const ContextKey& key);

  const AuthzInfoConfig& config() const { return config_; }

  // set_introspection enables checks at the AS (see the top of this file);
  // `introspector` must outlive this object (nullptr disables).
  void set_introspection(Introspector* introspector, IntrospectionConfig config = {});
  void set_token_inactive_handler(TokenInactiveHandler h) { on_inactive_ = std::move(h); }
  // set_deferred_introspection enables checks at the AS without an Introspector
  // (see the top of this file): nothing here waits for the AS.
  void set_deferred_introspection(IntrospectionConfig config);
  bool deferred_introspection() const { return deferred_; }
  // take_pending_introspections returns (and forgets) the requests to send now.
  std::vector<PendingIntrospection> take_pending_introspections();
  // deliver_introspection records the AS's answer about `token` (nullopt: none
  // came) for the re-run of the POSTs waiting for it and for purge(); ignored for
  // a token not in flight. The answer is cached like a blocking one.
  void deliver_introspection(ByteView token, const std::optional<IntrospectionReply>& reply, int64_t now);
  // release_introspection forgets a delivered answer (after the re-runs) or gives
  // up a request not sent (its token is no longer in flight).
  void release_introspection(ByteView token);
  // drop_unsent_introspection takes back a request for `token` not yet taken by
  // take_pending_introspections (nothing if it is in flight already).
  void drop_unsent_introspection(ByteView token);
  size_t num_introspections_in_flight() const { return in_flight_.size(); }
  size_t num_cached_introspections() const { return cache_.size(); }
  uint64_t num_introspections() const { return num_introspections_; }

  struct Failure {
    uint8_t code;
    std::string diagnostic;
  };
  struct ValidToken {
    StoredToken stored;
    Cnf cnf;
  };
  // validate_token runs the token checks above (without the cnf-method checks),
  // introspecting when configured (may update the introspection cache). In
  // deferred mode, Failure code 0 means "waiting for the AS" (see the top).
  Expected<ValidToken, Failure> validate_token(ByteView token, int64_t now);

 private:
  TokenPostResult fail(uint8_t code, std::string diagnostic) const;
  // post_token: handle_token_post into `r`.
  void post_token(ByteView payload, int64_t now, TokenPostResult& r);
  TokenPostResult pending(ByteView token) const;
  Expected<void, Failure> add_sign_info(const Scope& scope, bool sign_info, bool pub_key_enc,
                                        AuthzInfoResponse& resp) const;
  Bytes pick_recipient_id(ByteView id1, const std::optional<Bytes>& id_context) const;

  struct CachedAnswer {
    bool active = false;
    bool forbidden = false;  // the AS answered 4.03 (deferred mode)
    cwt::Claims claims;  // active only
    int64_t fetched = 0;
    int64_t valid_until = 0;
  };
  // introspect returns the (cached or fresh) answer for `token`; nullopt when the
  // AS gave none; a 4.03 from the AS as Failure.
  Expected<std::optional<CachedAnswer>, Failure> introspect(ByteView token, int64_t now, bool force);
  Expected<ValidToken, Failure> accept_claims(const cwt::Claims& c, ByteView token, int64_t now) const;
  // accept_view: accept_claims for a token read by cwt::verify_view, but for the
  // cnf (the caller reads it).
  Expected<StoredToken, Failure> accept_view(const cwt::ClaimsView& c, ByteView token, int64_t now) const;
  // check_token: validate_token with the token's plaintext in the caller's `plain`
  // (plain_len: how much the caller must wipe), the cnf's material read in place.
  struct TokenCheck;
  Expected<TokenCheck, Failure> check_token(ByteView token, int64_t now, MutableByteView plain, size_t& plain_len);
  // validate_general: validate_token's general path (any token shape, introspection).
  Expected<ValidToken, Failure> validate_general(ByteView token, int64_t now);
  // kMaxViewPlaintext: the largest token plaintext the one-pass path reads (on the
  // stack); larger tokens take the general path.
  static constexpr size_t kMaxViewPlaintext = 1024;
  // answer_of turns the AS's reply into an answer (nullopt: not usable) and caches it.
  Expected<std::optional<CachedAnswer>, Failure> answer_of(const Bytes& token,
                                                           const std::optional<IntrospectionReply>& reply,
                                                           int64_t now);
  bool introspecting() const { return introspector_ != nullptr || deferred_; }

  crypto::Provider& provider_;
  Random& random_;
  TokenStore& store_;
  AuthzInfoConfig config_;
  Introspector* introspector_ = nullptr;
  IntrospectionConfig introspection_;
  TokenInactiveHandler on_inactive_;
  std::map<Bytes, CachedAnswer> cache_;  // by token bytes
  uint64_t num_introspections_ = 0;
  int64_t rechecks_paused_until_ = 0;  // after an unanswered re-check (AS down)
  // pick_recipient_id's scan start (see there).
  mutable uint64_t rid_hint_ = 0;
  mutable size_t rid_hint_size_ = 0;
  mutable std::optional<Bytes> rid_hint_context_;
  // Deferred mode: requests to send, tokens whose answer is awaited, and answers
  // delivered but not yet released (nullopt: no usable answer).
  bool deferred_ = false;
  std::vector<PendingIntrospection> pending_;
  std::set<Bytes> in_flight_;
  std::map<Bytes, std::optional<CachedAnswer>> delivered_;
};

}  // namespace acekdc::ace
