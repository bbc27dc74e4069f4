// updateCtx (key-limits draft §3.2, Figure 4) checked against an independent
// implementation: /usr/bin/python3 with python3-cryptography's HKDFExpand / HKDF
// and python3-cbor2 builds HkdfLabel, the new Master Secret and the RFC 8613
// derivation of CTX_OUT on its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/derivation.h"
#include "oscore/update.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

const char* kPython = R"PY(
import sys, cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

secret, salt, sid, rid, ctx, n, label, alg = sys.argv[1:9]
secret, salt, sid, rid, n = (bytes.fromhex(x) for x in (secret, salt, sid, rid, n))
ctx = None if ctx == "none" else bytes.fromhex(ctx)
alg = int(alg)
key_len, iv_len = {10: (16, 13), 1: (16, 12), 3: (32, 12), 30: (16, 13)}[alg]

full = b"oscore " + label.encode()
hkdf_label = len(secret).to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(n)]) + n
new_secret = HKDFExpand(hashes.SHA256(), len(secret), hkdf_label).derive(secret)
new_salt = n

def derive(id_, type_, length):
    info = cbor2.dumps([id_, ctx, alg, type_, length])
    return HKDF(hashes.SHA256(), length, new_salt, info).derive(new_secret)

print("label", hkdf_label.hex())
print("secret", new_secret.hex())
print("sender", derive(sid, "Key", key_len).hex())
print("recipient", derive(rid, "Key", key_len).hex())
print("iv", derive(b"", "IV", iv_len).hex())
)PY";

std::map<std::string, std::string> run_python(const std::vector<std::string>& args) {
  auto script = std::filesystem::temp_directory_path() /
                ("oscore_update_" + std::to_string(::getpid()) + ".py");
  std::ofstream(script) << kPython;
  std::string cmd = "/usr/bin/python3 " + script.string();
  for (const auto& a : args) cmd += " '" + a + "'";
  std::map<std::string, std::string> out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char line[1024];
  while (std::fgets(line, sizeof(line), f)) {
    std::istringstream is(line);
    std::string k, v;
    is >> k >> v;
    out[k] = v;
  }
  ::pclose(f);
  std::filesystem::remove(script);
  return out;
}

struct Case {
  const char* secret;
  const char* salt;
  const char* sid;
  const char* rid;
  const char* ctx;  // "none" = absent
  const char* n;
  int alg;
};

class UpdateCtx : public ::testing::TestWithParam<Case> {};

TEST_P(UpdateCtx, MatchesIndependentPython) {
  const Case& c = GetParam();
  auto py = run_python({c.secret, c.salt, c.sid, c.rid, c.ctx, c.n, cp::oscore::kKeyUpdateLabel,
                        std::to_string(c.alg)});
  ASSERT_EQ(py.size(), 5u) << "python3 with cryptography and cbor2 must be available";

  auto provider = crypto::make_openssl_provider();
  ContextParams in;
  in.aead_alg = c.alg;
  in.master_secret = *from_hex(c.secret);
  in.master_salt = *from_hex(c.salt);
  in.sender_id = *from_hex(c.sid);
  in.recipient_id = *from_hex(c.rid);
  if (std::string(c.ctx) != "none") in.id_context = *from_hex(c.ctx);
  const Bytes n = *from_hex(c.n);

  uint8_t label[600];
  auto len = build_hkdf_label(static_cast<uint16_t>(in.master_secret.size()), cp::oscore::kKeyUpdateLabel, n,
                              label);
  ASSERT_TRUE(len);
  EXPECT_EQ(to_hex(ByteView(label, *len)), py["label"]);

  auto out = update_params(*provider, in, n);
  ASSERT_TRUE(out) << to_string(out.error());
  EXPECT_EQ(to_hex(out->master_secret), py["secret"]);
  EXPECT_EQ(to_hex(out->master_salt), c.n);
  // Everything else is kept: IDs, ID Context, algorithms.
  EXPECT_EQ(out->sender_id, in.sender_id);
  EXPECT_EQ(out->recipient_id, in.recipient_id);
  EXPECT_EQ(out->id_context, in.id_context);
  EXPECT_EQ(out->aead_alg, in.aead_alg);

  auto keys = derive_keys(*provider, *out);
  ASSERT_TRUE(keys);
  EXPECT_EQ(to_hex(keys->sender()), py["sender"]);
  EXPECT_EQ(to_hex(keys->recipient()), py["recipient"]);
  EXPECT_EQ(to_hex(keys->iv()), py["iv"]);
}

INSTANTIATE_TEST_SUITE_P(
    Figure4, UpdateCtx,
    ::testing::Values(
        // RFC 8613 C.1 context, R1|R2 = two 8-byte values
        Case{"0102030405060708090a0b0c0d0e0f10", "9e7ca92223786340", "", "01", "none",
             "a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8", 10},
        // RFC 8613 C.3 context with ID Context, R1 only (CTX_1)
        Case{"0102030405060708090a0b0c0d0e0f10", "9e7ca92223786340", "", "01", "37cbf3210017a2d3",
             "0011223344556677", 10},
        // 32-byte Master Secret and A256GCM (Master Secret Length = 32)
        Case{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "", "aa", "bbcc",
             "", "ff", 3}));

TEST(UpdateCtx, RejectsBadInput) {
  auto provider = crypto::make_openssl_provider();
  ContextParams in;
  in.master_secret = Bytes(16, 1);
  in.recipient_id = {1};
  EXPECT_EQ(update_params(*provider, in, {}).error(), Error::kInvalidArgument);
  EXPECT_EQ(update_params(*provider, in, Bytes(256, 0)).error(), Error::kInvalidArgument);
  in.hkdf_alg = 42;
  EXPECT_EQ(update_params(*provider, in, Bytes(8, 0)).error(), Error::kUnsupportedAlgorithm);
  uint8_t buf[8];
  EXPECT_EQ(build_hkdf_label(16, "x", {}, buf).error(), Error::kBufferTooSmall);
  EXPECT_EQ(build_hkdf_label(16, std::string(249, 'a'), {}, buf).error(), Error::kInvalidArgument);
}

TEST(UpdateCtx, DifferentNoncesGiveDifferentContexts) {
  auto provider = crypto::make_openssl_provider();
  ContextParams in;
  in.master_secret = Bytes(16, 1);
  in.recipient_id = {1};
  auto a = update_params(*provider, in, Bytes(8, 1));
  auto b = update_params(*provider, in, Bytes(8, 2));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->master_secret, b->master_secret);
  EXPECT_NE(a->master_secret, in.master_secret);
}

}  // namespace
