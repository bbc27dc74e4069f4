// fuzz_kdc_config: the KDC's two parsers of stored/configured state.
//  - first byte even: the rest is TOML for parse_config(). Never crash; every
//    accepted group passes validate_group_config() and survives the CBOR storage
//    form (encode_group_config -> decode_group_config) unchanged.
//  - first byte odd: the rest is a stored config blob for decode_group_config().
//    Never crash; anything accepted re-encodes to bytes that decode to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kdc/config.h"
#include "kdc/model.h"

using namespace acekdc;
using namespace acekdc::kdc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteView rest(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    auto cfg = parse_config(as_string(rest));
    if (!cfg) return 0;
    for (const GroupConfig& g : cfg->groups) {
      if (!validate_group_config(g)) std::abort();
      auto back = decode_group_config(encode_group_config(g));
      if (!back || !(*back == g)) std::abort();
    }
    return 0;
  }
  auto c = decode_group_config(rest);
  if (!c) return 0;
  const Bytes enc = encode_group_config(*c);
  auto again = decode_group_config(enc);
  if (!again || !(*again == *c)) std::abort();
  if (!(encode_group_config(*again) == enc)) std::abort();
  return 0;
}
