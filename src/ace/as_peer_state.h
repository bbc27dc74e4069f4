// AsPeerState: the AS's pre-established OSCORE peer contexts (its clients, and the
// KDC asking /introspect) kept across restarts, kill -9 included (RFC 8613
// Appendix B.1):
//  - B.1.1: each context's Sender Sequence Number is reserved in an
//    oscore::FileSequenceStore (DIR/seq, key "as.<Recipient ID hex>", chunks of 16)
//    before use, so after a restart the AS never reuses a Partial IV of its own
//    (it uses one for an Echo challenge, and for any response it protects with
//    its own nonce);
//  - B.1.2: each context's Replay Window (ReplayWindow::serialize) is kept in ONE
//    file, DIR/replay.slots, in a pair of fixed 256-byte slots per peer (the peer's
//    key, a write sequence number, the window, a CRC-32). commit() writes the
//    windows changed since the last commit (one pwrite per changed window, into the
//    slot of the pair that does not hold the last durable copy; no fsync);
//    sync_committed() makes every committed write durable (one fdatasync of the one
//    file). The serve loop commits once per loop round and holds the round's
//    answers until the sync returned (io::SyncPipeline, group commit: one fdatasync
//    for all the windows a round of requests changed). A torn slot (power loss in
//    the middle of a write whose sync never returned) fails its CRC and the other
//    slot of the pair, the last durable copy, is used. At start the stored window
//    is restored: every request whose answer left before the restart (kill -9
//    included) is a replay afterwards, and a client's next request (a higher
//    Partial IV) is accepted without an extra round trip. A peer without a stored
//    window whose state cannot be vouched for (a slot pair of the file is corrupt,
//    so its owner is unknown; or a stored window does not parse) starts with an
//    uninitialised window (RFC 9175 Echo challenge: the gate answers a protected
//    4.01 + Echo until a request returns it); a peer without any stored window has
//    never been talked to here (a fresh context). Windows written by earlier
//    versions (one file per peer under DIR/replay) are read when the slot file has
//    none for the peer.
//
// A request the AS handled but whose answer was never sent because the AS died
// before the sync returned may be accepted once more after the restart; its answer
// only ever went to nobody, and the client's retransmission is a new request.
// make_context and commit: the AS's loop thread; sync_committed: any one thread
// (a commit thread) at a time, also while the loop commits. Nothing here is secret
// (no keys are stored).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/expected.h"
#include "core/random.h"
#include "crypto/provider.h"
#include "oscore/context.h"
#include "oscore/sequence_store.h"

namespace acekdc::ace {

class AsPeerState {
 public:
  // AsPeerState keeps its files under `dir` (created, mode 0700, on first use).
  explicit AsPeerState(std::string dir);

  // make_context creates the context of one peer from `cfg` (the pre-established
  // parameters; the peer is named by its Recipient ID), with the sequence store
  // and the stored replay window as above, and remembers it for commit(). The
  // context must stay alive as long as this object is used (the gate owns it).
  // `random` draws an Echo challenge when the stored window is unreadable.
  // Errors: those of oscore::Context::create (kStorageFailure: DIR/seq unreadable).
  Expected<std::unique_ptr<oscore::Context>, oscore::Error> make_context(crypto::Provider& provider,
                                                                         oscore::ContextConfig cfg, Random& random);

  // commit writes the replay window of every context whose window changed since
  // the last commit (a stamp compare per peer; only changed windows are serialized)
  // into its slot of DIR/replay.slots, not yet durable. Returns how many were
  // written; kStorageFailure if one could not be written (then the caller must not
  // send the answers of the requests handled since the last commit; the windows
  // not written are tried again by the next commit).
  Expected<size_t, oscore::Error> commit();
  // sync_committed makes everything commit() wrote before this call durable
  // (fdatasync). True on success. May run on another thread than commit().
  bool sync_committed();
  // sync: commit() and sync_committed() (one request at a time; tests, tools).
  Expected<size_t, oscore::Error> sync();

  // num_restored: windows restored by make_context; num_unreadable: stored windows
  // that could not be read (those peers start with an Echo round).
  size_t num_restored() const { return num_restored_; }
  size_t num_unreadable() const { return num_unreadable_; }

  // ~AsPeerState closes the slot file (what was committed and not synced is
  // written by the kernel later, not made durable).
  ~AsPeerState();
  AsPeerState(const AsPeerState&) = delete;
  AsPeerState& operator=(const AsPeerState&) = delete;

  // key_of names a peer's files: "as.<Recipient ID hex>" ("as.-" for an empty ID).
  static std::string key_of(ByteView recipient_id);

 private:
  struct Peer {
    std::string key;
    oscore::Context* ctx = nullptr;
    Bytes written;          // the last window written (or restored)
    uint64_t stamp = 0;     // the window's stamp when last compared with `written`
    uint64_t pair = 0;      // its slot pair in the file
    uint64_t seq = 0;       // the sequence number of its last slot write
    int slot = 1;           // the slot (0 / 1) its last write went to
    uint64_t write_epoch = 0;  // the commit that wrote it last (0: none since start)
  };
  // Stored: what the slot file holds for one key at start.
  struct Stored {
    uint64_t pair = 0;
    uint64_t seq = 0;
    int slot = 0;
    Bytes window;
  };
  // open_file opens (creates) DIR/replay.slots and reads what it holds (once).
  void open_file();
  std::string legacy_path(const std::string& key) const;

  std::string dir_;
  oscore::FileSequenceStore seq_;
  std::vector<Peer> peers_;
  // Hot: what commit() compares per peer, apart from the rest (one scan per round).
  struct Hot {
    const oscore::Context* ctx;
    uint64_t stamp;
  };
  std::vector<Hot> hot_;  // index = peers_'s
  bool opened_ = false;
  int fd_ = -1;
  std::map<std::string, Stored> stored_;
  size_t num_corrupt_pairs_ = 0;  // pairs with no valid slot but not empty
  uint64_t next_pair_ = 0;
  uint64_t commit_epoch_ = 0;                // commits made (loop thread)
  std::atomic<uint64_t> committed_epoch_{0}; // the last commit, for sync_committed
  std::atomic<uint64_t> synced_epoch_{0};    // every commit <= this is durable
  size_t num_restored_ = 0;
  size_t num_unreadable_ = 0;
};

}  // namespace acekdc::ace
