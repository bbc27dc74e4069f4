// AEAD through OpenSSL 3: AES-GCM and ChaCha20/Poly1305 through EVP, AES-CCM
// (all eight COSE variants) composed here from OpenSSL's AES.
//
// GCM / ChaCha20-Poly1305 (OsslAead): two EVP_CIPHER_CTX, one for sealing and
// one for opening, each keyed once at creation; per message only the nonce is
// set (EVP_CipherInit_ex with a NULL cipher and key keeps the key schedule).
//
// AES-CCM (CcmAead, RFC 3610): OpenSSL's EVP CCM needs per message an
// EVP_CipherInit_ex (which looks the IV length up through the provider's
// parameter tables), three updates and a tag parameter call; for the short
// messages OSCORE protects that dispatch cost more than the AES work. CcmAead
// uses two AES contexts keyed once instead: AES-CBC without padding computes
// the CBC-MAC, AES-ECB encrypts the counter blocks A_0..A_n in one call. Per
// message (up to kChunk bytes of MAC input and keystream) that is one CBC and
// one ECB update, no init and no parameter lookups; the AES rounds are
// OpenSSL's (AES-NI where the CPU has it). Checked byte for byte against
// OpenSSL's own CCM (openssl/ccm_test.cpp) and against published vectors.
// Seal and open never re-key and never allocate.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include "core/codepoints.h"
#include "crypto/openssl/internal.h"

namespace acekdc::crypto::ossl {
namespace {

// bad_overlap reports an overlap between in and out other than exact in-place.
bool bad_overlap(const uint8_t* in, size_t in_len, const uint8_t* out, size_t out_len) {
  if (in == out || in_len == 0 || out_len == 0) return false;
  const auto a = reinterpret_cast<uintptr_t>(in);
  const auto b = reinterpret_cast<uintptr_t>(out);
  return a < b + out_len && b < a + in_len;
}

// ---- GCM, ChaCha20-Poly1305: EVP ----

class OsslAead final : public Aead {
 public:
  OsslAead(int alg, AeadInfo info, CipherCtxPtr seal_ctx, CipherCtxPtr open_ctx)
      : alg_(alg), info_(info), seal_ctx_(std::move(seal_ctx)), open_ctx_(std::move(open_ctx)) {}

  int alg() const override { return alg_; }
  const AeadInfo& info() const override { return info_; }

  Expected<size_t, Error> seal(ByteView nonce, ByteView aad, ByteView plaintext,
                               MutableByteView out) override {
    if (nonce.size() != info_.nonce_len || !length_ok(plaintext.size(), aad.size())) {
      return unexpected(Error::kInvalidArgument);
    }
    const size_t total = plaintext.size() + info_.tag_len;
    if (out.size() < total || bad_overlap(plaintext.data(), plaintext.size(), out.data(), total)) {
      return unexpected(Error::kInvalidArgument);
    }
    EVP_CIPHER_CTX* c = seal_ctx_.get();
    const int pt_len = static_cast<int>(plaintext.size());
    int n = 0;
    if (EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, nonce.data(), 1) != 1) {
      return fail(Error::kInternal);
    }
    if (!aad.empty() &&
        EVP_CipherUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1) {
      return fail(Error::kInternal);
    }
    if (pt_len > 0 && EVP_CipherUpdate(c, out.data(), &n, plaintext.data(), pt_len) != 1) {
      return fail(Error::kInternal);
    }
    if (EVP_CipherFinal_ex(c, out.data() + pt_len, &n) != 1) return fail(Error::kInternal);
    if (EVP_CIPHER_CTX_get_params(c, tag_params(out.data() + pt_len).data()) != 1) {
      return fail(Error::kInternal);
    }
    return total;
  }

  Expected<size_t, Error> open(ByteView nonce, ByteView aad, ByteView ciphertext,
                               MutableByteView out) override {
    if (nonce.size() != info_.nonce_len) return unexpected(Error::kInvalidArgument);
    // Shorter than a tag: cannot be authentic (attacker-controlled input).
    if (ciphertext.size() < info_.tag_len) return unexpected(Error::kAuthenticationFailed);
    const size_t ct_len = ciphertext.size() - info_.tag_len;
    if (!length_ok(ct_len, aad.size())) return unexpected(Error::kInvalidArgument);
    if (out.size() < ct_len || bad_overlap(ciphertext.data(), ciphertext.size(), out.data(), ct_len)) {
      return unexpected(Error::kInvalidArgument);
    }
    uint8_t tag[16];
    std::memcpy(tag, ciphertext.data() + ct_len, info_.tag_len);
    const int len = static_cast<int>(ct_len);
    uint8_t empty_out[1];
    uint8_t* const dst = ct_len > 0 ? out.data() : empty_out;
    EVP_CIPHER_CTX* c = open_ctx_.get();
    int n = 0;
    bool ok = EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, nonce.data(), 0) == 1;
    if (ok && !aad.empty()) {
      ok = EVP_CipherUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1;
    }
    if (ok && len > 0) ok = EVP_CipherUpdate(c, dst, &n, ciphertext.data(), len) == 1;
    if (ok) {
      ok = EVP_CIPHER_CTX_set_params(c, tag_params(tag).data()) == 1 &&
           EVP_CipherFinal_ex(c, dst + len, &n) == 1;
    }
    if (!ok) {
      // Unauthenticated plaintext never reaches the caller.
      if (ct_len > 0) secure_zero(out.data(), ct_len);
      return fail(Error::kAuthenticationFailed);
    }
    return ct_len;
  }

 private:
  // tag_params names the tag buffer (tag_len bytes) for get/set_params: cheaper
  // per message than EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_GET_TAG / SET_TAG),
  // which builds the same parameter after a switch over every ctrl.
  std::array<OSSL_PARAM, 2> tag_params(uint8_t* tag) const {
    return {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, info_.tag_len),
            OSSL_PARAM_construct_end()};
  }

  bool length_ok(size_t text_len, size_t aad_len) const {
    return text_len <= static_cast<size_t>(INT_MAX) - info_.tag_len && aad_len <= INT_MAX;
  }

  int alg_;
  AeadInfo info_;
  CipherCtxPtr seal_ctx_;
  CipherCtxPtr open_ctx_;
};

// new_ctx returns a context for cipher keyed with key for one direction
// (enc = 1 seal, 0 open), with the nonce length fixed before the key.
CipherCtxPtr new_ctx(const EVP_CIPHER* cipher, const AeadInfo& info, ByteView key, int enc) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(info.nonce_len),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), nullptr, enc) != 1) {
    return nullptr;
  }
  return ctx;
}

// ---- AES-CCM (RFC 3610) from AES-CBC and AES-ECB ----

constexpr size_t kBlock = 16;
// kChunk: bytes of MAC input / keystream per OpenSSL call (a multiple of kBlock).
// A 64-byte OSCORE message with its AAD needs one call of each.
constexpr size_t kChunk = 512;

class CcmAead final : public Aead {
 public:
  CcmAead(int alg, AeadInfo info, CipherCtxPtr cbc, CipherCtxPtr ecb)
      : alg_(alg), info_(info), len_field_(15 - info.nonce_len), cbc_(std::move(cbc)), ecb_(std::move(ecb)) {}

  int alg() const override { return alg_; }
  const AeadInfo& info() const override { return info_; }

  Expected<size_t, Error> seal(ByteView nonce, ByteView aad, ByteView plaintext,
                               MutableByteView out) override {
    if (nonce.size() != info_.nonce_len || !length_ok(plaintext.size(), aad.size())) {
      return unexpected(Error::kInvalidArgument);
    }
    const size_t len = plaintext.size();
    const size_t total = len + info_.tag_len;
    if (out.size() < total || bad_overlap(plaintext.data(), len, out.data(), total)) {
      return unexpected(Error::kInvalidArgument);
    }
    uint8_t t[kBlock], s0[kBlock];
    // The MAC reads the plaintext before the keystream may overwrite it (in place).
    if (!cbc_mac(nonce, aad, plaintext.data(), len, t) || !ctr(nonce, plaintext.data(), len, out.data(), s0)) {
      return fail(Error::kInternal);
    }
    for (size_t i = 0; i < info_.tag_len; ++i) out[len + i] = static_cast<uint8_t>(t[i] ^ s0[i]);
    return total;
  }

  Expected<size_t, Error> open(ByteView nonce, ByteView aad, ByteView ciphertext,
                               MutableByteView out) override {
    if (nonce.size() != info_.nonce_len) return unexpected(Error::kInvalidArgument);
    // Shorter than a tag: cannot be authentic (attacker-controlled input).
    if (ciphertext.size() < info_.tag_len) return unexpected(Error::kAuthenticationFailed);
    const size_t len = ciphertext.size() - info_.tag_len;
    if (!length_ok(len, aad.size())) return unexpected(Error::kInvalidArgument);
    if (out.size() < len || bad_overlap(ciphertext.data(), ciphertext.size(), out.data(), len)) {
      return unexpected(Error::kInvalidArgument);
    }
    uint8_t tag[kBlock];
    std::memcpy(tag, ciphertext.data() + len, info_.tag_len);
    uint8_t t[kBlock], s0[kBlock];
    bool ok = ctr(nonce, ciphertext.data(), len, out.data(), s0) && cbc_mac(nonce, aad, out.data(), len, t);
    if (ok) {
      for (size_t i = 0; i < info_.tag_len; ++i) t[i] = static_cast<uint8_t>(t[i] ^ s0[i]);
      ok = CRYPTO_memcmp(t, tag, info_.tag_len) == 0;
    }
    if (!ok) {
      // Unauthenticated plaintext never reaches the caller.
      if (len > 0) secure_zero(out.data(), len);
      return fail(Error::kAuthenticationFailed);
    }
    return len;
  }

 private:
  bool length_ok(size_t text_len, size_t aad_len) const {
    if (text_len > static_cast<size_t>(INT_MAX) - info_.tag_len || aad_len > INT_MAX) return false;
    // The length field has L = 15 - nonce_len bytes (L = 2 for a 13-byte nonce: 65535 bytes).
    return len_field_ >= 8 || text_len < (uint64_t{1} << (8 * len_field_));
  }

  // MacInput collects the formatted CBC-MAC input (B_0, the encoded AAD, the
  // plaintext, each zero-padded to a block) and runs it through the CBC
  // context kChunk bytes at a time.
  struct MacInput {
    MacInput(EVP_CIPHER_CTX* c, uint8_t* ch) : cbc(c), chain(ch) {}  // buf left uninitialized
    EVP_CIPHER_CTX* cbc;
    uint8_t* chain;
    alignas(16) uint8_t buf[kChunk];
    size_t used = 0;
    bool ok = true;

    void absorb(const uint8_t* p, size_t n) {
      while (n > 0) {
        const size_t k = std::min(n, kChunk - used);
        std::memcpy(buf + used, p, k);
        used += k;
        p += k;
        n -= k;
        if (used == kChunk) flush();
      }
    }
    void pad() {
      const size_t r = used % kBlock;
      if (r != 0) {
        std::memset(buf + used, 0, kBlock - r);
        used += kBlock - r;
      }
      if (used == kChunk) flush();
    }
    // flush encrypts the collected blocks; the last ciphertext block is the
    // CBC context's next IV, kept in `chain`.
    void flush() {
      if (used == 0) return;
      int n = 0;
      ok = ok && EVP_EncryptUpdate(cbc, buf, &n, buf, static_cast<int>(used)) == 1 &&
           static_cast<size_t>(n) == used;
      std::memcpy(chain, buf + used - kBlock, kBlock);
      used = 0;
    }
  };

  // cbc_mac writes T = the CBC-MAC of (B_0, AAD, plaintext) (RFC 3610 §2.2),
  // all 16 bytes, to t. The CBC context keeps its chaining value from the
  // previous message (chain_); XORing it into B_0 makes the first output
  // E(K, B_0), as with a zero IV, without re-initialising the context.
  bool cbc_mac(ByteView nonce, ByteView aad, const uint8_t* text, size_t len, uint8_t* t) {
    MacInput in(cbc_.get(), chain_);
    uint8_t b0[kBlock];
    b0[0] = static_cast<uint8_t>((aad.empty() ? 0 : 0x40) | (((info_.tag_len - 2) / 2) << 3) | (len_field_ - 1));
    std::memcpy(b0 + 1, nonce.data(), info_.nonce_len);
    put_be(b0 + 1 + info_.nonce_len, len_field_, len);
    for (size_t i = 0; i < kBlock; ++i) b0[i] ^= chain_[i];
    in.absorb(b0, kBlock);
    if (!aad.empty()) {
      // RFC 3610 §2.2: a 2-byte length below 2^16 - 2^8, else 0xff 0xfe and 4 bytes.
      uint8_t head[6];
      size_t head_len;
      if (aad.size() < 0xff00) {
        put_be(head, 2, aad.size());
        head_len = 2;
      } else {
        head[0] = 0xff;
        head[1] = 0xfe;
        put_be(head + 2, 4, aad.size());
        head_len = 6;
      }
      in.absorb(head, head_len);
      in.absorb(aad.data(), aad.size());
      in.pad();
    }
    in.absorb(text, len);
    in.pad();
    in.flush();
    if (!in.ok) {
      // The chaining value is unknown after a failed call: start over from a zero IV.
      std::memset(chain_, 0, kBlock);
      EVP_EncryptInit_ex(cbc_.get(), nullptr, nullptr, nullptr, chain_);
      return false;
    }
    std::memcpy(t, chain_, kBlock);
    return true;
  }

  // ctr writes in XOR S_1, S_2, ... to out (in == out allowed) and S_0 to s0,
  // S_i = E(K, A_i), A_i = flags || nonce || i (RFC 3610 §2.3).
  bool ctr(ByteView nonce, const uint8_t* in, size_t len, uint8_t* out, uint8_t* s0) {
    alignas(16) uint8_t ks[kChunk];
    // A_0 with the counter bytes zero. The counter stays below 2^32 (at most
    // INT_MAX / 16 + 1 blocks), and L >= 2: it is written into the last
    // min(L, 4) bytes.
    uint8_t a0[kBlock] = {};
    a0[0] = static_cast<uint8_t>(len_field_ - 1);
    std::memcpy(a0 + 1, nonce.data(), info_.nonce_len);
    uint32_t counter = 0;
    size_t done = 0;
    bool first = true;
    while (first || done < len) {
      const size_t want = (first ? kBlock : 0) + (len - done + kBlock - 1) / kBlock * kBlock;
      const size_t n = std::min(want, kChunk);
      for (size_t off = 0; off < n; off += kBlock, ++counter) {
        uint8_t* a = ks + off;
        std::memcpy(a, a0, kBlock);
        a[15] = static_cast<uint8_t>(counter);
        a[14] = static_cast<uint8_t>(counter >> 8);
        if (len_field_ > 2) {
          a[13] = static_cast<uint8_t>(counter >> 16);
          a[12] = static_cast<uint8_t>(counter >> 24);
        }
      }
      int outl = 0;
      if (EVP_EncryptUpdate(ecb_.get(), ks, &outl, ks, static_cast<int>(n)) != 1 ||
          static_cast<size_t>(outl) != n) {
        return false;
      }
      size_t off = 0;
      if (first) {
        std::memcpy(s0, ks, kBlock);
        off = kBlock;
        first = false;
      }
      const size_t k = std::min(len - done, n - off);
      xor_into(out + done, in + done, ks + off, k);
      done += k;
    }
    return true;
  }

  // xor_into writes a XOR b to out, 8 bytes at a time (out == a allowed:
  // each word is read before it is written).
  static void xor_into(uint8_t* out, const uint8_t* a, const uint8_t* b, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t x, y;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      x ^= y;
      std::memcpy(out + i, &x, 8);
    }
    for (; i < n; ++i) out[i] = static_cast<uint8_t>(a[i] ^ b[i]);
  }

  // put_be writes the low `width` bytes of v big-endian (zeros above 64 bits).
  static void put_be(uint8_t* p, size_t width, uint64_t v) {
    for (size_t i = 0; i < width; ++i) {
      p[width - 1 - i] = i < 8 ? static_cast<uint8_t>(v >> (8 * i)) : 0;
    }
  }

  int alg_;
  AeadInfo info_;
  size_t len_field_;  // L
  CipherCtxPtr cbc_;
  CipherCtxPtr ecb_;
  uint8_t chain_[kBlock] = {};  // the CBC context's current IV
};

// new_block_ctx returns an encryption context for an AES mode without padding,
// keyed once (a zero IV for CBC).
CipherCtxPtr new_block_ctx(const EVP_CIPHER* cipher, ByteView key) {
  const uint8_t zero_iv[kBlock] = {};
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.data(), zero_iv) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return nullptr;
  }
  return ctx;
}

}  // namespace

Expected<std::unique_ptr<Aead>, Error> make_aead(const Fetched& f, int alg, ByteView key) {
  const auto info = aead_info(alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  if (key.size() != info->key_len) return unexpected(Error::kInvalidKey);
  namespace a = cp::alg;
  const EVP_CIPHER* cipher = nullptr;
  switch (alg) {
    case a::kA128GCM: cipher = f.aes128_gcm.get(); break;
    case a::kA192GCM: cipher = f.aes192_gcm.get(); break;
    case a::kA256GCM: cipher = f.aes256_gcm.get(); break;
    case a::kChaCha20Poly1305: cipher = f.chacha20_poly1305.get(); break;
    default: {
      // AES-CCM (10-13, 30-33)
      const bool k128 = info->key_len == 16;
      const EVP_CIPHER* cbc = k128 ? f.aes128_cbc.get() : f.aes256_cbc.get();
      const EVP_CIPHER* ecb = k128 ? f.aes128_ecb.get() : f.aes256_ecb.get();
      if (cbc == nullptr || ecb == nullptr) return unexpected(Error::kUnsupportedAlgorithm);
      CipherCtxPtr cbc_ctx = new_block_ctx(cbc, key);
      CipherCtxPtr ecb_ctx = new_block_ctx(ecb, key);
      if (!cbc_ctx || !ecb_ctx) return fail(Error::kInternal);
      return std::unique_ptr<Aead>(new CcmAead(alg, *info, std::move(cbc_ctx), std::move(ecb_ctx)));
    }
  }
  if (cipher == nullptr) return unexpected(Error::kUnsupportedAlgorithm);
  CipherCtxPtr seal_ctx = new_ctx(cipher, *info, key, 1);
  CipherCtxPtr open_ctx = new_ctx(cipher, *info, key, 0);
  if (!seal_ctx || !open_ctx) return fail(Error::kInternal);
  return std::unique_ptr<Aead>(new OsslAead(alg, *info, std::move(seal_ctx), std::move(open_ctx)));
}

}  // namespace acekdc::crypto::ossl
