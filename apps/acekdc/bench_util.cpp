#include "acekdc/bench_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "acekdc/command.h"

namespace acekdc::app {

TempDir::TempDir(const char* name, std::string base) {
  if (base.empty()) {
    const char* env = std::getenv("TMPDIR");
    base = env && *env ? env : "/tmp";
  }
  std::string tmpl = base + "/acekdc-" + name + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "error: cannot create a temporary directory in %s\n", base.c_str());
    fail_with(kExitFailure);
  }
  path = std::move(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

CLI::App* bench_command(CLI::App& root) {
  try {
    return root.get_subcommand("bench");
  } catch (const CLI::OptionNotFound&) {
    CLI::App* bench = root.add_subcommand("bench", "load and performance tools");
    bench->require_subcommand(1);
    return bench;
  }
}

}  // namespace acekdc::app
