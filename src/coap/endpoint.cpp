#include "coap/endpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace acekdc::coap {

const char* to_string(ClientStatus s) {
  switch (s) {
    case ClientStatus::kResponse: return "response";
    case ClientStatus::kNotification: return "notification";
    case ClientStatus::kTimeout: return "timeout";
    case ClientStatus::kReset: return "reset by peer";
    case ClientStatus::kCancelled: return "cancelled";
    case ClientStatus::kBadResponse: return "bad response";
    case ClientStatus::kGroupDone: return "group request finished";
  }
  return "?";
}

DeferredResponse RequestContext::defer() {
  deferred_ = true;
  DeferredResponse d;
  d.peer = peer;
  d.token = to_bytes(request.token);
  d.request_type = request.type;
  d.multicast = multicast;
  d.no_response = request.get_uint(option::kNoResponse).value_or(0);
  return d;
}

// ---- DedupCache: a ring of entries in arrival order indexed by an open-addressing table ----

class Endpoint::DedupCache {
 public:
  struct Entry {
    Address peer;
    uint16_t mid = 0;
    TimePoint expiry{};
    Bytes reply;  // what we answered (replayed for duplicates); empty: nothing
    bool reprocess = false;  // reply not kept (too large, idempotent request): run again
  };

  explicit DedupCache(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {
    size_t n = 1;
    while (n < 2 * ring_.size()) n <<= 1;
    table_.assign(n, 0);
    mask_ = n - 1;
  }

  // find: a table cell holds (home slot << 32) | (ring index + 1), 0 when free;
  // only cells whose home slot is this key's are compared with their entry.
  Entry* find(const Address& peer, uint16_t mid) {
    const size_t home = slot(peer, mid);
    for (size_t s = home;; s = (s + 1) & mask_) {
      const uint64_t v = table_[s];
      if (v == 0) return nullptr;
      if ((v >> 32) != home) continue;
      Entry& e = ring_[static_cast<uint32_t>(v) - 1];
      if (e.mid == mid && e.peer == peer) return &e;
    }
  }

  Entry& insert(const Address& peer, uint16_t mid, TimePoint expiry) {
    if (count_ == ring_.size()) evict_oldest();
    size_t idx = (head_ + count_) % ring_.size();
    ++count_;
    Entry& e = ring_[idx];
    e.peer = peer;
    e.mid = mid;
    e.expiry = expiry;
    e.reply.clear();
    e.reprocess = false;
    const size_t home = slot(peer, mid);
    size_t s = home;
    while (table_[s] != 0) s = (s + 1) & mask_;
    table_[s] = (uint64_t{home} << 32) | (idx + 1);
    return e;
  }

  void expire(TimePoint now) {
    while (count_ > 0 && ring_[head_].expiry <= now) evict_oldest();
  }
  size_t size() const { return count_; }

 private:
  size_t slot(const Address& peer, uint16_t mid) const {
    uint64_t h = (peer.hash() ^ (uint64_t{mid} * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return static_cast<size_t>(h >> 17) & mask_;
  }
  void evict_oldest() {
    Entry& e = ring_[head_];
    const uint64_t want = (uint64_t{slot(e.peer, e.mid)} << 32) | (head_ + 1);
    size_t s = static_cast<size_t>(want >> 32);
    while (table_[s] != want) s = (s + 1) & mask_;
    // backward-shift deletion keeps probe sequences intact (home slots come
    // from the table: no entry is read or hashed again)
    size_t j = s;
    table_[j] = 0;
    for (size_t k = (j + 1) & mask_; table_[k] != 0; k = (k + 1) & mask_) {
      const size_t home = static_cast<size_t>(table_[k] >> 32);
      bool stays = (j < k) ? (home > j && home <= k) : (home > j || home <= k);
      if (!stays) {
        table_[j] = table_[k];
        table_[k] = 0;
        j = k;
      }
    }
    head_ = (head_ + 1) % ring_.size();
    --count_;
  }

  std::vector<Entry> ring_;
  std::vector<uint64_t> table_;
  size_t mask_ = 0;
  size_t head_ = 0;
  size_t count_ = 0;
};

struct Endpoint::Transmission {
  Address peer;
  uint16_t mid = 0;
  Bytes data;
  Duration timeout{};
  int retransmits = 0;
  uint64_t exchange_id = 0;
  uint64_t timer_id = 0;
  SendCallback cb;
};

struct Endpoint::PeerState {
  int outstanding = 0;
  std::deque<std::unique_ptr<Transmission>> waiting;
};

struct Endpoint::Exchange {
  uint64_t id = 0;
  Address peer;
  Message req;
  RequestOptions opts;
  ResponseCallback cb;
  Bytes token;
  uint64_t token_key = 0;
  uint64_t timeout_timer = 0;
  uint16_t current_mid = 0;
  bool awaiting_ack = false;
  // Block1 (request body in blocks)
  bool block1_active = false;
  size_t block1_size = 0;
  uint32_t block1_num = 0;
  // Block2 (response body in blocks)
  bool block2_active = false;
  uint32_t block2_num = 0;
  uint8_t block2_szx = 6;
  Bytes body;
  // Observe
  bool observing = false;
  bool deregister = false;  // this request cancels an observation (Observe: 1)
  bool have_seq = false;
  uint32_t last_seq = 0;
  TimePoint last_seq_time{};
};

static uint64_t token_key(ByteView t) {
  uint64_t k = 0;
  for (uint8_t b : t) k = (k << 8) | b;
  return k ^ (uint64_t{t.size()} << 60);
}

Endpoint::Endpoint(Clock& clock, Random& random, EndpointConfig config)
    : clock_(clock), random_(random), cfg_(std::move(config)), dedup_(std::make_unique<DedupCache>(cfg_.dedup_capacity)) {
  uint8_t b[10];
  random_.fill(b);
  mid_ = static_cast<uint16_t>((b[0] << 8) | b[1]);
  token_counter_ = 0;
  for (int i = 2; i < 10; ++i) token_counter_ = (token_counter_ << 8) | b[i];
}

Endpoint::~Endpoint() = default;

uint64_t Endpoint::jitter(uint64_t n) {
  if (!jitter_seeded_) {
    uint8_t b[8];
    random_.fill(b);
    for (uint8_t x : b) jitter_state_ = (jitter_state_ << 8) | x;
    jitter_seeded_ = true;
  }
  uint64_t z = (jitter_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return n ? z % n : 0;  // n is ~1e6: the modulo bias (< 1e-13) does not matter here
}

Bytes Endpoint::make_token() {
  // 8-byte tokens: a random 64-bit start, then counting (unique per endpoint).
  uint64_t v = token_counter_++;
  Bytes t(8);
  for (int i = 0; i < 8; ++i) t[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  return t;
}

// ---- output ----

Transmit& Endpoint::push_transmit(const Address& peer) {
  if (num_transmits_ == transmits_.size()) transmits_.emplace_back();
  Transmit& t = transmits_[num_transmits_++];
  t.peer = peer;
  ++stats_.sent;
  return t;
}

void Endpoint::emit(const Address& peer, ByteView data) {
  Transmit& t = push_transmit(peer);
  t.data.assign(data.begin(), data.end());
}

void Endpoint::emit_empty(const Address& peer, Type type, uint16_t mid) {
  uint8_t h[4] = {static_cast<uint8_t>((cp::coap::kVersion << 6) | (static_cast<uint8_t>(type) << 4)), 0,
                  static_cast<uint8_t>(mid >> 8), static_cast<uint8_t>(mid)};
  emit(peer, ByteView(h, 4));
}

// ---- timers ----

uint64_t Endpoint::add_timer(TimePoint at, std::function<void(TimePoint)> fn) {
  uint64_t id = next_id_++;
  timer_fns_.emplace(id, std::move(fn));
  timers_.push(Timer{at, id});
  return id;
}

uint64_t Endpoint::schedule(TimePoint at, std::function<void(TimePoint)> fn) { return add_timer(at, std::move(fn)); }

void Endpoint::cancel_timer(uint64_t id) { timer_fns_.erase(id); }

std::optional<TimePoint> Endpoint::next_deadline() {
  while (!timers_.empty() && !timer_fns_.count(timers_.top().id)) timers_.pop();
  if (timers_.empty()) return std::nullopt;
  return timers_.top().at;
}

void Endpoint::handle_timeout(TimePoint now) {
  dedup_->expire(now);
  while (!non_watch_order_.empty() && non_watch_order_.front().first <= now) {
    non_watch_.erase(non_watch_order_.front().second);
    non_watch_order_.pop_front();
  }
  while (!timers_.empty() && timers_.top().at <= now) {
    Timer t = timers_.top();
    timers_.pop();
    auto it = timer_fns_.find(t.id);
    if (it == timer_fns_.end()) continue;
    auto fn = std::move(it->second);
    timer_fns_.erase(it);
    fn(now);
  }
}

// ---- receive ----

bool Endpoint::known_option(uint16_t n) const {
  if (is_known_option(n)) return true;
  return std::find(cfg_.extra_known_options.begin(), cfg_.extra_known_options.end(), n) !=
         cfg_.extra_known_options.end();
}

// has_unknown_critical: RFC 7252 §5.4.1, a message with an unrecognized critical option is rejected.
static bool has_unknown_critical(const MessageView& v, const std::function<bool(uint16_t)>& known) {
  for (const OptionView& o : v.options())
    if (is_critical(o.number) && !known(o.number)) return true;
  return false;
}

void Endpoint::receive(ByteView datagram, const Address& peer, TimePoint now, bool multicast) {
  ++stats_.received;
  auto parsed = MessageView::parse(datagram, cfg_.limits);
  if (!parsed) {
    ++stats_.malformed;
    Type t;
    uint16_t mid;
    // RFC 7252 §4.2: a malformed CON is rejected with RST; anything else is dropped.
    if (!multicast && MessageView::peek_header(datagram, t, mid) && t == Type::kCon && (datagram[0] >> 6) == 1)
      emit_empty(peer, Type::kRst, mid);
    return;
  }
  const MessageView& v = *parsed;
  switch (v.type) {
    case Type::kAck:
      if (is_request(v.code)) return;  // a request in an ACK is malformed: drop
      handle_ack(v, peer, now);
      return;
    case Type::kRst:
      if (!is_empty(v.code)) return;
      handle_rst(v, peer, now);
      return;
    case Type::kCon:
    case Type::kNon:
      break;
  }
  if (is_empty(v.code)) {
    if (v.type == Type::kCon && !multicast) emit_empty(peer, Type::kRst, v.message_id);  // CoAP ping
    return;
  }
  if (!is_request(v.code) && !is_response(v.code)) {
    // reserved code classes 1, 6, 7: reject CON, drop NON
    if (v.type == Type::kCon && !multicast) emit_empty(peer, Type::kRst, v.message_id);
    return;
  }
  bool reprocess = false;
  if (DedupCache::Entry* e = dedup_->find(peer, v.message_id)) {
    if (e->expiry > now) {
      ++stats_.duplicates;
      if (!e->reprocess) {
        if (!e->reply.empty()) emit(peer, e->reply);
        return;
      }
      reprocess = true;  // idempotent request with a reply too large to keep: answer again
    }
  }
  if (is_request(v.code)) {
    handle_request(v, datagram, peer, now, multicast, reprocess);
  } else {
    handle_response(v, peer, now);
  }
}

void Endpoint::handle_request(const MessageView& v, ByteView datagram, const Address& peer, TimePoint now,
                              bool multicast, bool reprocess) {
  if (multicast && v.type == Type::kCon) return;  // RFC 7252 §8.1: CON must not go to multicast
  if (!reprocess) {
    dedup_->expire(now);
    dedup_->insert(peer, v.message_id, now + (v.type == Type::kCon ? cfg_.exchange_lifetime : cfg_.non_lifetime));
  }
  Message& resp = scratch_response_;
  resp.code = 0;
  resp.clear_options();
  resp.payload.clear();
  uint32_t no_response = 0;
  if (auto nr = v.get_uint(option::kNoResponse)) no_response = *nr;

  for (const OptionView& o : v.options()) {
    if (is_critical(o.number) && !known_option(o.number)) {
      // RFC 7252 §5.4.1: unrecognized critical option in a request -> 4.02
      resp.code = code::kBadOption;
      resp.set_payload("Unrecognized critical option " + std::to_string(o.number));
      send_reply(peer, v, resp, multicast, no_response, now);
      return;
    }
  }
  RequestContext ctx(v, peer, multicast, resp, now);
  ctx.datagram = datagram;
  if (handler_) {
    handler_(ctx);
  } else {
    resp.code = code::kNotFound;
  }
  if (ctx.deferred()) {
    if (v.type == Type::kCon) {
      DedupCache::Entry* e = dedup_->find(peer, v.message_id);
      uint8_t h[4] = {static_cast<uint8_t>(0x40 | (static_cast<uint8_t>(Type::kAck) << 4)), 0,
                      static_cast<uint8_t>(v.message_id >> 8), static_cast<uint8_t>(v.message_id)};
      if (e) e->reply.assign(h, h + 4);
      emit(peer, ByteView(h, 4));
    }
    return;
  }
  send_reply(peer, v, resp, multicast, no_response, now, ctx.encoded_response);
}

static bool suppressed(uint8_t response_code, uint32_t no_response) {
  // RFC 7967 §2.1: bit 2 = 2.xx, bit 8 = 4.xx, bit 16 = 5.xx
  switch (code_class(response_code)) {
    case 2: return no_response & 0x02;
    case 4: return no_response & 0x08;
    case 5: return no_response & 0x10;
    default: return false;
  }
}

// encoded_reply_ok: `d` is a datagram (version 1) carrying exactly `token`.
static bool encoded_reply_ok(ByteView d, ByteView token) {
  if (d.size() < 4 || (d[0] >> 6) != cp::coap::kVersion || (d[0] & 0x0f) != token.size() ||
      d.size() < 4 + token.size()) {
    return false;
  }
  return token.empty() || std::memcmp(d.data() + 4, token.data(), token.size()) == 0;
}

// encoded_reply_malformed: `d` carries the request's token but is not a whole,
// well-formed response (RFC 7252 §3; a request or Empty code counts as malformed):
// it is never sent.
static bool encoded_reply_malformed(ByteView d) {
  auto v = MessageView::parse(d);
  return !v || code_class(v->code) < 2;
}

void Endpoint::send_reply(const Address& peer, const MessageView& req, Message& resp, bool multicast,
                          uint32_t no_response, TimePoint now, ByteView encoded) {
  DedupCache::Entry* e = dedup_->find(peer, req.message_id);
  bool suppress = resp.code == 0 || suppressed(resp.code, no_response) ||
                  // RFC 7252 §8.2: error responses to multicast requests are not sent
                  (multicast && (code_class(resp.code) == 4 || code_class(resp.code) == 5));
  if (suppress) {
    if (req.type == Type::kCon) {
      emit_empty(peer, Type::kAck, req.message_id);
      if (e) e->reply = transmits_[num_transmits_ - 1].data;
    }
    return;
  }
  resp.type = req.type == Type::kCon ? Type::kAck : Type::kNon;
  resp.message_id = req.type == Type::kCon ? req.message_id : next_message_id();
  resp.token.assign(req.token.begin(), req.token.end());
  Bytes& out = e ? e->reply : scratch_bytes_;
  out.clear();
  Writer w(out);
  const bool use_encoded = !encoded.empty() && encoded_reply_ok(encoded, req.token);
  if (use_encoded && encoded_reply_malformed(encoded)) {
    // never on the wire: a 5.00 instead (as for a response that cannot be encoded)
    resp.clear_options();
    resp.code = code::kInternalServerError;
    resp.payload.clear();
    (void)resp.encode_into(w);
  } else if (use_encoded) {
    // already encoded (RequestContext::encoded_response): only type and message ID change
    out.assign(encoded.begin(), encoded.end());
    out[0] = static_cast<uint8_t>((out[0] & 0xcf) | (static_cast<uint8_t>(resp.type) << 4));
    out[2] = static_cast<uint8_t>(resp.message_id >> 8);
    out[3] = static_cast<uint8_t>(resp.message_id);
  } else if (!resp.encode_into(w)) {
    out.clear();
    resp.clear_options();
    resp.code = code::kInternalServerError;
    resp.payload.clear();
    Writer w2(out);
    (void)resp.encode_into(w2);
  }
  // Bound per-exchange state: a reply larger than max_cached_reply_size to an
  // idempotent request (GET, PUT, DELETE, FETCH, iPATCH) is not kept; a duplicate
  // is processed again instead (RFC 7252 §4.5 allows this for idempotent requests).
  bool idempotent = req.code == code::kGet || req.code == code::kPut || req.code == code::kDelete ||
                    req.code == code::kFetch || req.code == code::kIPatch;
  idempotent = idempotent && !req.has(option::kBlock1);  // Block1 state must not see a block twice
  // An OSCORE request cannot be processed twice (replay protection, RFC 8613 §7.4).
  idempotent = idempotent && !req.has(option::kOscore);
  bool keep = !(out.size() > cfg_.max_cached_reply_size && idempotent);
  if (e) e->reprocess = !keep;
  if (multicast) {
    // RFC 7252 §8.2: spread responses over Leisure
    auto ms = std::chrono::duration_cast<milliseconds>(cfg_.leisure).count();
    Duration delay = ms > 0 ? milliseconds(random_.uniform(static_cast<uint64_t>(ms))) : Duration{};
    Bytes copy = out;
    add_timer(now + delay, [this, peer, copy = std::move(copy)](TimePoint) { emit(peer, copy); });
  } else {
    emit(peer, out);
  }
  if (e && !keep) {
    e->reply.clear();
    e->reply.shrink_to_fit();
  }
}

void Endpoint::send_separate(const DeferredResponse& to, Message response, SendCallback done) {
  if (response.code == 0 || suppressed(response.code, to.no_response) ||
      (to.multicast && (code_class(response.code) == 4 || code_class(response.code) == 5)))
    return;
  response.token = to.token;
  response.type = to.request_type == Type::kCon ? Type::kCon : Type::kNon;
  send(to.peer, std::move(response), std::move(done));
}

// ---- sending ----

uint16_t Endpoint::send(const Address& peer, Message msg, SendCallback done) {
  TimePoint now = clock_.now();
  msg.message_id = next_message_id();
  if (msg.type != Type::kCon) msg.type = Type::kNon;
  auto enc = msg.encode();
  if (!enc) {
    if (done) done(SendStatus::kTimeout);
    return msg.message_id;
  }
  send_datagram(peer, msg.type, msg.message_id, std::move(*enc), std::move(done), now);
  return msg.message_id;
}

uint16_t Endpoint::send_encoded(const Address& peer, Bytes datagram, SendCallback done) {
  TimePoint now = clock_.now();
  const uint16_t mid = next_message_id();
  if (datagram.size() < 4 || (datagram[0] >> 6) != cp::coap::kVersion) {
    if (done) done(SendStatus::kTimeout);
    return mid;
  }
  Type type = static_cast<Type>((datagram[0] >> 4) & 0x03);
  if (type != Type::kCon) type = Type::kNon;
  datagram[0] = static_cast<uint8_t>((datagram[0] & 0xcf) | (static_cast<uint8_t>(type) << 4));
  datagram[2] = static_cast<uint8_t>(mid >> 8);
  datagram[3] = static_cast<uint8_t>(mid);
  send_datagram(peer, type, mid, std::move(datagram), std::move(done), now);
  return mid;
}

void Endpoint::send_datagram(const Address& peer, Type type, uint16_t mid, Bytes datagram, SendCallback done,
                             TimePoint now) {
  if (type == Type::kCon) {
    transmit_con(peer, mid, std::move(datagram), 0, std::move(done), now);
  } else {
    emit(peer, datagram);
    if (done) {
      non_watch_[mid] = {peer, std::move(done)};
      non_watch_order_.emplace_back(now + cfg_.non_lifetime, mid);
      while (non_watch_order_.size() > cfg_.dedup_capacity) {
        non_watch_.erase(non_watch_order_.front().second);
        non_watch_order_.pop_front();
      }
    }
  }
}

void Endpoint::transmit_con(const Address& peer, uint16_t mid, Bytes data, uint64_t exchange_id, SendCallback cb,
                            TimePoint now) {
  auto t = std::make_unique<Transmission>();
  t->peer = peer;
  t->mid = mid;
  t->data = std::move(data);
  t->exchange_id = exchange_id;
  t->cb = std::move(cb);
  PeerState& ps = peers_[peer];
  if (ps.outstanding >= std::max(cfg_.nstart, 1)) {
    if (ps.waiting.size() >= cfg_.max_queued_per_peer) {
      // queue full: report as timeout without sending
      if (t->exchange_id) on_exchange_transmission(t->exchange_id, SendStatus::kTimeout, now);
      if (t->cb) t->cb(SendStatus::kTimeout);
      return;
    }
    ps.waiting.push_back(std::move(t));
    return;
  }
  start_con(std::move(t), now);
}

void Endpoint::start_con(std::unique_ptr<Transmission> t, TimePoint now) {
  ++peers_[t->peer].outstanding;
  // RFC 7252 §4.2: initial timeout random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]
  double f = 1.0;
  if (cfg_.ack_random_factor > 1.0) f += (cfg_.ack_random_factor - 1.0) * (jitter(1000001) / 1e6);
  t->timeout = std::chrono::duration_cast<Duration>(cfg_.ack_timeout * f);
  emit(t->peer, t->data);
  uint16_t mid = t->mid;
  if (cons_.count(mid)) finish_con(mid, SendStatus::kTimeout, now);  // MID space wrapped
  Transmission* raw = t.get();
  cons_.emplace(mid, std::move(t));
  raw->timer_id = add_timer(now + raw->timeout, [this, mid](TimePoint at) { retransmit_or_fail(mid, at); });
}

void Endpoint::retransmit_or_fail(uint16_t mid, TimePoint now) {
  auto it = cons_.find(mid);
  if (it == cons_.end()) return;
  Transmission& tr = *it->second;
  if (tr.retransmits >= cfg_.max_retransmit) {
    finish_con(mid, SendStatus::kTimeout, now);
    return;
  }
  ++tr.retransmits;
  ++stats_.retransmissions;
  tr.timeout *= 2;
  emit(tr.peer, tr.data);
  tr.timer_id = add_timer(now + tr.timeout, [this, mid](TimePoint at) { retransmit_or_fail(mid, at); });
}

void Endpoint::finish_con(uint16_t mid, SendStatus st, TimePoint now) {
  auto it = cons_.find(mid);
  if (it == cons_.end()) return;
  std::unique_ptr<Transmission> t = std::move(it->second);
  cons_.erase(it);
  cancel_timer(t->timer_id);
  if (t->cb) t->cb(st);
  if (t->exchange_id) on_exchange_transmission(t->exchange_id, st, now);
  release_peer(t->peer, now);
}

void Endpoint::release_peer(const Address& peer, TimePoint now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  PeerState& ps = it->second;
  if (ps.outstanding > 0) --ps.outstanding;
  if (!ps.waiting.empty() && ps.outstanding < std::max(cfg_.nstart, 1)) {
    auto next = std::move(ps.waiting.front());
    ps.waiting.pop_front();
    start_con(std::move(next), now);
    return;
  }
  if (ps.outstanding == 0 && ps.waiting.empty()) peers_.erase(it);
}

void Endpoint::handle_ack(const MessageView& v, const Address& peer, TimePoint now) {
  auto it = cons_.find(v.message_id);
  if (it == cons_.end() || it->second->peer != peer) {
    // an ACK for nothing we sent (or a late duplicate ACK): a piggybacked response
    // may still match an exchange whose request was already ACKed; else drop.
    return;
  }
  uint64_t ex_id = it->second->exchange_id;
  finish_con(v.message_id, SendStatus::kAcked, now);
  if (is_response(v.code) && ex_id &&
      has_unknown_critical(v, [this](uint16_t n) { return known_option(n); })) {
    finish_exchange(ex_id, ClientStatus::kBadResponse);  // cannot RST an ACK: reject silently
    return;
  }
  if (is_response(v.code) && ex_id) {
    auto ex = exchanges_.find(ex_id);
    if (ex != exchanges_.end() && equal(ex->second->token, v.token)) deliver(*ex->second, v, peer, now);
  }
}

void Endpoint::handle_rst(const MessageView& v, const Address& peer, TimePoint now) {
  auto it = cons_.find(v.message_id);
  if (it != cons_.end() && it->second->peer == peer) {
    finish_con(v.message_id, SendStatus::kReset, now);
    return;
  }
  auto nw = non_watch_.find(v.message_id);
  if (nw != non_watch_.end() && nw->second.first == peer) {
    auto cb = std::move(nw->second.second);
    non_watch_.erase(nw);
    if (cb) cb(SendStatus::kReset);
  }
}

// ---- client ----

uint64_t Endpoint::request(const Address& peer, Message req, RequestOptions opts, ResponseCallback cb) {
  TimePoint now = clock_.now();
  if (exchanges_.size() >= cfg_.max_client_exchanges) {
    ClientEvent ev;
    ev.status = ClientStatus::kCancelled;
    if (cb) cb(ev);
    return 0;
  }
  auto ex = std::make_unique<Exchange>();
  ex->id = next_id_++;
  ex->peer = peer;
  ex->req = std::move(req);
  ex->req.remove(option::kObserve);
  ex->req.remove(option::kBlock1);
  ex->req.remove(option::kBlock2);
  ex->opts = opts;
  ex->cb = std::move(cb);
  ex->token = opts.token && opts.token->size() <= kMaxTokenLen ? *opts.token : make_token();
  ex->token_key = token_key(ex->token);
  size_t b1 = opts.block1_size ? opts.block1_size : 1024;
  if (ex->req.payload.size() > b1 || (opts.block1_size && !ex->req.payload.empty())) {
    ex->block1_active = true;
    ex->block1_size = BlockValue{0, false, BlockValue::szx_for_size(b1)}.size();
  }
  if (opts.block2_size) ex->block2_szx = BlockValue::szx_for_size(opts.block2_size);
  ex->observing = opts.observe;
  if (peer.is_multicast()) {
    ex->opts.confirmable = false;  // RFC 7252 §8.1: multicast requests are NON
    ex->block1_active = false;
  }
  uint64_t id = ex->id;
  token_to_exchange_[ex->token_key] = id;
  Exchange& ref = *ex;
  exchanges_.emplace(id, std::move(ex));
  send_exchange_part(ref, now);
  return id;
}

void Endpoint::send_exchange_part(Exchange& ex, TimePoint now) {
  Message m = ex.req;
  m.type = ex.opts.confirmable ? Type::kCon : Type::kNon;
  m.message_id = next_message_id();
  m.token = ex.token;
  if (ex.block1_active) {
    size_t off = size_t{ex.block1_num} * ex.block1_size;
    size_t len = std::min(ex.block1_size, ex.req.payload.size() - std::min(off, ex.req.payload.size()));
    bool more = off + len < ex.req.payload.size();
    m.payload.assign(ex.req.payload.begin() + off, ex.req.payload.begin() + off + len);
    m.add_uint(option::kBlock1,
               BlockValue{ex.block1_num, more, BlockValue::szx_for_size(ex.block1_size)}.encode());
    if (ex.block1_num == 0) m.add_uint(option::kSize1, static_cast<uint32_t>(ex.req.payload.size()));
    if (ex.observing) m.add_uint(option::kObserve, cp::coap::observe::kRegister);
    if (!more && ex.opts.block2_size) m.add_uint(option::kBlock2, BlockValue{0, false, ex.block2_szx}.encode());
  } else if (ex.block2_active) {
    // follow-up request for the next block: same request, no Observe (RFC 7959 §2.4, RFC 7641 §3.6)
    if (m.code != code::kFetch) m.payload.clear();
    m.add_uint(option::kBlock2, BlockValue{ex.block2_num, false, ex.block2_szx}.encode());
  } else {
    if (ex.observing) m.add_uint(option::kObserve, cp::coap::observe::kRegister);
    if (ex.deregister) m.add_uint(option::kObserve, cp::coap::observe::kDeregister);
    if (ex.opts.block2_size) m.add_uint(option::kBlock2, BlockValue{0, false, ex.block2_szx}.encode());
  }
  auto enc = m.encode();
  if (!enc) {
    finish_exchange(ex.id, ClientStatus::kBadResponse);
    return;
  }
  ex.current_mid = m.message_id;
  if (m.type == Type::kCon) {
    ex.awaiting_ack = true;
    transmit_con(ex.peer, m.message_id, std::move(*enc), ex.id, {}, now);
  } else {
    emit(ex.peer, *enc);
    arm_exchange_timeout(ex, now);
  }
}

void Endpoint::arm_exchange_timeout(Exchange& ex, TimePoint now) {
  cancel_timer(ex.timeout_timer);
  ex.timeout_timer = 0;
  if (ex.observing && ex.have_seq && !ex.block2_active) return;  // an established observation has no timeout
  Duration d = ex.opts.timeout.value_or(cfg_.request_timeout);
  uint64_t id = ex.id;
  ClientStatus st = ex.peer.is_multicast() ? ClientStatus::kGroupDone : ClientStatus::kTimeout;
  ex.timeout_timer = add_timer(now + d, [this, id, st](TimePoint) { finish_exchange(id, st); });
}

void Endpoint::on_exchange_transmission(uint64_t id, SendStatus st, TimePoint now) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  Exchange& ex = *it->second;
  ex.awaiting_ack = false;
  if (st == SendStatus::kTimeout) {
    finish_exchange(id, ClientStatus::kTimeout);
  } else if (st == SendStatus::kReset) {
    finish_exchange(id, ClientStatus::kReset);
  } else {
    arm_exchange_timeout(ex, now);  // separate response may follow
  }
}

void Endpoint::handle_response(const MessageView& v, const Address& peer, TimePoint now) {
  DedupCache::Entry* e = dedup_->find(peer, v.message_id);
  if (!e) e = &dedup_->insert(peer, v.message_id, now + (v.type == Type::kCon ? cfg_.exchange_lifetime : cfg_.non_lifetime));
  auto tk = token_to_exchange_.find(token_key(v.token));
  Exchange* ex = nullptr;
  if (tk != token_to_exchange_.end()) {
    auto it = exchanges_.find(tk->second);
    if (it != exchanges_.end() && (it->second->peer == peer || it->second->peer.is_multicast()) &&
        equal(it->second->token, v.token))
      ex = it->second.get();
  }
  bool bad_option = ex && has_unknown_critical(v, [this](uint16_t n) { return known_option(n); });
  if (!ex || bad_option) {
    // RFC 7252 §4.2/§4.3 and RFC 7641 §3.6: reject a response we do not expect
    // or cannot process (unrecognized critical option, §5.4.1)
    emit_empty(peer, Type::kRst, v.message_id);
    e->reply = transmits_[num_transmits_ - 1].data;
    if (bad_option) finish_exchange(ex->id, ClientStatus::kBadResponse);
    return;
  }
  if (v.type == Type::kCon) {
    emit_empty(peer, Type::kAck, v.message_id);
    e->reply = transmits_[num_transmits_ - 1].data;
  }
  if (ex->peer.is_multicast()) {
    auto it = exchanges_.find(tk->second);
    if (it != exchanges_.end()) deliver(*it->second, v, peer, now);
    return;
  }
  // a separate response also ends the wait for an ACK of the request (RFC 7252 §5.2.2)
  if (ex->awaiting_ack) finish_con(ex->current_mid, SendStatus::kAcked, now);
  auto it = exchanges_.find(tk->second);
  if (it != exchanges_.end()) deliver(*it->second, v, peer, now);
}

static bool observe_fresh(uint32_t v1, TimePoint t1, uint32_t v2, TimePoint t2) {
  // RFC 7641 §3.4
  constexpr uint32_t kHalf = 1u << 23;
  return (v1 < v2 && v2 - v1 < kHalf) || (v1 > v2 && v1 - v2 > kHalf) ||
         t2 > t1 + seconds(cp::coap::observe::kReorderWindowS);
}

void Endpoint::deliver(Exchange& ex, const MessageView& v, const Address& from, TimePoint now) {
  uint64_t id = ex.id;
  if (ex.peer.is_multicast()) {
    // group request (RFC 7252 §8.2): every response is delivered with its sender;
    // the exchange collects until its timeout, then reports kGroupDone.
    Message resp = Message::from_view(v);
    ClientEvent ev{ClientStatus::kResponse, &resp, v.get_uint(option::kObserve)};
    ev.from = &from;
    auto cb = ex.cb;
    if (cb) cb(ev);
    return;
  }
  cancel_timer(ex.timeout_timer);
  ex.timeout_timer = 0;
  // Block1: the server asks for the next block
  if (ex.block1_active) {
    if (v.code == code::kContinue) {
      auto b1o = v.find(option::kBlock1);
      auto b1 = b1o ? BlockValue::decode(b1o->value) : std::nullopt;
      if (!b1 || b1->num != ex.block1_num) {
        finish_exchange(id, ClientStatus::kBadResponse);
        return;
      }
      size_t next_off = size_t{ex.block1_num + 1} * ex.block1_size;
      if (b1->size() < ex.block1_size) ex.block1_size = b1->size();  // server asked for smaller blocks
      if (next_off >= ex.req.payload.size()) {
        finish_exchange(id, ClientStatus::kBadResponse);
        return;
      }
      ex.block1_num = static_cast<uint32_t>(next_off / ex.block1_size);
      send_exchange_part(ex, now);
      return;
    }
    if (v.code == code::kRequestEntityTooLarge && ex.block1_num == 0) {
      // RFC 7959 §2.9.3: retry with the block size the server suggests
      auto b1o = v.find(option::kBlock1);
      auto b1 = b1o ? BlockValue::decode(b1o->value) : std::nullopt;
      if (b1 && b1->size() < ex.block1_size) {
        ex.block1_size = b1->size();
        send_exchange_part(ex, now);
        return;
      }
    }
    ex.block1_active = false;
  }
  bool is_notification = false;
  std::optional<uint32_t> seq;
  if (ex.observing && code_class(v.code) == 2) {
    if (auto obs = v.get_uint(option::kObserve)) {
      seq = *obs;
      is_notification = true;
      if (ex.have_seq && !ex.block2_active && !observe_fresh(ex.last_seq, ex.last_seq_time, *obs, now)) {
        arm_exchange_timeout(ex, now);
        return;  // stale notification (reordered): ignore
      }
      ex.have_seq = true;
      ex.last_seq = *obs;
      ex.last_seq_time = now;
    }
  }
  // Block2
  if (auto b2o = v.find(option::kBlock2); b2o && code_class(v.code) == 2) {
    auto b2 = BlockValue::decode(b2o->value);
    if (!b2) {
      finish_exchange(id, ClientStatus::kBadResponse);
      return;
    }
    if (b2->num == 0) ex.body.clear();
    if (b2->offset() != ex.body.size() || ex.body.size() + v.payload.size() > cfg_.max_body_size) {
      finish_exchange(id, ClientStatus::kBadResponse);
      return;
    }
    ex.body.insert(ex.body.end(), v.payload.begin(), v.payload.end());
    if (b2->more) {
      ex.block2_active = true;
      ex.block2_szx = b2->szx;
      ex.block2_num = static_cast<uint32_t>(ex.body.size() / b2->size());
      if (ex.block2_num * b2->size() != ex.body.size()) {
        finish_exchange(id, ClientStatus::kBadResponse);
        return;
      }
      send_exchange_part(ex, now);
      return;
    }
    Message full = Message::from_view(v);
    full.payload = std::move(ex.body);
    ex.body.clear();
    ex.block2_active = false;
    if (ex.observing && (is_notification || ex.have_seq) && !full.has(option::kObserve) && seq) {
      full.set_uint(option::kObserve, *seq);
    }
    bool still_observing = ex.observing && ex.have_seq;
    if (still_observing) {
      ClientEvent ev{ClientStatus::kNotification, &full, ex.last_seq};
      auto cb = ex.cb;
      arm_exchange_timeout(ex, now);
      if (cb) cb(ev);
      return;
    }
    finish_exchange(id, ClientStatus::kResponse, &full);
    return;
  }
  ex.block2_active = false;
  Message resp = Message::from_view(v);
  if (is_notification) {
    ClientEvent ev{ClientStatus::kNotification, &resp, seq};
    auto cb = ex.cb;
    arm_exchange_timeout(ex, now);
    if (cb) cb(ev);
    return;
  }
  finish_exchange(id, ClientStatus::kResponse, &resp);
}

void Endpoint::finish_exchange(uint64_t id, ClientStatus st, const Message* resp) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  std::unique_ptr<Exchange> ex = std::move(it->second);
  exchanges_.erase(it);
  cancel_timer(ex->timeout_timer);
  auto tk = token_to_exchange_.find(ex->token_key);
  if (tk != token_to_exchange_.end() && tk->second == id) token_to_exchange_.erase(tk);
  if (ex->awaiting_ack) {
    auto c = cons_.find(ex->current_mid);
    if (c != cons_.end() && c->second->exchange_id == id) c->second->exchange_id = 0;
  }
  if (ex->cb) {
    ClientEvent ev;
    ev.status = st;
    ev.response = resp;
    if (resp) ev.observe = resp->get_uint(option::kObserve);
    ex->cb(ev);
  }
}

void Endpoint::cancel(uint64_t id, bool deregister) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  Exchange& ex = *it->second;
  if (deregister && ex.observing) {
    // RFC 7641 §3.6: GET with Observe: 1 and the same token; its response is
    // consumed silently by a callback-less exchange.
    auto dx = std::make_unique<Exchange>();
    dx->id = next_id_++;
    dx->peer = ex.peer;
    dx->req = ex.req;
    dx->opts = ex.opts;
    dx->opts.observe = false;
    dx->deregister = true;
    dx->token = ex.token;
    dx->token_key = ex.token_key;
    finish_exchange(id, ClientStatus::kCancelled);
    token_to_exchange_[dx->token_key] = dx->id;
    Exchange& ref = *dx;
    exchanges_.emplace(dx->id, std::move(dx));
    send_exchange_part(ref, clock_.now());
    return;
  }
  finish_exchange(id, ClientStatus::kCancelled);
}

}  // namespace acekdc::coap
