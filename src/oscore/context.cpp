#include "oscore/context.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "core/writer.h"
#include "oscore/aad.h"
#include "oscore/update.h"

namespace acekdc::oscore {

namespace opt = cp::coap::option;
namespace ccode = cp::coap::code;

namespace {

// Options kept Outer only (RFC 8613 §4.1, Figure 5, column U without E).
bool outer_only(uint16_t n) {
  return n == opt::kUriHost || n == opt::kUriPort || n == opt::kProxyScheme || n == opt::kProxyUri ||
         n == opt::kOscore;
}

// OptionList is a fixed-capacity list of option views (no allocation). Its
// storage is left uninitialized: entries are constructed as they are pushed.
struct OptionList {
  static constexpr size_t kCapacity = coap::kMaxOptions + 2;
  union {
    coap::OptionView items[kCapacity];
  };
  size_t size = 0;
  OptionList() {}
  bool push(uint16_t number, ByteView value) {
    if (size == kCapacity) return false;
    std::construct_at(&items[size++], coap::OptionView{number, value});
    return true;
  }
  std::span<const coap::OptionView> span() const { return {items, size}; }
};
static_assert(std::is_trivially_destructible_v<coap::OptionView>);

// ProxyUriParts: a Proxy-Uri decomposed per RFC 8613 §4.1.3.3 / RFC 7252 §6.4:
// the Outer Proxy-Uri keeps scheme://authority, the path segments and query
// parts become Inner Uri-Path / Uri-Query options (percent-decoded into `arena`).
struct ProxyUriParts {
  ByteView outer;          // "scheme://host[:port]"
  OptionList inner;        // Uri-Path..., Uri-Query... (in option order)
  std::array<uint8_t, 1100> arena;
  size_t used = 0;
};

int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// add_decoded percent-decodes `part` into the arena and adds it as option `number`.
bool add_decoded(ProxyUriParts& p, uint16_t number, std::string_view part) {
  const size_t start = p.used;
  for (size_t i = 0; i < part.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(part[i]);
    if (c == '%') {
      if (i + 2 >= part.size()) return false;  // "%" needs two hex digits
      const int hi = hex_value(static_cast<uint8_t>(part[i + 1]));
      const int lo = hex_value(static_cast<uint8_t>(part[i + 2]));
      if (hi < 0 || lo < 0) return false;
      c = static_cast<uint8_t>(hi << 4 | lo);
      i += 2;
    }
    if (p.used == p.arena.size()) return false;
    p.arena[p.used++] = c;
  }
  return p.inner.push(number, ByteView(p.arena.data() + start, p.used - start));
}

bool decompose_proxy_uri(ByteView value, ProxyUriParts& out) {
  const std::string_view uri = as_string(value);
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0 || uri.find('#') != std::string_view::npos) return false;
  size_t auth_end = uri.find_first_of("/?", sep + 3);
  if (auth_end == std::string_view::npos) auth_end = uri.size();
  if (auth_end == sep + 3) return false;  // no host
  out.outer = value.first(auth_end);
  std::string_view rest = uri.substr(auth_end);
  std::string_view query;
  const size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // RFC 7252 §6.4 step 8: an empty path or "/" gives no Uri-Path.
  if (rest.size() > 1) {
    rest.remove_prefix(1);
    while (true) {
      const size_t slash = rest.find('/');
      if (!add_decoded(out, opt::kUriPath, rest.substr(0, slash))) return false;
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
  }
  if (q != std::string_view::npos) {
    while (true) {
      const size_t amp = query.find('&');
      if (!add_decoded(out, opt::kUriQuery, query.substr(0, amp))) return false;
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  return true;
}

void write_header(Writer& w, coap::Type type, uint8_t code, uint16_t mid, ByteView token) {
  w.put_u8(static_cast<uint8_t>((cp::coap::kVersion << 6) | (static_cast<uint8_t>(type) << 4) | token.size()));
  w.put_u8(code);
  w.put_u16(mid);
  w.put_bytes(token);
}

Expected<OptionValue, Error> find_oscore(const coap::MessageView& m) { return find_oscore_option(m); }

}  // namespace

Expected<OptionValue, Error> find_oscore_option(const coap::MessageView& m) {
  // One pass over the options (parsed in ascending order: none after a larger number).
  const coap::OptionView* found = nullptr;
  for (const coap::OptionView& o : m.options()) {
    if (o.number > opt::kOscore) break;
    if (o.number != opt::kOscore) continue;
    if (found) return unexpected(Error::kMalformedOption);
    found = &o;
  }
  if (!found) return unexpected(Error::kContextNotFound);
  return parse_option(found->value);
}

Expected<OptionValue, Error> peek_option(ByteView datagram) {
  auto m = coap::MessageView::parse(datagram);
  if (!m) return unexpected(Error::kMalformedMessage);
  return find_oscore(*m);
}

// ---- creation ----

Context::Context(crypto::Provider& provider, ContextConfig config)
    : provider_(provider),
      config_(std::move(config)),
      replay_(std::make_shared<ReplayWindow>(config_.replay_window)),
      echo_(std::make_shared<EchoState>()) {}

// draw_echo draws a fresh Echo challenge (RFC 9175 §2.3: unpredictable); false without `random`.
bool Context::draw_echo() {
  if (!config_.random) return false;
  config_.random->fill(echo_->value);
  echo_->drawn = true;
  return true;
}

ByteView Context::echo_challenge() const {
  if (replay_->initialised() || !echo_->drawn) return {};
  return echo_->value;
}

void Context::restore_replay_window(const ReplayWindow& w) {
  *replay_ = w;
  if (!w.initialised() && !echo_->drawn) draw_echo();
}

Expected<std::unique_ptr<Context>, Error> Context::create(crypto::Provider& provider, ContextConfig config) {
  Expected<DerivedKeys, Error> keys =
      config.derived_keys ? Expected<DerivedKeys, Error>(*config.derived_keys) : derive_keys(provider, config.params);
  config.derived_keys.reset();
  if (!keys) return unexpected(keys.error());
  KeyLimits limits;
  if (config.limits) {
    limits = *config.limits;
  } else {
    auto d = default_limits(config.params.aead_alg);
    if (!d) return unexpected(Error::kUnsupportedAlgorithm);
    limits = *d;
  }
  auto ok = check_limits(config.params.aead_alg, limits);
  if (!ok) return unexpected(ok.error());
  if (config.exp && !config.clock) return unexpected(Error::kInvalidArgument);
  if (!config.replay_window_initialised && !config.random) return unexpected(Error::kInvalidArgument);

  std::unique_ptr<Context> c(new Context(provider, std::move(config)));
  c->keys_ = *keys;
  c->limits_ = limits;
  auto s = provider.make_aead(c->config_.params.aead_alg, c->keys_.sender());
  auto r = provider.make_aead(c->config_.params.aead_alg, c->keys_.recipient());
  if (!s || !r) return unexpected(Error::kCrypto);
  c->sender_aead_ = std::move(*s);
  c->recipient_aead_ = std::move(*r);
  // An ID that does not fit the nonce leaves the bases unused (make_nonce then
  // refuses each message as before).
  const size_t nonce_len = c->keys_.nonce_len;
  c->nonce_bases_ = make_nonce(c->keys_.iv(), c->config_.params.sender_id, {},
                               MutableByteView(c->sender_nonce_base_.data(), nonce_len)) &&
                    make_nonce(c->keys_.iv(), c->config_.params.recipient_id, {},
                               MutableByteView(c->recipient_nonce_base_.data(), nonce_len));
  if (c->config_.store_key.empty()) {
    const auto& p = c->config_.params;
    c->config_.store_key = sequence_key(p.id_context ? ByteView(*p.id_context) : ByteView(),
                                        p.id_context.has_value(), p.sender_id);
  }
  SequenceAllocatorOptions seq_options;
  SequenceStore* const store = c->config_.store;
  seq_options.writer = c->config_.seq_writer ? c->config_.seq_writer : store ? store->writer() : nullptr;
  seq_options.max_wait = c->config_.seq_max_wait;
  seq_options.clock = c->config_.clock ? c->config_.clock : store ? store->writer_clock() : nullptr;
  seq_options.chunk_interval = c->config_.seq_chunk_interval;
  c->seq_ = std::make_shared<SequenceAllocator>(c->config_.store, c->config_.store_key, c->config_.seq_chunk,
                                                seq_options);
  auto started = c->seq_->start(c->config_.initial_seq);
  if (!started) return unexpected(started.error());
  c->scratch_.resize(c->config_.max_message_len);
  if (!c->config_.replay_window_initialised) {
    // Appendix B.1.2: no trustworthy window; the challenge is drawn once, here.
    c->replay_->mark_uninitialised();
    c->draw_echo();
  }
  return c;
}

Expected<std::unique_ptr<Context>, Error> Context::derive_updated(ByteView n) const {
  auto params = update_params(provider_, config_.params, n);
  if (!params) return unexpected(params.error());
  ContextConfig cfg = config_;
  cfg.params = std::move(*params);
  // The allocator is shared below; keep create() from loading the store again.
  SequenceStore* store = cfg.store;
  cfg.store = nullptr;
  // The window (and its Echo challenge, if uninitialised) is shared below.
  cfg.replay_window_initialised = true;
  auto c = create(provider_, std::move(cfg));
  if (!c) return unexpected(c.error());
  (*c)->config_.store = store;
  (*c)->config_.replay_window_initialised = config_.replay_window_initialised;
  (*c)->seq_ = seq_;
  (*c)->replay_ = replay_;
  (*c)->echo_ = echo_;
  return c;
}

bool Context::expired() const {
  return config_.exp && config_.clock && config_.clock->unix_time() >= *config_.exp;
}

bool Context::matches_request(const OptionValue& o) const {
  if (!o.kid || !equal(*o.kid, config_.params.recipient_id)) return false;
  if (o.kid_context) {
    if (!config_.params.id_context || !equal(*o.kid_context, *config_.params.id_context)) return false;
  }
  return true;
}

Expected<void, Error> Context::make_nonce_for(ByteView id_piv, ByteView partial_iv, MutableByteView out) const {
  const size_t n = keys_.nonce_len;
  const uint8_t* base = nullptr;
  if (nonce_bases_ && equal(id_piv, config_.params.sender_id)) {
    base = sender_nonce_base_.data();
  } else if (nonce_bases_ && equal(id_piv, config_.params.recipient_id)) {
    base = recipient_nonce_base_.data();
  }
  if (base == nullptr || out.size() != n || partial_iv.size() > cp::oscore::kMaxPartialIvLen) {
    return make_nonce(keys_.iv(), id_piv, partial_iv, out);
  }
  // The base has a zero Partial IV: XOR the Partial IV into its tail, right-aligned.
  std::memcpy(out.data(), base, n);
  uint8_t* tail = out.data() + (n - partial_iv.size());
  for (size_t i = 0; i < partial_iv.size(); ++i) tail[i] ^= partial_iv[i];
  return {};
}

Expected<void, Error> Context::check_sender() {
  if (expired()) return unexpected(Error::kContextExpired);
  // Seed §2.3.1: count_q is incremented before encrypting; exceeding limit_q
  // aborts and the Sender Key is never used again. Checked here so that no
  // sequence number is spent on a dead key; incremented right before sealing.
  if (count_q_ >= limits_.q) return unexpected(Error::kSenderLimitReached);
  return {};
}

// ---- protection ----

struct Context::Outgoing {
  coap::Type type;
  uint8_t code;
  uint16_t message_id;
  ByteView token;
  std::span<const coap::OptionView> options;
  ByteView payload;
  bool is_request;
  Exchange* exchange;
  const ProtectOptions* opt;
};

Expected<size_t, Error> Context::protect(const Outgoing& m, MutableByteView out) {
  if (m.token.size() > coap::kMaxTokenLen) return unexpected(Error::kInvalidArgument);
  if (m.is_request ? !coap::is_request(m.code) : !coap::is_response(m.code)) {
    return unexpected(Error::kInvalidArgument);
  }
  bool observe = false;
  const coap::OptionView* proxy_uri = nullptr;
  bool uri_options = false;
  for (const auto& o : m.options) {
    // Nested OSCORE is not supported (§4.1.3.7).
    if (o.number == opt::kOscore) return unexpected(Error::kInvalidArgument);
    if (o.number == opt::kObserve) observe = true;
    if (o.number == opt::kProxyUri) {
      if (proxy_uri) return unexpected(Error::kInvalidArgument);
      proxy_uri = &o;
    }
    if (o.number == opt::kUriHost || o.number == opt::kUriPort || o.number == opt::kUriPath ||
        o.number == opt::kUriQuery || o.number == opt::kProxyScheme) {
      uri_options = true;
    }
  }
  // Proxy-Uri (§4.1.3.3): decomposed; it may not be combined with Uri-* options (RFC 7252 §5.10.2).
  ProxyUriParts proxy;
  if (proxy_uri && (!m.is_request || uri_options || !decompose_proxy_uri(proxy_uri->value, proxy))) {
    return unexpected(Error::kInvalidArgument);
  }
  ACEKDC_TRY(check_sender());
  const ProtectOptions& po = *m.opt;

  // Partial IV and nonce (§5.2, §8.1 step 3, §8.3 step 3).
  std::array<uint8_t, 5> piv{};
  size_t piv_len = 0;
  const bool use_piv = m.is_request || po.partial_iv || m.exchange->nonce_used;
  if (use_piv) {
    auto seq = seq_->next();
    if (!seq) return unexpected(seq.error());
    piv_len = encode_piv(*seq, piv);
  }
  std::array<uint8_t, kMaxNonceLen> nonce{};
  MutableByteView nonce_view(nonce.data(), keys_.nonce_len);
  ByteView piv_view(piv.data(), piv_len);
  // A request starts a new exchange; it replaces the caller's only on success.
  Exchange fresh;
  Exchange& ex = m.is_request ? fresh : *m.exchange;
  if (m.is_request) {
    std::copy(config_.params.sender_id.begin(), config_.params.sender_id.end(), ex.kid.begin());
    ex.kid_len = static_cast<uint8_t>(config_.params.sender_id.size());
    std::copy_n(piv.begin(), piv_len, ex.piv.begin());
    ex.piv_len = static_cast<uint8_t>(piv_len);
    ex.observe = observe;
  }
  if (use_piv) {
    ACEKDC_TRY(make_nonce_for(config_.params.sender_id, piv_view, nonce_view));
  } else {
    ACEKDC_TRY(make_nonce_for(ex.request_kid(), ex.request_piv(), nonce_view));
  }
  std::array<uint8_t, kMaxAadLen> aad;
  auto aad_len = build_aad(config_.params.aead_alg, ex.request_kid(), ex.request_piv(), {}, aad);
  if (!aad_len) return unexpected(aad_len.error());

  // OSCORE option value (§6.1, seed §3.1).
  OptionValue ov;
  ov.partial_iv = piv_view;
  if (m.is_request) {
    ov.kid = ByteView(config_.params.sender_id);
    if (po.kid_context.value_or(config_.send_kid_context) && config_.params.id_context) {
      ov.kid_context = ByteView(*config_.params.id_context);
    }
  }
  if (po.kid_context_value) ov.kid_context = *po.kid_context_value;
  ov.id_detail = po.id_detail;
  std::array<uint8_t, kMaxOptionHeaderLen + kMaxNonceLen> option_buf;
  auto option_len = encode_option(ov, option_buf);
  if (!option_len) return unexpected(option_len.error());

  // Outer message: header, Class U options and the OSCORE option (§4.1.2).
  OptionList outer;
  bool oscore_added = false;
  auto add_oscore = [&] {
    oscore_added = true;
    return outer.push(opt::kOscore, ByteView(option_buf.data(), *option_len));
  };
  for (const auto& o : m.options) {
    if (!oscore_added && o.number > opt::kOscore && !add_oscore()) return unexpected(Error::kInvalidArgument);
    const ByteView value = o.number == opt::kProxyUri ? proxy.outer : o.value;
    if ((outer_only(o.number) || o.number == opt::kObserve) && !outer.push(o.number, value)) {
      return unexpected(Error::kInvalidArgument);
    }
  }
  if (!oscore_added && !add_oscore()) return unexpected(Error::kInvalidArgument);
  // The receiver's parser holds at most kMaxOptions options (found by fuzzing:
  // 64 Observe options would become 65 outer options).
  if (outer.size > coap::kMaxOptions) return unexpected(Error::kInvalidArgument);
  const uint8_t outer_code = m.is_request ? (observe ? ccode::kFetch : ccode::kPost)
                                          : (observe ? ccode::kContent : ccode::kChanged);
  Writer w(out);
  write_header(w, m.type, outer_code, m.message_id, m.token);
  if (!coap::encode_options(w, outer.span())) return unexpected(Error::kBufferTooSmall);
  w.put_u8(cp::coap::kPayloadMarker);
  const size_t pt_start = w.size();

  // Plaintext (§5.3): inner code, Class E options, payload. Notifications carry
  // an empty Inner Observe (§4.1.3.5.2).
  OptionList inner;
  const auto extra = proxy.inner.span();  // Uri-Path / Uri-Query from a Proxy-Uri
  size_t next_extra = 0;
  for (const auto& o : m.options) {
    while (next_extra < extra.size() && extra[next_extra].number <= o.number) {
      if (!inner.push(extra[next_extra].number, extra[next_extra].value)) return unexpected(Error::kInvalidArgument);
      ++next_extra;
    }
    if (outer_only(o.number)) continue;
    ByteView value = (o.number == opt::kObserve && !m.is_request) ? ByteView() : o.value;
    if (!inner.push(o.number, value)) return unexpected(Error::kInvalidArgument);
  }
  for (; next_extra < extra.size(); ++next_extra) {
    if (!inner.push(extra[next_extra].number, extra[next_extra].value)) return unexpected(Error::kInvalidArgument);
  }
  // A decomposed Proxy-Uri can add more options than a receiver parses.
  if (inner.size > coap::kMaxOptions) return unexpected(Error::kInvalidArgument);
  w.put_u8(m.code);
  if (!coap::encode_options(w, inner.span())) return unexpected(Error::kBufferTooSmall);
  if (!m.payload.empty()) {
    w.put_u8(cp::coap::kPayloadMarker);
    w.put_bytes(m.payload);
  }
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  const size_t pt_len = w.size() - pt_start;
  const size_t tag_len = sender_aead_->info().tag_len;
  if (out.size() < pt_start + pt_len + tag_len) return unexpected(Error::kBufferTooSmall);

  ++count_q_;  // seed §2.3.1: before encrypting
  auto sealed = sender_aead_->seal(nonce_view, ByteView(aad.data(), *aad_len),
                                   ByteView(out.data() + pt_start, pt_len), out.subspan(pt_start));
  if (!sealed) return unexpected(Error::kCrypto);
  if (m.is_request) {
    *m.exchange = fresh;
  } else if (!use_piv) {
    ex.nonce_used = true;
  }
  return pt_start + *sealed;
}

Expected<size_t, Error> Context::protect_request(const coap::MessageView& request, MutableByteView out,
                                                 Exchange& out_exchange, const ProtectOptions& opt) {
  Outgoing m{request.type, request.code, request.message_id, request.token, request.options(),
             request.payload, true, &out_exchange, &opt};
  return protect(m, out);
}

Expected<size_t, Error> Context::protect_response(const coap::MessageView& response, Exchange& exchange,
                                                  MutableByteView out, const ProtectOptions& opt) {
  Outgoing m{response.type, response.code, response.message_id, response.token, response.options(),
             response.payload, false, &exchange, &opt};
  return protect(m, out);
}

namespace {
// views_of turns a Message's options into views (no allocation).
bool views_of(const coap::Message& msg, OptionList& list) {
  for (const auto& o : msg.options()) {
    if (!list.push(o.number, o.value)) return false;
  }
  return true;
}
}  // namespace

Expected<size_t, Error> Context::protect_request(const coap::Message& request, MutableByteView out,
                                                 Exchange& out_exchange, const ProtectOptions& opt) {
  OptionList list;
  if (!views_of(request, list)) return unexpected(Error::kInvalidArgument);
  Outgoing m{request.type, request.code, request.message_id, request.token, list.span(),
             request.payload, true, &out_exchange, &opt};
  return protect(m, out);
}

Expected<size_t, Error> Context::protect_response(const coap::Message& response, Exchange& exchange,
                                                  MutableByteView out, const ProtectOptions& opt) {
  OptionList list;
  if (!views_of(response, list)) return unexpected(Error::kInvalidArgument);
  Outgoing m{response.type, response.code, response.message_id, response.token, list.span(),
             response.payload, false, &exchange, &opt};
  return protect(m, out);
}

// ---- verification ----

namespace {

// reconstruct writes header (from outer), inner code, merged options, payload.
Expected<size_t, Error> reconstruct(const coap::MessageView& outer, const coap::MessageView& inner,
                                    std::optional<ByteView> observe_value, MutableByteView out) {
  OptionList merged;
  const auto in = inner.options();
  size_t i = 0;
  for (const auto& o : outer.options()) {
    if (!outer_only(o.number) || o.number == opt::kOscore) continue;
    while (i < in.size() && in[i].number < o.number) {
      if (!merged.push(in[i].number, in[i].value)) return unexpected(Error::kMalformedMessage);
      ++i;
    }
    if (!merged.push(o.number, o.value)) return unexpected(Error::kMalformedMessage);
  }
  for (; i < in.size(); ++i) {
    if (!merged.push(in[i].number, in[i].value)) return unexpected(Error::kMalformedMessage);
  }
  if (observe_value) {
    for (size_t k = 0; k < merged.size; ++k) {
      if (merged.items[k].number == opt::kObserve) merged.items[k].value = *observe_value;
    }
  }
  Writer w(out);
  write_header(w, outer.type, inner.code, outer.message_id, outer.token);
  if (!coap::encode_options(w, merged.span())) return unexpected(Error::kBufferTooSmall);
  if (!inner.payload.empty()) {
    w.put_u8(cp::coap::kPayloadMarker);
    w.put_bytes(inner.payload);
  }
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

// has_outer_class_u: the outer message carries an option other than OSCORE that
// reconstruct() merges into the decrypted one.
bool has_outer_class_u(const coap::MessageView& outer) {
  for (const auto& o : outer.options()) {
    if (outer_only(o.number) && o.number != opt::kOscore) return true;
  }
  return false;
}

// check_inner rejects plaintext options that may only be Outer.
bool inner_ok(const coap::MessageView& inner, bool is_request) {
  if (is_request ? !coap::is_request(inner.code) : !coap::is_response(inner.code)) return false;
  for (const auto& o : inner.options()) {
    if (outer_only(o.number)) return false;
  }
  return true;
}

}  // namespace

Expected<size_t, Error> Context::unprotect_request(ByteView datagram, MutableByteView out,
                                                   Exchange& out_exchange) {
  if (expired()) return unexpected(Error::kContextExpired);
  auto outer = coap::MessageView::parse(datagram);
  if (!outer || !coap::is_request(outer->code)) return unexpected(Error::kMalformedMessage);
  auto ov = find_oscore(*outer);
  if (!ov) return unexpected(ov.error());
  return unprotect_request(*outer, *ov, out, out_exchange);
}

Expected<size_t, Error> Context::unprotect_request(const coap::MessageView& outer_view, const OptionValue& option,
                                                   MutableByteView out, Exchange& out_exchange,
                                                   coap::MessageView* out_inner) {
  if (expired()) return unexpected(Error::kContextExpired);
  const coap::MessageView* outer = &outer_view;
  const OptionValue* ov = &option;
  if (!coap::is_request(outer->code)) return unexpected(Error::kMalformedMessage);
  // A request carries kid and Partial IV (§6.1, §8.2 step 2).
  if (!ov->kid || ov->partial_iv.empty()) return unexpected(Error::kMalformedOption);
  if (!matches_request(*ov)) return unexpected(Error::kContextNotFound);
  if (!recipient_usable()) return unexpected(Error::kRecipientLimitReached);
  const uint64_t seq = *decode_piv(ov->partial_iv);
  // Appendix B.1.2: without a trustworthy window every request is decrypted and
  // only one carrying our Echo challenge is accepted (below).
  const bool window_initialised = replay_->initialised();
  if (window_initialised) {
    ACEKDC_TRY(replay_->check(seq));  // a replay is not counted in count_v (seed §2.3.2)
  }

  std::array<uint8_t, kMaxNonceLen> nonce{};
  MutableByteView nonce_view(nonce.data(), keys_.nonce_len);
  ACEKDC_TRY(make_nonce_for(config_.params.recipient_id, ov->partial_iv, nonce_view));
  std::array<uint8_t, kMaxAadLen> aad;
  auto aad_len = build_aad(config_.params.aead_alg, *ov->kid, ov->partial_iv, {}, aad);
  if (!aad_len) return unexpected(aad_len.error());

  const size_t tag_len = recipient_aead_->info().tag_len;
  const ByteView ct = outer->payload;
  if (ct.size() < tag_len + 1) return unexpected(Error::kMalformedMessage);
  if (ct.size() - tag_len > scratch_.size()) return unexpected(Error::kBufferTooSmall);
  // A view of a request without outer options to merge is the plaintext itself:
  // decrypted straight into `out`, parsed once, never re-encoded.
  const bool direct = out_inner != nullptr && window_initialised && out.size() >= ct.size() - tag_len &&
                      !has_outer_class_u(*outer);
  const MutableByteView plain = direct ? out : MutableByteView(scratch_);
  auto opened = recipient_aead_->open(nonce_view, ByteView(aad.data(), *aad_len), ct, plain);
  if (!opened) {
    ++count_v_;  // seed §2.3.2
    return unexpected(Error::kDecryptionFailed);
  }
  if (window_initialised) replay_->update(seq);  // §8.2 step 6: only after successful decryption
  auto inner = coap::MessageView::parse_inner(ByteView(plain.data(), *opened));
  if (!inner || !inner_ok(*inner, true)) return unexpected(Error::kMalformedMessage);
  auto fill_exchange = [&] {
    out_exchange = Exchange{};
    std::copy(ov->kid->begin(), ov->kid->end(), out_exchange.kid.begin());
    out_exchange.kid_len = static_cast<uint8_t>(ov->kid->size());
    std::copy(ov->partial_iv.begin(), ov->partial_iv.end(), out_exchange.piv.begin());
    out_exchange.piv_len = static_cast<uint8_t>(ov->partial_iv.size());
    out_exchange.observe = inner->has(opt::kObserve);
  };
  if (!window_initialised) {
    // Appendix B.1.2 / RFC 9175 §2.4: the request is fresh only if its (single)
    // Inner Echo is the challenge we issued since the restart.
    const ByteView challenge = echo_challenge();
    const coap::OptionView* echo = inner->find(opt::kEcho);
    const bool fresh = echo && inner->count(opt::kEcho) == 1 && challenge.size() == echo_->value.size() &&
                       constant_time_equal(echo->value, challenge);
    if (!fresh) {
      fill_exchange();
      // The request may be an old one replayed: never reuse its nonce (B.1.2:
      // the 4.01 MUST carry the server's own Partial IV).
      out_exchange.nonce_used = true;
      return unexpected(Error::kEchoRequired);
    }
  }
  if (direct) {
    fill_exchange();
    *out_inner = *inner;
    out_inner->type = outer->type;
    out_inner->message_id = outer->message_id;
    out_inner->token = outer->token;
    return *opened;
  }
  auto n = reconstruct(*outer, *inner, std::nullopt, out);
  if (!n) return unexpected(n.error());
  if (out_inner) {
    auto merged = coap::MessageView::parse(ByteView(out.data(), *n));
    if (!merged) return unexpected(Error::kMalformedMessage);
    *out_inner = *merged;
  }
  if (!window_initialised) {
    replay_->initialise_at(seq);  // B.1.2: this Partial IV is the window's lower limit
    echo_->drawn = false;
  }
  fill_exchange();
  return n;
}

Expected<size_t, Error> Context::unprotect_response(ByteView datagram, Exchange& ex, MutableByteView out) {
  if (expired()) return unexpected(Error::kContextExpired);
  auto outer = coap::MessageView::parse(datagram);
  if (!outer || !coap::is_response(outer->code)) return unexpected(Error::kMalformedMessage);
  auto ov = find_oscore(*outer);
  if (!ov) return unexpected(ov.error());
  return unprotect_response(*outer, *ov, ex, out);
}

Expected<size_t, Error> Context::unprotect_response(const coap::MessageView& outer_view, const OptionValue& option,
                                                    Exchange& ex, MutableByteView out) {
  if (expired()) return unexpected(Error::kContextExpired);
  const coap::MessageView* outer = &outer_view;
  const OptionValue* ov = &option;
  if (!coap::is_response(outer->code)) return unexpected(Error::kMalformedMessage);
  if (ov->kid && !equal(*ov->kid, config_.params.recipient_id)) return unexpected(Error::kContextNotFound);
  if (!recipient_usable()) return unexpected(Error::kRecipientLimitReached);

  const bool has_piv = !ov->partial_iv.empty();
  std::optional<uint64_t> piv;
  if (has_piv) piv = *decode_piv(ov->partial_iv);
  // Replay checks (§7.4, §7.4.1, §8.4.2) before decrypting: not counted in count_v.
  if (!ex.observe && ex.answered) return unexpected(Error::kReplay);
  if (!has_piv && ex.nonce_used) return unexpected(Error::kReplay);
  if (has_piv && ex.observe && ex.notification_number && *piv <= *ex.notification_number) {
    return unexpected(Error::kReplay);
  }

  std::array<uint8_t, kMaxNonceLen> nonce{};
  MutableByteView nonce_view(nonce.data(), keys_.nonce_len);
  if (has_piv) {
    ACEKDC_TRY(make_nonce_for(config_.params.recipient_id, ov->partial_iv, nonce_view));
  } else {
    ACEKDC_TRY(make_nonce_for(ex.request_kid(), ex.request_piv(), nonce_view));
  }
  std::array<uint8_t, kMaxAadLen> aad;
  auto aad_len = build_aad(config_.params.aead_alg, ex.request_kid(), ex.request_piv(), {}, aad);
  if (!aad_len) return unexpected(aad_len.error());

  const size_t tag_len = recipient_aead_->info().tag_len;
  const ByteView ct = outer->payload;
  if (ct.size() < tag_len + 1) return unexpected(Error::kMalformedMessage);
  if (ct.size() - tag_len > scratch_.size()) return unexpected(Error::kBufferTooSmall);
  auto opened = recipient_aead_->open(nonce_view, ByteView(aad.data(), *aad_len), ct, scratch_);
  if (!opened) {
    ++count_v_;
    return unexpected(Error::kDecryptionFailed);
  }
  auto inner = coap::MessageView::parse_inner(ByteView(scratch_.data(), *opened));
  if (!inner || !inner_ok(*inner, false)) return unexpected(Error::kMalformedMessage);
  const bool notification = inner->has(opt::kObserve);
  // §4.1.3.5.2: an Inner Observe in a response to a non-Observe request stops processing.
  if (notification && !ex.observe) return unexpected(Error::kMalformedMessage);

  // The decrypted notification's Observe: the 3 low bytes of the Partial IV (§4.1.3.5.2).
  uint8_t obs_buf[4];
  std::optional<ByteView> observe_value;
  if (notification) {
    const size_t len = coap::encode_uint(static_cast<uint32_t>(piv.value_or(0) & 0xffffff), obs_buf);
    observe_value = ByteView(obs_buf, len);
  }
  auto n = reconstruct(*outer, *inner, observe_value, out);
  if (!n) return unexpected(n.error());
  if (!has_piv) ex.nonce_used = true;
  if (notification && has_piv) ex.notification_number = *piv;
  if (!notification) ex.answered = true;
  return n;
}

// ---- error responses ----

std::optional<ErrorResponse> error_response(Error e) {
  switch (e) {
    case Error::kMalformedOption:
    case Error::kMalformedMessage:
      return ErrorResponse{ccode::kBadOption, "Failed to decode COSE"};
    case Error::kContextNotFound:
      return ErrorResponse{ccode::kUnauthorized, "Security context not found"};
    case Error::kDecryptionFailed:
      return ErrorResponse{ccode::kBadRequest, "Decryption failed"};
    case Error::kReplay:
      return ErrorResponse{ccode::kUnauthorized, "Replay detected"};
    case Error::kRecipientLimitReached:
      return ErrorResponse{ccode::kUnauthorized, "Key usage limit reached"};
    case Error::kContextExpired:
      return ErrorResponse{ccode::kUnauthorized, "Security context expired"};
    default:
      return std::nullopt;
  }
}

Expected<size_t, Error> build_error_response(ByteView request_datagram, Error e, MutableByteView out) {
  auto answer = error_response(e);
  if (!answer) return unexpected(Error::kInvalidArgument);
  auto req = coap::MessageView::parse(request_datagram);
  if (!req) return unexpected(Error::kMalformedMessage);
  const coap::Type type = req->type == coap::Type::kCon ? coap::Type::kAck : coap::Type::kNon;
  Writer w(out);
  write_header(w, type, answer->code, req->message_id, req->token);
  const coap::OptionView max_age{opt::kMaxAge, ByteView()};  // Max-Age 0 (§8.2)
  if (!coap::encode_options(w, std::span<const coap::OptionView>(&max_age, 1))) {
    return unexpected(Error::kBufferTooSmall);
  }
  w.put_u8(cp::coap::kPayloadMarker);
  w.put_bytes(as_bytes(answer->diagnostic));
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

}  // namespace acekdc::oscore
