// SecureServer: OSCORE (RFC 8613) as a layer between a coap::Endpoint and a
// coap::Server, so that one resource tree serves protected (and, where the
// policy allows, unprotected) requests.
//
//   coap::Endpoint ep(clock, random);
//   coap::Server server(ep);                       // the resource tree, as for plain CoAP
//   server.add("/hello").on(code::kGet, ...);
//   oscore::SecureServer secure(ep, server, random, clock);   // installs itself after `server`
//   auto id = secure.add_context(std::move(ctx));  // a server-side Context (one per client)
//   secure.allow_unprotected("/oscore/hello/coap");// everything else needs OSCORE (4.01)
//   ... ep.receive(...) as usual; server.notify("/obs") sends protected notifications.
//   secure.session(*id)->request_key_update();     // server-initiated key update
//
// Per protected request (outer message from the Endpoint, which did deduplication):
// the context is chosen by kid / kid context (peek_option + Context::matches_request;
// if several match, e.g. no kid context was sent, each is tried, §8.2 step 2),
// its Session unprotects, the decrypted inner request is dispatched to the
// coap::Server (inner Block1/Block2 and Observe handled by the Server exactly as for
// plain CoAP: Block is Class E, Observe both Inner and Outer, RFC 8613 §4.1.3),
// and the inner response is protected: a piggybacked (or NON) response reuses the
// request nonce, a separate response and every notification get a fresh Partial IV.
// Errors (RFC 8613 §8.2, via oscore::error_response): unknown kid -> 4.01, replay
// -> 4.01, decryption failure -> 4.00, malformed option -> 4.02, sent unprotected
// with Max-Age 0. kEchoRequired (replay window not initialised, see the Echo
// contract in context.h) -> a PROTECTED 4.01 carrying Echo = echo_challenge().
// An unprotected request for a path not allowed by the policy -> 4.01 unprotected.
//
// Not thread-safe; everything runs on the Endpoint's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coap/endpoint.h"
#include "coap/server.h"
#include "core/clock.h"
#include "core/random.h"
#include "oscore/appendix_b2.h"
#include "oscore/context.h"
#include "oscore/key_update.h"

namespace acekdc::oscore {

// ContextId names a context registered with SecureServer::add_context.
using ContextId = uint32_t;

struct SecureServerConfig {
  // max_exchanges: exchanges (protected, and unprotected ones where the policy
  // allows them) kept for separate responses and Observe notifications. When
  // full the oldest is dropped, and the Server's later responses to it are not
  // sent (fail closed: never unprotected by mistake; a notification that is not
  // sent ends the observation).
  size_t max_exchanges = 1024;
  // max_message_len: largest inner / outer message handled (buffer size).
  size_t max_message_len = 2048;
  // allow_unprotected_all: serve every resource without OSCORE too (default: only
  // the paths given to allow_unprotected()).
  bool allow_unprotected_all = false;
  // Outer Block1 (RFC 8613 §4.1.3.4.2): a proxy may fragment an OSCORE request
  // with an Outer Block1 option. The fragments are reassembled (per peer, OSCORE
  // option and Request-Tag) before the request is unprotected; each non-final
  // block is answered 2.31 Continue. max_unfragmented_size is the security
  // policy's MAX_UNFRAGMENTED_SIZE: a transfer whose blocks add up to more (or
  // whose Size1 says so) is discarded and answered 4.13 Request Entity Too Large
  // with Size1 = the limit. A block out of sequence gets 4.08. At most
  // max_outer_block1_transfers run at once (the oldest gives way), each for at
  // most outer_block1_lifetime.
  size_t max_unfragmented_size = 2048;
  size_t max_outer_block1_transfers = 16;
  Duration outer_block1_lifetime = seconds(cp::coap::param::kExchangeLifetimeS);
};

class SecureServer {
 public:
  // SecureServer replaces `server`'s request handler on `ep` with its own and
  // installs `server`'s response hook. Construct it after `server`; `ep`,
  // `server`, `random` and `clock` must outlive it.
  SecureServer(coap::Endpoint& ep, coap::Server& server, Random& random, const Clock& clock,
               SecureServerConfig cfg = {});
  ~SecureServer();
  SecureServer(const SecureServer&) = delete;
  SecureServer& operator=(const SecureServer&) = delete;

  // add_context registers a server-side context (its Recipient ID is the kid the
  // client sends), wrapped in a Session for the key update. Fails with
  // kInvalidArgument if another context already has the same Recipient ID and
  // ID Context (the lookup would be ambiguous).
  Expected<ContextId, Error> add_context(std::unique_ptr<Context> ctx, KeyUpdateConfig kcfg = {});
  // add_session registers a server-role Session as it is, e.g. one rebuilt with
  // Session::restore after a reboot (its Random and Clock must outlive it).
  // The caller passes a Role::kServer session. kInvalidArgument: nullptr, or
  // another context has the same Recipient ID and ID Context.
  Expected<ContextId, Error> add_session(std::unique_ptr<Session> session);
  // add_b2 registers a peer whose contexts are derived by RFC 8613 Appendix B.2
  // (B2Server, e.g. created without an established context after a reboot that
  // lost the context's mutable part, or with one that a client may renew). A
  // request whose kid is the peer's Sender ID (b2.config().base recipient_id)
  // selects it with ANY 'kid context': a new ID Context (R1 of a client that
  // lost its context, or R2||R3 of a request #2) runs Figure 14, answered with
  // the protected 4.01 response #1 (not dispatched to a resource); request #2
  // and every ordinary request are dispatched. Such a peer has no key update
  // Session (session(id) is nullptr; b2(id) is its B2Server). An observation
  // ends when B.2 replaces its context. kInvalidArgument: nullptr, or another
  // context has the same Recipient ID.
  Expected<ContextId, Error> add_b2(std::unique_ptr<B2Server> b2);
  // b2 returns the B2Server of a peer added with add_b2 (nullptr otherwise).
  B2Server* b2(ContextId id);
  // remove_context forgets a context and its open exchanges. False if unknown.
  bool remove_context(ContextId id);
  // session returns the Session of a context (nullptr if unknown); valid until
  // remove_context.
  Session* session(ContextId id);
  size_t num_contexts() const { return contexts_.size(); }
  // find_context returns the context a request with this kid / kid context selects.
  std::optional<ContextId> find_context(ByteView kid, std::optional<ByteView> kid_context) const;

  // allow_unprotected lets requests without OSCORE reach `path` ("/a/b");
  // disallow_unprotected undoes it.
  void allow_unprotected(std::string_view path);
  void disallow_unprotected(std::string_view path);

  // RequestObserver is told which context authenticated each protected request
  // (e.g. for access control or logs); it runs before the resource handler.
  // `id` is nullopt for an unprotected request.
  using RequestObserver = std::function<void(std::optional<ContextId> id, const coap::MessageView& inner,
                                             const coap::Address& peer)>;
  void set_request_observer(RequestObserver o) { observer_ = std::move(o); }
  // ProtectObserver runs after every response the server protected and BEFORE
  // the Endpoint sends it: `outer` is the protected message (its OSCORE option
  // tells the Partial IV). A tool persists session.export_state() here when
  // session.state_generation() changed (key update across reboots).
  using ProtectObserver = std::function<void(ContextId id, const Session& session, ByteView outer)>;
  void set_protect_observer(ProtectObserver o) { protect_observer_ = std::move(o); }
  // current_context is the context of the request being handled right now
  // (inside a resource handler), nullopt for an unprotected one and while the
  // Server re-runs a GET handler for a notification.
  std::optional<ContextId> current_context() const { return current_; }

  struct Stats {
    uint64_t protected_requests = 0;    // verified and dispatched
    uint64_t unprotected_requests = 0;  // dispatched without OSCORE
    uint64_t rejected = 0;              // answered with an OSCORE error / 4.01 policy
    uint64_t echo_challenges = 0;       // protected 4.01 with Echo sent
    uint64_t b2_responses1 = 0;         // Appendix B.2 responses #1 (protected 4.01) sent
    uint64_t protect_failures = 0;      // responses that could not be protected (not sent)
    uint64_t outer_block1_reassembled = 0;  // OSCORE requests rebuilt from outer Block1
    uint64_t outer_block1_refused = 0;      // outer Block1 transfers refused (4.13, 4.08, 4.00)
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Entry;
  struct PendingExchange;
  struct OuterBlock1;
  void handle_outer_block1(coap::RequestContext& ctx);
  void on_request(coap::RequestContext& ctx);
  void handle_protected(coap::RequestContext& ctx);
  bool on_outgoing(const coap::Address& peer, ByteView token, coap::Message& resp);
  bool protect_into(Entry& e, const coap::Message& inner, Exchange& ex, const ProtectOptions& po,
                    coap::Message& outer);
  Entry* entry(ContextId id);
  bool matches(const Entry& e, const OptionValue& ov) const;
  Expected<ContextId, Error> add_entry(std::unique_ptr<Entry> e);
  void reject(coap::RequestContext& ctx, Error e);
  void forget(const coap::Address& peer, ByteView token);

  coap::Endpoint& ep_;
  coap::Server& server_;
  Random& random_;
  const Clock& clock_;
  SecureServerConfig cfg_;
  std::vector<std::unique_ptr<Entry>> contexts_;
  ContextId next_id_ = 1;
  std::set<std::string, std::less<>> unprotected_paths_;
  std::vector<std::unique_ptr<PendingExchange>> pending_;  // oldest first
  std::vector<std::pair<coap::Address, Bytes>> plain_;      // unprotected deferred / observed, oldest first
  RequestObserver observer_;
  ProtectObserver protect_observer_;
  std::optional<ContextId> current_;
  // Inflight: the request being dispatched right now, so that a response the
  // handler sends at once (defer + respond_later inside the handler) is matched.
  struct Inflight {
    const coap::Address* peer = nullptr;
    ByteView token;
    Entry* entry = nullptr;     // nullptr: an unprotected request
    Exchange* exchange = nullptr;
  };
  std::optional<Inflight> inflight_;
  bool responded_inflight_ = false;
  std::vector<std::unique_ptr<OuterBlock1>> outer_block1_;  // oldest first
  Bytes reassembled_;  // the OSCORE request rebuilt from outer Block1 fragments
  Bytes b2_datagram_;  // a request re-encoded for a B2Server (no datagram from the Endpoint)
  Stats stats_;
  Bytes inner_buf_;
  Bytes outer_buf_;
  coap::Message inner_resp_;
};

}  // namespace acekdc::oscore
