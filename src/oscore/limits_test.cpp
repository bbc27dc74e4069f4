// Key usage limits: the seed's Figures 1 and 2 (draft-hoeglund-core-oscore-key-limits-01
// §2.1.1) reproduced from the formulas, and the 2^-54 configuration check.
#include <gtest/gtest.h>

#include <cmath>

#include "oscore/limits.h"

using namespace acekdc::oscore;

namespace {

constexpr uint64_t P(int e) { return uint64_t{1} << e; }

// Figure 1: q = 2^20, v = 2^20, l = 2^8.
TEST(Limits, Figure1) {
  struct Row {
    int alg;
    int ia;
    std::optional<int> ca;
  };
  const Row rows[] = {
      {30, -68, -70},           // AEAD_AES_128_CCM (AES-CCM-16-128-128)
      {1, -99, -89},            // AEAD_AES_128_GCM
      {3, -99, -89},            // AEAD_AES_256_GCM
      {24, -75, std::nullopt},  // AEAD_CHACHA20_POLY1305
  };
  for (const auto& r : rows) {
    auto a = advantage(r.alg, {P(20), P(20), P(8)});
    ASSERT_TRUE(a) << r.alg;
    EXPECT_EQ(std::lround(a->ia_log2()), r.ia) << r.alg;
    ASSERT_EQ(a->ca_log2().has_value(), r.ca.has_value()) << r.alg;
    if (r.ca) {
      EXPECT_EQ(std::lround(*a->ca_log2()), *r.ca) << r.alg;
    }
  }
}

// Figure 2: AEAD_AES_128_CCM_8 (AES-CCM-16-64-128, alg 10).
TEST(Limits, Figure2) {
  struct Row {
    int q, v, l, ia, ca;
  };
  const Row rows[] = {
      {20, 20, 8, -44, -70}, {15, 20, 8, -44, -80}, {10, 20, 8, -44, -90},
      {20, 15, 8, -49, -70}, {15, 15, 8, -49, -80}, {10, 15, 8, -49, -90},
      {20, 10, 8, -54, -70}, {15, 10, 8, -54, -80}, {10, 10, 8, -54, -90},
      {20, 20, 6, -44, -74}, {15, 20, 6, -44, -84}, {10, 20, 6, -44, -94},
      {20, 15, 6, -49, -74}, {15, 15, 6, -49, -84}, {10, 15, 6, -49, -94},
      {20, 10, 6, -54, -74}, {15, 10, 6, -54, -84}, {10, 10, 6, -54, -94},
  };
  for (const auto& r : rows) {
    KeyLimits lim{P(r.q), P(r.v), P(r.l)};
    auto a = advantage(10, lim);
    ASSERT_TRUE(a);
    EXPECT_EQ(std::lround(a->ia_log2()), r.ia) << r.q << "," << r.v << "," << r.l;
    EXPECT_EQ(std::lround(*a->ca_log2()), r.ca) << r.q << "," << r.v << "," << r.l;
    // Only the v = 2^10 rows satisfy the 2^-54 bound.
    EXPECT_EQ(check_limits(10, lim).has_value(), r.v == 10) << r.q << "," << r.v << "," << r.l;
  }
}

TEST(Limits, Defaults) {
  for (int alg : {1, 3, 24, 30}) {
    auto d = default_limits(alg);
    ASSERT_TRUE(d) << alg;
    EXPECT_EQ(*d, (KeyLimits{P(20), P(20), P(8)})) << alg;
    EXPECT_TRUE(check_limits(alg, *d)) << alg;
  }
  auto d = default_limits(10);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, (KeyLimits{P(20), P(10), P(8)}));
  EXPECT_TRUE(check_limits(10, *d));
  EXPECT_FALSE(default_limits(5));
  EXPECT_EQ(advantage(5, {1, 1, 1}).error(), Error::kUnsupportedAlgorithm);
}

TEST(Limits, RefusesWeakConfigurations) {
  // One more forgery attempt than 2^10 pushes AES-CCM-16-64-128 over 2^-54.
  EXPECT_EQ(check_limits(10, {P(20), P(10) + 1, P(8)}).error(), Error::kLimitsTooWeak);
  // GCM: CA = (l + q + 1)^2 / 2^129 crosses 2^-54 around q = 2^37.5.
  EXPECT_TRUE(check_limits(1, {P(37), P(20), P(8)}));
  EXPECT_EQ(check_limits(1, {P(38), P(20), P(8)}).error(), Error::kLimitsTooWeak);
  // ChaCha20/Poly1305 has no CA bound: q does not matter, v does.
  EXPECT_TRUE(check_limits(24, {P(60), P(20), P(8)}));
  EXPECT_EQ(check_limits(24, {P(20), P(42), P(8)}).error(), Error::kLimitsTooWeak);
  // CCM with a 128-bit tag: (2 l (v + q))^2 / 2^128.
  EXPECT_EQ(check_limits(30, {P(30), P(20), P(8)}).error(), Error::kLimitsTooWeak);
  EXPECT_EQ(check_limits(30, {0, P(20), P(8)}).error(), Error::kInvalidArgument);
  EXPECT_EQ(check_limits(99, {1, 1, 1}).error(), Error::kUnsupportedAlgorithm);
}

}  // namespace
