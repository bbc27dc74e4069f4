// acekdc oscore limits: Integrity and Confidentiality Advantage of an AEAD key
// usage triplet (q, v, l) per draft-hoeglund-core-oscore-key-limits-01 §2.1.1.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "acekdc/alg_names.h"
#include "acekdc/command.h"
#include "core/codepoints.h"
#include "oscore/limits.h"

namespace acekdc::app {
namespace {

struct LimitsArgs {
  std::string alg = "10";
  std::string q, v, l;
};

// parse_count accepts a decimal integer or 2^N (N <= 63).
bool parse_count(const std::string& s, uint64_t& out) {
  if (s.rfind("2^", 0) == 0) {
    char* end = nullptr;
    unsigned long e = std::strtoul(s.c_str() + 2, &end, 10);
    if (s.size() == 2 || *end != '\0' || e > 63) return false;
    out = uint64_t{1} << e;
    return true;
  }
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || *end != '\0') return false;
  out = v;
  return true;
}

void print_value(const char* what, double p) {
  std::printf("%s = 2^%.2f (%.6e)\n", what, std::log2(p), p);
}

void run_limits(const LimitsArgs& a) {
  auto parsed = alg_from_name(a.alg);
  int alg = parsed.value_or(0);
  if (!parsed) {
    std::fprintf(stderr, "error: unknown algorithm '%s'\n", a.alg.c_str());
    fail_with(kExitUsage);
  }
  auto defaults = oscore::default_limits(alg);
  if (!defaults) {
    std::fprintf(stderr, "error: no usage limits are defined for algorithm %d\n", alg);
    fail_with(kExitUsage);
  }
  oscore::KeyLimits lim = *defaults;
  const std::pair<const std::string*, uint64_t*> fields[] = {{&a.q, &lim.q}, {&a.v, &lim.v}, {&a.l, &lim.l}};
  for (const auto& [text, value] : fields) {
    if (!text->empty() && !parse_count(*text, *value)) {
      std::fprintf(stderr, "error: '%s' is not a count (a decimal integer or 2^N)\n", text->c_str());
      fail_with(kExitUsage);
    }
  }
  auto adv = oscore::advantage(alg, lim);
  if (!adv) {
    std::fprintf(stderr, "error: %s\n", oscore::to_string(adv.error()));
    fail_with(kExitUsage);
  }
  std::printf("alg %d (%s): q = %llu, v = %llu, l = %llu\n", alg, alg_name(alg).c_str(),
              static_cast<unsigned long long>(lim.q), static_cast<unsigned long long>(lim.v),
              static_cast<unsigned long long>(lim.l));
  print_value("IA", adv->ia);
  if (adv->ca) {
    print_value("CA", *adv->ca);
  } else {
    std::printf("CA = - (no bound defined for this algorithm)\n");
  }
  auto check = oscore::check_limits(alg, lim);
  if (check) {
    std::printf("acceptable: yes (IA and CA <= 2^%d)\n", cp::oscore::kMaxAdvantageLog2);
  } else {
    std::printf("acceptable: no (%s)\n", oscore::to_string(check.error()));
    fail_with(kExitFailure);
  }
}

Registrar reg("oscore", [](CLI::App& root) {
  auto* osc = root.add_subcommand("oscore", "OSCORE tools (RFC 8613, key usage limits)");
  osc->require_subcommand(1);
  auto args = std::make_shared<LimitsArgs>();
  auto* lim = osc->add_subcommand(
      "limits",
      "Print the Integrity and Confidentiality Advantage (IA, CA) of an AEAD usage triplet\n"
      "(draft-hoeglund-core-oscore-key-limits-01 §2.1.1); exits 1 if IA or CA exceeds 2^-54");
  lim->add_option("--alg", args->alg, "COSE AEAD algorithm id or name (e.g. 10, A128GCM)")
      ->capture_default_str();
  lim->add_option("--q", args->q, "Encryptions per key (integer or 2^N; default per algorithm)");
  lim->add_option("--v", args->v, "Failed decryptions per key (integer or 2^N; default per algorithm)");
  lim->add_option("--l", args->l, "Maximum message length in 16-byte blocks (integer or 2^N)");
  lim->callback([args] { run_limits(*args); });
});

}  // namespace
}  // namespace acekdc::app
