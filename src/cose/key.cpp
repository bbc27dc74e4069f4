#include "cose/key.h"

#include <algorithm>

#include "core/codepoints.h"
#include "cose/algorithms.h"

namespace acekdc::cose {
namespace {

namespace kp = cp::keyparam;

// coordinate_len: the length of x / y / d for a curve, 0 for an unknown curve.
size_t coordinate_len(int kty, int crv) {
  if (kty == cp::kty::kOKP) {
    switch (crv) {
      case cp::crv::kEd25519:
      case cp::crv::kX25519: return 32;
      case cp::crv::kX448: return 56;
      case cp::crv::kEd448: return 57;
    }
    return 0;
  }
  if (kty == cp::kty::kEC2) {
    switch (crv) {
      case cp::crv::kP256: return 32;
      case cp::crv::kP384: return 48;
      case cp::crv::kP521: return 66;
    }
  }
  return 0;
}

bool get_int(const cbor::Value& v, int& out) {
  auto i = v.as_int();
  if (!i || *i < INT32_MIN || *i > INT32_MAX) return false;
  out = static_cast<int>(*i);
  return true;
}

bool get_bytes(const cbor::Value& v, Bytes& out) {
  const Bytes* b = v.as_bytes();
  if (!b) return false;
  out = *b;
  return true;
}

}  // namespace

CoseKey CoseKey::symmetric(ByteView key, ByteView kid, std::optional<int> alg) {
  CoseKey k;
  k.kty = cp::kty::kSymmetric;
  k.k = to_bytes(key);
  k.kid = to_bytes(kid);
  k.alg = alg;
  return k;
}

CoseKey CoseKey::from_keypair(const crypto::KeyPair& kp, ByteView kid, std::optional<int> alg,
                              bool include_private) {
  CoseKey k;
  k.kty = kp.crv == cp::crv::kP256 || kp.crv == cp::crv::kP384 || kp.crv == cp::crv::kP521
              ? cp::kty::kEC2
              : cp::kty::kOKP;
  k.crv = kp.crv;
  k.x = kp.x;
  if (k.kty == cp::kty::kEC2) k.y = kp.y;
  if (include_private) k.d = kp.d;
  k.kid = to_bytes(kid);
  k.alg = alg;
  return k;
}

Expected<void, Error> validate_key(const CoseKey& key) {
  switch (key.kty) {
    case cp::kty::kSymmetric:
      if (key.k.empty() || key.crv != 0 || !key.x.empty() || !key.y.empty() || !key.d.empty())
        return unexpected(Error::kInvalidKey);
      if (key.alg) {
        if (auto a = aead_params(*key.alg)) {
          if (a->key_len != key.k.size()) return unexpected(Error::kInvalidKey);
        } else if (is_signature_alg(*key.alg)) {
          return unexpected(Error::kInvalidKey);
        }
      }
      return {};
    case cp::kty::kOKP:
    case cp::kty::kEC2: {
      size_t n = coordinate_len(key.kty, key.crv);
      if (n == 0 || !key.k.empty()) return unexpected(Error::kInvalidKey);
      if (key.kty == cp::kty::kOKP && !key.y.empty()) return unexpected(Error::kInvalidKey);
      // A public key needs its coordinates; a private key may omit them (RFC 9053 §7.1.1, §7.2).
      if (key.d.empty()) {
        if (key.x.empty() || (key.kty == cp::kty::kEC2 && key.y.empty()))
          return unexpected(Error::kInvalidKey);
      }
      if (!key.x.empty() && key.x.size() != n) return unexpected(Error::kInvalidKey);
      if (!key.y.empty() && key.y.size() != n) return unexpected(Error::kInvalidKey);
      if (key.kty == cp::kty::kEC2 && key.x.empty() != key.y.empty())
        return unexpected(Error::kInvalidKey);
      if (!key.d.empty() && key.d.size() != n) return unexpected(Error::kInvalidKey);
      if (key.alg && (aead_params(*key.alg) || is_mac_alg(*key.alg)))
        return unexpected(Error::kInvalidKey);
      return {};
    }
  }
  return unexpected(Error::kInvalidKey);
}

Expected<CoseKey, Error> CoseKey::from_value(const cbor::Value& v) {
  const cbor::MapEntries* m = v.as_map();
  if (!m) return unexpected(Error::kInvalidKey);
  CoseKey key;
  const cbor::Value* kty_v = v.find(kp::kKty);
  if (!kty_v || !get_int(*kty_v, key.kty)) return unexpected(Error::kInvalidKey);
  const bool symmetric = key.kty == cp::kty::kSymmetric;
  const bool curve_key = key.kty == cp::kty::kOKP || key.kty == cp::kty::kEC2;
  if (!symmetric && !curve_key) return unexpected(Error::kInvalidKey);

  for (size_t i = 0; i < m->size(); ++i) {
    const auto& [label, val] = (*m)[i];
    // Labels are unique within the map (decode also rejects duplicates; a Value
    // built in memory might not have been through decode).
    for (size_t j = 0; j < i; ++j)
      if ((*m)[j].first == label) return unexpected(Error::kInvalidKey);
    auto l = label.as_int();
    if (!l) {
      if (!label.is_text()) return unexpected(Error::kInvalidKey);
      key.other.emplace_back(label, val);
      continue;
    }
    bool ok = true;
    switch (*l) {
      case kp::kKty: break;
      case kp::kKid: ok = get_bytes(val, key.kid); break;
      case kp::kAlg: {
        int a = 0;
        ok = get_int(val, a);  // text algorithm names are not supported
        key.alg = a;
        break;
      }
      case kp::kKeyOps: {
        const cbor::Array* ops = val.as_array();
        ok = ops && !ops->empty();
        if (ok) {
          for (const auto& op : *ops) {
            int o = 0;
            if (!get_int(op, o)) { ok = false; break; }
            key.key_ops.push_back(o);
          }
        }
        break;
      }
      case kp::kBaseIV: ok = get_bytes(val, key.base_iv) && !key.base_iv.empty(); break;
      default:
        if (symmetric && *l == kp::kK) {
          ok = get_bytes(val, key.k);
        } else if (curve_key && *l == kp::kCrv) {
          ok = get_int(val, key.crv);
        } else if (curve_key && *l == kp::kX) {
          ok = get_bytes(val, key.x);
        } else if (curve_key && *l == kp::kY) {
          // A bool y is a compressed point (RFC 9053 §7.1.1): not supported.
          ok = key.kty == cp::kty::kEC2 && get_bytes(val, key.y);
        } else if (curve_key && *l == kp::kD) {
          ok = get_bytes(val, key.d);
        } else if (*l < 0 && *l >= -4) {
          ok = false;  // a kty-specific label that does not belong to this kty
        } else {
          key.other.emplace_back(label, val);
        }
    }
    if (!ok) return unexpected(Error::kInvalidKey);
  }
  if (curve_key && !v.find(kp::kCrv)) return unexpected(Error::kInvalidKey);
  ACEKDC_TRY(validate_key(key));
  return key;
}

Expected<CoseKey, Error> CoseKey::decode(ByteView in) {
  cbor::Limits limits;
  limits.max_depth = 8;
  limits.reject_duplicate_keys = true;
  auto v = cbor::decode(in, limits);
  if (!v) return unexpected(Error::kInvalidKey);
  return from_value(*v);
}

cbor::Value CoseKey::to_value(bool include_private) const {
  cbor::Value m = cbor::Value::map();
  m.set(kp::kKty, cbor::Value::integer(kty));
  if (!kid.empty()) m.set(kp::kKid, cbor::Value::bytes(ByteView(kid)));
  if (alg) m.set(kp::kAlg, cbor::Value::integer(*alg));
  if (!key_ops.empty()) {
    cbor::Array ops;
    for (int o : key_ops) ops.push_back(cbor::Value::integer(o));
    m.set(kp::kKeyOps, cbor::Value::array(std::move(ops)));
  }
  if (!base_iv.empty()) m.set(kp::kBaseIV, cbor::Value::bytes(ByteView(base_iv)));
  if (kty == cp::kty::kSymmetric) {
    if (include_private) m.set(kp::kK, cbor::Value::bytes(ByteView(k)));
  } else {
    m.set(kp::kCrv, cbor::Value::integer(crv));
    if (!x.empty()) m.set(kp::kX, cbor::Value::bytes(ByteView(x)));
    if (!y.empty()) m.set(kp::kY, cbor::Value::bytes(ByteView(y)));
    if (include_private && !d.empty()) m.set(kp::kD, cbor::Value::bytes(ByteView(d)));
  }
  for (const auto& [l, val] : other) m.set(l, val);
  return m;
}

Bytes CoseKey::encode(bool include_private) const { return cbor::encode(to_value(include_private)); }

CoseKey CoseKey::public_key() const {
  CoseKey p = *this;
  secure_zero(p.d);
  p.d.clear();
  secure_zero(p.k);
  p.k.clear();
  return p;
}

Expected<crypto::KeyPair, Error> CoseKey::to_keypair() const {
  if (kty != cp::kty::kOKP && kty != cp::kty::kEC2) return unexpected(Error::kWrongKey);
  crypto::KeyPair kp;
  kp.crv = crv;
  kp.x = x;
  kp.y = y;
  kp.d = d;
  return kp;
}

Expected<crypto::KeyPair, Error> CoseKey::to_public_keypair() const {
  if (kty != cp::kty::kOKP && kty != cp::kty::kEC2) return unexpected(Error::kWrongKey);
  crypto::KeyPair kp;
  kp.crv = crv;
  kp.x = x;
  kp.y = y;
  return kp;
}

Expected<KeySet, Error> KeySet::from_value(const cbor::Value& v, bool skip_invalid) {
  const cbor::Array* a = v.as_array();
  if (!a) return unexpected(Error::kInvalidKey);
  KeySet set;
  for (const auto& item : *a) {
    auto k = CoseKey::from_value(item);
    if (!k) {
      if (skip_invalid) continue;
      return unexpected(k.error());
    }
    set.keys.push_back(std::move(*k));
  }
  return set;
}

Expected<KeySet, Error> KeySet::decode(ByteView in, bool skip_invalid) {
  cbor::Limits limits;
  limits.max_depth = 8;
  limits.reject_duplicate_keys = true;
  auto v = cbor::decode(in, limits);
  if (!v) return unexpected(Error::kInvalidKey);
  return from_value(*v, skip_invalid);
}

cbor::Value KeySet::to_value(bool include_private) const {
  cbor::Array a;
  a.reserve(keys.size());
  for (const auto& k : keys) a.push_back(k.to_value(include_private));
  return cbor::Value::array(std::move(a));
}

Bytes KeySet::encode(bool include_private) const { return cbor::encode(to_value(include_private)); }

const CoseKey* KeySet::find_kid(ByteView kid) const {
  for (const auto& k : keys)
    if (equal(k.kid, kid)) return &k;
  return nullptr;
}

crypto::Aead* AeadCache::get(crypto::Provider& provider, int alg, ByteView key) {
  for (auto& e : entries_)
    if (e.provider == &provider && e.alg == alg && equal(e.key, key)) return e.aead.get();
  auto a = provider.make_aead(alg, key);
  if (!a) return nullptr;
  if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());
  Entry e;
  e.provider = &provider;
  e.alg = alg;
  e.key = to_bytes(key);
  e.aead = std::move(*a);
  entries_.push_back(std::move(e));
  return entries_.back().aead.get();
}

}  // namespace acekdc::cose
