// COSE_Key and COSE_KeySet (RFC 9052 §7, RFC 9053 §7): OKP, EC2 and Symmetric keys.
//
// Parsing is strict: the map must hold each label once, every known parameter
// must have its registered type, the kty-specific required parameters must be
// present and coordinate / scalar lengths must match the curve. Compressed EC2
// points (y given as a bool) are rejected with kInvalidKey.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "cbor/value.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"
#include "crypto/provider.h"

namespace acekdc::cose {

struct CoseKey {
  int kty = 0;                  // cp::kty::*
  Bytes kid;                    // empty when absent
  std::optional<int> alg;       // cp::alg::* when the key is restricted to one algorithm
  std::vector<int> key_ops;     // integer key_ops values (RFC 9052 Table 5); empty = absent
  Bytes base_iv;                // Base IV (label 5); empty when absent
  int crv = 0;                  // OKP / EC2
  Bytes x, y;                   // public coordinates (y only for EC2)
  Bytes d;                      // private scalar / seed (secret; empty for a public key)
  Bytes k;                      // Symmetric key value (secret)
  cbor::MapEntries other;       // any further parameters, kept as received

  CoseKey() = default;
  CoseKey(const CoseKey&) = default;
  CoseKey& operator=(const CoseKey&) = default;
  CoseKey(CoseKey&&) = default;
  CoseKey& operator=(CoseKey&&) = default;
  ~CoseKey() {
    secure_zero(d);
    secure_zero(k);
  }

  // symmetric makes a Symmetric key (kty 4) holding `key`.
  static CoseKey symmetric(ByteView key, ByteView kid = {}, std::optional<int> alg = std::nullopt);
  // from_keypair makes an OKP key (Ed25519 / X25519) or an EC2 key (P-256) from `kp`,
  // kty chosen by kp.crv. The private part is copied only if include_private.
  static CoseKey from_keypair(const crypto::KeyPair& kp, ByteView kid = {},
                              std::optional<int> alg = std::nullopt, bool include_private = true);

  // from_value parses a COSE_Key map. Fails with kInvalidKey on anything not valid.
  static Expected<CoseKey, Error> from_value(const cbor::Value& v);
  // decode parses the CBOR encoding of a COSE_Key (exactly one item).
  static Expected<CoseKey, Error> decode(ByteView cbor);

  // to_value builds the COSE_Key map (labels in ascending deterministic order; d and k
  // are left out unless include_private).
  cbor::Value to_value(bool include_private = true) const;
  Bytes encode(bool include_private = true) const;

  bool is_symmetric() const { return kty == 4; }
  bool has_private() const { return !d.empty(); }
  // public_key returns a copy without d (and without k for a symmetric key).
  CoseKey public_key() const;

  // to_keypair converts an OKP or EC2 key into the provider's form; kWrongKey for a
  // symmetric key.
  Expected<crypto::KeyPair, Error> to_keypair() const;
  // to_public_keypair: the same without d (for verifiers: no copy of the secret).
  Expected<crypto::KeyPair, Error> to_public_keypair() const;
};

// validate_key checks an already-built key with the same rules as from_value.
Expected<void, Error> validate_key(const CoseKey& key);

// AeadCache: keyed AEAD objects for symmetric keys, made on first use and reused
// (one key schedule per key instead of one per message). Entries are matched by
// provider, algorithm and key bytes, so a changed key never finds a stale object.
// A copy starts empty. Not thread-safe, like the objects it holds.
class AeadCache {
 public:
  AeadCache() = default;
  AeadCache(const AeadCache&) {}
  AeadCache& operator=(const AeadCache&) {
    entries_.clear();
    return *this;
  }
  AeadCache(AeadCache&&) = default;
  AeadCache& operator=(AeadCache&&) = default;
  // get returns the AEAD for (alg, key) from `provider`, making it when absent;
  // nullptr when the provider refuses (unsupported alg, wrong key length). The
  // object lives until the cache is destroyed, cleared or assigned (at most
  // kMaxEntries are kept; the oldest is dropped beyond).
  crypto::Aead* get(crypto::Provider& provider, int alg, ByteView key);
  void clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }
  static constexpr size_t kMaxEntries = 8;

 private:
  struct Entry {
    crypto::Provider* provider = nullptr;
    int alg = 0;
    Bytes key;  // secret: zeroed on destruction
    std::unique_ptr<crypto::Aead> aead;
    Entry() = default;
    Entry(Entry&&) = default;
    Entry& operator=(Entry&&) = default;
    ~Entry() { secure_zero(key); }
  };
  std::vector<Entry> entries_;
};

// KeySet: a COSE_KeySet (array of COSE_Key).
struct KeySet {
  std::vector<CoseKey> keys;
  // aead_cache: keyed AEAD objects for `keys`, used by CWT verification (cwt::verify)
  // so that a KDC does not set up the AS key per token. Because of it, one KeySet
  // must not be used by two threads at once (copies have their own cache).
  mutable AeadCache aead_cache;

  // from_value parses an array of keys. If skip_invalid is false, one invalid key fails
  // the whole set; if true, keys that do not parse are left out.
  static Expected<KeySet, Error> from_value(const cbor::Value& v, bool skip_invalid = false);
  static Expected<KeySet, Error> decode(ByteView cbor, bool skip_invalid = false);
  cbor::Value to_value(bool include_private = true) const;
  Bytes encode(bool include_private = true) const;

  // find_kid returns the first key whose kid equals `kid`, or nullptr.
  const CoseKey* find_kid(ByteView kid) const;
};

}  // namespace acekdc::cose
