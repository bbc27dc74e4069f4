// TokenStore: where the KDC keeps the access tokens it accepted, grouped per client
// security association (the OSCORE context derived from a token POST). An interface so
// that the KDC's persistent store can hold them; MemoryTokenStore keeps them in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ace/scope.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "oscore/derivation.h"

namespace acekdc::ace {

// ContextKey names a client's OSCORE security context at the KDC: the KDC's Recipient
// ID (ace_server_recipientid) and the ID Context (contextId), if any.
struct ContextKey {
  Bytes recipient_id;
  std::optional<Bytes> id_context;
  friend bool operator==(const ContextKey&, const ContextKey&) = default;
};

// StoredToken: one accepted access token.
struct StoredToken {
  Bytes cti;                 // the token's cti (empty when absent)
  std::optional<std::string> issuer;
  Scope scope;
  int64_t exp = 0;           // unix seconds
  Bytes raw;                 // the token as posted
  bool introspected = false; // accepted after a check at the AS (re-checked by purge)
};

// ClientRecord: one client security association and the tokens that authorize it.
// Several tokens may be valid at once (one per scope / AS, seed review thread).
struct ClientRecord {
  ContextKey key;
  Bytes sender_id;           // the KDC's Sender ID (ace_client_recipientid)
  Bytes material_id;         // OSCORE_Input_Material id (the PoP key identifier)
  Bytes rsnonce;             // the last N_S the KDC sent to this client (REQ17)
  std::vector<StoredToken> tokens;
  // context: the KDC side of the OSCORE context derived at the token POST (RFC 9203
  // §4.3; holds the master secret), kept so that a restarted KDC can re-create it.
  std::optional<oscore::ContextParams> context;
};

enum class StoreError : uint8_t {
  kFull = 1,       // a configured capacity is reached
  kIo,             // the backend could not persist
  kNotFound,       // no record with that key
};
const char* to_string(StoreError e);

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // put inserts or replaces the record with the same key.
  virtual Expected<void, StoreError> put(const ClientRecord& record) = 0;
  // put_moved: put() of a record the caller no longer needs (a store that keeps records
  // in memory takes it over instead of copying). `record` is left valid but unspecified.
  virtual Expected<void, StoreError> put_moved(ClientRecord&& record) { return put(record); }
  // get returns a copy of the record, nullopt when absent.
  virtual std::optional<ClientRecord> get(const ContextKey& key) const = 0;
  // find lends the record without copying it: a pointer valid until the store
  // changes or find() is called again, nullptr when absent. The default lends a
  // copy made by get() (backends that keep records in memory lend their own).
  virtual const ClientRecord* find(const ContextKey& key) const {
    lent_ = get(key);
    return lent_ ? &*lent_ : nullptr;
  }
  // copy_tokens_if returns copies of the tokens of the record `key` for which `keep`
  // is true, in their order (empty when the record is absent); only those are copied.
  virtual std::vector<StoredToken> copy_tokens_if(const ContextKey& key,
                                                  const std::function<bool(const StoredToken&)>& keep) const;
  // contains: whether a record with `key` exists (get without the copy).
  virtual bool contains(const ContextKey& key) const { return get(key).has_value(); }
  // contains_id: contains() of the key (recipient_id, id_context), without making one.
  virtual bool contains_id(ByteView recipient_id, const std::optional<Bytes>& id_context) const {
    return contains(ContextKey{to_bytes(recipient_id), id_context});
  }
  // replace stores `record` (as put_moved) and removes the record `old` (a re-posted
  // material: the new context's record replaces the old one). It is put_moved alone
  // when `old` is absent or has the record's key. An error means `record` was not
  // stored. MemoryTokenStore and SqliteTokenStore make it one change (one write; the
  // new record takes the old one's room: no kFull when `old` exists); the default is
  // put_moved, then erase(old), whose failure leaves the old record to purge().
  virtual Expected<void, StoreError> replace(const ContextKey& old, ClientRecord&& record);
  // erase removes a record (no-op when absent).
  virtual Expected<void, StoreError> erase(const ContextKey& key) = 0;
  // keys lists every record's key.
  virtual std::vector<ContextKey> keys() const = 0;
  // find_material returns the key of the record holding `material_id`, if any.
  virtual std::optional<ContextKey> find_material(ByteView material_id) const = 0;
  virtual size_t size() const = 0;

 private:
  mutable std::optional<ClientRecord> lent_;  // find()'s default
};

// MemoryTokenStore: in memory, with a capacity (number of client records). Records
// keep their insertion order (keys(); a record put again under its key keeps its
// place, replace() puts the new record last). get / put / contains / erase / replace /
// find_material are hash lookups (O(1), no allocation for the lookup itself): records
// sit in slots that do not move (an erased slot is reused), keys() sorts the live
// slots by insertion number. When several records hold one material, find_material
// names the earliest; erasing it hands the material to the next (a scan, only then).
class MemoryTokenStore final : public TokenStore {
 public:
  explicit MemoryTokenStore(size_t capacity = 4096) : capacity_(capacity) {}
  // has_room: put() of a new key would not fail with kFull.
  bool has_room(const ContextKey& key) const { return size_ < capacity_ || contains(key); }
  Expected<void, StoreError> put(const ClientRecord& record) override;
  Expected<void, StoreError> put_moved(ClientRecord&& record) override;
  std::optional<ClientRecord> get(const ContextKey& key) const override;
  const ClientRecord* find(const ContextKey& key) const override {
    const long i = find_slot(key.recipient_id, key.id_context);
    return i < 0 ? nullptr : &slots_[static_cast<size_t>(i)].record;
  }
  std::vector<StoredToken> copy_tokens_if(const ContextKey& key,
                                          const std::function<bool(const StoredToken&)>& keep) const override;
  bool contains(const ContextKey& key) const override { return find_slot(key.recipient_id, key.id_context) >= 0; }
  bool contains_id(ByteView recipient_id, const std::optional<Bytes>& id_context) const override {
    return find_slot(recipient_id, id_context) >= 0;
  }
  Expected<void, StoreError> erase(const ContextKey& key) override;
  Expected<void, StoreError> replace(const ContextKey& old, ClientRecord&& record) override;
  std::vector<ContextKey> keys() const override;
  std::optional<ContextKey> find_material(ByteView material_id) const override;
  size_t size() const override { return size_; }

 private:
  // KeyBuf: a ContextKey as one string (ID Context presence, its length and bytes,
  // then the Recipient ID), unique per key; on the stack for the usual short IDs.
  class KeyBuf {
   public:
    KeyBuf(ByteView recipient_id, const std::optional<Bytes>& id_context);
    std::string_view view() const { return heap_.empty() ? std::string_view(buf_, len_) : std::string_view(heap_); }

   private:
    char buf_[48];
    size_t len_ = 0;
    std::string heap_;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>>;
  struct Slot {
    ClientRecord record;
    uint64_t order = 0;  // insertion number
    bool live = false;
  };
  // Holders: the earliest live slot holding a material, and how many hold it.
  struct Holders {
    uint32_t first = 0;
    uint32_t count = 0;
  };
  using MaterialIndex = std::unordered_map<std::string, Holders, Hash, std::equal_to<>>;

  long find_slot(ByteView recipient_id, const std::optional<Bytes>& id_context) const;
  template <typename R>
  Expected<void, StoreError> put_impl(R&& record);
  uint32_t take_slot();
  void add_holder(ByteView material, uint32_t slot);
  void drop_holder(ByteView material, uint32_t slot);
  // free_slot erases slot `i`'s key and material entries and frees it.
  void free_slot(uint32_t i, Index::iterator key_it);

  size_t capacity_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;  // erased slots, reused first
  size_t size_ = 0;
  uint64_t next_order_ = 0;
  Index by_key_;                // KeyBuf -> slot
  MaterialIndex by_material_;   // material id -> holders
};

}  // namespace acekdc::ace
