#include "cwt/cwt.h"

#include <cmath>
#include <variant>

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "cose/algorithms.h"
#include "cose/encrypt0.h"
#include "cose/mac0.h"
#include "cose/sign1.h"
#include "cose/structures.h"
#include "core/writer.h"

namespace acekdc::cwt {
namespace {

namespace cl = cp::claim;

Expected<NumericDate, Error> date_of(const cbor::Value& v) {
  if (auto i = v.as_int()) return NumericDate(*i);
  if (auto f = v.as_float()) {
    if (!std::isfinite(*f)) return unexpected(Error::kInvalidClaims);
    return NumericDate::from_float(*f);
  }
  return unexpected(Error::kInvalidClaims);
}

cbor::Value date_value(const NumericDate& d) {
  return d.is_float() ? cbor::Value::floating(d.as_double()) : cbor::Value::integer(d.seconds());
}

Expected<void, Error> check_cnf(const cbor::Value& v) {
  const cbor::MapEntries* m = v.as_map();
  if (!m || m->empty()) return unexpected(Error::kInvalidClaims);
  for (const auto& [label, val] : *m) {
    auto l = label.as_int();
    if (!l) continue;
    switch (*l) {
      case cp::cnf::kCoseKey:
        if (!cose::CoseKey::from_value(val)) return unexpected(Error::kInvalidClaims);
        break;
      case cp::cnf::kEncryptedCoseKey:
        if (!val.is_array() && !val.is_tag()) return unexpected(Error::kInvalidClaims);
        break;
      case cp::cnf::kKid:
        if (!val.is_bytes()) return unexpected(Error::kInvalidClaims);
        break;
      case cp::cnf::kOscoreInputMaterial:
        if (!val.is_map()) return unexpected(Error::kInvalidClaims);
        break;
      default: break;
    }
  }
  return {};
}

// default_alg picks the token algorithm: explicit option, the key's alg, or the
// signature algorithm of the curve.
Expected<int, Error> default_alg(const cose::CoseKey& key, const CreateOptions& opts) {
  if (opts.alg) return *opts.alg;
  if (key.alg) return *key.alg;
  if (key.kty == cp::kty::kOKP && key.crv == cp::crv::kEd25519) return cp::alg::kEdDSA;
  if (key.kty == cp::kty::kEC2 && key.crv == cp::crv::kP256) return cp::alg::kES256;
  return unexpected(Error::kUnsupportedAlgorithm);
}

Expected<cose::Headers, Error> token_headers(const cose::CoseKey& key, const CreateOptions& opts,
                                             cose::AlgFamily want, int& alg_out) {
  auto alg = default_alg(key, opts);
  if (!alg) return unexpected(alg.error());
  if (cose::family(*alg) != want) return unexpected(Error::kUnsupportedAlgorithm);
  if (auto r = cose::check_key_for_alg(key, *alg); !r) return unexpected(from_cose(r.error()));
  cose::Headers h;
  h.set_protected(cp::header::kAlg, cbor::Value::integer(*alg));
  if (opts.include_kid && !key.kid.empty())
    h.set_unprotected(cp::header::kKid, cbor::Value::bytes(ByteView(key.kid)));
  alg_out = *alg;
  return h;
}

Bytes wrap_cwt_tag(Bytes cose, bool tag) {
  if (!tag) return cose;
  Bytes out;
  Writer w(out);
  cbor::Encoder e(w);
  e.put_tag(cp::tag::kCwt);
  e.put_raw(cose);
  return out;
}

cose::CreateOptions cose_create_options(const CreateOptions& opts) {
  cose::CreateOptions c;
  c.tagged = opts.cose_tag;
  return c;
}

// peek_tag reports the outermost tag of `in` (nullopt if not tagged or not CBOR)
// and the bytes of the tagged item.
std::optional<uint64_t> peek_tag(ByteView in, ByteView* content = nullptr) {
  cbor::Decoder d(in);
  uint64_t tag = 0;
  if (!d.next_is(cbor::Major::kTag) || !d.read_tag(tag)) return std::nullopt;
  if (content) *content = d.rest();
  return tag;
}

bool is_cose_tag(uint64_t t) {
  return t == cp::tag::kCoseSign1 || t == cp::tag::kCoseMac0 || t == cp::tag::kCoseEncrypt0;
}

// candidates: the keys that may verify a layer with headers `h`.
std::vector<const cose::CoseKey*> candidates(const cose::KeySet& keys, bool has_kid, ByteView kid,
                                             int alg) {
  std::vector<const cose::CoseKey*> out;
  for (const auto& k : keys.keys) {
    if (has_kid && !equal(k.kid, kid)) continue;
    if (!cose::check_key_for_alg(k, alg)) continue;
    out.push_back(&k);
  }
  // A kid that names no usable key is only a hint (RFC 9052 §3.1): fall back to all
  // keys that fit the algorithm.
  if (out.empty() && has_kid) {
    for (const auto& k : keys.keys)
      if (cose::check_key_for_alg(k, alg)) out.push_back(&k);
  }
  return out;
}

// open_layer verifies / decrypts one COSE layer with the first key that works.
Expected<cose::Verified, Error> open_layer(crypto::Provider& provider, ByteView msg,
                                           const cose::KeySet& keys, const VerifyOptions& opts,
                                           cose::MessageType& type_out) {
  auto type = cose::identify(msg, opts.cose);
  if (!type) return unexpected(from_cose(type.error()));
  type_out = *type;
  auto m = cose::decode_message(msg, *type, opts.cose);
  if (!m) return unexpected(from_cose(m.error()));
  if (m->detached) return unexpected(Error::kMalformed);
  auto alg = m->headers.alg();
  if (!alg) return unexpected(from_cose(alg.error()));
  const cose::AlgFamily want = *type == cose::MessageType::kSign1   ? cose::AlgFamily::kSignature
                               : *type == cose::MessageType::kMac0 ? cose::AlgFamily::kMac
                                                                   : cose::AlgFamily::kAead;
  if (cose::family(*alg) != want) return unexpected(Error::kUnsupportedAlgorithm);
  auto cands = candidates(keys, m->headers.find(cp::header::kKid) != nullptr, m->headers.kid(), *alg);
  if (cands.empty()) return unexpected(Error::kNoKey);
  Error last = Error::kNoKey;
  for (const cose::CoseKey* key : cands) {
    cose::Verified v;
    Expected<void, cose::Error> r;
    switch (*type) {
      case cose::MessageType::kSign1: {
        auto kp = key->to_public_keypair();
        if (!kp) continue;
        auto verifier = provider.make_verifier(*alg, *kp);
        if (!verifier) {
          last = Error::kNoKey;
          continue;
        }
        r = cose::sign1_verify_message(**verifier, *m, opts.external_aad);
        if (r) v.payload = m->content;
        break;
      }
      case cose::MessageType::kMac0: {
        auto mac = provider.make_mac(*alg, key->k);
        if (!mac) continue;
        r = cose::mac0_verify_message(**mac, *m, opts.external_aad);
        if (r) v.payload = m->content;
        break;
      }
      case cose::MessageType::kEncrypt0: {
        crypto::Aead* aead = keys.aead_cache.get(provider, *alg, key->k);
        if (!aead) continue;
        r = cose::encrypt0_decrypt_message(*aead, *m, opts.external_aad, key->base_iv,
                                           std::nullopt, v.payload);
        break;
      }
    }
    if (r) {
      v.headers = std::move(m->headers);
      v.tagged = m->tagged;
      return v;
    }
    last = from_cose(r.error());
    // A header problem does not depend on the key: stop at once.
    if (last != Error::kBadSignature && last != Error::kBadMac && last != Error::kDecryptFailed &&
        last != Error::kNoKey)
      return unexpected(last);
  }
  return unexpected(last);
}

// claims_limits: what Claims::decode accepts (nested items: one level less).
cbor::Limits claims_limits(uint32_t depth = 16) {
  cbor::Limits l;
  l.max_depth = depth;
  l.reject_duplicate_keys = true;
  return l;
}

// read_plain_value builds the Value of the next item in one pass: unsigned and
// negative integers, byte and text strings, definite arrays and maps (no duplicate
// map key), false / true / null, up to `depth` levels, every head in preferred
// (shortest) form so that the Value encodes back to the same bytes. nullopt for
// anything else (the caller then uses cbor::decode, which decides).
std::optional<cbor::Value> read_plain_value(cbor::Decoder& d, int depth) {
  if (depth <= 0) return std::nullopt;
  const size_t before = d.rest().size();
  auto consumed = [&] { return before - d.rest().size(); };
  if (d.next_is(cbor::Major::kUnsigned)) {
    uint64_t v = 0;
    if (!d.read_uint(v) || consumed() != cbor::encoded_head_size(v)) return std::nullopt;
    return cbor::Value::uint(v);
  }
  if (d.next_is(cbor::Major::kNegative)) {
    int64_t v = 0;
    if (!d.read_int(v) || consumed() != cbor::encoded_head_size(static_cast<uint64_t>(-1 - v)))
      return std::nullopt;
    return cbor::Value::integer(v);
  }
  if (d.next_is(cbor::Major::kBytes)) {
    ByteView b;
    if (!d.read_bstr(b) || consumed() != cbor::encoded_head_size(b.size()) + b.size()) return std::nullopt;
    return cbor::Value::bytes(b);
  }
  if (d.next_is(cbor::Major::kText)) {
    std::string_view t;
    if (!d.read_tstr(t) || consumed() != cbor::encoded_head_size(t.size()) + t.size()) return std::nullopt;
    return cbor::Value::text(t);
  }
  if (d.next_is(cbor::Major::kArray)) {
    uint64_t n = 0;
    if (!d.read_array(n) || consumed() != cbor::encoded_head_size(n) || n > d.rest().size()) return std::nullopt;
    cbor::Array items;
    items.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      auto v = read_plain_value(d, depth - 1);
      if (!v) return std::nullopt;
      items.push_back(std::move(*v));
    }
    return cbor::Value::array(std::move(items));
  }
  if (d.next_is(cbor::Major::kMap)) {
    uint64_t n = 0;
    if (!d.read_map(n) || consumed() != cbor::encoded_head_size(n) || n > d.rest().size()) return std::nullopt;
    cbor::MapEntries entries;
    entries.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      auto k = read_plain_value(d, depth - 1);
      if (!k) return std::nullopt;
      for (const auto& e : entries)
        if (e.first == *k) return std::nullopt;
      auto v = read_plain_value(d, depth - 1);
      if (!v) return std::nullopt;
      entries.emplace_back(std::move(*k), std::move(*v));
    }
    return cbor::Value::map(std::move(entries));
  }
  if (d.next_is_null()) {
    if (!d.read_null()) return std::nullopt;
    return cbor::Value::null();
  }
  bool b = false;
  if (d.next_is(cbor::Major::kSimple) && d.read_bool(b)) return cbor::Value::boolean(b);
  return std::nullopt;
}

// decode_simple_claims decodes the claims sets this project's AS writes (a definite
// map of registered claims with integer labels, dates as integers) straight from
// the bytes: typed fields without a Value tree, except cnf (a small map) and scope.
// nullopt for any other input: Claims::decode then decides (same result, slower),
// so this never accepts what Claims::decode would refuse.
std::optional<Claims> decode_simple_claims(ByteView in) {
  cbor::Decoder d(in, claims_limits());
  uint64_t n = 0;
  if (!d.next_is(cbor::Major::kMap) || !d.read_map(n) || n > 32) return std::nullopt;
  Claims c;
  uint64_t seen = 0;  // bit per registered label (< 64)
  for (uint64_t i = 0; i < n; ++i) {
    int64_t label = 0;
    if (!(d.next_is(cbor::Major::kUnsigned) || d.next_is(cbor::Major::kNegative)) || !d.read_int(label))
      return std::nullopt;
    if (label < 0 || label >= 64 || (seen & (uint64_t{1} << label))) return std::nullopt;
    seen |= uint64_t{1} << label;
    switch (label) {
      case cl::kIss:
      case cl::kSub:
      case cl::kAud: {
        std::string_view t;
        if (!d.next_is(cbor::Major::kText) || !d.read_tstr(t)) return std::nullopt;
        (label == cl::kIss ? c.iss : label == cl::kSub ? c.sub : c.aud) = std::string(t);
        break;
      }
      case cl::kExp:
      case cl::kNbf:
      case cl::kIat: {
        int64_t v = 0;
        if (!(d.next_is(cbor::Major::kUnsigned) || d.next_is(cbor::Major::kNegative)) || !d.read_int(v))
          return std::nullopt;
        (label == cl::kExp ? c.exp : label == cl::kNbf ? c.nbf : c.iat) = NumericDate(v);
        break;
      }
      case cl::kCti: {
        ByteView b;
        if (!d.next_is(cbor::Major::kBytes) || !d.read_bstr(b)) return std::nullopt;
        c.cti = to_bytes(b);
        break;
      }
      case cl::kScope: {
        if (d.next_is(cbor::Major::kBytes)) {
          ByteView b;
          if (!d.read_bstr(b)) return std::nullopt;
          c.scope = cbor::Value::bytes(b);
        } else {
          std::string_view t;
          if (!d.next_is(cbor::Major::kText) || !d.read_tstr(t)) return std::nullopt;
          c.scope = cbor::Value::text(std::string(t));
        }
        break;
      }
      case cl::kCnf: {
        if (!d.next_is(cbor::Major::kMap)) return std::nullopt;
        auto v = read_plain_value(d, 8);
        if (!v || !check_cnf(*v)) return std::nullopt;
        c.cnf = std::move(*v);
        break;
      }
      case cl::kAceProfile: {
        int64_t v = 0;
        if (!(d.next_is(cbor::Major::kUnsigned) || d.next_is(cbor::Major::kNegative)) || !d.read_int(v))
          return std::nullopt;
        c.ace_profile = v;
        break;
      }
      case cl::kExi: {
        uint64_t v = 0;
        if (!d.next_is(cbor::Major::kUnsigned) || !d.read_uint(v)) return std::nullopt;
        c.exi = v;
        break;
      }
      default: return std::nullopt;  // other claims: the general decoder keeps them
    }
  }
  if (!d.finish()) return std::nullopt;
  return c;
}


// Cur: the cursor of the one-pass readers. It takes only heads of definite length
// in preferred (shortest) form and text that is ASCII; anything else fails, and the
// callers leave such input to the general decoder (which decides it). So it accepts
// a subset of what cbor::Decoder reads, with the same values.
struct Cur {
  const uint8_t* p;
  const uint8_t* end;
  explicit Cur(ByteView in) : p(in.data()), end(in.data() + in.size()) {}
  bool at_end() const { return p == end; }
  size_t left() const { return static_cast<size_t>(end - p); }
  // major: the next item's major type (8 at the end).
  uint8_t major() const { return p < end ? static_cast<uint8_t>(*p >> 5) : 8; }
  // head reads one head of major type 0..6 (major 7 items are read by their byte).
  bool head(uint8_t& m, uint64_t& arg) {
    if (p >= end) return false;
    m = static_cast<uint8_t>(*p >> 5);
    const uint8_t ai = *p & 0x1f;
    if (m == 7) return false;
    if (ai < 24) {
      arg = ai;
      ++p;
      return true;
    }
    if (ai > 27) return false;  // reserved, or indefinite length
    const size_t n = size_t{1} << (ai - 24);
    if (left() < 1 + n) return false;
    uint64_t v = 0;
    for (size_t i = 1; i <= n; ++i) v = (v << 8) | p[i];
    if (cbor::encoded_head_size(v) != 1 + n) return false;  // not preferred
    arg = v;
    p += 1 + n;
    return true;
  }
  bool head_of(uint8_t want, uint64_t& arg) {
    uint8_t m = 0;
    const uint8_t* at = p;
    if (!head(m, arg) || m != want) {
      p = at;
      return false;
    }
    return true;
  }
  bool uint(uint64_t& v) { return head_of(0, v); }
  bool int64(int64_t& v) {
    uint8_t m = 0;
    uint64_t a = 0;
    const uint8_t* at = p;
    if (!head(m, a) || m > 1 || a > static_cast<uint64_t>(INT64_MAX)) {
      p = at;
      return false;
    }
    v = m == 0 ? static_cast<int64_t>(a) : -1 - static_cast<int64_t>(a);
    return true;
  }
  bool bytes(ByteView& b) { return string_of(2, b); }
  bool text(std::string_view& t) {
    ByteView b;
    if (!string_of(3, b)) return false;
    for (uint8_t c : b)
      if (c >= 0x80) return false;  // non-ASCII: the general decoder checks the UTF-8
    t = as_string(b);
    return true;
  }
  bool string_of(uint8_t want, ByteView& b) {
    uint64_t n = 0;
    const uint8_t* at = p;
    if (!head_of(want, n)) return false;
    if (n > left()) {
      p = at;
      return false;
    }
    b = ByteView(p, static_cast<size_t>(n));
    p += n;
    return true;
  }
  // container: a definite array (2 -> 4) / map (5) header whose count cannot exceed the
  // bytes left.
  bool container(uint8_t want, uint64_t& n) { return head_of(want, n) && n <= left(); }
};

// open_simple_encrypt0 decrypts the token shape the AS writes, in one pass over the
// bytes: [tag 61] [tag 16] [bstr {1: AEAD alg}, {? 4: kid, 5: IV}, bstr ciphertext],
// with the keyed AEAD objects of keys.aead_cache, into `plain`, and returns the
// plaintext length. Any other shape (more headers, Partial IV, crit, nested token,
// ...) is left to the general path, as is anything it would report differently (a
// failed open, a `plain` too small): nullopt then, with nothing left in `plain`.
// Key selection, the AAD and the checks are the general path's.
std::optional<size_t> open_simple_encrypt0(crypto::Provider& provider, ByteView token, const cose::KeySet& keys,
                                           const VerifyOptions& opts, MutableByteView plain, ByteView& kid_out,
                                           bool& has_kid_out) {
  if (opts.max_nesting < 1) return std::nullopt;
  Cur d(token);
  uint64_t tag = 0;
  bool cwt_tag = false, cose_tag = false;
  if (d.head_of(6, tag)) {
    if (tag == cp::tag::kCwt) {
      cwt_tag = true;
      if (d.head_of(6, tag)) {
        if (tag != cp::tag::kCoseEncrypt0) return std::nullopt;
        cose_tag = true;
      }
    } else if (tag == cp::tag::kCoseEncrypt0) {
      cose_tag = true;
    } else {
      return std::nullopt;
    }
  }
  if (d.major() == 6) return std::nullopt;
  if (opts.require_cwt_tag && !cwt_tag) return std::nullopt;
  if ((opts.cose.tag_mode == cose::TagMode::kRequired && !cose_tag) ||
      (opts.cose.tag_mode == cose::TagMode::kForbidden && cose_tag))
    return std::nullopt;
  uint64_t n = 0;
  ByteView prot, kid, iv, ct;
  bool has_kid = false, has_iv = false;
  if (!d.container(4, n) || n != 3 || !d.bytes(prot)) return std::nullopt;
  int64_t alg = 0;
  {
    Cur p(prot);
    uint64_t pn = 0, label = 0;
    if (!p.container(5, pn) || pn != 1 || !p.uint(label) || label != static_cast<uint64_t>(cp::header::kAlg) ||
        !p.int64(alg) || !p.at_end())
      return std::nullopt;
  }
  if (alg < INT32_MIN || alg > INT32_MAX || cose::family(static_cast<int>(alg)) != cose::AlgFamily::kAead)
    return std::nullopt;
  auto params = cose::aead_params(static_cast<int>(alg));
  if (!params) return std::nullopt;
  if (!d.container(5, n) || n < 1 || n > 2) return std::nullopt;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t label = 0;
    if (!d.uint(label)) return std::nullopt;
    if (label == static_cast<uint64_t>(cp::header::kKid) && !has_kid) {
      if (!d.bytes(kid)) return std::nullopt;
      has_kid = true;
    } else if (label == static_cast<uint64_t>(cp::header::kIV) && !has_iv) {
      if (!d.bytes(iv)) return std::nullopt;
      has_iv = true;
    } else {
      return std::nullopt;
    }
  }
  if (!has_iv || iv.size() != params->nonce_len) return std::nullopt;
  if (!d.bytes(ct) || !d.at_end()) return std::nullopt;
  if (ct.size() < params->tag_len) return std::nullopt;
  const size_t plain_len = ct.size() - params->tag_len;
  if (plain_len > plain.size()) return std::nullopt;
  const MutableByteView out = plain.first(plain_len);

  uint8_t aad_buf[96];
  if (opts.external_aad.size() + 32 > sizeof aad_buf) return std::nullopt;
  Writer aw{MutableByteView(aad_buf, sizeof aad_buf)};
  cbor::Encoder ae(aw);
  ae.put_array(3).put_tstr(cose::kContextEncrypt0).put_bstr(prot).put_bstr(opts.external_aad);
  const ByteView aad = aw.written();
  if (aad.empty()) return std::nullopt;
  // Key selection as candidates(): kid match and fit; a kid naming no fitting key is
  // only a hint (then every key that fits).
  bool opened = false;
  bool tried = false;
  for (int pass = 0; pass < 2 && !opened; ++pass) {
    if (pass == 1 && (tried || !has_kid)) break;
    for (const auto& key : keys.keys) {
      if (pass == 0 && has_kid && !equal(key.kid, kid)) continue;
      if (!cose::check_key_for_alg(key, static_cast<int>(alg))) continue;
      tried = true;
      crypto::Aead* aead = keys.aead_cache.get(provider, static_cast<int>(alg), key.k);
      if (!aead) continue;
      auto r = aead->open(iv, aad, ct, out);
      if (r) {
        opened = true;
        break;
      }
      if (r.error() == crypto::Error::kInternal) return std::nullopt;
    }
  }
  // The general path reports which failure it was, and reads a nested token (a
  // tagged payload). What an open wrote is wiped here on the way out.
  if (!opened || (!out.empty() && (out[0] >> 5) == 6)) {
    secure_zero(out.data(), out.size());
    return std::nullopt;
  }
  kid_out = kid;
  has_kid_out = has_kid;
  return plain_len;
}

// verify_simple_encrypt0: verify() of the shape open_simple_encrypt0 reads. It
// returns false when it cannot decide (the general path runs then), true with
// `result` set otherwise.
bool verify_simple_encrypt0(crypto::Provider& provider, ByteView token, const cose::KeySet& keys,
                            const VerifyOptions& opts, TokenInfo* info, Expected<Claims, Error>& result) {
  // The plaintext (shorter than the token) on the stack when it fits, wiped after use.
  uint8_t stack_plain[512];
  Bytes heap_plain;
  if (token.size() > sizeof stack_plain) heap_plain.resize(token.size());
  const MutableByteView buf = token.size() > sizeof stack_plain ? MutableByteView(heap_plain)
                                                                : MutableByteView(stack_plain, sizeof stack_plain);
  ByteView kid;
  bool has_kid = false;
  auto n = open_simple_encrypt0(provider, token, keys, opts, buf, kid, has_kid);
  struct Wipe {
    MutableByteView v;
    ~Wipe() { secure_zero(v.data(), v.size()); }
  } wipe{buf.first(n ? *n : 0)};
  if (!n) return false;
  const ByteView plain = buf.first(*n);
  if (info) {
    info->layers.push_back(cose::MessageType::kEncrypt0);
    info->kids.push_back(has_kid ? to_bytes(kid) : Bytes{});
  }
  if (auto claims = decode_simple_claims(plain)) {
    result = std::move(*claims);
  } else {
    result = Claims::decode(plain);
  }
  if (result) {
    if (auto t = check_claims(*result, opts); !t) result = unexpected(t.error());
  }
  return true;
}

// skip_plain consumes the next item when read_plain_value(d, depth) would accept it
// (preferred heads, definite lengths, no floats / tags / undefined, no duplicate map
// key) and Cur reads it, without building it. Map keys must be integers or strings
// here (then two keys are equal exactly when their bytes are); false otherwise.
bool skip_plain(Cur& c, int depth) {
  if (depth <= 0 || c.at_end()) return false;
  switch (c.major()) {
    case 0: {
      uint64_t v = 0;
      return c.uint(v);
    }
    case 1: {
      int64_t v = 0;
      return c.int64(v);
    }
    case 2: {
      ByteView b;
      return c.bytes(b);
    }
    case 3: {
      std::string_view t;
      return c.text(t);
    }
    case 4: {
      uint64_t n = 0;
      if (!c.container(4, n)) return false;
      for (uint64_t i = 0; i < n; ++i)
        if (!skip_plain(c, depth - 1)) return false;
      return true;
    }
    case 5: {
      uint64_t n = 0;
      if (!c.container(5, n) || n > 16) return false;
      ByteView seen[16];
      for (uint64_t i = 0; i < n; ++i) {
        const uint8_t* k = c.p;
        if (c.major() > 3 || !skip_plain(c, depth - 1)) return false;
        seen[i] = ByteView(k, static_cast<size_t>(c.p - k));
        for (uint64_t j = 0; j < i; ++j)
          if (equal(seen[j], seen[i])) return false;
        if (!skip_plain(c, depth - 1)) return false;
      }
      return true;
    }
    case 7:
      if (*c.p == 0xf4 || *c.p == 0xf5 || *c.p == 0xf6) {  // false, true, null
        ++c.p;
        return true;
      }
      return false;
    default: return false;  // tags
  }
}

// skip_view_cnf consumes a cnf map that decode_simple_claims reads (read_plain_value
// at depth 8) and check_cnf accepts, with integer labels only and neither a COSE_Key
// nor an encrypted one (those are not the view's shape). False otherwise.
bool skip_view_cnf(Cur& c) {
  constexpr int kDepth = 8;  // decode_simple_claims' read_plain_value(d, 8)
  uint64_t n = 0;
  if (!c.container(5, n) || n == 0 || n > 16) return false;
  int64_t labels[16];
  for (uint64_t i = 0; i < n; ++i) {
    int64_t label = 0;
    if (!c.int64(label)) return false;
    labels[i] = label;
    for (uint64_t j = 0; j < i; ++j)
      if (labels[j] == label) return false;
    switch (label) {
      case cp::cnf::kCoseKey:
      case cp::cnf::kEncryptedCoseKey: return false;
      case cp::cnf::kKid:
        if (c.major() != 2) return false;
        break;
      case cp::cnf::kOscoreInputMaterial:
        if (c.major() != 5) return false;
        break;
      default: break;
    }
    if (!skip_plain(c, kDepth - 1)) return false;
  }
  return true;
}

// check_view: check_claims() on a view.
bool check_view(const ClaimsView& c, const VerifyOptions& opts) {
  if (opts.require_exp && !c.exp) return false;
  if (opts.check_time) {
    const long double now = static_cast<long double>(opts.now);
    const long double leeway = static_cast<long double>(opts.leeway);
    if (c.exp && now >= static_cast<long double>(*c.exp) + leeway) return false;
    if (c.nbf && now + leeway < static_cast<long double>(*c.nbf)) return false;
  }
  if (opts.audience && (!c.aud || *c.aud != *opts.audience)) return false;
  return true;
}

}  // namespace

const char* to_string(Error e) {
  switch (e) {
    case Error::kMalformed: return "malformed token";
    case Error::kUnexpectedTag: return "unexpected CBOR tag";
    case Error::kUnsupportedAlgorithm: return "unsupported algorithm";
    case Error::kBadHeader: return "bad COSE header";
    case Error::kNoKey: return "no suitable key";
    case Error::kWrongKey: return "key does not fit";
    case Error::kBadSignature: return "signature does not verify";
    case Error::kBadMac: return "MAC does not verify";
    case Error::kDecryptFailed: return "decryption failed";
    case Error::kInvalidClaims: return "invalid claims set";
    case Error::kExpired: return "token expired";
    case Error::kNotYetValid: return "token not yet valid";
    case Error::kAudienceMismatch: return "audience mismatch";
    case Error::kMissingClaim: return "required claim missing";
    case Error::kNestingTooDeep: return "too many nested layers";
    case Error::kTooLarge: return "token too large";
    case Error::kCrypto: return "crypto provider failure";
  }
  return "unknown CWT error";
}

Error from_cose(cose::Error e) {
  switch (e) {
    case cose::Error::kMalformed:
    case cose::Error::kDetachedPayload: return Error::kMalformed;
    case cose::Error::kUnexpectedTag: return Error::kUnexpectedTag;
    case cose::Error::kUnsupportedAlgorithm: return Error::kUnsupportedAlgorithm;
    case cose::Error::kMissingHeader:
    case cose::Error::kDuplicateHeader:
    case cose::Error::kBadHeader:
    case cose::Error::kUnknownCritical: return Error::kBadHeader;
    case cose::Error::kInvalidKey:
    case cose::Error::kWrongKey: return Error::kWrongKey;
    case cose::Error::kBadSignature: return Error::kBadSignature;
    case cose::Error::kBadTag: return Error::kBadMac;
    case cose::Error::kDecryptFailed: return Error::kDecryptFailed;
    case cose::Error::kCrypto: return Error::kCrypto;
    case cose::Error::kTooLarge: return Error::kTooLarge;
  }
  return Error::kMalformed;
}

int64_t NumericDate::seconds() const {
  if (!is_float_) return int_;
  double f = std::floor(float_);
  if (f >= 9.2e18) return INT64_MAX;
  if (f <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(f);
}

cbor::Value Claims::to_value() const {
  cbor::Value m = cbor::Value::map();
  if (iss) m.set(cl::kIss, cbor::Value::text(*iss));
  if (sub) m.set(cl::kSub, cbor::Value::text(*sub));
  if (aud) m.set(cl::kAud, cbor::Value::text(*aud));
  if (exp) m.set(cl::kExp, date_value(*exp));
  if (nbf) m.set(cl::kNbf, date_value(*nbf));
  if (iat) m.set(cl::kIat, date_value(*iat));
  if (cti) m.set(cl::kCti, cbor::Value::bytes(ByteView(*cti)));
  if (cnf) m.set(cl::kCnf, *cnf);
  if (scope) m.set(cl::kScope, *scope);
  if (ace_profile) m.set(cl::kAceProfile, cbor::Value::integer(*ace_profile));
  if (exi) m.set(cl::kExi, cbor::Value::uint(*exi));
  for (const auto& [l, v] : other) m.set(l, v);
  return m;
}

Bytes Claims::encode() const { return cbor::encode(to_value()); }

Expected<Claims, Error> Claims::from_value(const cbor::Value& v) {
  const cbor::MapEntries* m = v.as_map();
  if (!m) return unexpected(Error::kInvalidClaims);
  Claims c;
  for (size_t i = 0; i < m->size(); ++i) {
    const auto& [label, val] = (*m)[i];
    for (size_t j = 0; j < i; ++j)
      if ((*m)[j].first == label) return unexpected(Error::kInvalidClaims);
    auto l = label.as_int();
    if (!l) {
      if (!label.is_text()) return unexpected(Error::kInvalidClaims);
      c.other.emplace_back(label, val);
      continue;
    }
    switch (*l) {
      case cl::kIss:
      case cl::kSub:
      case cl::kAud: {
        const std::string* s = val.as_text();
        if (!s) return unexpected(Error::kInvalidClaims);
        (*l == cl::kIss ? c.iss : *l == cl::kSub ? c.sub : c.aud) = *s;
        break;
      }
      case cl::kExp:
      case cl::kNbf:
      case cl::kIat: {
        auto d = date_of(val);
        if (!d) return unexpected(d.error());
        (*l == cl::kExp ? c.exp : *l == cl::kNbf ? c.nbf : c.iat) = *d;
        break;
      }
      case cl::kCti:
        if (!val.is_bytes()) return unexpected(Error::kInvalidClaims);
        c.cti = *val.as_bytes();
        break;
      case cl::kCnf:
        ACEKDC_TRY(check_cnf(val));
        c.cnf = val;
        break;
      case cl::kScope:
        if (!val.is_text() && !val.is_bytes()) return unexpected(Error::kInvalidClaims);
        c.scope = val;
        break;
      case cl::kAceProfile: {
        auto p = val.as_int();
        if (!p) return unexpected(Error::kInvalidClaims);
        c.ace_profile = *p;
        break;
      }
      case cl::kExi: {
        auto e = val.as_uint();
        if (!e) return unexpected(Error::kInvalidClaims);
        c.exi = *e;
        break;
      }
      default: c.other.emplace_back(label, val);
    }
  }
  return c;
}

Expected<Claims, Error> Claims::decode(ByteView in) {
  if (auto c = decode_simple_claims(in)) return std::move(*c);
  auto v = cbor::decode(in, claims_limits());
  if (!v) return unexpected(Error::kInvalidClaims);
  return from_value(*v);
}

void Claims::set_cnf_key(const cose::CoseKey& key, bool include_private) {
  cbor::Value m = cbor::Value::map();
  m.set(cp::cnf::kCoseKey, key.to_value(include_private));
  cnf = std::move(m);
}

void Claims::set_cnf_kid(ByteView kid) {
  cbor::Value m = cbor::Value::map();
  m.set(cp::cnf::kKid, cbor::Value::bytes(kid));
  cnf = std::move(m);
}

Expected<cose::CoseKey, Error> Claims::cnf_key() const {
  if (!cnf) return unexpected(Error::kMissingClaim);
  const cbor::Value* k = cnf->find(cp::cnf::kCoseKey);
  if (!k) return unexpected(Error::kMissingClaim);
  auto key = cose::CoseKey::from_value(*k);
  if (!key) return unexpected(Error::kInvalidClaims);
  return std::move(*key);
}

ByteView Claims::cnf_kid() const {
  if (!cnf) return {};
  const cbor::Value* k = cnf->find(cp::cnf::kKid);
  return k && k->is_bytes() ? k->bytes_view() : ByteView();
}

Expected<Bytes, Error> create_signed(crypto::Provider& provider, const Claims& claims,
                                     const cose::CoseKey& key, const CreateOptions& opts) {
  int alg = 0;
  auto h = token_headers(key, opts, cose::AlgFamily::kSignature, alg);
  if (!h) return unexpected(h.error());
  Bytes payload = claims.encode();
  auto t = cose::sign1_create(provider, key, *h, payload, opts.external_aad,
                              cose_create_options(opts));
  if (!t) return unexpected(from_cose(t.error()));
  return wrap_cwt_tag(std::move(*t), opts.cwt_tag);
}

Expected<Bytes, Error> create_maced(crypto::Provider& provider, const Claims& claims,
                                    const cose::CoseKey& key, const CreateOptions& opts) {
  int alg = 0;
  auto h = token_headers(key, opts, cose::AlgFamily::kMac, alg);
  if (!h) return unexpected(h.error());
  Bytes payload = claims.encode();
  auto t = cose::mac0_create(provider, key, *h, payload, opts.external_aad,
                             cose_create_options(opts));
  if (!t) return unexpected(from_cose(t.error()));
  return wrap_cwt_tag(std::move(*t), opts.cwt_tag);
}

Expected<Bytes, Error> encrypt_token(crypto::Provider& provider, ByteView inner,
                                     const cose::CoseKey& key, const CreateOptions& opts) {
  int alg = 0;
  auto h = token_headers(key, opts, cose::AlgFamily::kAead, alg);
  if (!h) return unexpected(h.error());
  auto info = cose::aead_params(alg);
  h->set_unprotected(cp::header::kIV, cbor::Value::bytes(provider.random().bytes(info->nonce_len)));
  cose::EncryptOptions eo;
  eo.tagged = opts.cose_tag;
  auto t = cose::encrypt0_create(provider, key, *h, inner, opts.external_aad, eo);
  if (!t) return unexpected(from_cose(t.error()));
  return wrap_cwt_tag(std::move(*t), opts.cwt_tag);
}

Expected<Bytes, Error> create_encrypted(crypto::Provider& provider, const Claims& claims,
                                        const cose::CoseKey& key, const CreateOptions& opts) {
  Bytes payload = claims.encode();
  auto t = encrypt_token(provider, payload, key, opts);
  secure_zero(payload);
  return t;
}

std::optional<ClaimsView> ClaimsView::decode(ByteView in) {
  Cur c(in);
  uint64_t n = 0;
  if (!c.container(5, n) || n > 32) return std::nullopt;
  ClaimsView v;
  uint64_t seen = 0;  // bit per registered label (< 64)
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t label = 0;
    if (!c.uint(label) || label >= 64 || (seen & (uint64_t{1} << label))) return std::nullopt;
    seen |= uint64_t{1} << label;
    switch (label) {
      case cl::kIss:
      case cl::kSub:
      case cl::kAud: {
        std::string_view t;
        if (!c.text(t)) return std::nullopt;
        (label == cl::kIss ? v.iss : label == cl::kSub ? v.sub : v.aud) = t;
        break;
      }
      case cl::kExp:
      case cl::kNbf:
      case cl::kIat: {
        int64_t d = 0;
        if (!c.int64(d)) return std::nullopt;
        (label == cl::kExp ? v.exp : label == cl::kNbf ? v.nbf : v.iat) = d;
        break;
      }
      case cl::kCti: {
        ByteView b;
        if (!c.bytes(b)) return std::nullopt;
        v.cti = b;
        break;
      }
      case cl::kScope: {
        ByteView b;
        std::string_view t;
        if (c.bytes(b)) {
          v.scope = b;
          v.scope_is_text = false;
        } else if (c.text(t)) {
          v.scope = as_bytes(t);
          v.scope_is_text = true;
        } else {
          return std::nullopt;
        }
        break;
      }
      case cl::kCnf: {
        const uint8_t* start = c.p;
        if (!skip_view_cnf(c)) return std::nullopt;
        v.cnf = ByteView(start, static_cast<size_t>(c.p - start));
        break;
      }
      case cl::kAceProfile: {
        int64_t d = 0;
        if (!c.int64(d)) return std::nullopt;
        v.ace_profile = d;
        break;
      }
      case cl::kExi: {
        uint64_t d = 0;
        if (!c.uint(d)) return std::nullopt;
        v.exi = d;
        break;
      }
      default: return std::nullopt;  // other claims: Claims::decode keeps them
    }
  }
  if (!c.at_end()) return std::nullopt;
  return v;
}

Claims ClaimsView::to_claims() const {
  Claims c;
  if (iss) c.iss = std::string(*iss);
  if (sub) c.sub = std::string(*sub);
  if (aud) c.aud = std::string(*aud);
  if (exp) c.exp = NumericDate(*exp);
  if (nbf) c.nbf = NumericDate(*nbf);
  if (iat) c.iat = NumericDate(*iat);
  if (cti) c.cti = to_bytes(*cti);
  if (cnf) {
    cbor::Decoder d(*cnf, claims_limits());
    c.cnf = read_plain_value(d, 8);  // accepted by decode(): never nullopt
  }
  if (scope) {
    c.scope = scope_is_text ? cbor::Value::text(std::string(as_string(*scope))) : cbor::Value::bytes(*scope);
  }
  c.ace_profile = ace_profile;
  c.exi = exi;
  return c;
}

std::optional<ClaimsView> verify_view(crypto::Provider& provider, ByteView token, const cose::KeySet& keys,
                                      const VerifyOptions& opts, MutableByteView plain, size_t& plain_len) {
  plain_len = 0;
  if (token.size() > opts.cose.max_message_len) return std::nullopt;
  ByteView kid;
  bool has_kid = false;
  auto n = open_simple_encrypt0(provider, token, keys, opts, plain, kid, has_kid);
  if (!n) return std::nullopt;
  auto view = ClaimsView::decode(plain.first(*n));
  if (!view || !check_view(*view, opts)) {
    secure_zero(plain.data(), *n);
    return std::nullopt;
  }
  plain_len = *n;
  return view;
}

Expected<void, Error> check_claims(const Claims& c, const VerifyOptions& opts) {
  if (opts.require_exp && !c.exp) return unexpected(Error::kMissingClaim);
  if (opts.check_time) {
    // RFC 8392 §3.1.4: not accepted on or after exp; §3.1.5: not before nbf.
    const long double now = static_cast<long double>(opts.now);
    const long double leeway = static_cast<long double>(opts.leeway);
    if (c.exp) {
      long double exp = c.exp->is_float() ? c.exp->as_double() : c.exp->seconds();
      if (now >= exp + leeway) return unexpected(Error::kExpired);
    }
    if (c.nbf) {
      long double nbf = c.nbf->is_float() ? c.nbf->as_double() : c.nbf->seconds();
      if (now + leeway < nbf) return unexpected(Error::kNotYetValid);
    }
  }
  if (opts.audience && (!c.aud || *c.aud != *opts.audience))
    return unexpected(Error::kAudienceMismatch);
  return {};
}

Expected<Claims, Error> verify(crypto::Provider& provider, ByteView token,
                               const cose::KeySet& keys, const VerifyOptions& opts,
                               TokenInfo* info) {
  if (token.size() > opts.cose.max_message_len) return unexpected(Error::kTooLarge);
  {
    Expected<Claims, Error> fast = unexpected(Error::kMalformed);
    if (verify_simple_encrypt0(provider, token, keys, opts, info, fast)) return fast;
  }
  ByteView cur = token;
  Bytes holder;  // owns the current layer's bytes once we are inside a payload
  bool first = true;
  for (size_t depth = 0;; ++depth) {
    ByteView inner;
    auto tag = peek_tag(cur, &inner);
    if (tag && *tag == cp::tag::kCwt) {
      cur = inner;
      tag = peek_tag(cur);
      if (tag && *tag == cp::tag::kCwt) return unexpected(Error::kUnexpectedTag);
    } else if (first && opts.require_cwt_tag) {
      return unexpected(Error::kUnexpectedTag);
    }
    first = false;
    if (depth >= opts.max_nesting) return unexpected(Error::kNestingTooDeep);
    cose::MessageType type{};
    auto layer = open_layer(provider, cur, keys, opts, type);
    if (!layer) return unexpected(layer.error());
    if (info) {
      info->layers.push_back(type);
      info->kids.push_back(to_bytes(layer->headers.kid()));
    }
    Bytes payload = std::move(layer->payload);
    // A nested token: a tagged CWT / COSE message, or content type application/cwt.
    auto ptag = peek_tag(payload);
    const cbor::Value* cty = layer->headers.find(cp::header::kContentType);
    const bool cty_cwt = cty && ((cty->is_uint() && *cty->as_uint() == cp::cf::kCwt) ||
                                 (cty->is_text() && *cty->as_text() == "application/cwt"));
    const bool nested = (ptag && (*ptag == cp::tag::kCwt || is_cose_tag(*ptag))) || cty_cwt;
    if (nested) {
      secure_zero(holder);
      holder = std::move(payload);
      cur = holder;
      continue;
    }
    auto claims = Claims::decode(payload);
    secure_zero(payload);
    secure_zero(holder);
    if (!claims) return unexpected(claims.error());
    ACEKDC_TRY(check_claims(*claims, opts));
    return std::move(*claims);
  }
}

Expected<Claims, Error> verify(crypto::Provider& provider, ByteView token,
                               const cose::CoseKey& key, const VerifyOptions& opts,
                               TokenInfo* info) {
  cose::KeySet set;
  set.keys.push_back(key);
  return verify(provider, token, set, opts, info);
}

}  // namespace acekdc::cwt
