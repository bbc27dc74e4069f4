// Persistence of Sender Sequence Numbers (RFC 8613 Appendix B.1.1).
//
// A sender never uses a sequence number that is not covered by a durable
// reservation: before using number s it makes sure reserve(key, upto) with
// upto > s has returned. Reservations are made in chunks (SequenceAllocator),
// so a crash loses at most one chunk of numbers and never reuses one: after a
// restart the sender starts at the persisted reservation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <thread>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

class SequenceWriter;

class SequenceStore {
 public:
  virtual ~SequenceStore() = default;
  // set_writer makes every context created with this store (ContextConfig::
  // store) and without a seq_writer of its own reserve ahead through `writer`,
  // its chunks sized by rate with `clock` when the context has no clock (see
  // SequenceAllocatorOptions). For code that hands a store to a layer that
  // creates the contexts itself (ace::AceCoapGate for the KDC's contexts).
  // `writer` must not be used by those contexts after it is destroyed, and
  // must run its jobs before this store is destroyed.
  void set_writer(SequenceWriter* writer, const Clock* clock = nullptr) {
    writer_ = writer;
    writer_clock_ = clock;
  }
  SequenceWriter* writer() const { return writer_; }
  const Clock* writer_clock() const { return writer_clock_; }
  // load returns the persisted reservation for `key` (0 if none): every number
  // below it may have been used before. kStorageFailure if it cannot be read.
  virtual Expected<uint64_t, Error> load(std::string_view key) = 0;
  // reserve durably records that numbers below `upto` may be used. It must not
  // return before the value would survive a crash. kStorageFailure otherwise.
  virtual Expected<void, Error> reserve(std::string_view key, uint64_t upto) = 0;

 private:
  SequenceWriter* writer_ = nullptr;
  const Clock* writer_clock_ = nullptr;
};

// sequence_key names a sender's counter: "<id_context hex or ->.<sender_id hex>".
std::string sequence_key(ByteView id_context, bool has_id_context, ByteView sender_id);

// MemorySequenceStore keeps reservations in memory (tests). fail_after(n) makes
// the (n+1)-th and later reserve() calls fail, to test storage errors. It is
// thread-safe (a SequenceWriter thread may call reserve()).
class MemorySequenceStore final : public SequenceStore {
 public:
  Expected<uint64_t, Error> load(std::string_view key) override;
  Expected<void, Error> reserve(std::string_view key, uint64_t upto) override;
  void fail_after(int64_t n) {
    std::lock_guard lock(mu_);
    fail_after_ = n;
  }
  uint64_t num_writes() const {
    std::lock_guard lock(mu_);
    return num_writes_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t, std::less<>> values_;
  int64_t fail_after_ = -1;
  uint64_t num_writes_ = 0;
};

// FileSequenceStore keeps one small file per key in `dir` (created if missing).
// reserve() writes a temporary file, fsyncs it, renames it over the old one and
// fsyncs the directory.
// index_directory: the constructor reads the directory once and keeps the names of
// the files in it (updated by reserve()): load() of a key without a file answers 0
// without a system call (a server that makes a context per client: the KDC). Only
// for a directory that this store object alone writes while it lives (a file
// written behind its back after it was made is not seen); if the directory cannot
// be listed, load() opens the key's file each time, as without the index.
// Thread-safe (a SequenceWriter thread may call reserve()).
class FileSequenceStore final : public SequenceStore {
 public:
  explicit FileSequenceStore(std::string dir, bool index_directory = false);
  Expected<uint64_t, Error> load(std::string_view key) override;
  Expected<void, Error> reserve(std::string_view key, uint64_t upto) override;

 private:
  std::string path_for(std::string_view key) const;
  std::string dir_;
  mutable std::mutex mu_;
  bool indexed_ = false;                  // with_file_ lists every file of dir_
  std::unordered_set<std::string> with_file_;  // file names (file_name(key)) that exist
};

// SequenceWriter runs reservation writes off the send path. submit() queues a
// job; the implementation runs it later on some thread. A job never throws.
// Every job must have run (or the writer be destroyed) before the stores the
// jobs write to are destroyed.
class SequenceWriter {
 public:
  virtual ~SequenceWriter() = default;
  virtual void submit(std::function<void()> job) = 0;
};

// ThreadSequenceWriter runs the submitted jobs, in order, on one background
// thread. The destructor runs the jobs still queued, then joins the thread.
class ThreadSequenceWriter final : public SequenceWriter {
 public:
  ThreadSequenceWriter();
  ~ThreadSequenceWriter() override;
  ThreadSequenceWriter(const ThreadSequenceWriter&) = delete;
  ThreadSequenceWriter& operator=(const ThreadSequenceWriter&) = delete;
  void submit(std::function<void()> job) override;

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// ManualSequenceWriter queues jobs until run_one() / run_all() is called:
// for tests, and for an event loop that performs the writes when it is idle.
// Not thread-safe: submit and run from the same thread.
class ManualSequenceWriter final : public SequenceWriter {
 public:
  void submit(std::function<void()> job) override { jobs_.push_back(std::move(job)); }
  // run_one runs the oldest queued job; false if there was none.
  bool run_one();
  // run_all runs queued jobs until none is left; returns how many ran.
  size_t run_all();
  size_t num_pending() const { return jobs_.size(); }

 private:
  std::deque<std::function<void()>> jobs_;
};

// SequenceAllocatorOptions: how a SequenceAllocator reserves ahead.
struct SequenceAllocatorOptions {
  // writer: where reservation writes run. nullptr: next() writes synchronously
  // when the reservation is used up (one durable write on the send path per
  // chunk).
  SequenceWriter* writer = nullptr;
  // low_water: with a writer, the next chunk is submitted once at most this
  // many reserved numbers are left. 0 means chunk / 2.
  uint64_t low_water = 0;
  // max_wait: how long next() waits for an in-flight write when every durably
  // reserved number has been used; after that it fails with kStorageFailure
  // (nothing handed out; a later call waits again). Zero: never wait.
  std::chrono::milliseconds max_wait{10000};
  // max_chunk: with a writer, each time next() had to wait at the durable
  // limit the chunk reserved per write doubles, up to this (0 means 64 *
  // chunk), so that one write covers the numbers used while it runs. A crash
  // loses at most one chunk of numbers.
  uint64_t max_chunk = 0;
  // clock + chunk_interval (with a writer): each reservation is sized by the
  // sender's recent rate to last about chunk_interval (numbers used since the
  // previous submission / time since then * chunk_interval), at least `chunk`
  // and at most max_chunk. A sender at 70k messages/s then writes ~4 times a
  // second instead of 70 (chunk 1000), an idle one keeps `chunk`, and a write
  // has chunk_interval / 2 (the low-water mark) to become durable before the
  // sender would wait (fsync here: p99 ~50 ms, worst seen ~300 ms under load).
  // Trade-off: a crash loses up to one chunk and the low-water remainder,
  // about 1.5 * chunk_interval of sending at the peak rate (at most 1.5 *
  // max_chunk) out of the key's limit_q. No clock: the chunk changes only by
  // the doubling above.
  const Clock* clock = nullptr;
  Duration chunk_interval = std::chrono::milliseconds(250);
};

// SequenceAllocator hands out a sender's sequence numbers, reserving them in
// chunks of `chunk` (default 1000) through the store before handing any out.
//
// Invariant (RFC 8613 Appendix B.1.1): next() returns s only if a reservation
// above s has durably been written, so after a crash (kill -9 included) the
// restart value load() gives is above every number ever used.
//
// With options.writer set, the next chunk is written in the background when
// the low-water mark is crossed, while numbers below the durable reservation
// keep being handed out; next() blocks (up to max_wait) only when it reaches
// the durable limit with the write still in flight. A failed background write
// makes the next call to next() return kStorageFailure (nothing handed out);
// the call after that submits the write again. The allocator itself is used
// by one thread; the writer may be another.
class SequenceAllocator {
 public:
  static constexpr uint64_t kDefaultChunk = 1000;

  SequenceAllocator(SequenceStore* store, std::string key, uint64_t chunk = kDefaultChunk,
                    SequenceAllocatorOptions options = {})
      : store_(store),
        key_(std::move(key)),
        chunk_(chunk == 0 ? 1 : chunk),
        base_chunk_(chunk_),
        wait_chunk_(chunk_),
        options_(options) {}
  ~SequenceAllocator();
  SequenceAllocator(const SequenceAllocator&) = delete;
  SequenceAllocator& operator=(const SequenceAllocator&) = delete;

  // start loads the persisted reservation and begins there (call once, at
  // startup, before next()). Without a store it begins at `initial`.
  Expected<void, Error> start(uint64_t initial = 0);
  // next returns the next unused sequence number, reserving a new chunk first if
  // needed. kSequenceExhausted above 2^40-1 (never wraps), kStorageFailure if the
  // reservation could not be persisted (the number is then not handed out).
  Expected<uint64_t, Error> next();
  // peek is the number next() would return.
  uint64_t peek() const { return next_; }
  // reserved_upto is the durable reservation this allocator knows of: every
  // number handed out is below it.
  uint64_t reserved_upto() const { return reserved_; }
  // current_chunk is the number of sequence numbers the next write reserves.
  uint64_t current_chunk() const { return chunk_; }
  // write_in_flight: a background reservation has been submitted and its
  // completion not yet taken in by next().
  bool write_in_flight() const { return pending_ != nullptr; }
  // num_waits: how often next() found the durable reservation used up and had
  // to wait for a background write (the only time the send path waits; the
  // first number after start() always does).
  uint64_t num_waits() const { return num_waits_; }
  const std::string& key() const { return key_; }

 private:
  // Pending is one background write; shared with the job so the allocator may
  // be destroyed while the write runs.
  struct Pending {
    uint64_t upto = 0;
    std::atomic<int> state{0};  // 0 running, 1 done, 2 failed
    std::mutex mu;
    std::condition_variable cv;
  };
  Expected<uint64_t, Error> next_async();
  void submit_next();
  // take_completion folds a finished write into reserved_; false if it failed.
  bool take_completion();

  // size_chunk sets chunk_ for the write about to be submitted (see
  // SequenceAllocatorOptions::chunk_interval).
  void size_chunk();
  uint64_t max_chunk() const { return options_.max_chunk ? options_.max_chunk : 64 * base_chunk_; }

  SequenceStore* store_;
  std::string key_;
  uint64_t chunk_;
  uint64_t base_chunk_;
  uint64_t wait_chunk_;  // the chunk the waits at the durable limit asked for (doubling)
  SequenceAllocatorOptions options_;
  uint64_t next_ = 0;
  uint64_t reserved_ = 0;
  std::shared_ptr<Pending> pending_;
  // The previous submission (rate for size_chunk).
  bool submitted_before_ = false;
  uint64_t num_waits_ = 0;
  TimePoint last_submit_at_{};
  uint64_t last_submit_next_ = 0;
};

}  // namespace acekdc::oscore
