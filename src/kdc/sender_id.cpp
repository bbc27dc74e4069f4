#include "kdc/sender_id.h"

#include <limits>

namespace acekdc::kdc {

namespace {

enum class Fitness : uint8_t { kUnavailable, kRecentlyRetired, kRetiredLongAgo, kNeverUsed };

// fitness classifies `id` for allocation at `now`; retired_at is set for kRetired*.
Fitness fitness(const GroupState& g, ByteView id, int64_t now, int64_t& retired_at) {
  if (!g.sender_id_available(id)) return Fitness::kUnavailable;
  auto r = g.retired.find(id);
  if (r == g.retired.end()) return Fitness::kNeverUsed;
  retired_at = r->second.retired_at;
  if (retired_at + static_cast<int64_t>(g.config.sender_id_reuse_delay_s) > now) {
    return Fitness::kRecentlyRetired;
  }
  return Fitness::kRetiredLongAgo;
}

Bytes id_from(uint64_t v, size_t len) {
  Bytes b(len);
  for (size_t i = 0; i < len; ++i) b[len - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

// scan_best looks at every ID of length `len`: a random never-used one, else the
// one retired longest ago (past the reuse delay). Empty if none.
Bytes scan_best(const GroupState& g, size_t len, int64_t now, Random& rng) {
  const uint64_t space = uint64_t{1} << (8 * len);
  std::vector<uint64_t> never_used;
  uint64_t oldest = 0;
  int64_t oldest_at = std::numeric_limits<int64_t>::max();
  bool have_old = false;
  for (uint64_t v = 0; v < space; ++v) {
    const Bytes id = id_from(v, len);
    int64_t at = 0;
    switch (fitness(g, id, now, at)) {
      case Fitness::kNeverUsed: never_used.push_back(v); break;
      case Fitness::kRetiredLongAgo:
        if (at < oldest_at) {
          oldest_at = at;
          oldest = v;
          have_old = true;
        }
        break;
      default: break;
    }
  }
  if (!never_used.empty()) return id_from(never_used[rng.uniform(never_used.size())], len);
  if (have_old) return id_from(oldest, len);
  return {};
}

}  // namespace

Expected<Bytes, StoreError> allocate_sender_id(const GroupState& g, int64_t now, Random& rng,
                                               const SenderIdOptions& options) {
  const size_t max_len = std::min<size_t>(options.max_len, 8);
  const uint64_t used = g.members.size() + g.retired.size();
  for (size_t len = 1; len <= max_len; ++len) {
    const bool small = len <= 2;  // small enough to scan exhaustively
    const bool sparse = !small || used < (uint64_t{1} << (8 * len)) / 2;
    if (sparse) {
      Bytes id(len);
      for (uint32_t i = 0; i < options.random_probes; ++i) {
        rng.fill(id);
        int64_t at = 0;
        if (fitness(g, id, now, at) == Fitness::kNeverUsed) return id;
      }
    }
    // Every ID of this length held by a member: nothing to find by scanning.
    if (small && g.held_by_len[len] < (uint64_t{1} << (8 * len))) {
      Bytes best = scan_best(g, len, now, rng);
      if (!best.empty()) return best;
    }
  }
  return unexpected(StoreError::kFull);
}

// desynchronise moves `rng` on by a number of draws that depends on who is asking and
// how often it lost: nodes whose generators happen to be in the same state (a shared
// seed, a cloned VM) would otherwise propose the same ID again after every conflict
// and one of them could lose forever.
static void desynchronise(Random& rng, std::string_view node_name, int attempt) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : node_name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  const uint64_t draws = 1 + (h + static_cast<uint64_t>(attempt)) % 13;
  for (uint64_t i = 0; i < draws; ++i) (void)rng.uniform(1u << 16);
}

// reload replaces `cache` with the stored group.
static Expected<void, StoreError> reload(Store& store, GroupState& cache) {
  auto fresh = store.load_group(cache.config.name);
  if (!fresh) return unexpected(fresh.error());
  cache = std::move(*fresh);
  return {};
}

Expected<Bytes, StoreError> add_member_with_new_sender_id(Store& store, GroupState& cache,
                                                          Member m, int64_t now, Random& rng,
                                                          const SenderIdOptions& options,
                                                          int max_attempts) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto id = allocate_sender_id(cache, now, rng, options);
    if (!id) {
      // The cache may be stale in the pessimistic direction too.
      if (attempt > 0) return unexpected(id.error());
      ACEKDC_TRY(reload(store, cache));
      continue;
    }
    m.sender_id = *id;
    auto r = store.add_member(cache.config.name, m);
    if (r) {
      // Mirror the store; if the cache disagrees with it, take the store's view.
      if (!cache.add_member(m)) ACEKDC_TRY(reload(store, cache));
      return *id;
    }
    if (r.error() != StoreError::kConflict) return unexpected(r.error());
    desynchronise(rng, m.node_name, attempt);
    ACEKDC_TRY(reload(store, cache));
  }
  return unexpected(StoreError::kConflict);
}

Expected<Bytes, StoreError> renew_sender_id(Store& store, GroupState& cache,
                                            std::string_view node_name, int64_t now, Random& rng,
                                            const SenderIdOptions& options, int max_attempts) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto id = allocate_sender_id(cache, now, rng, options);
    if (!id) {
      if (attempt > 0) return unexpected(id.error());
      ACEKDC_TRY(reload(store, cache));
      continue;
    }
    auto r = store.update_member_sender_id(cache.config.name, node_name, *id, now);
    if (r) {
      if (!cache.update_member_sender_id(node_name, *id, now)) ACEKDC_TRY(reload(store, cache));
      return *id;
    }
    if (r.error() != StoreError::kConflict) return unexpected(r.error());
    desynchronise(rng, node_name, attempt);
    ACEKDC_TRY(reload(store, cache));
  }
  return unexpected(StoreError::kConflict);
}

}  // namespace acekdc::kdc
