// Shared fixtures of the grouposcore tests: a fixed group and fixed Ed25519 members.
#pragma once

#include <memory>
#include <string>

#include "coap/message.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "grouposcore/group_context.h"

namespace acekdc::grouposcore::test {

inline Bytes hx(std::string_view s) { return *from_hex(s); }

inline constexpr const char* kMs = "0102030405060708090a0b0c0d0e0f10";
inline constexpr const char* kSalt = "9e7ca92223786340";
inline constexpr const char* kGid = "37cbf3210017a2d3";

inline InputMaterial material(std::string_view gid = kGid, std::string_view ms = kMs) {
  InputMaterial m;
  m.master_secret = hx(ms);
  m.master_salt = hx(kSalt);
  m.group_id = hx(gid);
  m.aead_alg = cp::alg::kAES_CCM_16_64_128;
  m.hkdf_alg = cp::alg::kHMAC256_256;
  m.sign_alg = cp::alg::kEdDSA;
  return m;
}

// member_key: an Ed25519 key pair from a fixed 32-byte seed (hex).
inline crypto::KeyPair member_key(crypto::Provider& p, std::string_view seed_hex) {
  crypto::KeyPair k;
  k.crv = cp::crv::kEd25519;
  k.d = hx(seed_hex);
  (void)p.complete_public(k);
  return k;
}

inline cose::CoseKey public_cose_key(const crypto::KeyPair& k, ByteView kid) {
  return cose::CoseKey::from_keypair(k, kid, std::nullopt, false);
}

inline constexpr const char* kSeedA = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
inline constexpr const char* kSeedB = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
inline constexpr const char* kSeedC = "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7";
inline constexpr const char* kSidA = "0a";
inline constexpr const char* kSidB = "0b";
inline constexpr const char* kSidC = "0c";

inline std::unique_ptr<GroupContext> make_member(crypto::Provider& p, std::string_view sid, std::string_view seed,
                                                 InputMaterial m = material(), oscore::SequenceStore* store = nullptr,
                                                 uint64_t initial_seq = 0, size_t max_recipients = 32) {
  GroupConfig cfg;
  cfg.material = std::move(m);
  cfg.sender_id = hx(sid);
  cfg.own_key = member_key(p, seed);
  cfg.store = store;
  cfg.initial_seq = initial_seq;
  cfg.max_recipients = max_recipients;
  auto c = GroupContext::create(p, std::move(cfg));
  if (!c) return nullptr;
  return std::move(*c);
}

inline coap::Message group_get(std::string_view path, uint16_t mid = 0x1234, std::string_view token = "7a") {
  coap::Message m(coap::Type::kNon, cp::coap::code::kGet, mid);
  m.token = hx(token);
  m.set_uri_path(path);
  return m;
}

}  // namespace acekdc::grouposcore::test
