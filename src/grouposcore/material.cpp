#include "grouposcore/material.h"

#include "cbor/value.h"

namespace acekdc::grouposcore {
namespace osc = cp::osc;

namespace {

bool int_of(const cbor::Value* v, int& out) {
  if (!v) return true;  // absent: keep the default
  auto i = v->as_int();
  if (!i || *i < INT32_MIN || *i > INT32_MAX) return false;
  out = static_cast<int>(*i);
  return true;
}

bool int_array(const cbor::Value& v, std::vector<int>& out) {
  const auto* a = v.as_array();
  if (!a) return false;
  for (const auto& x : *a) {
    auto i = x.as_int();
    if (!i || *i < INT32_MIN || *i > INT32_MAX) return false;
    out.push_back(static_cast<int>(*i));
  }
  return true;
}

Expected<InputMaterial, Error> from_value(const cbor::Value& key) {
  if (!key.is_map()) return unexpected(Error::kMalformedMaterial);
  InputMaterial m;
  const auto* ms = key.find(int64_t{osc::kMs});
  const auto* gid = key.find(int64_t{osc::kContextId});
  const auto* sign_alg = key.find(int64_t{osc::kSignAlg});
  if (!ms || !ms->as_bytes() || ms->as_bytes()->empty() || !gid || !gid->as_bytes() || !sign_alg) {
    return unexpected(Error::kMalformedMaterial);
  }
  m.master_secret = *ms->as_bytes();
  m.group_id = *gid->as_bytes();
  if (!int_of(sign_alg, m.sign_alg) || !int_of(key.find(int64_t{osc::kHkdf}), m.hkdf_alg) ||
      !int_of(key.find(int64_t{osc::kAlg}), m.aead_alg)) {
    return unexpected(Error::kMalformedMaterial);
  }
  if (const auto* salt = key.find(int64_t{osc::kSalt})) {
    if (!salt->as_bytes()) return unexpected(Error::kMalformedMaterial);
    m.master_salt = *salt->as_bytes();
  }
  if (const auto* sid = key.find(int64_t{osc::kGroupSenderId})) {
    if (!sid->as_bytes()) return unexpected(Error::kMalformedMaterial);
    m.sender_id = *sid->as_bytes();
  }
  if (const auto* sp = key.find(int64_t{osc::kSignParams})) {
    const auto* a = sp->as_array();
    if (!a) return unexpected(Error::kMalformedMaterial);
    for (const auto& inner : *a) {
      std::vector<int> ints;
      if (!int_array(inner, ints)) return unexpected(Error::kMalformedMaterial);
      m.sign_params.push_back(std::move(ints));
    }
  }
  return m;
}

cbor::Limits strict_limits() {
  cbor::Limits l;
  l.allow_indefinite = false;
  l.reject_duplicate_keys = true;
  return l;
}

}  // namespace

Expected<InputMaterial, Error> parse_input_material(ByteView key_cbor) {
  auto v = cbor::decode(key_cbor, strict_limits());
  if (!v) return unexpected(Error::kMalformedMaterial);
  return from_value(*v);
}

Expected<InputMaterial, Error> parse_key_distribution(ByteView payload) {
  auto v = cbor::decode(payload, strict_limits());
  if (!v || !v->is_map()) return unexpected(Error::kMalformedMaterial);
  const auto* gkty = v->find(int64_t{cp::gc::kGkty});
  const auto* key = v->find(int64_t{cp::gc::kKey});
  if (!gkty || gkty->as_int() != cp::gc::kGktyGroupOscoreInputMaterial || !key) {
    return unexpected(Error::kMalformedMaterial);
  }
  auto m = from_value(*key);
  if (!m) return m;
  if (const auto* num = v->find(int64_t{cp::gc::kNum})) {
    auto n = num->as_uint();
    if (!n) return unexpected(Error::kMalformedMaterial);
    m->num = *n;
  }
  return m;
}

Expected<std::vector<cose::CoseKey>, Error> parse_pub_keys(ByteView payload) {
  auto v = cbor::decode(payload, strict_limits());
  if (!v) return unexpected(Error::kMalformedMaterial);
  std::vector<cose::CoseKey> out;
  if (v->is_bytes() && v->as_bytes()->empty()) return out;  // a pub-key response with no members
  if (!v->is_map()) return unexpected(Error::kMalformedMaterial);
  const auto* pk = v->find(int64_t{cp::gc::kPubKeys});
  if (!pk) return out;
  if (!pk->as_bytes()) return unexpected(Error::kMalformedMaterial);
  auto set = cose::KeySet::decode(*pk->as_bytes(), /*skip_invalid=*/true);
  if (!set) return unexpected(Error::kMalformedMaterial);
  for (auto& k : set->keys) {
    if (!k.kid.empty()) out.push_back(std::move(k));
  }
  return out;
}

}  // namespace acekdc::grouposcore
