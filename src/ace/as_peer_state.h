// AsPeerState: the AS's pre-established OSCORE peer contexts (its clients, and the
// KDC asking /introspect) kept across restarts, kill -9 included (RFC 8613
// Appendix B.1):
//  - B.1.1: each context's Sender Sequence Number is reserved in an
//    oscore::FileSequenceStore (DIR/seq, key "as.<Recipient ID hex>", chunks of 16)
//    before use, so after a restart the AS never reuses a Partial IV of its own
//    (it uses one for an Echo challenge, and for any response it protects with
//    its own nonce);
//  - B.1.2: each context's Replay Window is written (ReplayWindow::serialize, one
//    file per peer under DIR/replay, atomic replace + fsync) by sync(), which the
//    serve loop calls after every request and before its answer leaves. At start
//    the stored window is restored: every request accepted before the restart is a
//    replay afterwards, and a client's next request (a higher Partial IV) is
//    accepted without an extra round trip. A peer with a stored window that cannot
//    be read starts with an uninitialised window (RFC 9175 Echo challenge: the gate
//    answers a protected 4.01 + Echo until a request returns it); a peer without
//    any stored window has never been talked to here (a fresh context).
//
// A request the AS handled but whose answer was never sent because the AS died
// before sync() finished may be accepted once more after the restart; its answer
// only ever went to nobody, and the client's retransmission is a new request.
// Single-threaded (the AS's loop); nothing here is secret (no keys are stored).
#pragma once

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
  // and the stored replay window as above, and remembers it for sync(). The
  // context must stay alive as long as this object is used (the gate owns it).
  // `random` draws an Echo challenge when the stored window is unreadable.
  // Errors: those of oscore::Context::create (kStorageFailure: DIR/seq unreadable).
  Expected<std::unique_ptr<oscore::Context>, oscore::Error> make_context(crypto::Provider& provider,
                                                                         oscore::ContextConfig cfg, Random& random);

  // sync writes the replay window of every context whose window changed since the
  // last write (a stamp compare per peer; only changed windows are serialized) (and did not fail before). Returns how many were written;
  // kStorageFailure if one could not be made durable (then the caller must not
  // send the answer of the request just handled).
  Expected<size_t, oscore::Error> sync();

  // num_restored: windows restored by make_context; num_unreadable: stored windows
  // that could not be read (those peers start with an Echo round).
  size_t num_restored() const { return num_restored_; }
  size_t num_unreadable() const { return num_unreadable_; }

  // key_of names a peer's files: "as.<Recipient ID hex>" ("as.-" for an empty ID).
  static std::string key_of(ByteView recipient_id);

 private:
  struct Peer {
    std::string key;
    oscore::Context* ctx = nullptr;
    Bytes written;  // the last window written (or restored)
    uint64_t stamp = 0;  // the window's stamp when last compared with `written`
  };
  std::string replay_path(const std::string& key) const;

  std::string dir_;
  oscore::FileSequenceStore seq_;
  std::vector<Peer> peers_;
  size_t num_restored_ = 0;
  size_t num_unreadable_ = 0;
};

}  // namespace acekdc::ace
