#include "ace/as_peer_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/hex.h"

namespace acekdc::ace {

namespace {

constexpr uint64_t kSeqChunk = 16;
constexpr size_t kMaxWindowFile = 4096;  // a serialized window is at most 14 + 128 bytes

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
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

// read_small reads a whole file of at most kMaxWindowFile bytes; nullopt if absent,
// an empty optional-of-error (false) if unreadable.
enum class ReadResult { kAbsent, kOk, kUnreadable };
ReadResult read_small(const std::string& path, Bytes& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? ReadResult::kAbsent : ReadResult::kUnreadable;
  out.assign(kMaxWindowFile + 1, 0);
  size_t len = 0;
  while (len < out.size()) {
    ssize_t r = ::read(fd, out.data() + len, out.size() - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ::close(fd);
      return ReadResult::kUnreadable;
    }
    if (r == 0) break;
    len += static_cast<size_t>(r);
  }
  ::close(fd);
  if (len > kMaxWindowFile) return ReadResult::kUnreadable;
  out.resize(len);
  return ReadResult::kOk;
}

}  // namespace

AsPeerState::AsPeerState(std::string dir) : dir_(std::move(dir)), seq_(dir_ + "/seq") {}

std::string AsPeerState::key_of(ByteView recipient_id) {
  return "as." + (recipient_id.empty() ? std::string("-") : to_hex(recipient_id));
}

std::string AsPeerState::replay_path(const std::string& key) const { return dir_ + "/replay/" + key; }

Expected<std::unique_ptr<oscore::Context>, oscore::Error> AsPeerState::make_context(crypto::Provider& provider,
                                                                                    oscore::ContextConfig cfg,
                                                                                    Random& random) {
  std::error_code ec;  // a failure shows in sync() (kStorageFailure)
  std::filesystem::create_directories(dir_ + "/replay", ec);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
  const std::string key = key_of(cfg.params.recipient_id);
  cfg.store = &seq_;
  cfg.store_key = key;
  cfg.seq_chunk = kSeqChunk;
  cfg.random = &random;
  Bytes stored;
  std::optional<oscore::ReplayWindow> window;
  switch (read_small(replay_path(key), stored)) {
    case ReadResult::kAbsent:
      break;  // never talked to: the configured (fresh) window
    case ReadResult::kOk:
      if (auto w = oscore::ReplayWindow::deserialize(stored)) {
        window = *w;
        break;
      }
      [[fallthrough]];
    case ReadResult::kUnreadable:
      // What was accepted before is unknown: Echo round first (Appendix B.1.2).
      cfg.replay_window_initialised = false;
      ++num_unreadable_;
      stored.clear();
      break;
  }
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) return unexpected(ctx.error());
  if (window) {
    (*ctx)->restore_replay_window(*window);
    ++num_restored_;
  }
  peers_.push_back(Peer{key, ctx->get(), window ? stored : (*ctx)->replay_window().serialize(),
                        (*ctx)->replay_window().stamp()});
  return std::move(*ctx);
}

Expected<size_t, oscore::Error> AsPeerState::sync() {
  size_t n = 0;
  for (auto& p : peers_) {
    const uint64_t stamp = p.ctx->replay_window().stamp();
    if (stamp == p.stamp) continue;  // unchanged since the last write: no serialization
    Bytes now = p.ctx->replay_window().serialize();
    p.stamp = stamp;
    if (now == p.written) continue;
    const std::string path = replay_path(p.key);
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return unexpected(oscore::Error::kStorageFailure);
    bool ok = write_all(fd, now.data(), now.size()) && ::fsync(fd) == 0;
    ok = (::close(fd) == 0) && ok;
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0 || !fsync_dir(dir_ + "/replay")) {
      ::unlink(tmp.c_str());
      return unexpected(oscore::Error::kStorageFailure);
    }
    p.written = std::move(now);
    ++n;
  }
  return n;
}

}  // namespace acekdc::ace
