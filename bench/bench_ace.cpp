// bench_ace: the ACE cores, sans-I/O, with the OpenSSL provider.
//   BM_AsHandleToken        AuthorizationServer::handle_token: parse the request, grant the
//                           scope, fresh OSCORE_Input_Material, CWT in COSE_Encrypt0, encode.
//   BM_KdcHandleTokenPost   AuthzInfo::handle_token_post of one valid token POST (decrypt and
//                           check the token, derive and check the OSCORE context, store; the
//                           same material each time, so the store keeps one record).
//   BM_DeriveContextParams  derive_context_params (Master Salt construction, no HKDF).
//   BM_AsTokenCryptoOnly    the crypto of one token issuance alone: AEAD key setup and
//                           AES-CCM-16-64-128 seal of a claims set of the real token's size
//                           under its Enc_structure (the bound for BM_AsHandleToken).
//   BM_KdcTokenPostCryptoOnly  the crypto of one token POST alone: AEAD key setup and open
//                           of the token's ciphertext, and the RFC 8613 key derivation
//                           (derive_keys: Sender Key, Recipient Key, Common IV) that the
//                           KDC runs to check the context (the bound for BM_KdcHandleTokenPost).
//   BM_KdcHandleTokenPostSqlite  BM_KdcHandleTokenPost over SqliteTokenStore (a synchronous
//                           SQLite write per POST, as `acekdc serve` with the SQLite store).
// Each *_CryptoOnly runs in the same binary, so the ratio of items_per_second is the
// share of the crypto bound reached (issue 5: >= 70%).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/oscore_profile.h"
#include "ace/sqlite_token_store.h"
#include "cose/structures.h"
#include "cwt/cwt.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

using namespace acekdc;
using namespace acekdc::ace;

namespace {

constexpr int64_t kNow = 1700000000;

struct Setup {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{1};
  cose::CoseKey key = cose::CoseKey::symmetric(*from_hex("000102030405060708090a0b0c0d0e0f"), {},
                                               cp::alg::kAES_CCM_16_64_128);
  std::unique_ptr<AuthorizationServer> as;
  Bytes request;
  Setup() {
    AsPolicy pol;
    ClientPolicy c;
    c.id = "client";
    c.groups = {{"g1", kRoleRequester | kRoleResponder}};
    pol.clients = {c};
    AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = key;
    pol.audiences = {a};
    pol.max_materials = size_t{1} << 30;
    as = std::make_unique<AuthorizationServer>(*p, rnd, pol);
    TokenRequest r;
    r.audience = "kdc";
    r.scope = ScopeParam{false, encode_scope(Scope{{{"g1", kRoleRequester}}})};
    request = r.encode();
  }
};

void BM_AsHandleToken(benchmark::State& state) {
  Setup s;
  int64_t now = kNow;
  for (auto _ : state) {
    // Advance time so that expired material records are purged and the set stays small.
    AsResponse r = s.as->handle_token("client", s.request, now);
    now += 3600;
    if (r.code != cp::coap::code::kCreated) state.SkipWithError("token refused");
    benchmark::DoNotOptimize(r.payload.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsHandleToken);

// TokenCrypto: the plaintext, AAD and ciphertext of a real token, and the context
// parameters of a real token POST.
struct TokenCrypto {
  Bytes claims;
  Bytes aad;
  Bytes nonce = Bytes(13, 0x5a);
  Bytes ciphertext;
  oscore::ContextParams params;
  explicit TokenCrypto(Setup& s) {
    auto t = TokenResponse::decode(s.as->handle_token("client", s.request, kNow).payload);
    cwt::VerifyOptions vo;
    vo.check_time = false;
    claims = cwt::verify(*s.p, t->access_token, s.key, vo)->encode();
    Bytes prot = *from_hex("a1010a");  // {alg: AES-CCM-16-64-128}, as the AS writes it
    cose::append_enc_structure(aad, cose::kContextEncrypt0, prot, {});
    auto aead = s.p->make_aead(cp::alg::kAES_CCM_16_64_128, s.key.k);
    ciphertext.resize(claims.size() + 8);
    (void)(*aead)->seal(nonce, aad, claims, ciphertext);
    params = *derive_context_params(*t->cnf->osc, Bytes(8, 0x11), Bytes(8, 0x22), Bytes{0x42}, Bytes{0x00},
                                    Side::kServer);
  }
};

void BM_AsTokenCryptoOnly(benchmark::State& state) {
  Setup s;
  TokenCrypto c(s);
  Bytes out(c.claims.size() + 8);
  for (auto _ : state) {
    auto aead = s.p->make_aead(cp::alg::kAES_CCM_16_64_128, s.key.k);
    auto n = (*aead)->seal(c.nonce, c.aad, c.claims, out);
    if (!n) state.SkipWithError("seal");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsTokenCryptoOnly);

void BM_KdcTokenPostCryptoOnly(benchmark::State& state) {
  Setup s;
  TokenCrypto c(s);
  Bytes out(c.ciphertext.size());
  for (auto _ : state) {
    auto aead = s.p->make_aead(cp::alg::kAES_CCM_16_64_128, s.key.k);
    auto n = (*aead)->open(c.nonce, c.aad, c.ciphertext, out);
    if (!n) state.SkipWithError("open");
    auto k = oscore::derive_keys(*s.p, c.params);
    if (!k) state.SkipWithError("derive_keys");
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(k->sender_key.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KdcTokenPostCryptoOnly);

void run_token_posts(benchmark::State& state, TokenStore& store) {
  Setup s;
  auto t = TokenResponse::decode(s.as->handle_token("client", s.request, kNow).payload);
  AuthzInfoConfig cfg;
  cfg.audience = "kdc";
  cfg.as_keys.keys.push_back(s.key);
  cfg.groups = {{"g1", GroupConfig{}}};
  FakeRandom rnd(2);
  AuthzInfo kdc(*s.p, rnd, store, cfg);
  AuthzInfoRequest q;
  q.access_token = t->access_token;
  q.nonce1 = Bytes(8, 0x11);
  q.client_recipient_id = Bytes{0x42};
  Bytes payload = q.encode();
  for (auto _ : state) {
    TokenPostResult r = kdc.handle_token_post(payload, kNow + 1);
    if (r.code != cp::coap::code::kCreated) state.SkipWithError("token POST refused");
    benchmark::DoNotOptimize(r.payload.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_KdcHandleTokenPost(benchmark::State& state) {
  MemoryTokenStore store;
  run_token_posts(state, store);
}
BENCHMARK(BM_KdcHandleTokenPost);

void BM_KdcHandleTokenPostSqlite(benchmark::State& state) {
  char dir[] = "/tmp/bench_ace.XXXXXX";
  if (!::mkdtemp(dir)) {
    state.SkipWithError("mkdtemp");
    return;
  }
  {
    auto store = SqliteTokenStore::open(std::string(dir) + "/tokens.sqlite");
    if (!store) {
      state.SkipWithError("sqlite open");
    } else {
      run_token_posts(state, **store);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
BENCHMARK(BM_KdcHandleTokenPostSqlite);

void BM_DeriveContextParams(benchmark::State& state) {
  OscoreInputMaterial m;
  m.id = Bytes{1};
  m.ms = Bytes(16, 0x22);
  m.salt = Bytes(8, 0x33);
  Bytes n1(8, 0x44), n2(8, 0x55), id1{0x01}, id2{0x02};
  for (auto _ : state) {
    auto p = derive_context_params(m, n1, n2, id1, id2, Side::kServer);
    benchmark::DoNotOptimize(p->master_salt.data());
  }
}
BENCHMARK(BM_DeriveContextParams);

}  // namespace

BENCHMARK_MAIN();
