#include "oscore/limits.h"

#include <cmath>

#include "core/codepoints.h"

namespace acekdc::oscore {

namespace {

enum class Family { kNone, kGcm, kChaCha, kCcm8, kCcm16 };

Family family(int alg) {
  namespace a = cp::alg;
  switch (alg) {
    case a::kA128GCM:
    case a::kA192GCM:
    case a::kA256GCM:
      return Family::kGcm;
    case a::kChaCha20Poly1305:
      return Family::kChaCha;
    case a::kAES_CCM_16_64_128:
    case a::kAES_CCM_16_64_256:
    case a::kAES_CCM_64_64_128:
    case a::kAES_CCM_64_64_256:
      return Family::kCcm8;
    case a::kAES_CCM_16_128_128:
    case a::kAES_CCM_16_128_256:
    case a::kAES_CCM_64_128_128:
    case a::kAES_CCM_64_128_256:
      return Family::kCcm16;
    default:
      return Family::kNone;
  }
}

}  // namespace

std::optional<KeyLimits> default_limits(int aead_alg) {
  namespace o = cp::oscore;
  switch (family(aead_alg)) {
    case Family::kNone:
      return std::nullopt;
    case Family::kCcm8:
      return KeyLimits{o::kDefaultLimitQ, o::kDefaultLimitVCcm8, o::kDefaultLimitL};
    default:
      return KeyLimits{o::kDefaultLimitQ, o::kDefaultLimitV, o::kDefaultLimitL};
  }
}

double Advantage::ia_log2() const { return std::log2(ia); }
std::optional<double> Advantage::ca_log2() const {
  if (!ca) return std::nullopt;
  return std::log2(*ca);
}

Expected<Advantage, Error> advantage(int aead_alg, const KeyLimits& lim) {
  const double q = static_cast<double>(lim.q);
  const double v = static_cast<double>(lim.v);
  const double l = static_cast<double>(lim.l);
  Advantage a;
  switch (family(aead_alg)) {
    case Family::kNone:
      return unexpected(Error::kUnsupportedAlgorithm);
    case Family::kGcm:
      a.ia = 2.0 * v * (l + 1.0) / std::ldexp(1.0, 128);
      a.ca = (l + q + 1.0) * (l + q + 1.0) / std::ldexp(1.0, 129);
      break;
    case Family::kChaCha:
      a.ia = v * (l + 1.0) / std::ldexp(1.0, 103);
      break;
    case Family::kCcm8:
    case Family::kCcm16: {
      const int t = family(aead_alg) == Family::kCcm8 ? 64 : 128;
      const double x = 2.0 * l * (v + q);
      a.ia = v / std::ldexp(1.0, t) + x * x / std::ldexp(1.0, 128);
      const double y = 2.0 * l * q;
      a.ca = y * y / std::ldexp(1.0, 128);
      break;
    }
  }
  return a;
}

Expected<void, Error> check_limits(int aead_alg, const KeyLimits& limits) {
  auto a = advantage(aead_alg, limits);
  if (!a) return unexpected(a.error());
  if (limits.q == 0 || limits.v == 0 || limits.l == 0) return unexpected(Error::kInvalidArgument);
  // log2(1 + 2^-14): see limits.h.
  const double max = cp::oscore::kMaxAdvantageLog2 + std::log2(1.0 + std::ldexp(1.0, -14));
  if (a->ia_log2() > max) return unexpected(Error::kLimitsTooWeak);
  if (auto ca = a->ca_log2(); ca && *ca > max) return unexpected(Error::kLimitsTooWeak);
  return {};
}

}  // namespace acekdc::oscore
