// Interop with an independent OSCORE peer: tests/interop/oscore_peer.py
// (cbor2 + cryptography, written from RFC 8613 and the key-limits draft alone)
// decrypts requests acekdc protected, for several AEADs, ID Contexts, the 'd'
// extension and large Partial IVs, and answers with responses acekdc verifies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/context.h"

using namespace acekdc;
using namespace acekdc::oscore;
using nlohmann::json;

namespace {

struct Case {
  int alg;
  const char* secret;
  const char* salt;
  const char* client_id;
  const char* server_id;
  std::optional<const char*> id_context;
  bool send_kid_context;
  uint64_t seq;
  std::optional<const char*> id_detail;
  bool observe;
};

const Case kCases[] = {
    {10, "0102030405060708090a0b0c0d0e0f10", "9e7ca92223786340", "", "01", std::nullopt, false, 20, std::nullopt, false},
    {10, "0102030405060708090a0b0c0d0e0f10", "", "00", "01", "37cbf3210017a2d3", true, 0xffffffffffULL, std::nullopt, false},
    {1, "000102030405060708090a0b0c0d0e0f", "aa", "0102", "03", std::nullopt, false, 300, "a1a2a3a4a5a6a7a8", false},
    {3, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "", "c1", "", "00", true, 70000,
     "a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8", true},
    {24, "00112233445566778899aabbccddeeff", "0011", "05", "06", "ffff", false, 1, std::nullopt, false},
    {30, "00112233445566778899aabbccddeeff", "", "010203040506", "", std::nullopt, false, 5, "00", false},
};

TEST(OscoreInterop, IndependentPythonPeer) {
  auto provider = crypto::make_openssl_provider();
  const auto dir = std::filesystem::temp_directory_path() / ("oscore_interop_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  json in = json::array();
  std::vector<std::unique_ptr<Context>> clients;
  std::vector<Exchange> exchanges(std::size(kCases));
  std::vector<Bytes> expected_plain;
  for (size_t i = 0; i < std::size(kCases); ++i) {
    const Case& c = kCases[i];
    ContextConfig cfg;
    cfg.params.aead_alg = c.alg;
    cfg.params.master_secret = *from_hex(c.secret);
    cfg.params.master_salt = *from_hex(c.salt);
    cfg.params.sender_id = *from_hex(c.client_id);
    cfg.params.recipient_id = *from_hex(c.server_id);
    if (c.id_context) cfg.params.id_context = *from_hex(*c.id_context);
    cfg.send_kid_context = c.send_kid_context;
    cfg.initial_seq = c.seq;
    auto ctx = Context::create(*provider, std::move(cfg));
    ASSERT_TRUE(ctx) << i << ": " << to_string(ctx.error());

    coap::Message req(coap::Type::kCon, cp::coap::code::kGet, static_cast<uint16_t>(0x100 + i));
    req.token = {0x42, static_cast<uint8_t>(i)};
    req.add_string(cp::coap::option::kUriHost, "example.org");
    req.set_uri_path("/a/b");
    req.add_uri_query("x=1");
    if (c.observe) req.add_uint(cp::coap::option::kObserve, 0);
    req.payload = Bytes(static_cast<size_t>(10 + 7 * i), static_cast<uint8_t>(i));
    // What the plaintext must be: code, the Class E options, payload (§5.3).
    coap::Message inner = req;
    inner.remove(cp::coap::option::kUriHost);
    expected_plain.push_back(*inner.encode_inner());

    uint8_t out[512];
    ProtectOptions po;
    Bytes detail;
    if (c.id_detail) {
      detail = *from_hex(*c.id_detail);
      po.id_detail = ByteView(detail);
    }
    auto n = (*ctx)->protect_request(req, out, exchanges[i], po);
    ASSERT_TRUE(n) << i;
    in.push_back({{"alg", c.alg},
                  {"secret", c.secret},
                  {"salt", c.salt},
                  {"client_id", c.client_id},
                  {"server_id", c.server_id},
                  {"id_context", c.id_context ? json(*c.id_context) : json(nullptr)},
                  {"request", to_hex(ByteView(out, *n))},
                  {"response_payload", to_hex(as_bytes("answer " + std::to_string(i)))}});
    clients.push_back(std::move(*ctx));
  }
  const auto in_path = dir / "in.json", out_path = dir / "out.json";
  std::ofstream(in_path) << in.dump();
  const std::string cmd = "/usr/bin/python3 " + std::string(ACEKDC_SOURCE_DIR) + "/tests/interop/oscore_peer.py " +
                          in_path.string() + " " + out_path.string();
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) GTEST_SKIP() << "python3 cbor2/cryptography missing";
  std::ifstream result_file(out_path);
  json out = json::parse(result_file, nullptr, false);
  ASSERT_TRUE(out.is_array()) << "peer output unreadable, rc=" << rc;
  ASSERT_EQ(out.size(), std::size(kCases));

  for (size_t i = 0; i < std::size(kCases); ++i) {
    const Case& c = kCases[i];
    const json& r = out[i];
    ASSERT_FALSE(r.contains("error")) << i << ": " << r["error"];
    EXPECT_EQ(r["plaintext"], to_hex(expected_plain[i])) << i;
    std::array<uint8_t, 5> piv;
    EXPECT_EQ(r["piv"], to_hex(ByteView(piv.data(), encode_piv(c.seq, piv)))) << i;
    EXPECT_EQ(r["id_detail"], c.id_detail ? json(*c.id_detail) : json(nullptr)) << i;
    EXPECT_EQ(r["kid_context"], c.send_kid_context ? json(*c.id_context) : json(nullptr)) << i;
    EXPECT_EQ(r["outer_code"], c.observe ? cp::coap::code::kFetch : cp::coap::code::kPost) << i;
    // Outer options: Uri-Host, (Observe), OSCORE only.
    std::vector<int> numbers;
    for (const auto& o : r["outer_options"]) numbers.push_back(o[0].get<int>());
    std::vector<int> want = {3};
    if (c.observe) want.push_back(6);
    want.push_back(9);
    EXPECT_EQ(numbers, want) << i;

    // The peer's response verifies with our client.
    auto wire = from_hex(r["response"].get<std::string>());
    ASSERT_TRUE(wire);
    uint8_t dec[512];
    auto d = clients[i]->unprotect_response(*wire, exchanges[i], dec);
    ASSERT_TRUE(d) << i << ": " << to_string(d.error());
    auto m = coap::Message::parse(ByteView(dec, *d));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->code, cp::coap::code::kContent);
    EXPECT_EQ(as_string(m->payload), "answer " + std::to_string(i));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
