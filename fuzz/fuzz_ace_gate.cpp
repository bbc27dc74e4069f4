// fuzz_ace_gate: arbitrary datagrams into AceCoapGate serving an AS (one OSCORE peer) and
// a KDC /authz-info. Never crash; every non-empty answer parses as a CoAP response
// carrying the request's message ID and token.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ace/coap_gate.h"
#include "coap/message.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

using namespace acekdc;

namespace {

constexpr int64_t kNow = 1700000000;

struct Fixture {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  FakeRandom rnd{3};
  cose::CoseKey key = cose::CoseKey::symmetric(*from_hex("000102030405060708090a0b0c0d0e0f"), {},
                                               cp::alg::kAES_CCM_16_64_128);
  std::unique_ptr<ace::AuthorizationServer> as;
  ace::MemoryTokenStore store{64};
  std::unique_ptr<ace::AuthzInfo> kdc;
  std::unique_ptr<ace::AceCoapGate> gate;
  Fixture() {
    ace::AsPolicy pol;
    ace::ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", ace::kRoleRequester}};
    pol.clients = {c};
    ace::AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = key;
    pol.audiences = {a};
    as = std::make_unique<ace::AuthorizationServer>(*p, rnd, pol);
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(key);
    cfg.groups = {{"g1", ace::GroupConfig{}}};
    kdc = std::make_unique<ace::AuthzInfo>(*p, rnd, store, cfg);
    gate = std::make_unique<ace::AceCoapGate>(*p);
    gate->serve_as(*as);
    gate->serve_kdc(*kdc);
    oscore::ContextConfig oc;
    oc.params.master_secret = *from_hex("0123456789abcdef0123456789abcdef");
    oc.params.recipient_id = Bytes{0x01};
    auto ctx = oscore::Context::create(*p, std::move(oc));
    if (ctx) gate->add_peer("client1", std::move(*ctx));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fx;
  if (fx.store.size() >= 32) fx.gate->purge(kNow + (int64_t{1} << 40));
  ByteView in(data, size);
  Bytes out = fx.gate->handle(in, kNow);
  if (out.empty()) return 0;
  auto req = coap::MessageView::parse(in);
  auto resp = coap::MessageView::parse(out);
  if (!resp) __builtin_trap();
  if (req) {
    if (resp->message_id != req->message_id) __builtin_trap();
    if (!equal(resp->token, req->token)) __builtin_trap();
  }
  return 0;
}
