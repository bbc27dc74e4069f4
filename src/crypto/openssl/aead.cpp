// AEAD through OpenSSL 3 EVP: AES-GCM, AES-CCM (all eight COSE variants) and
// ChaCha20/Poly1305. Each Aead owns two EVP_CIPHER_CTX, one for sealing and one
// for opening, each keyed once at creation; per message only the nonce is set
// (EVP_CipherInit_ex with a NULL cipher and key keeps the key schedule), so
// seal/open neither re-key nor allocate. Two contexts because OpenSSL's
// AES-NI CCM fixes its bulk (ccm64) function's direction when the key is set:
// a context keyed for encryption cannot decrypt whole blocks.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <climits>
#include <cstring>

#include "core/codepoints.h"
#include "crypto/openssl/internal.h"

namespace acekdc::crypto::ossl {
namespace {

enum class Mode : uint8_t { kGcm, kCcm, kChaCha };

// A non-null pointer for empty inputs: OpenSSL's CCM treats a NULL input as
// "final" and would skip the tag computation for an empty message.
const uint8_t kEmpty[1] = {0};
inline const uint8_t* nonnull(ByteView v) { return v.empty() ? kEmpty : v.data(); }

// bad_overlap reports an overlap between in and out other than exact in-place.
bool bad_overlap(const uint8_t* in, size_t in_len, const uint8_t* out, size_t out_len) {
  if (in == out || in_len == 0 || out_len == 0) return false;
  const auto a = reinterpret_cast<uintptr_t>(in);
  const auto b = reinterpret_cast<uintptr_t>(out);
  return a < b + out_len && b < a + in_len;
}

class OsslAead final : public Aead {
 public:
  OsslAead(int alg, AeadInfo info, Mode mode, CipherCtxPtr seal_ctx, CipherCtxPtr open_ctx)
      : alg_(alg), info_(info), mode_(mode), seal_ctx_(std::move(seal_ctx)),
        open_ctx_(std::move(open_ctx)) {}

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
    if (mode_ == Mode::kCcm && EVP_CipherUpdate(c, nullptr, &n, nullptr, pt_len) != 1) {
      return fail(Error::kInternal);
    }
    if (!aad.empty() &&
        EVP_CipherUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1) {
      return fail(Error::kInternal);
    }
    if ((mode_ == Mode::kCcm || pt_len > 0) &&
        EVP_CipherUpdate(c, out.data(), &n, nonnull(plaintext), pt_len) != 1) {
      return fail(Error::kInternal);
    }
    if (mode_ != Mode::kCcm && EVP_CipherFinal_ex(c, out.data() + pt_len, &n) != 1) {
      return fail(Error::kInternal);
    }
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
    // Never a NULL output: OpenSSL's CCM reads "out == NULL" as "this is AAD"
    // and would then skip the tag check of an empty message.
    uint8_t empty_out[1];
    uint8_t* const dst = ct_len > 0 ? out.data() : empty_out;
    EVP_CIPHER_CTX* c = open_ctx_.get();
    int n = 0;
    bool ok = EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, nonce.data(), 0) == 1;
    if (ok && mode_ == Mode::kCcm) {
      ok = EVP_CIPHER_CTX_set_params(c, tag_params(tag).data()) == 1 &&
           EVP_CipherUpdate(c, nullptr, &n, nullptr, len) == 1;
    }
    if (ok && !aad.empty()) {
      ok = EVP_CipherUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1;
    }
    if (ok && (mode_ == Mode::kCcm || len > 0)) {
      // For CCM this is where the tag is checked.
      ok = EVP_CipherUpdate(c, dst, &n, nonnull(ciphertext), len) == 1;
    }
    if (ok && mode_ != Mode::kCcm) {
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
    if (text_len > static_cast<size_t>(INT_MAX) - info_.tag_len || aad_len > INT_MAX) return false;
    // CCM with a 13-byte nonce has a 2-byte length field (L = 2).
    if (mode_ == Mode::kCcm && info_.nonce_len == 13 && text_len > 0xffff) return false;
    return true;
  }

  int alg_;
  AeadInfo info_;
  Mode mode_;
  CipherCtxPtr seal_ctx_;
  CipherCtxPtr open_ctx_;
};

// new_ctx returns a context for cipher keyed with key for one direction
// (enc = 1 seal, 0 open), with nonce and tag lengths fixed before the key as
// CCM requires.
CipherCtxPtr new_ctx(const EVP_CIPHER* cipher, Mode mode, const AeadInfo& info, ByteView key,
                     int enc) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(info.nonce_len),
                          nullptr) != 1) {
    return nullptr;
  }
  if (mode == Mode::kCcm && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG,
                                                static_cast<int>(info.tag_len), nullptr) != 1) {
    return nullptr;
  }
  if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), nullptr, enc) != 1) return nullptr;
  return ctx;
}

}  // namespace

Expected<std::unique_ptr<Aead>, Error> make_aead(const Fetched& f, int alg, ByteView key) {
  const auto info = aead_info(alg);
  if (!info) return unexpected(Error::kUnsupportedAlgorithm);
  if (key.size() != info->key_len) return unexpected(Error::kInvalidKey);
  namespace a = cp::alg;
  Mode mode;
  const EVP_CIPHER* cipher;
  switch (alg) {
    case a::kA128GCM: mode = Mode::kGcm; cipher = f.aes128_gcm.get(); break;
    case a::kA192GCM: mode = Mode::kGcm; cipher = f.aes192_gcm.get(); break;
    case a::kA256GCM: mode = Mode::kGcm; cipher = f.aes256_gcm.get(); break;
    case a::kChaCha20Poly1305: mode = Mode::kChaCha; cipher = f.chacha20_poly1305.get(); break;
    default:
      mode = Mode::kCcm;
      cipher = info->key_len == 16 ? f.aes128_ccm.get() : f.aes256_ccm.get();
      break;
  }
  if (cipher == nullptr) return unexpected(Error::kUnsupportedAlgorithm);
  CipherCtxPtr seal_ctx = new_ctx(cipher, mode, *info, key, 1);
  CipherCtxPtr open_ctx = new_ctx(cipher, mode, *info, key, 0);
  if (!seal_ctx || !open_ctx) return fail(Error::kInternal);
  return std::unique_ptr<Aead>(
      new OsslAead(alg, *info, mode, std::move(seal_ctx), std::move(open_ctx)));
}

}  // namespace acekdc::crypto::ossl
