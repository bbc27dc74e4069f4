#include "ace/token_store.h"

#include <algorithm>

namespace acekdc::ace {

std::vector<StoredToken> TokenStore::copy_tokens_if(const ContextKey& key,
                                                    const std::function<bool(const StoredToken&)>& keep) const {
  std::vector<StoredToken> out;
  auto rec = get(key);
  if (!rec) return out;
  for (auto& t : rec->tokens)
    if (keep(t)) out.push_back(std::move(t));
  return out;
}

const char* to_string(StoreError e) {
  switch (e) {
    case StoreError::kFull: return "token store full";
    case StoreError::kIo: return "token store I/O failure";
    case StoreError::kNotFound: return "no such client record";
  }
  return "token store error";
}

std::string MemoryTokenStore::index_key(const ContextKey& key) {
  std::string k;
  const size_t ctx_len = key.id_context ? key.id_context->size() : 0;
  k.reserve(1 + 8 + ctx_len + key.recipient_id.size());
  k.push_back(key.id_context ? '\x01' : '\x00');
  for (int i = 0; i < 8; ++i) k.push_back(static_cast<char>((ctx_len >> (8 * i)) & 0xff));
  if (key.id_context) k.append(reinterpret_cast<const char*>(key.id_context->data()), ctx_len);
  k.append(reinterpret_cast<const char*>(key.recipient_id.data()), key.recipient_id.size());
  return k;
}

void MemoryTokenStore::reindex() {
  by_key_.clear();
  by_material_.clear();
  for (size_t i = 0; i < records_.size(); ++i) {
    by_key_.emplace(index_key(records_[i].key), i);
    by_material_.emplace(std::string(as_string(records_[i].material_id)), i);  // keeps the first
  }
}

template <typename R>
Expected<void, StoreError> MemoryTokenStore::put_impl(R&& record) {
  std::string k = index_key(record.key);
  if (auto it = by_key_.find(k); it != by_key_.end()) {
    ClientRecord& r = records_[it->second];
    const bool material_changed = !equal(r.material_id, record.material_id);
    r = std::forward<R>(record);
    if (material_changed) reindex();
    return {};
  }
  if (records_.size() >= capacity_) return unexpected(StoreError::kFull);
  std::string material(as_string(record.material_id));
  records_.push_back(std::forward<R>(record));
  by_key_.emplace(std::move(k), records_.size() - 1);
  by_material_.emplace(std::move(material), records_.size() - 1);
  return {};
}

Expected<void, StoreError> MemoryTokenStore::put(const ClientRecord& record) { return put_impl(record); }

Expected<void, StoreError> MemoryTokenStore::put_moved(ClientRecord&& record) { return put_impl(std::move(record)); }

std::optional<ClientRecord> MemoryTokenStore::get(const ContextKey& key) const {
  auto it = by_key_.find(index_key(key));
  if (it == by_key_.end()) return std::nullopt;
  return records_[it->second];
}

std::vector<StoredToken> MemoryTokenStore::copy_tokens_if(const ContextKey& key,
                                                          const std::function<bool(const StoredToken&)>& keep) const {
  std::vector<StoredToken> out;
  auto it = by_key_.find(index_key(key));
  if (it == by_key_.end()) return out;
  for (const auto& t : records_[it->second].tokens)
    if (keep(t)) out.push_back(t);
  return out;
}

Expected<void, StoreError> MemoryTokenStore::erase(const ContextKey& key) {
  auto it = by_key_.find(index_key(key));
  if (it == by_key_.end()) return {};
  const size_t pos = it->second;
  by_key_.erase(it);
  // The material index names the first record holding a material id: when that was
  // this one, the next record with the same id (if any, necessarily later) takes over.
  auto m = by_material_.find(std::string(as_string(records_[pos].material_id)));
  std::optional<std::string> orphan;
  if (m != by_material_.end() && m->second == pos) {
    orphan = m->first;
    by_material_.erase(m);
  }
  records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(pos));
  for (auto& [k, i] : by_key_)
    if (i > pos) --i;
  for (auto& [k, i] : by_material_)
    if (i > pos) --i;
  if (orphan) {
    for (size_t i = pos; i < records_.size(); ++i) {
      if (as_string(records_[i].material_id) == *orphan) {
        by_material_.emplace(std::move(*orphan), i);
        break;
      }
    }
  }
  return {};
}

std::vector<ContextKey> MemoryTokenStore::keys() const {
  std::vector<ContextKey> out;
  out.reserve(records_.size());
  for (const auto& r : records_) out.push_back(r.key);
  return out;
}

std::optional<ContextKey> MemoryTokenStore::find_material(ByteView material_id) const {
  auto it = by_material_.find(std::string(as_string(material_id)));
  if (it == by_material_.end()) return std::nullopt;
  return records_[it->second].key;
}

}  // namespace acekdc::ace
