#include "ace/scope.h"

#include "cbor/cbor.h"
#include "core/codepoints.h"

namespace acekdc::ace {

RoleSet role_from_name(std::string_view name) {
  if (name == cp::role::kRequesterName) return kRoleRequester;
  if (name == cp::role::kResponderName) return kRoleResponder;
  if (name == cp::role::kMonitorName) return kRoleMonitor;
  return 0;
}

static RoleSet role_from_number(int64_t n) {
  if (n == cp::role::kRequester) return kRoleRequester;
  if (n == cp::role::kResponder) return kRoleResponder;
  if (n == cp::role::kMonitor) return kRoleMonitor;
  return 0;
}

std::string role_names(RoleSet roles) {
  std::string s;
  auto add = [&](RoleSet bit, const char* name) {
    if (!(roles & bit)) return;
    if (!s.empty()) s += ',';
    s += name;
  };
  add(kRoleRequester, cp::role::kRequesterName);
  add(kRoleResponder, cp::role::kResponderName);
  add(kRoleMonitor, cp::role::kMonitorName);
  return s;
}

bool roles_valid(RoleSet roles) {
  if (roles == 0 || (roles & ~kAllRoles)) return false;
  if ((roles & kRoleMonitor) && roles != kRoleMonitor) return false;
  return true;
}

const ScopeEntry* Scope::find(std::string_view group) const {
  for (const auto& e : entries)
    if (e.group == group) return &e;
  return nullptr;
}

const char* to_string(ScopeError e) {
  switch (e) {
    case ScopeError::kMalformed: return "malformed scope";
    case ScopeError::kEmpty: return "empty scope";
    case ScopeError::kUnknownRole: return "unknown role in scope";
    case ScopeError::kBadRoleCombination: return "invalid combination of roles in scope";
    case ScopeError::kDuplicateGroup: return "group listed twice in scope";
  }
  return "scope error";
}

// read_role reads one role (tstr or int) into a bit.
static Expected<RoleSet, ScopeError> read_role(cbor::Decoder& d) {
  cbor::Major m;
  if (!d.peek_major(m)) return unexpected(ScopeError::kMalformed);
  if (m == cbor::Major::kText) {
    std::string_view name;
    if (!d.read_tstr(name)) return unexpected(ScopeError::kMalformed);
    RoleSet r = role_from_name(name);
    if (!r) return unexpected(ScopeError::kUnknownRole);
    return r;
  }
  if (m == cbor::Major::kUnsigned || m == cbor::Major::kNegative) {
    int64_t n;
    if (!d.read_int(n)) return unexpected(ScopeError::kMalformed);
    RoleSet r = role_from_number(n);
    if (!r) return unexpected(ScopeError::kUnknownRole);
    return r;
  }
  return unexpected(ScopeError::kMalformed);
}

namespace {

// walk_scope parses the contents of the scope byte string and calls
// on_entry(group, roles) for each entry, in order; has_group(name) reports whether
// an earlier entry named the group. The one parser behind parse_scope and
// parse_scope_views.
template <class OnEntry, class HasGroup>
Expected<void, ScopeError> walk_scope(ByteView scope, OnEntry&& on_entry, HasGroup&& has_group) {
  cbor::Limits limits;
  limits.max_depth = 4;
  limits.allow_indefinite = false;
  cbor::Decoder d(scope, limits);
  uint64_t n;
  if (!d.read_array(n)) return unexpected(ScopeError::kMalformed);
  if (n == 0) return unexpected(ScopeError::kEmpty);
  if (n > d.rest().size()) return unexpected(ScopeError::kMalformed);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!d.read_array(len) || len < 1 || len > 2) return unexpected(ScopeError::kMalformed);
    RoleSet roles = 0;
    std::string_view name;
    if (!d.read_tstr(name)) return unexpected(ScopeError::kMalformed);
    if (len == 2) {
      cbor::Major m;
      if (!d.peek_major(m)) return unexpected(ScopeError::kMalformed);
      if (m == cbor::Major::kArray) {
        uint64_t nr;
        if (!d.read_array(nr) || nr < 2 || nr > 3) {
          // 2* roles; with three roles defined and monitor exclusive, more than 2 can only be
          // duplicates or invalid combinations: reject them as such, not as malformed.
          if (!d.ok()) return unexpected(ScopeError::kMalformed);
          return unexpected(nr < 2 ? ScopeError::kMalformed : ScopeError::kBadRoleCombination);
        }
        for (uint64_t j = 0; j < nr; ++j) {
          auto r = read_role(d);
          if (!r) return unexpected(r.error());
          if (roles & *r) return unexpected(ScopeError::kBadRoleCombination);
          roles |= *r;
        }
      } else {
        auto r = read_role(d);
        if (!r) return unexpected(r.error());
        roles = *r;
      }
      if (!roles_valid(roles)) return unexpected(ScopeError::kBadRoleCombination);
    }
    if (has_group(name)) return unexpected(ScopeError::kDuplicateGroup);
    on_entry(name, roles, n);
  }
  if (!d.finish()) return unexpected(ScopeError::kMalformed);
  return {};
}

}  // namespace

Expected<Scope, ScopeError> parse_scope(ByteView scope) {
  Scope out;
  auto r = walk_scope(
      scope,
      [&](std::string_view name, RoleSet roles, uint64_t n) {
        if (out.entries.empty()) out.entries.reserve(n);
        out.entries.push_back(ScopeEntry{std::string(name), roles});
      },
      [&](std::string_view name) { return out.find(name) != nullptr; });
  if (!r) return unexpected(r.error());
  return out;
}

Expected<void, ScopeError> parse_scope_views(ByteView scope, std::vector<ScopeEntryView>& out) {
  out.clear();
  return walk_scope(
      scope, [&](std::string_view name, RoleSet roles, uint64_t) { out.push_back(ScopeEntryView{name, roles}); },
      [&](std::string_view name) {
        for (const auto& e : out)
          if (e.group == name) return true;
        return false;
      });
}

Bytes encode_scope(const Scope& scope, bool abbreviate) {
  Bytes out;
  Writer w(out);
  cbor::Encoder enc(w);
  enc.put_array(scope.entries.size());
  static constexpr struct {
    RoleSet bit;
    int number;
    const char* name;
  } kRoles[] = {{kRoleRequester, cp::role::kRequester, cp::role::kRequesterName},
                {kRoleResponder, cp::role::kResponder, cp::role::kResponderName},
                {kRoleMonitor, cp::role::kMonitor, cp::role::kMonitorName}};
  for (const auto& e : scope.entries) {
    enc.put_array(e.roles ? 2 : 1).put_tstr(e.group);
    if (!e.roles) continue;
    int count = __builtin_popcount(e.roles);
    if (count > 1) enc.put_array(count);
    for (const auto& r : kRoles) {
      if (!(e.roles & r.bit)) continue;
      if (abbreviate) {
        enc.put_int(r.number);
      } else {
        enc.put_tstr(r.name);
      }
    }
  }
  return out;
}

bool covers(const Scope& granted, std::string_view group, RoleSet roles) {
  const ScopeEntry* e = granted.find(group);
  if (!e) return false;
  return (roles & ~e->roles) == 0;
}

}  // namespace acekdc::ace
