// Small helpers shared by subcommands: reading arguments that may be hex, EDN,
// a file or stdin.
#pragma once

#include <optional>
#include <string>

#include "core/bytes.h"

namespace acekdc::app {

// read_stdin returns all of standard input.
std::string read_stdin();
// read_file returns a file's contents, or nullopt.
std::optional<std::string> read_file(const std::string& path);
// cbor_from_text turns "HEX", "EDN", "@file" (binary CBOR, hex or EDN in a file) or "-"
// (binary stdin) into CBOR bytes. On failure prints a diagnostic naming `what` to stderr
// and returns nullopt.
std::optional<Bytes> cbor_from_text(const std::string& text, const char* what);

}  // namespace acekdc::app
