// Codecs for the payloads of the KDC's /ace-group interface (seed draft
// draft-ietf-ace-key-groupcomm-05 §4.1, Content-Format 261
// application/ace-groupcomm+cbor; CBOR keys per docs/profile.md, cp::gc).
//
// Parsers are strict: the payload must be exactly one definite-length CBOR map
// with integer keys, every key known for that payload and present once, every
// value of its registered type; required fields must be present and nothing may
// follow the map. The parsed structs hold views into the payload (no copies):
// they live as long as the payload buffer does. The only allocation is the id
// list of a pub-key FETCH, bounded by the payload length and Limits::max_ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cbor/cbor.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "kdc/model.h"

namespace acekdc::groupcomm {

// ParamError: why a payload was refused (each one is a 4.00 Bad Request).
enum class ParamError : uint8_t {
  kMalformedCbor,   // not well-formed CBOR (or indefinite lengths)
  kNotMap,          // the payload is not a CBOR map
  kUnknownField,    // a key not defined for this payload (or not an integer)
  kDuplicateField,  // a key present twice
  kWrongType,       // a known key with a value of the wrong CBOR type
  kMissingField,    // a required key is absent (or one that another key requires)
  kInvalidValue,    // the right type but a value the payload forbids (non-empty
                    // get_pub_keys in a join, empty id list in a FETCH, ...)
  kTooLarge,        // above a configured limit (Limits)
  kTrailingBytes,   // bytes after the map
};
const char* to_string(ParamError e);

// ParamFailure: the error and the field it concerns (0 when none), for the
// diagnostic payload of the 4.00 response.
struct ParamFailure {
  ParamError error = ParamError::kMalformedCbor;
  int field = 0;
  // describe returns e.g. "duplicate field client_cred (5)". It never includes
  // field values.
  std::string describe() const;
};

// field_name returns the seed draft's name of an ACE Groupcomm parameter
// ("client_cred"), or "?" for an unknown key.
const char* field_name(int key);

struct Limits {
  size_t max_payload = 8192;  // bytes; above: kTooLarge
  size_t max_ids = 256;       // member ids in one pub-key FETCH
  size_t max_id_len = 64;     // bytes of one member id
  size_t max_text = 255;      // pub_keys_repos / control_path
};

// JoinRequest: POST /ace-group/GROUPNAME (seed §4.1.2.1). All fields optional
// in the draft; client_cred requires cnonce and client_cred_verify (and the
// reverse: either of those without client_cred is kMissingField client_cred).
struct JoinRequest {
  std::optional<ByteView> scope;        // contents of the scope bstr
  bool get_pub_keys = false;            // present (as an empty array): "send all keys"
  std::optional<ByteView> client_cred;  // contents of the bstr: a COSE_Key
  std::optional<ByteView> cnonce;
  std::optional<ByteView> client_cred_verify;
  std::optional<std::string_view> pub_keys_repos;
  std::optional<std::string_view> control_path;
};
Expected<JoinRequest, ParamFailure> parse_join_request(ByteView payload, const Limits& limits = {});
// encode_join_request writes a JoinRequest (client side and tests), keys ascending.
Bytes encode_join_request(const JoinRequest& r);

// PubKeyFetchRequest: FETCH /ace-group/GROUPNAME/pub-key (seed §4.1.3.1):
// {get_pub_keys: [+ bstr]} with a non-empty list of member ids (Sender IDs).
struct PubKeyFetchRequest {
  std::vector<ByteView> ids;
};
Expected<PubKeyFetchRequest, ParamFailure> parse_pub_key_fetch(ByteView payload,
                                                               const Limits& limits = {});
Bytes encode_pub_key_fetch(const std::vector<Bytes>& ids);

// PubKeyUpdateRequest: POST /ace-group/GROUPNAME/nodes/NODENAME/pub-key (seed
// §4.1.7.1): exactly client_cred, cnonce and client_cred_verify, all required.
struct PubKeyUpdateRequest {
  ByteView client_cred;
  ByteView cnonce;
  ByteView client_cred_verify;
};
Expected<PubKeyUpdateRequest, ParamFailure> parse_pub_key_update(ByteView payload,
                                                                 const Limits& limits = {});
Bytes encode_pub_key_update(ByteView client_cred, ByteView cnonce, ByteView client_cred_verify);

// LeaveRequest: DELETE /ace-group/GROUPNAME/nodes/NODENAME (seed §4.1.6.3): an
// empty payload or a map with at most 'scope'.
struct LeaveRequest {
  std::optional<ByteView> scope;
};
Expected<LeaveRequest, ParamFailure> parse_leave_request(ByteView payload, const Limits& limits = {});

// ---- responses ----

// MemberKey: one entry of pub_keys / peer_roles.
struct MemberKey {
  ByteView sender_id;   // becomes the COSE_Key's kid
  ByteView public_key;  // the stored COSE_Key (kid, if any, is replaced)
  kdc::RoleSet roles = 0;
};

// KeyDistribution: the Joining Response (2.01) and the Key Distribution
// Response (GET keys, GET nodes/NODENAME), seed §4.1.2.1 / REQ7.
struct KeyDistribution {
  const kdc::GroupConfig* config = nullptr;  // aead/hkdf/sign info, policies
  const kdc::GroupKeyMaterial* key = nullptr;
  std::optional<ByteView> sender_id;  // group_SenderId inside 'key' (the requester's own)
  bool include_policies = false;
  // include_pub_keys: add pub_keys (a bstr wrapping a COSE_KeySet) and peer_roles
  // in the same order, from `members`.
  bool include_pub_keys = false;
  std::vector<MemberKey> members;
};
// encode_key_distribution fails with kInvalidValue if a stored public key does not
// decode as a COSE_Key (a corrupt store), or config/key is null.
Expected<Bytes, ParamFailure> encode_key_distribution(const KeyDistribution& kd);

// encode_pub_keys_response: {pub_keys, peer_roles} for pub-key GET/FETCH; with no
// members the zero-length byte string the draft asks for (0x40).
Expected<Bytes, ParamFailure> encode_pub_keys_response(const std::vector<MemberKey>& members);

// encode_policies_response: {group_policies: {...}}.
Bytes encode_policies_response(const kdc::GroupPolicies& p);
// encode_num: the ctx-num payload, a CBOR unsigned integer.
Bytes encode_num(uint64_t num);
// encode_sender_id_response: {group_SenderId: bstr} (PUT nodes/NODENAME, REQ15).
Bytes encode_sender_id_response(ByteView sender_id);
// encode_rsnonce_response: {rsnonce: bstr} (REQ17: the 4.00 asking to sign again).
Bytes encode_rsnonce_response(ByteView rsnonce);

// encode_roles writes the role element of a scope entry: a tstr for one role, an
// array of tstr for several (seed §3.1).
void encode_roles(kdc::RoleSet roles, cbor::Encoder& enc);

}  // namespace acekdc::groupcomm
