// acekdc token inspect|create: CWTs (RFC 8392) verified, decrypted and made.
#include <cstdio>
#include <ctime>
#include <string>

#include "acekdc/command.h"
#include "acekdc/io_util.h"
#include "cbor/edn.h"
#include "core/clock.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "cwt/cwt.h"

namespace acekdc::app {
namespace {

struct TokenArgs {
  std::string key;
  std::string token;
  std::string claims;
  std::string audience;
  std::string type = "sign";
  int64_t now = -1;
  bool no_time = false;
  bool cwt_tag = false;
  bool json_hex = false;
};

// load_keys accepts a COSE_Key or a COSE_KeySet.
cose::KeySet load_keys(const std::string& text) {
  auto bytes = cbor_from_text(text, "key");
  if (!bytes) fail_with(kExitUsage);
  auto v = cbor::decode(*bytes);
  if (!v) {
    std::fprintf(stderr, "error: key is not well-formed CBOR: %s\n", cbor::to_string(v.error()));
    fail_with(kExitUsage);
  }
  if (v->is_array()) {
    auto set = cose::KeySet::from_value(*v);
    if (!set) {
      std::fprintf(stderr, "error: invalid COSE_KeySet: %s\n", cose::to_string(set.error()));
      fail_with(kExitUsage);
    }
    return std::move(*set);
  }
  auto key = cose::CoseKey::from_value(*v);
  if (!key) {
    std::fprintf(stderr, "error: invalid COSE_Key: %s\n", cose::to_string(key.error()));
    fail_with(kExitUsage);
  }
  cose::KeySet set;
  set.keys.push_back(std::move(*key));
  return set;
}

std::string utc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  char buf[64];
  if (!gmtime_r(&tt, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) return "?";
  return buf;
}

const char* layer_name(cose::MessageType t) {
  switch (t) {
    case cose::MessageType::kSign1: return "COSE_Sign1";
    case cose::MessageType::kEncrypt0: return "COSE_Encrypt0";
    case cose::MessageType::kMac0: return "COSE_Mac0";
  }
  return "?";
}

void run_inspect(const TokenArgs& a) {
  cose::KeySet keys = load_keys(a.key);
  auto token = cbor_from_text(a.token, "token");
  if (!token) fail_with(kExitUsage);
  auto provider = crypto::make_openssl_provider();
  SystemClock clock;
  cwt::VerifyOptions opts;
  opts.now = a.now >= 0 ? a.now : clock.unix_time();
  opts.check_time = !a.no_time;
  if (!a.audience.empty()) opts.audience = a.audience;
  cwt::TokenInfo info;
  auto claims = cwt::verify(*provider, *token, keys, opts, &info);
  if (!claims) {
    std::fprintf(stderr, "error: token rejected: %s\n", cwt::to_string(claims.error()));
    fail_with(kExitFailure);
  }
  std::printf("token: %zu bytes, ", token->size());
  for (size_t i = 0; i < info.layers.size(); ++i) {
    std::printf("%s%s", i ? " containing " : "", layer_name(info.layers[i]));
    if (i < info.kids.size() && !info.kids[i].empty()) std::printf(" (kid h'%s')", to_hex(info.kids[i]).c_str());
  }
  std::printf(", authenticated\n");
  if (claims->exp) std::printf("expires: %s%s\n", utc(claims->exp->seconds()).c_str(),
                               claims->exp->seconds() <= opts.now ? " (expired)" : "");
  std::printf("claims: %s\n", cbor::to_diag(claims->to_value(), {.pretty = true, .embedded = true}).c_str());
}

void run_create(const TokenArgs& a) {
  cose::KeySet keys = load_keys(a.key);
  if (keys.keys.size() != 1) {
    std::fprintf(stderr, "error: give exactly one COSE_Key to create a token\n");
    fail_with(kExitUsage);
  }
  auto cbytes = cbor_from_text(a.claims, "claims");
  if (!cbytes) fail_with(kExitUsage);
  auto claims = cwt::Claims::decode(*cbytes);
  if (!claims) {
    std::fprintf(stderr, "error: invalid claims: %s\n", cwt::to_string(claims.error()));
    fail_with(kExitUsage);
  }
  auto provider = crypto::make_openssl_provider();
  cwt::CreateOptions opts;
  opts.cwt_tag = a.cwt_tag;
  Expected<Bytes, cwt::Error> tok = unexpected(cwt::Error::kWrongKey);
  if (a.type == "sign") {
    tok = cwt::create_signed(*provider, *claims, keys.keys[0], opts);
  } else if (a.type == "mac") {
    tok = cwt::create_maced(*provider, *claims, keys.keys[0], opts);
  } else if (a.type == "encrypt") {
    tok = cwt::create_encrypted(*provider, *claims, keys.keys[0], opts);
  } else {
    std::fprintf(stderr, "error: --type is sign, mac or encrypt\n");
    fail_with(kExitUsage);
  }
  if (!tok) {
    std::fprintf(stderr, "error: cannot create token: %s\n", cwt::to_string(tok.error()));
    fail_with(kExitFailure);
  }
  std::printf("%s\n", to_hex(*tok).c_str());
}

Registrar reg("token", [](CLI::App& root) {
  auto* tok = root.add_subcommand("token", "CBOR Web Tokens (RFC 8392)");
  tok->require_subcommand(1);
  auto args = std::make_shared<TokenArgs>();
  const char* input_help = " (hex, diagnostic notation, @file, or - for stdin)";

  auto* ins = tok->add_subcommand("inspect", "Verify or decrypt a CWT and print its claims");
  ins->add_option("--key,-k", args->key, std::string("COSE_Key or COSE_KeySet") + input_help)->required();
  ins->add_option("token", args->token, std::string("The token") + input_help)->required();
  ins->add_option("--audience", args->audience, "Require this 'aud'");
  ins->add_option("--now", args->now, "Check exp/nbf against this unix time instead of the clock");
  ins->add_flag("--no-time-check", args->no_time, "Do not check exp/nbf");
  ins->callback([args] { run_inspect(*args); });

  auto* cr = tok->add_subcommand("create", "Make a CWT from a claims map; prints it as hex");
  cr->add_option("--key,-k", args->key, std::string("COSE_Key with a private or symmetric part") + input_help)->required();
  cr->add_option("--claims,-c", args->claims, std::string("Claims map") + input_help)->required();
  cr->add_option("--type,-t", args->type, "sign (COSE_Sign1), mac (COSE_Mac0) or encrypt (COSE_Encrypt0)")->capture_default_str();
  cr->add_flag("--cwt-tag", args->cwt_tag, "Wrap in the CWT tag 61");
  cr->callback([args] { run_create(*args); });
});

}  // namespace
}  // namespace acekdc::app
