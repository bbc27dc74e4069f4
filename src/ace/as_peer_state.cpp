#include "ace/as_peer_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/hex.h"
#include "core/reader.h"

namespace acekdc::ace {

namespace {

constexpr uint64_t kSeqChunk = 16;
constexpr size_t kMaxWindowFile = 4096;  // a serialized window is at most 14 + 128 bytes

// The slot file: pairs of kSlotSize-byte slots, pair i at i * 2 * kSlotSize. A slot:
// magic "ASW1" | seq u64 | key_len u8 | key | window_len u16 | window | zeros |
// CRC-32 (IEEE) of the bytes from the magic to the window's end, big-endian, in the
// last 4 bytes (the zeros between are not covered: nothing reads them). An all-zero
// slot is empty.
constexpr size_t kSlotSize = 256;
constexpr size_t kPairSize = 2 * kSlotSize;
constexpr size_t kMaxKeyLen = 64;
constexpr size_t kCrcAt = kSlotSize - 4;
constexpr size_t kMaxSlotWindow = kCrcAt - (4 + 8 + 1 + kMaxKeyLen + 2);  // 173
constexpr uint8_t kMagic[4] = {'A', 'S', 'W', '1'};
constexpr uint64_t kMaxSlotFile = uint64_t{64} << 20;  // 131072 peers

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_be(uint8_t* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// encode_slot writes one slot; false if key or window do not fit.
bool encode_slot(uint8_t* out, uint64_t seq, const std::string& key, ByteView window) {
  if (key.size() > kMaxKeyLen || window.size() > kMaxSlotWindow) return false;
  std::memset(out, 0, kSlotSize);
  std::memcpy(out, kMagic, 4);
  put_be(out + 4, seq, 8);
  out[12] = static_cast<uint8_t>(key.size());
  std::memcpy(out + 13, key.data(), key.size());
  put_be(out + 13 + key.size(), window.size(), 2);
  if (!window.empty()) std::memcpy(out + 15 + key.size(), window.data(), window.size());
  put_be(out + kCrcAt, crc32(out, 15 + key.size() + window.size()), 4);
  return true;
}

enum class SlotState { kEmpty, kValid, kCorrupt };
struct Slot {
  uint64_t seq = 0;
  std::string key;
  Bytes window;
};

// decode_slot reads one slot of untrusted bytes.
SlotState decode_slot(ByteView in, Slot& out) {
  bool zero = true;
  for (uint8_t b : in) zero = zero && b == 0;
  if (zero) return SlotState::kEmpty;
  if (in.size() != kSlotSize) return SlotState::kCorrupt;
  Reader r(in.first(kCrcAt));
  ByteView magic, key, window;
  uint8_t key_len = 0;
  uint16_t window_len = 0;
  if (!r.read_bytes(4, magic) || std::memcmp(magic.data(), kMagic, 4) != 0 || !r.read_u64(out.seq) ||
      !r.read_u8(key_len) || key_len > kMaxKeyLen || !r.read_bytes(key_len, key) || !r.read_u16(window_len) ||
      window_len > kMaxSlotWindow || !r.read_bytes(window_len, window))
    return SlotState::kCorrupt;
  Reader crc_r(in.subspan(kCrcAt));
  uint32_t crc = 0;
  const size_t covered = 15 + size_t{key_len} + window_len;
  if (!crc_r.read_u32(crc) || crc != crc32(in.data(), covered)) return SlotState::kCorrupt;
  out.key.assign(reinterpret_cast<const char*>(key.data()), key.size());
  out.window = to_bytes(window);
  return SlotState::kValid;
}

bool pwrite_all(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
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

AsPeerState::~AsPeerState() {
  if (fd_ >= 0) ::close(fd_);
}

std::string AsPeerState::key_of(ByteView recipient_id) {
  return "as." + (recipient_id.empty() ? std::string("-") : to_hex(recipient_id));
}

std::string AsPeerState::legacy_path(const std::string& key) const { return dir_ + "/replay/" + key; }

void AsPeerState::open_file() {
  if (opened_) return;
  opened_ = true;
  std::error_code ec;  // a failure shows in commit() (kStorageFailure)
  std::filesystem::create_directories(dir_, ec);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
  const std::string path = dir_ + "/replay.slots";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    num_corrupt_pairs_ = 1;  // what was stored cannot be read: no peer is vouched for
    return;
  }
  struct stat st{};
  if (::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) > kMaxSlotFile) {
    num_corrupt_pairs_ = 1;
    ::close(fd_);
    fd_ = -1;
    return;
  }
  Bytes data(static_cast<size_t>(st.st_size));
  size_t len = 0;
  while (len < data.size()) {
    ssize_t r = ::pread(fd_, data.data() + len, data.size() - len, static_cast<off_t>(len));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += static_cast<size_t>(r);
  }
  data.resize(len);
  next_pair_ = (len + kPairSize - 1) / kPairSize;
  for (uint64_t pair = 0; pair < next_pair_; ++pair) {
    bool corrupt = false, valid = false;
    for (int slot = 0; slot < 2; ++slot) {
      const size_t off = static_cast<size_t>(pair) * kPairSize + static_cast<size_t>(slot) * kSlotSize;
      if (off >= len) break;
      Slot sl;
      switch (decode_slot(ByteView(data).subspan(off, std::min(kSlotSize, len - off)), sl)) {
        case SlotState::kEmpty:
          break;
        case SlotState::kCorrupt:
          corrupt = true;  // torn or damaged: the pair's other slot is its last durable copy
          break;
        case SlotState::kValid: {
          valid = true;
          auto it = stored_.find(sl.key);
          if (it == stored_.end() || it->second.seq < sl.seq)
            stored_[sl.key] = Stored{pair, sl.seq, slot, std::move(sl.window)};
          break;
        }
      }
    }
    if (corrupt && !valid) ++num_corrupt_pairs_;  // its owner is unknown
  }
  // What the last process wrote may not be durable yet: make it so before a slot
  // is overwritten (the other slot of a pair must be a durable copy), and make the
  // file's directory entry durable.
  if (::fdatasync(fd_) != 0 || !fsync_dir(dir_)) {
    ::close(fd_);
    fd_ = -1;
  }
}

Expected<std::unique_ptr<oscore::Context>, oscore::Error> AsPeerState::make_context(crypto::Provider& provider,
                                                                                    oscore::ContextConfig cfg,
                                                                                    Random& random) {
  open_file();
  const std::string key = key_of(cfg.params.recipient_id);
  cfg.store = &seq_;
  cfg.store_key = key;
  cfg.seq_chunk = kSeqChunk;
  cfg.random = &random;
  Peer peer;
  peer.key = key;
  Bytes stored;
  bool unreadable = false;
  bool have = false;
  if (auto it = stored_.find(key); it != stored_.end()) {
    stored = it->second.window;
    peer.pair = it->second.pair;
    peer.seq = it->second.seq;
    peer.slot = it->second.slot;
    have = true;
  } else {
    peer.pair = next_pair_++;
    if (num_corrupt_pairs_ > 0) {
      unreadable = true;  // it may be this peer's pair that is corrupt
    } else {
      switch (read_small(legacy_path(key), stored)) {  // written by an earlier version
        case ReadResult::kAbsent:
          break;  // never talked to: the configured (fresh) window
        case ReadResult::kOk:
          have = true;
          break;
        case ReadResult::kUnreadable:
          unreadable = true;
          break;
      }
    }
  }
  std::optional<oscore::ReplayWindow> window;
  if (have) {
    if (auto w = oscore::ReplayWindow::deserialize(stored))
      window = *w;
    else
      unreadable = true;
  }
  if (unreadable) {
    // What was accepted before is unknown: Echo round first (Appendix B.1.2).
    cfg.replay_window_initialised = false;
    ++num_unreadable_;
    stored.clear();
  }
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) return unexpected(ctx.error());
  if (window) {
    (*ctx)->restore_replay_window(*window);
    ++num_restored_;
  }
  peer.ctx = ctx->get();
  peer.written = window ? stored : (*ctx)->replay_window().serialize();
  peer.stamp = (*ctx)->replay_window().stamp();
  hot_.push_back(Hot{peer.ctx, peer.stamp});
  peers_.push_back(std::move(peer));
  return std::move(*ctx);
}

Expected<size_t, oscore::Error> AsPeerState::commit() {
  size_t n = 0;
  const uint64_t epoch = commit_epoch_ + 1;
  const uint64_t synced = synced_epoch_.load(std::memory_order_acquire);
  uint8_t slot_buf[kSlotSize];
  for (size_t i = 0; i < hot_.size(); ++i) {
    const uint64_t stamp = hot_[i].ctx->replay_window().stamp();
    if (stamp == hot_[i].stamp) continue;  // unchanged since the last write: no serialization
    Peer& p = peers_[i];
    Bytes now = p.ctx->replay_window().serialize();
    if (now == p.written) {
      p.stamp = hot_[i].stamp = stamp;
      continue;
    }
    if (fd_ < 0) return unexpected(oscore::Error::kStorageFailure);
    // The slot that does not hold the last durable copy: the other one, unless this
    // peer's last write is not durable yet (then that slot is overwritten again).
    const int slot = (p.write_epoch > synced) ? p.slot : (p.slot ^ 1);
    if (!encode_slot(slot_buf, p.seq + 1, p.key, now) ||
        !pwrite_all(fd_, slot_buf, kSlotSize, p.pair * kPairSize + static_cast<uint64_t>(slot) * kSlotSize))
      return unexpected(oscore::Error::kStorageFailure);
    p.slot = slot;
    ++p.seq;
    p.write_epoch = epoch;
    p.stamp = hot_[i].stamp = stamp;
    p.written = std::move(now);
    ++n;
  }
  if (n > 0) {
    commit_epoch_ = epoch;
    committed_epoch_.store(epoch, std::memory_order_release);
  }
  return n;
}

bool AsPeerState::sync_committed() {
  const uint64_t epoch = committed_epoch_.load(std::memory_order_acquire);
  if (epoch == synced_epoch_.load(std::memory_order_acquire)) return true;  // nothing new
  if (fd_ < 0 || ::fdatasync(fd_) != 0) return false;
  synced_epoch_.store(epoch, std::memory_order_release);
  return true;
}

Expected<size_t, oscore::Error> AsPeerState::sync() {
  auto n = commit();
  if (!n) return n;
  if (!sync_committed()) return unexpected(oscore::Error::kStorageFailure);
  return n;
}

}  // namespace acekdc::ace
