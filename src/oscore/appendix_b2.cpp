#include "oscore/appendix_b2.h"

#include <algorithm>
#include <cstring>

namespace acekdc::oscore {

namespace {

constexpr size_t kMaxB2Nonce = 64;
constexpr size_t kMaxIdContextLen = 255;  // 'kid context' length is one byte (RFC 8613 §6.1)

bool valid(const B2Config& c) { return c.nonce_len >= 1 && c.nonce_len <= kMaxB2Nonce; }

// concat returns a || b, or nullopt above the 'kid context' limit.
std::optional<Bytes> concat(ByteView a, ByteView b) {
  if (a.size() + b.size() > kMaxIdContextLen) return std::nullopt;
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// id_context_of: the ID Context of `c` (nullopt: none, encoded as nil in 'info').
std::optional<ByteView> id_context_of(const Context& c) {
  const auto& id = c.params().id_context;
  if (!id) return std::nullopt;
  return ByteView(*id);
}
ByteView or_empty(std::optional<ByteView> v) { return v ? *v : ByteView(); }

// make_context derives one context of Figure 14 from the immutable parameters
// with ID Context `id`. CTX1 / CTX2 (final_context false) protect one message
// with fresh keys: no store, sequence from 0. CTX3 keeps the store, keyed by ID3.
Expected<std::unique_ptr<Context>, Error> make_context(crypto::Provider& provider, const B2Config& cfg,
                                                       std::optional<ByteView> id, bool final_context,
                                                       uint32_t tag) {
  ContextConfig c = cfg.base;
  c.params.id_context.reset();
  if (id) c.params.id_context = to_bytes(*id);
  c.store_key.clear();
  c.replay_window_initialised = true;
  if (!final_context) {
    c.store = nullptr;
    c.initial_seq = 0;
  }
  auto ctx = Context::create(provider, std::move(c));
  if (ctx) (*ctx)->set_tag(tag);
  return ctx;
}

}  // namespace

const char* to_string(B2State s) {
  switch (s) {
    case B2State::kNoContext: return "no context";
    case B2State::kEstablished: return "established";
    case B2State::kSentRequest1: return "sent request #1";
    case B2State::kHaveCtx3: return "has third context";
  }
  return "?";
}

// ---- client ----

B2Client::B2Client(crypto::Provider& provider, B2Config config, Random& random)
    : provider_(provider), config_(std::move(config)), random_(random) {}

Expected<std::unique_ptr<Context>, Error> B2Client::make(std::optional<ByteView> id, bool final_context) {
  return make_context(provider_, config_, id, final_context, next_tag_++);
}

Expected<std::unique_ptr<B2Client>, Error> B2Client::create(crypto::Provider& provider, B2Config config,
                                                            Random& random, bool established) {
  if (!valid(config)) return unexpected(Error::kInvalidArgument);
  std::unique_ptr<B2Client> c(new B2Client(provider, std::move(config), random));
  if (established) {
    const auto& id = c->config_.base.params.id_context;
    auto ctx = c->make(id ? std::optional<ByteView>(*id) : std::nullopt, true);
    if (!ctx) return unexpected(ctx.error());
    c->current_ = std::move(*ctx);
    c->state_ = B2State::kEstablished;
  }
  return c;
}

Expected<size_t, Error> B2Client::protect_request(const coap::Message& request, MutableByteView out,
                                                  Exchange& ex) {
  if (state_ == B2State::kHaveCtx3) {
    // Step 3: request #2 under CTX3 with 'kid context' = ID3 = R2 || R3.
    ProtectOptions po;
    po.kid_context_value = or_empty(id_context_of(*ctx3_));
    auto r = ctx3_->protect_request(request, out, ex, po);
    if (r) ex.context_tag = ctx3_->tag();
    return r;
  }
  if (state_ == B2State::kEstablished && !renew_wanted_) {
    auto r = current_->protect_request(request, out, ex);
    if (r) ex.context_tag = current_->tag();
    return r;
  }
  // Step 1: R1, CTX1 with ID1 = R1; request #1 with 'kid context' = ID1. A run
  // whose response #1 never came starts over with a fresh R1.
  std::array<uint8_t, kMaxB2Nonce> r1{};
  MutableByteView r1_view(r1.data(), config_.nonce_len);
  random_.fill(r1_view);
  auto ctx1 = make(r1_view, false);
  if (!ctx1) return unexpected(ctx1.error());
  ProtectOptions po;
  po.kid_context_value = ByteView(r1_view);
  auto r = (*ctx1)->protect_request(request, out, ex, po);
  if (!r) return r;
  ex.context_tag = (*ctx1)->tag();
  ctx1_ = std::move(*ctx1);
  state_ = B2State::kSentRequest1;
  renew_wanted_ = false;
  return r;
}

Expected<B2Result, Error> B2Client::unprotect_response(ByteView datagram, Exchange& ex, MutableByteView out) {
  auto ov = peek_option(datagram);
  if (!ov) return unexpected(ov.error());
  if (ov->kid_context) {
    // Step 3: response #1 to a request of ours (CTX1, or the current context
    // when the server initiated), 'kid context' = R2.
    const ByteView r2 = *ov->kid_context;
    if (r2.size() != config_.nonce_len) return unexpected(Error::kMalformedOption);
    Context* asked = nullptr;
    if (ctx1_ && ex.context_tag == ctx1_->tag()) asked = ctx1_.get();
    if (current_ && ex.context_tag == current_->tag()) asked = current_.get();
    // Request #2 answered by another response #1 (the server lost our R2): run again on top of ID3.
    if (ctx3_ && ex.context_tag == ctx3_->tag()) asked = ctx3_.get();
    if (!asked) return unexpected(Error::kContextNotFound);
    auto id2 = concat(r2, or_empty(id_context_of(*asked)));
    if (!id2) return unexpected(Error::kInvalidArgument);
    auto ctx2 = make(*id2, false);
    if (!ctx2) return unexpected(ctx2.error());
    auto n = (*ctx2)->unprotect_response(datagram, ex, out);
    if (!n) return unexpected(n.error());
    std::array<uint8_t, kMaxB2Nonce> r3{};
    MutableByteView r3_view(r3.data(), config_.nonce_len);
    random_.fill(r3_view);
    auto id3 = concat(r2, r3_view);
    if (!id3) return unexpected(Error::kInvalidArgument);
    auto ctx3 = make(*id3, true);
    if (!ctx3) return unexpected(ctx3.error());
    ctx3_ = std::move(*ctx3);
    ctx1_.reset();  // CTX1 and CTX2 are done
    state_ = B2State::kHaveCtx3;
    return B2Result{*n, B2Action::kResendRequest};
  }
  Context* ctx = nullptr;
  if (current_ && ex.context_tag == current_->tag()) ctx = current_.get();
  if (ctx3_ && ex.context_tag == ctx3_->tag()) ctx = ctx3_.get();
  if (!ctx) return unexpected(Error::kContextNotFound);
  auto n = ctx->unprotect_response(datagram, ex, out);
  if (!n) return unexpected(n.error());
  if (ctx == ctx3_.get()) {
    // Step 5: response #2 verified; CTX3 replaces the previous context.
    current_ = std::move(ctx3_);
    state_ = B2State::kEstablished;
  }
  return B2Result{*n, B2Action::kDeliver};
}

// ---- server ----

B2Server::B2Server(crypto::Provider& provider, B2Config config, Random& random, const Clock& clock)
    : provider_(provider), config_(std::move(config)), random_(random), clock_(clock) {}

Expected<std::unique_ptr<Context>, Error> B2Server::make(std::optional<ByteView> id, bool final_context) {
  return make_context(provider_, config_, id, final_context, next_tag_++);
}

Expected<std::unique_ptr<B2Server>, Error> B2Server::create(crypto::Provider& provider, B2Config config,
                                                            Random& random, const Clock& clock,
                                                            bool established) {
  if (!valid(config) || config.max_pending == 0) return unexpected(Error::kInvalidArgument);
  std::unique_ptr<B2Server> s(new B2Server(provider, std::move(config), random, clock));
  if (established) {
    const auto& id = s->config_.base.params.id_context;
    auto ctx = s->make(id ? std::optional<ByteView>(*id) : std::nullopt, true);
    if (!ctx) return unexpected(ctx.error());
    s->current_ = std::move(*ctx);
  }
  return s;
}

void B2Server::expire_pending() {
  const TimePoint now = clock_.now();
  std::erase_if(pending_, [&](const Pending& p) { return now >= p.deadline; });
}

Expected<B2Result, Error> B2Server::unprotect_request(ByteView datagram, MutableByteView out, Exchange& ex) {
  expire_pending();
  auto ov = peek_option(datagram);
  if (!ov) return unexpected(ov.error());
  if (!ov->kid || ov->partial_iv.empty()) return unexpected(Error::kMalformedOption);
  if (!equal(*ov->kid, config_.base.params.recipient_id)) return unexpected(Error::kContextNotFound);
  const size_t n = config_.nonce_len;

  if (ov->kid_context && ov->kid_context->size() == 2 * n) {
    // Step 4: the first part of ID3 must be an R2 we sent and still cache.
    const ByteView id3 = *ov->kid_context;
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
      return constant_time_equal(ByteView(p.r2.data(), n), id3.first(n));
    });
    if (it != pending_.end()) {
      auto ctx3 = make(id3, true);
      if (!ctx3) return unexpected(ctx3.error());
      auto r = (*ctx3)->unprotect_request(datagram, out, ex);
      if (!r) {
        // CTX3 is derived afresh per attempt, so its count_v would restart each
        // time: count failed verifications per R2 and drop the R2 at limit_v
        // (key-limits draft §2.3.2).
        if (r.error() == Error::kDecryptionFailed && ++it->num_failures >= (*ctx3)->limits().v) {
          pending_.erase(it);
        }
        return unexpected(r.error());
      }
      // CTX3 replaces the previous context; CTX1, CTX2 and every R2 are deleted.
      current_ = std::move(*ctx3);
      pending_.clear();
      renew_wanted_ = false;
      ex.context_tag = current_->tag();
      return B2Result{*r, B2Action::kDeliver};
    }
  }

  const bool ordinary = current_ && !renew_wanted_ &&
                        (!ov->kid_context || equal(*ov->kid_context, or_empty(id_context_of(*current_))));
  if (ordinary) {
    auto r = current_->unprotect_request(datagram, out, ex);
    if (!r) return unexpected(r.error());
    ex.context_tag = current_->tag();
    return B2Result{*r, B2Action::kDeliver};
  }

  // Step 2: verify with CTX1 (ID1 from 'kid context', else our ID Context),
  // then R2 and CTX2 with ID2 = R2 || ID1 for response #1.
  std::optional<ByteView> id1;
  if (ov->kid_context) {
    id1 = *ov->kid_context;
  } else if (current_) {
    id1 = id_context_of(*current_);
  } else if (config_.base.params.id_context) {
    id1 = ByteView(*config_.base.params.id_context);
  }
  auto ctx1 = make(id1, false);
  if (!ctx1) return unexpected(ctx1.error());
  auto r = (*ctx1)->unprotect_request(datagram, out, ex);
  if (!r) return unexpected(r.error());
  Pending p;
  MutableByteView r2(p.r2.data(), n);
  random_.fill(r2);  // B.2: R2 MUST NOT be reused
  auto id2 = concat(r2, or_empty(id1));
  if (!id2) return unexpected(Error::kInvalidArgument);
  auto ctx2 = make(*id2, false);
  if (!ctx2) return unexpected(ctx2.error());
  p.ctx2 = std::move(*ctx2);
  p.deadline = clock_.now() + config_.pending_lifetime;
  // B.2.1: a bounded cache of R2; the oldest run gives way.
  if (pending_.size() >= config_.max_pending) pending_.pop_front();
  ex.context_tag = p.ctx2->tag();
  pending_.push_back(std::move(p));
  return B2Result{*r, B2Action::kSendResponse1};
}

Expected<size_t, Error> B2Server::protect_response(const coap::Message& response, Exchange& ex,
                                                   MutableByteView out, ProtectOptions opt) {
  expire_pending();
  if (current_ && ex.context_tag == current_->tag()) return current_->protect_response(response, ex, out, opt);
  for (auto& p : pending_) {
    if (p.ctx2->tag() == ex.context_tag) {
      // Response #1: under CTX2, 'kid context' = R2.
      opt.kid_context_value = ByteView(p.r2.data(), config_.nonce_len);
      return p.ctx2->protect_response(response, ex, out, opt);
    }
  }
  return unexpected(Error::kContextNotFound);
}

}  // namespace acekdc::oscore
