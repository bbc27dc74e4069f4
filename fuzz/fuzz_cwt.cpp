// fuzz_cwt: arbitrary bytes as CWTs, verified with fixed keys (RFC 8392 A.3-A.5
// keys, so seeds from the vectors verify); and as claims sets. Never crash; and:
//  - claims that decode re-encode to bytes that decode and re-encode identically;
//  - ClaimsView::decode accepts only what Claims::decode accepts, with equal claims;
//  - verify() never accepts a token whose claims fail the time / audience checks.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/codepoints.h"
#include "core/hex.h"
#include "cwt/cwt.h"
#include "crypto/openssl/openssl_provider.h"

using namespace acekdc;

namespace {

struct Fixture {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  cose::KeySet keys;
  Fixture() {
    cose::CoseKey ec;
    ec.kty = cp::kty::kEC2;
    ec.crv = cp::crv::kP256;
    ec.x = *from_hex("143329cce7868e416927599cf65a34f3ce2ffda55a7eca69ed8919a394d42f0f");
    ec.y = *from_hex("60f7f1a780d8a783bfb7a2dd6b2796e8128dbbcef9d3d168db9529971a36e7b9");
    keys.keys.push_back(ec);
    keys.keys.push_back(cose::CoseKey::symmetric(
        *from_hex("403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d79569388")));
    keys.keys.push_back(cose::CoseKey::symmetric(*from_hex("231f4c4d4d3051fdc2ec0a3851d5b383")));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fx;
  const ByteView in(data, size);

  if (auto c = cwt::Claims::decode(in)) {
    const Bytes e1 = c->encode();
    auto c2 = cwt::Claims::decode(e1);
    if (!c2 || c2->encode() != e1) __builtin_trap();
  }
  // The one-pass view accepts only what Claims::decode accepts, with the same values.
  if (auto v = cwt::ClaimsView::decode(in)) {
    auto c = cwt::Claims::decode(in);
    if (!c || c->encode() != v->to_claims().encode()) __builtin_trap();
  }

  cwt::VerifyOptions o;
  o.now = 1444000000;  // inside the RFC 8392 A.1 validity window
  o.audience = "coap://light.example.com";
  cwt::TokenInfo info;
  auto v = cwt::verify(*fx.p, in, fx.keys, o, &info);
  if (v) {
    if (!cwt::check_claims(*v, o)) __builtin_trap();
    if (info.layers.empty() || info.layers.size() > o.max_nesting) __builtin_trap();
  }
  return 0;
}
