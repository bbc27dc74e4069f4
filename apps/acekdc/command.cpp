#include "acekdc/command.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace acekdc::app {

static std::vector<std::pair<std::string, RegisterFn>>& registry() {
  static std::vector<std::pair<std::string, RegisterFn>> r;
  return r;
}

Registrar::Registrar(std::string name, RegisterFn fn) {
  registry().emplace_back(std::move(name), std::move(fn));
}

void register_all(CLI::App& root) {
  auto& r = registry();
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, fn] : r) fn(root);
}

}  // namespace acekdc::app
