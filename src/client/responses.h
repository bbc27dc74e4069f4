// Decoders for the KDC's answers on the client side (seed draft
// draft-ietf-ace-key-groupcomm-05 §4.1, numbers of docs/profile.md): the Joining /
// Key Distribution Response, pub-key, policies, ctx-num and the PUT nodes/NODENAME
// answer. Each takes the response payload and fails with kBadResponse (detail
// names the field) when it does not have the expected shape.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "client/error.h"
#include "core/bytes.h"
#include "core/expected.h"

namespace acekdc::client {

// PubKey: one entry of pub_keys with its peer_roles entry.
struct PubKey {
  Bytes sender_id;   // the COSE_Key's kid
  Bytes cose_key;    // the COSE_Key as sent (public)
  int crv = 0;
  Bytes x;           // public key bytes
  std::vector<std::string> roles;
};

// GroupKeys: the group keying material a member holds (Group_OSCORE_Input_Material).
struct GroupKeys {
  uint64_t num = 0;
  Bytes group_id;                 // contextId
  std::optional<Bytes> sender_id; // group_SenderId: the member's own (absent for a monitor / GET keys)
  Bytes master_secret;            // SECRET: never print unless asked
  Bytes master_salt;
  std::optional<int64_t> aead_alg;
  std::optional<int64_t> hkdf_alg;
  std::optional<int64_t> exp;
  std::optional<int64_t> profile;
  std::vector<PubKey> pub_keys;   // when the response carried pub_keys
};

// Policy: one group_policies entry (label -> integer value).
struct Policy {
  int64_t label = 0;
  int64_t value = 0;
};

Expected<GroupKeys, Failure> decode_key_distribution(ByteView payload);
// decode_pub_keys: {pub_keys: bstr(COSE_KeySet), peer_roles: [...]}, or the
// zero-length byte string (no keys stored).
Expected<std::vector<PubKey>, Failure> decode_pub_keys(ByteView payload);
Expected<std::vector<Policy>, Failure> decode_policies(ByteView payload);
Expected<uint64_t, Failure> decode_num(ByteView payload);
Expected<Bytes, Failure> decode_sender_id_response(ByteView payload);
// find_rsnonce returns the rsnonce of a REQ17 4.00 answer, if the payload has one.
std::optional<Bytes> find_rsnonce(ByteView payload);

// policy_name names a group_policies label (REQ14), or "" for an unknown one.
const char* policy_name(int64_t label);

}  // namespace acekdc::client
