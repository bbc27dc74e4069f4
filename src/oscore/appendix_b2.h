// RFC 8613 Appendix B.2 "Security Context Derived Multiple Times" (Figure 14),
// an optional way to derive a fresh Security Context from the same Master
// Secret, Master Salt and IDs by putting random nonces into the ID Context, as
// sans-I/O helpers for one client (B2Client) and one server (B2Server) peer.
//
//   Client                                    Server
//   1. R1; CTX1: ID Context ID1 = R1
//      request #1 under CTX1, kid context ID1 ->
//                                             2. CTX1 from ID1, verify; R2 (cached);
//                                                CTX2: ID2 = R2 || ID1
//                                       <- response #1 (4.01) under CTX2, kid context R2
//   3. CTX2 from R2 || ID1, verify; R3;
//      CTX3: ID3 = R2 || R3
//      request #2 under CTX3, kid context ID3 ->
//                                             4. R2 cached? CTX3 from ID3, verify;
//                                                CTX3 replaces the old context, R2s dropped
//                                       <- response #2 under CTX3
//   5. verify; CTX3 replaces the old context
//
// The server may initiate (step 1 omitted): after renew() (or when created
// without an established context) it answers any request from the peer with
// response #1, taking ID1 from the request's 'kid context' or, if absent, its
// current / configured ID Context.
//
// CTX1 and CTX2 protect one message each with keys derived from a fresh random
// nonce, so they start at sequence number 0 and are never persisted. CTX3 uses
// the configured SequenceStore under the key of its own ID Context (ID3), so
// its numbers survive a reboot. Request #2 is an ordinary request: the
// application resends the request that got response #1 (B2Action::kResendRequest).
// The protocol MUST NOT be used without a good source of randomness (B.2).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "core/clock.h"
#include "core/random.h"
#include "oscore/context.h"

namespace acekdc::oscore {

struct B2Config {
  // base: the immutable parameters shared with the peer (Master Secret / Salt,
  // Sender / Recipient ID, algorithms), limits, store and options.
  // base.params.id_context is the ID Context of the established context (or,
  // for a server without one, the ID1 it derives from when it initiates).
  ContextConfig base;
  // nonce_len: length of R1, R2 and R3 (B.2: "typically, at least 8 bytes"); 1..64.
  size_t nonce_len = 8;
  // Server: how many R2 are cached at once (B.2.1; the oldest is dropped when a
  // new request #1 arrives with the cache full) and for how long.
  size_t max_pending = 4;
  Duration pending_lifetime = std::chrono::seconds(60);
};

enum class B2Action : uint8_t {
  kDeliver,        // an ordinary message for the application (request #2 / response #2 included)
  kSendResponse1,  // server: request #1 verified (do not act on it); answer it with
                   // protect_response of a 4.01 Unauthorized for the same exchange
  kResendRequest,  // client: response #1 verified (do not act on it); send the
                   // request again with protect_request (it becomes request #2)
};

struct B2Result {
  size_t len;  // bytes of the decrypted message written to `out`
  B2Action action;
};

enum class B2State : uint8_t {
  kNoContext,     // no usable context: the next request starts the protocol
  kEstablished,   // current() is the context in use
  kSentRequest1,  // client: request #1 sent under CTX1, waiting for response #1
  kHaveCtx3,      // client: CTX3 derived, request #2 (and its response) pending
};
const char* to_string(B2State s);

class B2Client {
 public:
  // create checks the configuration (kInvalidArgument: nonce_len outside 1..64)
  // and, if `established`, creates the context with base.params.id_context;
  // otherwise the first request runs the protocol. random and clock must outlive it.
  static Expected<std::unique_ptr<B2Client>, Error> create(crypto::Provider& provider, B2Config config,
                                                           Random& random, bool established);

  // protect_request protects `request` under the established context, or
  // starts the protocol (request #1 under a fresh CTX1: no context yet, renew()
  // was called, or response #1 never came), or sends request #2 under CTX3.
  // Errors: those of Context::protect_request and create.
  Expected<size_t, Error> protect_request(const coap::Message& request, MutableByteView out,
                                          Exchange& out_exchange);
  // unprotect_response verifies a response. A response carrying 'kid context'
  // is response #1: it must hold exactly nonce_len bytes (kMalformedOption),
  // answer a request of ours (kContextNotFound) and verify under CTX2
  // (errors of Context::unprotect_response); then CTX3 is derived and the
  // result says kResendRequest. Response #2 (under CTX3) makes CTX3 current.
  Expected<B2Result, Error> unprotect_response(ByteView datagram, Exchange& exchange, MutableByteView out);

  // renew makes the next request start the protocol (step 1).
  void renew() { renew_wanted_ = true; }
  B2State state() const { return state_; }
  const B2Config& config() const { return config_; }
  // current is the established context (nullptr before the first run completes).
  Context* current() { return current_.get(); }

 private:
  B2Client(crypto::Provider& provider, B2Config config, Random& random);
  Expected<std::unique_ptr<Context>, Error> make(std::optional<ByteView> id_context, bool final_context);

  crypto::Provider& provider_;
  B2Config config_;
  Random& random_;
  std::unique_ptr<Context> current_;
  std::unique_ptr<Context> ctx1_;
  std::unique_ptr<Context> ctx3_;
  B2State state_ = B2State::kNoContext;
  bool renew_wanted_ = false;
  uint32_t next_tag_ = 1;
};

class B2Server {
 public:
  // create: as B2Client::create. Without `established` (e.g. after a reboot that
  // lost the mutable part of the context) every request gets response #1.
  static Expected<std::unique_ptr<B2Server>, Error> create(crypto::Provider& provider, B2Config config,
                                                           Random& random, const Clock& clock,
                                                           bool established);

  // unprotect_request verifies a request from the peer:
  //  - 'kid context' = R2 || R3 with R2 cached (step 4): CTX3 verifies it and
  //    replaces the current context, every cached R2 is dropped; kDeliver.
  //  - 'kid context' = the current ID Context, or none, with an established
  //    context and no renew(): the ordinary path; kDeliver.
  //  - otherwise (step 2): CTX1 from the 'kid context' (or the current ID
  //    Context) verifies it; R2 is drawn and cached with CTX2; kSendResponse1.
  // Errors: kContextNotFound (kid is not the peer's), kInvalidArgument (an ID
  // Context would exceed 255 bytes), those of Context::unprotect_request. A
  // replayed request #2 after step 4 meets CTX3's replay window (kReplay). An R2
  // is dropped after limit_v requests #2 under it failed to verify.
  Expected<B2Result, Error> unprotect_request(ByteView datagram, MutableByteView out, Exchange& out_exchange);
  // protect_response protects a response for `exchange`: response #1 under its
  // CTX2 with 'kid context' = R2 (kContextNotFound once that R2 expired or was
  // dropped), anything else under the context that verified the request.
  Expected<size_t, Error> protect_response(const coap::Message& response, Exchange& exchange,
                                           MutableByteView out, ProtectOptions opt = {});

  // renew makes the next request from the peer get response #1 (server-initiated).
  void renew() { renew_wanted_ = true; }
  B2State state() const { return current_ ? B2State::kEstablished : B2State::kNoContext; }
  Context* current() { return current_.get(); }
  const B2Config& config() const { return config_; }
  size_t num_pending() const { return pending_.size(); }

 private:
  B2Server(crypto::Provider& provider, B2Config config, Random& random, const Clock& clock);
  Expected<std::unique_ptr<Context>, Error> make(std::optional<ByteView> id_context, bool final_context);
  void expire_pending();

  // Pending: one run after step 2: R2 and CTX2 (for response #1).
  struct Pending {
    std::array<uint8_t, 64> r2{};
    std::unique_ptr<Context> ctx2;
    TimePoint deadline;
    uint64_t num_failures = 0;  // request #2 candidates under this R2 that failed to verify
  };
  crypto::Provider& provider_;
  B2Config config_;
  Random& random_;
  const Clock& clock_;
  std::unique_ptr<Context> current_;
  std::deque<Pending> pending_;
  bool renew_wanted_ = false;
  uint32_t next_tag_ = 1;
};

}  // namespace acekdc::oscore
