// Persistence of Sender Sequence Numbers (RFC 8613 Appendix B.1.1).
//
// A sender never uses a sequence number that is not covered by a durable
// reservation: before using number s it makes sure reserve(key, upto) with
// upto > s has returned. Reservations are made in chunks (SequenceAllocator),
// so a crash loses at most one chunk of numbers and never reuses one: after a
// restart the sender starts at the persisted reservation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

class SequenceStore {
 public:
  virtual ~SequenceStore() = default;
  // load returns the persisted reservation for `key` (0 if none): every number
  // below it may have been used before. kStorageFailure if it cannot be read.
  virtual Expected<uint64_t, Error> load(std::string_view key) = 0;
  // reserve durably records that numbers below `upto` may be used. It must not
  // return before the value would survive a crash. kStorageFailure otherwise.
  virtual Expected<void, Error> reserve(std::string_view key, uint64_t upto) = 0;
};

// sequence_key names a sender's counter: "<id_context hex or ->.<sender_id hex>".
std::string sequence_key(ByteView id_context, bool has_id_context, ByteView sender_id);

// MemorySequenceStore keeps reservations in memory (tests). fail_after(n) makes
// the (n+1)-th and later reserve() calls fail, to test storage errors.
class MemorySequenceStore final : public SequenceStore {
 public:
  Expected<uint64_t, Error> load(std::string_view key) override;
  Expected<void, Error> reserve(std::string_view key, uint64_t upto) override;
  void fail_after(int64_t n) { fail_after_ = n; }
  uint64_t num_writes() const { return num_writes_; }

 private:
  std::map<std::string, uint64_t, std::less<>> values_;
  int64_t fail_after_ = -1;
  uint64_t num_writes_ = 0;
};

// FileSequenceStore keeps one small file per key in `dir` (created if missing).
// reserve() writes a temporary file, fsyncs it, renames it over the old one and
// fsyncs the directory.
class FileSequenceStore final : public SequenceStore {
 public:
  explicit FileSequenceStore(std::string dir) : dir_(std::move(dir)) {}
  Expected<uint64_t, Error> load(std::string_view key) override;
  Expected<void, Error> reserve(std::string_view key, uint64_t upto) override;

 private:
  std::string path_for(std::string_view key) const;
  std::string dir_;
};

// SequenceAllocator hands out a sender's sequence numbers, reserving them in
// chunks of `chunk` (default 1000) through the store before handing any out.
class SequenceAllocator {
 public:
  static constexpr uint64_t kDefaultChunk = 1000;

  SequenceAllocator(SequenceStore* store, std::string key, uint64_t chunk = kDefaultChunk)
      : store_(store), key_(std::move(key)), chunk_(chunk == 0 ? 1 : chunk) {}

  // start loads the persisted reservation and begins there (call once, at
  // startup, before next()). Without a store it begins at `initial`.
  Expected<void, Error> start(uint64_t initial = 0);
  // next returns the next unused sequence number, reserving a new chunk first if
  // needed. kSequenceExhausted above 2^40-1 (never wraps), kStorageFailure if the
  // reservation could not be persisted (the number is then not handed out).
  Expected<uint64_t, Error> next();
  // peek is the number next() would return.
  uint64_t peek() const { return next_; }
  uint64_t reserved_upto() const { return reserved_; }
  const std::string& key() const { return key_; }

 private:
  SequenceStore* store_;
  std::string key_;
  uint64_t chunk_;
  uint64_t next_ = 0;
  uint64_t reserved_ = 0;
};

}  // namespace acekdc::oscore
