// Interop with an independent implementation: tests/interop/ace_check.py (cbor2 +
// cryptography) decrypts an access token our AS issued (COSE_Encrypt0,
// AES-CCM-16-64-128 under the shared key, Enc_structure built in Python) and checks
// its claims, and recomputes the RFC 9203 §4.3 / RFC 8613 §3.2.1 derivation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "ace/oscore_profile.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::ace {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kExitSkip = 77;
constexpr int64_t kNow = 1700000000;

int run_checker(const std::string& mode, const fs::path& file, std::string& output) {
  const std::string cmd = "/usr/bin/python3 '" + std::string(ACEKDC_SOURCE_DIR) +
                          "/tests/interop/ace_check.py' " + mode + " '" + file.string() + "' 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return -1;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) output += buf;
  int status = pclose(f);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

fs::path write_temp(const std::string& name, const json& doc) {
  fs::path dir = fs::temp_directory_path() / ("acekdc_ace_interop_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p) << doc.dump();
  return p;
}

Bytes h(const char* s) { return *from_hex(s); }

class AceInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 not found";
    std::string out;
    if (run_checker("probe", "/dev/null", out) == kExitSkip) GTEST_SKIP() << "cbor2/cryptography missing: " << out;
  }
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
};

TEST_F(AceInterop, PythonDecryptsOurTokenAndSeesTheClaims) {
  const Bytes key = h("a1a2a3a4a5a6a7a8a9aaabacadaeaf10");
  AsPolicy pol;
  pol.issuer = "as.interop";
  ClientPolicy c;
  c.id = "client";
  c.groups = {{"feedca570000", kRoleRequester | kRoleResponder}};
  c.max_lifetime = 1800;
  pol.clients = {c};
  AudiencePolicy a;
  a.name = "kdc.interop";
  a.shared_key = cose::CoseKey::symmetric(key, {}, cp::alg::kAES_CCM_16_64_128);
  a.context_id_len = 4;
  pol.audiences = {a};
  FakeRandom rnd(99);
  AuthorizationServer as(*p_, rnd, pol);
  TokenRequest r;
  r.audience = "kdc.interop";
  Bytes scope = encode_scope(Scope{{{"feedca570000", kRoleRequester | kRoleResponder}}});
  r.scope = ScopeParam{false, scope};
  AsResponse resp = as.handle_token("client", r.encode(), kNow);
  ASSERT_EQ(resp.code, cp::coap::code::kCreated);
  auto t = TokenResponse::decode(resp.payload);
  ASSERT_TRUE(t && t->cnf && t->cnf->osc);
  const OscoreInputMaterial& osc = *t->cnf->osc;

  std::string out;
  int rc = run_checker("token", write_temp("token.json", {{"key", to_hex(key)}, {"token", to_hex(t->access_token)}}),
                       out);
  ASSERT_EQ(rc, 0) << out;
  json claims = json::parse(out);
  EXPECT_EQ(claims["1"], "as.interop");
  EXPECT_EQ(claims["3"], "kdc.interop");
  EXPECT_EQ(claims["4"], kNow + 1800);
  EXPECT_EQ(claims["6"], kNow);
  EXPECT_EQ(claims["7"]["hex"].get<std::string>().size(), 16u);
  EXPECT_EQ(claims["9"]["hex"], to_hex(scope));
  EXPECT_EQ(claims["38"], cp::ace::kProfileCoapOscore);
  const json& m = claims["8"][std::to_string(cp::cnf::kOscoreInputMaterial)];
  EXPECT_EQ(m[std::to_string(cp::osc::kId)]["hex"], to_hex(*osc.id));
  EXPECT_EQ(m[std::to_string(cp::osc::kMs)]["hex"], to_hex(*osc.ms));
  EXPECT_EQ(m[std::to_string(cp::osc::kSalt)]["hex"], to_hex(*osc.salt));
  EXPECT_EQ(m[std::to_string(cp::osc::kContextId)]["hex"], to_hex(*osc.context_id));
  EXPECT_EQ(m.size(), 4u);
}

TEST_F(AceInterop, PythonRecomputesTheRfc9203Derivation) {
  struct Case {
    const char* ms;
    const char* salt;  // nullptr: absent
    const char* n1;
    const char* n2;
    const char* id1;
    const char* id2;
    const char* ctx;  // nullptr: absent
  };
  const Case cases[] = {
      // RFC 9203 example nonces, salt and IDs.
      {"f9af838368e353e78888e1426bd94e6f", "f9af838368e353e78888e1426bd94e6f", "018a278f7faab55a",
       "25a8991cd700ac01", "1645", "0000", nullptr},
      {"0102030405060708090a0b0c0d0e0f10", nullptr, "aa", "bbccddeeff00112233", "", "01", "37cbf3210017a2d3"},
      {"00112233445566778899aabbccddeeff00112233", "01", "0102030405060708", "1112131415161718", "01020304050607",
       "00", "ff"},
  };
  for (const auto& c : cases) {
    OscoreInputMaterial m;
    m.id = h("01");
    m.ms = h(c.ms);
    if (c.salt) m.salt = h(c.salt);
    if (c.ctx) m.context_id = h(c.ctx);
    auto params = derive_context_params(m, h(c.n1), h(c.n2), h(c.id1), h(c.id2), Side::kClient);
    ASSERT_TRUE(params);
    auto keys = oscore::derive_keys(*p_, *params);
    ASSERT_TRUE(keys);
    json doc = {{"ms", c.ms}, {"n1", c.n1}, {"n2", c.n2}, {"id1", c.id1}, {"id2", c.id2}};
    if (c.salt) doc["salt"] = c.salt;
    if (c.ctx) doc["context_id"] = c.ctx;
    std::string out;
    ASSERT_EQ(run_checker("derive", write_temp("derive.json", doc), out), 0) << out;
    json py = json::parse(out);
    EXPECT_EQ(py["master_salt"], to_hex(params->master_salt)) << c.n1;
    EXPECT_EQ(py["sender_key"], to_hex(keys->sender())) << c.n1;
    EXPECT_EQ(py["recipient_key"], to_hex(keys->recipient())) << c.n1;
    EXPECT_EQ(py["common_iv"], to_hex(keys->iv())) << c.n1;
  }
}

}  // namespace
}  // namespace acekdc::ace
