// The one-round-trip key update of draft-hoeglund-core-oscore-key-limits-01 §3.3
// (Figures 5 and 6) and the retention policy of §3.4, as a sans-I/O state
// machine around the contexts of one peer.
//
// A Session owns the current Security Context (CTX_OLD until an update is
// confirmed locally) and, during an update, CTX_NEW; a temporary CTX_1 only
// lives while one message is protected / verified. Randomness and time come
// from the Random and Clock given to it.
//
//   Client-initiated (Figure 5)              Server-initiated (Figure 6)
//   C: R1, CTX_1 = updateCtx(R1, OLD)        C: request under OLD
//      request under CTX_1, d = R1           S: R1, CTX_1 = updateCtx(R1, OLD)
//   S: CTX_1 from R1, verify; R2,               response under CTX_1, d = R1
//      CTX_NEW = updateCtx(R1|R2, OLD)       C: CTX_1 from R1, verify; R2,
//      response under CTX_NEW, d = R1|R2        CTX_NEW = updateCtx(R1|R2, OLD)
//   C: check R1, CTX_NEW, verify,               request under CTX_NEW, d = R1|R2
//      delete OLD (key confirmation)         S: check R1, CTX_NEW, verify, delete OLD
//   C: request under CTX_NEW                    response under CTX_NEW
//   S: verify with CTX_NEW, delete OLD       C: verify with CTX_NEW, delete OLD
//
// Sender and Recipient IDs and the ID Context never change. R1 and R2 have the
// same configured length, so 'id detail' is R1 (one length) or R1|R2 (twice it).
// With a retention period (§3.4) CTX_OLD is kept that long after CTX_NEW is
// established: outgoing messages use CTX_NEW only; incoming ones are tried with
// CTX_NEW first and CTX_OLD second. An update starts on request_key_update() or
// automatically once count_q or count_v reaches its threshold fraction of its limit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "core/clock.h"
#include "core/random.h"
#include "oscore/context.h"

namespace acekdc::oscore {

enum class Role : uint8_t { kClient, kServer };

enum class KeyUpdateState : uint8_t {
  kIdle,                   // no update in progress
  kClientAwaitingR2,       // client sent R1 under CTX_1 (Figure 5)
  kServerAwaitingConfirm,  // server derived CTX_NEW from R1|R2, waits for a request under it
  kServerSentR1,           // server sent R1 under CTX_1 (Figure 6)
  kClientHasNew,           // client derived CTX_NEW, sends R1|R2 under it, waits for a response
};
const char* to_string(KeyUpdateState s);

struct KeyUpdateConfig {
  size_t r_len = 8;  // length of R1 and R2 (1..32)
  // auto_threshold (q) / auto_threshold_v: start an update when count_q >=
  // auto_threshold * limit_q or count_v >= auto_threshold_v * limit_v of the
  // current context (nullopt: never; auto_threshold_v nullopt = auto_threshold).
  std::optional<double> auto_threshold = 0.9;
  std::optional<double> auto_threshold_v;
  // retention: how long CTX_OLD stays usable for incoming messages after CTX_NEW
  // is established (§3.4); 0 deletes it at once.
  Duration retention{0};
};

class Session {
 public:
  // Session takes the established context CTX_OLD. `random` and `clock` must
  // outlive the session.
  Session(Role role, std::unique_ptr<Context> context, Random& random, const Clock& clock,
          KeyUpdateConfig config = {});

  // ---- client (kBadState on a server session) ----
  Expected<size_t, Error> protect_request(const coap::Message& request, MutableByteView out, Exchange& out_exchange);
  // unprotect_response additionally fails with kKeyUpdateMismatch when R1|R2
  // does not start with the R1 we sent, or 'id detail' fits no update in progress.
  Expected<size_t, Error> unprotect_response(ByteView datagram, Exchange& exchange, MutableByteView out);
  // The same for a response already parsed (`option`: its single OSCORE option,
  // decoded); every context tried reads the same view, nothing is parsed again.
  Expected<size_t, Error> unprotect_response(const coap::MessageView& outer, const OptionValue& option,
                                             Exchange& exchange, MutableByteView out);

  // ---- server (kBadState on a client session) ----
  Expected<size_t, Error> unprotect_request(ByteView datagram, MutableByteView out, Exchange& out_exchange);
  // The same for a request already parsed (e.g. by the Endpoint), as above.
  // With out_inner, the verified request comes as a view instead (see
  // Context::unprotect_request): nothing is re-encoded or parsed again.
  Expected<size_t, Error> unprotect_request(const coap::MessageView& outer, const OptionValue& option,
                                            MutableByteView out, Exchange& out_exchange,
                                            coap::MessageView* out_inner = nullptr);
  Expected<size_t, Error> protect_response(const coap::Message& response, Exchange& exchange, MutableByteView out,
                                           ProtectOptions opt = {});

  // request_key_update makes the next outgoing message (a client's request, a
  // server's response) start the procedure. A client still waiting for R2 (its
  // response was lost) starts over with a fresh R1.
  void request_key_update() {
    if (!update_wanted_) touch();
    update_wanted_ = true;
  }
  bool key_update_wanted() const { return update_wanted_; }
  KeyUpdateState state() const { return state_; }
  // current is the context used for new outgoing messages.
  Context& current() { return *current_; }
  const Context& current() const { return *current_; }
  // retained_old is CTX_OLD kept by the retention policy (nullptr otherwise).
  const Context* retained_old() const { return old_.get(); }
  const Context* pending_new() const { return new_.get(); }
  uint64_t updates_completed() const { return updates_completed_; }

  // ---- persistence across a reboot (RFC 8613 Appendix B.1, key-limits draft §3) ----
  // state_generation changes whenever what export_state() returns changes in a
  // way that matters after a reboot (a state transition, a new current context,
  // R1 / R1|R2 to remember). A tool writes export_state() durably whenever it
  // changed, BEFORE sending the datagram the call produced; then a reboot never
  // loses a context the peer may already rely on.
  uint64_t state_generation() const { return generation_; }
  // export_state encodes what a peer needs after a reboot (format version 1):
  // the IDs (checked on restore), the current Master Secret and Salt (after
  // confirmed updates), the procedure state with R1 (server sent R1) or R1|R2
  // (server awaiting key confirmation, client holding CTX_NEW), a pending
  // request_key_update(), count_q / count_v and the sequence number at which
  // the current Sender Key started. It CONTAINS THE MASTER SECRET: store it like
  // a key, never log it. A client waiting for R2 is saved as "idle, update
  // wanted" (its R1 is useless after a reboot: the update starts afresh).
  // A retained CTX_OLD (§3.4) is not saved.
  Bytes export_state() const;
  // restore rebuilds a Session from `state` (export_state) and `base`, the
  // configuration the session was first created with (same IDs, ID Context,
  // algorithms, SequenceStore, which keeps the Sender Sequence Number of the
  // whole chain monotonic: every context of a chain shares one store key).
  // count_q restarts at max(saved count_q, sequence numbers reserved since the
  // current key started), so the limits hold across reboots.
  // Server: `window` is a replay window known to be current (e.g. saved at a
  // clean shutdown); without one the window is uninitialised and requests need
  // an Echo first (Appendix B.1.2; `random` draws the challenge).
  // Errors: kMalformedMessage (not a valid state: version, lengths, flags,
  // trailing bytes), kInvalidArgument (role, IDs, ID Context or r_len differ
  // from base / config), and those of Context::create / derive_updated.
  static Expected<std::unique_ptr<Session>, Error> restore(Role role, crypto::Provider& provider,
                                                           ContextConfig base, ByteView state,
                                                           Random& random, const Clock& clock,
                                                           KeyUpdateConfig config = {},
                                                           const ReplayWindow* window = nullptr);
  static constexpr uint8_t kStateVersion = 1;

 private:
  void touch() { ++generation_; }
  Context* find(uint32_t tag);
  void expire_old();
  void maybe_auto_start();
  Expected<std::unique_ptr<Context>, Error> derive(ByteView n);
  void install_new();
  bool retained_usable() const;

  Role role_;
  Random& random_;
  const Clock& clock_;
  KeyUpdateConfig config_;
  std::unique_ptr<Context> current_;
  std::unique_ptr<Context> new_;
  std::unique_ptr<Context> old_;
  // ctx1_: client, CTX_1 while waiting for R2; server, the CTX_1 of an R1
  // request answered with 4.01 + Echo (Appendix B.1.2). Used for that answer only.
  std::unique_ptr<Context> ctx1_;
  TimePoint old_deadline_{};
  KeyUpdateState state_ = KeyUpdateState::kIdle;
  std::array<uint8_t, 32> r1_{};
  std::array<uint8_t, 64> n_{};   // R1|R2 of the update in progress / last completed
  bool n_valid_ = false;
  bool update_wanted_ = false;
  uint32_t next_tag_ = 1;
  uint64_t updates_completed_ = 0;
  uint64_t generation_ = 0;
  uint64_t key_start_seq_ = 0;  // Sender Sequence Number when current_'s key started
};

}  // namespace acekdc::oscore
