// Uri: "coap://host[:port]/path?query" (RFC 7252 §6) split into parts, and
// applied to a request as Uri-Path / Uri-Query options (§6.4).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coap/message.h"

namespace acekdc::coap {

struct Uri {
  std::string host;       // without brackets
  uint16_t port = 5683;
  std::string path;       // "/a/b" (percent-decoded per segment when applied)
  std::string query;      // "a=1&b=2"
  // parse accepts only the "coap" scheme. Returns nullopt on a malformed URI.
  static std::optional<Uri> parse(std::string_view s);
  // apply_to sets Uri-Path and Uri-Query options of `m` (percent-decoding).
  void apply_to(Message& m) const;
};

// percent_decode decodes %XX escapes; nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace acekdc::coap
