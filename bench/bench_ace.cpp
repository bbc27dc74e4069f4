// bench_ace: the ACE cores, sans-I/O, with the OpenSSL provider.
//   BM_AsHandleToken        AuthorizationServer::handle_token: parse the request, grant the
//                           scope, fresh OSCORE_Input_Material, CWT in COSE_Encrypt0, encode.
//   BM_KdcHandleTokenPost   AuthzInfo::handle_token_post of one valid token POST (decrypt and
//                           check the token, derive and check the OSCORE context, store; the
//                           same material each time, so the store keeps one record).
//   BM_DeriveContextParams  derive_context_params (Master Salt construction, no HKDF).
#include <benchmark/benchmark.h>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/oscore_profile.h"
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
}
BENCHMARK(BM_AsHandleToken);

void BM_KdcHandleTokenPost(benchmark::State& state) {
  Setup s;
  auto t = TokenResponse::decode(s.as->handle_token("client", s.request, kNow).payload);
  MemoryTokenStore store;
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
}
BENCHMARK(BM_KdcHandleTokenPost);

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
