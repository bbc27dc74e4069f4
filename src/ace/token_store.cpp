#include "ace/token_store.h"

#include <algorithm>

namespace acekdc::ace {

const char* to_string(StoreError e) {
  switch (e) {
    case StoreError::kFull: return "token store full";
    case StoreError::kIo: return "token store I/O failure";
    case StoreError::kNotFound: return "no such client record";
  }
  return "token store error";
}

Expected<void, StoreError> MemoryTokenStore::put(const ClientRecord& record) {
  for (auto& r : records_) {
    if (r.key == record.key) {
      r = record;
      return {};
    }
  }
  if (records_.size() >= capacity_) return unexpected(StoreError::kFull);
  records_.push_back(record);
  return {};
}

std::optional<ClientRecord> MemoryTokenStore::get(const ContextKey& key) const {
  for (const auto& r : records_)
    if (r.key == key) return r;
  return std::nullopt;
}

Expected<void, StoreError> MemoryTokenStore::erase(const ContextKey& key) {
  std::erase_if(records_, [&](const ClientRecord& r) { return r.key == key; });
  return {};
}

std::vector<ContextKey> MemoryTokenStore::keys() const {
  std::vector<ContextKey> out;
  out.reserve(records_.size());
  for (const auto& r : records_) out.push_back(r.key);
  return out;
}

std::optional<ContextKey> MemoryTokenStore::find_material(ByteView material_id) const {
  for (const auto& r : records_)
    if (equal(r.material_id, material_id)) return r.key;
  return std::nullopt;
}

}  // namespace acekdc::ace
