// An OSCORE Security Context (RFC 8613 §3) with the key usage limits of
// draft-hoeglund-core-oscore-key-limits-01 §2, and message protection (§8).
//
// API in brief
//   ContextConfig                 parameters, limits, 'exp', replay window, sequence store
//   Context::create(provider, cfg)      derive keys, check limits, load the sequence number
//   Context::derive_updated(N)    updateCtx(N, this) (seed §3.2): same IDs/ID Context/config
//   Client: protect_request(msg, out, exchange)  -> OSCORE request datagram in `out`
//           unprotect_response(datagram, exchange, out) -> decrypted response datagram
//   Server: unprotect_request(datagram, out, exchange) -> decrypted request datagram
//           protect_response(msg, exchange, out) -> OSCORE response datagram
//   Exchange                      what binds a response to its request (kid, Partial IV,
//                                 Observe state); kept by the caller per token
//   peek_option(datagram)         the OSCORE option of a received message (context lookup)
//
// No heap allocation per message: output goes into caller buffers, decryption
// into a scratch buffer the context allocates once. A Context is not thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "coap/message.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/expected.h"
#include "core/random.h"
#include "crypto/provider.h"
#include "oscore/derivation.h"
#include "oscore/error.h"
#include "oscore/limits.h"
#include "oscore/option.h"
#include "oscore/replay.h"
#include "oscore/sequence_store.h"

namespace acekdc::oscore {

struct ContextConfig {
  ContextParams params;
  // derived_keys: derive_keys(params), when the caller already computed it (e.g. the
  // KDC's /authz-info checks the derivation of a token POST first); create() then
  // keys the AEADs from it instead of deriving again. It must come from `params`.
  // create() clears it: the configuration a context keeps holds no keys.
  std::optional<DerivedKeys> derived_keys;
  // limits: nullopt = default_limits(aead_alg). A configuration above 2^-54 is refused.
  std::optional<KeyLimits> limits;
  // exp: the Common Context 'exp' (seed §2.2.1), Unix seconds; needs `clock`.
  std::optional<int64_t> exp;
  // clock: for `exp`, and for sizing background sequence reservations by rate
  // (seq_chunk_interval). Must outlive the context.
  const Clock* clock = nullptr;
  uint32_t replay_window = cp::oscore::kDefaultReplayWindow;
  // replay_window_initialised: false for a server that restarted without a
  // trustworthy replay window (RFC 8613 Appendix B.1.2): no request is accepted
  // until one carries the Echo challenge (RFC 9175). Needs `random`.
  bool replay_window_initialised = true;
  // random: draws the Echo challenge (required when replay_window_initialised is false).
  Random* random = nullptr;
  // store: where Sender Sequence Number reservations are persisted. nullptr =
  // no persistence (tests, or a context that lives only in memory); then the
  // sender starts at initial_seq.
  SequenceStore* store = nullptr;
  std::string store_key;  // empty: sequence_key(ID Context, Sender ID)
  uint64_t seq_chunk = SequenceAllocator::kDefaultChunk;
  // seq_writer: when set (with `store`), the next chunk is reserved in the
  // background before the current one runs out (SequenceAllocatorOptions);
  // it must outlive the context and run its jobs before `store` goes away.
  // nullptr: the store's writer (SequenceStore::set_writer), if any.
  SequenceWriter* seq_writer = nullptr;
  std::chrono::milliseconds seq_max_wait{10000};
  // seq_chunk_interval: with seq_writer and `clock`, each background
  // reservation is sized to last about this long at the sender's recent rate
  // (at least seq_chunk, at most 64 * seq_chunk; SequenceAllocatorOptions::
  // chunk_interval). Zero: fixed seq_chunk (doubled only after a wait).
  Duration seq_chunk_interval = std::chrono::milliseconds(250);
  uint64_t initial_seq = 0;
  // send_kid_context: put the ID Context as 'kid context' into requests.
  bool send_kid_context = false;
  // max_message_len bounds the plaintext of a received message (scratch size).
  size_t max_message_len = 1280;
};

// Exchange binds a response to its request (RFC 8613 §5.4, §7.4.1, §8.3). The
// client gets one from protect_request, the server from unprotect_request;
// both keep it (e.g. by token) for the response(s).
struct Exchange {
  std::array<uint8_t, kMaxNonceLen> kid{};  // request_kid (the client's Sender ID)
  uint8_t kid_len = 0;
  std::array<uint8_t, 5> piv{};             // request_piv
  uint8_t piv_len = 0;
  bool observe = false;             // the request carried Observe (registration/cancel)
  bool nonce_used = false;          // a response without Partial IV was sent / accepted
  bool answered = false;            // a (non-notification) response was accepted
  std::optional<uint64_t> notification_number;  // client: largest notification PIV
  // Used by Session (key_update.h): the context this exchange belongs to, and the
  // 'id detail' its response must carry (R1|R2 of a client-initiated key update).
  uint32_t context_tag = 0;
  std::array<uint8_t, 2 * 32> id_detail{};
  uint8_t id_detail_len = 0;
  ByteView request_kid() const { return {kid.data(), kid_len}; }
  ByteView request_piv() const { return {piv.data(), piv_len}; }
};

// ProtectOptions adjusts one outgoing message.
struct ProtectOptions {
  // partial_iv: responses only; true = a new Partial IV from the Sender Sequence
  // Number (mandatory for the second and later responses to one request and for
  // notifications after the first), false = reuse the request nonce (allowed once).
  bool partial_iv = false;
  // kid_context: requests only; nullopt = ContextConfig::send_kid_context.
  std::optional<bool> kid_context;
  // id_detail: adds the 'd' flag and this 'id detail' (key update, seed §3.1).
  std::optional<ByteView> id_detail;
  // kid_context_value: sends this 'kid context' (requests or responses; at most
  // 255 bytes), overriding kid_context. RFC 8613 Appendix B.2: response #1
  // carries R2, request #2 carries R2||R3.
  std::optional<ByteView> kid_context_value;
};

// peek_option finds and decodes the OSCORE option of a datagram without
// decrypting (to pick a context). kMalformedMessage if the datagram does not
// parse, kMalformedOption if the option is malformed or repeated,
// kContextNotFound if there is no OSCORE option.
Expected<OptionValue, Error> peek_option(ByteView datagram);
// find_oscore_option decodes the single OSCORE option of a parsed message:
// kContextNotFound without one, kMalformedOption with two or a bad value.
Expected<OptionValue, Error> find_oscore_option(const coap::MessageView& message);

class Context {
 public:
  // create derives the keys, checks the limits and starts the sender sequence at
  // the persisted reservation. Errors: those of derive_keys(), kLimitsTooWeak,
  // kUnsupportedAlgorithm (no limits for the AEAD), kStorageFailure, kCrypto.
  static Expected<std::unique_ptr<Context>, Error> create(crypto::Provider& provider,
                                                          ContextConfig config);

  // derive_updated returns updateCtx(N, this) (seed §3.2): new Master Secret and
  // Salt, same everything else, fresh count_q / count_v. The Sender Sequence
  // Number continues from this context's (shared allocator), so no persisted
  // reservation can ever go backwards, and so does the replay window (shared):
  // a message accepted under one context of the chain cannot be replayed under
  // another (e.g. the R1 request of a key update, which creates a fresh CTX_1).
  Expected<std::unique_ptr<Context>, Error> derive_updated(ByteView n) const;

  // ---- client ----
  // protect_request protects `request` (a request code; no OSCORE option; a
  // Proxy-Uri is decomposed per §4.1.3.3 and may not come with Uri-* options)
  // into `out` and fills `out_exchange`. Returns the datagram length.
  // Errors: kInvalidArgument, kBufferTooSmall, kContextExpired, kSequenceExhausted,
  // kStorageFailure, kSenderLimitReached (count_q > limit_q; the key is dead), kCrypto.
  Expected<size_t, Error> protect_request(const coap::MessageView& request, MutableByteView out,
                                          Exchange& out_exchange, const ProtectOptions& opt = {});
  Expected<size_t, Error> protect_request(const coap::Message& request, MutableByteView out,
                                          Exchange& out_exchange, const ProtectOptions& opt = {});
  // unprotect_response verifies a response to the request of `exchange` and
  // writes the decrypted CoAP response to `out`. Errors: kMalformedMessage,
  // kMalformedOption, kContextNotFound (no OSCORE option: an unprotected
  // response), kReplay (second response to a non-Observe request, stale
  // notification), kDecryptionFailed (counted in count_v),
  // kRecipientLimitReached, kContextExpired, kBufferTooSmall.
  Expected<size_t, Error> unprotect_response(ByteView datagram, Exchange& exchange,
                                             MutableByteView out);
  // unprotect_response(outer, option, ...) is the same for a message already
  // parsed (`option`: its single OSCORE option, decoded): nothing is parsed
  // or copied again. `outer` must view the received datagram until it returns.
  Expected<size_t, Error> unprotect_response(const coap::MessageView& outer, const OptionValue& option,
                                             Exchange& exchange, MutableByteView out);

  // ---- server ----
  // unprotect_request verifies an OSCORE request and writes the decrypted CoAP
  // request to `out`; out_exchange is what protect_response needs. Errors:
  // kMalformedMessage / kMalformedOption (4.02), kContextNotFound (4.01; kid or
  // kid context do not match this context), kReplay (4.01), kDecryptionFailed
  // (4.00; counted in count_v), kRecipientLimitReached, kContextExpired,
  // kBufferTooSmall. See error_response() for the CoAP answer.
  // With an uninitialised replay window (Appendix B.1.2) a verified request whose
  // Inner Echo equals echo_challenge() is accepted and initialises the window
  // (its Partial IV becomes the lower limit); any other verified request gives
  // kEchoRequired with out_exchange filled (marked so that protect_response uses
  // a fresh Partial IV, never the request's nonce) and nothing written to `out`:
  // answer it with protect_response of a 4.01 whose options carry
  // Echo = echo_challenge().
  Expected<size_t, Error> unprotect_request(ByteView datagram, MutableByteView out,
                                            Exchange& out_exchange);
  // unprotect_request(outer, option, ...) is the same for a request already
  // parsed (`option`: its single OSCORE option, decoded), without parsing again.
  // With out_inner, the verified request is returned as a view instead of a
  // datagram: *out_inner has type, message ID and token of `outer` and the
  // decrypted code, options (merged with the outer Class U options) and
  // payload, pointing into `outer` and `out`; it is valid while both are.
  // When no outer option needs merging (no Uri-Host, Uri-Port, Proxy-Scheme or
  // Proxy-Uri) `out` then holds just the decrypted plaintext (code, options,
  // payload) and nothing is re-encoded; otherwise the merged datagram, parsed.
  Expected<size_t, Error> unprotect_request(const coap::MessageView& outer, const OptionValue& option,
                                            MutableByteView out, Exchange& out_exchange,
                                            coap::MessageView* out_inner = nullptr);
  // protect_response protects `response` (a response code) for `exchange`.
  // Errors as protect_request, and kInvalidArgument when the request nonce would
  // be reused a second time (set opt.partial_iv).
  Expected<size_t, Error> protect_response(const coap::MessageView& response, Exchange& exchange,
                                           MutableByteView out, const ProtectOptions& opt = {});
  Expected<size_t, Error> protect_response(const coap::Message& response, Exchange& exchange,
                                           MutableByteView out, const ProtectOptions& opt = {});

  // ---- state ----
  const ContextParams& params() const { return config_.params; }
  const ContextConfig& config() const { return config_; }
  int aead_alg() const { return config_.params.aead_alg; }
  ByteView sender_id() const { return config_.params.sender_id; }
  ByteView recipient_id() const { return config_.params.recipient_id; }
  const KeyLimits& limits() const { return limits_; }
  uint64_t count_q() const { return count_q_; }
  uint64_t count_v() const { return count_v_; }
  // restore_counts raises count_q / count_v to at least the given values (the
  // usage of this key before a reboot, seed §2.3); they never go down.
  void restore_counts(uint64_t count_q, uint64_t count_v) {
    count_q_ = std::max(count_q_, count_q);
    count_v_ = std::max(count_v_, count_v);
  }
  bool sender_usable() const { return count_q_ < limits_.q; }
  bool recipient_usable() const { return count_v_ < limits_.v; }
  bool expired() const;
  uint64_t next_sequence_number() const { return seq_->peek(); }
  // sequence_waits: how often sending had to wait for a sequence number
  // reservation to become durable (SequenceAllocator::num_waits).
  uint64_t sequence_waits() const { return seq_->num_waits(); }
  const ReplayWindow& replay_window() const { return *replay_; }
  // restore_replay_window replaces the window (shared by the contexts of a
  // key-update chain) with `w`, e.g. one deserialized from a state file. An
  // uninitialised `w` needs an Echo challenge: drawn from ContextConfig::random;
  // without one no Echo can ever match (every request gets kEchoRequired).
  void restore_replay_window(const ReplayWindow& w);
  // echo_challenge is the Echo value (8 random bytes) a request must carry while
  // the replay window is uninitialised; empty once it is initialised.
  ByteView echo_challenge() const;
  // tag: an identifier a Session gives each of its contexts (0 by default).
  uint32_t tag() const { return tag_; }
  void set_tag(uint32_t t) { tag_ = t; }

  // matches reports whether a received option's kid / kid context select this
  // context as a server (kid == Recipient ID, kid context == ID Context if sent).
  bool matches_request(const OptionValue& opt) const;

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  Context(crypto::Provider& provider, ContextConfig config);
  struct Outgoing;
  Expected<size_t, Error> protect(const Outgoing& msg, MutableByteView out);
  Expected<void, Error> check_sender();
  // make_nonce_for writes the AEAD nonce of (id_piv, partial_iv) (RFC 8613
  // §5.2) to out (nonce_len bytes): from the precomputed base of the Sender or
  // Recipient ID (the Partial IV XORed into its tail), else by make_nonce.
  Expected<void, Error> make_nonce_for(ByteView id_piv, ByteView partial_iv, MutableByteView out) const;

  crypto::Provider& provider_;
  ContextConfig config_;
  DerivedKeys keys_;
  KeyLimits limits_;
  std::unique_ptr<crypto::Aead> sender_aead_;
  std::unique_ptr<crypto::Aead> recipient_aead_;
  // Nonce bases: Common IV XOR the padded Sender / Recipient ID with a zero
  // Partial IV, computed once (make_nonce_for).
  std::array<uint8_t, kMaxNonceLen> sender_nonce_base_{};
  std::array<uint8_t, kMaxNonceLen> recipient_nonce_base_{};
  bool nonce_bases_ = false;
  std::shared_ptr<SequenceAllocator> seq_;
  std::shared_ptr<ReplayWindow> replay_;
  uint32_t tag_ = 0;
  uint64_t count_q_ = 0;
  uint64_t count_v_ = 0;
  Bytes scratch_;
  // EchoState: the Echo challenge of an uninitialised replay window (shared,
  // like the window, by the contexts derive_updated makes).
  struct EchoState {
    std::array<uint8_t, 8> value{};
    bool drawn = false;
  };
  bool draw_echo();
  std::shared_ptr<EchoState> echo_;
};

// ErrorResponse is the CoAP answer to a failed unprotect_request (RFC 8613 §8.2,
// §7.4): code and diagnostic payload; sent unprotected, with Max-Age 0.
struct ErrorResponse {
  uint8_t code;
  const char* diagnostic;
};
// error_response maps an unprotect_request error to its answer; nullopt when the
// request should be dropped silently, and for kEchoRequired (the answer is an
// OSCORE-protected 4.01 with Echo, see unprotect_request).
std::optional<ErrorResponse> error_response(Error e);
// build_error_response writes the unprotected error response to `request`
// (ACK piggy-backed for CON, NON for NON, same token) into out.
Expected<size_t, Error> build_error_response(ByteView request_datagram, Error e, MutableByteView out);

}  // namespace acekdc::oscore
