#include "oscore/secure_client.h"

#include <algorithm>
#include <vector>

#include "core/writer.h"

namespace acekdc::oscore {

namespace opt = cp::coap::option;
namespace ccode = cp::coap::code;

// kDefaultInnerBlock1: inner Block1 size when the caller gave none; leaves room
// for the OSCORE overhead so the outer message stays within one CoAP block.
static constexpr size_t kDefaultInnerBlock1 = 512;

struct SecureClient::Op {
  uint64_t id = 0;
  coap::Address peer;
  coap::Message req;  // the inner request as the caller gave it
  coap::RequestOptions opts;
  SecureCallback cb;
  Exchange ex;
  uint64_t ep_id = 0;
  Bytes token;  // the outer token the Endpoint chose (for a deregistration)
  // Block1 (inner): the request body is sent in blocks of block1_size
  bool block1 = false;
  size_t block1_size = 0;
  uint32_t block1_num = 0;
  // Block2 (inner): next block asked for, body so far
  bool block2 = false;
  uint32_t block2_num = 0;
  uint8_t block2_szx = 6;
  Bytes body;
  // Echo retry (one per request)
  bool echo_retried = false;
  Bytes echo;
  int b2_resends = 0;  // Appendix B.2 requests #2 sent for this request
};

SecureClient::SecureClient(coap::Endpoint& ep, B2Client& b2, SecureClientConfig cfg)
    : ep_(ep), b2_(&b2), cfg_(cfg) {
  out_buf_.resize(cfg_.max_message_len);
  in_buf_.resize(std::max(cfg_.max_message_len, cfg_.max_unfragmented_size));
}

Expected<size_t, Error> SecureClient::protect(const coap::Message& m, Exchange& ex) {
  return b2_ ? b2_->protect_request(m, out_buf_, ex) : session_->protect_request(m, out_buf_, ex);
}

void SecureClient::observe_protected(size_t len) {
  if (protect_observer_ && session_) protect_observer_(*session_, ByteView(out_buf_.data(), len));
}

SecureClient::SecureClient(coap::Endpoint& ep, Session& session, SecureClientConfig cfg)
    : ep_(ep), session_(&session), cfg_(cfg) {
  out_buf_.resize(cfg_.max_message_len);
  in_buf_.resize(std::max(cfg_.max_message_len, cfg_.max_unfragmented_size));
}

SecureClient::~SecureClient() {
  // The Endpoint may outlive us: end our exchanges without calling back into us.
  auto ops = std::move(ops_);
  ops_.clear();
  for (auto& [id, op] : ops) ep_.cancel(op->ep_id);
}

Expected<uint64_t, Error> SecureClient::request(const coap::Address& peer, coap::Message req,
                                                coap::RequestOptions opts, SecureCallback cb) {
  auto op = std::make_shared<Op>();
  op->id = next_id_++;
  op->peer = peer;
  op->opts = opts;
  op->cb = std::move(cb);
  req.remove(opt::kObserve);
  req.remove(opt::kBlock1);
  req.remove(opt::kBlock2);
  req.remove(opt::kEcho);
  op->req = std::move(req);
  const size_t b1 = opts.block1_size ? opts.block1_size : kDefaultInnerBlock1;
  if (op->req.payload.size() > b1) {
    op->block1 = true;
    op->block1_size = coap::BlockValue{0, false, coap::BlockValue::szx_for_size(b1)}.size();
  }
  if (cfg_.block2_size) {
    op->block2_szx = coap::BlockValue::szx_for_size(cfg_.block2_size);
    op->block2 = true;  // ask for this size from the first request on
  }
  // Registered first: the Endpoint may call back at once (e.g. kCancelled when
  // it has too many exchanges open).
  const uint64_t id = op->id;
  ops_.emplace(id, op);
  if (auto r = send(*op); !r) {
    ops_.erase(id);
    return unexpected(r.error());
  }
  return id;
}

// send protects the next request of `op` (next Block1 block, next Block2
// block, or the Echo resend) and hands it to the Endpoint.
Expected<void, Error> SecureClient::send(Op& op) {
  coap::Message m = op.req;
  m.type = op.opts.confirmable ? coap::Type::kCon : coap::Type::kNon;
  m.token.clear();
  m.message_id = 0;
  const bool first_part = op.block1_num == 0 && op.block2_num == 0;
  const bool observe = op.opts.observe && first_part;
  if (observe) m.set_uint(opt::kObserve, cp::coap::observe::kRegister);
  if (!op.echo.empty()) m.set_option(opt::kEcho, op.echo);
  if (op.block1) {
    const size_t off = size_t{op.block1_num} * op.block1_size;
    const size_t len = std::min(op.block1_size, op.req.payload.size() - off);
    const bool more = off + len < op.req.payload.size();
    m.payload.assign(op.req.payload.begin() + off, op.req.payload.begin() + off + len);
    const uint8_t szx = coap::BlockValue::szx_for_size(op.block1_size);
    m.set_uint(opt::kBlock1, coap::BlockValue{op.block1_num, more, szx}.encode());
    if (op.block1_num == 0) m.set_uint(opt::kSize1, static_cast<uint32_t>(op.req.payload.size()));
  }
  if (op.block2) {
    m.set_uint(opt::kBlock2, coap::BlockValue{op.block2_num, false, op.block2_szx}.encode());
    if (op.block2_num > 0) m.payload.clear();  // RFC 7959 §2.7: later Block2 requests carry no body
  }
  auto n = protect(m, op.ex);
  if (!n) return unexpected(n.error());
  observe_protected(*n);
  auto outer = coap::Message::parse(ByteView(out_buf_.data(), *n));
  if (!outer) return unexpected(Error::kMalformedMessage);
  coap::RequestOptions eopts = op.opts;
  eopts.observe = observe;
  eopts.block1_size = 0;  // block-wise transfer is inner (§4.1.3.4.1), never outer
  eopts.block2_size = 0;
  const uint64_t id = op.id;
  op.ep_id = ep_.request(op.peer, std::move(*outer), eopts,
                         [this, id](const coap::ClientEvent& ev) { on_event(id, ev); });
  return {};
}

void SecureClient::finish(uint64_t id, const SecureEvent& ev) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  std::shared_ptr<Op> op = std::move(it->second);
  ops_.erase(it);
  if (ev.status == coap::ClientStatus::kNotification || op->opts.observe) ep_.cancel(op->ep_id);
  if (op->cb) op->cb(ev);
}

void SecureClient::cancel(uint64_t id, bool deregister) {
  SecureEvent ev;
  ev.status = coap::ClientStatus::kCancelled;
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  std::shared_ptr<Op> op = std::move(it->second);
  ops_.erase(it);
  ep_.cancel(op->ep_id);  // its callback finds no op any more
  if (deregister && op->opts.observe && !op->token.empty()) {
    // RFC 7641 §3.6 under OSCORE: a new protected request (fresh Partial IV)
    // with Inner Observe: 1 and the registration's token.
    coap::Message m = op->req;
    m.type = op->opts.confirmable ? coap::Type::kCon : coap::Type::kNon;
    m.token.clear();
    m.payload.clear();
    m.set_uint(opt::kObserve, cp::coap::observe::kDeregister);
    Exchange ex;
    auto n = protect(m, ex);
    if (n) observe_protected(*n);
    auto outer = n ? coap::Message::parse(ByteView(out_buf_.data(), *n)) : unexpected(coap::Error::kTruncated);
    if (outer) {
      coap::RequestOptions o = op->opts;
      o.observe = false;
      o.block1_size = 0;
      o.block2_size = 0;
      o.token = op->token;
      ep_.request(op->peer, std::move(*outer), o, {});
    }
  }
  if (op->cb) op->cb(ev);
}

void SecureClient::on_event(uint64_t id, const coap::ClientEvent& ev) {
  // An observation outlives a key update: its notifications come under CTX_NEW
  // and the Session verifies them with CTX_NEW (then a retained CTX_OLD).
  on_event_inner(id, ev);
}

void SecureClient::on_event_inner(uint64_t id, const coap::ClientEvent& ev) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  std::shared_ptr<Op> keep = it->second;  // alive even if the callback cancels
  Op& op = *keep;
  const bool notification = ev.status == coap::ClientStatus::kNotification;
  if (ev.status != coap::ClientStatus::kResponse && !notification) {
    SecureEvent se;
    se.status = ev.status;
    finish(id, se);
    return;
  }
  if (!ev.response) return;
  op.token = ev.response->token;
  datagram_.clear();
  Writer w(datagram_);
  if (!ev.response->encode_into(w)) {
    if (notification) return;
    SecureEvent se;
    se.status = coap::ClientStatus::kBadResponse;
    se.error = Error::kMalformedMessage;
    finish(id, se);
    return;
  }
  if (datagram_.size() > cfg_.max_unfragmented_size) {
    // RFC 8613 §4.1.3.4.2: beyond MAX_UNFRAGMENTED_SIZE the message is discarded.
    if (notification) return;
    SecureEvent se;
    se.status = coap::ClientStatus::kBadResponse;
    se.error = Error::kBufferTooSmall;
    finish(id, se);
    return;
  }
  bool resend = false;
  Expected<size_t, Error> n = unexpected(Error::kBadState);
  if (b2_) {
    auto r = b2_->unprotect_response(datagram_, op.ex, in_buf_);
    if (r) {
      n = r->len;
      resend = r->action == B2Action::kResendRequest;
    } else {
      n = unexpected(r.error());
    }
  } else {
    n = session_->unprotect_response(datagram_, op.ex, in_buf_);
  }
  if (n && resend && !notification && op.b2_resends < 2) {
    // Appendix B.2: response #1 verified, not acted on; the same request again
    // becomes request #2 under CTX3.
    ++op.b2_resends;
    op.block1_num = 0;
    op.block2_num = 0;
    op.body.clear();
    if (auto r = send(op); !r) {
      SecureEvent se;
      se.status = coap::ClientStatus::kBadResponse;
      se.error = r.error();
      finish(id, se);
    }
    return;
  }
  if (n && resend) n = unexpected(Error::kBadState);  // response #1 again and again: give up
  if (!n) {
    // A notification that does not verify, or is older than the newest one
    // (§7.4.1), is dropped; the observation goes on.
    if (notification && n.error() != Error::kContextNotFound) return;
    SecureEvent se;
    se.status = coap::ClientStatus::kBadResponse;
    se.error = n.error();
    if (n.error() == Error::kContextNotFound) se.unprotected_response = ev.response;
    finish(id, se);
    return;
  }
  auto inner = coap::Message::parse(ByteView(in_buf_.data(), *n));
  if (!inner) {
    if (notification) return;
    SecureEvent se;
    se.status = coap::ClientStatus::kBadResponse;
    se.error = Error::kMalformedMessage;
    finish(id, se);
    return;
  }

  // Echo (RFC 9175 §2.3, Appendix B.1.2): resend once with the server's challenge.
  if (!notification && inner->code == ccode::kUnauthorized && !op.echo_retried) {
    if (const coap::Option* echo = inner->find(opt::kEcho)) {
      op.echo_retried = true;
      op.echo = echo->value;
      op.block1_num = 0;
      op.block2_num = 0;
      op.body.clear();
      if (auto r = send(op); !r) {
        SecureEvent se;
        se.status = coap::ClientStatus::kBadResponse;
        se.error = r.error();
        finish(id, se);
      }
      return;
    }
  }

  // Block1 (inner): 2.31 Continue asks for the next block.
  if (!notification && op.block1) {
    const coap::Option* b1o = inner->find(opt::kBlock1);
    const size_t sent_end = size_t{op.block1_num + 1} * op.block1_size;
    if (inner->code == ccode::kContinue && sent_end < op.req.payload.size()) {
      auto b1 = b1o ? coap::BlockValue::decode(b1o->value) : std::nullopt;
      if (!b1 || b1->num != op.block1_num) {
        SecureEvent se;
        se.status = coap::ClientStatus::kBadResponse;
        finish(id, se);
        return;
      }
      // the server may ask for smaller blocks (RFC 7959 §2.5)
      if (b1->size() < op.block1_size) {
        const size_t next_off = sent_end;
        op.block1_size = b1->size();
        op.block1_num = static_cast<uint32_t>(next_off / op.block1_size);
      } else {
        ++op.block1_num;
      }
      if (auto r = send(op); !r) {
        SecureEvent se;
        se.status = coap::ClientStatus::kBadResponse;
        se.error = r.error();
        finish(id, se);
      }
      return;
    }
  }

  // Block2 (inner): collect the body, ask for the next block.
  if (const coap::Option* b2o = inner->find(opt::kBlock2)) {
    auto b2 = coap::BlockValue::decode(b2o->value);
    const bool in_sequence = b2 && b2->offset() == op.body.size();
    if (!in_sequence || op.body.size() + inner->payload.size() > cfg_.max_body_size) {
      if (notification) return;
      SecureEvent se;
      se.status = coap::ClientStatus::kBadResponse;
      finish(id, se);
      return;
    }
    if (b2->more && notification) {
      // RFC 7959 §3.4: the rest of a large notification is fetched with GETs
      // for Block2 1, 2, ... (no Observe) in a child request; its body is
      // delivered to this observation as one notification.
      if (b2->num != 0) return;
      auto child = std::make_shared<Op>();
      child->id = next_id_++;
      child->peer = op.peer;
      child->req = op.req;
      child->opts = op.opts;
      child->opts.observe = false;
      child->echo = op.echo;
      child->block2 = true;
      child->block2_szx = b2->szx;
      child->block2_num = 1;
      child->body = inner->payload;
      const std::optional<uint32_t> seq = ev.observe;
      child->cb = [this, parent = id, seq](const SecureEvent& e) {
        auto pit = ops_.find(parent);
        if (pit == ops_.end() || e.status != coap::ClientStatus::kResponse || !e.response) return;
        std::shared_ptr<Op> keep_parent = pit->second;
        coap::Message full = *e.response;
        if (seq) full.set_uint(opt::kObserve, *seq);
        SecureEvent n = e;
        n.status = coap::ClientStatus::kNotification;
        n.observe = seq;
        n.response = &full;
        if (keep_parent->cb) keep_parent->cb(n);
      };
      const uint64_t child_id = child->id;
      ops_.emplace(child_id, child);
      if (!send(*child)) ops_.erase(child_id);
      return;
    }
    if (b2->more) {
      op.body.insert(op.body.end(), inner->payload.begin(), inner->payload.end());
      op.block2 = true;
      op.block2_szx = b2->szx;
      op.block2_num = b2->num + 1;
      op.opts.observe = false;  // the rest is fetched without Observe (RFC 7959 §3.4)
      if (auto r = send(op); !r) {
        SecureEvent se;
        se.status = coap::ClientStatus::kBadResponse;
        se.error = r.error();
        finish(id, se);
      }
      return;
    }
    if (!op.body.empty()) {
      op.body.insert(op.body.end(), inner->payload.begin(), inner->payload.end());
      inner->payload = std::move(op.body);
      op.body.clear();
    }
    inner->remove(opt::kBlock2);
  }

  SecureEvent se;
  se.status = ev.status;
  se.response = &*inner;
  se.observe = ev.observe;
  if (notification) {
    if (op.cb) op.cb(se);
    return;
  }
  // A registration answered with Observe: notifications follow on this exchange.
  if (op.opts.observe && inner->has(opt::kObserve) && coap::code_class(inner->code) == 2) {
    se.status = coap::ClientStatus::kNotification;
    se.observe = inner->get_uint(opt::kObserve);
    if (op.cb) op.cb(se);
    return;
  }
  finish(id, se);
}

}  // namespace acekdc::oscore
