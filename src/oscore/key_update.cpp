#include "oscore/key_update.h"

#include <algorithm>
#include <cstring>

namespace acekdc::oscore {

const char* to_string(KeyUpdateState s) {
  switch (s) {
    case KeyUpdateState::kIdle: return "idle";
    case KeyUpdateState::kClientAwaitingR2: return "client awaiting R2";
    case KeyUpdateState::kServerAwaitingConfirm: return "server awaiting key confirmation";
    case KeyUpdateState::kServerSentR1: return "server sent R1";
    case KeyUpdateState::kClientHasNew: return "client has CTX_NEW";
  }
  return "?";
}

Session::Session(Role role, std::unique_ptr<Context> context, Random& random, const Clock& clock,
                 KeyUpdateConfig config)
    : role_(role), random_(random), clock_(clock), config_(config), current_(std::move(context)) {
  config_.r_len = std::clamp<size_t>(config_.r_len, 1, r1_.size());
  current_->set_tag(next_tag_++);
}

Expected<std::unique_ptr<Context>, Error> Session::derive(ByteView n) {
  auto c = current_->derive_updated(n);
  if (c) (*c)->set_tag(next_tag_++);
  return c;
}

Context* Session::find(uint32_t tag) {
  for (Context* c : {current_.get(), new_.get()}) {
    if (c && c->tag() == tag) return c;
  }
  if (old_ && old_->tag() == tag && retained_usable()) return old_.get();
  return nullptr;
}

bool Session::retained_usable() const { return old_ && clock_.now() < old_deadline_; }

void Session::expire_old() {
  if (old_ && clock_.now() >= old_deadline_) old_.reset();
}

void Session::maybe_auto_start() {
  if (state_ != KeyUpdateState::kIdle) return;
  const std::optional<double> tq = config_.auto_threshold;
  const std::optional<double> tv = config_.auto_threshold_v ? config_.auto_threshold_v : tq;
  const Context& c = *current_;
  if ((tq && static_cast<double>(c.count_q()) >= *tq * static_cast<double>(c.limits().q)) ||
      (tv && static_cast<double>(c.count_v()) >= *tv * static_cast<double>(c.limits().v))) {
    update_wanted_ = true;
  }
}

// install_new: CTX_NEW becomes current; CTX_OLD is deleted or retained (§3.4).
void Session::install_new() {
  if (config_.retention > Duration::zero()) {
    old_ = std::move(current_);
    old_deadline_ = clock_.now() + config_.retention;
  } else {
    old_.reset();
  }
  current_ = std::move(new_);
  state_ = KeyUpdateState::kIdle;
  update_wanted_ = false;
  ++updates_completed_;
}

// ---- client ----

Expected<size_t, Error> Session::protect_request(const coap::Message& request, MutableByteView out,
                                                 Exchange& ex) {
  if (role_ != Role::kClient) return unexpected(Error::kBadState);
  expire_old();
  maybe_auto_start();
  if (state_ == KeyUpdateState::kClientHasNew) {
    // Figure 6: the request under CTX_NEW carries R1|R2 until the server confirms.
    ProtectOptions po;
    po.id_detail = ByteView(n_.data(), 2 * config_.r_len);
    auto r = new_->protect_request(request, out, ex, po);
    if (r) ex.context_tag = new_->tag();
    return r;
  }
  if (update_wanted_ && (state_ == KeyUpdateState::kIdle || state_ == KeyUpdateState::kClientAwaitingR2)) {
    // Figure 5: R1, CTX_1 = updateCtx(R1, CTX_OLD), request under CTX_1 with d = R1.
    // Asked again while waiting for R2 (a lost response), it starts over with a new R1.
    MutableByteView r1(r1_.data(), config_.r_len);
    random_.fill(r1);
    auto ctx1 = derive(r1);
    if (!ctx1) return unexpected(ctx1.error());
    ProtectOptions po;
    po.id_detail = ByteView(r1);
    auto r = (*ctx1)->protect_request(request, out, ex, po);
    if (!r) return r;
    ex.context_tag = (*ctx1)->tag();
    state_ = KeyUpdateState::kClientAwaitingR2;
    update_wanted_ = false;
    return r;
  }
  auto r = current_->protect_request(request, out, ex);
  if (r) ex.context_tag = current_->tag();
  return r;
}

Expected<size_t, Error> Session::unprotect_response(ByteView datagram, Exchange& ex, MutableByteView out) {
  if (role_ != Role::kClient) return unexpected(Error::kBadState);
  expire_old();
  auto ov = peek_option(datagram);
  if (!ov) return unexpected(ov.error());
  const size_t n = config_.r_len;
  if (ov->id_detail) {
    const ByteView detail = *ov->id_detail;
    if (detail.size() == 2 * n && state_ == KeyUpdateState::kClientAwaitingR2) {
      // Figure 5, client: R1 must be ours; CTX_NEW = updateCtx(R1|R2, CTX_OLD).
      if (!constant_time_equal(detail.first(n), ByteView(r1_.data(), n))) {
        return unexpected(Error::kKeyUpdateMismatch);
      }
      auto cand = derive(detail);
      if (!cand) return unexpected(cand.error());
      auto r = (*cand)->unprotect_response(datagram, ex, out);
      if (!r) return r;
      std::memcpy(n_.data(), detail.data(), detail.size());
      n_valid_ = true;
      new_ = std::move(*cand);
      install_new();  // key confirmation: delete (or retain) CTX_OLD
      return r;
    }
    if (detail.size() == n && state_ == KeyUpdateState::kIdle && ex.context_tag == current_->tag()) {
      // Figure 6, client: CTX_1 from R1, verify; R2; CTX_NEW = updateCtx(R1|R2, CTX_OLD).
      auto ctx1 = derive(detail);
      if (!ctx1) return unexpected(ctx1.error());
      auto r = (*ctx1)->unprotect_response(datagram, ex, out);
      if (!r) return r;
      std::memcpy(n_.data(), detail.data(), n);
      random_.fill(MutableByteView(n_.data() + n, n));
      auto cand = derive(ByteView(n_.data(), 2 * n));
      if (!cand) return unexpected(cand.error());
      new_ = std::move(*cand);
      n_valid_ = true;
      state_ = KeyUpdateState::kClientHasNew;
      update_wanted_ = false;
      return r;
    }
    return unexpected(Error::kKeyUpdateMismatch);
  }
  Context* ctx = find(ex.context_tag);
  if (!ctx) return unexpected(Error::kContextNotFound);
  auto r = ctx->unprotect_response(datagram, ex, out);
  if (r && state_ == KeyUpdateState::kClientHasNew && ctx == new_.get()) install_new();
  if (r) maybe_auto_start();
  return r;
}

// ---- server ----

Expected<size_t, Error> Session::unprotect_request(ByteView datagram, MutableByteView out, Exchange& ex) {
  if (role_ != Role::kServer) return unexpected(Error::kBadState);
  expire_old();
  auto ov = peek_option(datagram);
  if (!ov) return unexpected(ov.error());
  const size_t n = config_.r_len;
  if (ov->id_detail) {
    const ByteView detail = *ov->id_detail;
    if (detail.size() == n) {
      // Figure 5, server: CTX_1 from R1, verify; R2; CTX_NEW = updateCtx(R1|R2, CTX_OLD).
      auto ctx1 = derive(detail);
      if (!ctx1) return unexpected(ctx1.error());
      auto r = (*ctx1)->unprotect_request(datagram, out, ex);
      if (!r) return r;
      std::array<uint8_t, 64> nn{};
      std::memcpy(nn.data(), detail.data(), n);
      random_.fill(MutableByteView(nn.data() + n, n));
      auto cand = derive(ByteView(nn.data(), 2 * n));
      if (!cand) return unexpected(cand.error());
      new_ = std::move(*cand);
      n_ = nn;
      n_valid_ = true;
      state_ = KeyUpdateState::kServerAwaitingConfirm;
      update_wanted_ = false;
      ex.context_tag = new_->tag();
      std::memcpy(ex.id_detail.data(), nn.data(), 2 * n);
      ex.id_detail_len = static_cast<uint8_t>(2 * n);
      return r;
    }
    if (detail.size() == 2 * n && state_ == KeyUpdateState::kServerSentR1) {
      // Figure 6, server: R1 must be ours; CTX_NEW = updateCtx(R1|R2, CTX_OLD); verify.
      if (!constant_time_equal(detail.first(n), ByteView(r1_.data(), n))) {
        return unexpected(Error::kKeyUpdateMismatch);
      }
      auto cand = derive(detail);
      if (!cand) return unexpected(cand.error());
      auto r = (*cand)->unprotect_request(datagram, out, ex);
      if (!r) return r;
      std::memcpy(n_.data(), detail.data(), 2 * n);
      n_valid_ = true;
      new_ = std::move(*cand);
      install_new();
      ex.context_tag = current_->tag();
      return r;
    }
    if (!(detail.size() == 2 * n && n_valid_ && equal(detail, ByteView(n_.data(), 2 * n)))) {
      return unexpected(Error::kKeyUpdateMismatch);
    }
    // A repeated R1|R2 of the update already completed: an ordinary request.
  }
  // Incoming messages: CTX_NEW first, then CTX_OLD (§3.3 / §3.4).
  Context* first = nullptr;
  Context* second = nullptr;
  if (state_ == KeyUpdateState::kServerAwaitingConfirm) {
    first = new_.get();
    second = current_.get();
  } else {
    first = current_.get();
    second = retained_usable() ? old_.get() : nullptr;
  }
  auto r = first->unprotect_request(datagram, out, ex);
  Context* used = first;
  if (!r && r.error() == Error::kDecryptionFailed && second) {
    r = second->unprotect_request(datagram, out, ex);
    used = second;
  }
  if (!r) return r;
  if (used == new_.get()) {
    install_new();  // Figure 5: verified under CTX_NEW, delete (or retain) CTX_OLD
    used = current_.get();
  }
  ex.context_tag = used->tag();
  maybe_auto_start();
  return r;
}

Expected<size_t, Error> Session::protect_response(const coap::Message& response, Exchange& ex,
                                                  MutableByteView out, ProtectOptions opt) {
  if (role_ != Role::kServer) return unexpected(Error::kBadState);
  expire_old();
  Context* ctx = find(ex.context_tag);
  if (!ctx) return unexpected(Error::kContextNotFound);
  if (ex.id_detail_len > 0) {
    // Figure 5: the response under CTX_NEW carries R1|R2.
    opt.id_detail = ByteView(ex.id_detail.data(), ex.id_detail_len);
    return ctx->protect_response(response, ex, out, opt);
  }
  maybe_auto_start();
  if (update_wanted_ && state_ == KeyUpdateState::kIdle && ctx == current_.get()) {
    // Figure 6: R1, CTX_1 = updateCtx(R1, CTX_OLD), response under CTX_1 with d = R1.
    MutableByteView r1(r1_.data(), config_.r_len);
    random_.fill(r1);
    auto ctx1 = derive(r1);
    if (!ctx1) return unexpected(ctx1.error());
    opt.id_detail = ByteView(r1);
    auto r = (*ctx1)->protect_response(response, ex, out, opt);
    if (!r) return r;
    state_ = KeyUpdateState::kServerSentR1;
    update_wanted_ = false;
    return r;
  }
  return ctx->protect_response(response, ex, out, opt);
}

}  // namespace acekdc::oscore
