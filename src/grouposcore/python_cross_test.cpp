// Cross-check against an independent implementation: testdata/group_oscore_ref.py,
// run with /usr/bin/python3 (python3-cryptography, python3-cbor2), written from the
// draft-ietf-core-oscore-groupcomm-23 text. It derives every key, builds one group
// request byte for byte (Ed25519 is deterministic), verifies a response we made and
// makes a request (and a tampered one with a valid signature) we verify.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "grouposcore/test_util.h"

namespace acekdc::grouposcore {
namespace {

using namespace test;

std::map<std::string, std::string> run_script(std::string cmd, const std::vector<std::string>& args) {
  for (const auto& a : args) cmd += " '" + a + "'";
  std::map<std::string, std::string> out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char line[8192];
  while (std::fgets(line, sizeof(line), f)) {
    std::istringstream is(line);
    std::string k, v;
    is >> k >> v;
    out[k] = v;
  }
  ::pclose(f);
  return out;
}

std::map<std::string, std::string> run_ref(const std::vector<std::string>& args) {
  return run_script("/usr/bin/python3 " ACEKDC_SOURCE_DIR "/src/grouposcore/testdata/group_oscore_ref.py", args);
}

class PythonCross : public ::testing::Test {
 protected:
  void SetUp() override { provider = crypto::make_openssl_provider(); }
  std::unique_ptr<crypto::Provider> provider;
  std::array<uint8_t, 1500> buf{}, out{};
};

// Our Uri-Path "temp" as the inner CoAP option bytes (option 11, length 4).
constexpr const char* kInnerOpts = "b474656d70";

TEST_F(PythonCross, KeyDerivation) {
  auto py = run_ref({"derive", kMs, kSalt, kGid, kSidA, kSidB});
  ASSERT_EQ(py.size(), 4u) << "/usr/bin/python3 with cryptography and cbor2 must be available";
  // The C++ side: a request from A verified by B exercises Sender Key A (at A),
  // Recipient Key A (at B), Common IV and SEKey; the byte-for-byte request below pins
  // them all to the Python values. Here: the values, for the record in the test log.
  EXPECT_EQ(py["key_A"].size(), 32u);
  EXPECT_EQ(py["iv"].size(), 26u);
  EXPECT_EQ(py["sekey"].size(), 32u);
  EXPECT_NE(py["key_A"], py["key_B"]);
}

TEST_F(PythonCross, RequestByteForByte) {
  for (uint64_t seq : {0ull, 20ull, 0x1234567ull}) {
    auto a = make_member(*provider, kSidA, kSeedA, material(), nullptr, seq);
    ASSERT_TRUE(a);
    GroupExchange ex;
    auto n = a->protect_request(group_get("temp", 0x1234, "7a"), buf, ex);
    ASSERT_TRUE(n);
    auto py = run_ref({"request", kMs, kSalt, kGid, kSidA, kSeedA, std::to_string(seq), "1", "4660", "7a", "01",
                       kInnerOpts, ""});
    ASSERT_TRUE(py.count("datagram"));
    EXPECT_EQ(to_hex(ByteView(buf.data(), *n)), py["datagram"]) << "seq " << seq;
  }
}

TEST_F(PythonCross, PythonVerifiesOurResponse) {
  auto a = make_member(*provider, kSidA, kSeedA, material(), nullptr, 5);
  auto b = make_member(*provider, kSidB, kSeedB, material(), nullptr, 9);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
  GroupExchange ex_a, ex_b;
  auto n = a->protect_request(group_get("temp"), buf, ex_a);
  ASSERT_TRUE(n);
  auto py_req = run_ref({"verify", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *n)), kSeedA});
  EXPECT_EQ(py_req["sender"], kSidA);
  EXPECT_EQ(py_req["code"], "01");
  EXPECT_EQ(py_req["plaintext"], kInnerOpts);
  ASSERT_TRUE(b->verify_request(ByteView(buf.data(), *n), out, ex_b));

  coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, 7);
  resp.token = hx("7a");
  resp.set_payload("hello");
  for (bool new_piv : {false, true}) {
    auto rn = b->protect_response(resp, ex_b, buf, new_piv);
    ASSERT_TRUE(rn);
    auto py = run_ref({"verify", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *rn)), kSeedB, kSidA,
                       to_hex(ex_a.request_piv())});
    EXPECT_EQ(py["sender"], kSidB) << "new_piv " << new_piv << " " << py["error"];
    EXPECT_EQ(py["code"], "45");
    EXPECT_EQ(py["plaintext"], "ff" + to_hex(as_bytes("hello")));
  }
  // A forged one is refused by Python too (the check is not vacuous).
  auto rn = b->protect_response(resp, ex_b, buf, true);
  ASSERT_TRUE(rn);
  buf[*rn - 1] ^= 1;
  auto py = run_ref({"verify", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *rn)), kSeedB, kSidA,
                     to_hex(ex_a.request_piv())});
  EXPECT_EQ(py["error"], "signature");
}

TEST_F(PythonCross, WeVerifyPythonRequests) {
  auto a = make_member(*provider, kSidA, kSeedA);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->add_member_key(public_cose_key(member_key(*provider, kSeedB), hx(kSidB))));
  auto py = run_ref({"request", kMs, kSalt, kGid, kSidB, kSeedB, "7", "1", "17", "0102", "02", kInnerOpts,
                     to_hex(as_bytes("from python"))});
  ASSERT_TRUE(py.count("datagram"));
  GroupExchange ex;
  auto rx = a->verify_request(hx(py["datagram"]), out, ex);
  ASSERT_TRUE(rx) << to_string(rx.error());
  EXPECT_EQ(to_hex(rx->sender_id()), kSidB);
  auto m = coap::Message::parse(ByteView(out.data(), rx->len));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->code, cp::coap::code::kPost);
  EXPECT_EQ(as_string(m->payload), "from python");
  EXPECT_EQ(m->uri_path(), "/temp");
  EXPECT_EQ(to_hex(ex.request_piv()), "07");

  // Ciphertext changed and signed again by B: the signature holds, the AEAD does not.
  auto tampered = run_ref({"request", kMs, kSalt, kGid, kSidB, kSeedB, "8", "1", "17", "0102", "02", kInnerOpts,
                           to_hex(as_bytes("from python")), "tamper"});
  ASSERT_TRUE(tampered.count("datagram"));
  auto bad = a->verify_request(hx(tampered["datagram"]), out, ex);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), Error::kDecryptionFailed);
  // Sequence number 8 was not used up by the failure.
  auto good8 = run_ref({"request", kMs, kSalt, kGid, kSidB, kSeedB, "8", "1", "17", "0102", "02", kInnerOpts, ""});
  EXPECT_TRUE(a->verify_request(hx(good8["datagram"]), out, ex));
}

TEST_F(PythonCross, PythonVerifiesOurEs256Messages) {
  InputMaterial m = material();
  m.sign_alg = cp::alg::kES256;
  auto ka = *provider->generate_keypair(cp::crv::kP256);
  auto kb = *provider->generate_keypair(cp::crv::kP256);
  GroupConfig ca, cb;
  ca.material = m;
  ca.sender_id = hx(kSidA);
  ca.own_key = ka;
  cb.material = m;
  cb.sender_id = hx(kSidB);
  cb.own_key = kb;
  auto a = GroupContext::create(*provider, ca);
  auto b = GroupContext::create(*provider, cb);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*b)->add_member_key(public_cose_key(ka, hx(kSidA))));
  GroupExchange ex_a, ex_b;
  auto n = (*a)->protect_request(group_get("temp"), buf, ex_a);
  ASSERT_TRUE(n);
  auto py = run_ref({"verify_es256", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *n)), to_hex(ka.x), to_hex(ka.y)});
  EXPECT_EQ(py["sender"], kSidA) << py["error"];
  EXPECT_EQ(py["plaintext"], kInnerOpts);
  ASSERT_TRUE((*b)->verify_request(ByteView(buf.data(), *n), out, ex_b));
  coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, 7);
  resp.set_payload("p256");
  auto rn = (*b)->protect_response(resp, ex_b, buf, true);
  ASSERT_TRUE(rn);
  py = run_ref({"verify_es256", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *rn)), to_hex(kb.x), to_hex(kb.y),
                kSidA, to_hex(ex_a.request_piv())});
  EXPECT_EQ(py["sender"], kSidB) << py["error"];
  EXPECT_EQ(py["plaintext"], "ff" + to_hex(as_bytes("p256")));
  // With the wrong public key Python refuses it.
  py = run_ref({"verify_es256", kMs, kSalt, kGid, to_hex(ByteView(buf.data(), *rn)), to_hex(ka.x), to_hex(ka.y),
                kSidA, to_hex(ex_a.request_piv())});
  EXPECT_EQ(py["error"], "signature");
}

// LOCAL ONLY: aiocoap's own Group OSCORE code (SimpleGroupContext) on the same inputs,
// when ACEKDC_AIOCOAP_DIR names an aiocoap source tree (python3-filelock needed);
// skipped otherwise (CI). See docs/group-oscore.md for the recorded result.
TEST_F(PythonCross, AiocoapInterop) {
  const char* dir = std::getenv("ACEKDC_AIOCOAP_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "set ACEKDC_AIOCOAP_DIR to an aiocoap source tree";
  const std::string script =
      "/usr/bin/python3 " ACEKDC_SOURCE_DIR "/src/grouposcore/testdata/aiocoap_compare.py " + std::string(dir);
  auto aio = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kMs, kSalt, kGid});
    return run_script(script, args);
  };
  // 1. aiocoap's request from A equals ours byte for byte.
  auto a = make_member(*provider, kSidA, kSeedA, material(), nullptr, 3);
  auto b = make_member(*provider, kSidB, kSeedB);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->add_member_key(public_cose_key(member_key(*provider, kSeedB), hx(kSidB))));
  ASSERT_TRUE(b->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
  auto py = aio({"request", kSidA, kSeedA, "3"});
  ASSERT_TRUE(py.count("datagram")) << "aiocoap did not run";
  GroupExchange ex_a;
  auto n = a->protect_request(group_get("temp", 0x1234, "7a"), buf, ex_a);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf.data(), *n)), py["datagram"]);

  // 2. aiocoap (as B) verifies our request (seq 4) and answers in group mode; we verify that.
  n = a->protect_request(group_get("temp", 0x1235, "7b"), buf, ex_a);
  ASSERT_TRUE(n);
  const Bytes request(buf.begin(), buf.begin() + *n);
  auto served = aio({"serve", kSidB, kSeedB, kSidA, kSeedA, to_hex(request), to_hex(as_bytes("from aiocoap"))});
  EXPECT_EQ(served["sender"], kSidA);
  EXPECT_EQ(served["path"], "/temp");
  ASSERT_TRUE(served.count("response"));
  auto rx = a->verify_response(hx(served["response"]), ex_a, out);
  ASSERT_TRUE(rx) << to_string(rx.error());
  EXPECT_EQ(to_hex(rx->sender_id()), kSidB);
  auto m = coap::Message::parse(ByteView(out.data(), rx->len));
  ASSERT_TRUE(m);
  EXPECT_EQ(as_string(m->payload), "from aiocoap");

  // 3. Our B answers our request (request nonce, then own Partial IV); aiocoap (as A) verifies.
  GroupExchange ex_b;
  ASSERT_TRUE(b->verify_request(request, out, ex_b));
  coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, 9);
  resp.token = hx("7b");
  resp.set_payload("from acekdc");
  for (bool new_piv : {false, true}) {
    auto rn = b->protect_response(resp, ex_b, buf, new_piv);
    ASSERT_TRUE(rn);
    auto v = aio({"verify_response", kSidA, kSeedA, kSidB, kSeedB, to_hex(ByteView(buf.data(), *rn)),
                  to_hex(ex_a.request_piv())});
    EXPECT_EQ(v["sender"], kSidB) << "new_piv " << new_piv;
    EXPECT_EQ(v["code"], "45");
    EXPECT_EQ(v["payload"], to_hex(as_bytes("from acekdc")));
  }
}

}  // namespace
}  // namespace acekdc::grouposcore
