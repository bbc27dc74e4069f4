// Helpers shared by the `acekdc bench ...` subcommands (cmd_bench_*.cpp).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace acekdc::app {

// TempDir makes a fresh directory `base`/acekdc-`name`-XXXXXX (base: $TMPDIR, else
// /tmp, when empty) and removes it with everything inside when destroyed. A
// directory that cannot be made ends the command (kExitFailure) with a diagnostic.
class TempDir {
 public:
  explicit TempDir(const char* name, std::string base = {});
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path;
};

// percentile returns the p-quantile (0..1) of `v` by nearest rank; 0 for no samples.
double percentile(std::vector<double> v, double p);

// bench_command returns the `bench` subcommand of `root`, adding it on first use
// (each bench subcommand registers itself under it).
CLI::App* bench_command(CLI::App& root);

}  // namespace acekdc::app
