#include "acekdc/alg_names.h"

#include <cctype>
#include <charconv>

#include "core/codepoints.h"

namespace acekdc::app {
namespace {

struct AlgName {
  int alg;
  const char* name;
};
constexpr AlgName kAlgs[] = {
    {cp::alg::kEdDSA, "EdDSA"},
    {cp::alg::kES256, "ES256"},
    {cp::alg::kA128GCM, "A128GCM"},
    {cp::alg::kA192GCM, "A192GCM"},
    {cp::alg::kA256GCM, "A256GCM"},
    {cp::alg::kAES_CCM_16_64_128, "AES-CCM-16-64-128"},
    {cp::alg::kAES_CCM_16_64_256, "AES-CCM-16-64-256"},
    {cp::alg::kAES_CCM_64_64_128, "AES-CCM-64-64-128"},
    {cp::alg::kAES_CCM_64_64_256, "AES-CCM-64-64-256"},
    {cp::alg::kAES_CCM_16_128_128, "AES-CCM-16-128-128"},
    {cp::alg::kAES_CCM_16_128_256, "AES-CCM-16-128-256"},
    {cp::alg::kAES_CCM_64_128_128, "AES-CCM-64-128-128"},
    {cp::alg::kAES_CCM_64_128_256, "AES-CCM-64-128-256"},
    {cp::alg::kChaCha20Poly1305, "ChaCha20/Poly1305"},
    {cp::alg::kHMAC256_64, "HMAC 256/64"},
    {cp::alg::kHMAC256_256, "HMAC 256/256"},
    {cp::alg::kHMAC384_384, "HMAC 384/384"},
    {cp::alg::kHMAC512_512, "HMAC 512/512"},
};

std::string fold(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<int> alg_from_name(std::string_view name) {
  std::string f = fold(name);
  for (const auto& a : kAlgs)
    if (fold(a.name) == f) return a.alg;
  int v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec == std::errc() && p == name.data() + name.size()) return v;
  return std::nullopt;
}

std::string alg_name(int alg) {
  for (const auto& a : kAlgs)
    if (a.alg == alg) return a.name;
  return "alg " + std::to_string(alg);
}

std::string alg_names_list() {
  std::string s;
  for (const auto& a : kAlgs) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

}  // namespace acekdc::app
