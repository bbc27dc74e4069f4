// fuzz_oscore_option: the OSCORE option value parser (RFC 8613 §6.1 with the
// key-limits draft extension). Every accepted value must re-encode to exactly
// the same bytes (the parser accepts only the canonical encoding).
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "oscore/option.h"

using namespace acekdc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto v = oscore::parse_option(ByteView(data, size));
  if (!v) return 0;
  uint8_t buf[1024];
  if (size > sizeof(buf)) return 0;
  auto n = oscore::encode_option(*v, buf);
  if (!n || *n != size || *n != oscore::encoded_option_len(*v) || (size && std::memcmp(buf, data, size) != 0)) {
    std::abort();
  }
  auto again = oscore::parse_option(ByteView(buf, *n));
  if (!again || again->partial_iv.size() != v->partial_iv.size() || again->kid.has_value() != v->kid.has_value() ||
      again->kid_context.has_value() != v->kid_context.has_value() ||
      again->id_detail.has_value() != v->id_detail.has_value()) {
    std::abort();
  }
  return 0;
}
