#include "acekdc/oscore_ctx_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"

namespace acekdc::app {
namespace {

namespace fs = std::filesystem;

// The interop test specification's contexts A (client) and B (server) (RFC 8613 C.1 values).
const char* const kToml_A = R"(
name = "A"
master_secret = "0102030405060708090a0b0c0d0e0f10"
master_salt = "9e7ca92223786340"
sender_id = ""
recipient_id = "01"
aead_alg = "AES-CCM-16-64-128"
hkdf_alg = "HKDF-SHA-256"
replay_window = 30
state = "a.state"
)";

const char* const kJson_B = R"({
  "master_secret": "0102030405060708090a0b0c0d0e0f10",
  "master_salt": "9e7ca92223786340",
  "sender_id": "01",
  "recipient_id": "",
  "aead_alg": 10,
  "hkdf_alg": -10
})";

const char* const kSecretHex = "0102030405060708090a0b0c0d0e0f10";

Expected<OscoreCtxFile, CtxFileFailure> toml(const std::string& s) {
  return parse_ctx(s, CtxFormat::kToml, "/base", "t.toml");
}
Expected<OscoreCtxFile, CtxFileFailure> json(const std::string& s) {
  return parse_ctx(s, CtxFormat::kJson, "/base", "t.json");
}

// expect_error checks the code and that the message leaks no secret.
void expect_error(const Expected<OscoreCtxFile, CtxFileFailure>& r, CtxFileError code, const char* needle) {
  ASSERT_FALSE(r) << "parsed although it should not";
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("0102030405"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("deadbeef"), std::string::npos) << r.error().message;
}

TEST(OscoreCtxFile, TomlContextA) {
  auto r = toml(kToml_A);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "A");
  EXPECT_EQ(to_hex(r->params.master_secret), kSecretHex);
  EXPECT_EQ(to_hex(r->params.master_salt), "9e7ca92223786340");
  EXPECT_TRUE(r->params.sender_id.empty());
  EXPECT_EQ(to_hex(r->params.recipient_id), "01");
  EXPECT_FALSE(r->params.id_context.has_value());
  EXPECT_EQ(r->params.aead_alg, 10);
  EXPECT_EQ(r->params.hkdf_alg, -10);
  EXPECT_EQ(r->replay_window, 30u);
  EXPECT_FALSE(r->send_kid_context);
  EXPECT_EQ(r->state_dir, "/base/a.state");
  EXPECT_FALSE(r->limits.has_value());
}

TEST(OscoreCtxFile, JsonContextWithIdContext) {
  auto r = parse_ctx(R"({"master_secret": "0102030405060708090a0b0c0d0e0f10", "sender_id": "", "recipient_id": "01",
                        "id_context": "37cbf3210017a2d3", "aead_alg": "A128GCM", "hkdf_alg": "HKDF SHA-512",
                        "state": "/abs/c"})",
                     CtxFormat::kAuto, "/base", "c.json");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->params.id_context.has_value());
  EXPECT_EQ(to_hex(*r->params.id_context), "37cbf3210017a2d3");
  EXPECT_TRUE(r->send_kid_context);  // default with an ID Context
  EXPECT_EQ(r->params.aead_alg, cp::alg::kA128GCM);
  EXPECT_EQ(r->params.hkdf_alg, cp::alg::kDirectHKDF_SHA512);
  EXPECT_EQ(r->state_dir, "/abs/c");
  EXPECT_TRUE(r->params.master_salt.empty());
}

TEST(OscoreCtxFile, LimitsAndKeyUpdate) {
  std::string s = std::string(kToml_A) +
                  "exp = 1893456000\nseq_chunk = 10\n[limits]\nq = 1000\nv = 100\nl = 256\n"
                  "[key_update]\nr_len = 16\nauto_threshold = 0.5\nauto_threshold_v = false\nretention = 2.5\n";
  auto r = toml(s);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->limits);
  EXPECT_EQ(r->limits->q, 1000u);
  EXPECT_EQ(r->limits->v, 100u);
  EXPECT_EQ(r->limits->l, 256u);
  EXPECT_EQ(r->exp, 1893456000);
  EXPECT_EQ(r->seq_chunk, 10u);
  EXPECT_EQ(r->key_update.r_len, 16u);
  EXPECT_EQ(r->key_update.auto_threshold, 0.5);
  EXPECT_FALSE(r->key_update.auto_threshold_v.has_value());
  EXPECT_EQ(r->key_update.retention, std::chrono::milliseconds(2500));
  auto cfg = r->context_config(nullptr, nullptr);
  EXPECT_EQ(cfg.seq_chunk, 10u);
  EXPECT_EQ(cfg.limits, r->limits);
}

TEST(OscoreCtxFile, StrictErrors) {
  expect_error(toml(std::string(kToml_A) + "colour = \"blue\"\n"), CtxFileError::kUnknownKey, "colour");
  expect_error(toml(std::string(kToml_A) + "[limits]\nq = 1\nv = 1\nl = 1\nz = 1\n"), CtxFileError::kUnknownKey,
               "limits");
  expect_error(toml("master_secret = 5\nsender_id = \"\"\nrecipient_id = \"01\"\n"), CtxFileError::kWrongType,
               "master_secret");
  expect_error(toml("master_secret = \"deadbeefzz\"\nsender_id = \"\"\nrecipient_id = \"01\"\n"),
               CtxFileError::kBadValue, "hex");
  expect_error(toml("master_secret = \"deadbee\"\nsender_id = \"\"\nrecipient_id = \"01\"\n"),
               CtxFileError::kBadValue, "hex");
  expect_error(toml("master_secret = \"\"\nsender_id = \"\"\nrecipient_id = \"01\"\n"), CtxFileError::kBadValue,
               "empty");
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"\"\n"), CtxFileError::kMissingKey, "recipient_id");
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"01\"\nrecipient_id = \"01\"\n"),
               CtxFileError::kBadValue, "differ");
  expect_error(toml(std::string(kToml_A) + "[limits]\nq = 1048576\nv = 1048576\nl = 256\n"),
               CtxFileError::kBadValue, "2^-54");
  expect_error(toml(std::string(kToml_A) + "[limits]\nq = 1000\n"), CtxFileError::kMissingKey, "q, v and l");
  expect_error(toml(std::string(kToml_A) + "[key_update]\nauto_threshold = 1.5\n"), CtxFileError::kBadValue,
               "auto_threshold");
  expect_error(toml(std::string(kToml_A) + "replay_window = 0\n"), CtxFileError::kSyntax, "line");  // duplicate
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"\"\nrecipient_id = \"01\"\nreplay_window = 5000\n"),
               CtxFileError::kBadValue, "replay_window");
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"\"\nrecipient_id = \"01\"\naead_alg = \"ES256\"\n"),
               CtxFileError::kBadValue, "aead_alg");
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"\"\nrecipient_id = \"01\"\nhkdf_alg = \"MD5\"\n"),
               CtxFileError::kBadValue, "hkdf_alg");
  expect_error(toml("master_secret = \"deadbeef\"\nsender_id = \"\"\nrecipient_id = \"01\"\nsend_kid_context = true\n"),
               CtxFileError::kBadValue, "id_context");
  expect_error(json(R"({"master_secret": "deadbeef", "sender_id": "", "recipient_id": "01", "sender_id": "02"})"),
               CtxFileError::kUnknownKey, "duplicate");
  expect_error(json(R"({"master_secret": "deadbeef", "sender_id": "", "recipient_id": 1})"), CtxFileError::kWrongType,
               "recipient_id");
  expect_error(json(R"(["master_secret"])"), CtxFileError::kSyntax, "object");
}

TEST(OscoreCtxFile, SyntaxErrorsDoNotQuoteSecrets) {
  // an unterminated string holding the secret: the message gives the position only
  expect_error(toml("master_secret = \"0102030405060708090a0b0c0d0e0f10\nsender_id = \"\"\n"), CtxFileError::kSyntax,
               "line 1");
  expect_error(json("{\"master_secret\": \"0102030405060708090a0b0c0d0e0f10"), CtxFileError::kSyntax, "byte");
  expect_error(json("{\"master_secret\": \"deadbeef\" \"x\"}"), CtxFileError::kSyntax, "JSON");
  expect_error(toml("master_secret = \"deadbeef\xc3\xa9\"\n"), CtxFileError::kSyntax, "non-ASCII");
}

TEST(OscoreCtxFile, ContextList) {
  const char* two = R"(
[[context]]
master_secret = "0102030405060708090a0b0c0d0e0f10"
sender_id = "01"
recipient_id = ""
state = "b"
[[context]]
master_secret = "0102030405060708090a0b0c0d0e0f10"
sender_id = "01"
recipient_id = ""
id_context = "37cbf3210017a2d3"
state = "d"
)";
  auto r = parse_ctx_list(two, CtxFormat::kToml, "/srv", "s.toml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].state_dir, "/srv/b");
  EXPECT_TRUE((*r)[1].params.id_context.has_value());

  std::string same = std::string(two);
  same.replace(same.find("id_context = \"37cbf3210017a2d3\"\n"), 31, "");
  auto d = parse_ctx_list(same, CtxFormat::kToml, "/srv", "s.toml");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("context 2"), std::string::npos) << d.error().message;

  auto e = parse_ctx_list("x = 1\n", CtxFormat::kToml, "/srv", "s.toml");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, CtxFileError::kMissingKey);
  auto j = parse_ctx_list(R"({"context": [{"master_secret": "01", "sender_id": "", "recipient_id": "01"}]})",
                          CtxFormat::kAuto, "/srv", "s.json");
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->size(), 1u);
}

TEST(OscoreCtxFile, HkdfNames) {
  EXPECT_EQ(hkdf_from_name("HKDF-SHA-256"), -10);
  EXPECT_EQ(hkdf_from_name("hkdf sha-256"), -10);
  EXPECT_EQ(hkdf_from_name("direct+HKDF-SHA-256"), -10);
  EXPECT_EQ(hkdf_from_name("-10"), -10);
  EXPECT_EQ(hkdf_from_name("5"), 5);
  EXPECT_EQ(hkdf_from_name("HKDF-SHA-512"), -11);
  EXPECT_EQ(hkdf_from_name("-11"), -11);
  EXPECT_EQ(hkdf_from_name("7"), 7);
  EXPECT_FALSE(hkdf_from_name("10").has_value());
  EXPECT_FALSE(hkdf_from_name("SHA-1").has_value());
  auto r = toml("master_secret = \"01\"\nsender_id = \"\"\nrecipient_id = \"01\"\nhkdf_alg = 10\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CtxFileError::kBadValue);
}

// A context from file A and one from file B talk to each other, and the state
// directory keeps the client's sequence numbers across a restart.
TEST(OscoreCtxFile, ContextsFromFilesInteroperateAndPersist) {
  fs::path dir = fs::temp_directory_path() / ("ctxfile_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream(dir / "a.toml") << kToml_A;
    std::ofstream(dir / "b.json") << kJson_B;
  }
  auto a = load_ctx_file((dir / "a.toml").string());
  auto b = load_ctx_file((dir / "b.json").string());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(a->state_dir, (dir / "a.state").string());
  auto provider = crypto::make_openssl_provider();
  CtxState sa(*a);
  ASSERT_TRUE(sa.persistent());
  auto client = oscore::Context::create(*provider, a->context_config(sa.store(), nullptr));
  auto server = oscore::Context::create(*provider, b->context_config(nullptr, nullptr));
  ASSERT_TRUE(client);
  ASSERT_TRUE(server);

  coap::Message req(coap::Type::kCon, coap::code::kGet);
  req.message_id = 7;
  req.set_uri_path("/oscore/hello/1");
  uint8_t out[512], plain[512];
  oscore::Exchange cx, sx;
  auto n = (*client)->protect_request(req, out, cx);
  ASSERT_TRUE(n);
  auto m = (*server)->unprotect_request(ByteView(out, *n), plain, sx);
  ASSERT_TRUE(m);
  auto inner = coap::Message::parse(ByteView(plain, *m));
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->uri_path(), "/oscore/hello/1");
  EXPECT_EQ((*client)->next_sequence_number(), 1u);

  // a restart over the same state starts at the persisted reservation
  client->reset();
  auto again = oscore::Context::create(*provider, a->context_config(sa.store(), nullptr));
  ASSERT_TRUE(again);
  EXPECT_GE((*again)->next_sequence_number(), a->seq_chunk);
  auto n2 = (*again)->protect_request(req, out, cx);
  ASSERT_TRUE(n2);
  EXPECT_TRUE((*server)->unprotect_request(ByteView(out, *n2), plain, sx));

  EXPECT_FALSE(sa.window_saved());
  ASSERT_TRUE(sa.save_window(**again));
  EXPECT_EQ(sa.window_saved(), CtxState::windows_supported());
  ASSERT_TRUE(sa.restore_window(**again));
  fs::remove_all(dir);
}

// The key update's Session state survives a "reboot" of the client: saved with
// mode 0600 through CtxState, restored by open_session at the new generation,
// and the restored client keeps talking to the server under the new key.
TEST(OscoreCtxFile, SessionStateSurvivesRestart) {
  fs::path dir = fs::temp_directory_path() / ("ctxfile_session_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "a.toml") << kToml_A;
  auto a = load_ctx_file((dir / "a.toml").string());
  auto b = parse_ctx(kJson_B, CtxFormat::kJson, dir.string(), "b");
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  b->state_dir.clear();
  auto provider = crypto::make_openssl_provider();
  FakeClock clock;
  FakeRandom random(7);
  CtxState sa(*a), sb(*b);
  EXPECT_FALSE(sa.session_saved());
  auto no_state = sa.load_session();
  ASSERT_TRUE(no_state);
  EXPECT_FALSE(no_state->has_value());

  auto client = open_session(oscore::Role::kClient, *provider, *a, sa, random, clock, true);
  auto server = open_session(oscore::Role::kServer, *provider, *b, sb, random, clock, true);
  ASSERT_TRUE(client) << client.error().message;
  ASSERT_TRUE(server) << server.error().message;
  auto round = [&](oscore::Session& c, oscore::Session& s) {
    coap::Message req(coap::Type::kCon, coap::code::kGet);
    req.set_uri_path("/oscore/hello/1");
    uint8_t out[512], plain[512];
    oscore::Exchange cx, sx;
    auto n = c.protect_request(req, out, cx);
    if (!n) return false;
    auto m = s.unprotect_request(ByteView(out, *n), plain, sx);
    if (!m) return false;
    coap::Message resp(coap::Type::kAck, coap::code::kContent);
    auto k = s.protect_response(resp, sx, out);
    if (!k) return false;
    return static_cast<bool>(c.unprotect_response(ByteView(out, *k), cx, plain));
  };
  (*client)->request_key_update();
  ASSERT_TRUE(round(**client, **server));
  EXPECT_EQ((*client)->updates_completed(), 1u);
  Bytes blob = (*client)->export_state();
  ASSERT_TRUE(sa.save_session(blob));
  EXPECT_TRUE(sa.session_saved());
  auto st = fs::status(fs::path(a->state_dir) / "session");
  EXPECT_EQ(st.permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(fs::path(a->state_dir) / "session.tmp"));
  auto loaded = sa.load_session();
  ASSERT_TRUE(loaded);
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, blob);

  // reboot: the old client is gone, the new one restores generation 1
  client->reset();
  auto again = open_session(oscore::Role::kClient, *provider, *a, sa, random, clock, true);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*again)->updates_completed(), 1u);
  EXPECT_TRUE(round(**again, **server));  // key confirmation under CTX_NEW
  EXPECT_EQ((*server)->updates_completed(), 1u);
  EXPECT_TRUE(round(**again, **server));

  // a corrupt state is refused (kBadValue), never half-used
  Bytes junk = {1, 2, 3};
  ASSERT_TRUE(sa.save_session(junk));
  auto bad = open_session(oscore::Role::kClient, *provider, *a, sa, random, clock, true);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, CtxFileError::kBadValue);
  EXPECT_EQ(bad.error().message.find("0102030405"), std::string::npos);
  fs::remove_all(dir);
}

// sent_message_summary names the key by generation and shows the Partial IV.
TEST(OscoreCtxFile, SentMessageSummary) {
  auto a = parse_ctx(kToml_A, CtxFormat::kToml, "/base", "a");
  auto b = parse_ctx(kJson_B, CtxFormat::kJson, "/base", "b");
  ASSERT_TRUE(a && b);
  a->state_dir.clear();
  b->state_dir.clear();
  auto provider = crypto::make_openssl_provider();
  FakeClock clock;
  FakeRandom random(3);
  CtxState sa(*a);
  auto client = open_session(oscore::Role::kClient, *provider, *a, sa, random, clock, true);
  ASSERT_TRUE(client) << client.error().message;
  coap::Message req(coap::Type::kCon, coap::code::kGet);
  req.set_uri_path("/x");
  uint8_t out[512];
  oscore::Exchange cx;
  auto n = (*client)->protect_request(req, out, cx);
  ASSERT_TRUE(n);
  EXPECT_EQ(sent_message_summary(**client, ByteView(out, *n), a->key_update.r_len), "key=g0 piv=0 d=0 state=idle");
  (*client)->request_key_update();
  oscore::Exchange cx2;
  n = (*client)->protect_request(req, out, cx2);
  ASSERT_TRUE(n);
  EXPECT_EQ(sent_message_summary(**client, ByteView(out, *n), a->key_update.r_len),
            "key=g0r1 piv=1 d=8 state=client awaiting R2");
}

TEST(OscoreCtxFile, MissingFile) {
  auto r = load_ctx_file("/nonexistent/ctx.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CtxFileError::kIo);
}

}  // namespace
}  // namespace acekdc::app
