// SqliteTokenStore: the KDC's /authz-info state (ClientRecord: tokens, rsnonce and the
// OSCORE context parameters derived at the token POST, master secret included) kept
// in an SQLite file, so that a restarted KDC still knows its clients' contexts.
//
//   auto s = SqliteTokenStore::open(state_dir + "/kdc-tokens.sqlite");
//   AuthzInfo authz(provider, random, **s, config);
//
// The file is created with mode 0600 (it holds master secrets). Every put / erase is
// one transaction with synchronous=FULL before it returns (kIo when it fails: the
// in-memory view is then unchanged). Reads are served from an in-memory copy loaded
// at open. A record that does not decode at open makes open fail (kIo): the file is
// never silently half-read. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include "ace/token_store.h"

namespace acekdc::ace {

class SqliteTokenStore final : public TokenStore {
 public:
  ~SqliteTokenStore() override;
  // open opens (or creates) the database at `path`; kIo if it cannot be opened or a
  // stored record does not decode.
  static Expected<std::unique_ptr<SqliteTokenStore>, StoreError> open(const std::string& path,
                                                                      size_t capacity = 4096);

  Expected<void, StoreError> put(const ClientRecord& record) override;
  std::optional<ClientRecord> get(const ContextKey& key) const override;
  Expected<void, StoreError> erase(const ContextKey& key) override;
  std::vector<ContextKey> keys() const override;
  std::optional<ContextKey> find_material(ByteView material_id) const override;
  size_t size() const override { return mem_.size(); }

 private:
  SqliteTokenStore() = default;
  struct Db;
  std::unique_ptr<Db> db_;
  MemoryTokenStore mem_;
  size_t capacity_ = 4096;
};

// encode_record / decode_record: the CBOR form of a ClientRecord in the file
// (exposed for tests and fuzzing). decode_record: nullopt when malformed.
Bytes encode_record(const ClientRecord& r);
std::optional<ClientRecord> decode_record(ByteView cbor);
Bytes encode_context_key(const ContextKey& k);

}  // namespace acekdc::ace
