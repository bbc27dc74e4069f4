#include "groupcomm/params.h"

#include <array>
#include <climits>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/key.h"

namespace acekdc::groupcomm {

namespace gc = cp::gc;

const char* to_string(ParamError e) {
  switch (e) {
    case ParamError::kMalformedCbor: return "malformed CBOR";
    case ParamError::kNotMap: return "payload is not a CBOR map";
    case ParamError::kUnknownField: return "unknown field";
    case ParamError::kDuplicateField: return "duplicate field";
    case ParamError::kWrongType: return "wrong type for field";
    case ParamError::kMissingField: return "missing field";
    case ParamError::kInvalidValue: return "invalid value for field";
    case ParamError::kTooLarge: return "too large";
    case ParamError::kTrailingBytes: return "trailing bytes after the map";
  }
  return "?";
}

const char* field_name(int key) {
  switch (key) {
    case gc::kScope: return "scope";
    case gc::kGetPubKeys: return "get_pub_keys";
    case gc::kClientCred: return "client_cred";
    case gc::kCnonce: return "cnonce";
    case gc::kGkty: return "gkty";
    case gc::kKey: return "key";
    case gc::kNum: return "num";
    case gc::kAceGroupcommProfile: return "ace-groupcomm-profile";
    case gc::kExp: return "exp";
    case gc::kPubKeys: return "pub_keys";
    case gc::kPeerRoles: return "peer_roles";
    case gc::kGroupPolicies: return "group_policies";
    case gc::kGroupSenderId: return "group_SenderId";
    case gc::kClientCredVerify: return "client_cred_verify";
    case gc::kPubKeysRepos: return "pub_keys_repos";
    case gc::kControlPath: return "control_path";
    case gc::kMgtKeyMaterial: return "mgt_key_material";
    case gc::kSignInfo: return "sign_info";
    case gc::kPubKeyEnc: return "pub_key_enc";
    case gc::kRsNonce: return "rsnonce";
  }
  return "?";
}

std::string ParamFailure::describe() const {
  std::string s = to_string(error);
  if (field != 0) {
    s += ' ';
    s += field_name(field);
    s += " (";
    s += std::to_string(field);
    s += ')';
  }
  return s;
}

namespace {

ParamFailure fail(ParamError e, int field = 0) { return ParamFailure{e, field}; }

ParamError from_cbor(const cbor::Decoder& d) {
  switch (d.error()) {
    case cbor::Error::kTypeMismatch: return ParamError::kWrongType;
    case cbor::Error::kTooLarge: return ParamError::kTooLarge;
    case cbor::Error::kTrailingBytes: return ParamError::kTrailingBytes;
    default: return ParamError::kMalformedCbor;
  }
}

cbor::Limits cbor_limits(const Limits& l) {
  cbor::Limits c;
  c.max_depth = 8;
  c.max_length = l.max_payload;
  c.allow_indefinite = false;
  return c;
}

// MapWalker reads the top-level map of a payload: each field's key once, with
// unknown and repeated keys refused. `allowed` is the list of keys the payload may
// hold (all below 64 except rsnonce/pub_key_enc, which no request carries).
class MapWalker {
 public:
  MapWalker(ByteView payload, const Limits& limits, std::initializer_list<int> allowed)
      : d_(payload, cbor_limits(limits)) {
    for (int a : allowed)
      if (num_allowed_ < allowed_.size()) allowed_[num_allowed_++] = a;
  }

  // open reads the map header; fails on too large payloads and non-maps.
  Expected<uint64_t, ParamFailure> open(ByteView payload, const Limits& limits) {
    if (payload.size() > limits.max_payload) return unexpected(fail(ParamError::kTooLarge));
    cbor::Major m;
    if (!d_.peek_major(m)) return unexpected(fail(ParamError::kMalformedCbor));
    if (m != cbor::Major::kMap) {
      // Distinguish "not a map" from garbage: only a well-formed item is "not a map".
      if (!cbor::item_size(payload, cbor_limits(limits))) return unexpected(fail(ParamError::kMalformedCbor));
      return unexpected(fail(ParamError::kNotMap));
    }
    uint64_t n = 0;
    if (!d_.read_map(n)) return unexpected(fail(from_cbor(d_)));
    // Every pair takes at least two bytes; more pairs than known keys means a
    // duplicate or unknown key, found in the loop.
    if (n > d_.rest().size() / 2) return unexpected(fail(ParamError::kMalformedCbor));
    return n;
  }
  // next_key reads one key, checks it is allowed and new.
  Expected<int, ParamFailure> next_key() {
    cbor::Major m;
    if (!d_.peek_major(m)) return unexpected(fail(ParamError::kMalformedCbor));
    if (m != cbor::Major::kUnsigned && m != cbor::Major::kNegative) {
      if (!d_.skip()) return unexpected(fail(ParamError::kMalformedCbor));
      return unexpected(fail(ParamError::kUnknownField));
    }
    int64_t k = 0;
    if (!d_.read_int(k)) return unexpected(fail(ParamError::kUnknownField));
    bool known = false;
    size_t idx = 0;
    for (; idx < num_allowed_; ++idx)
      if (allowed_[idx] == k) { known = true; break; }
    if (!known) return unexpected(fail(ParamError::kUnknownField, k >= INT32_MIN && k <= INT32_MAX ? static_cast<int>(k) : 0));
    if (seen_ & (uint64_t{1} << idx)) return unexpected(fail(ParamError::kDuplicateField, static_cast<int>(k)));
    seen_ |= uint64_t{1} << idx;
    return static_cast<int>(k);
  }
  Expected<ByteView, ParamFailure> bstr(int field) {
    ByteView b;
    if (!d_.read_bstr(b)) return unexpected(value_error(field));
    return b;
  }
  Expected<std::string_view, ParamFailure> tstr(int field, size_t max_len) {
    std::string_view s;
    if (!d_.read_tstr(s)) return unexpected(value_error(field));
    if (s.size() > max_len) return unexpected(fail(ParamError::kTooLarge, field));
    return s;
  }
  Expected<uint64_t, ParamFailure> array(int field) {
    uint64_t n = 0;
    if (!d_.read_array(n)) return unexpected(value_error(field));
    return n;
  }
  Expected<void, ParamFailure> finish() {
    if (!d_.finish()) return unexpected(fail(from_cbor(d_)));
    return {};
  }
  cbor::Decoder& decoder() { return d_; }

 private:
  // value_error: a wrong type is kWrongType only if the value is well-formed.
  ParamFailure value_error(int field) {
    ParamError e = from_cbor(d_);
    if (e == ParamError::kWrongType) return fail(e, field);
    return fail(e, e == ParamError::kTooLarge ? field : 0);
  }
  cbor::Decoder d_;
  std::array<int, 8> allowed_{};
  size_t num_allowed_ = 0;
  uint64_t seen_ = 0;
};

}  // namespace

Expected<JoinRequest, ParamFailure> parse_join_request(ByteView payload, const Limits& limits) {
  MapWalker w(payload, limits,
              {gc::kScope, gc::kGetPubKeys, gc::kClientCred, gc::kCnonce, gc::kClientCredVerify,
               gc::kPubKeysRepos, gc::kControlPath});
  auto n = w.open(payload, limits);
  if (!n) return unexpected(n.error());
  JoinRequest r;
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = w.next_key();
    if (!k) return unexpected(k.error());
    switch (*k) {
      case gc::kScope: {
        auto v = w.bstr(*k);
        if (!v) return unexpected(v.error());
        r.scope = *v;
        break;
      }
      case gc::kGetPubKeys: {
        auto v = w.array(*k);
        if (!v) return unexpected(v.error());
        if (*v != 0) return unexpected(fail(ParamError::kInvalidValue, *k));
        r.get_pub_keys = true;
        break;
      }
      case gc::kClientCred:
      case gc::kCnonce:
      case gc::kClientCredVerify: {
        auto v = w.bstr(*k);
        if (!v) return unexpected(v.error());
        (*k == gc::kClientCred ? r.client_cred : *k == gc::kCnonce ? r.cnonce : r.client_cred_verify) = *v;
        break;
      }
      case gc::kPubKeysRepos:
      case gc::kControlPath: {
        auto v = w.tstr(*k, limits.max_text);
        if (!v) return unexpected(v.error());
        (*k == gc::kPubKeysRepos ? r.pub_keys_repos : r.control_path) = *v;
        break;
      }
    }
  }
  auto f = w.finish();
  if (!f) return unexpected(f.error());
  if (r.client_cred) {
    if (!r.cnonce) return unexpected(fail(ParamError::kMissingField, gc::kCnonce));
    if (!r.client_cred_verify) return unexpected(fail(ParamError::kMissingField, gc::kClientCredVerify));
  } else if (r.cnonce || r.client_cred_verify) {
    return unexpected(fail(ParamError::kMissingField, gc::kClientCred));
  }
  return r;
}

Expected<PubKeyFetchRequest, ParamFailure> parse_pub_key_fetch(ByteView payload, const Limits& limits) {
  MapWalker w(payload, limits, {gc::kGetPubKeys});
  auto n = w.open(payload, limits);
  if (!n) return unexpected(n.error());
  PubKeyFetchRequest r;
  bool have = false;
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = w.next_key();
    if (!k) return unexpected(k.error());
    auto count = w.array(*k);
    if (!count) return unexpected(count.error());
    if (*count == 0) return unexpected(fail(ParamError::kInvalidValue, *k));
    if (*count > limits.max_ids) return unexpected(fail(ParamError::kTooLarge, *k));
    // Each id is at least one byte: never reserve more than the input can hold.
    if (*count > w.decoder().rest().size()) return unexpected(fail(ParamError::kMalformedCbor));
    r.ids.reserve(static_cast<size_t>(*count));
    for (uint64_t j = 0; j < *count; ++j) {
      auto id = w.bstr(*k);
      if (!id) return unexpected(id.error());
      if (id->size() > limits.max_id_len) return unexpected(fail(ParamError::kTooLarge, *k));
      r.ids.push_back(*id);
    }
    have = true;
  }
  auto f = w.finish();
  if (!f) return unexpected(f.error());
  if (!have) return unexpected(fail(ParamError::kMissingField, gc::kGetPubKeys));
  return r;
}

Expected<PubKeyUpdateRequest, ParamFailure> parse_pub_key_update(ByteView payload, const Limits& limits) {
  MapWalker w(payload, limits, {gc::kClientCred, gc::kCnonce, gc::kClientCredVerify});
  auto n = w.open(payload, limits);
  if (!n) return unexpected(n.error());
  std::optional<ByteView> cred, cnonce, verify;
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = w.next_key();
    if (!k) return unexpected(k.error());
    auto v = w.bstr(*k);
    if (!v) return unexpected(v.error());
    (*k == gc::kClientCred ? cred : *k == gc::kCnonce ? cnonce : verify) = *v;
  }
  auto f = w.finish();
  if (!f) return unexpected(f.error());
  if (!cred) return unexpected(fail(ParamError::kMissingField, gc::kClientCred));
  if (!cnonce) return unexpected(fail(ParamError::kMissingField, gc::kCnonce));
  if (!verify) return unexpected(fail(ParamError::kMissingField, gc::kClientCredVerify));
  return PubKeyUpdateRequest{*cred, *cnonce, *verify};
}

Expected<LeaveRequest, ParamFailure> parse_leave_request(ByteView payload, const Limits& limits) {
  LeaveRequest r;
  if (payload.empty()) return r;
  MapWalker w(payload, limits, {gc::kScope});
  auto n = w.open(payload, limits);
  if (!n) return unexpected(n.error());
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = w.next_key();
    if (!k) return unexpected(k.error());
    auto v = w.bstr(*k);
    if (!v) return unexpected(v.error());
    r.scope = *v;
  }
  auto f = w.finish();
  if (!f) return unexpected(f.error());
  return r;
}

// ---- encoders ----

Bytes encode_join_request(const JoinRequest& r) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  uint64_t n = (r.scope ? 1 : 0) + (r.get_pub_keys ? 1 : 0) + (r.client_cred ? 1 : 0) +
               (r.cnonce ? 1 : 0) + (r.client_cred_verify ? 1 : 0) + (r.pub_keys_repos ? 1 : 0) +
               (r.control_path ? 1 : 0);
  e.put_map(n);
  if (r.scope) e.put_int(gc::kScope).put_bstr(*r.scope);
  if (r.get_pub_keys) e.put_int(gc::kGetPubKeys).put_array(0);
  if (r.client_cred) e.put_int(gc::kClientCred).put_bstr(*r.client_cred);
  if (r.cnonce) e.put_int(gc::kCnonce).put_bstr(*r.cnonce);
  if (r.client_cred_verify) e.put_int(gc::kClientCredVerify).put_bstr(*r.client_cred_verify);
  if (r.pub_keys_repos) e.put_int(gc::kPubKeysRepos).put_tstr(*r.pub_keys_repos);
  if (r.control_path) e.put_int(gc::kControlPath).put_tstr(*r.control_path);
  return out;
}

Bytes encode_pub_key_fetch(const std::vector<Bytes>& ids) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(1).put_int(gc::kGetPubKeys).put_array(ids.size());
  for (const auto& id : ids) e.put_bstr(id);
  return out;
}

Bytes encode_pub_key_update(ByteView client_cred, ByteView cnonce, ByteView client_cred_verify) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(3)
      .put_int(gc::kClientCred).put_bstr(client_cred)
      .put_int(gc::kCnonce).put_bstr(cnonce)
      .put_int(gc::kClientCredVerify).put_bstr(client_cred_verify);
  return out;
}

void encode_roles(kdc::RoleSet roles, cbor::Encoder& enc) {
  static constexpr struct {
    int role;
    const char* name;
  } kRoles[] = {{cp::role::kRequester, cp::role::kRequesterName},
                {cp::role::kResponder, cp::role::kResponderName},
                {cp::role::kMonitor, cp::role::kMonitorName}};
  size_t n = 0;
  for (const auto& r : kRoles)
    if (roles & (1u << r.role)) ++n;
  if (n != 1) enc.put_array(n);
  for (const auto& r : kRoles)
    if (roles & (1u << r.role)) enc.put_tstr(r.name);
}

namespace {

// put_pub_keys writes pub_keys (bstr wrapping a COSE_KeySet, kid = Sender ID) and
// peer_roles in the same order.
Expected<void, ParamFailure> put_pub_keys(const std::vector<MemberKey>& members, cbor::Encoder& e) {
  cose::KeySet set;
  set.keys.reserve(members.size());
  for (const auto& m : members) {
    auto k = cose::CoseKey::decode(m.public_key);
    if (!k) return unexpected(fail(ParamError::kInvalidValue, gc::kPubKeys));
    cose::CoseKey pub = k->public_key();
    pub.kid.assign(m.sender_id.begin(), m.sender_id.end());
    set.keys.push_back(std::move(pub));
  }
  e.put_int(gc::kPubKeys).put_bstr(set.encode(false));
  e.put_int(gc::kPeerRoles).put_array(members.size());
  for (const auto& m : members) encode_roles(m.roles, e);
  return {};
}

void put_int_array(const std::vector<int>& v, cbor::Encoder& e) {
  e.put_array(v.size());
  for (int x : v) e.put_int(x);
}

}  // namespace

Expected<Bytes, ParamFailure> encode_key_distribution(const KeyDistribution& kd) {
  if (!kd.config || !kd.key) return unexpected(fail(ParamError::kInvalidValue));
  const kdc::GroupConfig& c = *kd.config;
  const kdc::GroupKeyMaterial& k = *kd.key;
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(5 + (kd.include_pub_keys ? 2 : 0) + (kd.include_policies ? 1 : 0));
  e.put_int(gc::kGkty).put_int(gc::kGktyGroupOscoreInputMaterial);
  // key: Group_OSCORE_Input_Material (REQ7), labels ascending.
  e.put_int(gc::kKey).put_map(7 + (kd.sender_id ? 1 : 0));
  e.put_int(cp::osc::kMs).put_bstr(k.master_secret);
  e.put_int(cp::osc::kHkdf).put_int(c.hkdf_alg);
  e.put_int(cp::osc::kAlg).put_int(c.aead_alg);
  e.put_int(cp::osc::kSalt).put_bstr(k.master_salt);
  e.put_int(cp::osc::kContextId).put_bstr(k.group_id);
  if (kd.sender_id) e.put_int(cp::osc::kGroupSenderId).put_bstr(*kd.sender_id);
  e.put_int(cp::osc::kSignAlg).put_int(c.sign_info.sign_alg);
  // sign_params: [sign_parameters, sign_key_parameters] of the group's sign_info.
  e.put_int(cp::osc::kSignParams).put_array(2);
  put_int_array(c.sign_info.sign_params, e);
  put_int_array(c.sign_info.sign_key_params, e);
  e.put_int(gc::kNum).put_uint(k.num);
  e.put_int(gc::kAceGroupcommProfile).put_int(gc::kProfileCoapGroupOscoreApp);
  e.put_int(gc::kExp).put_uint(k.exp > 0 ? static_cast<uint64_t>(k.exp) : 0);
  if (kd.include_pub_keys) {
    auto r = put_pub_keys(kd.members, e);
    if (!r) return unexpected(r.error());
  }
  if (kd.include_policies) e.put_int(gc::kGroupPolicies).put_raw(kdc::encode_group_policies(c.policies));
  return out;
}

Expected<Bytes, ParamFailure> encode_pub_keys_response(const std::vector<MemberKey>& members) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  if (members.empty()) {
    e.put_bstr({});
    return out;
  }
  e.put_map(2);
  auto r = put_pub_keys(members, e);
  if (!r) return unexpected(r.error());
  return out;
}

Bytes encode_policies_response(const kdc::GroupPolicies& p) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(1).put_int(gc::kGroupPolicies).put_raw(kdc::encode_group_policies(p));
  return out;
}

Bytes encode_num(uint64_t num) {
  Bytes out;
  Writer w(out);
  cbor::Encoder(w).put_uint(num);
  return out;
}

Bytes encode_sender_id_response(ByteView sender_id) {
  Bytes out;
  Writer w(out);
  cbor::Encoder(w).put_map(1).put_int(gc::kGroupSenderId).put_bstr(sender_id);
  return out;
}

Bytes encode_rsnonce_response(ByteView rsnonce) {
  Bytes out;
  Writer w(out);
  cbor::Encoder(w).put_map(1).put_int(gc::kRsNonce).put_bstr(rsnonce);
  return out;
}

}  // namespace acekdc::groupcomm
