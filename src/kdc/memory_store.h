// MemoryStore: a Store kept in memory (tests, and a KDC that needs no persistence).
// FailingStore: a Store decorator that fails the Nth write, to test that callers
// see and handle storage errors.
#pragma once

#include <atomic>
#include <map>
#include <mutex>

#include "kdc/store.h"

namespace acekdc::kdc {

class MemoryStore final : public Store {
 public:
  Expected<void, StoreError> create_group(const GroupConfig& config,
                                          const GroupKeyMaterial& key) override;
  Expected<void, StoreError> update_group_config(const GroupConfig& config) override;
  Expected<GroupState, StoreError> load_group(std::string_view name) override;
  Expected<std::vector<std::string>, StoreError> list_groups() override;
  Expected<void, StoreError> add_member(std::string_view group, const Member& m) override;
  Expected<Member, StoreError> remove_member(std::string_view group, std::string_view node_name,
                                             int64_t now) override;
  Expected<void, StoreError> update_member_key(std::string_view group, std::string_view node_name,
                                               ByteView public_key) override;
  Expected<void, StoreError> update_member_sender_id(std::string_view group,
                                                     std::string_view node_name,
                                                     ByteView sender_id, int64_t now) override;
  Expected<size_t, StoreError> purge_departed(std::string_view group, int64_t now) override;
  Expected<void, StoreError> put_key_material(std::string_view group,
                                              const GroupKeyMaterial& key) override;
  Expected<void, StoreError> put_token(const TokenRecord& t) override;
  Expected<TokenRecord, StoreError> get_token(ByteView token_id) override;
  Expected<std::vector<TokenRecord>, StoreError> tokens_for_client(
      std::string_view client_id) override;
  Expected<void, StoreError> delete_token(ByteView token_id) override;
  Expected<size_t, StoreError> purge_expired_tokens(int64_t now) override;
  Expected<void, StoreError> put_context(const OscoreContextRecord& c) override;
  Expected<OscoreContextRecord, StoreError> get_context(const ContextKey& key) override;
  Expected<void, StoreError> delete_context(const ContextKey& key) override;
  Expected<void, StoreError> reserve_sequence(const ContextKey& key, uint64_t upto) override;
  Expected<KdcState, StoreError> load_all() override;

 private:
  GroupState* find(std::string_view group);

  std::mutex mu_;
  std::map<std::string, GroupState, std::less<>> groups_;
  std::map<Bytes, TokenRecord, BytesLess> tokens_;
  std::map<ContextKey, OscoreContextRecord> contexts_;
};

// FailingStore forwards to `inner` (which must outlive it) and fails one chosen
// write. Writes are counted from 1 across all mutating operations; reads always
// pass through. With kBeforeWrite the failing write is not forwarded (the store
// is unchanged: a clean error); with kAfterWrite it is forwarded and then
// reported as kIo (an ambiguous outcome, like a lost acknowledgement).
class FailingStore final : public Store {
 public:
  enum class Mode : uint8_t { kBeforeWrite, kAfterWrite };

  explicit FailingStore(Store& inner) : inner_(inner) {}
  // fail_write makes write number n (counted from the last call) fail with
  // `error`; with `sticky` every later write fails too. n == 0 disables.
  void fail_write(uint64_t n, Mode mode = Mode::kBeforeWrite, StoreError error = StoreError::kIo,
                  bool sticky = false);
  uint64_t num_writes() const { return writes_; }

  Expected<void, StoreError> create_group(const GroupConfig& config,
                                          const GroupKeyMaterial& key) override;
  Expected<void, StoreError> update_group_config(const GroupConfig& config) override;
  Expected<GroupState, StoreError> load_group(std::string_view name) override {
    return inner_.load_group(name);
  }
  Expected<std::shared_ptr<const GroupState>, StoreError> group_snapshot(
      std::string_view name) override {
    return inner_.group_snapshot(name);
  }
  Expected<std::vector<std::string>, StoreError> list_groups() override {
    return inner_.list_groups();
  }
  Expected<void, StoreError> add_member(std::string_view group, const Member& m) override;
  Expected<Member, StoreError> remove_member(std::string_view group, std::string_view node_name,
                                             int64_t now) override;
  Expected<void, StoreError> update_member_key(std::string_view group, std::string_view node_name,
                                               ByteView public_key) override;
  Expected<void, StoreError> update_member_sender_id(std::string_view group,
                                                     std::string_view node_name,
                                                     ByteView sender_id, int64_t now) override;
  Expected<size_t, StoreError> purge_departed(std::string_view group, int64_t now) override;
  Expected<void, StoreError> put_key_material(std::string_view group,
                                              const GroupKeyMaterial& key) override;
  Expected<void, StoreError> put_token(const TokenRecord& t) override;
  Expected<TokenRecord, StoreError> get_token(ByteView token_id) override {
    return inner_.get_token(token_id);
  }
  Expected<std::vector<TokenRecord>, StoreError> tokens_for_client(
      std::string_view client_id) override {
    return inner_.tokens_for_client(client_id);
  }
  Expected<void, StoreError> delete_token(ByteView token_id) override;
  Expected<size_t, StoreError> purge_expired_tokens(int64_t now) override;
  Expected<void, StoreError> put_context(const OscoreContextRecord& c) override;
  Expected<OscoreContextRecord, StoreError> get_context(const ContextKey& key) override {
    return inner_.get_context(key);
  }
  Expected<void, StoreError> delete_context(const ContextKey& key) override;
  Expected<void, StoreError> reserve_sequence(const ContextKey& key, uint64_t upto) override;
  Expected<KdcState, StoreError> load_all() override { return inner_.load_all(); }

 private:
  // write runs one forwarded write under the failure rule.
  template <class F>
  auto write(F&& f) -> decltype(f());

  Store& inner_;
  std::atomic<uint64_t> writes_{0};
  uint64_t fail_at_ = 0;
  Mode mode_ = Mode::kBeforeWrite;
  StoreError error_ = StoreError::kIo;
  bool sticky_ = false;
};

}  // namespace acekdc::kdc
