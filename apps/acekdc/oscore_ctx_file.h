// OSCORE context files for the command line: `acekdc coap --oscore CTX` and
// `acekdc oscore-interop-server --config FILE`.
//
// A context file is TOML or JSON (chosen by the extension .toml / .json, else by
// the first non-blank character: '{' = JSON). Keys (hex strings may be empty):
//
//   master_secret = "0102...0f10"        hex, required, secret (never printed)
//   master_salt   = "9e7ca92223786340"   hex, default empty
//   sender_id     = ""                   hex, required
//   recipient_id  = "01"                 hex, required
//   id_context    = "37cbf3210017a2d3"   hex, default absent
//   aead_alg      = "AES-CCM-16-64-128"  IANA name or number (10, 30, 1, 3, 24, ...)
//   hkdf_alg      = "HKDF-SHA-256"       "HKDF-SHA-256" (-10, 5) or "HKDF-SHA-512" (-11, 7)
//   replay_window = 32                   1..1024
//   send_kid_context = true              default: true iff id_context is set
//   exp           = 1893456000           Common Context 'exp', Unix seconds, default none
//   state         = "a.state"            directory for the persistent state (relative to
//                                        the context file): sequence number reservations
//                                        (oscore::FileSequenceStore) and the replay window
//   seq_chunk     = 1000                 sequence numbers reserved per write
//   name          = "A"                  a label for logs
//   appendix_b2   = false                interop server: contexts of this peer are derived
//                                        by RFC 8613 Appendix B.2 (SecureServer::add_b2;
//                                        no key update); the client side is `coap --b2`
//   [limits]      q = 1048576, v = 1024, l = 256     (all three; default per AEAD)
//   [key_update]  r_len = 8, auto_threshold = 0.9 (or false), auto_threshold_v = 0.9,
//                 retention = 0 (seconds)
//
// In JSON the same keys, "limits" and "key_update" as objects. The interop
// server's configuration is a list of such contexts: TOML `[[context]]` tables or
// JSON {"context": [ {...}, ... ]}, where `state` is relative to the server's
// --state directory.
//
// Loading is strict: unknown keys, duplicate keys, wrong types, bad hex, values
// out of range and non-ASCII bytes are errors (CtxFileFailure; the CLI exits
// with 2). Error messages name the file, line and key, never a value.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "oscore/context.h"
#include "oscore/key_update.h"
#include "oscore/sequence_store.h"

namespace acekdc::app {

enum class CtxFileError : uint8_t {
  kIo = 1,      // the file cannot be read / written
  kSyntax,      // not TOML / JSON, or not ASCII
  kUnknownKey,  // a key this format does not have (or a duplicate)
  kMissingKey,  // a required key is absent
  kWrongType,   // e.g. a number where a hex string belongs
  kBadValue,    // bad hex, out of range, unknown algorithm name
};
const char* to_string(CtxFileError e);

// CtxFileFailure: what went wrong and where; `message` never contains a value
// from the file (so no secret can leak through it).
struct CtxFileFailure {
  CtxFileError code;
  std::string message;
};

enum class CtxFormat : uint8_t { kAuto, kToml, kJson };

// OscoreCtxFile: one security context as read from a file.
struct OscoreCtxFile {
  std::string name;                         // label (may be empty)
  oscore::ContextParams params;             // secret: master_secret
  std::optional<oscore::KeyLimits> limits;  // nullopt: the AEAD's defaults
  std::optional<int64_t> exp;
  uint32_t replay_window = cp::oscore::kDefaultReplayWindow;
  bool send_kid_context = false;
  uint64_t seq_chunk = oscore::SequenceAllocator::kDefaultChunk;
  oscore::KeyUpdateConfig key_update;
  bool appendix_b2 = false;  // the server runs Appendix B.2 with this peer
  std::string state_dir;  // resolved path; empty: nothing persisted

  // context_config returns the oscore::ContextConfig for this file with `store`
  // (may be nullptr) and `clock` (needed when exp is set) filled in.
  oscore::ContextConfig context_config(oscore::SequenceStore* store, const Clock* clock) const;
};

// parse_ctx parses one context from `text`. `base_dir` resolves a relative
// `state`; `source` names the text in error messages.
Expected<OscoreCtxFile, CtxFileFailure> parse_ctx(std::string_view text, CtxFormat format,
                                                  const std::string& base_dir, const std::string& source);
// load_ctx_file reads and parses the context file at `path` (state relative to
// the file's directory).
Expected<OscoreCtxFile, CtxFileFailure> load_ctx_file(const std::string& path);
// parse_ctx_list parses the interop server's list of contexts (at least one).
Expected<std::vector<OscoreCtxFile>, CtxFileFailure> parse_ctx_list(std::string_view text, CtxFormat format,
                                                                    const std::string& base_dir,
                                                                    const std::string& source);

// CtxState keeps one context's state under its state_dir: the sequence store
// (FileSequenceStore) and the replay window file "replay-window".
class CtxState {
 public:
  explicit CtxState(const OscoreCtxFile& file);
  // store is nullptr when the file has no state directory.
  oscore::SequenceStore* store() { return store_.get(); }
  bool persistent() const { return store_ != nullptr; }
  // used_before reports whether the state directory holds anything (a context
  // that ran before: without a saved window its replay window is lost).
  bool used_before() const;
  // window_saved reports whether a replay window file exists.
  bool window_saved() const;
  // discard_window removes the saved window (after loading it: a window is
  // trusted only if saved at a clean shutdown, RFC 8613 Appendix B.1.2).
  void discard_window() const;
  // restore_window loads the saved replay window into `ctx` (no-op when there
  // is none or this build cannot persist windows). kBadValue for a corrupt file.
  Expected<void, CtxFileFailure> restore_window(oscore::Context& ctx) const;
  // save_window writes ctx's replay window atomically (no-op without state, or
  // when this build cannot persist windows).
  Expected<void, CtxFileFailure> save_window(const oscore::Context& ctx) const;
  // windows_supported: whether this build can serialize replay windows.
  static bool windows_supported();

  // ---- the key update's Session state (oscore::Session::export_state) ----
  // session_saved reports whether a Session state file ("session") exists.
  bool session_saved() const;
  // load_session returns the saved Session state, nullopt when there is none.
  // It CONTAINS THE MASTER SECRET (zero it after use). kIo if unreadable.
  Expected<std::optional<Bytes>, CtxFileFailure> load_session() const;
  // save_session writes `state` (export_state) atomically: mode 0600, a
  // temporary file, fsync, rename, fsync of the directory. No-op without state.
  Expected<void, CtxFileFailure> save_session(ByteView state) const;
  // checkpoint_counts keeps count_q / count_v of the current key durable the
  // way sequence numbers are: when a count reaches the last reserved bound it
  // writes a new bound (count + limit/32, at least 1) to the file "counts"
  // with the key generation, BEFORE the caller sends. open_session raises the
  // restored counts to that bound, so a kill -9 never lowers them (a key's
  // limits hold across crashes; at most limit/32 uses are counted twice).
  // count_v is only checkpointed when the caller calls this (at each send).
  Expected<void, CtxFileFailure> checkpoint_counts(const oscore::Session& session);
  // restore_counts applies a saved bound of the same key generation to
  // session.current() (open_session calls it).
  Expected<void, CtxFileFailure> restore_counts(oscore::Session& session);

 private:
  std::string dir_;
  std::unique_ptr<oscore::FileSequenceStore> store_;
  // writer_ reserves the contexts' next chunks ahead (store_->set_writer);
  // declared after store_, so it writes what is queued before store_ goes.
  std::unique_ptr<oscore::ThreadSequenceWriter> writer_;
  uint64_t bound_gen_ = 0, bound_q_ = 0, bound_v_ = 0;  // last reserved counts
};

// open_session builds the Session of `file`: restored from the saved Session
// state (Session::restore: a key update survives the reboot) when `state` has
// one, else created from the file's keys. For a server `window_trusted` false
// starts with an uninitialised replay window (Echo first, RFC 8613 B.1.2);
// otherwise a saved replay window is loaded. `provider`, `random` and `clock`
// must outlive the Session. Errors: kIo (storage: sequence store or state
// files), kBadValue (a context or saved state that does not fit the file);
// the message names the oscore::Error, never a value.
Expected<std::unique_ptr<oscore::Session>, CtxFileFailure> open_session(oscore::Role role, crypto::Provider& provider,
                                                                        const OscoreCtxFile& file, CtxState& state,
                                                                        Random& random, const Clock& clock,
                                                                        bool window_trusted);

// sent_message_summary describes a protected message about to be sent for a
// -v log, without secrets: "key=<label> piv=<Partial IV> d=<id detail length>
// state=<key update state>". The label names the Sender Key without showing
// it: "g<N>" for the key after N completed updates (CTX_NEW of an update in
// progress, 'id detail' R1|R2, is already g<N+1>), "g<N>r1" for the temporary
// CTX_1 derived from R1 ('id detail' of length r_len). piv "-": a response
// reusing the request's nonce. Across one chain no (label, piv) pair may repeat.
std::string sent_message_summary(const oscore::Session& session, ByteView outer, size_t r_len);

// hkdf_from_name maps "HKDF-SHA-256" / "HKDF SHA-256" / "direct+HKDF-SHA-256" /
// "HKDF-SHA-512" (case-insensitive) or a number to the HKDF algorithm id.
std::optional<int> hkdf_from_name(std::string_view name);

}  // namespace acekdc::app
