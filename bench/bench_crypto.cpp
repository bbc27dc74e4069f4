// bench_crypto: our crypto provider next to the same operation done with raw,
// reused OpenSSL EVP objects in the same binary (this file may include
// OpenSSL; the library code outside src/crypto/openssl/ may not).
//
// Names: <op>/<alg>/<provider|raw>. For AEAD, seal/open of a 64-byte message
// with 16 bytes of AAD; the requirement is provider <= 1.10 x raw. The
// <op>Paired/<alg> runs interleave both and report provider_ns, raw_ns, ratio.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>
#include <cstring>
#include <string>

#include "core/codepoints.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"

namespace {

using namespace acekdc;
using namespace acekdc::crypto;

constexpr size_t kMsgLen = 64;
constexpr size_t kAadLen = 16;

Provider& provider() {
  static auto p = make_openssl_provider();
  return *p;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench_crypto: %s failed\n", what);
    std::abort();
  }
}

const char* cipher_name(int alg) {
  switch (alg) {
    case 1: return "AES-128-GCM";
    case 2: return "AES-192-GCM";
    case 3: return "AES-256-GCM";
    case 24: return "ChaCha20-Poly1305";
    default: return aead_info(alg)->key_len == 16 ? "AES-128-CCM" : "AES-256-CCM";
  }
}
bool is_ccm(int alg) { return (alg >= 10 && alg <= 13) || (alg >= 30 && alg <= 33); }

// RawAead: the minimal EVP sequence with one context per direction keyed once
// (OpenSSL's CCM needs a context keyed for each direction).
struct RawAead {
  EVP_CIPHER* cipher = nullptr;
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  AeadInfo info;
  bool ccm;

  RawAead(int alg, const uint8_t* key) : info(*aead_info(alg)), ccm(is_ccm(alg)) {
    cipher = EVP_CIPHER_fetch(nullptr, cipher_name(alg), nullptr);
    enc = make(key, 1);
    dec = make(key, 0);
  }
  ~RawAead() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
    EVP_CIPHER_free(cipher);
  }
  EVP_CIPHER_CTX* make(const uint8_t* key, int e) {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    check(EVP_CipherInit_ex(c, cipher, nullptr, nullptr, nullptr, e) == 1, "init");
    check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, info.nonce_len, nullptr) == 1, "ivlen");
    if (ccm) check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, info.tag_len, nullptr) == 1, "taglen");
    check(EVP_CipherInit_ex(c, nullptr, nullptr, key, nullptr, e) == 1, "key");
    return c;
  }
  void seal(const uint8_t* nonce, const uint8_t* aad, const uint8_t* pt, uint8_t* out) {
    int n;
    EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, nonce);
    if (ccm) EVP_EncryptUpdate(enc, nullptr, &n, nullptr, kMsgLen);
    EVP_EncryptUpdate(enc, nullptr, &n, aad, kAadLen);
    EVP_EncryptUpdate(enc, out, &n, pt, kMsgLen);
    if (!ccm) EVP_EncryptFinal_ex(enc, out + kMsgLen, &n);
    EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, info.tag_len, out + kMsgLen);
  }
  bool open(const uint8_t* nonce, const uint8_t* aad, const uint8_t* ct, uint8_t* out) {
    int n;
    uint8_t* tag = const_cast<uint8_t*>(ct + kMsgLen);
    EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, nonce);
    if (ccm) {
      EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, info.tag_len, tag);
      EVP_DecryptUpdate(dec, nullptr, &n, nullptr, kMsgLen);
      EVP_DecryptUpdate(dec, nullptr, &n, aad, kAadLen);
      return EVP_DecryptUpdate(dec, out, &n, ct, kMsgLen) == 1;
    }
    EVP_DecryptUpdate(dec, nullptr, &n, aad, kAadLen);
    EVP_DecryptUpdate(dec, out, &n, ct, kMsgLen);
    EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, info.tag_len, tag);
    return EVP_DecryptFinal_ex(dec, out + kMsgLen, &n) == 1;
  }
};

struct AeadFixture {
  uint8_t key[32], nonce[13], aad[kAadLen], pt[kMsgLen], ct[kMsgLen + 16], back[kMsgLen];
  AeadFixture() {
    for (size_t i = 0; i < sizeof key; ++i) key[i] = static_cast<uint8_t>(i);
    std::memset(nonce, 0x24, sizeof nonce);
    std::memset(aad, 0x42, sizeof aad);
    std::memset(pt, 0x61, sizeof pt);
  }
};

void BM_AeadSealProvider(benchmark::State& st, int alg) {
  AeadFixture f;
  const AeadInfo info = *aead_info(alg);
  auto a = *provider().make_aead(alg, ByteView(f.key, info.key_len));
  for (auto _ : st) {
    auto r = a->seal(ByteView(f.nonce, info.nonce_len), f.aad, f.pt, f.ct);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(f.ct);
  }
  st.SetBytesProcessed(st.iterations() * kMsgLen);
}
void BM_AeadSealRaw(benchmark::State& st, int alg) {
  AeadFixture f;
  RawAead a(alg, f.key);
  for (auto _ : st) {
    a.seal(f.nonce, f.aad, f.pt, f.ct);
    benchmark::DoNotOptimize(f.ct);
  }
  st.SetBytesProcessed(st.iterations() * kMsgLen);
}
void BM_AeadOpenProvider(benchmark::State& st, int alg) {
  AeadFixture f;
  const AeadInfo info = *aead_info(alg);
  auto a = *provider().make_aead(alg, ByteView(f.key, info.key_len));
  check(a->seal(ByteView(f.nonce, info.nonce_len), f.aad, f.pt, f.ct).has_value(), "seal");
  const ByteView ct(f.ct, kMsgLen + info.tag_len);
  for (auto _ : st) {
    auto r = a->open(ByteView(f.nonce, info.nonce_len), f.aad, ct, f.back);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(f.back);
  }
  check(std::memcmp(f.back, f.pt, kMsgLen) == 0, "provider open");
  st.SetBytesProcessed(st.iterations() * kMsgLen);
}
void BM_AeadOpenRaw(benchmark::State& st, int alg) {
  AeadFixture f;
  RawAead a(alg, f.key);
  a.seal(f.nonce, f.aad, f.pt, f.ct);
  bool ok = true;
  for (auto _ : st) {
    ok &= a.open(f.nonce, f.aad, f.ct, f.back);
    benchmark::DoNotOptimize(f.back);
  }
  check(ok && std::memcmp(f.back, f.pt, kMsgLen) == 0, "raw open");
  st.SetBytesProcessed(st.iterations() * kMsgLen);
}

// Paired: alternating timed blocks of kBlock provider calls and kBlock raw
// calls on the same data, so both see the same machine load; the counters are
// the median ns/op of each side's blocks and their ratio (robust on a busy
// machine where separate runs drift by tens of percent).
constexpr int kBlock = 16;

double median(std::vector<double>& v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

template <class P, class R>
void paired(benchmark::State& st, P&& prov, R&& raw) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> tp, tr;
  tp.reserve(1 << 16);
  tr.reserve(1 << 16);
  for (auto _ : st) {
    auto t0 = Clock::now();
    for (int i = 0; i < kBlock; ++i) prov();
    auto t1 = Clock::now();
    for (int i = 0; i < kBlock; ++i) raw();
    auto t2 = Clock::now();
    if (tp.size() < (1 << 16)) {
      tp.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kBlock);
      tr.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count() / kBlock);
    }
  }
  const double mp = median(tp), mr = median(tr);
  st.counters["provider_ns"] = mp;
  st.counters["raw_ns"] = mr;
  st.counters["ratio"] = mp / mr;
}

void BM_AeadSealPaired(benchmark::State& st, int alg) {
  AeadFixture f;
  const AeadInfo info = *aead_info(alg);
  auto a = *provider().make_aead(alg, ByteView(f.key, info.key_len));
  RawAead r(alg, f.key);
  const ByteView nonce(f.nonce, info.nonce_len);
  paired(
      st,
      [&] {
        auto x = a->seal(nonce, f.aad, f.pt, f.ct);
        benchmark::DoNotOptimize(x);
        benchmark::ClobberMemory();
      },
      [&] {
        r.seal(f.nonce, f.aad, f.pt, f.ct);
        benchmark::ClobberMemory();
      });
}

void BM_AeadOpenPaired(benchmark::State& st, int alg) {
  AeadFixture f;
  const AeadInfo info = *aead_info(alg);
  auto a = *provider().make_aead(alg, ByteView(f.key, info.key_len));
  RawAead r(alg, f.key);
  const ByteView nonce(f.nonce, info.nonce_len);
  check(a->seal(nonce, f.aad, f.pt, f.ct).has_value(), "seal");
  const ByteView ct(f.ct, kMsgLen + info.tag_len);
  bool ok = true;
  paired(
      st,
      [&] {
        auto x = a->open(nonce, f.aad, ct, f.back);
        ok &= x.has_value();
        benchmark::ClobberMemory();
      },
      [&] {
        ok &= r.open(f.nonce, f.aad, f.ct, f.back);
        benchmark::ClobberMemory();
      });
  check(ok, "paired open");
}

// ---- Signatures ----
struct SigKeys {
  KeyPair ed, p256;
  SigKeys() {
    ed = *provider().generate_keypair(cp::crv::kEd25519);
    p256 = *provider().generate_keypair(cp::crv::kP256);
  }
};
SigKeys& keys() {
  static SigKeys k;
  return k;
}
const uint8_t kMsg[kMsgLen] = {1, 2, 3};

EVP_PKEY* raw_pkey(const KeyPair& k) {
  if (k.crv == cp::crv::kEd25519) {
    return EVP_PKEY_new_raw_private_key_ex(nullptr, "ED25519", nullptr, k.d.data(), k.d.size());
  }
  uint8_t pub[65] = {0x04};
  std::memcpy(pub + 1, k.x.data(), 32);
  std::memcpy(pub + 33, k.y.data(), 32);
  uint8_t d_native[32];
  for (int i = 0; i < 32; ++i) d_native[i] = k.d[31 - i];  // little-endian host
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub),
      OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, d_native, sizeof d_native),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  check(EVP_PKEY_fromdata_init(c) == 1 && EVP_PKEY_fromdata(c, &pkey, EVP_PKEY_KEYPAIR, params) == 1,
        "fromdata");
  EVP_PKEY_CTX_free(c);
  return pkey;
}

void BM_SignProvider(benchmark::State& st, int alg) {
  const KeyPair& k = alg == cp::alg::kEdDSA ? keys().ed : keys().p256;
  auto s = *provider().make_signer(alg, k);
  uint8_t sig[64];
  for (auto _ : st) {
    auto r = s->sign(kMsg, sig);
    benchmark::DoNotOptimize(r);
  }
}
void BM_VerifyProvider(benchmark::State& st, int alg) {
  const KeyPair& k = alg == cp::alg::kEdDSA ? keys().ed : keys().p256;
  uint8_t sig[64];
  check((*provider().make_signer(alg, k))->sign(kMsg, sig).has_value(), "sign");
  KeyPair pub = k;
  pub.d.clear();
  auto v = *provider().make_verifier(alg, pub);
  for (auto _ : st) {
    auto r = v->verify(kMsg, sig);
    benchmark::DoNotOptimize(r);
    check(r.has_value(), "verify");
  }
}

// Raw Ed25519: one EVP_MD_CTX initialised once, EVP_DigestSign per message.
// Raw ES256: SHA-256 then EVP_PKEY_sign on a context initialised once (DER
// out, no conversion to r||s).
void BM_SignRaw(benchmark::State& st, int alg) {
  const KeyPair& k = alg == cp::alg::kEdDSA ? keys().ed : keys().p256;
  EVP_PKEY* pkey = raw_pkey(k);
  uint8_t sig[80];
  if (alg == cp::alg::kEdDSA) {
    EVP_MD_CTX* c = EVP_MD_CTX_new();
    check(EVP_DigestSignInit_ex(c, nullptr, nullptr, nullptr, nullptr, pkey, nullptr) == 1, "init");
    for (auto _ : st) {
      size_t len = 64;
      benchmark::DoNotOptimize(EVP_DigestSign(c, sig, &len, kMsg, sizeof kMsg));
    }
    EVP_MD_CTX_free(c);
  } else {
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    EVP_MD* sha = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    check(EVP_PKEY_sign_init(c) == 1, "sign_init");
    for (auto _ : st) {
      uint8_t dgst[32];
      unsigned dl;
      size_t len = sizeof sig;
      EVP_DigestInit_ex2(md, sha, nullptr);
      EVP_DigestUpdate(md, kMsg, sizeof kMsg);
      EVP_DigestFinal_ex(md, dgst, &dl);
      benchmark::DoNotOptimize(EVP_PKEY_sign(c, sig, &len, dgst, dl));
    }
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha);
    EVP_PKEY_CTX_free(c);
  }
  EVP_PKEY_free(pkey);
}
void BM_VerifyRaw(benchmark::State& st, int alg) {
  const KeyPair& k = alg == cp::alg::kEdDSA ? keys().ed : keys().p256;
  EVP_PKEY* pkey = raw_pkey(k);
  uint8_t sig[80];
  size_t sig_len = sizeof sig;
  if (alg == cp::alg::kEdDSA) {
    EVP_MD_CTX* c = EVP_MD_CTX_new();
    check(EVP_DigestSignInit_ex(c, nullptr, nullptr, nullptr, nullptr, pkey, nullptr) == 1 &&
              EVP_DigestSign(c, sig, &sig_len, kMsg, sizeof kMsg) == 1,
          "sign");
    EVP_MD_CTX_free(c);
    c = EVP_MD_CTX_new();
    check(EVP_DigestVerifyInit_ex(c, nullptr, nullptr, nullptr, nullptr, pkey, nullptr) == 1, "init");
    for (auto _ : st) {
      check(EVP_DigestVerify(c, sig, sig_len, kMsg, sizeof kMsg) == 1, "raw verify");
    }
    EVP_MD_CTX_free(c);
  } else {
    EVP_MD* sha = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    uint8_t dgst[32];
    unsigned dl;
    EVP_Digest(kMsg, sizeof kMsg, dgst, &dl, sha, nullptr);
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    check(EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, sig, &sig_len, dgst, dl) == 1, "sign");
    EVP_PKEY_CTX_free(c);
    c = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    check(EVP_PKEY_verify_init(c) == 1, "verify_init");
    for (auto _ : st) {
      EVP_DigestInit_ex2(md, sha, nullptr);
      EVP_DigestUpdate(md, kMsg, sizeof kMsg);
      EVP_DigestFinal_ex(md, dgst, &dl);
      check(EVP_PKEY_verify(c, sig, sig_len, dgst, dl) == 1, "raw verify");
    }
    EVP_PKEY_CTX_free(c);
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha);
  }
  EVP_PKEY_free(pkey);
}

// ---- HKDF-SHA-256: 32-byte IKM and salt, 16-byte info, 32 bytes out ----
void BM_HkdfProvider(benchmark::State& st) {
  uint8_t ikm[32] = {1}, salt[32] = {2}, info[16] = {3}, out[32];
  for (auto _ : st) {
    auto r = provider().hkdf(Hash::kSha256, salt, ikm, info, out);
    benchmark::DoNotOptimize(r);
  }
}
void BM_HkdfRaw(benchmark::State& st) {
  uint8_t ikm[32] = {1}, salt[32] = {2}, info[16] = {3}, out[32];
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* c = EVP_KDF_CTX_new(kdf);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, sizeof ikm),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
      OSSL_PARAM_construct_end()};
  for (auto _ : st) {
    benchmark::DoNotOptimize(EVP_KDF_derive(c, out, sizeof out, params));
  }
  EVP_KDF_CTX_free(c);
  EVP_KDF_free(kdf);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace acekdc;
  for (int alg : {10, 11, 12, 13, 30, 31, 32, 33, 1, 2, 3, 24}) {
    const std::string a = std::to_string(alg);
    benchmark::RegisterBenchmark(("AeadSeal64/" + a + "/provider").c_str(), BM_AeadSealProvider, alg);
    benchmark::RegisterBenchmark(("AeadSeal64/" + a + "/raw").c_str(), BM_AeadSealRaw, alg);
    benchmark::RegisterBenchmark(("AeadOpen64/" + a + "/provider").c_str(), BM_AeadOpenProvider, alg);
    benchmark::RegisterBenchmark(("AeadOpen64/" + a + "/raw").c_str(), BM_AeadOpenRaw, alg);
    benchmark::RegisterBenchmark(("AeadSeal64Paired/" + a).c_str(), BM_AeadSealPaired, alg);
    benchmark::RegisterBenchmark(("AeadOpen64Paired/" + a).c_str(), BM_AeadOpenPaired, alg);
  }
  for (auto [alg, name] : {std::pair{cp::alg::kEdDSA, "Ed25519"}, std::pair{cp::alg::kES256, "ES256"}}) {
    const std::string n = name;
    benchmark::RegisterBenchmark(("Sign64/" + n + "/provider").c_str(), BM_SignProvider, alg);
    benchmark::RegisterBenchmark(("Sign64/" + n + "/raw").c_str(), BM_SignRaw, alg);
    benchmark::RegisterBenchmark(("Verify64/" + n + "/provider").c_str(), BM_VerifyProvider, alg);
    benchmark::RegisterBenchmark(("Verify64/" + n + "/raw").c_str(), BM_VerifyRaw, alg);
  }
  benchmark::RegisterBenchmark("HkdfSha256_32/provider", BM_HkdfProvider);
  benchmark::RegisterBenchmark("HkdfSha256_32/raw", BM_HkdfRaw);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
