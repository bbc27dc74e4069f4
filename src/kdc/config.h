// KDC configuration from TOML: the state store and the [[group]] tables.
//
//   [store]
//   backend = "sqlite"            # or "memory"
//   path = "acekdc.db"
//
//   [[group]]
//   name = "demo-group"           # GROUPNAME: [A-Za-z0-9._~-], 1..64 characters
//   aead = "AES-CCM-16-64-128"    # or the COSE algorithm number
//   hkdf = "HKDF-SHA-256"         # "HKDF-SHA-512", or 5 / 7 (-10 / -11 accepted)
//   sign_alg = "EdDSA"            # or "ES256" (or -8 / -7): sets sign_info
//   pub_key_enc = 1               # COSE_Key (REQ6); the only accepted value
//   max_members = 1000
//   multicast_address = "ff35:30:2001:db8::23"   # optional, an IP multicast address
//   key_lifetime = 86400          # seconds until new keying material expires
//   departed_key_retention = 0    # REQ13, seconds
//   sender_id_reuse_delay = 3600  # seconds
//   key_renewal = "new-sender-id" # OPT8, or "rekey-group"
//   [group.policies]              # REQ14
//   seq_sync = "baseline"         # "best-effort", "baseline", "echo" (or 1, 2, 3)
//   key_update_check_interval = 3600
//   expiration_delta = 0
//   [group.rekey]
//   on_join = true
//   on_leave = true
//   on_expiry = true
//   min_interval = 0              # at most one membership-change rekey per interval
//   batch_changes = 0             # or rekey once this many changes accumulated
//   # Batching (min_interval / batch_changes > 0) WEAKENS the guarantees: until the
//   # batched rekey, a joiner can read traffic protected with the material it
//   # replaced (no backward security) and a departed or evicted member can still
//   # read the group (no forward security). on_expiry renews the material
//   # GroupManager::tick's margin (60 s) before 'exp'.
//
// Every key is optional except group.name; unknown keys and wrong types are
// errors, reported with their line and dotted path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "kdc/model.h"

namespace acekdc::kdc {

struct StoreConfig {
  enum class Backend : uint8_t { kSqlite, kMemory };
  Backend backend = Backend::kSqlite;
  std::string path = "acekdc.db";
  friend bool operator==(const StoreConfig&, const StoreConfig&) = default;
};

struct KdcConfig {
  StoreConfig store;
  std::vector<GroupConfig> groups;
};

enum class ConfigErrc : uint8_t {
  kSyntax,          // not valid TOML
  kUnknownKey,      // a key this version does not know (typo?)
  kMissingKey,      // a required key is absent
  kWrongType,       // e.g. a string where an integer belongs
  kBadValue,        // right type, value out of range or unknown name
  kDuplicateGroup,  // two [[group]] tables with the same name
};
const char* to_string(ConfigErrc e);

struct ConfigError {
  ConfigErrc code = ConfigErrc::kSyntax;
  std::string message;  // "line 7: group[0].rekey.min_interval: ..." (no secrets: config has none)
};

// parse_config parses a whole configuration. A file without [[group]] tables is
// valid (a KDC with no groups); without [store] the defaults apply.
Expected<KdcConfig, ConfigError> parse_config(std::string_view toml_text);

// validate_group_config checks a GroupConfig built in code by the same rules.
Expected<void, ConfigError> validate_group_config(const GroupConfig& c);

// kDefaultConfig: the embedded default configuration: one group "demo-group"
// (EdDSA, AES-CCM-16-64-128, rekey on join and leave) in an SQLite store.
extern const char* const kDefaultConfig;

}  // namespace acekdc::kdc
