// Interop with an independent implementation: tests/interop/cose_check.py (cbor2 +
// cryptography, building Sig_structure / Enc_structure itself) verifies a COSE_Sign1
// (EdDSA, ES256) and decrypts a COSE_Encrypt0 (AES-CCM-16-64-128) made by acekdc;
// and acekdc verifies / decrypts messages the script made.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/encrypt0.h"
#include "cose/sign1.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::cose {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kExitSkip = 77;

// run_checker runs the script and returns its exit status (-1 if it did not run).
int run_checker(const std::string& mode, const fs::path& file, std::string& output) {
  const std::string cmd = "/usr/bin/python3 '" + std::string(ACEKDC_SOURCE_DIR) +
                          "/tests/interop/cose_check.py' " + mode + " '" + file.string() +
                          "' 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return -1;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) output += buf;
  int status = pclose(f);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

fs::path temp_file(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("acekdc_cose_interop_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

Bytes h(const std::string& s) { return *from_hex(s); }

class CoseInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 not found";
    std::string out;
    int rc = run_checker("probe", "/dev/null", out);  // usage error (2) unless imports fail
    if (rc == kExitSkip) GTEST_SKIP() << "cbor2/cryptography not importable: " << out;
  }
  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
};

TEST_F(CoseInterop, PythonVerifiesOurSign1AndDecryptsOurEncrypt0) {
  const Bytes payload = h("a2 01 63 6b6463 19 0100 43 010203");  // some CBOR payload
  const Bytes aad = to_bytes(as_bytes("acekdc external aad"));
  json doc;
  doc["sign1"] = json::array();
  doc["encrypt0"] = json::array();

  struct SignCase {
    const char* name;
    int alg;
    int crv;
  };
  for (SignCase c : {SignCase{"acekdc EdDSA", cp::alg::kEdDSA, cp::crv::kEd25519},
                     SignCase{"acekdc ES256", cp::alg::kES256, cp::crv::kP256}}) {
    auto kp = p_->generate_keypair(c.crv);
    ASSERT_TRUE(kp);
    CoseKey key = CoseKey::from_keypair(*kp, as_bytes("kid-1"));
    Headers hd;
    hd.set_protected(cp::header::kAlg, cbor::Value::integer(c.alg));
    hd.set_unprotected(cp::header::kKid, cbor::Value::bytes(as_bytes("kid-1")));
    auto msg = sign1_create(*p_, key, hd, payload, aad);
    ASSERT_TRUE(msg) << to_string(msg.error());
    doc["sign1"].push_back({{"name", c.name},
                            {"alg", c.alg},
                            {"msg", to_hex(*msg)},
                            {"x", to_hex(kp->x)},
                            {"y", to_hex(kp->y)},
                            {"kid", to_hex(as_bytes("kid-1"))},
                            {"aad", to_hex(aad)},
                            {"payload", to_hex(payload)}});
  }
  const Bytes k = p_->random().bytes(16);
  CoseKey sym = CoseKey::symmetric(k);
  Headers he;
  he.set_protected(cp::header::kAlg, cbor::Value::integer(cp::alg::kAES_CCM_16_64_128));
  he.set_unprotected(cp::header::kIV, cbor::Value::bytes(p_->random().bytes(13)));
  auto enc = encrypt0_create(*p_, sym, he, payload, aad);
  ASSERT_TRUE(enc) << to_string(enc.error());
  doc["encrypt0"].push_back({{"name", "acekdc AES-CCM-16-64-128"},
                             {"msg", to_hex(*enc)},
                             {"k", to_hex(k)},
                             {"aad", to_hex(aad)},
                             {"plaintext", to_hex(payload)}});

  fs::path in = temp_file("from_acekdc.json");
  std::ofstream(in) << doc.dump(1);
  std::string out;
  int rc = run_checker("verify", in, out);
  std::cout << out;
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ok: acekdc EdDSA verifies"), std::string::npos);
  EXPECT_NE(out.find("ok: acekdc ES256 verifies"), std::string::npos);
  EXPECT_NE(out.find("ok: acekdc AES-CCM-16-64-128 decrypts"), std::string::npos);

  // The checker must notice a broken signature.
  doc["sign1"][0]["payload"] = to_hex(h("00"));
  std::ofstream(in) << doc.dump(1);
  out.clear();
  EXPECT_EQ(run_checker("verify", in, out), 1) << out;
  fs::remove_all(in.parent_path());
}

TEST_F(CoseInterop, WeVerifyPythonMessages) {
  fs::path file = temp_file("from_python.json");
  std::string out;
  ASSERT_EQ(run_checker("make", file, out), 0) << out;
  std::ifstream in(file);
  json doc = json::parse(in);
  int checked = 0;
  for (const auto& m : doc["sign1"]) {
    CoseKey key;
    const int alg = m["alg"].get<int>();
    key.kty = alg == cp::alg::kEdDSA ? cp::kty::kOKP : cp::kty::kEC2;
    key.crv = alg == cp::alg::kEdDSA ? cp::crv::kEd25519 : cp::crv::kP256;
    key.x = h(m["x"]);
    if (m.contains("y")) key.y = h(m["y"]);
    auto v = sign1_verify(*p_, key, h(m["msg"]), h(m["aad"]));
    ASSERT_TRUE(v) << m["name"] << ": " << to_string(v.error());
    EXPECT_EQ(to_hex(v->payload), m["payload"].get<std::string>());
    auto bad = sign1_verify(*p_, key, h(m["msg"]), as_bytes("other aad"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), Error::kBadSignature);
    ++checked;
  }
  for (const auto& m : doc["encrypt0"]) {
    CoseKey key = CoseKey::symmetric(h(m["k"]));
    auto v = encrypt0_decrypt(*p_, key, h(m["msg"]), h(m["aad"]));
    ASSERT_TRUE(v) << to_string(v.error());
    EXPECT_EQ(to_hex(v->payload), m["plaintext"].get<std::string>());
    ++checked;
  }
  EXPECT_EQ(checked, 3);
  fs::remove_all(file.parent_path());
}

}  // namespace
}  // namespace acekdc::cose
