#include "kdc/model.h"

#include <limits>

#include "cbor/cbor.h"

namespace acekdc::kdc {

const char* to_string(StoreError e) {
  switch (e) {
    case StoreError::kNotFound: return "not found";
    case StoreError::kConflict: return "conflicts with stored state";
    case StoreError::kNameTaken: return "node name already in the group";
    case StoreError::kStale: return "stale version";
    case StoreError::kFull: return "group is full";
    case StoreError::kInvalid: return "invalid argument";
    case StoreError::kBusy: return "store busy";
    case StoreError::kIo: return "store I/O error";
    case StoreError::kCorrupt: return "stored data corrupt";
    case StoreError::kSchemaTooNew: return "store schema newer than this program";
  }
  return "store error";
}

SignInfo sign_info_eddsa() {
  return SignInfo{cp::alg::kEdDSA, {cp::kty::kOKP}, {cp::kty::kOKP, cp::crv::kEd25519}};
}

SignInfo sign_info_es256() {
  return SignInfo{cp::alg::kES256, {cp::kty::kEC2}, {cp::kty::kEC2, cp::crv::kP256}};
}

static constexpr uint64_t kMaxNum = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

Expected<GroupState, StoreError> GroupState::create(GroupConfig config, GroupKeyMaterial key) {
  if (config.name.empty() || key.num != 0 || key.group_id.empty()) {
    return unexpected(StoreError::kInvalid);
  }
  GroupState g;
  g.config = std::move(config);
  g.used_group_ids.emplace(key.group_id, 0);
  g.key = std::move(key);
  return g;
}

const Member* GroupState::find_member(std::string_view node_name) const {
  auto it = members.find(node_name);
  return it == members.end() ? nullptr : &it->second;
}

const Member* GroupState::find_by_sender_id(ByteView sender_id) const {
  auto it = by_sender_id.find(sender_id);
  return it == by_sender_id.end() ? nullptr : find_member(it->second);
}

uint64_t token_id_hash(ByteView token_id) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : token_id) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

const Member* GroupState::find_by_token(ByteView token_id) const {
  if (token_id.empty()) return nullptr;
  const uint64_t h = token_id_hash(token_id);
  for (auto it = by_token.lower_bound({h, std::string()}); it != by_token.end() && it->first == h; ++it) {
    const Member* m = find_member(it->second);
    if (m && equal(m->token_id, token_id)) return m;  // in node name order
  }
  return nullptr;
}

// len_slot: the held_by_len slot of a Sender ID of `len` bytes.
static size_t len_slot(size_t len) { return len <= 8 ? len : 0; }

void GroupState::index_member(const Member& m) {
  if (!m.token_id.empty()) by_token.emplace(token_id_hash(m.token_id), m.node_name);
  ++held_by_len[len_slot(m.sender_id.size())];
}

// unindex_member drops `m`'s by_token entry.
static void unindex_member(GroupState& g, const Member& m) {
  if (!m.token_id.empty()) g.by_token.erase({token_id_hash(m.token_id), m.node_name});
  --g.held_by_len[len_slot(m.sender_id.size())];
}

bool GroupState::sender_id_available(ByteView sender_id) const {
  if (by_sender_id.count(sender_id)) return false;
  auto r = retired.find(sender_id);
  return r == retired.end() || r->second.retired_num < key.num;
}

// retire records that `m` gave up its Sender ID at `now`.
static void retire(GroupState& g, const Member& m, int64_t now) {
  g.retired.insert_or_assign(m.sender_id, RetiredSenderId{m.sender_id, now, g.key.num});
  if (g.config.departed_key_retention_s > 0 && !m.public_key.empty()) {
    g.departed.insert_or_assign(
        m.sender_id, DepartedKey{m.sender_id, m.node_name, m.roles, m.public_key, now});
  }
}

Expected<void, StoreError> GroupState::add_member(Member m) {
  if (m.node_name.empty() || m.sender_id.empty()) return unexpected(StoreError::kInvalid);
  if (members.count(m.node_name)) return unexpected(StoreError::kNameTaken);
  if (!sender_id_available(m.sender_id)) return unexpected(StoreError::kConflict);
  if (members.size() >= config.max_members) return unexpected(StoreError::kFull);
  departed.erase(m.sender_id);
  retired.erase(m.sender_id);
  by_sender_id.emplace(m.sender_id, m.node_name);
  index_member(m);
  std::string name = m.node_name;
  members.emplace(std::move(name), std::move(m));
  ++joins_since_rekey;
  return {};
}

Expected<Member, StoreError> GroupState::remove_member(std::string_view node_name, int64_t now) {
  auto it = members.find(node_name);
  if (it == members.end()) return unexpected(StoreError::kNotFound);
  Member m = std::move(it->second);
  members.erase(it);
  by_sender_id.erase(m.sender_id);
  unindex_member(*this, m);
  retire(*this, m, now);
  ++leaves_since_rekey;
  return m;
}

Expected<void, StoreError> GroupState::update_member_key(std::string_view node_name,
                                                         Bytes public_key) {
  auto it = members.find(node_name);
  if (it == members.end()) return unexpected(StoreError::kNotFound);
  it->second.public_key = std::move(public_key);
  return {};
}

Expected<void, StoreError> GroupState::update_member_sender_id(std::string_view node_name,
                                                               Bytes sender_id, int64_t now) {
  if (sender_id.empty()) return unexpected(StoreError::kInvalid);
  auto it = members.find(node_name);
  if (it == members.end()) return unexpected(StoreError::kNotFound);
  if (!sender_id_available(sender_id)) return unexpected(StoreError::kConflict);
  Member& m = it->second;
  retire(*this, m, now);
  by_sender_id.erase(m.sender_id);
  departed.erase(sender_id);
  retired.erase(sender_id);
  by_sender_id.emplace(sender_id, m.node_name);
  --held_by_len[len_slot(m.sender_id.size())];
  ++held_by_len[len_slot(sender_id.size())];
  m.sender_id = std::move(sender_id);
  return {};
}

Expected<void, StoreError> GroupState::put_key_material(GroupKeyMaterial k) {
  if (k.group_id.empty() || k.num > kMaxNum) return unexpected(StoreError::kInvalid);
  if (k.num != key.num + 1) return unexpected(StoreError::kStale);
  if (used_group_ids.count(k.group_id)) return unexpected(StoreError::kConflict);
  used_group_ids.emplace(k.group_id, k.num);
  secure_zero(key.master_secret);
  key = std::move(k);
  joins_since_rekey = 0;
  leaves_since_rekey = 0;
  return {};
}

size_t GroupState::purge_departed(int64_t now) {
  size_t n = 0;
  const int64_t retention = config.departed_key_retention_s;
  for (auto it = departed.begin(); it != departed.end();) {
    if (it->second.departed_at + retention <= now) {
      it = departed.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  const int64_t keep = config.sender_id_reuse_delay_s;
  for (auto it = retired.begin(); it != retired.end();) {
    if (it->second.retired_num < key.num && it->second.retired_at + keep <= now &&
        !departed.count(it->first)) {
      it = retired.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

RekeyDecision rekey_due(const GroupState& g, int64_t now, int64_t expiry_margin_s) {
  RekeyDecision d;
  const RekeyPolicy& p = g.config.rekey;
  auto later = [&](int64_t at) {
    if (d.check_again_at == 0 || at < d.check_again_at) d.check_again_at = at;
  };
  if (p.on_expiry && g.key.exp > 0) {
    const int64_t at = g.key.exp - expiry_margin_s;
    if (now >= at) return {true, 0};
    later(at);
  }
  const uint64_t counted =
      (p.on_join ? g.joins_since_rekey : 0) + (p.on_leave ? g.leaves_since_rekey : 0);
  if (counted == 0) return d;
  if (p.min_interval_s == 0 && p.batch_changes == 0) return {true, 0};
  if (p.batch_changes > 0 && counted >= p.batch_changes) return {true, 0};
  if (p.min_interval_s > 0) {
    const int64_t at = g.key.established_at + static_cast<int64_t>(p.min_interval_s);
    if (now >= at) return {true, 0};
    later(at);
  }
  return d;
}

// ---- CBOR form of GroupConfig (storage only; not a protocol format) ----

namespace {
constexpr uint64_t kConfigFormat = 1;
constexpr uint64_t kNumConfigFields = 14;  // format + 13 fields
enum Field : uint64_t {
  kFormat = 0, kName, kAead, kHkdf, kSignInfo, kPubKeyEnc, kPolicies, kRekey, kKeyLifetime,
  kRetention, kReuseDelay, kMaxMembers, kMulticast, kKeyRenewal,
};

void put_ints(cbor::Encoder& e, const std::vector<int>& v) {
  e.put_array(v.size());
  for (int x : v) e.put_int(x);
}
}  // namespace

Bytes encode_group_config(const GroupConfig& c) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(kNumConfigFields);
  e.put_uint(kFormat).put_uint(kConfigFormat);
  e.put_uint(kName).put_tstr(c.name);
  e.put_uint(kAead).put_int(c.aead_alg);
  e.put_uint(kHkdf).put_int(c.hkdf_alg);
  e.put_uint(kSignInfo).put_array(3).put_int(c.sign_info.sign_alg);
  put_ints(e, c.sign_info.sign_params);
  put_ints(e, c.sign_info.sign_key_params);
  e.put_uint(kPubKeyEnc).put_int(c.pub_key_enc);
  e.put_uint(kPolicies).put_array(3).put_int(c.policies.seq_sync_method)
      .put_uint(c.policies.key_update_check_interval_s).put_uint(c.policies.expiration_delta_s);
  e.put_uint(kRekey).put_array(5).put_bool(c.rekey.on_join).put_bool(c.rekey.on_leave)
      .put_bool(c.rekey.on_expiry).put_uint(c.rekey.min_interval_s).put_uint(c.rekey.batch_changes);
  e.put_uint(kKeyLifetime).put_uint(c.key_lifetime_s);
  e.put_uint(kRetention).put_uint(c.departed_key_retention_s);
  e.put_uint(kReuseDelay).put_uint(c.sender_id_reuse_delay_s);
  e.put_uint(kMaxMembers).put_uint(c.max_members);
  e.put_uint(kMulticast).put_tstr(c.multicast_address);
  e.put_uint(kKeyRenewal).put_uint(static_cast<uint64_t>(c.key_renewal));
  return out;
}

namespace {
bool read_int32(cbor::Decoder& d, int& out) {
  int64_t v;
  if (!d.read_int(v)) return false;
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    return d.fail(cbor::Error::kOverflow);
  }
  out = static_cast<int>(v);
  return true;
}
bool read_u32(cbor::Decoder& d, uint32_t& out) {
  uint64_t v;
  if (!d.read_uint(v)) return false;
  if (v > std::numeric_limits<uint32_t>::max()) return d.fail(cbor::Error::kOverflow);
  out = static_cast<uint32_t>(v);
  return true;
}
bool read_ints(cbor::Decoder& d, std::vector<int>& out) {
  uint64_t n;
  if (!d.read_array(n)) return false;
  if (n > 8) return d.fail(cbor::Error::kTooLarge);
  out.clear();
  for (uint64_t i = 0; i < n; ++i) {
    int v = 0;
    if (!read_int32(d, v)) return false;
    out.push_back(v);
  }
  return true;
}
bool expect_key(cbor::Decoder& d, uint64_t key) {
  uint64_t k;
  if (!d.read_uint(k)) return false;
  return k == key || d.fail(cbor::Error::kTypeMismatch);
}
bool expect_array(cbor::Decoder& d, uint64_t n) {
  uint64_t c;
  if (!d.read_array(c)) return false;
  return c == n || d.fail(cbor::Error::kTypeMismatch);
}
}  // namespace

Expected<GroupConfig, StoreError> decode_group_config(ByteView in) {
  cbor::Limits limits;
  limits.max_depth = 4;
  limits.max_length = 4096;
  cbor::Decoder d(in, limits);
  GroupConfig c;
  uint64_t n, format, renewal;
  std::string_view name, multicast;
  if (!d.read_map(n) || n != kNumConfigFields) return unexpected(StoreError::kCorrupt);
  expect_key(d, kFormat) && d.read_uint(format);
  if (!d.ok() || format != kConfigFormat) return unexpected(StoreError::kCorrupt);
  expect_key(d, kName) && d.read_tstr(name);
  expect_key(d, kAead) && read_int32(d, c.aead_alg);
  expect_key(d, kHkdf) && read_int32(d, c.hkdf_alg);
  expect_key(d, kSignInfo) && expect_array(d, 3) && read_int32(d, c.sign_info.sign_alg) &&
      read_ints(d, c.sign_info.sign_params) && read_ints(d, c.sign_info.sign_key_params);
  expect_key(d, kPubKeyEnc) && read_int32(d, c.pub_key_enc);
  expect_key(d, kPolicies) && expect_array(d, 3) && read_int32(d, c.policies.seq_sync_method) &&
      read_u32(d, c.policies.key_update_check_interval_s) &&
      read_u32(d, c.policies.expiration_delta_s);
  expect_key(d, kRekey) && expect_array(d, 5) && d.read_bool(c.rekey.on_join) &&
      d.read_bool(c.rekey.on_leave) && d.read_bool(c.rekey.on_expiry) &&
      read_u32(d, c.rekey.min_interval_s) && read_u32(d, c.rekey.batch_changes);
  expect_key(d, kKeyLifetime) && read_u32(d, c.key_lifetime_s);
  expect_key(d, kRetention) && read_u32(d, c.departed_key_retention_s);
  expect_key(d, kReuseDelay) && read_u32(d, c.sender_id_reuse_delay_s);
  expect_key(d, kMaxMembers) && read_u32(d, c.max_members);
  expect_key(d, kMulticast) && d.read_tstr(multicast);
  expect_key(d, kKeyRenewal) && d.read_uint(renewal);
  if (!d.finish()) return unexpected(StoreError::kCorrupt);
  if (renewal > static_cast<uint64_t>(KeyRenewal::kRekeyGroup) || name.empty()) {
    return unexpected(StoreError::kCorrupt);
  }
  c.name = std::string(name);
  c.multicast_address = std::string(multicast);
  c.key_renewal = static_cast<KeyRenewal>(renewal);
  return c;
}

Bytes encode_group_policies(const GroupPolicies& p) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(3);
  e.put_int(cp::gc::kPolicySeqSyncMethod).put_int(p.seq_sync_method);
  e.put_int(cp::gc::kPolicyKeyUpdateCheckInterval).put_uint(p.key_update_check_interval_s);
  e.put_int(cp::gc::kPolicyExpirationDelta).put_uint(p.expiration_delta_s);
  return out;
}

}  // namespace acekdc::kdc
