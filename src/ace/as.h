// AuthorizationServer: the ACE AS core for group joining (RFC 9200 §5.8/§5.9, RFC 9203
// §4.1/§4.2, seed draft §3.1/§3.2), sans-I/O.
//
// It takes the payload of a POST to /token (or /introspect), the identity the
// transport authenticated (OSCORE / DTLS; this core never authenticates anyone
// itself) and `now`, and returns the CoAP response code and payload. All access
// control lives here (seed review thread): the KDC only checks tokens.
//
//   AsPolicy policy;  policy.clients = {...};  policy.audiences = {...};
//   AuthorizationServer as(provider, random, std::move(policy));
//   AsResponse r = as.handle_token("client1", payload, now);
//
// Token: a CWT (COSE_Encrypt0 under the key shared with the audience by default,
// or a COSE_Sign1 by the AS key, nested in COSE_Encrypt0 when a shared key is
// configured) with iss, aud, exp, iat, cti, scope, cnf {osc: OSCORE_Input_Material}
// and ace_profile coap_oscore. Each token request without req_cnf gets fresh
// OSCORE_Input_Material (id, ms, salt from the injected Random); a request with
// req_cnf {kid: id} (RFC 9203 §4.1, update of access rights) gets a token whose cnf
// is {kid: id} and no cnf in the response.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "ace/params.h"
#include "ace/scope.h"
#include "core/bytes.h"
#include "core/random.h"
#include "cose/key.h"
#include "crypto/provider.h"

namespace acekdc::ace {

// ClientPolicy: what one client may get.
struct ClientPolicy {
  std::string id;
  // groups: group name -> the roles it may take there (cp::role bits, scope.h);
  // looked up by string_view (transparent comparator).
  std::map<std::string, RoleSet, std::less<>> groups;
  // audiences the client may ask for (empty: any configured audience).
  std::vector<std::string> audiences;
  int64_t max_lifetime = 3600;  // seconds
};

enum class TokenProtection : uint8_t {
  kEncrypt0,  // COSE_Encrypt0 under AudiencePolicy::shared_key (the default)
  kSign1,     // COSE_Sign1 by AsPolicy::signing_key; nested in COSE_Encrypt0 under
              // shared_key when one is set (RFC 9203 §4.2: only the RS may read ms)
};

// AudiencePolicy: one KDC.
struct AudiencePolicy {
  std::string name;
  TokenProtection protection = TokenProtection::kEncrypt0;
  std::optional<cose::CoseKey> shared_key;  // symmetric, with alg (default AES-CCM-16-64-128)
  // OSCORE_Input_Material choices.
  std::optional<int> aead_alg;   // 'alg' sent when set (else the RFC 8613 default)
  std::optional<int> hkdf_alg;   // 'hkdf' sent when set
  size_t master_secret_len = 16;
  size_t salt_len = 8;
  size_t context_id_len = 0;     // > 0: a random contextId of this length
};

struct AsPolicy {
  std::string issuer = "acekdc-as";
  std::vector<ClientPolicy> clients;
  std::vector<AudiencePolicy> audiences;
  std::optional<cose::CoseKey> signing_key;  // for TokenProtection::kSign1 (with alg)
  size_t id_len = 6;                         // OSCORE_Input_Material id length
  size_t max_payload = 4096;
  size_t max_materials = 100000;             // live OSCORE_Input_Material records (5.03 beyond)
};

// AsResponse: what to send back (Content-Format application/ace+cbor when a payload).
struct AsResponse {
  uint8_t code = 0;
  Bytes payload;
};

// AsResponseView: an AsResponse whose payload is a view into the AS (see
// AuthorizationServer::handle_token_view).
struct AsResponseView {
  uint8_t code = 0;
  ByteView payload;
};

class AuthorizationServer {
 public:
  // provider and random must outlive the AS. A policy problem (see validate())
  // shows as 5.00 with no payload when a token for that audience is requested.
  AuthorizationServer(crypto::Provider& provider, Random& random, AsPolicy policy);

  // validate reports the first policy problem as text (empty when fine).
  std::string validate() const;
  // validate_audience: the same for one audience.
  std::string validate_audience(const AudiencePolicy& a) const;

  // handle_token processes a token request from `client` (the identity the
  // transport authenticated; empty = none) at unix time `now`. Answers: 2.01 with
  // the Access Information, or RFC 9200 §5.8.3 errors: invalid_client (4.01:
  // unknown or unauthenticated client, client_id differs from the authenticated
  // identity), invalid_request (malformed payload, unknown or forbidden audience,
  // req_cnf kid not issued to this client for this audience), unsupported_grant_type,
  // invalid_scope (absent, text or malformed scope, nothing allowed),
  // unsupported_pop_key (req_cnf with a COSE_Key). No state changes on an error.
  AsResponse handle_token(std::string_view client, ByteView payload, int64_t now);
  // handle_token_view is handle_token answering with a view: the payload is written
  // into a buffer the AS keeps (no allocation per token) and stays valid until the
  // next call of any handle_* on this AS. It holds the master secret of a fresh
  // OSCORE_Input_Material until then: protect or copy it and drop the view.
  AsResponseView handle_token_view(std::string_view client, ByteView payload, int64_t now);

  // handle_introspect (RFC 9200 §5.9): `requester` must be a configured audience
  // (else 4.01); the token must be addressed to it (else 4.03, no payload). A token
  // that does not verify or has expired gets {active: false}; a valid one 2.01
  // {active: true, iss, aud, exp, iat, cti, scope, cnf, ace_profile}.
  AsResponse handle_introspect(std::string_view requester, ByteView payload, int64_t now);

  // revoke marks the token with this cti as revoked: introspection answers
  // {active: false} for it from now on (RFC 9200 §5.9). At most max_materials
  // revocations are kept (false beyond, or for an empty cti).
  bool revoke(ByteView cti);

  // num_materials: OSCORE_Input_Material records kept for updates (for tests).
  size_t num_materials() const { return num_materials_; }

 private:
  // The live OSCORE_Input_Material: an open-addressing table of Slots (linear
  // probing, backward-shift deletion) keyed by material_key (never 0; key 0 marks an
  // empty slot), each naming its Material in a slab whose free records are reused
  // last-freed first. Issuing, finding and purging: one probe sequence in an array
  // of 32-byte slots (the expiry time and, usually, the whole material are in the
  // slot: see Slot), no allocation.
  // A material with an id of at most 8 bytes and an audience index below 2^16 (the
  // usual case) lives in its slot alone: issuing and purging touch no other
  // memory. Any other keeps its Material record in the slab (kLongRecord).
  struct Slot {
    uint64_t key = 0;  // 0: empty
    int64_t exp = 0;
    uint64_t word = 0;      // the id's bytes (little-endian), or the index in materials_
    uint32_t client = 0;    // index in policy_.clients
    uint16_t audience = 0;  // index in policy_.audiences
    uint8_t id_len = 0;     // kLongRecord: the material is materials_[word]
  };
  static constexpr uint8_t kLongRecord = 0xff;
  struct Material {
    uint32_t client = 0;    // index in policy_.clients
    uint32_t audience = 0;  // index in policy_.audiences
    std::string id;         // the material id
  };
  // slot_matches: `slot` holds the material (audience, id).
  bool slot_matches(const Slot& slot, size_t audience, ByteView id) const;
  // slot_client: the client index of the material in `slot`.
  uint32_t slot_client(const Slot& slot) const {
    return slot.id_len == kLongRecord ? materials_[slot.word].client : slot.client;
  }
  // AudienceState: what a token for one audience repeats, made once on first use:
  // the keyed AEAD of its shared key and the constant CBOR of its tokens (only for
  // COSE_Encrypt0 with a keyed AEAD; ready == false: the general path).
  struct AudienceState {
    bool made = false;  // made once (ready or not)
    bool ready = false;
    std::unique_ptr<crypto::Aead> aead;
    Bytes enc_aad;        // Enc_structure (RFC 9052 §5.3) of the protected header
    Bytes token_head;     // tag, array(3), bstr(protected), {4: kid, 5: bstr head of the IV}
    Bytes claims_head;    // map(8), iss, aud, the exp label
    Bytes claims_cti;     // the cti label and its bstr head
    Bytes claims_cnf;     // the cnf label, map(1), the osc label
    Bytes material;       // OSCORE_Input_Material with zeroed id, ms, salt, contextId
    size_t id_at = 0, ms_at = 0, salt_at = 0, ctx_at = 0;  // their offsets in `material`
    Bytes claims_tail;    // the ace_profile claim
    // claims_fixed: claims_head, exp and iat as 4-byte uints (zeroed), claims_cti and
    // a zeroed cti, claims_cnf, material: the claims up to the scope in one copy,
    // for exp and iat in [2^16, 2^32) (the usual case).
    Bytes claims_fixed;
    size_t fixed_exp_at = 0, fixed_iat_at = 0, fixed_cti_at = 0, fixed_mat_at = 0;
    Bytes resp_cnf;       // the Access Information's cnf label, map(1), the osc label
    Bytes resp_tail;      // the Access Information's ace_profile
  };
  const ClientPolicy* find_client(std::string_view id) const;
  const AudiencePolicy* find_audience(std::string_view name) const;
  void purge(int64_t now);
  // note_expiry records that material `key` expires at `exp` (see expiry_fifo_).
  void note_expiry(int64_t exp, uint64_t key);
  // material_key: a 64-bit hash of (audience index, id), never 0, the key of the
  // material table; the Material holds the id itself, compared on every lookup (a
  // hash collision only makes an id count as taken).
  static uint64_t material_key(size_t audience, ByteView id);
  // find_slot: the slot of `key`, nullptr when none.
  Slot* find_slot(uint64_t key);
  // prefetch_insert starts fetching the slot of `key`; prefetch_purge the slot of the next material to expire (what the
  // next call's purge reads). Hints only: no state changes.
  void prefetch_insert(uint64_t key) const;
  void prefetch_purge() const;
  // insert_material adds a record whose key is not in the table.
  void insert_material(uint64_t key, int64_t exp, uint32_t client, uint32_t audience, ByteView id);
  // erase_slot removes the record of `slot` (backward shift: no tombstones).
  void erase_slot(Slot* slot);
  // find_material: the slot of the live material (audience, id), nullptr when none.
  Slot* find_material(size_t audience, ByteView id);
  // audience_state: the cached state of an audience (made on first use).
  AudienceState& audience_state(size_t audience);
  // token_aead: the keyed AEAD of an audience's shared key (made once).
  crypto::Aead* token_aead(size_t audience);
  // issue_fresh_encrypt0 writes the token and Access Information of a fresh
  // material for an audience whose AudienceState is ready (the usual case).
  AsResponseView issue_fresh_encrypt0(AudienceState& st, size_t aud_index, size_t client_index, int64_t now,
                                      int64_t lifetime, ByteView scope_bytes, bool same_scope);
  // keep moves a response made as an AsResponse (errors, the general path) into
  // resp_buf_ and returns its view.
  AsResponseView keep(AsResponse r);

  crypto::Provider& provider_;
  Random& random_;
  AsPolicy policy_;
  // client id -> index in policy_.clients (the first of equal ids).
  std::unordered_map<std::string_view, size_t> client_index_;
  // The live OSCORE_Input_Material (see Material); size a power of two, at most
  // half full. Their expiry times, so that issuing and purging cost O(1) / O(log n),
  // not a scan of every live token: a time not below the last one queued (the usual
  // case: one lifetime, a clock that does not go back) goes to the FIFO expiry_fifo_
  // (O(1)), any other to the min-heap expiries_ (O(log n)). An entry whose time
  // differs from the material's is stale and skipped.
  std::vector<Slot> slots_;          // size a power of two, at most half full
  std::vector<Material> materials_;  // the slab of records
  std::vector<uint32_t> free_recs_;  // free records of materials_ (last freed at the back)
  size_t num_materials_ = 0;
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>, std::greater<>>
      expiries_;
  std::deque<std::pair<int64_t, uint64_t>> expiry_fifo_;  // ascending times
  std::vector<AudienceState> audience_states_;  // by audience index
  Bytes claims_buf_;  // scratch: the claims of the token being made (wiped after use)
  Bytes token_buf_;   // scratch: the token being made (general path)
  Bytes random_buf_;  // scratch: id | ms | salt | contextId | cti (wiped after use)
  Bytes scope_buf_;   // scratch: the granted scope when it differs from the request
  std::optional<Cnf> req_cnf_;  // scratch: the req_cnf of a request read by the general reader
  // resp_buf_: the payload of the last handle_token_view answer (only grows: its
  // size is a capacity, the answer's length is in the view).
  Bytes resp_buf_;
  std::vector<ScopeEntryView> requested_;  // scratch: the parsed scope
  std::vector<ScopeEntryView> granted_;    // scratch: its granted entries
  std::vector<Bytes> revoked_;  // cti values
};

// grant_scope returns the entries of `requested` that `client` may have: the roles
// asked for intersected with the allowed ones (an entry with no role gets the
// allowed roles, monitor left out when combined with others); entries left with
// no role, and groups not in the policy, are dropped.
Scope grant_scope(const ClientPolicy& client, const Scope& requested);
// granted_roles: the roles of one requested entry (`requested`, 0: none named) that a
// client allowed `allowed` there gets (0: the entry is dropped). grant_scope's rule.
RoleSet granted_roles(RoleSet allowed, RoleSet requested);

}  // namespace acekdc::ace
