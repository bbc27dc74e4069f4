// fuzz_cose: arbitrary bytes as COSE messages (Sign1, Encrypt0, Mac0, Sign,
// Encrypt, Mac) and keys, verified with fixed keys
// (those of the cose-wg Examples, so seeds from the vectors verify). Never crash;
// and:
//  - a message that decodes re-encodes to a message that decodes to the same
//    protected bytes, content and signature/tag;
//  - a COSE_Key / KeySet that parses re-encodes to bytes that parse to the same
//    encoding again;
//  - a message that verifies with a key fails once its last byte is flipped.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/encrypt0.h"
#include "cose/key.h"
#include "cose/mac0.h"
#include "cose/multi.h"
#include "cose/sign1.h"
#include "crypto/openssl/openssl_provider.h"

using namespace acekdc;
using namespace acekdc::cose;

namespace {

struct Fixture {
  std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  CoseKey ec, ed, aead16, hmac32;
  Fixture() {
    ec.kty = cp::kty::kEC2;
    ec.crv = cp::crv::kP256;
    ec.x = *from_hex("bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff");
    ec.y = *from_hex("20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e");
    ed.kty = cp::kty::kOKP;
    ed.crv = cp::crv::kEd25519;
    ed.x = *from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    aead16 = CoseKey::symmetric(*from_hex("849b57219dae48de646d07dbb533566e"));
    aead16.base_iv = *from_hex("89f52f65a1c5809300000000");
    hmac32 = CoseKey::symmetric(
        *from_hex("849b57219dae48de646d07dbb533566e976686457c1491be3a76dcea6c427188"));
  }
};

void check_roundtrip(const Message& m) {
  Bytes enc;
  encode_message(m, enc);
  auto again = decode_message(enc, m.type);
  if (!again) __builtin_trap();
  if (again->headers.protected_bytes != m.headers.protected_bytes) __builtin_trap();
  if (again->content != m.content || again->auth != m.auth) __builtin_trap();
  if (again->detached != m.detached || again->tagged != m.tagged) __builtin_trap();
}

template <class F>
void check_flip(ByteView data, F verify) {
  if (!verify(data) || data.empty()) return;
  Bytes flipped = to_bytes(data);
  flipped.back() ^= 0x01;
  if (verify(flipped)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fx;
  const ByteView in(data, size);

  if (auto k = CoseKey::decode(in)) {
    const Bytes e1 = k->encode();
    auto k2 = CoseKey::decode(e1);
    if (!k2 || k2->encode() != e1) __builtin_trap();
  }
  if (auto ks = KeySet::decode(in, true)) {
    const Bytes e1 = ks->encode();
    auto ks2 = KeySet::decode(e1);
    if (!ks2 || ks2->encode() != e1) __builtin_trap();
  }

  for (MessageType t : {MessageType::kSign1, MessageType::kEncrypt0, MessageType::kMac0}) {
    if (auto m = decode_message(in, t)) check_roundtrip(*m);
  }
  (void)identify(in);

  const ByteView aad;
  for (const CoseKey* k : {&fx.ec, &fx.ed}) {
    check_flip(in, [&](ByteView b) { return sign1_verify(*fx.p, *k, b, aad).has_value(); });
  }
  check_flip(in, [&](ByteView b) { return encrypt0_decrypt(*fx.p, fx.aead16, b, aad).has_value(); });
  check_flip(in, [&](ByteView b) { return mac0_verify(*fx.p, fx.hmac32, b, aad).has_value(); });

  // Multi-layer messages (direct / direct+HKDF recipients, signers).
  for (const CoseKey* k : {&fx.ec, &fx.ed}) {
    check_flip(in, [&](ByteView b) { return sign_verify(*fx.p, *k, b, aad).has_value(); });
  }
  for (const CoseKey* k : {&fx.aead16, &fx.hmac32}) {
    check_flip(in, [&](ByteView b) { return encrypt_decrypt(*fx.p, *k, b, aad).has_value(); });
    check_flip(in, [&](ByteView b) { return mac_verify(*fx.p, *k, b, aad).has_value(); });
  }
  return 0;
}
