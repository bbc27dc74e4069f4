// Sender ID allocation for group members (REQ9/REQ15: the OSCORE Sender ID is the
// member identifier).
//
// Rules, strongest first:
//  1. Unique among current members (the Store enforces it: a concurrent join that
//     picked the same ID gets kConflict and allocates again).
//  2. Never handed out again while the keying material under which it was last
//     used is current (the Store enforces it too: same key + same Sender ID +
//     restarted sequence numbers would reuse AEAD nonces).
//  3. Preferably not reused within config.sender_id_reuse_delay_s of its release,
//     so that it is not confused with a departed member's retained key (REQ13).
//  4. Short: 1 byte while a 1-byte ID is free, then 2, then longer.
// Among equally good 1-byte candidates the choice is random, so that KDC nodes
// working from the same view rarely collide.
#pragma once

#include <cstddef>

#include "core/random.h"
#include "kdc/store.h"

namespace acekdc::kdc {

struct SenderIdOptions {
  // max_len: the longest Sender ID the group's AEAD allows (OSCORE: nonce length
  // minus 6; 7 for the 13-byte nonce of AES-CCM-16-64-128). The caller knows the
  // algorithm; the default fits AES-CCM-16-*.
  size_t max_len = 7;
  // random_probes: tries per length above 1 byte before scanning or growing.
  uint32_t random_probes = 64;
};

// allocate_sender_id picks a Sender ID for a new member (or a renewal) of `g` as
// of `now`. It reads `g` only; nothing is reserved until the Store accepts it.
// kFull when no ID up to max_len is available.
Expected<Bytes, StoreError> allocate_sender_id(const GroupState& g, int64_t now, Random& rng,
                                               const SenderIdOptions& options = {});

// add_member_with_new_sender_id gives `m` a freshly allocated Sender ID and adds
// it to `group` in `store`. `cache` is the caller's copy of the group: on
// kConflict (another writer took the ID) it is reloaded from the store and the
// allocation retried, up to max_attempts times. On success the member is in both
// store and cache and its Sender ID is returned. Any other error is returned
// as is with `cache` unchanged except for reloads; after kIo/kBusy the caller
// cannot know whether the write happened (a lost acknowledgement) and should
// reload before acting on the group again.
Expected<Bytes, StoreError> add_member_with_new_sender_id(Store& store, GroupState& cache,
                                                          Member m, int64_t now, Random& rng,
                                                          const SenderIdOptions& options = {},
                                                          int max_attempts = 8);

// renew_sender_id gives the existing member `node_name` a new Sender ID (Key
// Renewal Request, REQ15/OPT8), with the same retry rule. Returns the new ID.
Expected<Bytes, StoreError> renew_sender_id(Store& store, GroupState& cache,
                                            std::string_view node_name, int64_t now, Random& rng,
                                            const SenderIdOptions& options = {},
                                            int max_attempts = 8);

}  // namespace acekdc::kdc
