// PushStore: the KDC's key-push state that must survive a restart (issue 6): the
// Observe registrations AceCoapGate keeps (observation id, the context it came
// over, the observer's address, token, path and the registration's request_kid /
// request_piv, which every notification's AAD needs, RFC 8613 §8.3), the address
// each KDC context was last reached at (for control_path requests), and a
// reservation of Observe option values (RFC 7641 §4.4: values must keep growing
// across the restart, so the gate reserves ahead and continues above the mark).
//
//   MemoryPushStore   in memory (tests)
//   SqlitePushStore   STATE/kdc-push.sqlite (serve); WAL with synchronous=NORMAL:
//                     each write is committed before it returns and survives kill -9
//                     of the KDC (the OS keeps the WAL); a power loss may lose the
//                     last writes, which costs a member a re-registration, never a
//                     reused nonce (sequence numbers are not kept here).
//
// Nothing here is secret: no keys, only identifiers and addresses.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ace/token_store.h"
#include "core/bytes.h"
#include "core/expected.h"

namespace acekdc::ace {

// PushObservation: one stored Observe registration.
struct PushObservation {
  uint64_t id = 0;
  ContextKey via;
  std::string peer;  // coap::Address::to_string of the observer
  Bytes token;
  std::string path;  // Uri-Path without the leading '/'
  Bytes request_kid;
  Bytes request_piv;
  friend bool operator==(const PushObservation&, const PushObservation&) = default;
};

// PushState: everything load() returns.
struct PushState {
  std::vector<PushObservation> observations;           // ascending id
  std::vector<std::pair<ContextKey, std::string>> peers;  // context -> address
  uint32_t observe_mark = 0;                           // Observe values below are used
};

class PushStore {
 public:
  virtual ~PushStore() = default;
  // put_observation inserts or replaces the observation with the same id.
  virtual Expected<void, StoreError> put_observation(const PushObservation& o) = 0;
  // erase_observation: a no-op when absent.
  virtual Expected<void, StoreError> erase_observation(uint64_t id) = 0;
  // put_peer records the address of context `key`.
  virtual Expected<void, StoreError> put_peer(const ContextKey& key, const std::string& peer) = 0;
  // erase_context drops the peer and every observation of context `key`.
  virtual Expected<void, StoreError> erase_context(const ContextKey& key) = 0;
  // put_observe_mark records that Observe values below `mark` may have been used.
  virtual Expected<void, StoreError> put_observe_mark(uint32_t mark) = 0;
  // load returns the stored state.
  virtual Expected<PushState, StoreError> load() const = 0;
};

class MemoryPushStore final : public PushStore {
 public:
  Expected<void, StoreError> put_observation(const PushObservation& o) override;
  Expected<void, StoreError> erase_observation(uint64_t id) override;
  Expected<void, StoreError> put_peer(const ContextKey& key, const std::string& peer) override;
  Expected<void, StoreError> erase_context(const ContextKey& key) override;
  Expected<void, StoreError> put_observe_mark(uint32_t mark) override;
  Expected<PushState, StoreError> load() const override;
  size_t num_writes() const { return writes_; }

 private:
  std::map<uint64_t, PushObservation> observations_;
  std::vector<std::pair<ContextKey, std::string>> peers_;
  uint32_t mark_ = 0;
  size_t writes_ = 0;
};

class SqlitePushStore final : public PushStore {
 public:
  ~SqlitePushStore() override;
  // open opens (or creates, mode 0600) the database at `path`; kIo on failure.
  static Expected<std::unique_ptr<SqlitePushStore>, StoreError> open(const std::string& path);
  Expected<void, StoreError> put_observation(const PushObservation& o) override;
  Expected<void, StoreError> erase_observation(uint64_t id) override;
  Expected<void, StoreError> put_peer(const ContextKey& key, const std::string& peer) override;
  Expected<void, StoreError> erase_context(const ContextKey& key) override;
  Expected<void, StoreError> put_observe_mark(uint32_t mark) override;
  Expected<PushState, StoreError> load() const override;

 private:
  SqlitePushStore() = default;
  struct Db;
  std::unique_ptr<Db> db_;
};

}  // namespace acekdc::ace
