// AEAD key usage limits (draft-hoeglund-core-oscore-key-limits-01 §2).
//
// q = messages encrypted with one Sender Key, v = failed decryptions with one
// Recipient Key, l = maximum message length in 16-byte blocks. The Integrity
// Advantage (IA) and Confidentiality Advantage (CA) follow the formulas of
// draft-irtf-cfrg-aead-limits-02 as the seed applies them (Figures 1 and 2):
//
//   AES-GCM (1, 2, 3):      IA = 2 * v * (l + 1) / 2^128
//                           CA = (l + q + 1)^2 / 2^129   (the seed puts l for s)
//   ChaCha20/Poly1305 (24): IA = v * (l + 1) / 2^103      (no CA bound)
//   AES-CCM, tag t bits:    IA = v / 2^t + (2 * l * (v + q))^2 / 2^128
//   (10, 11, 12, 13: t=64;  CA = (2 * l * q)^2 / 2^128
//    30, 31, 32, 33: t=128)
//
// A configuration is refused when IA or CA exceeds 2^-54 (seed §2.1.1), with a
// relative tolerance of 2^-14 so that the seed's own recommended triplet for
// AES-CCM-16-64-128, whose exact IA is 2^-54 + 2^-70, passes as the seed
// reports it (2^-54); v = 2^10 + 1 with the same q and l is refused.
#pragma once

#include <cstdint>
#include <optional>

#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

struct KeyLimits {
  uint64_t q = 0;  // limit_q: encryptions per Sender Key
  uint64_t v = 0;  // limit_v: failed decryptions per Recipient Key
  uint64_t l = 0;  // maximum message length in blocks (used for the advantage only)
  bool operator==(const KeyLimits&) const = default;
};

// default_limits returns the seed §2.1.1 defaults: (2^20, 2^20, 2^8) for algs 1,
// 3, 24, 30 (and 2, 31, 32, 33, same families), (2^20, 2^10, 2^8) for 10 (and 11,
// 12, 13). nullopt for algorithms without limits.
std::optional<KeyLimits> default_limits(int aead_alg);

struct Advantage {
  double ia = 0;                  // probability
  std::optional<double> ca;       // nullopt: no CA bound defined (ChaCha20/Poly1305)
  double ia_log2() const;
  std::optional<double> ca_log2() const;
};

// advantage evaluates IA and CA for `limits`; kUnsupportedAlgorithm for an alg
// without formulas.
Expected<Advantage, Error> advantage(int aead_alg, const KeyLimits& limits);

// check_limits succeeds iff IA and CA are at most 2^-54 (kInvalidArgument if q, v or l is 0;
// kLimitsTooWeak above 2^-54; kUnsupportedAlgorithm for an unknown alg).
Expected<void, Error> check_limits(int aead_alg, const KeyLimits& limits);

}  // namespace acekdc::oscore
