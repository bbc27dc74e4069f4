// acekdc key generate: a fresh COSE_Key.
#include <cstdio>
#include <string>

#include "acekdc/alg_names.h"
#include "acekdc/command.h"
#include "cbor/edn.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/algorithms.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::app {
namespace {

struct KeyArgs {
  std::string alg;
  std::string kid_hex;
  bool hex = false;
  bool public_only = false;
  bool pretty = false;
};

void run_generate(const KeyArgs& a) {
  auto alg = alg_from_name(a.alg);
  if (!alg) {
    std::fprintf(stderr, "error: unknown algorithm '%s' (known: %s)\n", a.alg.c_str(), alg_names_list().c_str());
    fail_with(kExitUsage);
  }
  auto kid = from_hex(a.kid_hex);
  if (!kid) {
    std::fprintf(stderr, "error: --kid must be hex\n");
    fail_with(kExitUsage);
  }
  auto provider = crypto::make_openssl_provider();
  cose::CoseKey key;
  switch (cose::family(*alg)) {
    case cose::AlgFamily::kSignature: {
      int crv = *alg == cp::alg::kEdDSA ? cp::crv::kEd25519 : cp::crv::kP256;
      auto kp = provider->generate_keypair(crv);
      if (!kp) {
        std::fprintf(stderr, "error: key generation failed: %s\n", crypto::to_string(kp.error()));
        fail_with(kExitFailure);
      }
      key = cose::CoseKey::from_keypair(*kp, *kid, *alg, !a.public_only);
      break;
    }
    case cose::AlgFamily::kAead:
    case cose::AlgFamily::kMac: {
      if (a.public_only) {
        std::fprintf(stderr, "error: --public makes no sense for a symmetric key\n");
        fail_with(kExitUsage);
      }
      size_t len = 0;
      if (auto ai = crypto::aead_info(*alg)) len = ai->key_len;
      if (auto mi = crypto::mac_info(*alg)) len = mi->key_len;
      Bytes k = provider->random().bytes(len);
      key = cose::CoseKey::symmetric(k, *kid, *alg);
      secure_zero(k);
      break;
    }
    default:
      std::fprintf(stderr, "error: algorithm %s cannot be used for a key here\n", alg_name(*alg).c_str());
      fail_with(kExitUsage);
  }
  if (a.hex) {
    std::printf("%s\n", to_hex(key.encode(!a.public_only)).c_str());
  } else {
    std::printf("%s\n", cbor::to_diag(key.to_value(!a.public_only), {.pretty = a.pretty}).c_str());
  }
}

Registrar reg("key", [](CLI::App& root) {
  auto* key = root.add_subcommand("key", "COSE keys");
  key->require_subcommand(1);
  auto args = std::make_shared<KeyArgs>();
  auto* gen = key->add_subcommand("generate", "Print a new COSE_Key (diagnostic notation, or CBOR hex with --hex)");
  gen->add_option("--alg,-a", args->alg, "Algorithm: " + alg_names_list())->required();
  gen->add_option("--kid", args->kid_hex, "Key identifier, hex");
  gen->add_flag("--hex,-x", args->hex, "Print the CBOR encoding as hex");
  gen->add_flag("--public", args->public_only, "Print only the public part (signature keys)");
  gen->add_flag("--pretty,-p", args->pretty, "Multi-line output");
  gen->callback([args] { run_generate(*args); });
});

}  // namespace
}  // namespace acekdc::app
