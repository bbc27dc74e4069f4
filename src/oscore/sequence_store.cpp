#include "oscore/sequence_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/hex.h"

namespace acekdc::oscore {

std::string sequence_key(ByteView id_context, bool has_id_context, ByteView sender_id) {
  std::string k = has_id_context ? to_hex(id_context) : std::string("-");
  k += '.';
  k += sender_id.empty() ? std::string("-") : to_hex(sender_id);
  return k;
}

// ---- MemorySequenceStore ----

Expected<uint64_t, Error> MemorySequenceStore::load(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = values_.find(key);
  return it == values_.end() ? uint64_t{0} : it->second;
}

Expected<void, Error> MemorySequenceStore::reserve(std::string_view key, uint64_t upto) {
  std::lock_guard lock(mu_);
  if (fail_after_ >= 0 && static_cast<int64_t>(num_writes_) >= fail_after_) {
    return unexpected(Error::kStorageFailure);
  }
  ++num_writes_;
  values_[std::string(key)] = upto;
  return {};
}

// ---- FileSequenceStore ----

namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Keys are made of hex digits, '-' and '.'; anything else is escaped so a key
// can never name a path outside the directory.
std::string file_name(std::string_view key) {
  std::string out = "seq_";
  for (char c : key) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
        (c == '.' && !out.empty())) {
      out += c;
    } else {
      static const char* kHex = "0123456789abcdef";
      out += '%';
      out += kHex[static_cast<uint8_t>(c) >> 4];
      out += kHex[static_cast<uint8_t>(c) & 15];
    }
  }
  return out;
}

}  // namespace

FileSequenceStore::FileSequenceStore(std::string dir, bool index_directory) : dir_(std::move(dir)) {
  if (!index_directory) return;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    indexed_ = errno == ENOENT;  // no directory yet: no files (reserve() creates it)
    return;
  }
  errno = 0;
  while (const dirent* e = ::readdir(d)) with_file_.emplace(e->d_name);
  indexed_ = errno == 0;
  ::closedir(d);
  if (!indexed_) with_file_.clear();
}

std::string FileSequenceStore::path_for(std::string_view key) const {
  return dir_ + "/" + file_name(key);
}

Expected<uint64_t, Error> FileSequenceStore::load(std::string_view key) {
  const std::string name = file_name(key);
  {
    std::lock_guard lock(mu_);
    if (indexed_ && with_file_.count(name) == 0) return uint64_t{0};  // no file: nothing used yet
  }
  const std::string path = dir_ + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return uint64_t{0};
    return unexpected(Error::kStorageFailure);
  }
  char buf[32];
  size_t len = 0;
  while (len < sizeof(buf)) {
    ssize_t r = ::read(fd, buf + len, sizeof(buf) - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += static_cast<size_t>(r);
  }
  ::close(fd);
  // Content: decimal digits and a newline.
  while (len > 0 && buf[len - 1] == '\n') --len;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(buf, buf + len, v);
  if (len == 0 || ec != std::errc() || end != buf + len) return unexpected(Error::kStorageFailure);
  return v;
}

Expected<void, Error> FileSequenceStore::reserve(std::string_view key, uint64_t upto) {
  ::mkdir(dir_.c_str(), 0700);  // EEXIST is fine; other failures show up in open()
  const std::string path = path_for(key);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return unexpected(Error::kStorageFailure);
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf) - 1, upto);
  *end++ = '\n';
  bool ok = ec == std::errc() && write_all(fd, buf, static_cast<size_t>(end - buf)) && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return unexpected(Error::kStorageFailure);
  }
  {
    // The file exists from the rename on (even if the directory's fsync fails):
    // load() must read it.
    std::lock_guard lock(mu_);
    if (indexed_) with_file_.insert(file_name(key));
  }
  if (!fsync_dir(dir_)) return unexpected(Error::kStorageFailure);
  return {};
}

// ---- SequenceAllocator ----

Expected<void, Error> SequenceAllocator::start(uint64_t initial) {
  if (!store_) {
    next_ = initial;
    reserved_ = cp::oscore::kMaxPartialIv + 1;
    return {};
  }
  auto persisted = store_->load(key_);
  if (!persisted) return unexpected(persisted.error());
  next_ = std::max(initial, *persisted);
  reserved_ = next_;  // nothing at or above the persisted value is reserved yet
  return {};
}

SequenceAllocator::~SequenceAllocator() = default;  // an in-flight job owns its Pending

Expected<uint64_t, Error> SequenceAllocator::next() {
  if (options_.writer && store_) return next_async();
  if (next_ > cp::oscore::kMaxPartialIv) return unexpected(Error::kSequenceExhausted);
  if (next_ >= reserved_) {
    const uint64_t limit = cp::oscore::kMaxPartialIv + 1;
    const uint64_t upto = (limit - next_ <= chunk_) ? limit : next_ + chunk_;
    auto r = store_->reserve(key_, upto);
    if (!r) return unexpected(r.error());
    reserved_ = upto;
  }
  return next_++;
}

void SequenceAllocator::size_chunk() {
  uint64_t want = wait_chunk_;
  if (options_.clock != nullptr && options_.chunk_interval > Duration::zero()) {
    const TimePoint now = options_.clock->now();
    if (submitted_before_ && now > last_submit_at_) {
      // Numbers per chunk_interval at the rate since the previous submission.
      const double used = static_cast<double>(next_ - last_submit_next_);
      const double ratio = std::chrono::duration<double>(options_.chunk_interval).count() /
                           std::chrono::duration<double>(now - last_submit_at_).count();
      const double by_rate = used * ratio;
      if (by_rate > static_cast<double>(want)) {
        want = by_rate >= static_cast<double>(max_chunk()) ? max_chunk() : static_cast<uint64_t>(by_rate);
      }
    }
    submitted_before_ = true;
    last_submit_at_ = now;
    last_submit_next_ = next_;
  }
  chunk_ = std::clamp(want, base_chunk_, std::max(base_chunk_, max_chunk()));
}

void SequenceAllocator::submit_next() {
  const uint64_t limit = cp::oscore::kMaxPartialIv + 1;
  const uint64_t base = std::max(reserved_, next_);
  if (base >= limit) return;  // everything up to 2^40 is reserved already
  size_chunk();
  auto p = std::make_shared<Pending>();
  p->upto = (limit - base <= chunk_) ? limit : base + chunk_;
  pending_ = p;
  options_.writer->submit([p, store = store_, key = key_] {
    const bool ok = static_cast<bool>(store->reserve(key, p->upto));
    {
      std::lock_guard lock(p->mu);
      p->state.store(ok ? 1 : 2, std::memory_order_release);
    }
    p->cv.notify_all();
  });
}

bool SequenceAllocator::take_completion() {
  auto p = std::move(pending_);
  if (p->state.load(std::memory_order_acquire) != 1) return false;
  reserved_ = std::max(reserved_, p->upto);
  return true;
}

Expected<uint64_t, Error> SequenceAllocator::next_async() {
  if (next_ > cp::oscore::kMaxPartialIv) return unexpected(Error::kSequenceExhausted);
  if (pending_ && pending_->state.load(std::memory_order_acquire) != 0) {
    if (!take_completion()) return unexpected(Error::kStorageFailure);
  }
  if (next_ >= reserved_) {
    // The durable limit is reached: wait for the write (submitting it first if
    // the low-water mark was never crossed, e.g. right after start()). A wait
    // for a write already in flight means the chunk is too small for the rate.
    if (pending_ && reserved_ > 0) {
      wait_chunk_ = std::max(wait_chunk_, std::min(2 * std::max(wait_chunk_, chunk_), max_chunk()));
      chunk_ = std::max(chunk_, wait_chunk_);
    }
    if (!pending_) submit_next();
    if (!pending_) return unexpected(Error::kSequenceExhausted);
    ++num_waits_;
    {
      Pending& p = *pending_;
      std::unique_lock lock(p.mu);
      p.cv.wait_for(lock, options_.max_wait, [&p] { return p.state.load(std::memory_order_acquire) != 0; });
    }
    if (pending_->state.load(std::memory_order_acquire) == 0) return unexpected(Error::kStorageFailure);
    if (!take_completion() || next_ >= reserved_) return unexpected(Error::kStorageFailure);
  }
  const uint64_t low_water = options_.low_water ? options_.low_water : std::max<uint64_t>(chunk_ / 2, 1);
  if (!pending_ && reserved_ - next_ <= low_water) submit_next();
  return next_++;
}

// ---- SequenceWriters ----

ThreadSequenceWriter::ThreadSequenceWriter() : thread_([this] { run(); }) {}

ThreadSequenceWriter::~ThreadSequenceWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ThreadSequenceWriter::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ThreadSequenceWriter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and every queued job has run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

bool ManualSequenceWriter::run_one() {
  if (jobs_.empty()) return false;
  auto job = std::move(jobs_.front());
  jobs_.pop_front();
  job();
  return true;
}

size_t ManualSequenceWriter::run_all() {
  size_t n = 0;
  while (run_one()) ++n;
  return n;
}

}  // namespace acekdc::oscore
