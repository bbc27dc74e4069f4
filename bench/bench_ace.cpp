// bench_ace: token issuance at the AS and token POST at the KDC, each next to the
// crypto-only bound of the same operations, in one binary (issue 5: >= 70%).
//
// Randomness as in `acekdc serve`: SystemRandom (getrandom) for the AS's material
// and the KDC's nonces, the provider's CSPRNG for COSE IVs.
//
//   BM_AsTokenOverOscore    what a client of `serve` gets: AceCoapGate::handle of an
//                           OSCORE-protected POST /token (the AS's peer context):
//                           OSCORE verify + decrypt, CoAP parse, handle_token (parse,
//                           grant, fresh OSCORE_Input_Material, CWT in COSE_Encrypt0,
//                           Access Information), OSCORE protect of the 2.01. Requests
//                           are protected by the client in batches outside the timing.
//   BM_AsTokenOverOscoreCryptoOnly  its bound: the crypto that path performs per
//                           token, on keyed AEAD objects (as the OSCORE context and the
//                           AS keep them): AES-CCM-16-64-128 open of the request
//                           (real sizes), random id|ms|salt|cti (one getrandom, 38
//                           bytes) and the 13-byte IV, seal of the claims under their
//                           Enc_structure, seal of the response (real sizes).
//   BM_AsHandleToken        AuthorizationServer::handle_token alone (no CoAP/OSCORE).
//   BM_AsTokenCryptoOnly    its bound: the random draws and the seal of the claims.
//   BM_AsHandleTokenPaired, BM_AsTokenOverOscorePaired  each AS path and its bound in
//                           one loop, in alternating blocks timed on the thread's CPU
//                           clock (counters path_ns, bound_ns, ratio).
//   BM_KdcHandleTokenPost   AuthzInfo::handle_token_post of one valid token POST (decrypt
//                           and check the token, derive and check the OSCORE context,
//                           store; the same material each time: the store keeps one record).
//   BM_KdcTokenPostCryptoOnly  its bound: open of the token's ciphertext on a keyed
//                           AEAD (the KDC keeps one per AS key), the RFC 9203 / RFC 8613
//                           derivation (derive_keys: HKDF of Sender Key, Recipient Key,
//                           Common IV), and the random nonce2 and rsnonce (8 bytes each).
//   BM_KdcTokenPostPaired   both of the above in one loop, in alternating blocks timed
//                           on the thread's CPU clock (counters path_ns, bound_ns, ratio):
//                           on a loaded machine a comparison that load changes hit alike.
//   BM_KdcHandleTokenPostSqlite  BM_KdcHandleTokenPost over SqliteTokenStore (a synchronous
//                           SQLite write per POST, as `acekdc serve` with the SQLite store).
//   BM_DeriveContextParams  derive_context_params (Master Salt construction, no HKDF).
//
// Compare a rate only with its bound from the same run; e.g.
//   bench_ace --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "ace/sqlite_token_store.h"
#include "coap/message.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/structures.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"
#include "oscore/aad.h"
#include "oscore/context.h"

using namespace acekdc;
using namespace acekdc::ace;

namespace {

constexpr int64_t kNow = 1700000000;

struct Setup {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  SystemRandom rnd;
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

// The clock of the AS benchmarks advances one second per token: with the client's
// 3600 s lifetime the AS keeps ~3600 live OSCORE_Input_Material records (steady state).
void BM_AsHandleToken(benchmark::State& state) {
  Setup s;
  int64_t now = kNow;
  for (auto _ : state) {
    AsResponse r = s.as->handle_token("client", s.request, now++);
    if (r.code != cp::coap::code::kCreated) state.SkipWithError("token refused");
    benchmark::DoNotOptimize(r.payload.data());
  }
  state.SetLabel("path without CoAP/OSCORE");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsHandleToken);

// AsOverOscore: the AS behind an AceCoapGate with the client's OSCORE context, as in
// `acekdc serve` (client Sender ID 01, AS Sender ID empty).
struct AsOverOscore {
  Setup s;
  std::unique_ptr<AceCoapGate> gate;
  std::unique_ptr<oscore::Context> client;
  std::vector<Bytes> batch;
  std::vector<oscore::Exchange> exchanges;
  uint16_t mid = 1;

  static std::unique_ptr<oscore::Context> context(crypto::Provider& p, ByteView sender, ByteView recipient) {
    oscore::ContextConfig cfg;
    cfg.params.master_secret = *from_hex("0102030405060708090a0b0c0d0e0f10");
    cfg.params.sender_id = to_bytes(sender);
    cfg.params.recipient_id = to_bytes(recipient);
    auto c = oscore::Context::create(p, std::move(cfg));
    return c ? std::move(*c) : nullptr;
  }
  // reset makes fresh contexts (the AEAD usage limit q = 2^20 of the default
  // algorithm ends a context after ~1M messages).
  void reset() {
    gate = std::make_unique<AceCoapGate>(*s.p);
    gate->serve_as(*s.as);
    gate->add_peer("client", context(*s.p, Bytes{}, Bytes{0x01}));
    client = context(*s.p, Bytes{0x01}, Bytes{});
  }
  AsOverOscore() { reset(); }
  // fill protects n token requests (outside the timing).
  bool fill(size_t n) {
    if (client->count_q() + n > (uint64_t{1} << 19)) reset();
    batch.resize(n);
    exchanges.resize(n);
    for (size_t i = 0; i < n; ++i) {
      coap::Message req(coap::Type::kCon, cp::coap::code::kPost, mid++);
      req.token = Bytes{0x01, 0x02};
      req.set_uri_path("/token");
      req.set_uint(cp::coap::option::kContentFormat, cp::cf::kAceCbor);
      req.payload = s.request;
      batch[i].resize(512);
      auto len = client->protect_request(req, batch[i], exchanges[i]);
      if (!len) return false;
      batch[i].resize(*len);
    }
    return true;
  }
};

// payload_len: the OSCORE ciphertext length of a datagram (its CoAP payload).
size_t payload_len(ByteView datagram) {
  auto v = coap::MessageView::parse(datagram);
  return v ? v->payload.size() : 0;
}

void BM_AsTokenOverOscore(benchmark::State& state) {
  AsOverOscore f;
  constexpr size_t kBatch = 256;
  int64_t now = kNow;
  Bytes last;
  while (state.KeepRunningBatch(kBatch)) {
    state.PauseTiming();
    if (!f.fill(kBatch)) state.SkipWithError("protect_request");
    state.ResumeTiming();
    for (const Bytes& d : f.batch) {
      last = f.gate->handle(d, now++);
      benchmark::DoNotOptimize(last.data());
    }
  }
  // The last answer, checked end to end after the loop: a 2.01 with a token.
  uint8_t plain[1024];
  auto n = f.client->unprotect_response(last, f.exchanges.back(), plain);
  auto m = n ? coap::Message::parse(ByteView(plain, *n)) : unexpected(coap::Error::kTruncated);
  if (!m || m->code != cp::coap::code::kCreated || !TokenResponse::decode(m->payload))
    state.SkipWithError("the AS did not answer 2.01 with Access Information");
  state.SetLabel("path via OSCORE: gate + OSCORE verify/protect + handle_token");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsTokenOverOscore);

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

// kAsRandomLen: id (6) | ms (16) | salt (8) | cti (8), drawn at once.
constexpr size_t kAsRandomLen = 38;

void BM_AsTokenCryptoOnly(benchmark::State& state) {
  Setup s;
  TokenCrypto c(s);
  auto aead = s.p->make_aead(cp::alg::kAES_CCM_16_64_128, s.key.k);
  Bytes out(c.claims.size() + 8);
  uint8_t rnd[kAsRandomLen];
  uint8_t iv[13];
  for (auto _ : state) {
    s.rnd.fill(rnd);
    s.p->random().fill(iv);
    auto n = (*aead)->seal(c.nonce, c.aad, c.claims, out);
    if (!n) state.SkipWithError("seal");
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(rnd);
    benchmark::DoNotOptimize(iv);
  }
  state.SetLabel("bound: random 38 B + IV 13 B + token seal (random added in session 3)");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsTokenCryptoOnly);

void BM_AsTokenOverOscoreCryptoOnly(benchmark::State& state) {
  AsOverOscore f;
  TokenCrypto c(f.s);
  // Real sizes: one real exchange.
  if (!f.fill(1)) state.SkipWithError("protect_request");
  Bytes answer = f.gate->handle(f.batch[0], kNow);
  const size_t req_ct = payload_len(f.batch[0]);
  const size_t resp_ct = payload_len(answer);
  if (req_ct < 8 || resp_ct < 8) state.SkipWithError("no OSCORE payload");
  uint8_t aad[oscore::kMaxAadLen];
  auto aad_len = oscore::build_aad(cp::alg::kAES_CCM_16_64_128, Bytes{0x01}, Bytes{0x05}, {}, aad);
  ByteView oscore_aad(aad, aad_len ? *aad_len : 0);
  auto req_aead = f.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x31));
  auto resp_aead = f.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x32));
  auto token_aead = f.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, f.s.key.k);
  Bytes req_plain(req_ct - 8, 0x44), req_cipher(req_ct), req_out(req_ct);
  (void)(*req_aead)->seal(c.nonce, oscore_aad, req_plain, req_cipher);
  Bytes resp_plain(resp_ct - 8, 0x55), resp_out(resp_ct);
  Bytes token_out(c.claims.size() + 8);
  uint8_t rnd[kAsRandomLen];
  uint8_t iv[13];
  for (auto _ : state) {
    auto a = (*req_aead)->open(c.nonce, oscore_aad, req_cipher, req_out);
    f.s.rnd.fill(rnd);
    f.s.p->random().fill(iv);
    auto b = (*token_aead)->seal(iv, c.aad, c.claims, token_out);
    auto d = (*resp_aead)->seal(c.nonce, oscore_aad, resp_plain, resp_out);
    if (!a || !b || !d) state.SkipWithError("crypto");
    benchmark::DoNotOptimize(req_out.data());
    benchmark::DoNotOptimize(token_out.data());
    benchmark::DoNotOptimize(resp_out.data());
    benchmark::DoNotOptimize(rnd);
  }
  state.counters["req_ct"] = static_cast<double>(req_ct);
  state.counters["resp_ct"] = static_cast<double>(resp_ct);
  state.SetLabel("bound: OSCORE open + random 38 B + IV 13 B + token seal + OSCORE seal (OSCORE and random added in session 3)");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AsTokenOverOscoreCryptoOnly);

// as_cpu_ns: this thread's CPU time (what the items/s of the other benchmarks use).
int64_t as_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

// AsPair runs a path and its bound in one loop, in alternating blocks of kBlock
// operations (which goes first alternates too), each block timed on the thread's CPU
// clock: a load change on the shared machine hits both alike. `before_path` runs
// untimed before each path block (the client's protection of the requests).
// Counters: path_ns, bound_ns per operation; ratio = bound_ns / path_ns (the issue's
// "path rate / bound rate").
template <class Before, class Path, class Bound>
void as_pair(benchmark::State& state, size_t block, Before&& before_path, Path&& path_op, Bound&& bound_op) {
  int64_t path_ns = 0, bound_ns = 0, ops = 0;
  bool path_first = true;
  for (auto _ : state) {
    for (int pass = 0; pass < 2; ++pass) {
      const bool path = (pass == 0) == path_first;
      if (path) before_path();
      const int64_t t0 = as_cpu_ns();
      for (size_t i = 0; i < block; ++i) path ? path_op(i) : bound_op();
      (path ? path_ns : bound_ns) += as_cpu_ns() - t0;
    }
    ops += static_cast<int64_t>(block);
    path_first = !path_first;
  }
  if (ops > 0 && path_ns > 0) {
    state.counters["path_ns"] = static_cast<double>(path_ns) / static_cast<double>(ops);
    state.counters["bound_ns"] = static_cast<double>(bound_ns) / static_cast<double>(ops);
    state.counters["ratio"] = static_cast<double>(bound_ns) / static_cast<double>(path_ns);
  }
  state.SetLabel("path and bound in alternating blocks; ratio = path rate / bound rate");
}

// BM_AsHandleTokenPaired: BM_AsHandleToken and BM_AsTokenCryptoOnly (the same set-up,
// the same loop bodies) through as_pair.
void BM_AsHandleTokenPaired(benchmark::State& state) {
  Setup s;
  int64_t now = kNow;
  Setup bs;
  TokenCrypto c(bs);
  auto aead = bs.p->make_aead(cp::alg::kAES_CCM_16_64_128, bs.key.k);
  Bytes out(c.claims.size() + 8);
  uint8_t rnd[kAsRandomLen];
  uint8_t iv[13];
  as_pair(
      state, 256, [] {},
      [&](size_t) {
        AsResponse r = s.as->handle_token("client", s.request, now++);
        if (r.code != cp::coap::code::kCreated) state.SkipWithError("token refused");
        benchmark::DoNotOptimize(r.payload.data());
      },
      [&] {
        bs.rnd.fill(rnd);
        bs.p->random().fill(iv);
        auto n = (*aead)->seal(c.nonce, c.aad, c.claims, out);
        if (!n) state.SkipWithError("seal");
        benchmark::DoNotOptimize(out.data());
        benchmark::DoNotOptimize(rnd);
        benchmark::DoNotOptimize(iv);
      });
}
BENCHMARK(BM_AsHandleTokenPaired);

// BM_AsTokenOverOscorePaired: BM_AsTokenOverOscore and BM_AsTokenOverOscoreCryptoOnly
// (the same set-up, the same loop bodies; requests protected untimed per block)
// through as_pair.
void BM_AsTokenOverOscorePaired(benchmark::State& state) {
  constexpr size_t kBatch = 256;
  AsOverOscore f;
  int64_t now = kNow;
  Bytes last;
  AsOverOscore bf;
  TokenCrypto c(bf.s);
  if (!bf.fill(1)) state.SkipWithError("protect_request");
  Bytes answer = bf.gate->handle(bf.batch[0], kNow);
  const size_t req_ct = payload_len(bf.batch[0]);
  const size_t resp_ct = payload_len(answer);
  if (req_ct < 8 || resp_ct < 8) state.SkipWithError("no OSCORE payload");
  uint8_t aad[oscore::kMaxAadLen];
  auto aad_len = oscore::build_aad(cp::alg::kAES_CCM_16_64_128, Bytes{0x01}, Bytes{0x05}, {}, aad);
  ByteView oscore_aad(aad, aad_len ? *aad_len : 0);
  auto req_aead = bf.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x31));
  auto resp_aead = bf.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 0x32));
  auto token_aead = bf.s.p->make_aead(cp::alg::kAES_CCM_16_64_128, bf.s.key.k);
  Bytes req_plain(req_ct - 8, 0x44), req_cipher(req_ct), req_out(req_ct);
  (void)(*req_aead)->seal(c.nonce, oscore_aad, req_plain, req_cipher);
  Bytes resp_plain(resp_ct - 8, 0x55), resp_out(resp_ct);
  Bytes token_out(c.claims.size() + 8);
  uint8_t rnd[kAsRandomLen];
  uint8_t iv[13];
  as_pair(
      state, kBatch,
      [&] {
        if (!f.fill(kBatch)) state.SkipWithError("protect_request");
      },
      [&](size_t i) {
        last = f.gate->handle(f.batch[i], now++);
        benchmark::DoNotOptimize(last.data());
      },
      [&] {
        auto a = (*req_aead)->open(c.nonce, oscore_aad, req_cipher, req_out);
        bf.s.rnd.fill(rnd);
        bf.s.p->random().fill(iv);
        auto b = (*token_aead)->seal(iv, c.aad, c.claims, token_out);
        auto d = (*resp_aead)->seal(c.nonce, oscore_aad, resp_plain, resp_out);
        if (!a || !b || !d) state.SkipWithError("crypto");
        benchmark::DoNotOptimize(req_out.data());
        benchmark::DoNotOptimize(token_out.data());
        benchmark::DoNotOptimize(resp_out.data());
        benchmark::DoNotOptimize(rnd);
      });
  // The last answer, checked end to end: a 2.01 with a token.
  uint8_t plain[1024];
  auto n = f.client->unprotect_response(last, f.exchanges.back(), plain);
  auto m = n ? coap::Message::parse(ByteView(plain, *n)) : unexpected(coap::Error::kTruncated);
  if (!m || m->code != cp::coap::code::kCreated || !TokenResponse::decode(m->payload))
    state.SkipWithError("the AS did not answer 2.01 with Access Information");
}
BENCHMARK(BM_AsTokenOverOscorePaired);

void BM_KdcTokenPostCryptoOnly(benchmark::State& state) {
  Setup s;
  TokenCrypto c(s);
  auto aead = s.p->make_aead(cp::alg::kAES_CCM_16_64_128, s.key.k);
  Bytes out(c.ciphertext.size());
  uint8_t nonce2[8], rsnonce[8];
  for (auto _ : state) {
    auto n = (*aead)->open(c.nonce, c.aad, c.ciphertext, out);
    if (!n) state.SkipWithError("open");
    s.rnd.fill(nonce2);
    auto k = oscore::derive_keys(*s.p, c.params);
    if (!k) state.SkipWithError("derive_keys");
    s.rnd.fill(rsnonce);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(k->sender_key.data());
    benchmark::DoNotOptimize(nonce2);
    benchmark::DoNotOptimize(rsnonce);
  }
  state.SetLabel("bound: token open + derive_keys (HKDF) + nonce2/rsnonce draws (draws added in session 3)");
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
  SystemRandom rnd;
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
  state.SetLabel("path: handle_token_post, no CoAP");
  state.SetItemsProcessed(state.iterations());
}

void BM_KdcHandleTokenPost(benchmark::State& state) {
  MemoryTokenStore store;
  run_token_posts(state, store);
}
BENCHMARK(BM_KdcHandleTokenPost);

// thread_cpu_ns: this thread's CPU time (what the items/s of the other benchmarks use).
int64_t thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

// BM_KdcTokenPostPaired: BM_KdcHandleTokenPost and BM_KdcTokenPostCryptoOnly (the same
// operations, the same loop bodies) in one loop, alternating blocks of kBlock of each
// (which one goes first alternates too), each block timed on the thread's CPU clock:
// a load change on the shared machine hits both alike. Counters: path_ns and bound_ns
// per operation, ratio = bound_ns / path_ns (the "path rate / bound rate").
void BM_KdcTokenPostPaired(benchmark::State& state) {
  // The path, as run_token_posts sets it up (memory store).
  Setup s;
  auto t = TokenResponse::decode(s.as->handle_token("client", s.request, kNow).payload);
  AuthzInfoConfig cfg;
  cfg.audience = "kdc";
  cfg.as_keys.keys.push_back(s.key);
  cfg.groups = {{"g1", GroupConfig{}}};
  SystemRandom rnd;
  MemoryTokenStore store;
  AuthzInfo kdc(*s.p, rnd, store, cfg);
  AuthzInfoRequest q;
  q.access_token = t->access_token;
  q.nonce1 = Bytes(8, 0x11);
  q.client_recipient_id = Bytes{0x42};
  Bytes payload = q.encode();
  // The bound, as BM_KdcTokenPostCryptoOnly sets it up.
  Setup bs;
  TokenCrypto c(bs);
  auto aead = bs.p->make_aead(cp::alg::kAES_CCM_16_64_128, bs.key.k);
  Bytes out(c.ciphertext.size());
  uint8_t nonce2[8], rsnonce[8];
  auto path_op = [&] {
    TokenPostResult r = kdc.handle_token_post(payload, kNow + 1);
    if (r.code != cp::coap::code::kCreated) state.SkipWithError("token POST refused");
    benchmark::DoNotOptimize(r.payload.data());
  };
  auto bound_op = [&] {
    auto n = (*aead)->open(c.nonce, c.aad, c.ciphertext, out);
    if (!n) state.SkipWithError("open");
    bs.rnd.fill(nonce2);
    auto k = oscore::derive_keys(*bs.p, c.params);
    if (!k) state.SkipWithError("derive_keys");
    bs.rnd.fill(rsnonce);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(k->sender_key.data());
    benchmark::DoNotOptimize(nonce2);
    benchmark::DoNotOptimize(rsnonce);
  };
  constexpr int kBlock = 128;
  int64_t path_ns = 0, bound_ns = 0, ops = 0;
  bool path_first = true;
  for (auto _ : state) {
    for (int pass = 0; pass < 2; ++pass) {
      const bool path = (pass == 0) == path_first;
      const int64_t t0 = thread_cpu_ns();
      for (int i = 0; i < kBlock; ++i) path ? path_op() : bound_op();
      (path ? path_ns : bound_ns) += thread_cpu_ns() - t0;
    }
    ops += kBlock;
    path_first = !path_first;
  }
  if (ops > 0 && path_ns > 0) {
    state.counters["path_ns"] = static_cast<double>(path_ns) / static_cast<double>(ops);
    state.counters["bound_ns"] = static_cast<double>(bound_ns) / static_cast<double>(ops);
    state.counters["ratio"] = static_cast<double>(bound_ns) / static_cast<double>(path_ns);
  }
  state.SetLabel("path and bound in alternating blocks; ratio = path rate / bound rate");
}
BENCHMARK(BM_KdcTokenPostPaired);

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
