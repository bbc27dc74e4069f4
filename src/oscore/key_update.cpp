#include "oscore/key_update.h"

#include <algorithm>
#include <cstring>

#include "core/reader.h"
#include "core/writer.h"

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
  key_start_seq_ = current_->next_sequence_number();
}

Expected<std::unique_ptr<Context>, Error> Session::derive(ByteView n) {
  auto c = current_->derive_updated(n);
  if (c) (*c)->set_tag(next_tag_++);
  return c;
}

Context* Session::find(uint32_t tag) {
  for (Context* c : {current_.get(), new_.get(), ctx1_.get()}) {
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
    if (!update_wanted_) touch();
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
  ctx1_.reset();
  state_ = KeyUpdateState::kIdle;
  update_wanted_ = false;
  ++updates_completed_;
  // The new Sender Key starts here (the allocator is shared by the chain).
  key_start_seq_ = current_->next_sequence_number();
  touch();
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
    ctx1_ = std::move(*ctx1);  // kept for a 4.01 + Echo under it (Appendix B.1.2)
    state_ = KeyUpdateState::kClientAwaitingR2;
    update_wanted_ = false;
    touch();
    return r;
  }
  auto r = current_->protect_request(request, out, ex);
  if (r) ex.context_tag = current_->tag();
  return r;
}

Expected<size_t, Error> Session::unprotect_response(ByteView datagram, Exchange& ex, MutableByteView out) {
  if (role_ != Role::kClient) return unexpected(Error::kBadState);
  auto outer = coap::MessageView::parse(datagram);
  if (!outer) return unexpected(Error::kMalformedMessage);
  auto ov = find_oscore_option(*outer);
  if (!ov) return unexpected(ov.error());
  return unprotect_response(*outer, *ov, ex, out);
}

Expected<size_t, Error> Session::unprotect_response(const coap::MessageView& datagram, const OptionValue& option,
                                                    Exchange& ex, MutableByteView out) {
  if (role_ != Role::kClient) return unexpected(Error::kBadState);
  expire_old();
  const OptionValue* ov = &option;
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
      auto r = (*cand)->unprotect_response(datagram, *ov, ex, out);
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
      auto r = (*ctx1)->unprotect_response(datagram, *ov, ex, out);
      if (!r) return r;
      std::memcpy(n_.data(), detail.data(), n);
      random_.fill(MutableByteView(n_.data() + n, n));
      auto cand = derive(ByteView(n_.data(), 2 * n));
      if (!cand) return unexpected(cand.error());
      new_ = std::move(*cand);
      n_valid_ = true;
      state_ = KeyUpdateState::kClientHasNew;
      update_wanted_ = false;
      touch();
      return r;
    }
    return unexpected(Error::kKeyUpdateMismatch);
  }
  Context* ctx = find(ex.context_tag);
  if (!ctx || ctx == old_.get()) {
    // The exchange outlived its context (an observation, or a separate
    // response, across a completed key update): the peer protects it with
    // CTX_NEW now (§3.4: outgoing only with CTX_NEW), so CTX_NEW is tried
    // first, then CTX_OLD while it is retained. The exchange keeps its
    // request_kid / request_piv (same Sender ID; the Sender Sequence Number
    // continues across the chain, so no later request of ours has this piv).
    auto r = current_->unprotect_response(datagram, *ov, ex, out);
    if (r) {
      ex.context_tag = current_->tag();
      maybe_auto_start();
      return r;
    }
    if (!ctx || r.error() != Error::kDecryptionFailed) return r;
  }
  auto r = ctx->unprotect_response(datagram, *ov, ex, out);
  if (!r && r.error() == Error::kDecryptionFailed && state_ == KeyUpdateState::kClientHasNew &&
      ctx == current_.get() && new_) {
    // Figure 6: the server already verified R1|R2 and protects a message of an
    // older exchange (e.g. a notification) with CTX_NEW: key confirmation.
    r = new_->unprotect_response(datagram, *ov, ex, out);
    if (r) {
      install_new();
      ex.context_tag = current_->tag();
      maybe_auto_start();
      return r;
    }
  }
  if (r && ctx == ctx1_.get()) {
    // A plain answer under CTX_1 (a server that restarted asks for an Echo
    // first): the update starts over with the resent request.
    ctx1_.reset();
    state_ = KeyUpdateState::kIdle;
    update_wanted_ = true;
    touch();
    return r;
  }
  if (r && state_ == KeyUpdateState::kClientHasNew && ctx == new_.get()) install_new();
  if (r) maybe_auto_start();
  return r;
}

// ---- server ----

Expected<size_t, Error> Session::unprotect_request(ByteView datagram, MutableByteView out, Exchange& ex) {
  if (role_ != Role::kServer) return unexpected(Error::kBadState);
  auto outer = coap::MessageView::parse(datagram);
  if (!outer) return unexpected(Error::kMalformedMessage);
  auto ov = find_oscore_option(*outer);
  if (!ov) return unexpected(ov.error());
  return unprotect_request(*outer, *ov, out, ex);
}

Expected<size_t, Error> Session::unprotect_request(const coap::MessageView& datagram, const OptionValue& option,
                                                   MutableByteView out, Exchange& ex, coap::MessageView* out_inner) {
  if (role_ != Role::kServer) return unexpected(Error::kBadState);
  expire_old();
  const OptionValue* ov = &option;
  const size_t n = config_.r_len;
  if (ov->id_detail) {
    const ByteView detail = *ov->id_detail;
    if (detail.size() == n) {
      // Figure 5, server: CTX_1 from R1, verify; R2; CTX_NEW = updateCtx(R1|R2, CTX_OLD).
      auto ctx1 = derive(detail);
      if (!ctx1) return unexpected(ctx1.error());
      auto r = (*ctx1)->unprotect_request(datagram, *ov, out, ex, out_inner);
      if (!r && r.error() == Error::kEchoRequired) {
        // Appendix B.1.2 after a restart: answer 4.01 + Echo under CTX_1; the
        // client starts the update again with the Echo.
        ex.context_tag = (*ctx1)->tag();
        ctx1_ = std::move(*ctx1);
        return r;
      }
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
      touch();
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
      auto r = (*cand)->unprotect_request(datagram, *ov, out, ex, out_inner);
      if (!r && r.error() == Error::kEchoRequired) {
        // Appendix B.1.2 after a restart: the 4.01 + Echo goes out under CTX_NEW.
        new_ = std::move(*cand);
        ex.context_tag = new_->tag();
        return r;
      }
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
    // Figure 6 after a 4.01 + Echo under CTX_NEW: the client confirmed CTX_NEW
    // by verifying it and now sends under it without R1|R2.
    if (state_ == KeyUpdateState::kServerSentR1 && new_) second = new_.get();
  }
  auto r = first->unprotect_request(datagram, *ov, out, ex, out_inner);
  Context* used = first;
  if (!r && r.error() == Error::kDecryptionFailed && second) {
    r = second->unprotect_request(datagram, *ov, out, ex, out_inner);
    used = second;
  }
  if (!r) {
    // Appendix B.1.2: the 4.01 with Echo is protected by the context that verified it.
    if (r.error() == Error::kEchoRequired) ex.context_tag = used->tag();
    return r;
  }
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
  if (opt.partial_iv && ex.id_detail_len == 0 && (ctx == nullptr || ctx != ctx1_.get())) {
    // A later response (notification, separate response) with its own Partial
    // IV: once CTX_NEW exists it is the only context for outgoing messages
    // (seed §3.3 "from then on", §3.4), also for an exchange (an observation)
    // that began under CTX_OLD. The AAD still binds it to the registration's
    // request_kid / request_piv; the Partial IV comes from the chain's shared
    // Sender Sequence Number, so no (key, nonce) pair repeats. Awaiting key
    // confirmation (Figure 5), notifications already use CTX_NEW: the client
    // deleted CTX_OLD when it verified our R1|R2 response.
    Context* newest = state_ == KeyUpdateState::kServerAwaitingConfirm && new_ ? new_.get() : current_.get();
    if (ctx == nullptr || ctx == old_.get() || (ctx == current_.get() && ex.observe)) {
      ctx = newest;
      ex.context_tag = ctx->tag();
    }
  }
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
    touch();
    return r;
  }
  return ctx->protect_response(response, ex, out, opt);
}

// ---- persistence ----

namespace {

// The procedure state as saved (KeyUpdateState minus kClientAwaitingR2, which
// restarts as idle with an update wanted).
enum class SavedState : uint8_t { kIdle = 0, kServerAwaitingConfirm = 1, kClientHasNew = 2, kServerSentR1 = 3 };
constexpr uint8_t kSavedFlagUpdateWanted = 0x01;
constexpr uint8_t kSavedFlagIdContext = 0x02;

void put_short(Writer& w, ByteView b) {  // u8 length + bytes (all fields here are < 256)
  w.put_u8(static_cast<uint8_t>(b.size()));
  w.put_bytes(b);
}
bool get_short(Reader& r, ByteView& out) {
  uint8_t len = 0;
  return r.read_u8(len) && r.read_bytes(len, out);
}

}  // namespace

// Layout (big-endian): u8 version, u8 role, u8 saved state, u8 flags, u8 r_len,
// short sender_id, short recipient_id, short id_context (present if flag),
// short master_secret, short master_salt, u64 updates_completed, u64 count_q,
// u64 count_v, u64 key_start_seq, then r_len bytes R1 (server sent R1) or
// 2*r_len bytes R1|R2 (awaiting confirmation / client has new); nothing else.
Bytes Session::export_state() const {
  SavedState saved = SavedState::kIdle;
  bool wanted = update_wanted_;
  switch (state_) {
    case KeyUpdateState::kIdle: break;
    case KeyUpdateState::kClientAwaitingR2: wanted = true; break;
    case KeyUpdateState::kServerAwaitingConfirm: saved = SavedState::kServerAwaitingConfirm; break;
    case KeyUpdateState::kClientHasNew: saved = SavedState::kClientHasNew; break;
    case KeyUpdateState::kServerSentR1: saved = SavedState::kServerSentR1; break;
  }
  const ContextParams& p = current_->params();
  Bytes out;
  Writer w(out);
  w.put_u8(kStateVersion);
  w.put_u8(static_cast<uint8_t>(role_));
  w.put_u8(static_cast<uint8_t>(saved));
  w.put_u8(static_cast<uint8_t>((wanted ? kSavedFlagUpdateWanted : 0) | (p.id_context ? kSavedFlagIdContext : 0)));
  w.put_u8(static_cast<uint8_t>(config_.r_len));
  put_short(w, p.sender_id);
  put_short(w, p.recipient_id);
  if (p.id_context) put_short(w, *p.id_context);
  put_short(w, p.master_secret);
  put_short(w, p.master_salt);
  w.put_u64(updates_completed_);
  w.put_u64(current_->count_q());
  w.put_u64(current_->count_v());
  w.put_u64(key_start_seq_);
  if (saved == SavedState::kServerSentR1) w.put_bytes(ByteView(r1_.data(), config_.r_len));
  if (saved == SavedState::kServerAwaitingConfirm || saved == SavedState::kClientHasNew) {
    w.put_bytes(ByteView(n_.data(), 2 * config_.r_len));
  }
  return out;
}

Expected<std::unique_ptr<Session>, Error> Session::restore(Role role, crypto::Provider& provider, ContextConfig base,
                                                           ByteView state, Random& random, const Clock& clock,
                                                           KeyUpdateConfig config, const ReplayWindow* window) {
  Reader r(state);
  uint8_t version = 0, role_byte = 0, saved_byte = 0, flags = 0, r_len = 0;
  ByteView sender_id, recipient_id, id_context, secret, salt;
  uint64_t updates = 0, count_q = 0, count_v = 0, key_start = 0;
  if (!r.read_u8(version) || !r.read_u8(role_byte) || !r.read_u8(saved_byte) || !r.read_u8(flags) ||
      !r.read_u8(r_len)) {
    return unexpected(Error::kMalformedMessage);
  }
  if (version != kStateVersion || role_byte > 1 || saved_byte > 3 ||
      (flags & ~(kSavedFlagUpdateWanted | kSavedFlagIdContext)) != 0 || r_len < 1 || r_len > 32) {
    return unexpected(Error::kMalformedMessage);
  }
  if (!get_short(r, sender_id) || !get_short(r, recipient_id) ||
      ((flags & kSavedFlagIdContext) && !get_short(r, id_context)) || !get_short(r, secret) ||
      !get_short(r, salt) || !r.read_u64(updates) || !r.read_u64(count_q) || !r.read_u64(count_v) ||
      !r.read_u64(key_start)) {
    return unexpected(Error::kMalformedMessage);
  }
  const auto saved = static_cast<SavedState>(saved_byte);
  ByteView nonce;
  const size_t nonce_len = saved == SavedState::kServerSentR1 ? r_len
                           : saved == SavedState::kIdle      ? 0
                                                             : 2 * size_t{r_len};
  if (!r.read_bytes(nonce_len, nonce) || !r.finish()) return unexpected(Error::kMalformedMessage);
  if (secret.empty()) return unexpected(Error::kMalformedMessage);
  if (saved == SavedState::kServerAwaitingConfirm || saved == SavedState::kServerSentR1) {
    if (role != Role::kServer) return unexpected(Error::kInvalidArgument);
  }
  if (saved == SavedState::kClientHasNew && role != Role::kClient) return unexpected(Error::kInvalidArgument);

  // The state must belong to this configuration.
  const bool has_id_context = (flags & kSavedFlagIdContext) != 0;
  if (role_byte != static_cast<uint8_t>(role) || !equal(sender_id, base.params.sender_id) ||
      !equal(recipient_id, base.params.recipient_id) || has_id_context != base.params.id_context.has_value() ||
      (has_id_context && !equal(id_context, *base.params.id_context)) ||
      std::clamp<size_t>(config.r_len, 1, 32) != r_len) {
    return unexpected(Error::kInvalidArgument);
  }
  base.params.master_secret = to_bytes(secret);
  base.params.master_salt = to_bytes(salt);
  if (!base.random) base.random = &random;  // draws an Echo challenge when one is needed
  if (role == Role::kServer && !window) {
    // Appendix B.1.2: the window was lost with the reboot.
    base.replay_window_initialised = false;
  }
  auto ctx = Context::create(provider, std::move(base));
  if (!ctx) return unexpected(ctx.error());
  if (window) (*ctx)->restore_replay_window(*window);
  // Every number below the reservation may have been used with this key.
  const uint64_t next = (*ctx)->next_sequence_number();
  (*ctx)->restore_counts(std::max(count_q, next > key_start ? next - key_start : 0), count_v);

  std::unique_ptr<Session> s(new Session(role, std::move(*ctx), random, clock, config));
  s->key_start_seq_ = std::min(key_start, next);
  s->updates_completed_ = updates;
  s->update_wanted_ = (flags & kSavedFlagUpdateWanted) != 0;
  switch (saved) {
    case SavedState::kIdle: break;
    case SavedState::kServerSentR1:
      std::memcpy(s->r1_.data(), nonce.data(), nonce.size());
      s->state_ = KeyUpdateState::kServerSentR1;
      break;
    case SavedState::kServerAwaitingConfirm:
    case SavedState::kClientHasNew: {
      // CTX_NEW = updateCtx(R1|R2, CTX_OLD) again (same keys, shared allocator).
      auto cand = s->derive(nonce);
      if (!cand) return unexpected(cand.error());
      s->new_ = std::move(*cand);
      std::memcpy(s->n_.data(), nonce.data(), nonce.size());
      s->n_valid_ = true;
      s->state_ = saved == SavedState::kClientHasNew ? KeyUpdateState::kClientHasNew
                                                      : KeyUpdateState::kServerAwaitingConfirm;
      break;
    }
  }
  return s;
}

}  // namespace acekdc::oscore
