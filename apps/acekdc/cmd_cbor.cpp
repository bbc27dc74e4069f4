// acekdc cbor diag|encode: CBOR <-> diagnostic notation (EDN).
#include <cstdio>
#include <string>

#include "acekdc/command.h"
#include "acekdc/io_util.h"
#include "cbor/edn.h"
#include "core/hex.h"

namespace acekdc::app {
namespace {

struct CborArgs {
  std::string input = "-";
  bool pretty = false;
  bool embedded = false;
  bool binary = false;
};

void run_diag(const CborArgs& a) {
  Bytes cbor;
  if (a.input == "-") {
    std::string in = read_stdin();
    cbor.assign(in.begin(), in.end());
  } else {
    auto b = from_hex(a.input);
    if (!b) {
      std::fprintf(stderr, "error: argument is not hex (use '-' for binary CBOR on stdin)\n");
      fail_with(kExitUsage);
    }
    cbor = std::move(*b);
  }
  auto v = cbor::decode(cbor);
  if (!v) {
    std::fprintf(stderr, "error: not well-formed CBOR: %s\n", cbor::to_string(v.error()));
    fail_with(kExitFailure);
  }
  std::printf("%s\n", cbor::to_diag(*v, {.pretty = a.pretty, .embedded = a.embedded}).c_str());
}

void run_encode(const CborArgs& a) {
  std::string text = a.input == "-" ? read_stdin() : a.input;
  auto v = cbor::from_diag(text);
  if (!v) {
    std::fprintf(stderr, "error: diagnostic notation at offset %zu: %s\n", v.error().offset,
                 v.error().message.c_str());
    fail_with(kExitUsage);
  }
  Bytes out = cbor::encode(*v);
  if (a.binary) {
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    std::printf("%s\n", to_hex(out).c_str());
  }
}

Registrar reg("cbor", [](CLI::App& root) {
  auto* cbor = root.add_subcommand("cbor", "CBOR tools: diagnostic notation both ways");
  cbor->require_subcommand(1);
  auto args = std::make_shared<CborArgs>();

  auto* diag = cbor->add_subcommand("diag", "Print CBOR (hex argument, or binary on stdin) as diagnostic notation");
  diag->add_option("cbor", args->input, "CBOR as hex, or '-' for binary CBOR on stdin")->capture_default_str();
  diag->add_flag("--pretty,-p", args->pretty, "Multi-line, indented output");
  diag->add_flag("--embedded,-e", args->embedded, "Show byte strings holding CBOR as << ... >>");
  diag->callback([args] { run_diag(*args); });

  auto* enc = cbor->add_subcommand("encode", "Print the CBOR of diagnostic notation as hex");
  enc->add_option("edn", args->input, "Diagnostic notation, or '-' to read it from stdin")->capture_default_str();
  enc->add_flag("--binary,-b", args->binary, "Write binary CBOR to stdout instead of hex");
  enc->callback([args] { run_encode(*args); });
});

}  // namespace
}  // namespace acekdc::app
