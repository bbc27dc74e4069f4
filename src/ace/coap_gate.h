// AceCoapGate: the CoAP binding of the ACE endpoints, sans-I/O: one request datagram
// in, one response datagram out (piggy-backed ACK for CON, NON for NON; no
// retransmission or deduplication: put a coap::Endpoint in front for that).
//
//   AS:  POST /token and /introspect, OSCORE-protected with a pre-established context
//        per peer (RFC 9203 §5: the client / RS is the identity its context names).
//        An unprotected /token request is answered invalid_client (4.01).
//   KDC: POST /authz-info unprotected: token POST (AuthzInfo::handle_token_post); the
//        derived OSCORE context is kept here. POST /authz-info protected with such a
//        context: update of access rights (handle_token_update).
//   Other paths protected with such a context: the resource handler set with
//   set_kdc_resource_handler (e.g. /ace-group/*), answered under the same context.
//   Anything else: 4.04 (4.05 for another method); OSCORE failures: the RFC 8613 error
//   responses (oscore::build_error_response).
//
// Push (KDC to client), still sans-I/O: a protected GET with Observe: 0 that the
// resource handler answers 2.xx with an Observe option is kept as an Observation;
// notify() protects a notification for it with a fresh Partial IV (RFC 8613 §4.1.3.5,
// §8.3) and send_request() protects a request of the KDC acting as client on the
// context (e.g. to a member's control_path), sent to the address the context's
// last request came from. Both queue Outgoing datagrams the caller sends
// (take_outgoing); an Observation ends on Observe: 1, when its context goes, or
// with cancel_observation (the caller's notification was reset or timed out).
// The answer to a send_request is checked with check_answer (OSCORE-verified, inner
// code returned); ace::PushDriver (push_driver.h) does the sending and the checks.
//
// Push state across restarts: with set_push_store, every observation, the peer
// address of every KDC context and a reservation of Observe values are written to
// a PushStore (push_store.h); restore_push_state re-creates them after
// restore_kdc_contexts, so observers keep receiving notifications after a KDC
// restart without registering again.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/push_store.h"
#include "coap/address.h"
#include "core/bytes.h"
#include "oscore/context.h"

namespace acekdc::ace {

class AceCoapGate {
 public:
  explicit AceCoapGate(crypto::Provider& provider, size_t max_datagram = 2048);

  // serve_as / serve_kdc attach the cores (they must outlive the gate).
  void serve_as(AuthorizationServer& as) { as_ = &as; }
  void serve_kdc(AuthzInfo& kdc) { kdc_ = &kdc; }

  // set_sequence_store: where the Sender Sequence Numbers of the KDC contexts made at
  // /authz-info are reserved before use (RFC 8613 Appendix B.1.1), one counter per
  // ContextKey ("kdc.<ID Context hex or ->.<Recipient ID hex>"); it must outlive the
  // gate. nullptr (the default): no persistence.
  void set_sequence_store(oscore::SequenceStore* store) { seq_store_ = store; }
  // restore_kdc_contexts re-creates the OSCORE context of every record of `store` that
  // kept its parameters (after a KDC restart; with the sequence store set first, the
  // sender continues above its last reservation). Returns how many were restored.
  // A restored context's replay window is not initialised (what it accepted before the
  // restart is unknown): its first request is answered with an OSCORE-protected 4.01
  // carrying an Echo challenge (drawn from provider.random()), and only a request that
  // returns the challenge is served and initialises the window (RFC 8613 Appendix
  // B.1.2, RFC 9175); replays of pre-restart requests are never served.
  size_t restore_kdc_contexts(const TokenStore& store);
  // num_echo_challenges: how many 4.01 + Echo answers the gate has sent.
  uint64_t num_echo_challenges() const { return num_echo_challenges_; }

  // KdcResourceHandler serves a request that arrived protected with the OSCORE context
  // `via` (established at /authz-info) for a path other than /authz-info. `req` is the
  // decrypted inner request; the handler sets resp's code, options and payload (resp
  // arrives as 4.04 with the exchange's type, message ID and token).
  using KdcResourceHandler =
      std::function<void(const ContextKey& via, const coap::Message& req, coap::Message& resp, int64_t now)>;
  void set_kdc_resource_handler(KdcResourceHandler h) { kdc_resources_ = std::move(h); }

  // add_peer registers a pre-established OSCORE context that authenticates `identity`
  // (a client or an RS talking to the AS).
  void add_peer(std::string identity, std::unique_ptr<oscore::Context> ctx);

  // handle processes one request datagram at unix time `now` and returns the response
  // datagram (empty: send nothing, e.g. a malformed or non-request message).
  Bytes handle(ByteView datagram, int64_t now);
  // handle with the datagram's source: remembered as the peer of the KDC context
  // the request came over (for notifications and send_request).
  Bytes handle(ByteView datagram, int64_t now, const coap::Address& from);

  // Observation: a registration kept for notifications.
  struct Observation {
    uint64_t id = 0;
    ContextKey via;
    coap::Address peer;
    Bytes token;
    std::string path;  // the request's Uri-Path, without a leading '/'
    oscore::Exchange exchange;
    oscore::Context* ctx = nullptr;  // the context (owned by the gate; dropped with it)
  };
  // Outgoing: a protected datagram to send to `peer` (CON; the sender may replace
  // the message ID; for a request also the token). observation: the notification's
  // Observation id, 0 for a request.
  // request: the send_request's id for check_answer, 0 for a notification.
  struct Outgoing {
    coap::Address peer;
    Bytes datagram;
    uint64_t observation = 0;
    uint64_t request = 0;
  };
  const std::vector<Observation>& observations() const { return observations_; }
  // notify queues `response` (code, Content-Format, payload; the Observe value is
  // set when it is protected) as the next notification of observation `id`. It is
  // protected only when it is sent (protect_unsent, or take_outgoing for all at
  // once), each with a fresh Partial IV from the context: a newer notify for the
  // same observation replaces an unsent older one (only the latest state is sent,
  // RFC 7641 §4.5; the dropped one costs no sequence number). False if the
  // observation or its context is gone.
  bool notify(uint64_t id, coap::Message response);
  // Unsent: a notification queued by notify and not protected yet.
  struct Unsent {
    uint64_t observation = 0;
    coap::Address peer;
  };
  // take_unsent hands over the observations that got a notification to send since
  // the last take_unsent / take_outgoing (each once; the caller protects each with
  // protect_unsent when it can send it, e.g. when its peer's previous CON is ACKed).
  std::vector<Unsent> take_unsent();
  // protect_unsent protects observation `id`'s queued notification now (Observe
  // value and Partial IV drawn here) and returns it as an Outgoing. nullopt when
  // nothing is queued for it (already sent, superseded and sent, or the
  // observation is gone) or protection failed (the observation is then dropped).
  std::optional<Outgoing> protect_unsent(uint64_t id);
  size_t num_unsent() const { return unsent_.size(); }
  // send_request protects `request` (code, Uri-Path, options, payload) with the
  // context `via` as a client and queues it for the context's last peer. False if
  // the context is unknown, has no peer yet, or protection failed.
  bool send_request(const ContextKey& via, coap::Message request);
  // check_answer verifies the response datagram to the send_request `request`
  // (Outgoing::request) with its context and returns the inner response code.
  // kContextNotFound when the request is unknown (answered, forgotten or its
  // context gone); another oscore::Error when the answer does not verify. The
  // request is forgotten either way.
  Expected<uint8_t, oscore::Error> check_answer(uint64_t request, ByteView datagram);
  // forget_request drops the state kept for `request` (no answer came).
  void forget_request(uint64_t request);
  size_t num_pending_requests() const { return pending_requests_.size(); }
  void cancel_observation(uint64_t id);
  // set_max_observations_per_context bounds what one client can make the gate keep
  // (default 4); a registration beyond it replaces the context's oldest observation.
  void set_max_observations_per_context(size_t n) { max_observations_per_context_ = n ? n : 1; }
  // has_outgoing: a request is queued or a notification not handed over yet.
  bool has_outgoing() const { return !outgoing_.empty() || !unclaimed_.empty(); }
  // take_outgoing returns the queued requests and, protected now, the
  // notifications not handed over by take_unsent.
  std::vector<Outgoing> take_outgoing();
  // peer_of: the address of the context's last request, if known.
  std::optional<coap::Address> peer_of(const ContextKey& key) const;

  // set_push_store: where observations, context peers and the Observe value
  // reservation are kept (it must outlive the gate; nullptr: nowhere). Write
  // failures do not stop the push; they are counted (num_push_store_errors).
  void set_push_store(PushStore* store) { push_store_ = store; }
  // restore_push_state re-creates the stored observations and peers of the KDC
  // contexts that exist now (call after restore_kdc_contexts); records of contexts
  // that are gone are erased from the store. The Observe values continue above the
  // stored reservation. Returns how many observations were restored, or the
  // store's error.
  Expected<size_t, StoreError> restore_push_state();
  // restored_observations: the ids restored by restore_push_state (each deserves a
  // fresh notification with the current state, RFC 7641 §4.2: the caller sends it).
  const std::vector<uint64_t>& restored_observations() const { return restored_; }
  uint64_t num_push_store_errors() const { return num_push_store_errors_; }

  // purge drops expired tokens at the KDC and the OSCORE contexts left without one.
  std::vector<ContextKey> purge(int64_t now);

  // ---- deferred introspection (AuthzInfo::set_deferred_introspection) ----
  // A token POST to /authz-info (unprotected, or an update over OSCORE) whose token
  // waits for the AS's introspection answer is parked: handle() returns nothing and
  // last_parked() names it; other requests are served meanwhile. The caller sends
  // take_introspections() to the AS (authenticated) and passes each answer, or
  // nullopt when none came in time, to complete_introspection, which re-runs the
  // parked POSTs of that token and returns their responses (2.01 or the RFC 9200
  // error). At most max_parked requests wait; beyond that a POST needing the AS is
  // answered 5.03 with Max-Age = busy_max_age_s (RFC 7252 §5.9.3.4).
  // (ace::IntrospectionDriver, introspect_driver.h, does all this on an Endpoint.)
  void set_parking(size_t max_parked, uint32_t busy_max_age_s) {
    max_parked_ = max_parked;
    busy_max_age_s_ = busy_max_age_s;
  }
  // last_parked: the id of the request the last handle() parked (0: none).
  uint64_t last_parked() const { return last_parked_; }
  size_t num_parked() const { return parked_.size(); }
  std::vector<PendingIntrospection> take_introspections();
  struct Completed {
    uint64_t parked = 0;  // last_parked() of the request
    Bytes datagram;       // its response, as handle() would have returned it (empty: none)
  };
  struct IntrospectionDone {
    std::vector<Completed> answers;
    std::vector<ContextKey> dropped;  // contexts purge() dropped after the answer (re-checks)
  };
  IntrospectionDone complete_introspection(ByteView token, const std::optional<IntrospectionReply>& reply,
                                           int64_t now);

  // kdc_context returns the OSCORE context of a client established via /authz-info.
  oscore::Context* kdc_context(const ContextKey& key);
  size_t num_kdc_contexts() const { return num_kdc_contexts_; }

 private:
  struct Peer {
    std::string identity;
    std::unique_ptr<oscore::Context> ctx;
  };
  struct KdcContext {
    ContextKey key;
    std::unique_ptr<oscore::Context> ctx;
    std::optional<coap::Address> peer;  // source of the last verified request
  };
  Bytes handle_protected(const coap::MessageView& outer, ByteView datagram, int64_t now);
  Bytes oscore_error_answer(const coap::MessageView& outer, ByteView datagram, oscore::Error error,
                            oscore::Context* ctx, oscore::Exchange* ex);
  Bytes handle_plain(const coap::MessageView& req, int64_t now);
  Bytes answer_as(const coap::MessageView& outer, const coap::MessageView& inner, const Peer& peer,
                  oscore::Context& ctx, oscore::Exchange& ex, bool token_path, int64_t now);
  // Parked: a token POST waiting for the AS (deferred introspection).
  struct Parked {
    uint64_t id = 0;
    Bytes token;  // the access token the AS is asked about
    bool over_oscore = false;
    ContextKey via;        // over_oscore: the context it came over
    oscore::Exchange ex;   // over_oscore: binds the response to the request
    coap::Message resp;    // the response skeleton (type, message ID, token)
    Bytes payload;         // the POST's payload
  };
  // park keeps the POST, or sets `resp` to 5.03 + Max-Age when full; true if parked.
  bool park(Parked p, coap::Message& resp);
  Bytes finish_parked(Parked& p, int64_t now);
  // The observations of each context (ids, ascending), so that a registration
  // touches only its own context's (at most max_observations_per_context).
  static std::string ctx_index_key(const ContextKey& k);
  std::vector<uint64_t> observations_of(const ContextKey& key) const;
  const Observation* find_observation(uint64_t id) const;
  void drop_context_push_state(const ContextKey& key);
  void note(Expected<void, StoreError> r) { num_push_store_errors_ += r ? 0 : 1; }
  uint32_t next_observe_value();
  void adopt(const TokenPostResult& r);
  // The KDC contexts, grouped by Recipient ID (the request's kid): a request, a
  // token POST's adopt and a purge touch only the contexts of one Recipient ID (O(1),
  // no scan of all contexts, no allocation for the lookup).
  void add_kdc(KdcContext k);
  void drop_kdc(const ContextKey& key);
  KdcContext* find_kdc(const ContextKey& key);
  std::vector<KdcContext>* kdc_bucket(ByteView recipient_id);
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  crypto::Provider& provider_;
  size_t max_datagram_;
  AuthorizationServer* as_ = nullptr;
  AuthzInfo* kdc_ = nullptr;
  KdcResourceHandler kdc_resources_;
  oscore::SequenceStore* seq_store_ = nullptr;
  std::vector<Peer> peers_;
  // Recipient ID bytes -> indexes into peers_ (ascending: the first added matches first).
  std::unordered_map<std::string, std::vector<size_t>, StringHash, std::equal_to<>> peer_by_recipient_;
  // Recipient ID bytes -> its contexts (usually one; several with different ID Contexts).
  std::unordered_map<std::string, std::vector<KdcContext>, StringHash, std::equal_to<>> kdc_by_recipient_;
  size_t num_kdc_contexts_ = 0;
  Bytes scratch_;
  const coap::Address* from_ = nullptr;  // the source of the datagram being handled
  std::vector<Observation> observations_;  // ascending id (appended, erased stably)
  std::unordered_map<std::string, std::vector<uint64_t>> obs_by_ctx_;  // ctx_index_key -> ids
  std::vector<Outgoing> outgoing_;
  std::unordered_map<uint64_t, coap::Message> unsent_;  // observation -> its next notification
  std::vector<uint64_t> unclaimed_;  // observations whose unsent_ entry take_unsent has not handed over
  uint64_t next_observation_ = 1;
  size_t max_observations_per_context_ = 4;
  uint32_t observe_seq_ = 2;         // Observe values of notifications (RFC 7641 §4.4), 24 bits
  uint32_t observe_reserved_ = 0;    // with a push store: values below this are reserved
  uint64_t num_echo_challenges_ = 0;
  std::vector<Parked> parked_;  // deferred introspection (ascending id)
  uint64_t next_parked_ = 1;
  uint64_t last_parked_ = 0;
  size_t max_parked_ = 32;
  uint32_t busy_max_age_s_ = 5;
  // A send_request awaiting its answer: the context and the exchange to verify it.
  struct PendingRequest {
    ContextKey via;
    oscore::Exchange exchange;
  };
  std::map<uint64_t, PendingRequest> pending_requests_;  // by request id (ascending: oldest first)
  uint64_t next_request_ = 1;
  size_t max_pending_requests_ = 65536;
  PushStore* push_store_ = nullptr;
  std::vector<uint64_t> restored_;
  uint64_t num_push_store_errors_ = 0;
};

}  // namespace acekdc::ace
