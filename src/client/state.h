// StateDir: a client's persistent state, one directory per client identity.
//
//   STATE/seq/                 Sender Sequence Number reservations with the AS
//   STATE/kdc-seq/             ... with the KDC (RFC 8613 Appendix B.1.1)
//   STATE/groups/G.session     the client's KDC context and membership (NODENAME, last
//                              rsnonce, control_path); mode 0600: holds a master secret
//   STATE/groups/G.key         the member's private key (COSE_Key), mode 0600
//   STATE/groups/G.keys        the last group keying material received (version, Group
//                              ID, Sender ID, master secret/salt, the group's algorithms:
//                              AEAD, HKDF, signature), mode 0600; kept after a leave,
//                              marked "left" (stale material, shown by `client status`)
//   STATE/lock                 flock(2) held while a process creates a context and reserves
//                              sequence numbers, so two processes never share a chunk
//
// Files are written to a temporary name and renamed (a crash leaves the old or the new).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "client/error.h"
#include "client/responses.h"
#include "core/expected.h"
#include "cose/key.h"
#include "oscore/derivation.h"
#include "oscore/sequence_store.h"

namespace acekdc::client {

// Session: the client's side of its KDC context and its membership of one group.
struct Session {
  oscore::ContextParams params;  // SECRET (master secret)
  std::string node;              // NODENAME from the join's Location-Path
  Bytes rsnonce;                 // the last N_S the KDC sent (REQ17), empty if none
  std::string control_path;      // given at join, empty if none
};

// SignAlgorithm: the group's signature algorithm as the KDC states it: sign_alg 10
// and sign_params 11 of the Group_OSCORE_Input_Material (profile.md REQ7), or the
// sign_info of the token POST answer before a join (seed §3.3).
struct SignAlgorithm {
  int64_t alg = 0;   // COSE algorithm: -8 EdDSA, -7 ES256
  Bytes params;      // sign_params as received (CBOR), empty if none
};

// sign_algorithm_of reads sign_alg / sign_params from the 'key' of a Joining / Key
// Distribution Response payload; nullopt when the payload has no integer sign_alg.
std::optional<SignAlgorithm> sign_algorithm_of(ByteView key_distribution);
// sign_curve returns the COSE curve of a member key for `sign_alg` (Ed25519 for
// EdDSA, P-256 for ES256), 0 for an algorithm the client does not support.
int sign_curve(int64_t sign_alg);

// StoredKeys: the last keying material received for a group.
struct StoredKeys {
  GroupKeys keys;
  bool left = false;  // the client left the group: the material is stale
  // sign: the group's signature algorithm; nullopt in state written before it was
  // recorded (the member key then tells: Ed25519 = EdDSA, P-256 = ES256).
  std::optional<SignAlgorithm> sign;
};

// StateLock: an exclusive flock on STATE/lock, released by the destructor.
class StateLock {
 public:
  StateLock() = default;
  explicit StateLock(int fd) : fd_(fd) {}
  StateLock(StateLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StateLock& operator=(StateLock&& o) noexcept;
  ~StateLock();

 private:
  int fd_ = -1;
};

class StateDir;

// ClaimingSequenceStore: Sender Sequence Number reservations shared by several
// processes of one state directory (e.g. `client listen` asking the KDC for keys
// while `client leave` runs). A FileSequenceStore alone is not enough: two
// processes that load the same reservation would both use the numbers above it
// (a reused AES-CCM nonce). Here load() CLAIMS a chunk under STATE/lock (it
// durably reserves [P, P + chunk) and returns P), so two contexts never start at
// the same number; reserve() within the claim writes nothing, and beyond it extends
// the claim only if no other process claimed since (otherwise kStorageFailure:
// create a new context, which claims a fresh chunk; a Group OSCORE context does so
// itself with GroupConfig::restart_sequence_on_failure, test: group_state_test.cpp). Never hold StateDir::lock()
// while calling it (flock is per open file: the call would wait for itself).
class ClaimingSequenceStore final : public oscore::SequenceStore {
 public:
  ClaimingSequenceStore(std::string state_dir, std::unique_ptr<oscore::FileSequenceStore> inner, uint64_t chunk)
      : state_dir_(std::move(state_dir)), inner_(std::move(inner)), chunk_(chunk == 0 ? 1 : chunk) {}
  Expected<uint64_t, oscore::Error> load(std::string_view key) override;
  Expected<void, oscore::Error> reserve(std::string_view key, uint64_t upto) override;

 private:
  std::string state_dir_;
  std::unique_ptr<oscore::FileSequenceStore> inner_;
  uint64_t chunk_;
  std::map<std::string, uint64_t, std::less<>> claimed_;  // key -> end of our claim
};

class StateDir {
 public:
  // dir empty: default_dir().
  explicit StateDir(std::string dir = {});
  // default_dir: $ACEKDC_STATE, else $XDG_STATE_HOME/acekdc, else ~/.local/state/acekdc.
  static std::string default_dir();
  const std::string& path() const { return dir_; }

  // seq_store opens the sequence-number store STATE/<sub> (created if missing).
  Expected<std::unique_ptr<oscore::FileSequenceStore>, Failure> seq_store(const char* sub) const;
  // lock takes STATE/lock (blocking). kState if it cannot be created.
  Expected<StateLock, Failure> lock() const;

  Expected<void, Failure> save_session(const std::string& group, const Session& s) const;
  // load_session: kNotJoined when there is none, kState when it is corrupt.
  Expected<Session, Failure> load_session(const std::string& group) const;
  Expected<void, Failure> save_private_key(const std::string& group, const cose::CoseKey& key) const;
  Expected<cose::CoseKey, Failure> load_private_key(const std::string& group) const;
  Expected<void, Failure> save_keys(const std::string& group, const StoredKeys& k) const;
  // load_keys: kNotJoined when nothing was ever received.
  Expected<StoredKeys, Failure> load_keys(const std::string& group) const;
  // forget_membership removes the session and the private key and marks the stored
  // keying material as left (stale).
  void forget_membership(const std::string& group) const;

  std::string group_file(const std::string& group, const char* ext) const;

 private:
  std::string dir_;
};

// write_private writes `text` to `path` (mode 0600, temporary file + rename).
Expected<void, Failure> write_private(const std::string& path, const std::string& text);

}  // namespace acekdc::client
