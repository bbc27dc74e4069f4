// The OpenSSL 3 backend of the crypto provider. The only code in acekdc that
// includes OpenSSL headers lives beside this file.
#pragma once

#include <memory>

#include "crypto/provider.h"

namespace acekdc::crypto {

// make_openssl_provider returns a provider backed by OpenSSL 3 (libcrypto);
// its random() is OpenSSL's CSPRNG (RAND_bytes).
std::unique_ptr<Provider> make_openssl_provider();

}  // namespace acekdc::crypto
