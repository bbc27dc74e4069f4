// client::Error / Failure: what a client-side operation reports when it fails.
#pragma once

#include <cstdint>
#include <string>

namespace acekdc::client {

enum class Error {
  kInvalidArgument = 1,  // a bad argument (address, hex, role); fix the call
  kNoResponse,           // no answer in time; the request may or may not have been processed
  kNotVerified,          // the answer did not pass OSCORE verification (detail says why)
  kRefused,              // the server answered with an error code (Failure::code, detail)
  kBadResponse,          // the answer does not parse as the draft says
  kState,                // the state directory cannot be read or written
  kNotJoined,            // no saved membership for the group: join first
  kCrypto,               // key generation, signing or context derivation failed
};
const char* to_string(Error e);

// Failure: an Error, the CoAP code for kRefused, and a short diagnostic (never a secret).
struct Failure {
  Error error = Error::kInvalidArgument;
  uint8_t code = 0;
  std::string detail;
  std::string describe() const;
};

}  // namespace acekdc::client
