#include "grouposcore/group_context.h"

#include <algorithm>
#include <cstring>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/reader.h"
#include "core/writer.h"

namespace acekdc::grouposcore {

namespace opt = cp::coap::option;
namespace ccode = cp::coap::code;
namespace go = cp::group_oscore;

namespace {

// Options kept Outer only (RFC 8613 §4.1, Figure 5, column U without E).
bool outer_only(uint16_t n) {
  return n == opt::kUriHost || n == opt::kUriPort || n == opt::kProxyScheme || n == opt::kProxyUri ||
         n == opt::kOscore;
}

// OptionList: a fixed-capacity list of option views (no allocation).
struct OptionList {
  std::array<coap::OptionView, coap::kMaxOptions> items;
  size_t size = 0;
  bool push(uint16_t number, ByteView value) {
    if (size == items.size()) return false;
    items[size++] = coap::OptionView{number, value};
    return true;
  }
  std::span<const coap::OptionView> span() const { return {items.data(), size}; }
};

// GroupOption is a decoded OSCORE option of a group mode message.
struct GroupOption {
  bool group = false;
  ByteView piv;
  std::optional<ByteView> kid_context;
  std::optional<ByteView> kid;
};

// parse_option decodes an OSCORE option value (RFC 8613 §6.1 with the Group Flag).
// The extension bits (0x80, 0x40) are not used with Group OSCORE: malformed.
bool parse_option(ByteView value, GroupOption& out) {
  out = GroupOption{};
  if (value.empty()) return true;
  Reader r(value);
  uint8_t flags = 0;
  r.read_u8(flags);
  if (flags & 0xC0) return false;
  const size_t n = flags & cp::oscore::kFlagPivLenMask;
  if (n > cp::oscore::kMaxPartialIvLen) return false;
  out.group = flags & go::kFlagGroup;
  if (!r.read_bytes(n, out.piv)) return false;
  if (flags & cp::oscore::kFlagKidContext) {
    uint8_t s = 0;
    ByteView ctx;
    if (!r.read_u8(s) || !r.read_bytes(s, ctx)) return false;
    out.kid_context = ctx;
  }
  if (flags & cp::oscore::kFlagKid) {
    out.kid = r.rest();
  } else if (!r.empty()) {
    return false;
  }
  return r.ok();
}

// encode_option writes flags | Partial IV | [s | kid context] | kid.
bool encode_option(ByteView piv, std::optional<ByteView> kid_context, ByteView kid, Writer& w) {
  uint8_t flags = static_cast<uint8_t>(piv.size()) | cp::oscore::kFlagKid | go::kFlagGroup;
  if (kid_context) flags |= cp::oscore::kFlagKidContext;
  w.put_u8(flags);
  w.put_bytes(piv);
  if (kid_context) {
    if (kid_context->size() > 255) return false;
    w.put_u8(static_cast<uint8_t>(kid_context->size()));
    w.put_bytes(*kid_context);
  }
  w.put_bytes(kid);
  return w.ok();
}

// ExternalAad holds the serialized external_aad array (without the bstr wrapping).
constexpr size_t kMaxExternalAadLen = 512;

struct AadInput {
  int alg;
  int sign_alg;
  ByteView request_kid;
  ByteView request_piv;
  ByteView group_id;
  ByteView option;
  ByteView credential;
};

// build_external_aad writes the Group OSCORE external_aad array (see the header).
bool build_external_aad(const AadInput& in, Writer& w) {
  cbor::Encoder e(w);
  e.put_array(9).put_uint(cp::oscore::kVersion);
  // algorithms: [AEAD Algorithm, Group Encryption Algorithm, Signature Algorithm,
  // Pairwise Key Agreement Algorithm]; 'alg' is both of the first two, no pairwise mode.
  e.put_array(4).put_int(in.alg).put_int(in.alg).put_int(in.sign_alg).put_null();
  e.put_bstr(in.request_kid).put_bstr(in.request_piv).put_bstr({});
  e.put_bstr(in.group_id).put_bstr(in.option).put_bstr(in.credential);
  e.put_null();  // gm_cred: the -05 KDC has no credential of its own
  return e.ok();
}

// build_enc_structure writes ["Encrypt0", h'', external_aad] (RFC 9052 §5.3).
bool build_enc_structure(ByteView external_aad, Writer& w) {
  cbor::Encoder e(w);
  e.put_array(3).put_tstr(cp::oscore::kEncrypt0Context).put_bstr({}).put_bstr(external_aad);
  return e.ok();
}

// build_tbs_header writes the Countersign_structure up to the ciphertext's bstr
// header: ["CounterSignature0", h'', h'', external_aad, bstr(ciphertext_len) ...
bool build_tbs_header(ByteView external_aad, size_t ciphertext_len, Writer& w) {
  cbor::Encoder e(w);
  e.put_array(5).put_tstr(go::kCountersignContext).put_bstr({}).put_bstr({}).put_bstr(external_aad);
  e.put_bstr_header(ciphertext_len);
  return e.ok();
}

void write_header(Writer& w, coap::Type type, uint8_t code, uint16_t mid, ByteView token) {
  w.put_u8(static_cast<uint8_t>((cp::coap::kVersion << 6) | (static_cast<uint8_t>(type) << 4) | token.size()));
  w.put_u8(code);
  w.put_u16(mid);
  w.put_bytes(token);
}

Error from_oscore(oscore::Error e) {
  switch (e) {
    case oscore::Error::kSequenceExhausted: return Error::kSequenceExhausted;
    case oscore::Error::kStorageFailure: return Error::kStorageFailure;
    case oscore::Error::kUnsupportedAlgorithm: return Error::kUnsupportedAlgorithm;
    case oscore::Error::kBufferTooSmall: return Error::kBufferTooSmall;
    case oscore::Error::kReplay: return Error::kReplay;
    default: return Error::kInvalidArgument;
  }
}

int crv_for(int sign_alg) {
  if (sign_alg == cp::alg::kEdDSA) return cp::crv::kEd25519;
  if (sign_alg == cp::alg::kES256) return cp::crv::kP256;
  return 0;
}

}  // namespace

// ---- members ----

struct GroupContext::Peer {
  Bytes kid;
  crypto::KeyPair public_key;
  Bytes credential;
  std::unique_ptr<crypto::Verifier> verifier;
  Recipient* recipient = nullptr;
  // min_seq: after its Recipient Context was evicted, only sequence numbers at or
  // above this are accepted from this sender.
  uint64_t min_seq = 0;
};

struct GroupContext::Recipient {
  Peer* peer = nullptr;
  std::unique_ptr<crypto::Aead> aead;
  oscore::ReplayWindow window;
  uint64_t last_used = 0;
  // synced: the replay window can be trusted (echo_new_senders: only after an Echo
  // round); echo: the value of the last challenge, single use.
  bool synced = true;
  std::array<uint8_t, 8> echo{};
  bool echo_pending = false;
  explicit Recipient(uint32_t size) : window(size) {}
};

struct GroupContext::Outgoing {
  const coap::Message* msg;
  bool is_request;
  GroupExchange* exchange;
  bool new_piv;
};

Expected<Bytes, Error> auth_credential(const crypto::KeyPair& key, ByteView sender_id) {
  if (key.x.empty()) return unexpected(Error::kInvalidKey);
  const bool ec2 = key.crv == cp::crv::kP256;
  if (!ec2 && key.crv != cp::crv::kEd25519) return unexpected(Error::kInvalidKey);
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_map(ec2 ? 5 : 4);
  e.put_int(cp::keyparam::kKty).put_int(ec2 ? cp::kty::kEC2 : cp::kty::kOKP);
  e.put_int(cp::keyparam::kKid).put_bstr(sender_id);
  e.put_int(cp::keyparam::kCrv).put_int(key.crv);
  e.put_int(cp::keyparam::kX).put_bstr(key.x);
  if (ec2) e.put_int(cp::keyparam::kY).put_bstr(key.y);
  if (!e.ok()) return unexpected(Error::kInvalidKey);
  return out;
}

// ---- creation ----

GroupContext::GroupContext(crypto::Provider& provider, GroupConfig config)
    : provider_(provider), config_(std::move(config)) {}

GroupContext::~GroupContext() {
  secure_zero(sender_key_.data(), sender_key_.size());
  secure_zero(sekey_.data(), sekey_.size());
}

Expected<std::unique_ptr<GroupContext>, Error> GroupContext::create(crypto::Provider& provider,
                                                                    GroupConfig config) {
  std::unique_ptr<GroupContext> c(new GroupContext(provider, std::move(config)));
  ACEKDC_TRY(c->init());
  return c;
}

Expected<void, Error> GroupContext::init() {
  const InputMaterial& m = config_.material;
  if (config_.sender_id) {
    sender_id_ = *config_.sender_id;
  } else if (m.sender_id) {
    sender_id_ = *m.sender_id;
  } else {
    return unexpected(Error::kInvalidArgument);
  }
  auto info = crypto::aead_info(m.aead_alg);
  auto sig_len = crypto::signature_len(m.sign_alg);
  auto hash = oscore::hkdf_hash(m.hkdf_alg);
  if (!info || !sig_len || !hash || crv_for(m.sign_alg) == 0) return unexpected(Error::kUnsupportedAlgorithm);
  aead_info_ = *info;
  sig_len_ = *sig_len;
  hash_ = *hash;
  if (aead_info_.nonce_len < oscore::kMinNonceLen || sender_id_.size() > aead_info_.nonce_len - 6 ||
      m.group_id.size() > kMaxGroupIdLen || m.master_secret.empty() || config_.own_key.d.empty() ||
      config_.max_recipients == 0 || config_.max_message_len == 0) {
    return unexpected(Error::kInvalidArgument);
  }
  if (config_.own_key.crv != crv_for(m.sign_alg)) return unexpected(Error::kInvalidKey);

  // Sender Key, Common IV, Signature Encryption Key.
  auto derive = [&](ByteView id, const char* type, size_t len, uint8_t* out) -> Expected<void, Error> {
    std::array<uint8_t, 64 + kMaxIdLen + kMaxGroupIdLen> info_buf;
    auto n = oscore::build_info(id, ByteView(m.group_id), m.aead_alg, type, len, info_buf);
    if (!n) return unexpected(from_oscore(n.error()));
    if (!provider_.hkdf(hash_, m.master_salt, m.master_secret, ByteView(info_buf.data(), *n),
                        MutableByteView(out, len))) {
      return unexpected(Error::kCrypto);
    }
    return {};
  };
  ACEKDC_TRY(derive(sender_id_, cp::oscore::kInfoTypeKey, aead_info_.key_len, sender_key_.data()));
  ACEKDC_TRY(derive({}, cp::oscore::kInfoTypeIV, aead_info_.nonce_len, common_iv_.data()));
  ACEKDC_TRY(derive({}, go::kInfoTypeSEKey, aead_info_.key_len, sekey_.data()));
  auto aead = provider_.make_aead(m.aead_alg, ByteView(sender_key_.data(), aead_info_.key_len));
  if (!aead) return unexpected(Error::kCrypto);
  sender_aead_ = std::move(*aead);

  // Own key pair: a signer, and our authentication credential from the public part,
  // always recomputed from d so that a stale x/y can never go into the credential.
  if (!provider_.complete_public(config_.own_key)) return unexpected(Error::kInvalidKey);
  auto signer = provider_.make_signer(m.sign_alg, config_.own_key);
  if (!signer) {
    return unexpected(signer.error() == crypto::Error::kUnsupportedAlgorithm ? Error::kUnsupportedAlgorithm
                                                                             : Error::kInvalidKey);
  }
  signer_ = std::move(*signer);
  crypto::KeyPair pub = config_.own_key;
  secure_zero(pub.d);
  pub.d.clear();
  auto cred = auth_credential(pub, sender_id_);
  if (!cred) return unexpected(cred.error());
  own_cred_ = std::move(*cred);

  // Sender Sequence Number: one counter per (Group ID, Sender ID).
  seq_ = std::make_unique<oscore::SequenceAllocator>(
      config_.store, oscore::sequence_key(m.group_id, true, sender_id_), config_.seq_chunk);
  auto started = seq_->start(config_.initial_seq);
  if (!started) return unexpected(from_oscore(started.error()));
  scratch_.resize(config_.max_message_len + kMaxExternalAadLen + 64);
  return {};
}

Expected<void, Error> GroupContext::restart_sequence() {
  auto seq = std::make_unique<oscore::SequenceAllocator>(
      config_.store, oscore::sequence_key(config_.material.group_id, true, sender_id_), config_.seq_chunk);
  // Without a store there is nothing to reload: continue after the numbers used.
  auto started = seq->start(config_.store ? config_.initial_seq : seq_->peek());
  if (!started) return unexpected(from_oscore(started.error()));
  seq_ = std::move(seq);
  ++num_seq_restarts_;
  return {};
}

Expected<std::unique_ptr<GroupContext>, Error> GroupContext::rekey(InputMaterial material) const {
  if (equal(material.group_id, config_.material.group_id)) return unexpected(Error::kInvalidArgument);
  GroupConfig cfg = config_;
  if (material.sender_id) {
    cfg.sender_id.reset();
  } else {
    cfg.sender_id = sender_id_;
  }
  cfg.material = std::move(material);
  auto next = create(provider_, std::move(cfg));
  if (!next) return next;
  auto& c = **next;
  c.previous_group_ids_ = previous_group_ids_;
  c.previous_group_ids_.push_back(config_.material.group_id);
  while (c.previous_group_ids_.size() > config_.max_previous_group_ids) {
    c.previous_group_ids_.erase(c.previous_group_ids_.begin());
  }
  for (const auto& p : peers_) {
    if (equal(p->kid, c.sender_id_)) continue;
    auto k = cose::CoseKey::from_keypair(p->public_key, p->kid, std::nullopt, false);
    auto added = c.add_member_key(k);
    if (!added) return unexpected(added.error());
  }
  c.lookup_ = lookup_;
  return next;
}

// ---- member keys ----

GroupContext::Peer* GroupContext::find_peer(ByteView kid) const {
  for (const auto& p : peers_) {
    if (equal(p->kid, kid)) return p.get();
  }
  return nullptr;
}

Expected<void, Error> GroupContext::add_member_key(const cose::CoseKey& key) {
  if (key.kid.empty() || key.kid.size() > aead_info_.nonce_len - 6) return unexpected(Error::kInvalidKey);
  if (equal(key.kid, sender_id_)) return unexpected(Error::kInvalidArgument);
  if (key.crv != crv_for(config_.material.sign_alg)) return unexpected(Error::kInvalidKey);
  auto pub = key.to_public_keypair();
  if (!pub) return unexpected(Error::kInvalidKey);
  auto verifier = provider_.make_verifier(config_.material.sign_alg, *pub);
  if (!verifier) return unexpected(Error::kInvalidKey);
  auto cred = auth_credential(*pub, key.kid);
  if (!cred) return unexpected(cred.error());
  Peer* p = find_peer(key.kid);
  if (!p) {
    if (peers_.size() >= config_.max_members) return unexpected(Error::kTooManyMembers);
    peers_.push_back(std::make_unique<Peer>());
    p = peers_.back().get();
    p->kid = key.kid;
  }
  p->public_key = std::move(*pub);
  p->credential = std::move(*cred);
  p->verifier = std::move(*verifier);
  return {};
}

void GroupContext::remove_member(ByteView kid) {
  for (auto it = peers_.begin(); it != peers_.end(); ++it) {
    if (!equal((*it)->kid, kid)) continue;
    if (Recipient* r = (*it)->recipient) {
      recipients_.erase(std::find_if(recipients_.begin(), recipients_.end(),
                                     [r](const auto& x) { return x.get() == r; }));
    }
    peers_.erase(it);
    return;
  }
}

size_t GroupContext::num_recipient_contexts() const { return recipients_.size(); }

Expected<GroupContext::Recipient*, Error> GroupContext::recipient_for(ByteView kid) {
  if (equal(kid, sender_id_)) return unexpected(Error::kOwnMessage);
  if (kid.size() > aead_info_.nonce_len - 6) return unexpected(Error::kUnknownSender);
  Peer* p = find_peer(kid);
  if (!p && lookup_) {
    if (auto k = lookup_(kid); k && equal(k->kid, kid)) {
      ACEKDC_TRY(add_member_key(*k));
      p = find_peer(kid);
    }
  }
  if (!p) return unexpected(Error::kUnknownSender);
  if (p->recipient) {
    p->recipient->last_used = ++use_clock_;
    return p->recipient;
  }
  // A new Recipient Context (derived on the first message from this sender).
  std::array<uint8_t, oscore::kMaxKeyLen> key{};
  const InputMaterial& m = config_.material;
  std::array<uint8_t, 64 + kMaxIdLen + kMaxGroupIdLen> info_buf;
  auto n = oscore::build_info(kid, ByteView(m.group_id), m.aead_alg, cp::oscore::kInfoTypeKey,
                              aead_info_.key_len, info_buf);
  if (!n) return unexpected(from_oscore(n.error()));
  if (!provider_.hkdf(hash_, m.master_salt, m.master_secret, ByteView(info_buf.data(), *n),
                      MutableByteView(key.data(), aead_info_.key_len))) {
    return unexpected(Error::kCrypto);
  }
  auto aead = provider_.make_aead(m.aead_alg, ByteView(key.data(), aead_info_.key_len));
  secure_zero(key.data(), key.size());
  if (!aead) return unexpected(Error::kCrypto);
  Recipient* r = nullptr;
  if (recipients_.size() < config_.max_recipients) {
    recipients_.push_back(std::make_unique<Recipient>(config_.replay_window));
    r = recipients_.back().get();
  } else {
    // Evict the least recently used; its sender keeps a floor so nothing old is replayed.
    auto lru = std::min_element(recipients_.begin(), recipients_.end(),
                                [](const auto& a, const auto& b) { return a->last_used < b->last_used; });
    r = lru->get();
    Peer* old = r->peer;
    if (r->window.any()) old->min_seq = std::max(old->min_seq, r->window.highest() + 1);
    old->recipient = nullptr;
    r->window.reset();
  }
  r->peer = p;
  r->aead = std::move(*aead);
  r->last_used = ++use_clock_;
  // A sender evicted before keeps its floor: its window stays trustworthy.
  r->synced = !config_.echo_new_senders || p->min_seq > 0;
  r->echo_pending = false;
  p->recipient = r;
  return r;
}

// ---- protection ----

Expected<void, Error> GroupContext::keystream(ByteView piv_generator, ByteView piv, bool request,
                                              MutableByteView out) {
  std::array<uint8_t, 16 + kMaxIdLen + kMaxGroupIdLen> info_buf;
  Writer w(info_buf);
  cbor::Encoder e(w);
  e.put_array(4).put_bstr(piv_generator).put_bstr(config_.material.group_id).put_bool(request);
  e.put_uint(sig_len_);
  if (!e.ok()) return unexpected(Error::kInvalidArgument);
  if (!provider_.hkdf(hash_, piv, ByteView(sekey_.data(), aead_info_.key_len), w.written(),
                      out.first(sig_len_))) {
    return unexpected(Error::kCrypto);
  }
  return {};
}

Expected<size_t, Error> GroupContext::protect(const Outgoing& m, MutableByteView out) {
  const coap::Message& msg = *m.msg;
  if (msg.token.size() > coap::kMaxTokenLen) return unexpected(Error::kInvalidArgument);
  if (m.is_request ? !coap::is_request(msg.code) : !coap::is_response(msg.code)) {
    return unexpected(Error::kInvalidArgument);
  }
  for (const auto& o : msg.options()) {
    // Not supported in group mode here: nested OSCORE, Proxy-Uri decomposition, Observe.
    if (o.number == opt::kOscore || o.number == opt::kProxyUri || o.number == opt::kObserve) {
      return unexpected(Error::kInvalidArgument);
    }
  }
  GroupExchange& ex = *m.exchange;
  if (!m.is_request && !equal(ex.request_group_id(), config_.material.group_id)) {
    return unexpected(Error::kStaleGroupId);
  }
  const bool use_piv = m.is_request || m.new_piv || ex.nonce_used;
  std::array<uint8_t, 5> piv{};
  size_t piv_len = 0;
  if (use_piv) {
    auto seq = seq_->next();
    if (!seq && seq.error() == oscore::Error::kStorageFailure && config_.restart_sequence_on_failure) {
      ACEKDC_TRY(restart_sequence());
      seq = seq_->next();
    }
    if (!seq) return unexpected(from_oscore(seq.error()));
    piv_len = oscore::encode_piv(*seq, piv);
  }
  const ByteView own_piv(piv.data(), piv_len);
  GroupExchange fresh;
  if (m.is_request) {
    std::copy(sender_id_.begin(), sender_id_.end(), fresh.kid.begin());
    fresh.kid_len = static_cast<uint8_t>(sender_id_.size());
    std::copy_n(piv.begin(), piv_len, fresh.piv.begin());
    fresh.piv_len = static_cast<uint8_t>(piv_len);
    const auto& gid = config_.material.group_id;
    std::copy(gid.begin(), gid.end(), fresh.group_id.begin());
    fresh.group_id_len = static_cast<uint8_t>(gid.size());
  }
  const GroupExchange& req = m.is_request ? fresh : ex;
  const ByteView piv_generator = use_piv ? ByteView(sender_id_) : req.request_kid();
  const ByteView nonce_piv = use_piv ? own_piv : req.request_piv();

  // OSCORE option.
  std::array<uint8_t, 2 + 5 + kMaxGroupIdLen + kMaxIdLen> option_buf;
  Writer ow(option_buf);
  std::optional<ByteView> kid_context;
  if (m.is_request) kid_context = ByteView(config_.material.group_id);
  if (!encode_option(own_piv, kid_context, sender_id_, ow)) return unexpected(Error::kInvalidArgument);
  const ByteView option = ow.written();

  // external_aad and the Enc_structure.
  std::array<uint8_t, kMaxExternalAadLen> ext_buf;
  Writer ew(ext_buf);
  if (!build_external_aad({config_.material.aead_alg, config_.material.sign_alg, req.request_kid(),
                           req.request_piv(), config_.material.group_id, option, own_cred_},
                          ew)) {
    return unexpected(Error::kBufferTooSmall);
  }
  const ByteView external_aad = ew.written();
  std::array<uint8_t, kMaxExternalAadLen + 32> aad_buf;
  Writer aw(aad_buf);
  if (!build_enc_structure(external_aad, aw)) return unexpected(Error::kBufferTooSmall);

  std::array<uint8_t, oscore::kMaxNonceLen> nonce{};
  const MutableByteView nonce_view(nonce.data(), aead_info_.nonce_len);
  auto made = oscore::make_nonce(ByteView(common_iv_.data(), aead_info_.nonce_len), piv_generator,
                                 nonce_piv, nonce_view);
  if (!made) return unexpected(from_oscore(made.error()));

  // Outer message: header, Class U options, the OSCORE option.
  OptionList outer;
  bool oscore_added = false;
  for (const auto& o : msg.options()) {
    if (!oscore_added && o.number > opt::kOscore) {
      oscore_added = true;
      if (!outer.push(opt::kOscore, option)) return unexpected(Error::kInvalidArgument);
    }
    if (outer_only(o.number) && !outer.push(o.number, o.value)) return unexpected(Error::kInvalidArgument);
  }
  if (!oscore_added && !outer.push(opt::kOscore, option)) return unexpected(Error::kInvalidArgument);
  Writer w(out);
  write_header(w, msg.type, m.is_request ? ccode::kPost : ccode::kChanged, msg.message_id, msg.token);
  if (!coap::encode_options(w, outer.span())) return unexpected(Error::kBufferTooSmall);
  w.put_u8(cp::coap::kPayloadMarker);
  const size_t pt_start = w.size();

  // Plaintext: inner code, Class E options, payload (RFC 8613 §5.3).
  OptionList inner;
  for (const auto& o : msg.options()) {
    if (!outer_only(o.number) && !inner.push(o.number, o.value)) return unexpected(Error::kInvalidArgument);
  }
  w.put_u8(msg.code);
  if (!coap::encode_options(w, inner.span())) return unexpected(Error::kBufferTooSmall);
  if (!msg.payload.empty()) {
    w.put_u8(cp::coap::kPayloadMarker);
    w.put_bytes(msg.payload);
  }
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  const size_t pt_len = w.size() - pt_start;
  const size_t ct_len = pt_len + aead_info_.tag_len;
  if (out.size() < pt_start + ct_len + sig_len_) return unexpected(Error::kBufferTooSmall);
  if (ct_len > config_.max_message_len) return unexpected(Error::kBufferTooSmall);
  auto sealed = sender_aead_->seal(nonce_view, aw.written(), ByteView(out.data() + pt_start, pt_len),
                                   out.subspan(pt_start));
  if (!sealed) return unexpected(Error::kCrypto);
  const ByteView ciphertext(out.data() + pt_start, *sealed);

  // Countersignature over the ciphertext, encrypted with the keystream.
  Writer tw{MutableByteView(scratch_)};
  if (!build_tbs_header(external_aad, ciphertext.size(), tw) || !tw.put_bytes(ciphertext)) {
    return unexpected(Error::kBufferTooSmall);
  }
  uint8_t* sig = out.data() + pt_start + *sealed;
  auto signed_len = signer_->sign(tw.written(), MutableByteView(sig, sig_len_));
  if (!signed_len || *signed_len != sig_len_) return unexpected(Error::kCrypto);
  std::array<uint8_t, kMaxSignatureLen> ks{};
  ACEKDC_TRY(keystream(piv_generator, nonce_piv, m.is_request, ks));
  for (size_t i = 0; i < sig_len_; ++i) sig[i] ^= ks[i];

  if (m.is_request) {
    *m.exchange = fresh;
  } else if (!use_piv) {
    ex.nonce_used = true;
  }
  return pt_start + *sealed + sig_len_;
}

Expected<size_t, Error> GroupContext::protect_request(const coap::Message& request, MutableByteView out,
                                                      GroupExchange& out_exchange) {
  return protect(Outgoing{&request, true, &out_exchange, true}, out);
}

Expected<size_t, Error> GroupContext::protect_response(const coap::Message& response, GroupExchange& exchange,
                                                       MutableByteView out, bool new_partial_iv) {
  return protect(Outgoing{&response, false, &exchange, new_partial_iv}, out);
}

// ---- verification ----

Expected<size_t, Error> GroupContext::verify(ByteView datagram, bool is_request, GroupExchange& ex,
                                             MutableByteView out, Received& rx) {
  auto outer = coap::MessageView::parse(datagram);
  if (!outer || (is_request ? !coap::is_request(outer->code) : !coap::is_response(outer->code))) {
    return unexpected(Error::kMalformedMessage);
  }
  if (outer->count(opt::kOscore) != 1) return unexpected(Error::kMalformedOption);
  const ByteView option = outer->find(opt::kOscore)->value;
  GroupOption ov;
  if (!parse_option(option, ov)) return unexpected(Error::kMalformedOption);
  if (!ov.group) return unexpected(Error::kNotGroupMode);
  // Group mode: every message carries the sender's kid; a request also its Partial IV
  // and the Group ID as kid context.
  if (!ov.kid || ov.kid->empty() || (is_request && (ov.piv.empty() || !ov.kid_context))) {
    return unexpected(Error::kMalformedOption);
  }
  const ByteView group_id = is_request ? *ov.kid_context : ex.request_group_id();
  if (ov.kid_context && !is_request && !equal(*ov.kid_context, group_id)) {
    return unexpected(Error::kMalformedOption);
  }
  if (!equal(group_id, config_.material.group_id)) {
    for (const auto& old : previous_group_ids_) {
      if (equal(old, group_id)) return unexpected(Error::kStaleGroupId);
    }
    return unexpected(Error::kUnknownGroupId);
  }
  const ByteView kid = *ov.kid;
  if (!is_request) {
    for (size_t i = 0; i < ex.num_responders; ++i) {
      const auto& r = ex.responders[i];
      if (equal(ByteView(r.data() + 1, r[0]), kid)) return unexpected(Error::kReplay);
    }
    if (ex.num_responders == kMaxResponders) return unexpected(Error::kReplay);
  }
  auto rc = recipient_for(kid);
  if (!rc) return unexpected(rc.error());
  Recipient& r = **rc;
  std::optional<uint64_t> seq;
  if (!ov.piv.empty()) seq = oscore::decode_piv(ov.piv);
  if (is_request) {
    if (*seq < r.peer->min_seq || !r.window.check(*seq)) return unexpected(Error::kReplay);
    ex = GroupExchange{};
    std::copy(kid.begin(), kid.end(), ex.kid.begin());
    ex.kid_len = static_cast<uint8_t>(kid.size());
    std::copy(ov.piv.begin(), ov.piv.end(), ex.piv.begin());
    ex.piv_len = static_cast<uint8_t>(ov.piv.size());
    std::copy(group_id.begin(), group_id.end(), ex.group_id.begin());
    ex.group_id_len = static_cast<uint8_t>(group_id.size());
  }
  const ByteView piv_generator = ov.piv.empty() ? ex.request_kid() : kid;
  const ByteView nonce_piv = ov.piv.empty() ? ex.request_piv() : ov.piv;

  const ByteView payload = outer->payload;
  if (payload.size() < sig_len_ + aead_info_.tag_len + 1) return unexpected(Error::kMalformedMessage);
  const ByteView ciphertext = payload.first(payload.size() - sig_len_);
  const ByteView encrypted_sig = payload.last(sig_len_);
  if (ciphertext.size() - aead_info_.tag_len > config_.max_message_len) return unexpected(Error::kBufferTooSmall);

  std::array<uint8_t, kMaxExternalAadLen> ext_buf;
  Writer ew(ext_buf);
  if (!build_external_aad({config_.material.aead_alg, config_.material.sign_alg, ex.request_kid(),
                           ex.request_piv(), group_id, option, r.peer->credential},
                          ew)) {
    return unexpected(Error::kMalformedMessage);
  }
  const ByteView external_aad = ew.written();

  // Countersignature first (decrypted with the keystream), then the AEAD.
  std::array<uint8_t, kMaxSignatureLen> sig{};
  ACEKDC_TRY(keystream(piv_generator, nonce_piv, is_request, sig));
  for (size_t i = 0; i < sig_len_; ++i) sig[i] ^= encrypted_sig[i];
  Writer tw{MutableByteView(scratch_)};
  if (!build_tbs_header(external_aad, ciphertext.size(), tw) || !tw.put_bytes(ciphertext)) {
    return unexpected(Error::kBufferTooSmall);
  }
  if (!r.peer->verifier->verify(tw.written(), ByteView(sig.data(), sig_len_))) {
    return unexpected(Error::kBadSignature);
  }

  std::array<uint8_t, kMaxExternalAadLen + 32> aad_buf;
  Writer aw(aad_buf);
  if (!build_enc_structure(external_aad, aw)) return unexpected(Error::kMalformedMessage);
  std::array<uint8_t, oscore::kMaxNonceLen> nonce{};
  const MutableByteView nonce_view(nonce.data(), aead_info_.nonce_len);
  auto made = oscore::make_nonce(ByteView(common_iv_.data(), aead_info_.nonce_len), piv_generator,
                                 nonce_piv, nonce_view);
  if (!made) return unexpected(Error::kMalformedOption);
  auto opened = r.aead->open(nonce_view, aw.written(), ciphertext, scratch_);
  if (!opened) return unexpected(Error::kDecryptionFailed);

  auto inner = coap::MessageView::parse_inner(ByteView(scratch_.data(), *opened));
  if (!inner || (is_request ? !coap::is_request(inner->code) : !coap::is_response(inner->code))) {
    return unexpected(Error::kMalformedMessage);
  }
  if (is_request && !r.synced) {
    // Replay window initialisation with Echo (RFC 9175 §2.4): deliver only a request
    // that returns our last challenge; it sets the floor for this sender.
    const auto* echo = inner->count(opt::kEcho) == 1 ? inner->find(opt::kEcho) : nullptr;
    if (!r.echo_pending || !echo || !equal(echo->value, ByteView(r.echo.data(), r.echo.size()))) {
      provider_.random().fill(r.echo);
      r.echo_pending = true;
      std::copy(r.echo.begin(), r.echo.end(), ex.echo_value.begin());
      ex.echo_len = static_cast<uint8_t>(r.echo.size());
      ++num_echo_challenges_;
      return unexpected(Error::kEchoRequired);
    }
    r.synced = true;
    r.echo_pending = false;
    r.window.reset();
    r.peer->min_seq = std::max(r.peer->min_seq, *seq);
  }
  if (is_request) r.window.update(*seq);
  OptionList merged;
  const auto in = inner->options();
  for (const auto& o : in) {
    if (outer_only(o.number)) return unexpected(Error::kMalformedMessage);
  }
  size_t i = 0;
  for (const auto& o : outer->options()) {
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
  Writer w(out);
  write_header(w, outer->type, inner->code, outer->message_id, outer->token);
  if (!coap::encode_options(w, merged.span())) return unexpected(Error::kBufferTooSmall);
  if (!inner->payload.empty()) {
    w.put_u8(cp::coap::kPayloadMarker);
    w.put_bytes(inner->payload);
  }
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);

  if (!is_request) {
    auto& slot = ex.responders[ex.num_responders++];
    slot[0] = static_cast<uint8_t>(kid.size());
    std::copy(kid.begin(), kid.end(), slot.begin() + 1);
  }
  std::copy(kid.begin(), kid.end(), rx.sender.begin());
  rx.sender_len = static_cast<uint8_t>(kid.size());
  rx.len = w.size();
  return rx.len;
}

Expected<Received, Error> GroupContext::verify_request(ByteView datagram, MutableByteView out,
                                                       GroupExchange& out_exchange) {
  GroupExchange ex;
  Received rx;
  auto n = verify(datagram, true, ex, out, rx);
  if (!n) {
    if (n.error() == Error::kEchoRequired) out_exchange = ex;  // for the 4.01 + Echo
    return unexpected(n.error());
  }
  out_exchange = ex;
  return rx;
}

Expected<Received, Error> GroupContext::verify_response(ByteView datagram, GroupExchange& exchange,
                                                        MutableByteView out) {
  Received rx;
  auto n = verify(datagram, false, exchange, out, rx);
  if (!n) return unexpected(n.error());
  return rx;
}

}  // namespace acekdc::grouposcore
