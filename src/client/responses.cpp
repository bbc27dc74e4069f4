#include "client/responses.h"

#include "cbor/value.h"
#include "core/codepoints.h"
#include "cose/key.h"

namespace acekdc::client {

const char* to_string(Error e) {
  switch (e) {
    case Error::kInvalidArgument: return "invalid argument";
    case Error::kNoResponse: return "no response";
    case Error::kNotVerified: return "response not OSCORE-verified";
    case Error::kRefused: return "refused";
    case Error::kBadResponse: return "malformed response";
    case Error::kState: return "state directory";
    case Error::kNotJoined: return "not joined";
    case Error::kCrypto: return "crypto";
  }
  return "unknown error";
}

std::string Failure::describe() const {
  std::string s = to_string(error);
  if (!detail.empty()) s += ": " + detail;
  return s;
}

namespace {

Unexpected<Failure> bad(std::string what) { return unexpected(Failure{Error::kBadResponse, 0, std::move(what)}); }

Expected<cbor::Value, Failure> decode_map(ByteView payload) {
  auto v = cbor::decode(payload);
  if (!v || !v->is_map()) return bad("not a CBOR map");
  return std::move(*v);
}

Expected<std::vector<std::string>, Failure> decode_roles(const cbor::Value& v) {
  std::vector<std::string> out;
  if (const auto* t = v.as_text()) {
    out.push_back(*t);
    return out;
  }
  const auto* a = v.as_array();
  if (!a) return bad("peer_roles entry is neither text nor array");
  for (const auto& r : *a) {
    const auto* t = r.as_text();
    if (!t) return bad("peer_roles entry holds a non-text role");
    out.push_back(*t);
  }
  return out;
}

// decode_key_list reads pub_keys (bstr wrapping a COSE_KeySet) and peer_roles from map `m`.
Expected<std::vector<PubKey>, Failure> decode_key_list(const cbor::Value& m) {
  std::vector<PubKey> out;
  const cbor::Value* pk = m.find(int64_t{cp::gc::kPubKeys});
  if (!pk) return out;
  const Bytes* wrapped = pk->as_bytes();
  if (!wrapped) return bad("pub_keys is not a byte string");
  if (wrapped->empty()) return out;
  auto set = cbor::decode(*wrapped);
  if (!set || !set->is_array()) return bad("pub_keys does not wrap a COSE_KeySet");
  const cbor::Value* roles = m.find(int64_t{cp::gc::kPeerRoles});
  const cbor::Array* role_list = roles ? roles->as_array() : nullptr;
  if (roles && !role_list) return bad("peer_roles is not an array");
  if (role_list && role_list->size() != set->as_array()->size()) return bad("peer_roles and pub_keys differ in length");
  size_t i = 0;
  for (const auto& kv : *set->as_array()) {
    auto k = cose::CoseKey::from_value(kv);
    if (!k) return bad("pub_keys holds an invalid COSE_Key");
    PubKey p;
    p.sender_id = k->kid;
    p.cose_key = cbor::encode(kv);
    p.crv = k->crv;
    p.x = k->x;
    if (role_list) {
      auto r = decode_roles((*role_list)[i]);
      if (!r) return unexpected(r.error());
      p.roles = std::move(*r);
    }
    out.push_back(std::move(p));
    ++i;
  }
  return out;
}

}  // namespace

Expected<GroupKeys, Failure> decode_key_distribution(ByteView payload) {
  auto mv = decode_map(payload);
  if (!mv) return unexpected(mv.error());
  const cbor::Value& m = *mv;
  GroupKeys g;
  const cbor::Value* num = m.find(int64_t{cp::gc::kNum});
  if (!num || !num->as_uint()) return bad("num missing or not an unsigned integer");
  g.num = *num->as_uint();
  const cbor::Value* key = m.find(int64_t{cp::gc::kKey});
  if (!key || !key->is_map()) return bad("key missing or not a map");
  const cbor::Value* gid = key->find(int64_t{cp::osc::kContextId});
  if (!gid || !gid->as_bytes()) return bad("key without contextId");
  g.group_id = *gid->as_bytes();
  const cbor::Value* ms = key->find(int64_t{cp::osc::kMs});
  if (!ms || !ms->as_bytes()) return bad("key without ms");
  g.master_secret = *ms->as_bytes();
  if (const auto* v = key->find(int64_t{cp::osc::kSalt})) {
    if (!v->as_bytes()) return bad("salt is not a byte string");
    g.master_salt = *v->as_bytes();
  }
  if (const auto* v = key->find(int64_t{cp::osc::kGroupSenderId})) {
    if (!v->as_bytes()) return bad("group_SenderId is not a byte string");
    g.sender_id = *v->as_bytes();
  }
  if (const auto* v = key->find(int64_t{cp::osc::kAlg}); v && v->as_int()) g.aead_alg = *v->as_int();
  if (const auto* v = key->find(int64_t{cp::osc::kHkdf}); v && v->as_int()) g.hkdf_alg = *v->as_int();
  if (const auto* v = m.find(int64_t{cp::gc::kExp}); v && v->as_int()) g.exp = *v->as_int();
  if (const auto* v = m.find(int64_t{cp::gc::kAceGroupcommProfile}); v && v->as_int()) g.profile = *v->as_int();
  auto keys = decode_key_list(m);
  if (!keys) return unexpected(keys.error());
  g.pub_keys = std::move(*keys);
  return g;
}

Expected<std::vector<PubKey>, Failure> decode_pub_keys(ByteView payload) {
  if (payload.size() == 1 && payload[0] == 0x40) return std::vector<PubKey>{};  // h'': nothing stored
  auto mv = decode_map(payload);
  if (!mv) return unexpected(mv.error());
  const cbor::Value& m = *mv;
  if (!m.find(int64_t{cp::gc::kPubKeys})) return bad("no pub_keys");
  return decode_key_list(m);
}

Expected<std::vector<Policy>, Failure> decode_policies(ByteView payload) {
  auto mv = decode_map(payload);
  if (!mv) return unexpected(mv.error());
  const cbor::Value& m = *mv;
  const cbor::Value* gp = m.find(int64_t{cp::gc::kGroupPolicies});
  if (!gp || !gp->as_map()) return bad("group_policies missing or not a map");
  std::vector<Policy> out;
  for (const auto& [k, v] : *gp->as_map()) {
    if (!k.as_int() || !v.as_int()) return bad("group_policies entry is not integer -> integer");
    out.push_back(Policy{*k.as_int(), *v.as_int()});
  }
  return out;
}

Expected<uint64_t, Failure> decode_num(ByteView payload) {
  auto v = cbor::decode(payload);
  if (!v || !v->as_uint()) return bad("ctx-num is not an unsigned integer");
  return *v->as_uint();
}

Expected<Bytes, Failure> decode_sender_id_response(ByteView payload) {
  auto mv = decode_map(payload);
  if (!mv) return unexpected(mv.error());
  const cbor::Value& m = *mv;
  const cbor::Value* s = m.find(int64_t{cp::gc::kGroupSenderId});
  if (!s || !s->as_bytes()) return bad("group_SenderId missing");
  return *s->as_bytes();
}

std::optional<Bytes> find_rsnonce(ByteView payload) {
  auto v = cbor::decode(payload);
  const cbor::Value* n = v && v->is_map() ? v->find(int64_t{cp::gc::kRsNonce}) : nullptr;
  if (!n || !n->as_bytes()) return std::nullopt;
  return *n->as_bytes();
}

const char* policy_name(int64_t label) {
  switch (label) {
    case cp::gc::kPolicySeqSyncMethod: return "sequence number synchronization method";
    case cp::gc::kPolicyKeyUpdateCheckInterval: return "key update check interval";
    case cp::gc::kPolicyExpirationDelta: return "expiration delta";
  }
  return "";
}

}  // namespace acekdc::client
