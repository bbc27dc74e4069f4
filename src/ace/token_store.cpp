#include "ace/token_store.h"

#include <algorithm>
#include <cstring>

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

Expected<void, StoreError> TokenStore::replace(const ContextKey& old, ClientRecord&& record) {
  const bool other = !(old == record.key) && contains(old);
  ACEKDC_TRY(put_moved(std::move(record)));
  if (other) (void)erase(old);  // the new record is in; an old one left over is purged later
  return {};
}

MemoryTokenStore::KeyBuf::KeyBuf(ByteView recipient_id, const std::optional<Bytes>& id_context) {
  const size_t ctx_len = id_context ? id_context->size() : 0;
  len_ = 1 + 8 + ctx_len + recipient_id.size();
  char* out = buf_;
  if (len_ > sizeof buf_) {
    heap_.resize(len_);
    out = heap_.data();
  }
  out[0] = id_context ? '\x01' : '\x00';
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((ctx_len >> (8 * i)) & 0xff);
  if (ctx_len) std::memcpy(out + 9, id_context->data(), ctx_len);
  if (!recipient_id.empty()) std::memcpy(out + 9 + ctx_len, recipient_id.data(), recipient_id.size());
}

long MemoryTokenStore::find_slot(ByteView recipient_id, const std::optional<Bytes>& id_context) const {
  auto it = by_key_.find(KeyBuf(recipient_id, id_context).view());
  return it == by_key_.end() ? -1 : static_cast<long>(it->second);
}

uint32_t MemoryTokenStore::take_slot() {
  if (!free_.empty()) {
    const uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

void MemoryTokenStore::add_holder(ByteView material, uint32_t slot) {
  auto it = by_material_.find(as_string(material));
  if (it == by_material_.end()) {
    by_material_.emplace(std::string(as_string(material)), Holders{slot, 1});
    return;
  }
  ++it->second.count;
  if (slots_[slot].order < slots_[it->second.first].order) it->second.first = slot;
}

void MemoryTokenStore::drop_holder(ByteView material, uint32_t slot) {
  auto it = by_material_.find(as_string(material));
  if (it == by_material_.end()) return;
  if (--it->second.count == 0) {
    by_material_.erase(it);
    return;
  }
  if (it->second.first != slot) return;
  // The earliest holder goes: the next one takes over (a scan, only in this case).
  bool found = false;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (i == slot || !s.live || !equal(s.record.material_id, material)) continue;
    if (!found || s.order < slots_[it->second.first].order) it->second.first = i;
    found = true;
  }
}

void MemoryTokenStore::free_slot(uint32_t i, Index::iterator key_it) {
  Slot& s = slots_[i];
  drop_holder(s.record.material_id, i);
  by_key_.erase(key_it);
  s.record.context.reset();  // wipes the master secret
  s.record = ClientRecord{};
  s.live = false;
  free_.push_back(i);
  --size_;
}

template <typename R>
Expected<void, StoreError> MemoryTokenStore::put_impl(R&& record) {
  const KeyBuf k(record.key.recipient_id, record.key.id_context);
  if (auto it = by_key_.find(k.view()); it != by_key_.end()) {
    const uint32_t i = it->second;
    Slot& s = slots_[i];
    const bool material_changed = !equal(s.record.material_id, record.material_id);
    if (material_changed) drop_holder(s.record.material_id, i);
    s.record.context.reset();  // wipes the old master secret
    s.record = std::forward<R>(record);
    if (material_changed) add_holder(s.record.material_id, i);
    return {};
  }
  if (size_ >= capacity_) return unexpected(StoreError::kFull);
  const uint32_t i = take_slot();
  Slot& s = slots_[i];
  s.record = std::forward<R>(record);
  s.order = next_order_++;
  s.live = true;
  by_key_.emplace(std::string(k.view()), i);
  add_holder(s.record.material_id, i);
  ++size_;
  return {};
}

Expected<void, StoreError> MemoryTokenStore::put(const ClientRecord& record) { return put_impl(record); }

Expected<void, StoreError> MemoryTokenStore::put_moved(ClientRecord&& record) { return put_impl(std::move(record)); }

Expected<void, StoreError> MemoryTokenStore::replace(const ContextKey& old, ClientRecord&& record) {
  auto old_it = by_key_.find(KeyBuf(old.recipient_id, old.id_context).view());
  if (old_it == by_key_.end() || old == record.key) return put_moved(std::move(record));
  const KeyBuf k(record.key.recipient_id, record.key.id_context);
  if (by_key_.find(k.view()) != by_key_.end()) {  // the new key is taken by a third record
    ACEKDC_TRY(put_moved(std::move(record)));
    return erase(old);
  }
  // The new record takes the old one's slot and index entry, as the last record.
  const uint32_t i = old_it->second;
  Slot& s = slots_[i];
  const bool same_material = equal(s.record.material_id, record.material_id);
  if (!same_material) drop_holder(s.record.material_id, i);
  auto node = by_key_.extract(old_it);
  node.key().assign(k.view());
  by_key_.insert(std::move(node));
  s.record.context.reset();  // wipes the old master secret
  s.record = std::move(record);
  s.order = next_order_++;
  if (!same_material) {
    add_holder(s.record.material_id, i);
  } else if (auto m = by_material_.find(as_string(s.record.material_id));
             m != by_material_.end() && m->second.first == i && m->second.count > 1) {
    // This slot was the earliest holder and is now the last: hand over to the
    // earliest of the others.
    m->second.count += 1;  // drop_holder takes this slot's share back off
    drop_holder(s.record.material_id, i);
    m = by_material_.find(as_string(s.record.material_id));
    if (m != by_material_.end() && slots_[i].order < slots_[m->second.first].order) m->second.first = i;
  }
  return {};
}

std::optional<ClientRecord> MemoryTokenStore::get(const ContextKey& key) const {
  const long i = find_slot(key.recipient_id, key.id_context);
  if (i < 0) return std::nullopt;
  return slots_[static_cast<size_t>(i)].record;
}

std::vector<StoredToken> MemoryTokenStore::copy_tokens_if(const ContextKey& key,
                                                          const std::function<bool(const StoredToken&)>& keep) const {
  std::vector<StoredToken> out;
  const long i = find_slot(key.recipient_id, key.id_context);
  if (i < 0) return out;
  for (const auto& t : slots_[static_cast<size_t>(i)].record.tokens)
    if (keep(t)) out.push_back(t);
  return out;
}

Expected<void, StoreError> MemoryTokenStore::erase(const ContextKey& key) {
  auto it = by_key_.find(KeyBuf(key.recipient_id, key.id_context).view());
  if (it == by_key_.end()) return {};
  free_slot(it->second, it);
  return {};
}

std::vector<ContextKey> MemoryTokenStore::keys() const {
  std::vector<std::pair<uint64_t, uint32_t>> live;
  live.reserve(size_);
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].live) live.emplace_back(slots_[i].order, i);
  std::sort(live.begin(), live.end());
  std::vector<ContextKey> out;
  out.reserve(live.size());
  for (const auto& [order, i] : live) out.push_back(slots_[i].record.key);
  return out;
}

std::optional<ContextKey> MemoryTokenStore::find_material(ByteView material_id) const {
  auto it = by_material_.find(as_string(material_id));
  if (it == by_material_.end()) return std::nullopt;
  return slots_[it->second.first].record.key;
}

}  // namespace acekdc::ace
