// fuzz_ace_authz_info: the KDC's token POST handler on arbitrary payloads.
//
// Input modes (first byte):
//   0x00  the rest is a CWT claims set: it is encrypted (COSE_Encrypt0) under the
//         KDC's shared key and posted with a fixed nonce1 / ace_client_recipientid,
//         so the fuzzer reaches the claim checks;
//   0x01  the rest is posted over the OSCORE channel of the last accepted token;
//   0x02  the rest is the AS's introspection answer (2.01 payload) for an opaque
//         token posted to a KDC that has no AS key (IntrospectMode::kFallback, no
//         cache): accepted only if the answer decodes as active with usable claims;
//   0x03  the rest is a stored /authz-info record (SqliteTokenStore's CBOR form): if
//         it decodes, it re-encodes stably;
//   other the whole input is the POST payload.
// Invariants: never crash; a refused POST changes nothing in the store and carries a
// diagnostic; an accepted one yields context parameters that derive keys, with a
// Recipient ID different from the Sender ID; any input that decodes as one of the
// ace+cbor messages re-encodes stably.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ace/authz_info.h"
#include "ace/sqlite_token_store.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

using namespace acekdc;

namespace {

constexpr int64_t kNow = 1700000000;

struct Fixture {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{7};
  ace::MemoryTokenStore store{64};
  cose::CoseKey key = cose::CoseKey::symmetric(*from_hex("000102030405060708090a0b0c0d0e0f"), {},
                                               cp::alg::kAES_CCM_16_64_128);
  std::unique_ptr<ace::AuthzInfo> ai;
  std::optional<ace::ContextKey> last;
  Fixture() {
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(key);
    ace::GroupConfig g;
    g.sign_info.sign_alg = int64_t{cp::alg::kEdDSA};
    cfg.groups = {{"g1", g}, {"g2", g}};
    ai = std::make_unique<ace::AuthzInfo>(*p, rnd, store, cfg);
  }
};

// ReplayIntrospector answers every introspection request with `answer`.
struct ReplayIntrospector final : ace::Introspector {
  Bytes answer;
  std::optional<ace::IntrospectionReply> introspect(ByteView, int64_t) override {
    return ace::IntrospectionReply{cp::coap::code::kCreated, answer};
  }
};

struct IntrospectFixture {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{8};
  ace::MemoryTokenStore store{64};
  ReplayIntrospector intro;
  std::unique_ptr<ace::AuthzInfo> ai;
  IntrospectFixture() {
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    ace::GroupConfig g;
    g.sign_info.sign_alg = int64_t{cp::alg::kEdDSA};
    cfg.groups = {{"g1", g}, {"g2", g}};
    ai = std::make_unique<ace::AuthzInfo>(*p, rnd, store, cfg);
    ace::IntrospectionConfig ic;
    ic.max_cache = 0;
    ai->set_introspection(&intro, ic);
  }
};

int introspection_mode(ByteView answer) {
  static IntrospectFixture fx;
  if (fx.store.size() >= 32) fx.ai->purge(kNow + (int64_t{1} << 40));
  fx.intro.answer = to_bytes(answer);
  ace::AuthzInfoRequest q;
  q.access_token = Bytes{0x4f, 0x50, 0x41, 0x51, 0x55, 0x45};  // not a COSE message
  q.nonce1 = Bytes{1, 2, 3, 4, 5, 6, 7, 8};
  q.client_recipient_id = Bytes{0x16};
  const size_t before = fx.store.size();
  ace::TokenPostResult r = fx.ai->handle_token_post(q.encode(), kNow);
  auto parsed = ace::IntrospectionResponse::decode(answer);
  if (r.code == cp::coap::code::kCreated) {
    if (!parsed || !parsed->active || !r.established) __builtin_trap();
    if (!oscore::derive_keys(*fx.p, r.established->params)) __builtin_trap();
    auto rec = fx.store.get(r.established->key);
    if (!rec || rec->tokens.empty() || !rec->tokens.back().introspected) __builtin_trap();
  } else {
    if (r.payload.empty() || r.established || fx.store.size() != before) __builtin_trap();
  }
  return 0;
}

int record_mode(ByteView in) {
  auto r = ace::decode_record(in);
  if (!r) return 0;
  Bytes e1 = ace::encode_record(*r);
  auto r2 = ace::decode_record(e1);
  if (!r2 || ace::encode_record(*r2) != e1) __builtin_trap();
  return 0;
}

template <class T>
void roundtrip(ByteView in) {
  if (auto r = T::decode(in)) {
    Bytes e1 = r->encode();
    auto r2 = T::decode(e1);
    if (!r2 || r2->encode() != e1) __builtin_trap();
  }
}

void check_roundtrip(ByteView in) {
  roundtrip<ace::AuthzInfoRequest>(in);
  roundtrip<ace::AuthzInfoResponse>(in);
  roundtrip<ace::TokenRequest>(in);
  roundtrip<ace::TokenResponse>(in);
  roundtrip<ace::ErrorResponse>(in);
  roundtrip<ace::OscoreInputMaterial>(in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fx;
  if (fx.store.size() >= 32) fx.ai->purge(kNow + (int64_t{1} << 40));
  ByteView in(data, size);
  check_roundtrip(in);

  Bytes payload;
  bool update = false;
  if (size >= 1 && data[0] == 0x02) return introspection_mode(in.subspan(1));
  if (size >= 1 && data[0] == 0x03) return record_mode(in.subspan(1));
  if (size >= 1 && data[0] == 0x00) {
    auto claims = cwt::Claims::decode(in.subspan(1));
    if (!claims) return 0;
    auto tok = cwt::create_encrypted(*fx.p, *claims, fx.key);
    if (!tok) return 0;
    ace::AuthzInfoRequest q;
    q.access_token = std::move(*tok);
    q.nonce1 = Bytes{1, 2, 3, 4, 5, 6, 7, 8};
    q.client_recipient_id = Bytes{0x16};
    q.sign_info_requested = true;
    payload = q.encode();
  } else if (size >= 1 && data[0] == 0x01) {
    payload = to_bytes(in.subspan(1));
    update = true;
  } else {
    payload = to_bytes(in);
  }

  const size_t before = fx.store.size();
  ace::TokenPostResult r;
  if (update) {
    if (!fx.last) return 0;
    auto rec_before = fx.store.get(*fx.last);
    r = fx.ai->handle_token_update(*fx.last, payload, kNow);
    if (r.code != cp::coap::code::kCreated) {
      auto rec_after = fx.store.get(*fx.last);
      if (rec_before.has_value() != rec_after.has_value()) __builtin_trap();
      if (rec_before && rec_before->tokens.size() != rec_after->tokens.size()) __builtin_trap();
    }
  } else {
    r = fx.ai->handle_token_post(payload, kNow);
  }
  if (r.code == cp::coap::code::kCreated) {
    if (!r.ace_cbor || !ace::AuthzInfoResponse::decode(r.payload)) __builtin_trap();
    if (r.established) {
      const auto& prm = r.established->params;
      if (equal(prm.sender_id, prm.recipient_id)) __builtin_trap();
      if (!oscore::derive_keys(*fx.p, prm)) __builtin_trap();
      if (!fx.store.get(r.established->key)) __builtin_trap();
      fx.last = r.established->key;
    }
  } else {
    if (r.payload.empty() || r.established) __builtin_trap();
    if (!update && fx.store.size() != before) __builtin_trap();
  }
  return 0;
}
