// StoreError: what a KDC state operation can fail with. Every Store operation
// returns one of these as a value; none throws.
#pragma once

#include <cstdint>

namespace acekdc::kdc {

enum class StoreError : uint8_t {
  // kNotFound: the group, member, token or OSCORE context does not exist.
  // Caller: answer 4.04 (or 4.01 for a token) -- nothing was changed.
  kNotFound,
  // kConflict: a uniqueness rule would break: the group exists, the Sender ID is
  // held by a current member or was already used under the current keying material,
  // the Group ID was used before in this group. Caller: reload the group (another
  // KDC node may have written it) and retry with a fresh value.
  kConflict,
  // kNameTaken: the node name is already a member of the group. Not retryable.
  kNameTaken,
  // kStale: a monotonic counter would not advance as required: put_key_material
  // with num != current + 1, reserve_sequence below the stored mark. Caller:
  // reload; another writer advanced it.
  kStale,
  // kFull: the group already has its configured maximum number of members.
  kFull,
  // kInvalid: the arguments break a rule of the model (empty group name, node
  // name, Sender ID, Group ID or token id; initial num != 0; num or a sequence
  // number above 2^63-1). Caller bug; nothing changed. (Configurations are
  // checked by validate_group_config in config.h, not by the store.)
  kInvalid,
  // kBusy: the database stayed locked by another writer beyond busy_timeout.
  // Nothing changed; the caller may retry later (5.03).
  kBusy,
  // kIo: the write could not be made durable (disk full, I/O error). Nothing
  // changed as far as the store knows; the caller must not act as if it had.
  kIo,
  // kCorrupt: stored data does not decode or breaks the model's invariants.
  kCorrupt,
  // kSchemaTooNew: the database was written by a newer version of acekdc.
  kSchemaTooNew,
};

// to_string returns a short English description, without any stored data.
const char* to_string(StoreError e);

}  // namespace acekdc::kdc
