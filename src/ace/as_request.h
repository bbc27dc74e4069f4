// as_request.h: the AS's fast readers of a token request (RFC 9200 §5.8.1) and of
// its scope (seed §3.1, Figure 4), for the shape clients send: definite lengths,
// heads with at most a 2-byte argument, ASCII text. They accept a subset of what
// TokenRequestView::decode / parse_scope_views accept and give the same result
// there; for anything else (req_cnf, unknown or repeated keys, other encodings,
// any error) they answer "not mine" and the AS runs the general reader, which
// also gives the error. as_test checks the agreement on a corpus of mutated
// requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ace/params.h"
#include "ace/scope.h"
#include "core/bytes.h"
#include "core/codepoints.h"

namespace acekdc::ace::as_fast {

// Cursor: bounds-checked reads of CBOR heads over [p, end); every read checks
// what is left before taking bytes.
struct Cursor {
  const uint8_t* p;
  const uint8_t* end;

  // head reads one head with an argument of at most 2 bytes (false otherwise).
  bool head(uint8_t& major, uint32_t& arg) {
    if (p == end) return false;
    const uint8_t b = *p++;
    major = static_cast<uint8_t>(b >> 5);
    const uint8_t ai = b & 0x1f;
    if (ai < 24) {
      arg = ai;
      return true;
    }
    if (ai == 24) {
      if (p == end) return false;
      arg = *p++;
      return true;
    }
    if (ai == 25) {
      if (end - p < 2) return false;
      arg = static_cast<uint32_t>(p[0]) << 8 | p[1];
      p += 2;
      return true;
    }
    return false;
  }
  // string reads a byte string (major 2) or ASCII text (major 3) of major `want`.
  bool string(uint8_t want, ByteView& out) {
    uint8_t major;
    uint32_t len;
    if (!head(major, len) || major != want || len > static_cast<size_t>(end - p)) return false;
    if (want == 3)
      for (uint32_t i = 0; i < len; ++i)
        if (p[i] >= 0x80) return false;
    out = ByteView(p, len);
    p += len;
    return true;
  }
  bool peek_major(uint8_t& major) const {
    if (p == end) return false;
    major = static_cast<uint8_t>(*p >> 5);
    return true;
  }
};

// TokenRequestFields: what the AS reads of a token request (TokenRequestView's fields,
// req_cnf by pointer: small, nothing to zero or move per request).
struct TokenRequestFields {
  std::optional<uint64_t> grant_type;
  std::optional<std::string_view> client_id;
  std::optional<ScopeParamView> scope;
  std::optional<std::string_view> audience;
  const Cnf* req_cnf = nullptr;  // the fast reader never sets it
  bool ace_profile_requested = false;
};

// read_token_request reads the request into `t` (default-constructed) and returns
// true, or false when it is not of the fast shape (t is then unspecified;
// TokenRequestView::decode decides).
inline bool read_token_request(ByteView in, TokenRequestFields& t) {
  if (in.empty() || in.size() > 4096) return false;
  Cursor c{in.data(), in.data() + in.size()};
  uint8_t major;
  uint32_t n;
  if (!c.head(major, n) || major != 5 || n > 6) return false;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t key;
    if (!c.head(major, key) || major != 0) return false;
    ByteView v;
    switch (key) {
      case cp::ace::kAudience:
        if (t.audience || !c.string(3, v)) return false;
        t.audience = as_string(v);
        break;
      case cp::ace::kScope: {
        uint8_t m;
        if (t.scope || !c.peek_major(m) || (m != 2 && m != 3) || !c.string(m, v)) return false;
        t.scope = ScopeParamView{m == 3, v};
        break;
      }
      case cp::ace::kClientId:
        if (t.client_id || !c.string(3, v)) return false;
        t.client_id = as_string(v);
        break;
      case cp::ace::kGrantType: {
        uint32_t g;
        if (t.grant_type || !c.head(major, g) || major != 0) return false;
        t.grant_type = g;
        break;
      }
      case cp::ace::kAceProfile:
        if (t.ace_profile_requested || c.p == c.end || *c.p != 0xf6) return false;
        ++c.p;
        t.ace_profile_requested = true;
        break;
      default:  // req_cnf (a nested map) and anything else: the general reader
        return false;
    }
  }
  return c.p == c.end;
}

// role_bit: the RoleSet bit of a role number (cp::role), 0 for none.
inline RoleSet role_bit(uint32_t n) {
  if (n == cp::role::kRequester) return kRoleRequester;
  if (n == cp::role::kResponder) return kRoleResponder;
  if (n == cp::role::kMonitor) return kRoleMonitor;
  return 0;
}

// read_role reads one role, a number or an ASCII name (role_from_name), into its
// bit; 0 when it is neither a known one nor of the fast shape.
inline RoleSet read_role(Cursor& c) {
  uint8_t m;
  if (!c.peek_major(m)) return 0;
  if (m == 3) {
    ByteView name;
    return c.string(3, name) ? role_from_name(as_string(name)) : 0;
  }
  uint32_t v;
  return m == 0 && c.head(m, v) ? role_bit(v) : 0;
}

// read_scope parses the scope into `out` (cleared first) when it is of the fast
// shape: entries [name] or [name, role] or [name, [role, role(, role)]] with
// ASCII names, roles as numbers or ASCII names, valid role combinations, no
// group twice. False: not of that shape (out is then unspecified;
// parse_scope_views decides).
inline bool read_scope(ByteView scope, std::vector<ScopeEntryView>& out) {
  out.clear();
  Cursor c{scope.data(), scope.data() + scope.size()};
  uint8_t major;
  uint32_t n;
  if (!c.head(major, n) || major != 4 || n == 0 || n > scope.size()) return false;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len;
    if (!c.head(major, len) || major != 4 || len < 1 || len > 2) return false;
    ByteView name;
    if (!c.string(3, name)) return false;
    RoleSet roles = 0;
    if (len == 2) {
      uint8_t m;
      if (!c.peek_major(m)) return false;
      if (m == 4) {
        uint32_t nr;
        if (!c.head(major, nr) || nr < 2 || nr > 3) return false;
        for (uint32_t j = 0; j < nr; ++j) {
          const RoleSet r = read_role(c);
          if (r == 0 || (roles & r)) return false;
          roles |= r;
        }
      } else if ((roles = read_role(c)) == 0) {
        return false;
      }
      if (!roles_valid(roles)) return false;
    }
    const std::string_view group = as_string(name);
    for (const ScopeEntryView& e : out)
      if (e.group == group) return false;
    out.push_back(ScopeEntryView{group, roles});
  }
  return c.p == c.end;
}

}  // namespace acekdc::ace::as_fast
