#include "kdc/memory_store.h"

namespace acekdc::kdc {

GroupState* MemoryStore::find(std::string_view group) {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : &it->second;
}

Expected<void, StoreError> MemoryStore::create_group(const GroupConfig& config,
                                                     const GroupKeyMaterial& key) {
  auto g = GroupState::create(config, key);
  if (!g) return unexpected(g.error());
  std::lock_guard lock(mu_);
  if (groups_.count(config.name)) return unexpected(StoreError::kConflict);
  groups_.emplace(config.name, std::move(*g));
  return {};
}

Expected<void, StoreError> MemoryStore::update_group_config(const GroupConfig& config) {
  std::lock_guard lock(mu_);
  GroupState* g = find(config.name);
  if (!g) return unexpected(StoreError::kNotFound);
  g->config = config;
  return {};
}

Expected<GroupState, StoreError> MemoryStore::load_group(std::string_view name) {
  std::lock_guard lock(mu_);
  GroupState* g = find(name);
  if (!g) return unexpected(StoreError::kNotFound);
  return *g;
}

Expected<std::vector<std::string>, StoreError> MemoryStore::list_groups() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, g] : groups_) names.push_back(name);
  return names;
}

Expected<void, StoreError> MemoryStore::add_member(std::string_view group, const Member& m) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->add_member(m);
}

Expected<Member, StoreError> MemoryStore::remove_member(std::string_view group,
                                                        std::string_view node_name, int64_t now) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->remove_member(node_name, now);
}

Expected<void, StoreError> MemoryStore::update_member_key(std::string_view group,
                                                          std::string_view node_name,
                                                          ByteView public_key) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->update_member_key(node_name, to_bytes(public_key));
}

Expected<void, StoreError> MemoryStore::update_member_sender_id(std::string_view group,
                                                                std::string_view node_name,
                                                                ByteView sender_id, int64_t now) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->update_member_sender_id(node_name, to_bytes(sender_id), now);
}

Expected<size_t, StoreError> MemoryStore::purge_departed(std::string_view group, int64_t now) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->purge_departed(now);
}

Expected<void, StoreError> MemoryStore::put_key_material(std::string_view group,
                                                         const GroupKeyMaterial& key) {
  std::lock_guard lock(mu_);
  GroupState* g = find(group);
  if (!g) return unexpected(StoreError::kNotFound);
  return g->put_key_material(key);
}

Expected<void, StoreError> MemoryStore::put_token(const TokenRecord& t) {
  if (t.token_id.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  tokens_.insert_or_assign(t.token_id, t);
  return {};
}

Expected<TokenRecord, StoreError> MemoryStore::get_token(ByteView token_id) {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token_id);
  if (it == tokens_.end()) return unexpected(StoreError::kNotFound);
  return it->second;
}

Expected<std::vector<TokenRecord>, StoreError> MemoryStore::tokens_for_client(
    std::string_view client_id) {
  std::lock_guard lock(mu_);
  std::vector<TokenRecord> out;
  for (const auto& [id, t] : tokens_)
    if (t.client_id == client_id) out.push_back(t);
  return out;
}

Expected<void, StoreError> MemoryStore::delete_token(ByteView token_id) {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token_id);
  if (it == tokens_.end()) return unexpected(StoreError::kNotFound);
  tokens_.erase(it);
  return {};
}

Expected<size_t, StoreError> MemoryStore::purge_expired_tokens(int64_t now) {
  std::lock_guard lock(mu_);
  return std::erase_if(tokens_, [&](const auto& kv) {
    return kv.second.exp > 0 && kv.second.exp <= now;
  });
}

// same_context_keys: a replacement keeps using the same keys (and nonces).
static bool same_context_keys(const OscoreContextRecord& a, const OscoreContextRecord& b) {
  return a.sender_id == b.sender_id && a.master_salt == b.master_salt &&
         constant_time_equal(a.master_secret, b.master_secret);
}

Expected<void, StoreError> MemoryStore::put_context(const OscoreContextRecord& c) {
  if (c.sender_id.empty() && c.key.recipient_id.empty()) return unexpected(StoreError::kInvalid);
  std::lock_guard lock(mu_);
  OscoreContextRecord rec = c;
  auto it = contexts_.find(c.key);
  if (it != contexts_.end() && same_context_keys(it->second, c)) {
    rec.seq_reserved = std::max(rec.seq_reserved, it->second.seq_reserved);
  }
  contexts_.insert_or_assign(c.key, std::move(rec));
  return {};
}

Expected<OscoreContextRecord, StoreError> MemoryStore::get_context(const ContextKey& key) {
  std::lock_guard lock(mu_);
  auto it = contexts_.find(key);
  if (it == contexts_.end()) return unexpected(StoreError::kNotFound);
  return it->second;
}

Expected<void, StoreError> MemoryStore::delete_context(const ContextKey& key) {
  std::lock_guard lock(mu_);
  if (contexts_.erase(key) == 0) return unexpected(StoreError::kNotFound);
  return {};
}

Expected<void, StoreError> MemoryStore::reserve_sequence(const ContextKey& key, uint64_t upto) {
  std::lock_guard lock(mu_);
  auto it = contexts_.find(key);
  if (it == contexts_.end()) return unexpected(StoreError::kNotFound);
  if (upto < it->second.seq_reserved) return unexpected(StoreError::kStale);
  it->second.seq_reserved = upto;
  return {};
}

Expected<KdcState, StoreError> MemoryStore::load_all() {
  std::lock_guard lock(mu_);
  KdcState s;
  for (const auto& [name, g] : groups_) s.groups.push_back(g);
  for (const auto& [id, t] : tokens_) s.tokens.push_back(t);
  for (const auto& [k, c] : contexts_) s.contexts.push_back(c);
  return s;
}

// ---- FailingStore ----

void FailingStore::fail_write(uint64_t n, Mode mode, StoreError error, bool sticky) {
  writes_ = 0;
  fail_at_ = n;
  mode_ = mode;
  error_ = error;
  sticky_ = sticky;
}

template <class F>
auto FailingStore::write(F&& f) -> decltype(f()) {
  const uint64_t n = ++writes_;
  const bool fail = fail_at_ != 0 && (n == fail_at_ || (sticky_ && n > fail_at_));
  if (!fail) return f();
  if (mode_ == Mode::kAfterWrite) (void)f();
  return unexpected(error_);
}

Expected<void, StoreError> FailingStore::create_group(const GroupConfig& config,
                                                      const GroupKeyMaterial& key) {
  return write([&] { return inner_.create_group(config, key); });
}
Expected<void, StoreError> FailingStore::update_group_config(const GroupConfig& config) {
  return write([&] { return inner_.update_group_config(config); });
}
Expected<void, StoreError> FailingStore::add_member(std::string_view group, const Member& m) {
  return write([&] { return inner_.add_member(group, m); });
}
Expected<Member, StoreError> FailingStore::remove_member(std::string_view group,
                                                         std::string_view node_name, int64_t now) {
  return write([&] { return inner_.remove_member(group, node_name, now); });
}
Expected<void, StoreError> FailingStore::update_member_key(std::string_view group,
                                                           std::string_view node_name,
                                                           ByteView public_key) {
  return write([&] { return inner_.update_member_key(group, node_name, public_key); });
}
Expected<void, StoreError> FailingStore::update_member_sender_id(std::string_view group,
                                                                 std::string_view node_name,
                                                                 ByteView sender_id, int64_t now) {
  return write([&] { return inner_.update_member_sender_id(group, node_name, sender_id, now); });
}
Expected<size_t, StoreError> FailingStore::purge_departed(std::string_view group, int64_t now) {
  return write([&] { return inner_.purge_departed(group, now); });
}
Expected<void, StoreError> FailingStore::put_key_material(std::string_view group,
                                                          const GroupKeyMaterial& key) {
  return write([&] { return inner_.put_key_material(group, key); });
}
Expected<void, StoreError> FailingStore::put_token(const TokenRecord& t) {
  return write([&] { return inner_.put_token(t); });
}
Expected<void, StoreError> FailingStore::delete_token(ByteView token_id) {
  return write([&] { return inner_.delete_token(token_id); });
}
Expected<size_t, StoreError> FailingStore::purge_expired_tokens(int64_t now) {
  return write([&] { return inner_.purge_expired_tokens(now); });
}
Expected<void, StoreError> FailingStore::put_context(const OscoreContextRecord& c) {
  return write([&] { return inner_.put_context(c); });
}
Expected<void, StoreError> FailingStore::delete_context(const ContextKey& key) {
  return write([&] { return inner_.delete_context(key); });
}
Expected<void, StoreError> FailingStore::reserve_sequence(const ContextKey& key, uint64_t upto) {
  return write([&] { return inner_.reserve_sequence(key, upto); });
}

}  // namespace acekdc::kdc
