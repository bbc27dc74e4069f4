#include "ace/as.h"

#include <algorithm>
#include <cstring>

#include "ace/as_request.h"
#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/algorithms.h"
#include "cose/encrypt0.h"
#include "cose/structures.h"
#include "cwt/cwt.h"

namespace acekdc::ace {

namespace {

AsResponse error_response(int64_t error, std::string description) {
  ErrorResponse e;
  e.error = error;
  e.description = std::move(description);
  return {error_coap_code(error), e.encode()};
}

AsResponse internal_error() { return {cp::coap::code::kInternalServerError, {}}; }

constexpr size_t kCtiLen = 8;  // the cti of a token (random)

}  // namespace

RoleSet granted_roles(RoleSet allowed_in, RoleSet requested) {
  if (allowed_in == 0) return 0;
  const RoleSet allowed = allowed_in & kAllRoles;
  RoleSet roles;
  if (requested == 0) {
    roles = roles_valid(allowed) ? allowed : static_cast<RoleSet>(allowed & ~kRoleMonitor);
  } else {
    roles = requested & allowed;
  }
  if (roles == 0 || !roles_valid(roles)) return 0;
  return roles;
}

Scope grant_scope(const ClientPolicy& client, const Scope& requested) {
  Scope out;
  for (const auto& e : requested.entries) {
    auto it = client.groups.find(e.group);
    if (it == client.groups.end()) continue;
    const RoleSet roles = granted_roles(it->second, e.roles);
    if (roles == 0) continue;
    out.entries.push_back(ScopeEntry{e.group, roles});
  }
  return out;
}

AuthorizationServer::AuthorizationServer(crypto::Provider& provider, Random& random, AsPolicy policy)
    : provider_(provider), random_(random), policy_(std::move(policy)) {
  for (size_t i = 0; i < policy_.clients.size(); ++i) client_index_.emplace(policy_.clients[i].id, i);
}

std::string AuthorizationServer::validate_audience(const AudiencePolicy& a) const {
  if (a.protection == TokenProtection::kEncrypt0 && !a.shared_key)
    return "audience " + a.name + ": COSE_Encrypt0 protection needs a shared key";
  if (a.protection == TokenProtection::kSign1 && !policy_.signing_key)
    return "audience " + a.name + ": COSE_Sign1 protection needs the AS signing key";
  if (a.shared_key && !a.shared_key->is_symmetric())
    return "audience " + a.name + ": the shared key must be symmetric";
  if (a.master_secret_len == 0) return "audience " + a.name + ": empty master secret";
  if (policy_.id_len == 0) return "OSCORE_Input_Material id length 0";
  return {};
}

std::string AuthorizationServer::validate() const {
  for (const auto& a : policy_.audiences) {
    std::string v = validate_audience(a);
    if (!v.empty()) return v;
  }
  return {};
}

const ClientPolicy* AuthorizationServer::find_client(std::string_view id) const {
  auto it = client_index_.find(id);
  return it == client_index_.end() ? nullptr : &policy_.clients[it->second];
}

const AudiencePolicy* AuthorizationServer::find_audience(std::string_view name) const {
  for (const auto& a : policy_.audiences)
    if (a.name == name) return &a;
  return nullptr;
}

void AuthorizationServer::note_expiry(int64_t exp, uint64_t key) {
  if (expiry_fifo_.empty() || expiry_fifo_.back().first <= exp) {
    expiry_fifo_.emplace_back(exp, key);
  } else {
    expiries_.emplace(exp, key);
  }
}

void AuthorizationServer::purge(int64_t now) {
  for (;;) {
    uint64_t key = 0;
    if (!expiry_fifo_.empty() && expiry_fifo_.front().first <= now) {
      key = expiry_fifo_.front().second;
      expiry_fifo_.pop_front();
    } else if (!expiries_.empty() && expiries_.top().first <= now) {
      key = expiries_.top().second;
      expiries_.pop();
    } else {
      break;
    }
    Slot* m = find_slot(key);
    if (m && m->exp <= now) erase_slot(m);
  }
}

uint64_t AuthorizationServer::material_key(size_t audience, ByteView id) {
  // 8 bytes at a time (an id is usually 6 random bytes: one word), then the
  // murmur3 finaliser; the length is mixed in so that ids differing only by
  // trailing zero bytes differ.
  uint64_t h = (static_cast<uint64_t>(audience) + 1) * 0x9e3779b97f4a7c15ULL ^ id.size();
  const uint8_t* p = id.data();
  size_t n = id.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    h = (h ^ x) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < n; ++i) tail |= static_cast<uint64_t>(p[i]) << (8 * i);
  h ^= tail;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

AuthorizationServer::Slot* AuthorizationServer::find_slot(uint64_t key) {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = key & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == key) return &slots_[i];
    if (slots_[i].key == 0) return nullptr;
  }
}

void AuthorizationServer::prefetch_insert(uint64_t key) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[key & (slots_.size() - 1)], 1);
}

void AuthorizationServer::prefetch_purge() const {
  if (!slots_.empty() && !expiry_fifo_.empty())
    __builtin_prefetch(&slots_[expiry_fifo_.front().second & (slots_.size() - 1)], 1);
}

void AuthorizationServer::insert_material(uint64_t key, int64_t exp, uint32_t client, uint32_t audience,
                                          ByteView id) {
  if ((num_materials_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& o : old) {
      if (o.key == 0) continue;
      size_t i = o.key & mask;
      while (slots_[i].key != 0) i = (i + 1) & mask;
      slots_[i] = o;
    }
  }
  Slot slot{key, exp, 0, client, static_cast<uint16_t>(audience), static_cast<uint8_t>(id.size())};
  if (id.size() <= 8 && audience <= 0xffff) {
    for (size_t i = 0; i < id.size(); ++i) slot.word |= static_cast<uint64_t>(id[i]) << (8 * i);
  } else {
    uint32_t rec;
    if (!free_recs_.empty()) {
      rec = free_recs_.back();
      free_recs_.pop_back();
    } else {
      rec = static_cast<uint32_t>(materials_.size());
      materials_.emplace_back();
    }
    Material& m = materials_[rec];
    m.client = client;
    m.audience = audience;
    m.id.assign(as_string(id));
    slot.word = rec;
    slot.id_len = kLongRecord;
  }
  const size_t mask = slots_.size() - 1;
  size_t i = key & mask;
  while (slots_[i].key != 0) i = (i + 1) & mask;
  slots_[i] = slot;
  ++num_materials_;
}

void AuthorizationServer::erase_slot(Slot* slot) {
  if (slot->id_len == kLongRecord) free_recs_.push_back(static_cast<uint32_t>(slot->word));
  const size_t mask = slots_.size() - 1;
  size_t hole = static_cast<size_t>(slot - slots_.data());
  // Backward shift: a later slot of the probe run moves into the hole unless its
  // home lies cyclically after the hole (it would then be unreachable).
  for (size_t j = (hole + 1) & mask; slots_[j].key != 0; j = (j + 1) & mask) {
    const size_t home = slots_[j].key & mask;
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole].key = 0;
  --num_materials_;
}

AuthorizationServer::Slot* AuthorizationServer::find_material(size_t audience, ByteView id) {
  Slot* s = find_slot(material_key(audience, id));
  return s && slot_matches(*s, audience, id) ? s : nullptr;
}

bool AuthorizationServer::slot_matches(const Slot& slot, size_t audience, ByteView id) const {
  if (slot.id_len == kLongRecord) {
    const Material& m = materials_[slot.word];
    return m.audience == audience && equal(as_bytes(m.id), id);
  }
  if (slot.audience != audience || slot.id_len != id.size()) return false;
  uint64_t word = 0;
  for (size_t i = 0; i < id.size(); ++i) word |= static_cast<uint64_t>(id[i]) << (8 * i);
  return slot.word == word;
}

crypto::Aead* AuthorizationServer::token_aead(size_t audience) {
  AudienceState& st = audience_state(audience);
  return st.aead.get();
}

namespace {

// MaterialView: the OSCORE_Input_Material of a new token, viewing the random bytes.
struct MaterialView {
  ByteView id, ms, salt, context_id;  // salt / context_id empty: absent
  std::optional<int> hkdf, alg;
};

// MaterialOffsets: where put_material wrote the contents of id, ms, salt, contextId
// (relative to the Writer's start).
struct MaterialOffsets {
  size_t id = 0, ms = 0, salt = 0, context_id = 0;
};

// put_material writes OSCORE_Input_Material (RFC 9203 §3.2.1) in ascending key order,
// as OscoreInputMaterial::encode does.
void put_material(cbor::Encoder& e, Writer& w, const MaterialView& m, MaterialOffsets* at = nullptr) {
  auto bstr = [&](ByteView b, size_t* offset) {
    e.put_bstr_header(b.size());
    if (offset) *offset = w.size();
    w.put_bytes(b);
  };
  e.put_map(2 + (m.hkdf ? 1 : 0) + (m.alg ? 1 : 0) + (m.salt.empty() ? 0 : 1) + (m.context_id.empty() ? 0 : 1));
  e.put_int(cp::osc::kId);
  bstr(m.id, at ? &at->id : nullptr);
  e.put_int(cp::osc::kMs);
  bstr(m.ms, at ? &at->ms : nullptr);
  if (m.hkdf) e.put_int(cp::osc::kHkdf).put_int(*m.hkdf);
  if (m.alg) e.put_int(cp::osc::kAlg).put_int(*m.alg);
  if (!m.salt.empty()) {
    e.put_int(cp::osc::kSalt);
    bstr(m.salt, at ? &at->salt : nullptr);
  }
  if (!m.context_id.empty()) {
    e.put_int(cp::osc::kContextId);
    bstr(m.context_id, at ? &at->context_id : nullptr);
  }
}

// encoded runs `write(encoder, writer)` into a new Bytes.
template <class F>
Bytes encoded(F&& write) {
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  write(e, w);
  return out;
}

// read_request_general reads a request that is not of the fast shape with
// TokenRequestView::decode into `out` (its req_cnf kept in `cnf`); the error's text
// when it does not decode. Out of line: its large view stays off the usual path.
[[gnu::noinline]] std::optional<std::string> read_request_general(ByteView payload, as_fast::TokenRequestFields& out,
                                                                 std::optional<Cnf>& cnf) {
  auto g = TokenRequestView::decode(payload);
  if (!g) return g.error().describe();
  cnf = std::move(g->req_cnf);
  out = {g->grant_type, g->client_id, g->scope, g->audience, cnf ? &*cnf : nullptr, g->ace_profile_requested};
  return std::nullopt;
}

// put_raw copies bytes made ahead (a template) into `w`.
inline void put_raw(Writer& w, ByteView b) { w.put_bytes(b); }

// put_head writes a CBOR head as cbor::Encoder does (preferred serialization),
// inline: the token path writes a dozen of them (as_test compares the result
// with the codecs byte for byte).
constexpr uint8_t kMajorUnsigned = 0, kMajorNegative = 1, kMajorBytes = 2, kMajorMap = 5;
inline void put_head(Writer& w, uint8_t major, uint64_t arg) {
  const uint8_t mt = static_cast<uint8_t>(major << 5);
  if (arg < 24) {
    w.put_u8(static_cast<uint8_t>(mt | arg));
  } else if (arg <= 0xff) {
    if (uint8_t* p = w.reserve(2)) {
      p[0] = mt | 24;
      p[1] = static_cast<uint8_t>(arg);
    }
  } else if (arg <= 0xffff) {
    w.put_u8(mt | 25);
    w.put_u16(static_cast<uint16_t>(arg));
  } else if (arg <= 0xffffffffu) {
    w.put_u8(mt | 26);
    w.put_u32(static_cast<uint32_t>(arg));
  } else {
    w.put_u8(mt | 27);
    w.put_u64(arg);
  }
}
// store_be32 writes v big-endian at p.
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
// put_int_head: cbor::Encoder::put_int.
inline void put_int_head(Writer& w, int64_t v) {
  if (v >= 0) {
    put_head(w, kMajorUnsigned, static_cast<uint64_t>(v));
  } else {
    put_head(w, kMajorNegative, ~static_cast<uint64_t>(v));
  }
}

}  // namespace

AuthorizationServer::AudienceState& AuthorizationServer::audience_state(size_t audience) {
  if (audience_states_.size() != policy_.audiences.size()) audience_states_.resize(policy_.audiences.size());
  AudienceState& st = audience_states_[audience];
  if (st.made) return st;
  st.made = true;
  const AudiencePolicy& a = policy_.audiences[audience];
  if (!a.shared_key || !a.shared_key->alg) return st;
  if (cose::family(*a.shared_key->alg) != cose::AlgFamily::kAead) return st;
  if (!cose::check_key_for_alg(*a.shared_key, *a.shared_key->alg)) return st;
  auto aead = provider_.make_aead(*a.shared_key->alg, a.shared_key->k);
  if (!aead) return st;
  st.aead = std::move(*aead);
  if (a.protection != TokenProtection::kEncrypt0 || !validate_audience(a).empty()) return st;

  // The constant parts of a COSE_Encrypt0 token (as cose::encrypt0_write writes it)
  // and of its claims and Access Information (as Claims::encode and
  // TokenResponse::encode write them; as_test compares them byte for byte).
  const crypto::AeadInfo& info = st.aead->info();
  const Bytes prot = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_map(1).put_int(cp::header::kAlg).put_int(st.aead->alg());
  });
  cose::append_enc_structure(st.enc_aad, cose::kContextEncrypt0, prot, {});
  const ByteView kid = a.shared_key->kid;
  st.token_head = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_tag(cp::tag::kCoseEncrypt0).put_array(3).put_bstr(prot).put_map(kid.empty() ? 1 : 2);
    if (!kid.empty()) e.put_int(cp::header::kKid).put_bstr(kid);
    e.put_int(cp::header::kIV).put_bstr_header(info.nonce_len);
  });
  st.claims_head = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_map(8);
    e.put_int(cp::claim::kIss).put_tstr(policy_.issuer);
    e.put_int(cp::claim::kAud).put_tstr(a.name);
    e.put_int(cp::claim::kExp);
  });
  st.claims_cti = encoded([&](cbor::Encoder& e, Writer&) { e.put_int(cp::claim::kCti).put_bstr_header(kCtiLen); });
  st.claims_cnf = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_int(cp::claim::kCnf).put_map(1).put_int(cp::cnf::kOscoreInputMaterial);
  });
  const Bytes zeros(policy_.id_len + a.master_secret_len + a.salt_len + a.context_id_len, 0);
  MaterialView mv;
  mv.id = ByteView(zeros.data(), policy_.id_len);
  mv.ms = ByteView(zeros.data(), a.master_secret_len);
  mv.salt = ByteView(zeros.data(), a.salt_len);
  mv.context_id = ByteView(zeros.data(), a.context_id_len);
  mv.alg = a.aead_alg;
  mv.hkdf = a.hkdf_alg;
  MaterialOffsets at;
  st.material = encoded([&](cbor::Encoder& e, Writer& w) { put_material(e, w, mv, &at); });
  st.id_at = at.id;
  st.ms_at = at.ms;
  st.salt_at = at.salt;
  st.ctx_at = at.context_id;
  st.claims_fixed = encoded([&](cbor::Encoder& e, Writer& w) {
    w.put_bytes(st.claims_head);
    e.put_uint(0x10000);  // 0x1a and 4 bytes, like any exp in [2^16, 2^32)
    st.fixed_exp_at = w.size() - 4;
    e.put_int(cp::claim::kIat).put_uint(0x10000);
    st.fixed_iat_at = w.size() - 4;
    w.put_bytes(st.claims_cti);
    st.fixed_cti_at = w.size();
    w.put_bytes(Bytes(kCtiLen, 0));
    w.put_bytes(st.claims_cnf);
    st.fixed_mat_at = w.size();
    w.put_bytes(st.material);
  });
  st.claims_tail = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_int(cp::claim::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
  });
  st.resp_cnf = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_int(cp::ace::kCnf).put_map(1).put_int(cp::cnf::kOscoreInputMaterial);
  });
  st.resp_tail = encoded([&](cbor::Encoder& e, Writer&) {
    e.put_int(cp::ace::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
  });
  st.ready = true;
  return st;
}

AsResponseView AuthorizationServer::issue_fresh_encrypt0(AudienceState& st, size_t aud_index, size_t client_index,
                                                         int64_t now, int64_t lifetime, ByteView scope_bytes,
                                                         bool same_scope) {
  const AudiencePolicy& aud = policy_.audiences[aud_index];
  const int64_t exp = now + lifetime;
  const size_t id_len = policy_.id_len;
  const size_t ms_len = aud.master_secret_len;
  const size_t salt_len = aud.salt_len;
  const size_t ctx_len = aud.context_id_len;

  // Randomness in one draw: id | ms | salt | contextId | cti.
  random_buf_.resize(id_len + ms_len + salt_len + ctx_len + kCtiLen);
  random_.fill(random_buf_);
  uint8_t* const r = random_buf_.data();
  const ByteView cti(r + id_len + ms_len + salt_len + ctx_len, kCtiLen);
  // The slot of the new id and the record insert_material will fill (random places
  // of tables larger than L1) are fetched while the claims are written; the id's
  // uniqueness is checked after that.
  uint64_t new_key = material_key(aud_index, ByteView(r, id_len));
  prefetch_insert(new_key);

  // The claims, keys ascending: the constant parts copied, the random ones placed.
  const size_t claims_cap = st.claims_head.size() + st.claims_cti.size() + kCtiLen + st.claims_cnf.size() +
                            st.material.size() + st.claims_tail.size() + scope_bytes.size() + 32;
  if (claims_buf_.size() < claims_cap) claims_buf_.resize(claims_cap);
  size_t mat_at = 0;  // where the material starts in the claims
  size_t claims_len = 0;
  {
    Writer w{MutableByteView(claims_buf_.data(), claims_cap)};
    uint8_t* m = nullptr;
    if (now >= 0x10000 && exp >= now && exp <= 0xffffffff) {  // one copy of claims_fixed
      if (uint8_t* c = w.reserve(st.claims_fixed.size())) {
        std::memcpy(c, st.claims_fixed.data(), st.claims_fixed.size());
        store_be32(c + st.fixed_exp_at, static_cast<uint32_t>(exp));
        store_be32(c + st.fixed_iat_at, static_cast<uint32_t>(now));
        std::memcpy(c + st.fixed_cti_at, cti.data(), kCtiLen);
        mat_at = st.fixed_mat_at;
        m = c + mat_at;
      }
    } else {
      put_raw(w, st.claims_head);
      put_int_head(w, exp);
      put_int_head(w, cp::claim::kIat);
      put_int_head(w, now);
      put_raw(w, st.claims_cti);
      put_raw(w, cti);
      put_raw(w, st.claims_cnf);
      mat_at = w.size();
      m = w.reserve(st.material.size());
      if (m) std::memcpy(m, st.material.data(), st.material.size());
    }
    if (m) {
      std::memcpy(m + st.id_at, r, id_len);
      std::memcpy(m + st.ms_at, r + id_len, ms_len);
      if (salt_len) std::memcpy(m + st.salt_at, r + id_len + ms_len, salt_len);
      if (ctx_len) std::memcpy(m + st.ctx_at, r + id_len + ms_len + salt_len, ctx_len);
    }
    put_int_head(w, cp::claim::kScope);
    put_head(w, kMajorBytes, scope_bytes.size());
    put_raw(w, scope_bytes);
    put_raw(w, st.claims_tail);
    if (!w.ok()) {
      secure_zero(claims_buf_);
      secure_zero(random_buf_);
      return keep(internal_error());
    }
    claims_len = w.size();
  }
  // The id must be unique per audience among live material (and its hash among
  // all material): a taken one (rare) is drawn again and rewritten in the claims.
  for (int tries = 0; find_slot(new_key); ++tries) {
    if (tries > 16) {
      secure_zero(claims_buf_);
      secure_zero(random_buf_);
      return keep(internal_error());
    }
    random_.fill(MutableByteView(r, id_len));
    std::memcpy(claims_buf_.data() + mat_at + st.id_at, r, id_len);
    new_key = material_key(aud_index, ByteView(r, id_len));
  }
  const ByteView claims(claims_buf_.data(), claims_len);
  const ByteView material(claims_buf_.data() + mat_at, st.material.size());

  // The Access Information with the token written in place: the IV drawn into it,
  // the claims sealed into it.
  const crypto::AeadInfo& info = st.aead->info();
  const size_t ct_len = claims.size() + info.tag_len;
  uint8_t ct_head[9];
  Writer hw{MutableByteView(ct_head, sizeof ct_head)};
  put_head(hw, kMajorBytes, ct_len);
  const size_t token_len = st.token_head.size() + info.nonce_len + hw.size() + ct_len;
  const size_t out_cap =
      token_len + st.resp_cnf.size() + st.material.size() + st.resp_tail.size() + scope_bytes.size() + 48;
  if (resp_buf_.size() < out_cap) resp_buf_.resize(out_cap);
  bool sealed = false;
  size_t out_len = 0;
  {
    Writer w{MutableByteView(resp_buf_.data(), out_cap)};
    put_head(w, kMajorMap, 4 + (same_scope ? 0 : 1));
    put_int_head(w, cp::ace::kAccessToken);
    put_head(w, kMajorBytes, token_len);
    put_raw(w, st.token_head);
    uint8_t* iv = w.reserve(info.nonce_len);
    put_raw(w, hw.written());
    uint8_t* ct = w.reserve(ct_len);
    if (iv && ct) {
      provider_.random().fill(MutableByteView(iv, info.nonce_len));
      auto n = st.aead->seal(ByteView(iv, info.nonce_len), st.enc_aad, claims, MutableByteView(ct, ct_len));
      sealed = n && *n == ct_len;
    }
    put_int_head(w, cp::ace::kExpiresIn);
    put_head(w, kMajorUnsigned, static_cast<uint64_t>(lifetime));
    put_raw(w, st.resp_cnf);
    put_raw(w, material);
    if (!same_scope) {
      put_int_head(w, cp::ace::kScope);
      put_head(w, kMajorBytes, scope_bytes.size());
      put_raw(w, scope_bytes);
    }
    put_raw(w, st.resp_tail);
    if (!w.ok() || !sealed) {
      secure_zero(resp_buf_.data(), out_cap);
      secure_zero(claims_buf_);
      secure_zero(random_buf_);
      return keep(internal_error());
    }
    out_len = w.size();
  }
  secure_zero(claims_buf_.data(), claims_len);

  // Commit state only now.
  insert_material(new_key, exp, static_cast<uint32_t>(client_index), static_cast<uint32_t>(aud_index),
                  ByteView(r, id_len));
  note_expiry(exp, new_key);
  secure_zero(random_buf_);
  prefetch_purge();
  return {cp::coap::code::kCreated, ByteView(resp_buf_.data(), out_len)};
}

AsResponse AuthorizationServer::handle_token(std::string_view client_id, ByteView payload, int64_t now) {
  const AsResponseView v = handle_token_view(client_id, payload, now);
  return {v.code, to_bytes(v.payload)};
}

AsResponseView AuthorizationServer::keep(AsResponse r) {
  if (r.payload.empty()) return {r.code, {}};
  if (resp_buf_.size() < r.payload.size()) resp_buf_.resize(r.payload.size());
  std::memcpy(resp_buf_.data(), r.payload.data(), r.payload.size());
  secure_zero(r.payload);  // the general path's Access Information holds the master secret
  return {r.code, ByteView(resp_buf_.data(), r.payload.size())};
}

AsResponseView AuthorizationServer::handle_token_view(std::string_view client_id, ByteView payload,
                                                      int64_t now) {
  purge(now);
  if (payload.size() > policy_.max_payload)
    return keep(error_response(cp::ace::kErrInvalidRequest, "request too large"));
  const ClientPolicy* client = client_id.empty() ? nullptr : find_client(client_id);
  if (!client) return keep(error_response(cp::ace::kErrInvalidClient, "client not authenticated or unknown"));

  // The request is read in place (views into the payload, no copies).
  // The usual shape through the fast reader (as_request.h), anything else (and
  // every error) through the general one.
  as_fast::TokenRequestFields fields;
  if (!as_fast::read_token_request(payload, fields)) {
    if (auto error = read_request_general(payload, fields, req_cnf_))
      return keep(error_response(cp::ace::kErrInvalidRequest, std::move(*error)));
  }
  const as_fast::TokenRequestFields* req = &fields;
  if (req->client_id && *req->client_id != client->id)
    return keep(error_response(cp::ace::kErrInvalidClient, "client_id does not match the authenticated client"));
  if (req->grant_type && *req->grant_type != static_cast<uint64_t>(cp::ace::kGrantClientCredentials))
    return keep(error_response(cp::ace::kErrUnsupportedGrantType, "only client_credentials is supported"));

  // Audience: named, or the only one configured.
  const AudiencePolicy* aud = nullptr;
  if (req->audience) {
    aud = find_audience(*req->audience);
  } else if (policy_.audiences.size() == 1) {
    aud = &policy_.audiences.front();
  }
  if (!aud) return keep(error_response(cp::ace::kErrInvalidRequest, "unknown or missing audience"));
  if (!client->audiences.empty() &&
      std::find(client->audiences.begin(), client->audiences.end(), aud->name) == client->audiences.end())
    return keep(error_response(cp::ace::kErrInvalidRequest, "audience not allowed for this client"));

  // Scope (seed §3.1: a byte string in the format of Figure 4), parsed into views and
  // granted as grant_scope does (granted_roles per entry, entries left with no role
  // dropped); re-encoded only when the grant differs from the request.
  if (!req->scope) return keep(error_response(cp::ace::kErrInvalidScope, "scope required"));
  if (req->scope->is_text) return keep(error_response(cp::ace::kErrInvalidScope, "scope must be a byte string"));
  if (!as_fast::read_scope(req->scope->value, requested_)) {
    if (auto parsed = parse_scope_views(req->scope->value, requested_); !parsed)
      return keep(error_response(cp::ace::kErrInvalidScope, to_string(parsed.error())));
  }
  granted_.clear();
  bool same_scope = true;
  for (const ScopeEntryView& e : requested_) {
    auto it = client->groups.find(e.group);
    const RoleSet roles = it == client->groups.end() ? RoleSet{0} : granted_roles(it->second, e.roles);
    if (roles == 0) {
      same_scope = false;
      continue;
    }
    if (roles != e.roles) same_scope = false;
    granted_.push_back(ScopeEntryView{e.group, roles});
  }
  if (granted_.empty()) return keep(error_response(cp::ace::kErrInvalidScope, "no requested scope entry is allowed"));
  ByteView scope_bytes = req->scope->value;
  if (!same_scope) {  // rare: encoded through a Scope
    Scope granted;
    granted.entries.reserve(granted_.size());
    for (const ScopeEntryView& e : granted_) granted.entries.push_back(ScopeEntry{std::string(e.group), e.roles});
    scope_buf_ = encode_scope(granted);
    scope_bytes = scope_buf_;
  }

  // Proof-of-possession: fresh OSCORE_Input_Material, or an update (RFC 9203 §4.1).
  const size_t aud_index = static_cast<size_t>(aud - policy_.audiences.data());
  const size_t client_index = static_cast<size_t>(client - policy_.clients.data());
  Slot* update = nullptr;
  ByteView update_id;
  if (req->req_cnf) {
    if (req->req_cnf->cose_key || req->req_cnf->osc)
      return keep(error_response(cp::ace::kErrUnsupportedPopKey, "only req_cnf kid is supported with coap_oscore"));
    Slot* m = find_material(aud_index, *req->req_cnf->kid);
    if (m && slot_client(*m) == client_index) {
      update = m;
      update_id = *req->req_cnf->kid;
    }
    if (!update) return keep(error_response(cp::ace::kErrInvalidRequest, "req_cnf kid was not issued to this client"));
  }
  AudienceState& st = audience_state(aud_index);
  if (!st.ready && !validate_audience(*aud).empty()) return keep(internal_error());
  if (!update && num_materials_ >= policy_.max_materials) return {cp::coap::code::kServiceUnavailable, {}};

  // The usual case: fresh material in a COSE_Encrypt0 token (constant parts made once).
  if (!update && st.ready)
    return issue_fresh_encrypt0(st, aud_index, client_index, now, std::max<int64_t>(client->max_lifetime, 1),
                                scope_bytes, same_scope);

  const int64_t lifetime = std::max<int64_t>(client->max_lifetime, 1);
  const int64_t exp = now + lifetime;

  // Randomness in one draw: id | ms | salt | contextId | cti.
  const size_t id_len = update ? 0 : policy_.id_len;
  const size_t ms_len = update ? 0 : aud->master_secret_len;
  const size_t salt_len = update ? 0 : aud->salt_len;
  const size_t ctx_len = update ? 0 : aud->context_id_len;
  random_buf_.resize(id_len + ms_len + salt_len + ctx_len + kCtiLen);
  random_.fill(random_buf_);
  const uint8_t* r = random_buf_.data();
  MaterialView mat;
  mat.id = ByteView(r, id_len);
  mat.ms = ByteView(r + id_len, ms_len);
  mat.salt = ByteView(r + id_len + ms_len, salt_len);
  mat.context_id = ByteView(r + id_len + ms_len + salt_len, ctx_len);
  const ByteView cti(r + id_len + ms_len + salt_len + ctx_len, kCtiLen);
  mat.alg = aud->aead_alg;
  mat.hkdf = aud->hkdf_alg;
  uint64_t new_key = 0;
  if (!update) {
    // The id must be unique per audience among live material (and its hash among
    // all material).
    for (int tries = 0;; ++tries) {
      new_key = material_key(aud_index, mat.id);
      if (!find_slot(new_key)) break;
      if (tries > 16) {
        secure_zero(random_buf_);
        return keep(internal_error());
      }
      random_.fill(MutableByteView(random_buf_.data(), id_len));
    }
  }

  // The claims (RFC 8392; keys ascending, as cwt::Claims::encode writes them): iss,
  // aud, exp, iat, cti, cnf, scope, ace_profile.
  // Written into a buffer sized once (a Writer over a span: no resize per item).
  claims_buf_.resize(192 + policy_.issuer.size() + aud->name.size() + scope_bytes.size() + id_len + ms_len +
                     salt_len + ctx_len + update_id.size());
  {
    Writer w{MutableByteView(claims_buf_)};
    cbor::Encoder e(w);
    e.put_map(8);
    e.put_int(cp::claim::kIss).put_tstr(policy_.issuer);
    e.put_int(cp::claim::kAud).put_tstr(aud->name);
    e.put_int(cp::claim::kExp).put_int(exp);
    e.put_int(cp::claim::kIat).put_int(now);
    e.put_int(cp::claim::kCti).put_bstr(cti);
    e.put_int(cp::claim::kCnf).put_map(1);
    if (update) {
      e.put_int(cp::cnf::kKid).put_bstr(update_id);
    } else {
      e.put_int(cp::cnf::kOscoreInputMaterial);
      put_material(e, w, mat);
    }
    e.put_int(cp::claim::kScope).put_bstr(scope_bytes);
    e.put_int(cp::claim::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
    if (!e.ok()) {
      secure_zero(claims_buf_);
      secure_zero(random_buf_);
      return keep(internal_error());
    }
    claims_buf_.resize(w.size());
  }

  token_buf_.clear();
  bool made = false;
  if (aud->protection == TokenProtection::kEncrypt0) {
    if (crypto::Aead* aead = token_aead(aud_index)) {
      // COSE_Encrypt0 written directly with the audience's keyed AEAD.
      uint8_t iv[32];
      const size_t iv_len = aead->info().nonce_len;
      if (iv_len <= sizeof iv) {
        provider_.random().fill(MutableByteView(iv, iv_len));
        made = static_cast<bool>(cose::encrypt0_write(*aead, aud->shared_key->kid, ByteView(iv, iv_len),
                                                      claims_buf_, {}, true, token_buf_));
      }
    }
  }
  if (!made) {
    // Other protections (COSE_Sign1, nested) through the general CWT code.
    auto claims = cwt::Claims::decode(claims_buf_);
    Expected<Bytes, cwt::Error> token = unexpected(cwt::Error::kWrongKey);
    if (claims) {
      if (aud->protection == TokenProtection::kEncrypt0) {
        token = cwt::create_encrypted(provider_, *claims, *aud->shared_key);
      } else {
        token = cwt::create_signed(provider_, *claims, *policy_.signing_key);
        if (token && aud->shared_key) {
          Bytes inner = std::move(*token);
          token = cwt::encrypt_token(provider_, inner, *aud->shared_key);
          secure_zero(inner);
        }
      }
      // The claims hold the master secret: wipe the copy.
      claims->cnf = cbor::Value();
    }
    if (token) {
      token_buf_ = std::move(*token);
      made = true;
    }
  }
  secure_zero(claims_buf_);
  if (!made) {
    secure_zero(random_buf_);
    return keep(internal_error());
  }

  // The Access Information (keys ascending, as TokenResponse::encode writes them).
  const bool with_cnf = update == nullptr;
  Bytes out(token_buf_.size() + scope_bytes.size() + id_len + ms_len + salt_len + ctx_len + 160);
  {
    Writer w{MutableByteView(out)};
    cbor::Encoder e(w);
    e.put_map(3 + (with_cnf ? 1 : 0) + (same_scope ? 0 : 1));
    e.put_int(cp::ace::kAccessToken).put_bstr(token_buf_);
    e.put_int(cp::ace::kExpiresIn).put_uint(static_cast<uint64_t>(lifetime));
    if (with_cnf) {
      e.put_int(cp::ace::kCnf).put_map(1).put_int(cp::cnf::kOscoreInputMaterial);
      put_material(e, w, mat);
    }
    if (!same_scope) e.put_int(cp::ace::kScope).put_bstr(scope_bytes);
    e.put_int(cp::ace::kAceProfile).put_int(cp::ace::kProfileCoapOscore);
    if (!e.ok()) {
      secure_zero(out);
      secure_zero(random_buf_);
      return keep(internal_error());
    }
    out.resize(w.size());
  }

  // Commit state only now.
  if (update) {
    if (exp > update->exp) {
      update->exp = exp;
      note_expiry(exp, material_key(aud_index, update_id));
    }
  } else {
    insert_material(new_key, exp, static_cast<uint32_t>(client_index), static_cast<uint32_t>(aud_index), mat.id);
    note_expiry(exp, new_key);
  }
  secure_zero(random_buf_);
  return keep({cp::coap::code::kCreated, std::move(out)});
}

AsResponse AuthorizationServer::handle_introspect(std::string_view requester, ByteView payload, int64_t now) {
  const AudiencePolicy* rs = requester.empty() ? nullptr : find_audience(requester);
  if (!rs) return error_response(cp::ace::kErrInvalidClient, "requester not authenticated or unknown");
  if (payload.size() > policy_.max_payload)
    return error_response(cp::ace::kErrInvalidRequest, "request too large");
  auto req = IntrospectionRequest::decode(payload);
  if (!req) return error_response(cp::ace::kErrInvalidRequest, req.error().describe());

  cose::KeySet keys;
  for (const auto& a : policy_.audiences)
    if (a.shared_key) keys.keys.push_back(*a.shared_key);
  if (policy_.signing_key) keys.keys.push_back(policy_.signing_key->public_key());
  cwt::VerifyOptions vo;
  vo.now = now;
  vo.check_time = false;
  auto inactive = [] {
    Bytes out;
    Writer w(out);
    cbor::Encoder e(w);
    e.put_map(1).put_int(cp::ace::kActive).put_bool(false);
    return AsResponse{cp::coap::code::kCreated, std::move(out)};
  };
  auto claims = cwt::verify(provider_, req->token, keys, vo);
  if (!claims) return inactive();
  if (!claims->aud || *claims->aud != rs->name) return {cp::coap::code::kForbidden, {}};
  if (claims->iss && *claims->iss != policy_.issuer) return inactive();
  cwt::VerifyOptions tv;
  tv.now = now;
  tv.require_exp = true;
  if (!cwt::check_claims(*claims, tv)) return inactive();
  if (claims->cti && std::find(revoked_.begin(), revoked_.end(), *claims->cti) != revoked_.end()) return inactive();

  cbor::Value m = cbor::Value::map();
  m.set(cp::ace::kActive, cbor::Value::boolean(true));
  if (claims->iss) m.set(cp::claim::kIss, cbor::Value::text(*claims->iss));
  m.set(cp::claim::kAud, cbor::Value::text(*claims->aud));
  m.set(cp::claim::kExp, cbor::Value::integer(claims->exp->seconds()));
  if (claims->iat) m.set(cp::claim::kIat, cbor::Value::integer(claims->iat->seconds()));
  if (claims->cti) m.set(cp::claim::kCti, cbor::Value::bytes(*claims->cti));
  if (claims->cnf) m.set(cp::claim::kCnf, *claims->cnf);
  if (claims->scope) m.set(cp::claim::kScope, *claims->scope);
  if (claims->ace_profile) m.set(cp::claim::kAceProfile, cbor::Value::integer(*claims->ace_profile));
  cbor::EncodeOptions eo;
  eo.deterministic = true;
  return {cp::coap::code::kCreated, cbor::encode(m, eo)};
}

bool AuthorizationServer::revoke(ByteView cti) {
  if (cti.empty() || revoked_.size() >= policy_.max_materials) return false;
  revoked_.push_back(to_bytes(cti));
  return true;
}

}  // namespace acekdc::ace
