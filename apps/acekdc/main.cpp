// acekdc: ACE Authorization Server, Key Distribution Center and group member
// client for draft-ietf-ace-key-groupcomm-05, in one binary with subcommands.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "acekdc/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "acekdc: secure group key management for constrained networks\n"
      "(ACE Authorization Server, Key Distribution Center, group member client)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "acekdc 0.1.0");
  acekdc::app::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return acekdc::app::kExitOk;
}
