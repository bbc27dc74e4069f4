#include "io/sync_pipeline.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace acekdc::io {

SyncPipeline::SyncPipeline(std::function<bool()> sync, std::function<void()> on_failure)
    : sync_(std::move(sync)), on_failure_(std::move(on_failure)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { thread_main(); });
}

SyncPipeline::~SyncPipeline() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void SyncPipeline::thread_main() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || (!failed_ && !running_ && requested_ > durable_); });
    if (stop_) return;
    run_sync(lock, requested_);
    cv_.notify_all();
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
  }
}

// run_sync runs one sync with mu_ released (running_ set meanwhile) and records its
// outcome: `target` durable on success, the pipeline failed otherwise. Called and
// returns with `lock` held.
bool SyncPipeline::run_sync(std::unique_lock<std::mutex>& lock, uint64_t target) {
  running_ = true;
  lock.unlock();
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = sync_();
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  lock.lock();
  running_ = false;
  last_sync_ = took;
  if (ok) {
    durable_ = target;
    ++syncs_done_;
  } else {
    failed_ = true;
  }
  return ok;
}

void SyncPipeline::mark_unsynced() {
  round_open_ = false;
  ++written_;
  std::unique_lock lock(mu_);
  requested_ = written_;
  if (inline_below_.count() > 0 && !failed_ && !running_ && durable_ + 1 == written_ &&
      last_sync_ < inline_below_) {
    // Inline: the commit thread is idle (nothing else requested) and syncs are fast.
    // The commit thread waits meanwhile (it sees requested_ > durable_ but running_).
    const bool ok = run_sync(lock, written_);
    // Wake the loop when datagrams wait (held while this window was open, e.g. when
    // this runs from on_durable) or to report the failure, in take_released.
    if ((!ok || !held_.empty()) && wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
    cv_.notify_all();
    return;
  }
  lock.unlock();
  cv_.notify_all();
}

bool SyncPipeline::hold(std::span<const coap::Transmit> tx) {
  if (tx.empty()) return false;
  const uint64_t needs = written_ + (round_open_ ? 1 : 0);
  if (held_.empty()) {
    std::lock_guard lock(mu_);
    if (!failed_ && durable_ >= needs) return false;  // everything before them is durable
  }
  for (const auto& t : tx) held_.push_back(Held{needs, t});
  return true;
}

bool SyncPipeline::sync_in_flight() const {
  std::lock_guard lock(mu_);
  return !failed_ && requested_ > durable_;
}

std::vector<coap::Transmit> SyncPipeline::take_released() {
  if (wake_fd_ >= 0) {
    uint64_t n;
    (void)!::read(wake_fd_, &n, sizeof n);
  }
  uint64_t durable;
  bool failed;
  {
    std::lock_guard lock(mu_);
    durable = durable_;
    failed = failed_;
  }
  std::vector<coap::Transmit> out;
  while (!held_.empty() && held_.front().needs <= durable) {
    out.push_back(std::move(held_.front().tx));
    held_.pop_front();
  }
  if (failed) {
    held_.clear();  // never acknowledge what did not become durable
    if (!failure_reported_) {
      failure_reported_ = true;
      if (on_failure_) on_failure_();
    }
  } else if (on_durable_ && durable > last_durable_seen_) {
    last_durable_seen_ = durable;
    on_durable_();
  }
  return out;
}

uint64_t SyncPipeline::syncs_done() const {
  std::lock_guard lock(mu_);
  return syncs_done_;
}

void SyncPipeline::wait_idle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return failed_ || (!running_ && durable_ >= requested_); });
}

}  // namespace acekdc::io
