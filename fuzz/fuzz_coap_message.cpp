// fuzz_coap_message: decode, re-encode, decode again: the two parses must agree,
// and the re-encoding must be a fixed point. Also exercises the inner (OSCORE
// plaintext) form.
#include <cstdlib>

#include "coap/message.h"

using namespace acekdc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto v = coap::MessageView::parse(in);
  if (v) {
    coap::Message m = coap::Message::from_view(*v);
    auto enc = m.encode();
    if (!enc) std::abort();
    auto m2 = coap::Message::parse(*enc);
    if (!m2 || !(*m2 == m)) std::abort();
    auto enc2 = m2->encode();
    if (!enc2 || *enc2 != *enc) std::abort();
    // options come out sorted and non-decreasing
    uint16_t prev = 0;
    for (const auto& o : v->options()) {
      if (o.number < prev) std::abort();
      prev = o.number;
    }
    // a canonical input re-encodes to itself unless it used a non-minimal form
    // (which CoAP cannot produce: delta/length encodings are unique), so equal:
    if (enc->size() != size || !equal(*enc, in)) std::abort();
  }
  auto inner = coap::Message::parse_inner(in);
  if (inner) {
    auto enc = inner->encode_inner();
    if (!enc) std::abort();
    auto back = coap::Message::parse_inner(*enc);
    if (!back || !(*back == *inner)) std::abort();
  }
  return 0;
}
