// Endpoint: the sans-I/O CoAP messaging layer (RFC 7252 §4, §8) with the client
// side of block-wise transfer (RFC 7959) and Observe (RFC 7641).
//
// The Endpoint never touches a socket or a real clock. The I/O layer feeds it
//   receive(datagram, peer, now[, multicast])    for every datagram that arrives
//   handle_timeout(now)                          when next_deadline() has passed
// and after each call sends every datagram in transmits() (then clear_transmits()).
// Randomness (message-ID start, tokens, retransmission jitter, Leisure) comes from
// the injected Random; `now` for API calls (request, send) from the injected Clock.
//
// What it does:
//  - CON retransmission with exponential back-off (ACK_TIMEOUT, ACK_RANDOM_FACTOR,
//    MAX_RETRANSMIT), NSTART outstanding CONs per peer (more are queued)
//  - message deduplication for EXCHANGE_LIFETIME (CON) / NON_LIFETIME (NON) in a
//    bounded cache that replays the stored reply (piggybacked response, empty ACK, RST)
//  - malformed CON -> RST; malformed NON/ACK/RST dropped; CON ping -> RST
//  - requests: piggybacked response in the ACK, NON response to NON, separate
//    response (RequestContext::defer + send_separate), unrecognized critical
//    option -> 4.02; multicast: CON ignored, errors suppressed, responses delayed
//    by a random time within Leisure (RFC 7252 §8.2), No-Response (RFC 7967)
//  - client requests matched by token (and peer), separate responses ACKed,
//    unknown responses rejected with RST; Block1/Block2 transfers driven
//    automatically; Observe notifications re-ordered per RFC 7641 §3.4
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "coap/address.h"
#include "coap/message.h"
#include "core/clock.h"
#include "core/random.h"

namespace acekdc::coap {

struct EndpointConfig {
  Duration ack_timeout = milliseconds(cp::coap::param::kAckTimeoutMs);
  double ack_random_factor = cp::coap::param::kAckRandomFactor;
  int max_retransmit = cp::coap::param::kMaxRetransmit;
  int nstart = cp::coap::param::kNstart;
  Duration exchange_lifetime = seconds(cp::coap::param::kExchangeLifetimeS);
  Duration non_lifetime = seconds(cp::coap::param::kNonLifetimeS);
  Duration leisure = milliseconds(cp::coap::param::kDefaultLeisureMs);
  // request_timeout: how long a client waits for a response after the request was
  // ACKed (separate response) or for a NON request.
  Duration request_timeout = seconds(93);  // MAX_TRANSMIT_WAIT
  size_t dedup_capacity = 4096;            // entries; the oldest is evicted when full
  // max_cached_reply_size: largest reply kept for duplicates of idempotent
  // requests; with the entry itself this keeps per-exchange state under 1 KiB.
  size_t max_cached_reply_size = 896;
  size_t max_client_exchanges = 4096;
  size_t max_body_size = 1 << 20;          // client block-wise reassembly limit
  size_t max_queued_per_peer = 1024;       // CONs waiting for NSTART
  ParseLimits limits;
  // extra_known_options: option numbers a higher layer understands (not 4.02).
  std::vector<uint16_t> extra_known_options;
};

// Transmit is one datagram the I/O layer must send.
struct Transmit {
  Address peer;
  Bytes data;
};

// DeferredResponse identifies a request answered later with Endpoint::send_separate.
struct DeferredResponse {
  Address peer;
  Bytes token;
  Type request_type = Type::kCon;
  bool multicast = false;
  uint32_t no_response = 0;  // No-Response option value of the request
};

// RequestContext is given to the request handler for each new (not duplicate) request.
class RequestContext {
 public:
  RequestContext(const MessageView& req, const Address& peer, bool multicast, Message& resp, TimePoint now)
      : request(req), peer(peer), multicast(multicast), response(resp), now(now) {}
  const MessageView& request;
  const Address& peer;
  bool multicast;
  // response: set code, options, payload. Type, message ID and token are set by the
  // endpoint. Leave code 0 (Empty) to send no response (a CON is still ACKed).
  Message& response;
  TimePoint now;
  // datagram: the request as received (empty for a request a higher layer built).
  ByteView datagram;
  // encoded_response: when set, the reply is these bytes, a complete datagram
  // already encoded (e.g. an OSCORE-protected message), instead of `response`
  // encoded: the endpoint rewrites only type and message ID in its header. Its
  // token must be the request's (otherwise `response` is encoded as usual), and
  // response.code must still be its code (No-Response, multicast rules). Bytes
  // with the request's token that do not parse as a whole response (RFC 7252 §3,
  // a 2.xx-5.xx code) are never sent: the reply is a 5.00 instead. The bytes must
  // stay valid until the endpoint has sent the reply (after the handler returns;
  // the duplicate cache keeps its own copy).
  ByteView encoded_response;
  // defer: the response will come later via send_separate(). A CON request is
  // ACKed at once with an empty ACK.
  DeferredResponse defer();
  bool deferred() const { return deferred_; }

 private:
  bool deferred_ = false;
};
using RequestHandler = std::function<void(RequestContext&)>;

// SendStatus reports what became of a message sent with Endpoint::send.
enum class SendStatus { kAcked, kReset, kTimeout };
using SendCallback = std::function<void(SendStatus)>;

// ClientStatus: the outcome delivered to a request's callback.
enum class ClientStatus {
  kResponse,      // final response (block-wise bodies reassembled)
  kNotification,  // an Observe notification; more may follow
  kTimeout,       // no ACK after MAX_RETRANSMIT or no response in request_timeout
  kReset,         // the peer answered with RST
  kCancelled,     // cancelled by the caller
  kBadResponse,   // inconsistent block-wise transfer or body too large
  kGroupDone,     // a multicast request's collection time (its timeout) ended
};
const char* to_string(ClientStatus s);

struct ClientEvent {
  ClientStatus status = ClientStatus::kResponse;
  const Message* response = nullptr;  // set for kResponse / kNotification
  std::optional<uint32_t> observe;    // Observe sequence number of a notification
  const Address* from = nullptr;      // responder, for requests sent to a multicast group
};
using ResponseCallback = std::function<void(const ClientEvent&)>;

struct RequestOptions {
  bool confirmable = true;
  bool observe = false;     // register (Observe: 0); notifications arrive as kNotification
  size_t block1_size = 0;   // send the payload in blocks of this size (0: only if > 1024)
  size_t block2_size = 0;   // ask for Block2 of this size early (0: server's choice)
  std::optional<Duration> timeout;  // overrides request_timeout
  // token: use this token instead of a fresh one (a higher layer sending e.g.
  // the RFC 7641 §3.6 deregistration of an observation it registered).
  std::optional<Bytes> token;
};

class Endpoint {
 public:
  Endpoint(Clock& clock, Random& random, EndpointConfig config = {});
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // receive processes one datagram from `peer`. `multicast` says it was sent to
  // a multicast group address. Never fails: bad input is answered or dropped.
  void receive(ByteView datagram, const Address& peer, TimePoint now, bool multicast = false);
  // handle_timeout runs everything due at `now` (retransmissions, timeouts, timers).
  void handle_timeout(TimePoint now);
  // next_deadline is the earliest time handle_timeout has work, if any.
  std::optional<TimePoint> next_deadline();

  // transmits are the datagrams to send now; the I/O layer sends them and calls clear_transmits.
  std::span<const Transmit> transmits() const { return {transmits_.data(), num_transmits_}; }
  void clear_transmits() { num_transmits_ = 0; }

  // ---- server side ----
  void set_request_handler(RequestHandler h) { handler_ = std::move(h); }
  // send_separate sends the response to a deferred request (CON if the request
  // was CON, else NON), with the request's token. `done` (optional) reports the ACK.
  void send_separate(const DeferredResponse& to, Message response, SendCallback done = {});

  // ---- sending any message ----
  // send assigns a message ID to `msg` (CON or NON), sends it and, for CON,
  // retransmits until ACK/RST/timeout; `done` is called once with the outcome
  // (for NON only kReset can be reported, if the peer rejects it). Returns the MID.
  uint16_t send(const Address& peer, Message msg, SendCallback done = {});
  // send_encoded is send() for a message already encoded (e.g. OSCORE-protected):
  // `datagram` keeps its bytes, only its message ID (and a type other than CON,
  // which becomes NON) is rewritten in the header; no parse, no re-encode. A
  // datagram shorter than 4 bytes or not CoAP version 1 is not sent: `done` gets
  // kTimeout. Returns the MID.
  uint16_t send_encoded(const Address& peer, Bytes datagram, SendCallback done = {});

  // ---- client side ----
  // request sends `req` (code, options, payload; type/MID/token are assigned) and
  // calls `cb` with the outcome; to a multicast `peer` the request goes as NON and
  // every response is delivered (kResponse, with `from`) until the timeout, then
  // kGroupDone; for Observe it is called for every notification
  // until the exchange ends. Returns an id for cancel(). If too many exchanges are
  // open, `cb` gets kCancelled at once and 0 is returned.
  uint64_t request(const Address& peer, Message req, RequestOptions opts, ResponseCallback cb);
  // cancel ends a client exchange (cb gets kCancelled). For an Observe exchange
  // with deregister=true a GET with Observe: 1 is sent (RFC 7641 §3.6); otherwise
  // later notifications are rejected with RST.
  void cancel(uint64_t id, bool deregister = false);
  size_t num_exchanges() const { return exchanges_.size(); }

  // ---- timers for higher layers ----
  uint64_t schedule(TimePoint at, std::function<void(TimePoint)> fn);
  void cancel_timer(uint64_t id);

  Bytes make_token();
  uint16_t next_message_id() { return mid_++; }
  const EndpointConfig& config() const { return cfg_; }
  Clock& clock() { return clock_; }
  Random& random() { return random_; }

  struct Stats {
    uint64_t received = 0, malformed = 0, duplicates = 0, retransmissions = 0, sent = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Transmission;
  struct Exchange;
  struct PeerState;
  class DedupCache;
  struct Timer {
    TimePoint at;
    uint64_t id;
    bool operator>(const Timer& o) const { return at > o.at; }
  };

  Transmit& push_transmit(const Address& peer);
  void emit(const Address& peer, ByteView data);
  void emit_empty(const Address& peer, Type t, uint16_t mid);
  void handle_request(const MessageView& v, ByteView datagram, const Address& peer, TimePoint now, bool multicast,
                      bool reprocess);
  void handle_response(const MessageView& v, const Address& peer, TimePoint now);
  void handle_ack(const MessageView& v, const Address& peer, TimePoint now);
  void handle_rst(const MessageView& v, const Address& peer, TimePoint now);
  void send_reply(const Address& peer, const MessageView& req, Message& resp, bool multicast,
                  uint32_t no_response, TimePoint now, ByteView encoded = {});
  bool known_option(uint16_t n) const;
  // send_datagram: the tail of send / send_encoded (`datagram` carries `mid`).
  void send_datagram(const Address& peer, Type type, uint16_t mid, Bytes datagram, SendCallback done, TimePoint now);
  void transmit_con(const Address& peer, uint16_t mid, Bytes data, uint64_t exchange_id, SendCallback cb,
                    TimePoint now);
  void start_con(std::unique_ptr<Transmission> t, TimePoint now);
  void finish_con(uint16_t mid, SendStatus st, TimePoint now);
  void retransmit_or_fail(uint16_t mid, TimePoint now);
  void release_peer(const Address& peer, TimePoint now);
  uint64_t add_timer(TimePoint at, std::function<void(TimePoint)> fn);
  // client internals
  void send_exchange_part(Exchange& ex, TimePoint now);
  void deliver(Exchange& ex, const MessageView& v, const Address& from, TimePoint now);
  void finish_exchange(uint64_t id, ClientStatus st, const Message* resp = nullptr);
  void arm_exchange_timeout(Exchange& ex, TimePoint now);
  void on_exchange_transmission(uint64_t id, SendStatus st, TimePoint now);

  Clock& clock_;
  Random& random_;
  EndpointConfig cfg_;
  RequestHandler handler_;
  uint16_t mid_;
  uint64_t token_counter_;
  // jitter: the ACK_TIMEOUT randomisation of each CON (RFC 7252 §4.2) needs no
  // cryptographic randomness: a splitmix64 sequence seeded once from random_ (a
  // system call per CON with SystemRandom before).
  uint64_t jitter_state_ = 0;
  bool jitter_seeded_ = false;
  uint64_t jitter(uint64_t n);
  uint64_t next_id_ = 1;
  Stats stats_;

  std::vector<Transmit> transmits_;
  size_t num_transmits_ = 0;
  Message scratch_response_;
  Bytes scratch_bytes_;

  std::unique_ptr<DedupCache> dedup_;
  std::unordered_map<uint16_t, std::unique_ptr<Transmission>> cons_;  // outstanding CONs by MID
  std::unordered_map<uint16_t, std::pair<Address, SendCallback>> non_watch_;  // NONs awaiting possible RST
  std::deque<std::pair<TimePoint, uint16_t>> non_watch_order_;
  std::unordered_map<Address, PeerState, AddressHash> peers_;
  std::unordered_map<uint64_t, std::unique_ptr<Exchange>> exchanges_;
  std::unordered_map<uint64_t, uint64_t> token_to_exchange_;  // token (as u64) -> exchange id
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::unordered_map<uint64_t, std::function<void(TimePoint)>> timer_fns_;
};

}  // namespace acekdc::coap
