#include "groupcomm/manager.h"

#include <algorithm>
#include <map>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "groupcomm/pop.h"
#include "kdc/sender_id.h"

namespace acekdc::groupcomm {

namespace code = cp::coap::code;

namespace {

enum class Kind : uint8_t { kGroup, kPubKey, kPolicies, kCtxNum, kNode, kNodePubKey };

Response make(uint8_t c) {
  Response r;
  r.code = c;
  return r;
}

// diag: an error response with a diagnostic text payload (RFC 7252 §5.5.2, no
// Content-Format). The texts never contain payload values.
Response diag(uint8_t c, std::string_view text) {
  Response r = make(c);
  r.payload.assign(text.begin(), text.end());
  return r;
}

Response content(uint8_t c, Bytes payload) {
  Response r = make(c);
  r.content_format = cp::cf::kAceGroupcommCbor;
  r.payload = std::move(payload);
  return r;
}

Response bad_request(const ParamFailure& f) { return diag(code::kBadRequest, f.describe()); }

Response store_failure(kdc::StoreError e) {
  switch (e) {
    case kdc::StoreError::kNotFound: return diag(code::kNotFound, "not found");
    case kdc::StoreError::kBusy:
    case kdc::StoreError::kIo: return diag(code::kServiceUnavailable, "storage unavailable, retry");
    case kdc::StoreError::kFull: return diag(code::kServiceUnavailable, "group is full");
    default: return diag(code::kInternalServerError, kdc::to_string(e));
  }
}

bool method_allowed(Kind k, uint8_t m) {
  switch (k) {
    case Kind::kGroup: return m == code::kPost || m == code::kGet;
    case Kind::kPubKey: return m == code::kGet || m == code::kFetch;
    case Kind::kPolicies:
    case Kind::kCtxNum: return m == code::kGet;
    case Kind::kNode: return m == code::kGet || m == code::kPut || m == code::kDelete;
    case Kind::kNodePubKey: return m == code::kPost;
  }
  return false;
}

// payload_format_ok: a payload, if any, must be application/ace-groupcomm+cbor
// (a missing Content-Format is accepted).
bool payload_format_ok(const Request& req) {
  return req.payload.empty() || !req.content_format ||
         *req.content_format == cp::cf::kAceGroupcommCbor;
}

// parse_request_scope reads a 'scope' parameter: one scope entry (seed §4.1.2.1)
// or a scope (array of entries, profile.md REQ2) holding exactly one entry.
Expected<ace::ScopeEntry, std::string> parse_request_scope(ByteView scope) {
  cbor::Decoder d(scope);
  uint64_t n = 0;
  Expected<ace::Scope, ace::ScopeError> parsed = unexpected(ace::ScopeError::kMalformed);
  if (d.read_array(n) && n >= 1 && d.next_is(cbor::Major::kText)) {
    Bytes wrapped;
    wrapped.reserve(scope.size() + 1);
    wrapped.push_back(0x81);  // an array of one item: the entry
    wrapped.insert(wrapped.end(), scope.begin(), scope.end());
    parsed = ace::parse_scope(wrapped);
  } else {
    parsed = ace::parse_scope(scope);
  }
  if (!parsed) return unexpected(std::string("scope: ") + ace::to_string(parsed.error()));
  if (parsed->entries.size() != 1) return unexpected(std::string("scope: more than one entry"));
  return parsed->entries.front();
}

size_t sender_id_max_len(int aead_alg) {
  auto info = crypto::aead_info(aead_alg);
  return info && info->nonce_len > 6 ? info->nonce_len - 6 : 7;
}

std::vector<MemberKey> current_keys(const kdc::GroupState& g, std::string_view except = {}) {
  std::vector<MemberKey> out;
  out.reserve(g.members.size());
  for (const auto& [name, m] : g.members) {
    if (m.public_key.empty() || (!except.empty() && name == except)) continue;
    out.push_back(MemberKey{m.sender_id, m.public_key, m.roles});
  }
  return out;
}

bool is_monitor(kdc::RoleSet roles) { return roles == ace::kRoleMonitor; }

}  // namespace

GroupManager::GroupManager(kdc::Store& store, crypto::Provider& provider, Random& rng,
                           ManagerOptions options)
    : store_(store), provider_(provider), rng_(rng), options_(options) {}

std::vector<RekeyEvent> GroupManager::take_events() {
  std::vector<RekeyEvent> out;
  out.swap(events_);
  return out;
}

std::vector<Eviction> GroupManager::take_evictions() {
  std::vector<Eviction> out;
  out.swap(evictions_);
  return out;
}

Response GroupManager::handle(const Requester* who, const Request& req, int64_t now) {
  const auto& p = req.path;
  if (p.size() < 2 || p[0] != "ace-group" || p[1].empty()) return diag(code::kNotFound, "no such resource");
  Kind kind;
  if (p.size() == 2) {
    kind = Kind::kGroup;
  } else if (p.size() == 3 && p[2] == "pub-key") {
    kind = Kind::kPubKey;
  } else if (p.size() == 3 && p[2] == "policies") {
    kind = Kind::kPolicies;
  } else if (p.size() == 3 && p[2] == "ctx-num") {
    kind = Kind::kCtxNum;
  } else if (p.size() == 4 && p[2] == "nodes" && !p[3].empty()) {
    kind = Kind::kNode;
  } else if (p.size() == 5 && p[2] == "nodes" && !p[3].empty() && p[4] == "pub-key") {
    kind = Kind::kNodePubKey;
  } else {
    return diag(code::kNotFound, "no such resource");
  }
  if (!method_allowed(kind, req.method)) return make(code::kMethodNotAllowed);
  const std::string_view group = p[1];
  if (!who || !who->scope.find(group)) return diag(code::kUnauthorized, "no token for this group");

  auto loaded = store_.group_snapshot(group);
  if (!loaded) {
    if (loaded.error() == kdc::StoreError::kNotFound) return diag(code::kNotFound, "no such group");
    return store_failure(loaded.error());
  }
  // A shared immutable snapshot: no per-request copy of the group.
  std::shared_ptr<const kdc::GroupState> snap = std::move(*loaded);
  const kdc::GroupState& g = *snap;
  if (!payload_format_ok(req)) return make(code::kUnsupportedContentFormat);

  switch (kind) {
    case Kind::kGroup:
      return req.method == code::kPost ? join(*who, std::move(snap), req, now) : get_keys(*who, g);
    case Kind::kPubKey:
      return req.method == code::kGet ? pub_key_get(g) : pub_key_fetch(g, req, now);
    case Kind::kPolicies:
      return content(code::kContent, encode_policies_response(g.config.policies));
    case Kind::kCtxNum:
      // A bare CBOR integer (seed §4.1.5.1), in the interface's Content-Format (seed §4).
      return content(code::kContent, encode_num(g.key.num));
    case Kind::kNode:
    case Kind::kNodePubKey: {
      const kdc::Member* m = g.find_member(p[3]);
      // An unknown NODENAME answers like someone else's, so that node names
      // cannot be probed.
      if (!m || !owns(*who, *m)) return diag(code::kUnauthorized, "not your node");
      const kdc::Member member = *m;
      if (kind == Kind::kNodePubKey) return node_pub_key(*who, g, member, req, now);
      if (req.method == code::kGet) return node_get(g, member);
      if (req.method == code::kPut) return node_put(g, member, req, now);
      return node_delete(g, member, req, now);
    }
  }
  return make(code::kInternalServerError);
}

bool GroupManager::owns(const Requester& who, const kdc::Member& m) {
  if (!who.token_id.empty() && equal(who.token_id, m.token_id)) return true;
  if (who.client_id.empty() || m.token_id.empty()) return false;
  auto t = store_.get_token(m.token_id);
  return t && t->client_id == who.client_id;
}

const kdc::Member* GroupManager::find_own_member(const Requester& who, const kdc::GroupState& g) {
  // Indexed by token id (GroupState::by_token): O(tokens * log members), no walk.
  const kdc::Member* found = g.find_by_token(who.token_id);
  if (!who.client_id.empty()) {
    auto mine = store_.tokens_for_client(who.client_id);
    if (mine) {
      for (const auto& t : *mine) {
        const kdc::Member* m = g.find_by_token(t.token_id);
        // The same choice as a walk in node name order would make.
        if (m && (!found || m->node_name < found->node_name)) found = m;
      }
    }
  }
  return found;
}

Response GroupManager::ask_for_new_nonce() {
  Response r = content(code::kBadRequest, {});
  r.new_rsnonce = rng_.bytes(options_.rsnonce_len);
  r.payload = encode_rsnonce_response(r.new_rsnonce);
  return r;
}

Expected<Bytes, kdc::StoreError> GroupManager::add_member_new_sender_id(
    std::string_view group, std::shared_ptr<const kdc::GroupState> snap, kdc::Member m,
    int64_t now) {
  kdc::SenderIdOptions sid_opts;
  sid_opts.max_len = sender_id_max_len(snap->config.aead_alg);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (!snap) {
      auto fresh = store_.group_snapshot(group);
      if (!fresh) return unexpected(fresh.error());
      snap = std::move(*fresh);
    }
    auto id = kdc::allocate_sender_id(*snap, now, rng_, sid_opts);
    // Released before the write: the store then updates its cached state in place.
    snap.reset();
    if (!id) {
      // The snapshot may be stale in the pessimistic direction too.
      if (attempt > 0) return unexpected(id.error());
      continue;
    }
    m.sender_id = *id;
    auto r = store_.add_member(group, m);
    if (r) return std::move(*id);
    if (r.error() != kdc::StoreError::kConflict) return unexpected(r.error());
  }
  return unexpected(kdc::StoreError::kConflict);
}

Response GroupManager::join(const Requester& who, std::shared_ptr<const kdc::GroupState> snap,
                            const Request& req, int64_t now) {
  auto parsed = parse_join_request(req.payload, options_.limits);
  if (!parsed) return bad_request(parsed.error());
  const JoinRequest& jr = *parsed;
  const kdc::GroupState& g = *snap;
  const std::string group = g.config.name;

  // Roles: those the request names, else those of the token's entry.
  kdc::RoleSet roles = who.scope.find(group)->roles;
  if (jr.scope) {
    auto entry = parse_request_scope(*jr.scope);
    if (!entry) return diag(code::kBadRequest, entry.error());
    if (entry->group != group) return diag(code::kBadRequest, "scope names another group");
    if (entry->roles != 0) roles = entry->roles;
  }
  if (roles == 0) return diag(code::kBadRequest, "no role requested");
  if (!ace::roles_valid(roles)) return diag(code::kBadRequest, "invalid role combination");
  if (!ace::covers(who.scope, group, roles)) return diag(code::kUnauthorized, "roles not granted");

  if (find_own_member(who, g)) return diag(code::kBadRequest, "already a member; use nodes/NODENAME");

  kdc::Member m;
  m.roles = roles;
  m.joined_at = now;
  m.token_id = who.token_id;
  if (jr.control_path) m.control_path = std::string(*jr.control_path);
  if (is_monitor(roles)) {
    if (jr.client_cred) return diag(code::kBadRequest, "client_cred not expected for a monitor");
  } else if (g.config.pub_key_enc != 0) {
    if (!jr.client_cred) return diag(code::kBadRequest, "missing field client_cred (5)");
    if (who.rsnonce.empty()) return ask_for_new_nonce();
    auto key = verify_pop(provider_, g.config.sign_info, *jr.client_cred, who.rsnonce, *jr.cnonce,
                          *jr.client_cred_verify);
    if (!key) return diag(code::kBadRequest, to_string(key.error()));
    m.public_key = std::move(*key);
  }

  Expected<Bytes, kdc::StoreError> sid = unexpected(kdc::StoreError::kNameTaken);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    Bytes name_bytes = rng_.bytes(4);
    m.node_name = "n" + to_hex(name_bytes);
    // `snap` (and `g`) is handed over on the first attempt and is not used after.
    sid = add_member_new_sender_id(group, attempt == 0 ? std::move(snap) : nullptr, m, now);
    if (sid || sid.error() != kdc::StoreError::kNameTaken) break;
  }
  if (!sid) return store_failure(sid.error());

  // Backward security: the joiner gets the keying material after the rekey.
  auto rk = rekey_after(group, now, RekeyEvent::Reason::kJoin);
  if (!rk) {
    (void)store_.remove_member(group, m.node_name, now);
    return store_failure(rk.error());
  }
  auto after_snap = store_.group_snapshot(group);
  if (!after_snap) return store_failure(after_snap.error());
  const kdc::GroupState* after = after_snap->get();
  // The new member is evicted when its token expires: look again by then.
  if (auto t = store_.get_token(who.token_id); t && t->exp > 0)
    eviction_check_at_ = std::min(eviction_check_at_, t->exp);

  KeyDistribution kd;
  kd.config = &after->config;
  kd.key = &after->key;
  if (!is_monitor(roles)) kd.sender_id = ByteView(*sid);
  kd.include_policies = true;
  kd.include_pub_keys = jr.get_pub_keys;
  if (jr.get_pub_keys) kd.members = current_keys(*after, m.node_name);
  auto payload = encode_key_distribution(kd);
  if (!payload) return diag(code::kInternalServerError, "stored public key does not decode");
  Response r = content(code::kCreated, std::move(*payload));
  r.location_path = {"ace-group", std::string(group), "nodes", m.node_name};
  return r;
}

Response GroupManager::get_keys(const Requester& who, const kdc::GroupState& g) {
  // Only members get the group keying material: a token holder that left (or
  // never joined) must not read keys that rekeying protects.
  if (!find_own_member(who, g)) return diag(code::kUnauthorized, "not a member of this group");
  KeyDistribution kd;
  kd.config = &g.config;
  kd.key = &g.key;
  auto payload = encode_key_distribution(kd);
  if (!payload) return diag(code::kInternalServerError, "encoding failed");
  return content(code::kContent, std::move(*payload));
}

Response GroupManager::pub_key_get(const kdc::GroupState& g) {
  auto payload = encode_pub_keys_response(current_keys(g));
  if (!payload) return diag(code::kInternalServerError, "stored public key does not decode");
  return content(code::kContent, std::move(*payload));
}

Response GroupManager::pub_key_fetch(const kdc::GroupState& g, const Request& req, int64_t now) {
  auto parsed = parse_pub_key_fetch(req.payload, options_.limits);
  if (!parsed) return bad_request(parsed.error());
  std::vector<MemberKey> keys;
  std::vector<ByteView> served;
  for (ByteView id : parsed->ids) {
    if (std::any_of(served.begin(), served.end(), [&](ByteView s) { return equal(s, id); })) continue;
    if (const kdc::Member* m = g.find_by_sender_id(id)) {
      if (m->public_key.empty()) continue;
      keys.push_back(MemberKey{m->sender_id, m->public_key, m->roles});
      served.push_back(id);
      continue;
    }
    // REQ13: departed members' keys are served while retained, else ignored.
    uint32_t keep = g.config.departed_key_retention_s;
    if (keep == 0) continue;
    auto it = g.departed.find(id);
    if (it == g.departed.end() || it->second.public_key.empty()) continue;
    if (it->second.departed_at + static_cast<int64_t>(keep) <= now) continue;
    keys.push_back(MemberKey{it->second.sender_id, it->second.public_key, it->second.roles});
    served.push_back(id);
  }
  auto payload = encode_pub_keys_response(keys);
  if (!payload) return diag(code::kInternalServerError, "stored public key does not decode");
  return content(code::kContent, std::move(*payload));
}

Response GroupManager::node_get(const kdc::GroupState& g, const kdc::Member& m) {
  KeyDistribution kd;
  kd.config = &g.config;
  kd.key = &g.key;
  if (!is_monitor(m.roles)) kd.sender_id = ByteView(m.sender_id);
  auto payload = encode_key_distribution(kd);
  if (!payload) return diag(code::kInternalServerError, "encoding failed");
  return content(code::kContent, std::move(*payload));
}

Response GroupManager::node_put(const kdc::GroupState& g, const kdc::Member& m, const Request& req,
                                int64_t now) {
  if (!req.payload.empty()) return diag(code::kBadRequest, "payload not expected");
  if (is_monitor(m.roles)) return diag(code::kBadRequest, "a monitor has no Sender ID");
  if (g.config.key_renewal == kdc::KeyRenewal::kRekeyGroup) {
    // OPT8 alternative: no individual renewal; the whole group is rekeyed and the
    // node fetches the new group keying material (its Sender ID stays valid).
    auto rk = rekey(g.config.name, now, RekeyEvent::Reason::kRenewal);
    if (!rk) return store_failure(rk.error());
    return diag(code::kForbidden, "group rekeyed instead; get the new keying material");
  }
  kdc::SenderIdOptions sid_opts;
  sid_opts.max_len = sender_id_max_len(g.config.aead_alg);
  kdc::GroupState copy = g;  // renew_sender_id keeps its own mirror (a rare request)
  auto sid = kdc::renew_sender_id(store_, copy, m.node_name, now, rng_, sid_opts, options_.max_attempts);
  if (!sid) return store_failure(sid.error());
  return content(code::kContent, encode_sender_id_response(*sid));
}

Response GroupManager::node_delete(const kdc::GroupState& g, const kdc::Member& m, const Request& req,
                                   int64_t now) {
  auto parsed = parse_leave_request(req.payload, options_.limits);
  if (!parsed) return bad_request(parsed.error());
  if (parsed->scope) {
    auto entry = parse_request_scope(*parsed->scope);
    if (!entry) return diag(code::kBadRequest, entry.error());
    if (entry->group != g.config.name) return diag(code::kBadRequest, "scope names another group");
    if (entry->roles != 0 && (entry->roles & ~m.roles))
      return diag(code::kBadRequest, "scope names roles the node does not have");
    if (entry->roles != 0 && entry->roles != m.roles)
      return diag(code::kNotImplemented, "leaving only some roles is not supported");
  }
  auto removed = store_.remove_member(g.config.name, m.node_name, now);
  if (!removed) return store_failure(removed.error());
  if (g.config.departed_key_retention_s > 0)
    schedule_group_check(now + static_cast<int64_t>(g.config.departed_key_retention_s));
  // Forward security. A failed rekey does not undo the leave; it is retried at
  // the next membership change or by rekey().
  (void)rekey_after(g.config.name, now, RekeyEvent::Reason::kLeave);
  return make(code::kDeleted);
}

Response GroupManager::node_pub_key(const Requester& who, const kdc::GroupState& g,
                                    const kdc::Member& m, const Request& req, int64_t now) {
  auto parsed = parse_pub_key_update(req.payload, options_.limits);
  if (!parsed) return bad_request(parsed.error());
  if (is_monitor(m.roles)) return diag(code::kBadRequest, "client_cred not expected for a monitor");
  if (who.rsnonce.empty()) return ask_for_new_nonce();
  auto key = verify_pop(provider_, g.config.sign_info, parsed->client_cred, who.rsnonce,
                        parsed->cnonce, parsed->client_cred_verify);
  if (!key) return diag(code::kBadRequest, to_string(key.error()));
  auto r = store_.update_member_key(g.config.name, m.node_name, *key);
  if (!r) return store_failure(r.error());
  return make(code::kChanged);
}

Expected<void, kdc::StoreError> GroupManager::rekey_after(std::string_view group, int64_t now,
                                                          RekeyEvent::Reason reason) {
  kdc::RekeyDecision d;
  {
    auto g = store_.group_snapshot(group);
    if (!g) return unexpected(g.error());
    d = kdc::rekey_due(**g, now, options_.expiry_margin_s);
  }
  if (!d.rekey_now) {
    // A batched policy held the change back: tick() rekeys when it allows.
    if (d.check_again_at != 0) schedule_group_check(d.check_again_at);
    return {};
  }
  if (reason == RekeyEvent::Reason::kJoin) {
    // One rekey per round for joins: the round's key is new to everyone until the
    // round commits (answers and pushes leave after it), the joiner included.
    const uint64_t round = store_.batch_round();
    auto it = round != 0 ? round_rekeys_.find(group) : round_rekeys_.end();
    if (it != round_rekeys_.end() && it->second.round == round) {
      it->second.covered_num = it->second.num;
      return {};
    }
  }
  auto r = rekey(group, now, reason);
  if (!r) return unexpected(r.error());
  return {};
}

Expected<uint64_t, kdc::StoreError> GroupManager::rekey(std::string_view group, int64_t now,
                                                        RekeyEvent::Reason reason) {
  kdc::StoreError last = kdc::StoreError::kConflict;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto loaded = store_.group_snapshot(group);
    if (!loaded) return unexpected(loaded.error());
    std::shared_ptr<const kdc::GroupState> g = std::move(*loaded);
    kdc::GroupKeyMaterial k;
    k.num = g->key.num + 1;
    k.master_secret = rng_.bytes(options_.master_secret_len);
    k.master_salt = rng_.bytes(options_.master_salt_len);
    // A Group ID never used in this group (the store checks it too).
    for (int tries = 0; tries < 64; ++tries) {
      k.group_id = rng_.bytes(options_.group_id_len);
      if (g->used_group_ids.count(k.group_id) == 0) break;
    }
    k.exp = now + static_cast<int64_t>(g->config.key_lifetime_s);
    k.established_at = now;
    const bool on_expiry = g->config.rekey.on_expiry;
    const uint64_t departures = g->leaves_since_rekey;
    g.reset();  // released before the write: the store updates its cache in place
    auto r = store_.put_key_material(group, k);
    secure_zero(k.master_secret);
    if (r) {
      if (const uint64_t round = store_.batch_round(); round != 0) {
        auto it = round_rekeys_.find(group);
        if (it == round_rekeys_.end()) it = round_rekeys_.emplace(std::string(group), RoundRekey{}).first;
        it->second = RoundRekey{round, k.num, 0};
      } else if (auto it = round_rekeys_.find(group); it != round_rekeys_.end()) {
        it->second = RoundRekey{};
      }
      events_.push_back(RekeyEvent{std::string(group), k.num, reason, departures});
      if (on_expiry) schedule_group_check(k.exp - options_.expiry_margin_s);
      return k.num;
    }
    last = r.error();
    if (last != kdc::StoreError::kConflict && last != kdc::StoreError::kStale) break;
  }
  return unexpected(last);
}

// ---- timed duties ----

namespace {

// token_lifetime_for: when the token `t` stops authorizing membership in `group`:
// kNever without exp, its exp, or 0 if it is already dead or does not cover the group.
int64_t token_lifetime_for(const kdc::TokenRecord& t, std::string_view group, int64_t now) {
  if (t.exp != 0 && t.exp <= now) return 0;
  auto scope = ace::parse_scope(t.scope);
  if (!scope || !scope->find(group)) return 0;
  return t.exp == 0 ? GroupManager::kNever : t.exp;
}

}  // namespace

size_t GroupManager::evict_expired(int64_t now) {
  auto names = store_.list_groups();
  if (!names) {
    eviction_check_at_ = now + 1;  // retry soon
    return 0;
  }
  int64_t next = kNever;
  size_t evicted = 0;
  for (const auto& name : *names) {
    auto g = store_.load_group(name);
    if (!g) {
      next = std::min(next, now + 1);
      continue;
    }
    // Until when each client (by client_id) keeps a live token covering this group.
    std::map<std::string, int64_t, std::less<>> client_until;
    std::vector<const kdc::Member*> gone;
    for (const auto& [node, m] : g->members) {
      if (m.token_id.empty()) continue;  // operator-added member: no token to expire
      auto t = store_.get_token(m.token_id);
      if (!t) {
        if (t.error() == kdc::StoreError::kNotFound) {
          gone.push_back(&m);
        } else {
          next = std::min(next, now + 1);
        }
        continue;
      }
      int64_t until = token_lifetime_for(*t, name, now);
      if (until == 0 && !t->client_id.empty()) {
        auto it = client_until.find(t->client_id);
        if (it == client_until.end()) {
          int64_t best = 0;
          auto all = store_.tokens_for_client(t->client_id);
          if (!all) {
            next = std::min(next, now + 1);
            continue;
          }
          for (const auto& other : *all) best = std::max(best, token_lifetime_for(other, name, now));
          it = client_until.emplace(t->client_id, best).first;
        }
        until = it->second;
      }
      if (until == 0) {
        gone.push_back(&m);
      } else {
        next = std::min(next, until);
      }
    }
    bool any = false;
    for (const kdc::Member* m : gone) {
      auto removed = store_.remove_member(name, m->node_name, now);
      if (!removed) {
        next = std::min(next, now + 1);
        continue;
      }
      evictions_.push_back(Eviction{name, removed->node_name, removed->sender_id, removed->control_path});
      if (g->config.departed_key_retention_s > 0)
        schedule_group_check(now + static_cast<int64_t>(g->config.departed_key_retention_s));
      ++evicted;
      any = true;
    }
    // Forward security per the group's policy (a failed rekey is retried by the group check).
    if (any && !rekey_after(name, now, RekeyEvent::Reason::kEviction)) schedule_group_check(now + 1);
  }
  eviction_check_at_ = next;
  return evicted;
}

bool GroupManager::joins_covered(const kdc::GroupState& g, int64_t now) const {
  const kdc::RekeyPolicy& p = g.config.rekey;
  if (!p.on_join || p.min_interval_s != 0 || p.batch_changes != 0) return false;
  if (p.on_leave && g.leaves_since_rekey > 0) return false;
  if (p.on_expiry && g.key.exp > 0 && now >= g.key.exp - options_.expiry_margin_s) return false;
  auto it = round_rekeys_.find(g.config.name);
  return it != round_rekeys_.end() && it->second.covered_num != 0 && it->second.covered_num == g.key.num;
}

void GroupManager::check_group(std::string_view name, int64_t now, TickReport& report) {
  auto g = store_.load_group(name);
  if (!g) {
    schedule_group_check(now + 1);
    return;
  }
  const kdc::RekeyDecision d = kdc::rekey_due(*g, now, options_.expiry_margin_s);
  if (d.rekey_now && joins_covered(*g, now)) {
    // The pending joins got their round's new key: only the expiry is left to watch.
    if (g->config.rekey.on_expiry && g->key.exp > 0) schedule_group_check(g->key.exp - options_.expiry_margin_s);
  } else if (d.rekey_now) {
    const kdc::RekeyPolicy& p = g->config.rekey;
    const bool expiring = p.on_expiry && g->key.exp > 0 && now >= g->key.exp - options_.expiry_margin_s;
    auto r = rekey(name, now, expiring ? RekeyEvent::Reason::kExpiry : RekeyEvent::Reason::kBatched);
    if (!r) {
      schedule_group_check(now + 1);
      return;
    }
    ++report.num_rekeys;
    g = store_.load_group(name);
    if (!g) {
      schedule_group_check(now + 1);
      return;
    }
    const kdc::RekeyDecision again = kdc::rekey_due(*g, now, options_.expiry_margin_s);
    if (again.check_again_at != 0) schedule_group_check(again.check_again_at);
  } else if (d.check_again_at != 0) {
    schedule_group_check(d.check_again_at);
  }
  // REQ13: departed keys are served until departed_at + retention, then dropped.
  if (!g->departed.empty() || !g->retired.empty()) {
    auto purged = store_.purge_departed(name, now);
    if (purged) report.num_purged += *purged;
    auto after = store_.load_group(name);
    if (after) {
      const int64_t keep = after->config.departed_key_retention_s;
      for (const auto& [sid, dk] : after->departed) schedule_group_check(dk.departed_at + keep);
      const int64_t delay = after->config.sender_id_reuse_delay_s;
      for (const auto& [sid, r] : after->retired)
        if (r.retired_num < after->key.num) schedule_group_check(r.retired_at + delay);
    }
  }
}

TickReport GroupManager::tick(int64_t now) {
  TickReport report;
  const size_t events_before = events_.size();
  if (now >= eviction_check_at_) report.num_evicted = evict_expired(now);
  if (now >= group_check_at_) {
    group_check_at_ = kNever;
    auto names = store_.list_groups();
    if (!names) {
      schedule_group_check(now + 1);
    } else {
      for (const auto& name : *names) check_group(name, now, report);
    }
  }
  // Rekeys made by evictions count too.
  report.num_rekeys = events_.size() - events_before;
  report.next_deadline = next_deadline();
  return report;
}

}  // namespace acekdc::groupcomm
