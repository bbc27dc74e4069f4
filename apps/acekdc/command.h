// Subcommand registration for the `acekdc` binary. Argument parsing lives only
// in apps/. Each cmd_<name>.cpp defines
//   static acekdc::app::Registrar reg("name", [](CLI::App& app) { ... });
// which adds its subcommand(s) to the root CLI::App.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace acekdc::app {

using RegisterFn = std::function<void(CLI::App& root)>;

struct Registrar {
  Registrar(std::string name, RegisterFn fn);
};

// register_all calls every registered function, sorted by name.
void register_all(CLI::App& root);

// Exit codes used by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // the operation failed (bad token, network error, ...)
inline constexpr int kExitUsage = 2;     // bad arguments or input

// fail_with ends the running command with exit code `code` (after the command
// printed its own diagnostic to stderr).
[[noreturn]] inline void fail_with(int code) { throw CLI::RuntimeError(code); }

}  // namespace acekdc::app
