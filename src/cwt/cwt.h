// CBOR Web Token (RFC 8392) with the ACE claims (RFC 8747 cnf, RFC 9200 scope,
// exi, ace_profile): claims sets, and signed (COSE_Sign1), MACed (COSE_Mac0) and
// encrypted (COSE_Encrypt0) tokens, nested ones (RFC 8392 §7.1 step 8, A.6)
// included.
//
// Time is always injected (`now`, unix seconds); this layer never reads a clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cbor/value.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "cose/key.h"
#include "cose/message.h"
#include "crypto/provider.h"

namespace acekdc::cwt {

// Error: why a token was not accepted / could not be made. Each cause has its own
// value so that an RS can answer precisely (and tests can tell them apart).
enum class Error : uint8_t {
  kMalformed = 1,         // not a CWT: not CBOR, not a COSE message, wrong shape
  kUnexpectedTag,         // a tag that is neither 61 nor the COSE tags 16/17/18
  kUnsupportedAlgorithm,  // alg unknown or not usable for the token type
  kBadHeader,             // missing, malformed, duplicated or unknown-critical COSE header
  kNoKey,                 // no key in the set fits the token (kty/alg/kid)
  kWrongKey,              // the key given for creation cannot do what is asked
  kBadSignature,          // COSE_Sign1 signature did not verify
  kBadMac,                // COSE_Mac0 tag did not verify
  kDecryptFailed,         // COSE_Encrypt0 did not decrypt
  kInvalidClaims,         // claims set not a map, duplicate key, registered claim of wrong type
  kExpired,               // now >= exp + leeway
  kNotYetValid,           // now + leeway < nbf
  kAudienceMismatch,      // aud absent or different from the expected audience
  kMissingClaim,          // a claim required by the options is absent (exp)
  kNestingTooDeep,        // more nested COSE layers than VerifyOptions::max_nesting
  kTooLarge,              // input above a configured limit
  kCrypto,                // crypto provider failure
};
const char* to_string(Error e);
// from_cose maps a COSE error to the CWT error it means.
Error from_cose(cose::Error e);

// NumericDate (RFC 8392 §2): seconds since the epoch, an integer or (A.7) a float.
class NumericDate {
 public:
  NumericDate() = default;
  NumericDate(int64_t secs) : int_(secs) {}  // NOLINT: implicit on purpose (exp = now + 3600)
  static NumericDate from_float(double secs) {
    NumericDate d;
    d.is_float_ = true;
    d.float_ = secs;
    return d;
  }
  bool is_float() const { return is_float_; }
  // seconds: the integer value, or the float rounded down.
  int64_t seconds() const;
  double as_double() const { return is_float_ ? float_ : static_cast<double>(int_); }
  friend bool operator==(const NumericDate& a, const NumericDate& b) {
    return a.is_float_ == b.is_float_ && (a.is_float_ ? a.float_ == b.float_ : a.int_ == b.int_);
  }

 private:
  int64_t int_ = 0;
  double float_ = 0;
  bool is_float_ = false;
};

// Claims: a CWT claims set. Registered claims have typed fields; any other claim
// (integer or text label) is kept in `other` as received.
struct Claims {
  std::optional<std::string> iss;      // 1, tstr
  std::optional<std::string> sub;      // 2, tstr
  std::optional<std::string> aud;      // 3, tstr
  std::optional<NumericDate> exp;      // 4
  std::optional<NumericDate> nbf;      // 5
  std::optional<NumericDate> iat;      // 6
  std::optional<Bytes> cti;            // 7, bstr
  std::optional<cbor::Value> cnf;      // 8, map (RFC 8747)
  std::optional<cbor::Value> scope;    // 9, tstr or bstr (RFC 9200)
  std::optional<int64_t> ace_profile;  // 38, int (RFC 9200)
  std::optional<uint64_t> exi;         // 40, uint (RFC 9200)
  cbor::MapEntries other;

  // to_value builds the claims map: registered claims in ascending label order,
  // then `other` in its order.
  cbor::Value to_value() const;
  Bytes encode() const;
  // from_value / decode check the type of every registered claim (kInvalidClaims).
  static Expected<Claims, Error> from_value(const cbor::Value& v);
  static Expected<Claims, Error> decode(ByteView cbor);

  // cnf helpers (RFC 8747 §3.1, §3.4).
  // set_cnf_key sets cnf = {COSE_Key: key} (public part unless include_private).
  void set_cnf_key(const cose::CoseKey& key, bool include_private = false);
  void set_cnf_kid(ByteView kid);
  // cnf_key returns the COSE_Key of cnf; kMissingClaim without one, kInvalidClaims
  // if it does not parse.
  Expected<cose::CoseKey, Error> cnf_key() const;
  // cnf_kid returns the kid of cnf (empty view when absent).
  ByteView cnf_kid() const;
};

// CreateOptions: how a token is wrapped.
struct CreateOptions {
  std::optional<int> alg;  // COSE alg; default: key.alg, or EdDSA / ES256 from the curve
  bool cwt_tag = false;    // wrap in CBOR tag 61
  bool cose_tag = true;    // wrap in the COSE tag
  bool include_kid = true; // put the key's kid (if any) in the unprotected bucket
  ByteView external_aad;
};

// create_signed / create_maced / create_encrypted build a token over `claims`.
// Errors: kWrongKey (key does not fit alg, no private key), kUnsupportedAlgorithm.
// create_encrypted draws a fresh IV from provider.random().
Expected<Bytes, Error> create_signed(crypto::Provider& provider, const Claims& claims,
                                     const cose::CoseKey& key, const CreateOptions& opts = {});
Expected<Bytes, Error> create_maced(crypto::Provider& provider, const Claims& claims,
                                    const cose::CoseKey& key, const CreateOptions& opts = {});
Expected<Bytes, Error> create_encrypted(crypto::Provider& provider, const Claims& claims,
                                        const cose::CoseKey& key, const CreateOptions& opts = {});
// encrypt_token wraps an already-made token (signed or MACed, tagged) in
// COSE_Encrypt0: a nested CWT (RFC 8392 A.6).
Expected<Bytes, Error> encrypt_token(crypto::Provider& provider, ByteView inner_token,
                                     const cose::CoseKey& key, const CreateOptions& opts = {});

// VerifyOptions: what verify() checks.
struct VerifyOptions {
  int64_t now = 0;                      // unix seconds (injected)
  int64_t leeway = 0;                   // seconds of clock skew allowed on exp / nbf
  bool check_time = true;               // check exp / nbf against now
  bool require_exp = false;             // kMissingClaim when exp is absent
  std::optional<std::string> audience;  // if set, aud must be present and equal
  bool require_cwt_tag = false;         // the token must start with tag 61
  size_t max_nesting = 2;               // COSE layers, counting the outer one
  ByteView external_aad;                // given to every layer
  cose::DecodeOptions cose;             // limits for each COSE layer
};

// TokenInfo: what verify() learned besides the claims.
struct TokenInfo {
  std::vector<cose::MessageType> layers;  // outermost first
  std::vector<Bytes> kids;                // kid header of each layer (empty if none)
};

// verify unwraps tag 61, then for each COSE layer: identifies its type (by tag, or
// when untagged by shape and alg), picks keys from `keys` that fit (by kid header
// when present, and by kty/alg), verifies or decrypts; a payload that is itself a
// tagged CWT / COSE message (or has content type application/cwt) is a nested
// layer. Then decodes the claims and checks exp / nbf / aud per `opts`.
Expected<Claims, Error> verify(crypto::Provider& provider, ByteView token,
                               const cose::KeySet& keys, const VerifyOptions& opts,
                               TokenInfo* info = nullptr);
Expected<Claims, Error> verify(crypto::Provider& provider, ByteView token,
                               const cose::CoseKey& key, const VerifyOptions& opts,
                               TokenInfo* info = nullptr);

// check_claims applies the time and audience checks of verify() to decoded claims.
Expected<void, Error> check_claims(const Claims& claims, const VerifyOptions& opts);

// ClaimsView: the claims set of the shape this project's AS writes, decoded in one
// pass without copies: a definite map of registered claims with integer labels
// (iss, sub, aud, exp, nbf, iat, cti, cnf, scope, ace_profile, exi), dates as
// integers, no other claim. The views point into the bytes it was decoded from
// (valid while they are; for a verified token, the caller's plaintext buffer).
struct ClaimsView {
  std::optional<std::string_view> iss;
  std::optional<std::string_view> sub;
  std::optional<std::string_view> aud;
  std::optional<int64_t> exp;
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  std::optional<ByteView> cti;
  // cnf: the encoded cnf map, checked as Claims::decode checks it (a non-empty map
  // without duplicate keys at any level, kid a byte string, OSCORE_Input_Material a
  // map; a COSE_Key or an encrypted COSE_Key is not in this shape).
  std::optional<ByteView> cnf;
  std::optional<ByteView> scope;  // the byte string, or the text's bytes
  bool scope_is_text = false;
  std::optional<int64_t> ace_profile;
  std::optional<uint64_t> exi;

  // decode returns the view of `in` when it has this shape, nullopt otherwise (then
  // Claims::decode decides). Whatever it accepts, Claims::decode accepts with the
  // same values (the fuzz target fuzz_cwt checks it).
  static std::optional<ClaimsView> decode(ByteView in);
  // to_claims: the Claims that Claims::decode gives for the same bytes.
  Claims to_claims() const;
};

// verify_view: verify() for the token shape the AS writes: [tag 61] [tag 16]
// COSE_Encrypt0 with only alg protected and kid / IV unprotected, its claims a
// ClaimsView. It decrypts into `plain` and returns the view (pointing into
// `plain`) when the token verifies, its claims have that shape and pass the checks
// of `opts`; `plain_len` is then the plaintext's length: the caller wipes those
// bytes when done. nullopt otherwise, for any reason (another shape, a failure,
// `plain` smaller than the plaintext, opts.external_aad above 64 bytes), with
// nothing left in `plain` (plain_len 0): verify() then gives the answer. Key
// selection and checks are verify()'s.
std::optional<ClaimsView> verify_view(crypto::Provider& provider, ByteView token, const cose::KeySet& keys,
                                      const VerifyOptions& opts, MutableByteView plain, size_t& plain_len);

}  // namespace acekdc::cwt
