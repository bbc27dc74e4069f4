// Scope of an ACE access token for group joining (seed draft §3.1 Figure 4, as
// fixed by docs/profile.md REQ1/REQ2/OPT7):
//
//   scope = << [ + scope_entry ] >>
//   scope_entry = [ gname: tstr, ? role: tstr / int / [ 2* (tstr / int) ] ]
//
// Roles are "requester", "responder", "monitor" (abbreviated 1, 2, 3). "monitor"
// cannot be combined with another role. Any other role is an error (4.00 at the
// KDC, invalid_scope at the AS).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/expected.h"

namespace acekdc::ace {

// RoleSet: a bit set of roles; bit (1 << role) for role in cp::role (1..3).
using RoleSet = uint8_t;
inline constexpr RoleSet kRoleRequester = 1u << 1;
inline constexpr RoleSet kRoleResponder = 1u << 2;
inline constexpr RoleSet kRoleMonitor = 1u << 3;
inline constexpr RoleSet kAllRoles = kRoleRequester | kRoleResponder | kRoleMonitor;

// role_from_name maps "requester"/"responder"/"monitor" to its bit (0 if unknown).
RoleSet role_from_name(std::string_view name);
// role_names lists the roles of `roles` as text, e.g. "requester,responder".
std::string role_names(RoleSet roles);
// roles_valid: a non-empty combination allowed by the profile (monitor alone).
bool roles_valid(RoleSet roles);

struct ScopeEntry {
  std::string group;
  RoleSet roles = 0;  // 0: the entry names no role
  friend bool operator==(const ScopeEntry&, const ScopeEntry&) = default;
};

struct Scope {
  std::vector<ScopeEntry> entries;
  // find returns the entry for `group`, or nullptr.
  const ScopeEntry* find(std::string_view group) const;
  friend bool operator==(const Scope&, const Scope&) = default;
};

enum class ScopeError : uint8_t {
  kMalformed,        // not CBOR of the scope format
  kEmpty,            // no entry
  kUnknownRole,      // a role name or number the profile does not define
  kBadRoleCombination,  // e.g. monitor with requester, or a role listed twice
  kDuplicateGroup,   // two entries for the same group
};
const char* to_string(ScopeError e);

// parse_scope parses the contents of the scope byte string.
Expected<Scope, ScopeError> parse_scope(ByteView scope);
// ScopeEntryView: a scope entry whose group name views the parsed bytes.
struct ScopeEntryView {
  std::string_view group;
  RoleSet roles = 0;  // 0: the entry names no role
};
// parse_scope_views parses like parse_scope (the same checks and errors) into
// `out` (cleared first; its capacity is reused: no allocation once it is large
// enough). The views point into `scope`, valid as long as those bytes are.
Expected<void, ScopeError> parse_scope_views(ByteView scope, std::vector<ScopeEntryView>& out);
// encode_scope returns the contents of the scope byte string. Roles are written as
// text (or as their integer abbreviations when `abbreviate`); a single role is
// written bare, several as an array.
Bytes encode_scope(const Scope& scope, bool abbreviate = false);

// covers reports whether `granted` allows joining `group` with all of `roles`.
bool covers(const Scope& granted, std::string_view group, RoleSet roles);

}  // namespace acekdc::ace
