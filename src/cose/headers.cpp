#include "cose/headers.h"

#include <algorithm>

#include "core/codepoints.h"

namespace acekdc::cose {
namespace {

namespace hdr = cp::header;

bool valid_label(const cbor::Value& l) { return l.is_int() || l.is_text(); }

// check_bucket: labels are ints or texts, each once; known parameters have their types.
Expected<void, Error> check_bucket(const cbor::Value& bucket, bool is_protected) {
  const cbor::MapEntries* m = bucket.as_map();
  if (!m) return unexpected(Error::kMalformed);
  for (size_t i = 0; i < m->size(); ++i) {
    const auto& [label, v] = (*m)[i];
    if (!valid_label(label)) return unexpected(Error::kMalformed);
    for (size_t j = 0; j < i; ++j)
      if ((*m)[j].first == label) return unexpected(Error::kMalformed);
    auto l = label.as_int();
    if (!l) continue;
    switch (*l) {
      case hdr::kAlg:
        if (!v.is_int() && !v.is_text()) return unexpected(Error::kBadHeader);
        break;
      case hdr::kCrit: {
        if (!is_protected) return unexpected(Error::kBadHeader);
        const cbor::Array* a = v.as_array();
        if (!a || a->empty()) return unexpected(Error::kBadHeader);
        for (const auto& e : *a)
          if (!valid_label(e)) return unexpected(Error::kBadHeader);
        break;
      }
      case hdr::kContentType:
        if (!v.is_uint() && !v.is_text()) return unexpected(Error::kBadHeader);
        break;
      case hdr::kKid:
      case hdr::kIV:
      case hdr::kPartialIV:
        if (!v.is_bytes()) return unexpected(Error::kBadHeader);
        break;
      default: break;
    }
  }
  return {};
}

bool understood(const cbor::Value& label, const HeaderPolicy& policy) {
  auto l = label.as_int();
  if (!l) {
    const std::string* t = label.as_text();
    return t && std::find(policy.understood_critical_text.begin(),
                          policy.understood_critical_text.end(),
                          std::string_view(*t)) != policy.understood_critical_text.end();
  }
  switch (*l) {
    case hdr::kAlg:
    case hdr::kCrit:
    case hdr::kContentType:
    case hdr::kKid:
    case hdr::kIV:
    case hdr::kPartialIV: return true;
    default: break;
  }
  return std::find(policy.understood_critical.begin(), policy.understood_critical.end(), *l) !=
         policy.understood_critical.end();
}

ByteView bstr_of(const cbor::Value* v) {
  return v && v->is_bytes() ? v->bytes_view() : ByteView();
}

}  // namespace

Headers Headers::make(cbor::Value protected_map, cbor::Value unprotected) {
  Headers h;
  h.protected_map = std::move(protected_map);
  h.unprotected = std::move(unprotected);
  const cbor::MapEntries* m = h.protected_map.as_map();
  if (m && !m->empty()) h.protected_bytes = cbor::encode(h.protected_map);
  return h;
}

Expected<Headers, Error> Headers::parse(ByteView protected_bytes, cbor::Value unprotected,
                                        const HeaderPolicy& policy) {
  Headers h;
  h.protected_bytes = to_bytes(protected_bytes);
  if (!protected_bytes.empty()) {
    cbor::Limits limits;
    limits.max_depth = policy.max_depth;
    limits.reject_duplicate_keys = true;
    auto m = cbor::decode(protected_bytes, limits);
    if (!m || !m->is_map()) return unexpected(Error::kMalformed);
    h.protected_map = std::move(*m);
  }
  h.unprotected = std::move(unprotected);
  ACEKDC_TRY(validate(h, policy));
  return h;
}

Headers& Headers::set_protected(int64_t label, cbor::Value v) {
  if (!protected_map.is_map()) protected_map = cbor::Value::map();
  protected_map.set(label, std::move(v));
  protected_bytes = cbor::encode(protected_map);
  return *this;
}

Headers& Headers::set_unprotected(int64_t label, cbor::Value v) {
  if (!unprotected.is_map()) unprotected = cbor::Value::map();
  unprotected.set(label, std::move(v));
  return *this;
}

ByteView Headers::authenticated_protected() const {
  const cbor::MapEntries* m = protected_map.as_map();
  if (!m || m->empty()) return {};
  return protected_bytes;
}

const cbor::Value* Headers::find(int64_t label) const {
  if (const cbor::Value* v = protected_map.find(label)) return v;
  return unprotected.find(label);
}

Expected<int, Error> Headers::alg() const {
  const cbor::Value* v = find(hdr::kAlg);
  if (!v) return unexpected(Error::kMissingHeader);
  auto a = v->as_int();
  if (!a || *a < INT32_MIN || *a > INT32_MAX) return unexpected(Error::kUnsupportedAlgorithm);
  return static_cast<int>(*a);
}

ByteView Headers::kid() const { return bstr_of(find(hdr::kKid)); }
ByteView Headers::iv() const { return bstr_of(find(hdr::kIV)); }
ByteView Headers::partial_iv() const { return bstr_of(find(hdr::kPartialIV)); }

std::optional<uint64_t> Headers::content_type() const {
  const cbor::Value* v = find(hdr::kContentType);
  if (!v) return std::nullopt;
  return v->as_uint();
}

Expected<void, Error> validate(const Headers& h, const HeaderPolicy& policy) {
  ACEKDC_TRY(check_bucket(h.protected_map, true));
  ACEKDC_TRY(check_bucket(h.unprotected, false));
  for (const auto& [label, v] : *h.unprotected.as_map())
    if (h.protected_map.find(label)) return unexpected(Error::kDuplicateHeader);
  if (const cbor::Value* crit = h.protected_map.find(hdr::kCrit)) {
    for (const auto& label : *crit->as_array()) {
      if (!h.protected_map.find(label)) return unexpected(Error::kBadHeader);
      if (!understood(label, policy)) return unexpected(Error::kUnknownCritical);
    }
  }
  if (h.find(hdr::kIV) && h.find(hdr::kPartialIV)) return unexpected(Error::kBadHeader);
  return {};
}

}  // namespace acekdc::cose
