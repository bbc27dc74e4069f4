// Algorithm names as the command line accepts them (IANA COSE names).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace acekdc::app {

// alg_from_name maps an IANA COSE algorithm name (case-insensitive; e.g. "EdDSA",
// "ES256", "A128GCM", "AES-CCM-16-64-128", "ChaCha20/Poly1305", "HMAC 256/64" or
// "HMAC256/64") or a decimal id to the COSE algorithm id.
std::optional<int> alg_from_name(std::string_view name);
// alg_name returns the IANA name of a COSE algorithm id ("alg N" if unknown).
std::string alg_name(int alg);
// alg_names_list lists the accepted names, for --help texts.
std::string alg_names_list();

}  // namespace acekdc::app
