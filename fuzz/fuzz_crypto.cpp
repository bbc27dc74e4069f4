// fuzz_crypto: untrusted bytes into the parts of the crypto layer that see
// them: the ECDSA DER decoder (with a raw -> DER -> raw round trip), AEAD open
// (which must reject and leave no plaintext), seal/open round trips, ES256 and
// Ed25519 verification of arbitrary signatures, and P-256 public-key
// validation. The first input byte picks the operation.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "crypto/ecdsa_der.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"

namespace {

using namespace acekdc;
using namespace acekdc::crypto;

namespace a = cp::alg;
const int kAeads[] = {a::kA128GCM,           a::kA192GCM,           a::kA256GCM,
                      a::kAES_CCM_16_64_128,  a::kAES_CCM_16_64_256,  a::kAES_CCM_64_64_128,
                      a::kAES_CCM_64_64_256,  a::kChaCha20Poly1305,   a::kAES_CCM_16_128_128,
                      a::kAES_CCM_16_128_256, a::kAES_CCM_64_128_128, a::kAES_CCM_64_128_256};

Provider& provider() {
  static auto p = make_openssl_provider();
  return *p;
}

struct Keys {
  KeyPair ed, p256;
  std::unique_ptr<Verifier> ed_v, es_v;
  Keys() {
    ed.crv = cp::crv::kEd25519;
    ed.d.assign(32, 0x5a);
    p256.crv = cp::crv::kP256;
    p256.d.assign(32, 0x01);
    if (!provider().complete_public(ed) || !provider().complete_public(p256)) std::abort();
    KeyPair a = ed, b = p256;
    a.d.clear();
    b.d.clear();
    ed_v = std::move(*provider().make_verifier(cp::alg::kEdDSA, a));
    es_v = std::move(*provider().make_verifier(cp::alg::kES256, b));
  }
};
Keys& keys() {
  static Keys k;
  return k;
}

[[noreturn]] void bug() { std::abort(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t op = data[0] % 6;
  const uint8_t sel = data[1];
  const ByteView in(data + 2, size - 2);
  switch (op) {
    case 0: {  // DER decode; a decoded signature re-encodes and decodes to itself
      const size_t scalar = 1 + sel % 66;
      uint8_t raw[132], raw2[132], der[kMaxEcdsaDerLen];
      if (ecdsa_der_to_raw(in, scalar, MutableByteView(raw, 2 * scalar))) {
        auto n = ecdsa_raw_to_der(ByteView(raw, 2 * scalar), der);
        if (!n) bug();
        if (!ecdsa_der_to_raw(ByteView(der, *n), scalar, MutableByteView(raw2, 2 * scalar))) bug();
        if (std::memcmp(raw, raw2, 2 * scalar) != 0) bug();
      }
      break;
    }
    case 1: {  // open of attacker bytes: reject, nothing left in out
      const int alg = kAeads[sel % std::size(kAeads)];
      const AeadInfo info = *aead_info(alg);
      if (in.size() < info.nonce_len) return 0;
      const uint8_t key[32] = {7};
      auto a = provider().make_aead(alg, ByteView(key, info.key_len));
      if (!a) bug();
      const ByteView nonce = in.first(info.nonce_len), ct = in.subspan(info.nonce_len);
      Bytes out(ct.size(), 0xa5);
      auto r = (*a)->open(nonce, {}, ct, out);
      if (!r) {
        for (size_t i = 0; i < (ct.size() >= info.tag_len ? ct.size() - info.tag_len : 0); ++i) {
          if (out[i] != 0) bug();
        }
      }
      break;
    }
    case 2: {  // seal/open round trip, in place
      const int alg = kAeads[sel % std::size(kAeads)];
      const AeadInfo info = *aead_info(alg);
      const uint8_t key[32] = {9}, nonce[13] = {3};
      auto a = provider().make_aead(alg, ByteView(key, info.key_len));
      if (!a) bug();
      if (info.nonce_len == 13 && in.size() > 0xffff) break;  // CCM L = 2 limit
      Bytes buf(in.begin(), in.end());
      const size_t len = buf.size();
      buf.resize(len + info.tag_len);
      auto s = (*a)->seal(ByteView(nonce, info.nonce_len), in.first(in.size() / 3),
                          ByteView(buf.data(), len), buf);
      if (!s || *s != buf.size()) bug();
      auto o = (*a)->open(ByteView(nonce, info.nonce_len), in.first(in.size() / 3), buf,
                          MutableByteView(buf.data(), len));
      if (!o || *o != len || std::memcmp(buf.data(), in.data(), len) != 0) bug();
      break;
    }
    case 3:  // ES256 verify of arbitrary bytes: never accepted (a forgery), never crashes
      if (keys().es_v->verify(in.first(in.size() / 2), in.subspan(in.size() / 2))) bug();
      break;
    case 4:
      if (keys().ed_v->verify(in.first(in.size() / 2), in.subspan(in.size() / 2))) bug();
      break;
    case 5: {  // P-256 public key validation from arbitrary coordinates
      KeyPair k;
      k.crv = cp::crv::kP256;
      k.x.assign(in.begin(), in.begin() + std::min<size_t>(in.size(), 32));
      if (in.size() > 32) k.y.assign(in.begin() + 32, in.begin() + std::min<size_t>(in.size(), 64));
      (void)provider().make_verifier(cp::alg::kES256, k);
      break;
    }
  }
  return 0;
}
