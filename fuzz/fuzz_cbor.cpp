// fuzz_cbor: the strict decoder on arbitrary bytes.
//  - Value decode succeeds exactly when validate() does, and the pull Decoder's
//    skip() (+ finish()) agrees with validate(), in default and deterministic mode;
//  - a decoded Value re-encodes, decodes again, and its second encoding equals
//    the first; its deterministic encoding passes the deterministic validator;
//  - diagnostic notation of it parses back to the same encoding (NaN payloads
//    excepted: EDN prints every NaN as NaN).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cbor/cbor.h"
#include "cbor/edn.h"
#include "cbor/value.h"

using namespace acekdc;
using namespace acekdc::cbor;

namespace {

bool has_nan(const Value& v) {
  switch (v.type()) {
    case Value::Type::kFloat: return std::isnan(*v.as_float());
    case Value::Type::kTag: return has_nan(*v.tag_content());
    case Value::Type::kArray:
      for (const Value& x : *v.as_array())
        if (has_nan(x)) return true;
      return false;
    case Value::Type::kMap:
      for (const auto& [k, x] : *v.as_map())
        if (has_nan(k) || has_nan(x)) return true;
      return false;
    default: return false;
  }
}

void check_pull_agrees(ByteView in, const Limits& lim) {
  const bool valid = static_cast<bool>(validate(in, lim));
  Decoder d(in, lim);
  const bool skipped = d.skip() && d.finish();
  if (valid != skipped) __builtin_trap();
  auto n = item_size(in, lim);
  Decoder d2(in, lim);
  ByteView item;
  const bool read = d2.read_item(item);
  if (static_cast<bool>(n) != read) __builtin_trap();
  if (read && item.size() != *n) __builtin_trap();
  if (!read && n) __builtin_trap();
  if (!valid && d.ok()) __builtin_trap();  // a failure always records an error
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView in(data, size);
  Limits det;
  det.deterministic = true;
  check_pull_agrees(in, Limits{});
  check_pull_agrees(in, det);

  auto v = decode(in);
  if (static_cast<bool>(v) != static_cast<bool>(validate(in))) __builtin_trap();
  if (!v) return 0;

  const Bytes e1 = encode(*v);
  auto v2 = decode(e1);
  if (!v2) __builtin_trap();
  const Bytes e2 = encode(*v2);
  if (e1 != e2) __builtin_trap();
  if (!(*v == *v2)) __builtin_trap();

  EncodeOptions dopt;
  dopt.deterministic = true;
  const Bytes d1 = encode(*v, dopt);
  auto dv = validate(d1, det);
  // Keys that differed only in their (non-preferred) encoding collide once re-encoded.
  if (!dv && dv.error() != Error::kDuplicateKey) __builtin_trap();

  if (!has_nan(*v)) {
    for (DiagOptions o : {DiagOptions{false, false}, DiagOptions{true, true}}) {
      auto back = from_diag(to_diag(*v, o));
      if (!back) __builtin_trap();
      if (encode(*back) != e1) __builtin_trap();
    }
  }
  return 0;
}
