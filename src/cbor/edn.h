// EDN: CBOR diagnostic notation (RFC 8949 §8, RFC 8610 Appendix G) both ways.
#pragma once

#include <string>
#include <string_view>

#include "cbor/value.h"

namespace acekdc::cbor {

struct DiagOptions {
  bool pretty = false;     // multi-line with indentation for nested maps/arrays
  // embedded: show a byte string as << ... >> when it holds exactly one
  // well-formed array, map or tag (bstr-wrapped COSE headers, scopes, CWTs), or
  // is the content of tag 24/63 and holds well-formed CBOR; other bytes stay h''.
  bool embedded = false;
};

// to_diag prints v as diagnostic notation: integers, h'..', "..", [..], {..},
// tags N(..), simple(N), true/false/null/undefined, floats (NaN, Infinity,
// -Infinity, 1.5, 1.0e+300 ...), indefinite lengths as (_ ..), [_ ..], {_ ..}.
std::string to_diag(const Value& v, const DiagOptions& opts = {});
// diag_of_bytes decodes `cbor` and prints it; on a decode error returns an
// error text starting with "error: ".
std::string diag_of_bytes(ByteView cbor, const DiagOptions& opts = {});

struct EdnError {
  size_t offset = 0;      // byte offset in the input where parsing failed
  std::string message;    // short description
};

// from_diag parses diagnostic notation (including h'', b64'', '' byte strings,
// << >> embedded CBOR, comments /.../ and #..., (_ ) [_ ] {_ } indefinite forms,
// encoding indicators _0.._3 on floats, tags, simple(N)) into a Value.
Expected<Value, EdnError> from_diag(std::string_view text);

}  // namespace acekdc::cbor
