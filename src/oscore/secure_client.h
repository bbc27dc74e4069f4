// SecureClient: the client side of OSCORE (RFC 8613) as a layer over a
// coap::Endpoint. Requests are protected with one Session (one server's
// context, key update included), responses matched by the Endpoint (token,
// retransmission, separate responses) are verified and decrypted here.
//
//   coap::Endpoint ep(clock, random);
//   oscore::Session session(oscore::Role::kClient, std::move(ctx), random, clock);
//   oscore::SecureClient client(ep, session);
//   coap::Message req(coap::Type::kCon, code::kGet);
//   req.set_uri_path("/oscore/hello/1");
//   auto id = client.request(server_addr, std::move(req), {}, [](const oscore::SecureEvent& ev) {
//     if (ev.status == coap::ClientStatus::kResponse) use(*ev.response);   // verified, decrypted
//     else if (ev.error) log(oscore::to_string(*ev.error));              // e.g. kDecryptionFailed
//   });
//
// What it does beyond Endpoint::request:
//  - Block2 (inner, RFC 8613 §4.1.3.4.1): the client asks for the next block with
//    a new protected request until the body is complete; the callback gets the
//    whole body. Block1: a payload larger than block1_size (RequestOptions, or
//    1024) is sent in inner Block1 blocks, each a protected request.
//  - Outer Block2 (RFC 8613 §4.1.3.4.2, a proxy fragmenting the response): the
//    Endpoint reassembles the OSCORE message, which is verified whole, up to
//    SecureClientConfig::max_unfragmented_size.
//  - Observe (Outer and Inner): opts.observe registers; every notification is
//    verified (its Partial IV must grow, RFC 8613 §7.4.1) and delivered as
//    kNotification; older ones are dropped silently. The rest of a notification
//    larger than one block is fetched with Block2 GETs (RFC 7959 §3.4) and the
//    whole body delivered as the notification.
//  - Key update: an observation registered before a key update goes on after
//    it: the server protects its notifications with CTX_NEW (key-limits draft
//    §3.3 / §3.4: outgoing messages only with CTX_NEW), the Session verifies
//    them with CTX_NEW first, then with a retained CTX_OLD; the Notification
//    Number (RFC 8613 §7.4.1) carries over, as the chain shares one Sender
//    Sequence Number on each side.
//  - Echo (RFC 9175, the Echo contract in context.h): a verified 4.01 that carries
//    an Echo option makes the client resend the same request once with that Echo
//    as an inner option; the callback only sees the answer to the resend.
//  - An unprotected answer (an OSCORE error response of RFC 8613 §8.2, e.g. 4.01
//    "Security context not found") or a response that fails verification is
//    delivered as kBadResponse with `error` set (unprotected: kContextNotFound,
//    with the message in `unprotected_response`; never authenticated).
//
// Not thread-safe. The Endpoint and the Session must outlive the SecureClient.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "coap/endpoint.h"
#include "oscore/appendix_b2.h"
#include "oscore/context.h"
#include "oscore/key_update.h"

namespace acekdc::oscore {

// SecureEvent is what a SecureClient request's callback sees.
struct SecureEvent {
  coap::ClientStatus status = coap::ClientStatus::kResponse;
  // response: the verified, decrypted response (kResponse, kNotification); its
  // header fields (type, message ID, token) are those of the outer message.
  const coap::Message* response = nullptr;
  std::optional<uint32_t> observe;  // Observe value of a notification
  // error: why a response was not accepted (status kBadResponse).
  std::optional<Error> error;
  // unprotected_response: an answer that came without OSCORE (status kBadResponse,
  // error kContextNotFound): an RFC 8613 §8.2 error response or a plain-CoAP peer.
  const coap::Message* unprotected_response = nullptr;
};
using SecureCallback = std::function<void(const SecureEvent&)>;

struct SecureClientConfig {
  // max_message_len: largest protected request / response handled (buffer size).
  size_t max_message_len = 2048;
  // max_body_size: largest Block2 body reassembled.
  size_t max_body_size = 1 << 20;
  // block2_size: inner Block2 size asked for when a transfer starts (0: the server's choice).
  size_t block2_size = 0;
  // max_unfragmented_size: MAX_UNFRAGMENTED_SIZE of RFC 8613 §4.1.3.4.2. A
  // proxy may fragment an OSCORE response with an Outer Block2 option; the
  // Endpoint fetches and reassembles the fragments (bounded by its own
  // EndpointConfig::max_body_size) before anything is verified here. A
  // (reassembled) response larger than this is discarded without being
  // verified: kBadResponse with error kBufferTooSmall (a notification is
  // dropped, the observation goes on). The plaintext must also fit the
  // context's ContextConfig::max_message_len.
  size_t max_unfragmented_size = 2048;
};

class SecureClient {
 public:
  SecureClient(coap::Endpoint& ep, Session& session, SecureClientConfig cfg = {});
  // SecureClient(ep, b2) protects with contexts derived by RFC 8613 Appendix B.2
  // (B2Client): without an established context, or after b2.renew(), the next
  // request runs Figure 14 (request #1 with a fresh R1); a response #1 (the
  // server's protected 4.01 with 'kid context' R2, also when the server
  // initiates) makes the client send the same request again under CTX3
  // (request #2, at most twice per request); the callback sees only the answer
  // to it. There is no key update Session: session() must not be called.
  SecureClient(coap::Endpoint& ep, B2Client& b2, SecureClientConfig cfg = {});
  ~SecureClient();
  SecureClient(const SecureClient&) = delete;
  SecureClient& operator=(const SecureClient&) = delete;

  // request protects `req` (the inner request: code, Uri-Path, ..., payload;
  // type CON/NON from opts.confirmable) and sends it to `peer`. `cb` is called
  // once with the outcome (for Observe: for every notification until the
  // exchange ends). Returns an id for cancel(). Errors (nothing sent, cb not
  // called): those of Session::protect_request (kSenderLimitReached, kStorageFailure,
  // kContextExpired, kInvalidArgument, ...), kBufferTooSmall.
  Expected<uint64_t, Error> request(const coap::Address& peer, coap::Message req, coap::RequestOptions opts,
                                    SecureCallback cb);
  // cancel ends a request (cb gets kCancelled). For an observation with
  // deregister=true a protected GET with Observe: 1 and the registration's token
  // is sent (RFC 7641 §3.6, its response is consumed silently); otherwise the
  // next notification is rejected with RST, which also ends it at the server.
  void cancel(uint64_t id, bool deregister = false);
  size_t num_requests() const { return ops_.size(); }

  // session: the key update Session (only for a client made with one).
  Session& session() { return *session_; }
  // b2: the B2Client (nullptr for a client made with a Session).
  B2Client* b2() { return b2_; }
  coap::Endpoint& endpoint() { return ep_; }

  // ProtectObserver runs after every request this client protected and BEFORE
  // it is handed to the Endpoint: `outer` is the protected message (its OSCORE
  // option tells the Partial IV). A tool persists session.export_state() here
  // when session.state_generation() changed (key update across reboots). Not
  // called for a B.2 client.
  using ProtectObserver = std::function<void(const Session& session, ByteView outer)>;
  void set_protect_observer(ProtectObserver o) { protect_observer_ = std::move(o); }

 private:
  struct Op;
  Expected<void, Error> send(Op& op);
  void on_event(uint64_t id, const coap::ClientEvent& ev);
  void on_event_inner(uint64_t id, const coap::ClientEvent& ev);
  void finish(uint64_t id, const SecureEvent& ev);
  Expected<size_t, Error> protect(const coap::Message& m, Exchange& ex);
  void observe_protected(size_t len);

  coap::Endpoint& ep_;
  Session* session_ = nullptr;
  B2Client* b2_ = nullptr;
  SecureClientConfig cfg_;
  std::unordered_map<uint64_t, std::shared_ptr<Op>> ops_;
  uint64_t next_id_ = 1;
  Bytes out_buf_;
  Bytes in_buf_;
  Bytes datagram_;
  ProtectObserver protect_observer_;
};

}  // namespace acekdc::oscore
