// fuzz_edn: the diagnostic-notation parser on arbitrary text. When the text
// parses: to_diag -> from_diag -> encode gives the same bytes (plain and
// pretty/embedded printing), and those bytes decode and re-encode identically.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cbor/cbor.h"
#include "cbor/edn.h"
#include "cbor/value.h"

using namespace acekdc;
using namespace acekdc::cbor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = from_diag(text);
  if (!v) {
    if (v.error().offset > size) __builtin_trap();
    if (v.error().message.empty()) __builtin_trap();
    return 0;
  }
  const Bytes e1 = encode(*v);
  for (DiagOptions o : {DiagOptions{false, false}, DiagOptions{true, true}}) {
    auto v2 = from_diag(to_diag(*v, o));
    if (!v2) __builtin_trap();
    if (encode(*v2) != e1) __builtin_trap();
  }
  Limits lim;
  lim.max_depth = 1024;                // the EDN parser's own nesting limit is lower
  lim.allow_legacy_simple = true;      // simple(24..31) is accepted in EDN
  auto back = decode(e1, lim);
  if (!back) __builtin_trap();
  if (encode(*back) != e1) __builtin_trap();
  return 0;
}
