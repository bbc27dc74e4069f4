// Helpers shared by the COSE / CWT tests: reading the cose-wg Examples JSON files
// (tests/vectors/cose) into acekdc types. Test-only (uses nlohmann/json).
#pragma once

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cbor/value.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/key.h"

namespace acekdc::cose::testing {

using ojson = nlohmann::ordered_json;

inline std::string vectors_dir() { return std::string(ACEKDC_VECTORS_DIR) + "/cose"; }

inline std::optional<ojson> load_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = ojson::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

inline Bytes hex(const std::string& s) {
  auto b = from_hex(s);
  return b ? *b : Bytes{};
}

// b64url decodes unpadded base64url (JWK fields).
inline std::optional<Bytes> b64url(const std::string& s) {
  Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-' || c == '+') v = 62;
    else if (c == '_' || c == '/') v = 63;
    else if (c == '=') break;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

// alg_by_name maps the Examples' algorithm names to COSE ids (nullopt: not one we know).
inline std::optional<int> alg_by_name(const std::string& n) {
  static const std::map<std::string, int> m = {
      {"ES256", cp::alg::kES256},
      {"EdDSA", cp::alg::kEdDSA},
      {"A128GCM", cp::alg::kA128GCM},
      {"A192GCM", cp::alg::kA192GCM},
      {"A256GCM", cp::alg::kA256GCM},
      {"HS256/64", cp::alg::kHMAC256_64},
      {"HS256", cp::alg::kHMAC256_256},
      {"HS384", cp::alg::kHMAC384_384},
      {"HS512", cp::alg::kHMAC512_512},
      {"AES-CCM-16-128/64", cp::alg::kAES_CCM_16_64_128},
      {"AES-CCM-16-256/64", cp::alg::kAES_CCM_16_64_256},
      {"AES-CCM-64-128/64", cp::alg::kAES_CCM_64_64_128},
      {"AES-CCM-64-256/64", cp::alg::kAES_CCM_64_64_256},
      {"AES-CCM-16-128/128", cp::alg::kAES_CCM_16_128_128},
      {"AES-CCM-16-256/128", cp::alg::kAES_CCM_16_128_256},
      {"AES-CCM-64-128/128", cp::alg::kAES_CCM_64_128_128},
      {"AES-CCM-64-256/128", cp::alg::kAES_CCM_64_128_256},
      {"ChaCha20/Poly1305", cp::alg::kChaCha20Poly1305},
      {"ChaCha-Poly1305", cp::alg::kChaCha20Poly1305},
      {"direct", cp::alg::kDirect},
      {"HKDF-HMAC-SHA-256", cp::alg::kDirectHKDF_SHA256},
      {"HKDF-HMAC-SHA-512", cp::alg::kDirectHKDF_SHA512},
  };
  auto it = m.find(n);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

inline std::optional<int> crv_by_name(const std::string& n) {
  if (n == "P-256") return cp::crv::kP256;
  if (n == "P-384") return cp::crv::kP384;
  if (n == "P-521") return cp::crv::kP521;
  if (n == "Ed25519") return cp::crv::kEd25519;
  if (n == "X25519") return cp::crv::kX25519;
  if (n == "Ed448") return cp::crv::kEd448;
  if (n == "X448") return cp::crv::kX448;
  return std::nullopt;
}

// key_field reads JWK field `name` given as base64url ("x") or hex ("x_hex").
inline std::optional<Bytes> key_field(const ojson& k, const std::string& name) {
  if (k.contains(name + "_hex")) return hex(k[name + "_hex"].get<std::string>());
  if (k.contains(name)) return b64url(k[name].get<std::string>());
  return std::nullopt;
}

// key_from_json converts an Examples key (JWK-like) into a CoseKey. nullopt when the
// kty / crv is not one COSE_Key supports here.
inline std::optional<CoseKey> key_from_json(const ojson& k) {
  CoseKey key;
  std::string kty = k.value("kty", "");
  if (k.contains("kid")) {
    std::string kid = k["kid"].get<std::string>();
    key.kid = Bytes(kid.begin(), kid.end());
  }
  if (kty == "oct") {
    key.kty = cp::kty::kSymmetric;
    auto kk = key_field(k, "k");
    if (!kk) return std::nullopt;
    key.k = *kk;
    return key;
  }
  if (kty != "EC" && kty != "OKP") return std::nullopt;
  key.kty = kty == "EC" ? cp::kty::kEC2 : cp::kty::kOKP;
  auto crv = crv_by_name(k.value("crv", ""));
  if (!crv) return std::nullopt;
  key.crv = *crv;
  if (auto x = key_field(k, "x")) key.x = *x;
  if (auto y = key_field(k, "y")) key.y = *y;
  if (auto d = key_field(k, "d")) key.d = *d;
  return key;
}

inline bool header_item(const std::string& name, const ojson& v, int64_t& label,
                        cbor::Value& value);

// header_from_json converts one Examples header item into a COSE label and value.
// Returns false for an item we do not know.
inline bool header_from_json(const std::string& name, const ojson& v, cbor::Value& label_out,
                             cbor::Value& value) {
  int64_t label = 0;
  // RFC 9052 C.1.4: a private text-labelled parameter and crit naming it.
  if (name == "reserved") {
    label_out = cbor::Value::text("reserved");
    value = v.is_boolean() ? cbor::Value::boolean(v.get<bool>()) : cbor::Value::text(v.dump());
    return true;
  }
  if (name == "crit") {
    label_out = cbor::Value::integer(cp::header::kCrit);
    value = cbor::Value::array();
    for (const auto& e : v) {
      if (e.is_number_integer()) value.push(cbor::Value::integer(e.get<int64_t>()));
      else value.push(cbor::Value::text(e.get<std::string>()));
    }
    return true;
  }
  bool ok = header_item(name, v, label, value);
  label_out = cbor::Value::integer(label);
  return ok;
}

inline bool header_item(const std::string& name, const ojson& v, int64_t& label,
                        cbor::Value& value) {
  if (name == "alg") {
    label = cp::header::kAlg;
    if (v.is_number_integer()) {
      value = cbor::Value::integer(v.get<int64_t>());
      return true;
    }
    auto a = alg_by_name(v.get<std::string>());
    value = a ? cbor::Value::integer(*a) : cbor::Value::text(v.get<std::string>());
    return true;
  }
  if (name == "kid") {
    label = cp::header::kKid;
    value = cbor::Value::bytes(as_bytes(v.get<std::string>()));
    return true;
  }
  if (name == "kid_hex") {
    label = cp::header::kKid;
    value = cbor::Value::bytes(hex(v.get<std::string>()));
    return true;
  }
  if (name == "ctyp") {
    label = cp::header::kContentType;
    value = v.is_number_integer() ? cbor::Value::integer(v.get<int64_t>())
                                  : cbor::Value::text(v.get<std::string>());
    return true;
  }
  if (name == "IV_hex") {
    label = cp::header::kIV;
    value = cbor::Value::bytes(hex(v.get<std::string>()));
    return true;
  }
  if (name == "partialIV_hex") {
    label = cp::header::kPartialIV;
    value = cbor::Value::bytes(hex(v.get<std::string>()));
    return true;
  }
  static const std::map<std::string, int64_t> party = {
      {"apu_id", cp::header::kPartyUIdentity}, {"apu_nonce", cp::header::kPartyUNonce},
      {"apu_other", cp::header::kPartyUOther}, {"apv_id", cp::header::kPartyVIdentity},
      {"apv_nonce", cp::header::kPartyVNonce}, {"apv_other", cp::header::kPartyVOther}};
  for (const auto& [n, l] : party) {
    if (name == n) {
      label = l;
      value = cbor::Value::bytes(as_bytes(v.get<std::string>()));
      return true;
    }
    if (name == n + "_hex") {
      label = l;
      value = cbor::Value::bytes(hex(v.get<std::string>()));
      return true;
    }
  }
  if (name == "salt") {
    label = cp::header::kSalt;
    value = cbor::Value::bytes(as_bytes(v.get<std::string>()));
    return true;
  }
  return false;
}

// map_from_json builds a header map from an Examples header object: in the JSON
// order, or sorted by encoded label (the generator writes unprotected maps so).
inline std::optional<cbor::Value> map_from_json(const ojson& obj, bool sorted = true) {
  cbor::Value m = cbor::Value::map();
  if (!obj.is_object()) return m;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    cbor::Value label;
    cbor::Value v;
    if (!header_from_json(it.key(), it.value(), label, v)) return std::nullopt;
    m.set(std::move(label), std::move(v));
  }
  if (sorted) std::sort(m.as_map()->begin(), m.as_map()->end(), [](const auto& a, const auto& b) {
    return cbor::encode(a.first) < cbor::encode(b.first);
  });
  return m;
}

inline Bytes plaintext_of(const ojson& input) {
  if (input.contains("plaintext_hex")) return hex(input["plaintext_hex"].get<std::string>());
  std::string p = input.value("plaintext", "");
  return Bytes(p.begin(), p.end());
}

}  // namespace acekdc::cose::testing
