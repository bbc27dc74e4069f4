// bench_kdc_push: key push fan-out at the KDC, sans-I/O (no sockets).
//   BM_RekeyPushFanout/N   one rekey of a group whose N members each observe
//                          nodes/NODENAME: GroupManager::rekey (MemoryStore), then
//                          GroupCoapBinding::poll building each member's Key Distribution
//                          Response, AceCoapGate::notify queuing it, and take_outgoing
//                          protecting each under the member's OSCORE context with a
//                          fresh Partial IV (what PushDriver does lazily, one per
//                          address, in the live KDC). items = notifications.
//   BM_PushCryptoOnly      the crypto of one notification alone: an AES-CCM-16-64-128
//                          seal of a plaintext of the notification's size with a held
//                          key (the bound for BM_RekeyPushFanout, per item).
// Both run in the same binary: the ratio of items_per_second is the share of the
// crypto bound reached (issue 6: fan-out >= 50,000 members per second). The setup
// (N joins through the gate) grows faster than N: 1000 members is the size run here.
#include <benchmark/benchmark.h>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "ace/token_store.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/manager.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "kdc/memory_store.h"
#include "oscore/context.h"

using namespace acekdc;

namespace {

constexpr int64_t kNow = 1700000000;
namespace code = cp::coap::code;
namespace option = cp::coap::option;

struct Kdc {
  explicit Kdc(size_t n) {
    cose::CoseKey shared = cose::CoseKey::symmetric(Bytes(16, 0x07), {}, cp::alg::kAES_CCM_16_64_128);
    ace::AsPolicy pol;
    ace::ClientPolicy c;
    c.id = "c";
    c.groups = {{"g1", ace::kRoleRequester}};
    pol.clients = {c};
    ace::AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared;
    pol.audiences = {a};
    as = std::make_unique<ace::AuthorizationServer>(*p, rnd, pol);
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(shared);
    cfg.groups = {{"g1", ace::GroupConfig{}}};
    authz = std::make_unique<ace::AuthzInfo>(*p, rnd, tokens, cfg);
    kdc::GroupConfig g;
    g.name = "g1";
    g.max_members = n + 16;
    kdc::GroupKeyMaterial k;
    k.master_secret = Bytes(16, 1);
    k.master_salt = Bytes(8, 2);
    k.group_id = {0, 0, 0, 1};
    k.exp = kNow + 86400;
    k.established_at = kNow;
    ok = ok && store.create_group(g, k).has_value();
    gate.serve_kdc(*authz);
    binding = std::make_unique<groupcomm::GroupCoapBinding>(*authz, tokens, store, mgr);
    binding->attach(gate);
    coap::Address addr = *coap::Address::parse("127.0.0.1:40000");
    for (size_t i = 0; i < n && ok; ++i) ok = add_member(addr);
    (void)gate.take_outgoing();
  }

  // add_member: token, token POST, join with PoP, Observe registration.
  bool add_member(const coap::Address& from) {
    ace::TokenRequest tr;
    tr.audience = "kdc";
    ace::Scope s;
    s.entries.push_back(ace::ScopeEntry{"g1", ace::kRoleRequester});
    tr.scope = ace::ScopeParam{false, ace::encode_scope(s)};
    auto r = as->handle_token("c", tr.encode(), kNow);
    auto t = ace::TokenResponse::decode(r.payload);
    if (!t) return false;
    ace::ClientTokenPost sent = ace::prepare_token_post(t->access_token, Bytes{0x42}, rnd);
    coap::Message tp(coap::Type::kCon, code::kPost, 1);
    tp.set_uri_path("/authz-info");
    tp.set_uint(option::kContentFormat, cp::cf::kAceCbor);
    tp.payload = sent.payload;
    auto dg = tp.encode();
    if (!dg) return false;
    auto post = coap::Message::parse(gate.handle(*dg, kNow, from));  // the gate keeps the KDC side
    if (!post || post->code != code::kCreated) return false;
    ace::AuthzInfoResponse air;
    auto params = ace::finish_token_post(*t->cnf->osc, sent, post->payload, &air);
    if (!params || !air.rsnonce) return false;
    oscore::ContextConfig cc;
    cc.params = *params;
    auto ctx = oscore::Context::create(*p, std::move(cc));
    if (!ctx) return false;
    return join_and_observe(**ctx, *air.rsnonce, from);
  }

  bool join_and_observe(oscore::Context& ctx, ByteView rsnonce, const coap::Address& from) {
    cose::CoseKey key = cose::CoseKey::from_keypair(*p->generate_keypair(cp::crv::kEd25519));
    Bytes cred = key.encode(false);
    Bytes n_c = rnd.bytes(8);
    Bytes sig = *groupcomm::sign_pop(*p, cp::alg::kEdDSA, key, rsnonce, n_c);
    groupcomm::JoinRequest jr;
    jr.client_cred = cred;
    jr.cnonce = n_c;
    jr.client_cred_verify = sig;
    coap::Message req(coap::Type::kCon, code::kPost, 1);
    req.set_uri_path("/ace-group/g1");
    req.set_uint(option::kContentFormat, cp::cf::kAceGroupcommCbor);
    req.payload = groupcomm::encode_join_request(jr);
    auto resp = call(ctx, req, from);
    if (!resp || resp->code != code::kCreated) return false;
    coap::Message obs(coap::Type::kCon, code::kGet, 2);
    obs.token = {0x04};
    obs.set_uint(option::kObserve, 0);
    obs.set_uri_path(resp->location_path());
    auto o = call(ctx, obs, from);
    return o && o->code == code::kContent;
  }

  std::optional<coap::Message> call(oscore::Context& ctx, const coap::Message& req, const coap::Address& from) {
    Bytes buf(2048);
    oscore::Exchange ex;
    auto n = ctx.protect_request(req, buf, ex);
    if (!n) return std::nullopt;
    Bytes out = gate.handle(ByteView(buf.data(), *n), kNow, from);
    Bytes dec(2048);
    auto d = ctx.unprotect_response(out, ex, dec);
    if (!d) return std::nullopt;
    auto m = coap::Message::parse(ByteView(dec.data(), *d));
    if (!m) return std::nullopt;
    return std::move(*m);
  }

  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{5};
  std::unique_ptr<ace::AuthorizationServer> as;
  ace::MemoryTokenStore tokens;
  std::unique_ptr<ace::AuthzInfo> authz;
  kdc::MemoryStore store;
  groupcomm::GroupManager mgr{store, *p, rnd};
  ace::AceCoapGate gate{*p};
  std::unique_ptr<groupcomm::GroupCoapBinding> binding;
  bool ok = true;
};

void BM_RekeyPushFanout(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Kdc kdc(n);
  if (!kdc.ok || kdc.gate.observations().size() != n) {
    state.SkipWithError("setup failed");
    return;
  }
  size_t sent = 0;
  for (auto _ : state) {
    if (!kdc.mgr.rekey("g1", kNow)) state.SkipWithError("rekey");
    kdc.binding->poll(kNow);
    auto out = kdc.gate.take_outgoing();
    sent += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  if (sent != n * state.iterations()) state.SkipWithError("not every observer was notified");
  state.SetItemsProcessed(static_cast<int64_t>(sent));
}
BENCHMARK(BM_RekeyPushFanout)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_PushCryptoOnly(benchmark::State& state) {
  auto p = crypto::make_openssl_provider();
  auto aead = p->make_aead(cp::alg::kAES_CCM_16_64_128, Bytes(16, 3));
  if (!aead) {
    state.SkipWithError("aead");
    return;
  }
  Bytes nonce(13, 1), aad(12, 2), plain(110, 4), out(plain.size() + 8);
  for (auto _ : state) {
    nonce[12]++;
    auto r = (*aead)->seal(nonce, aad, plain, out);
    if (!r) state.SkipWithError("seal");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushCryptoOnly);

}  // namespace

BENCHMARK_MAIN();
