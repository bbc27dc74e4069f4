// io::SyncPipeline: a group commit pipelined with the event loop.
//
// A loop round commits its store writes so that they are visible but not yet
// durable (e.g. SQLite WAL with synchronous=NORMAL), calls mark_unsynced(), and a
// commit thread makes them durable (e.g. fsync of the WAL) while the loop goes on
// receiving and processing the next round. Every datagram the loop sends from the
// first mark_unsynced() on is held (io::Loop asks hold()) until every write made
// before it was queued is durable; then the loop sends it (take_released()), in
// the order the endpoint produced them. Nothing is acknowledged before it is
// durable, and a round's answers never overtake an earlier round's.
//
//   io::SyncPipeline sync([&] { return store.sync_committed().has_value(); },
//                         [] { /* fail-stop */ });
//   loop.set_sync_pipeline(&sync);
//   ... at the round's first write: store.begin_batch(); sync.open_round();
//   ... at the round's end: unless sync.sync_in_flight(): store.commit_batch(); sync.mark_unsynced();
//   sync.set_on_durable([&] { if (store.in_batch()) { store.commit_batch(); sync.mark_unsynced(); } });
//
// While a sync runs, the next round's window may stay open over several loop rounds
// and be committed when the sync returned (on_durable): one COMMIT per sync.
// One sync runs at a time on the commit thread; requests that arrive while it runs
// coalesce into the next one, so `sync` must make durable everything committed
// before it was called (as fsync of the file does). When `sync` returns false the
// held datagrams are never sent and on_failure runs on the loop's thread (at its
// next round); nothing later is released either (fail-stop: the caller exits or
// recovers its state). Loop-side methods are for the loop's thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "coap/endpoint.h"

namespace acekdc::io {

class SyncPipeline {
 public:
  // sync runs on the commit thread; true when durable. on_failure: see above.
  SyncPipeline(std::function<bool()> sync, std::function<void()> on_failure);
  // ~SyncPipeline waits for the sync in progress (held datagrams are dropped).
  ~SyncPipeline();
  SyncPipeline(const SyncPipeline&) = delete;
  SyncPipeline& operator=(const SyncPipeline&) = delete;

  // open_round: writes are being made that are not committed yet (a window is
  // open): datagrams held from now on also wait for the sync of that window.
  void open_round() { round_open_ = true; }
  // mark_unsynced: the open window's writes (or writes made since the last call)
  // were committed (visible, not durable); asks the commit thread to make them
  // durable (at once if it is idle).
  void mark_unsynced();
  // set_inline_below: mark_unsynced runs the sync itself, on the loop's thread,
  // when no sync is in flight and the last sync took less than `d` (fast fsyncs:
  // two thread hand-offs would cost more than they overlap); slower syncs go to the
  // commit thread. 0 (the default): always the commit thread.
  void set_inline_below(std::chrono::microseconds d) { inline_below_ = d; }
  // sync_in_flight: a sync was asked for and has not returned yet.
  bool sync_in_flight() const;
  // set_on_durable: fn runs on the loop's thread (in take_released) after each sync
  // that returned true; e.g. to commit a window kept open while the sync ran.
  void set_on_durable(std::function<void()> fn) { on_durable_ = std::move(fn); }
  // hold: called by the loop with what it is about to send; true when the datagrams
  // were kept (some write before them is not durable yet), false when they may go now.
  bool hold(std::span<const coap::Transmit> tx);
  // wake_fd: readable when a sync finished (the loop polls it); -1 if none.
  int wake_fd() const { return wake_fd_; }
  // take_released clears the wake-up and returns the held datagrams that may go now,
  // in order. Runs on_failure (once) if a sync failed.
  std::vector<coap::Transmit> take_released();
  // has_held: datagrams are waiting for a sync.
  bool has_held() const { return !held_.empty(); }
  // syncs_done: syncs that returned true (tests, benchmarks).
  uint64_t syncs_done() const;
  // wait_idle blocks until no sync is requested or running (tests, shutdown).
  void wait_idle();

 private:
  bool run_sync(std::unique_lock<std::mutex>& lock, uint64_t target);
  void thread_main();
  std::function<bool()> sync_;
  std::function<void()> on_failure_;
  std::function<void()> on_durable_;
  int wake_fd_ = -1;
  // Loop side.
  uint64_t written_ = 0;  // rounds marked unsynced so far
  bool round_open_ = false;  // open_round() without mark_unsynced() yet
  bool failure_reported_ = false;
  uint64_t last_durable_seen_ = 0;  // on_durable_ ran for syncs up to this round
  struct Held {
    uint64_t needs;  // durable_ must reach this
    coap::Transmit tx;
  };
  std::deque<Held> held_;
  // Shared with the commit thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;  // the highest round a sync was asked for
  uint64_t durable_ = 0;    // every round <= durable_ is durable
  bool running_ = false;
  std::chrono::microseconds inline_below_{0};
  std::chrono::microseconds last_sync_{0};  // how long the last sync took
  bool failed_ = false;
  bool stop_ = false;
  uint64_t syncs_done_ = 0;
  std::thread thread_;
};

}  // namespace acekdc::io
