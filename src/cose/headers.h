// COSE header buckets (RFC 9052 §3): protected (a bstr wrapping a map, kept byte
// for byte as received, since signatures / MACs / AEAD cover exactly those bytes)
// and unprotected (a map).
#pragma once

#include <span>
#include <string_view>

#include "cbor/value.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"

namespace acekdc::cose {

// HeaderPolicy: what a parser accepts in header buckets.
struct HeaderPolicy {
  // understood_critical: labels, beyond those this layer implements (alg, crit,
  // content type, kid, IV, Partial IV), that the caller processes and so may appear
  // in crit.
  std::span<const int64_t> understood_critical;
  std::span<const std::string_view> understood_critical_text;  // text labels, likewise
  // limits for decoding the protected bucket.
  uint32_t max_depth = 16;
};

// Headers: both buckets of one COSE layer.
//
// protected_bytes is authoritative: it is what gets signed / MACed / used as AAD.
// protected_map is its decoded form. Build Headers with make() or the set_*
// helpers (which keep both in step); parse() keeps received bytes as they are,
// even a non-preferred encoding such as h'a0' for an empty map.
struct Headers {
  Bytes protected_bytes;                                  // bstr contents; empty = empty map
  cbor::Value protected_map = cbor::Value::map();
  cbor::Value unprotected = cbor::Value::map();

  // make encodes `protected_map` (an empty map gives an empty protected_bytes).
  static Headers make(cbor::Value protected_map = cbor::Value::map(),
                      cbor::Value unprotected = cbor::Value::map());
  // parse decodes protected bytes, checks both buckets (validate()), and keeps the bytes.
  static Expected<Headers, Error> parse(ByteView protected_bytes, cbor::Value unprotected,
                                        const HeaderPolicy& policy = {});

  // set_protected adds (or replaces) a protected parameter and re-encodes protected_bytes.
  Headers& set_protected(int64_t label, cbor::Value v);
  Headers& set_unprotected(int64_t label, cbor::Value v);

  // authenticated_protected is the body_protected / protected field of the
  // Sig_structure, Enc_structure and MAC_structure (RFC 9052 §4.4, §5.3, §6.3): the
  // received bytes, except that an empty map (even if sent as h'a0') is the
  // zero-length string.
  ByteView authenticated_protected() const;

  // find returns the parameter from either bucket (protected first), nullptr if absent.
  const cbor::Value* find(int64_t label) const;
  // alg: kMissingHeader if absent, kUnsupportedAlgorithm if text or out of range.
  Expected<int, Error> alg() const;
  // kid, iv, partial_iv: the bstr value, empty view when absent (types checked by validate()).
  ByteView kid() const;
  ByteView iv() const;
  ByteView partial_iv() const;
  // content_type: the uint content format, nullopt when absent or text.
  std::optional<uint64_t> content_type() const;
};

// validate checks Headers per RFC 9052 §3: both buckets are maps with integer or
// text labels; no label in both buckets (kDuplicateHeader); known parameters have
// their types (kBadHeader); crit is a non-empty array, in the protected bucket,
// naming only labels present there, all understood (kUnknownCritical); IV and
// Partial IV are not both present (kBadHeader).
Expected<void, Error> validate(const Headers& h, const HeaderPolicy& policy = {});

}  // namespace acekdc::cose
