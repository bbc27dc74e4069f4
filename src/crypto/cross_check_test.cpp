// Independent cross-check: signatures and ciphertexts made by our provider are
// verified/decrypted by python3-cryptography (a different implementation
// binding), and python-made ones are checked by us. Tampered inputs are sent
// too, to show the checker can say "fail". Skipped only when /usr/bin/python3
// cannot import cryptography.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "crypto/provider.h"

namespace acekdc::crypto {
namespace {

std::string hx(ByteView b) { return b.empty() ? "-" : to_hex(b); }

// run_python feeds `input` to the cross-check script and returns its output lines.
std::vector<std::string> run_python(const std::string& input) {
  char in_path[] = "/tmp/acekdc_xcheck_XXXXXX";
  const int fd = mkstemp(in_path);
  EXPECT_GE(fd, 0);
  if (fd < 0) return {};
  EXPECT_EQ(write(fd, input.data(), input.size()), static_cast<ssize_t>(input.size()));
  close(fd);
  const std::string cmd = std::string("/usr/bin/python3 ") + ACEKDC_SOURCE_DIR +
                          "/src/crypto/testdata/cross_check.py < " + in_path;
  FILE* p = popen(cmd.c_str(), "r");
  std::vector<std::string> lines;
  if (p != nullptr) {
    char buf[4096];
    while (fgets(buf, sizeof buf, p) != nullptr) {
      std::string s(buf);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      lines.push_back(s);
    }
    EXPECT_EQ(pclose(p), 0);
  }
  unlink(in_path);
  return lines;
}

class CrossCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "/usr/bin/python3 cannot import cryptography";
    }
  }
  std::unique_ptr<Provider> p_ = make_openssl_provider();
};

TEST_F(CrossCheck, PythonVerifiesAndDecryptsOurs) {
  std::ostringstream in;
  std::vector<std::string> want;
  Random& rng = p_->random();

  // Ed25519 and ES256 signatures, good and tampered.
  for (auto [alg, crv] : {std::pair{cp::alg::kEdDSA, cp::crv::kEd25519},
                          std::pair{cp::alg::kES256, cp::crv::kP256}}) {
    const KeyPair key = *p_->generate_keypair(crv);
    auto signer = *p_->make_signer(alg, key);
    for (size_t len : {0, 1, 77}) {
      const Bytes msg = rng.bytes(len);
      Bytes sig(64);
      ASSERT_TRUE(signer->sign(msg, sig).has_value());
      for (bool tamper : {false, true}) {
        Bytes s = sig;
        if (tamper) s[len % 64] ^= 0x10;
        if (alg == cp::alg::kEdDSA) {
          in << "ed25519 " << hx(key.x) << " " << hx(msg) << " " << hx(s) << "\n";
        } else {
          in << "es256 " << hx(key.x) << " " << hx(key.y) << " " << hx(msg) << " " << hx(s) << "\n";
        }
        want.push_back(tamper ? "fail" : "ok");
      }
    }
  }
  // AES-CCM-16-64-128 and ChaCha20-Poly1305 ciphertexts, good and tampered.
  for (auto [alg, kind] : {std::pair{cp::alg::kAES_CCM_16_64_128, "ccm8"},
                           std::pair{cp::alg::kChaCha20Poly1305, "chacha"}}) {
    const AeadInfo info = *aead_info(alg);
    const Bytes key = rng.bytes(info.key_len);
    auto aead = *p_->make_aead(alg, key);
    for (size_t len : {0, 5, 16, 100}) {
      const Bytes nonce = rng.bytes(info.nonce_len), aad = rng.bytes(len % 13), pt = rng.bytes(len);
      Bytes ct(len + info.tag_len);
      ASSERT_TRUE(aead->seal(nonce, aad, pt, ct).has_value());
      for (bool tamper : {false, true}) {
        Bytes c = ct;
        if (tamper) c.back() ^= 1;
        in << kind << " " << hx(key) << " " << hx(nonce) << " " << hx(aad) << " " << hx(c) << " "
           << hx(pt) << "\n";
        want.push_back(tamper ? "fail" : "ok");
      }
    }
  }
  const auto got = run_python(in.str());
  EXPECT_EQ(got, want);
}

TEST_F(CrossCheck, WeOpenAndVerifyPythons) {
  Random& rng = p_->random();
  std::ostringstream in;
  struct Job {
    int alg;
    Bytes key, nonce, aad, pt;
  };
  std::vector<Job> jobs;
  for (auto [alg, kind] : {std::pair{cp::alg::kAES_CCM_16_64_128, "ccm8"},
                           std::pair{cp::alg::kChaCha20Poly1305, "chacha"}}) {
    const AeadInfo info = *aead_info(alg);
    for (size_t len : {0, 31, 64}) {
      Job j{alg, rng.bytes(info.key_len), rng.bytes(info.nonce_len), rng.bytes(len % 7), rng.bytes(len)};
      in << "make " << kind << " " << hx(j.key) << " " << hx(j.nonce) << " " << hx(j.aad) << " "
         << hx(j.pt) << "\n";
      jobs.push_back(j);
    }
  }
  KeyPair ed;
  ed.crv = cp::crv::kEd25519;
  ed.d = rng.bytes(32);
  ASSERT_TRUE(p_->complete_public(ed).has_value());
  const Bytes msg = rng.bytes(40);
  in << "make-ed25519 " << hx(ed.d) << " " << hx(msg) << "\n";

  const auto got = run_python(in.str());
  ASSERT_EQ(got.size(), jobs.size() + 1);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& j = jobs[i];
    auto aead = *p_->make_aead(j.alg, j.key);
    const Bytes ct = from_hex(got[i]).value_or(Bytes{});
    Bytes pt(j.pt.size());
    ASSERT_EQ(aead->open(j.nonce, j.aad, ct, pt).value_or(99999), j.pt.size()) << got[i];
    EXPECT_EQ(pt, j.pt);
  }
  const Bytes sig = from_hex(got.back()).value_or(Bytes{});
  KeyPair pub = ed;
  pub.d.clear();
  EXPECT_TRUE((*p_->make_verifier(cp::alg::kEdDSA, pub))->verify(msg, sig).has_value());
  // Ed25519 is deterministic: our signature is byte-equal to python's.
  Bytes ours(64);
  ASSERT_TRUE((*p_->make_signer(cp::alg::kEdDSA, ed))->sign(msg, ours).has_value());
  EXPECT_EQ(ours, sig);
}

}  // namespace
}  // namespace acekdc::crypto
