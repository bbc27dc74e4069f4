// acekdc client token: ask the AS for an access token over OSCORE (the pre-established
// context of `acekdc serve --client`), and optionally post it to a KDC's /authz-info
// and derive the OSCORE context (RFC 9203 §4.3).
//
//   acekdc client token coap://[::1]/token --id 01 --secret SECRET_HEX
//       --scope g1:requester,responder --audience kdc --post coap://[::1]/authz-info
//
// Prints what it got; never the master secret.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "ace/oscore_profile.h"
#include "ace/scope.h"
#include "acekdc/command.h"
#include "coap/uri.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "io/client.h"
#include "oscore/context.h"

namespace acekdc::app {
namespace {

struct TokenArgs {
  std::string uri;
  std::string id;
  std::string secret;
  std::string audience;
  std::vector<std::string> scopes;  // GROUP[:role[,role]]
  std::string post;
  std::string recipient_id = "42";
  bool sign_info = false;
  double timeout = 10;
  std::optional<uint64_t> seq;
  std::string state;
};

// default_state_dir: $ACEKDC_STATE, else $XDG_STATE_HOME/acekdc, else ~/.local/state/acekdc.
std::string default_state_dir() {
  if (const char* s = std::getenv("ACEKDC_STATE"); s && *s) return s;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/acekdc";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/acekdc";
  return ".acekdc-state";
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitUsage);
}

std::optional<coap::Address> peer_of(const std::string& uri, coap::Uri& out) {
  auto u = coap::Uri::parse(uri);
  if (!u) return std::nullopt;
  out = *u;
  auto a = io::resolve(u->host, u->port);
  if (!a) return std::nullopt;
  return *a;
}

// send_raw sends an already-built request datagram (its token and message ID are the
// client endpoint's to choose) and returns the response as a datagram.
std::optional<Bytes> send_raw(io::BlockingClient& client, const coap::Address& peer, ByteView datagram,
                              Duration wait) {
  auto m = coap::Message::parse(datagram);
  if (!m) return std::nullopt;
  auto r = client.request(peer, *m, coap::RequestOptions{}, wait);
  if (!r || !r->response) return std::nullopt;
  auto out = r->response->encode();
  if (!out) return std::nullopt;
  return *out;
}

// parse_scope turns GROUP[:role[,role]] strings into a Scope.
ace::Scope parse_scope(const std::vector<std::string>& scopes) {
  ace::Scope scope;
  for (const auto& s : scopes) {
    auto colon = s.find(':');
    ace::ScopeEntry e;
    e.group = s.substr(0, colon);
    if (colon != std::string::npos) {
      std::stringstream ss(s.substr(colon + 1));
      std::string r;
      while (std::getline(ss, r, ',')) {
        ace::RoleSet bit = ace::role_from_name(r);
        if (!bit) usage("unknown role: " + r);
        e.roles |= bit;
      }
    }
    scope.entries.push_back(e);
  }
  if (scope.entries.empty()) usage("--scope is required");
  return scope;
}

std::unique_ptr<oscore::FileSequenceStore> open_seq_store(const std::string& state, const char* sub) {
  std::string dir = (state.empty() ? default_state_dir() : state) + "/" + sub;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) usage("cannot create state directory " + dir + ": " + ec.message());
  return std::make_unique<oscore::FileSequenceStore>(dir);
}

// KdcSession: what a token request + token POST produced.
struct KdcSession {
  ace::TokenResponse token;
  oscore::ContextParams params;  // the client's side of the KDC context
  ace::AuthzInfoResponse authz;
};

// request_token asks the AS at `uri` for a token over the pre-established context.
ace::TokenResponse request_token(crypto::Provider& provider, io::BlockingClient& client, const TokenArgs& a,
                                 const ace::Scope& scope, Duration wait) {
  auto id = from_hex(a.id);
  auto secret = from_hex(a.secret);
  if (!id || id->empty() || !secret || secret->empty()) usage("--id and --secret must be hex");
  coap::Uri u;
  auto peer = peer_of(a.uri, u);
  if (!peer) usage("cannot use " + a.uri);
  oscore::ContextConfig cfg;
  cfg.params.master_secret = *secret;
  cfg.params.sender_id = *id;
  cfg.params.recipient_id = {};
  // The Sender Sequence Number survives between runs: it is reserved in STATE/seq
  // (RFC 8613 Appendix B.1.1) before use, so no run can reuse a nonce with this key.
  // --seq starts from a given number without persistence (tests only).
  std::unique_ptr<oscore::FileSequenceStore> seq_store;
  if (a.seq) {
    cfg.initial_seq = *a.seq;
  } else {
    seq_store = open_seq_store(a.state, "seq");
    cfg.store = seq_store.get();
    cfg.seq_chunk = 16;
  }
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) usage(std::string("OSCORE context: ") + oscore::to_string(ctx.error()));

  ace::TokenRequest tr;
  if (!a.audience.empty()) tr.audience = a.audience;
  tr.scope = ace::ScopeParam{false, ace::encode_scope(scope)};
  coap::Message req(coap::Type::kCon, coap::code::kPost, 0);
  req.token = {0x01};
  req.set_uri_path(u.path);
  req.set_uint(coap::option::kContentFormat, cp::cf::kAceCbor);
  req.payload = tr.encode();
  Bytes buf(2048);
  oscore::Exchange ex;
  auto n = (*ctx)->protect_request(req, buf, ex);
  if (!n) usage(std::string("protect: ") + oscore::to_string(n.error()));
  auto wire = send_raw(client, *peer, ByteView(buf.data(), *n), wait);
  if (!wire) {
    std::fprintf(stderr, "error: no response from %s\n", a.uri.c_str());
    fail_with(kExitFailure);
  }
  Bytes dec(2048);
  auto d = (*ctx)->unprotect_response(*wire, ex, dec);
  if (!d) {
    auto plain = coap::Message::parse(*wire);
    std::fprintf(stderr, "error: response not OSCORE-verified (%s)%s%s\n", oscore::to_string(d.error()),
                 plain ? ": " : "", plain ? coap::code_string(plain->code).c_str() : "");
    fail_with(kExitFailure);
  }
  auto resp = coap::Message::parse(ByteView(dec.data(), *d));
  if (!resp) usage("bad inner response");
  if (resp->code != coap::code::kCreated) {
    auto e = ace::ErrorResponse::decode(resp->payload);
    std::fprintf(stderr, "error: %s %s%s%s\n", coap::code_string(resp->code).c_str(),
                 e ? ace::error_name(e->error) : "", e && e->description ? ": " : "",
                 e && e->description ? e->description->c_str() : "");
    fail_with(kExitFailure);
  }
  auto t = ace::TokenResponse::decode(resp->payload);
  if (!t) {
    std::fprintf(stderr, "error: token response: %s\n", t.error().describe().c_str());
    fail_with(kExitFailure);
  }
  if (!t->cnf || !t->cnf->osc || !t->cnf->osc->id) {
    std::fprintf(stderr, "error: no OSCORE_Input_Material in the response\n");
    fail_with(kExitFailure);
  }
  return std::move(*t);
}

// post_token posts the token to the KDC's /authz-info and derives the OSCORE context.
KdcSession post_token(ace::TokenResponse t, io::BlockingClient& client, const std::string& post_uri,
                      const std::string& recipient_id, bool sign_info, Duration wait) {
  coap::Uri ku;
  auto kdc = peer_of(post_uri, ku);
  if (!kdc) usage("cannot use " + post_uri);
  auto rid = from_hex(recipient_id);
  if (!rid) usage("--recipient-id must be hex");
  SystemRandom random;
  ace::ClientTokenPost sent = ace::prepare_token_post(t.access_token, *rid, random, sign_info);
  coap::Message p(coap::Type::kCon, coap::code::kPost, 0);
  p.set_uri_path(ku.path);
  p.set_uint(coap::option::kContentFormat, cp::cf::kAceCbor);
  p.payload = sent.payload;
  auto r = client.request(*kdc, p, coap::RequestOptions{}, wait);
  if (!r || !r->response) {
    std::fprintf(stderr, "error: no response from %s\n", post_uri.c_str());
    fail_with(kExitFailure);
  }
  if (r->response->code != coap::code::kCreated) {
    std::fprintf(stderr, "error: %s %s\n", coap::code_string(r->response->code).c_str(),
                 std::string(as_string(r->response->payload)).c_str());
    fail_with(kExitFailure);
  }
  KdcSession s;
  auto params = ace::finish_token_post(*t.cnf->osc, sent, r->response->payload, &s.authz);
  if (!params) {
    std::fprintf(stderr, "error: OSCORE setup: %s\n", params.error().describe().c_str());
    fail_with(kExitFailure);
  }
  s.params = std::move(*params);
  s.token = std::move(t);
  return s;
}

void run(const TokenArgs& a) {
  auto provider = crypto::make_openssl_provider();
  ace::Scope scope = parse_scope(a.scopes);
  io::BlockingClient client;
  auto wait = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout));
  ace::TokenResponse t = request_token(*provider, client, a, scope, wait);
  std::printf("access_token: %zu bytes\n", t.access_token.size());
  if (t.expires_in) std::printf("expires_in: %llu\n", static_cast<unsigned long long>(*t.expires_in));
  if (t.ace_profile) std::printf("ace_profile: %lld\n", static_cast<long long>(*t.ace_profile));
  if (t.scope) std::printf("granted scope: %s\n", to_hex(t.scope->value).c_str());
  std::printf("OSCORE_Input_Material id: %s\n", to_hex(*t.cnf->osc->id).c_str());
  if (a.post.empty()) return;
  KdcSession s = post_token(std::move(t), client, a.post, a.recipient_id, a.sign_info, wait);
  std::printf("OSCORE context with the KDC: Sender ID %s, Recipient ID %s, Master Salt %s\n",
              to_hex(s.params.sender_id).c_str(), to_hex(s.params.recipient_id).c_str(),
              to_hex(s.params.master_salt).c_str());
  if (s.authz.rsnonce) std::printf("rsnonce: %s\n", to_hex(*s.authz.rsnonce).c_str());
  for (const auto& x : s.authz.sign_info) std::printf("sign_info: %s\n", to_hex(cbor::encode(x.to_value())).c_str());
}


// ---- client join / keys / leave: the KDC's /ace-group interface ----

struct GroupArgs {
  std::string as_uri;
  std::string kdc_uri;
  std::string group;
  std::vector<std::string> roles;
  std::string id;
  std::string secret;
  std::string audience = "kdc";
  std::string state;
  bool show_secrets = false;
  double timeout = 10;
};

// Session: the client's side of its KDC context and its group membership, saved in
// STATE/groups/GROUP.session (mode 0600: it holds the context's master secret).
struct Session {
  oscore::ContextParams params;
  std::string node;  // NODENAME from the join's Location-Path
};

std::string state_dir(const std::string& s) { return s.empty() ? default_state_dir() : s; }
std::string session_path(const GroupArgs& a) { return state_dir(a.state) + "/groups/" + a.group + ".session"; }

void write_private(const std::string& path, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) usage("cannot write " + path);
    std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 ec);
    out << text;
    if (!out) usage("cannot write " + path);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) usage("cannot write " + path + ": " + ec.message());
}

void save_session(const GroupArgs& a, const Session& s) {
  std::ostringstream o;
  o << "sender_id " << to_hex(s.params.sender_id) << "\n";
  o << "recipient_id " << to_hex(s.params.recipient_id) << "\n";
  o << "master_secret " << to_hex(s.params.master_secret) << "\n";
  o << "master_salt " << to_hex(s.params.master_salt) << "\n";
  if (s.params.id_context) o << "id_context " << to_hex(*s.params.id_context) << "\n";
  o << "aead " << s.params.aead_alg << "\n";
  o << "hkdf " << s.params.hkdf_alg << "\n";
  o << "node " << s.node << "\n";
  write_private(session_path(a), o.str());
}

Session load_session(const GroupArgs& a) {
  std::ifstream in(session_path(a));
  if (!in) {
    std::fprintf(stderr, "error: no session for group %s in %s (run `client join` first)\n", a.group.c_str(),
                 state_dir(a.state).c_str());
    fail_with(kExitFailure);
  }
  Session s;
  std::string k, v;
  auto hex = [](const std::string& x) {
    auto b = from_hex(x);
    if (!b) usage("corrupt session file");
    return *b;
  };
  while (in >> k >> v) {
    if (k == "sender_id") s.params.sender_id = hex(v);
    else if (k == "recipient_id") s.params.recipient_id = hex(v);
    else if (k == "master_secret") s.params.master_secret = hex(v);
    else if (k == "master_salt") s.params.master_salt = hex(v);
    else if (k == "id_context") s.params.id_context = hex(v);
    else if (k == "aead") s.params.aead_alg = std::atoi(v.c_str());
    else if (k == "hkdf") s.params.hkdf_alg = std::atoi(v.c_str());
    else if (k == "node") s.node = v;
  }
  if (s.params.master_secret.empty()) usage("corrupt session file " + session_path(a));
  return s;
}

// base_uri strips a trailing '/' so paths can be appended.
std::string base_uri(std::string u) {
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

// KdcChannel: requests to the KDC protected with the client's KDC context; the
// Sender Sequence Number is reserved in STATE/kdc-seq before use.
class KdcChannel {
 public:
  KdcChannel(crypto::Provider& provider, const GroupArgs& a, const oscore::ContextParams& params)
      : seq_(open_seq_store(a.state, "kdc-seq")),
        wait_(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout))) {
    coap::Uri u;
    auto peer = peer_of(base_uri(a.kdc_uri) + "/ace-group", u);
    if (!peer) usage("cannot use " + a.kdc_uri);
    peer_ = *peer;
    oscore::ContextConfig cfg;
    cfg.params = params;
    cfg.store = seq_.get();
    cfg.seq_chunk = 16;
    auto ctx = oscore::Context::create(provider, std::move(cfg));
    if (!ctx) usage(std::string("OSCORE context: ") + oscore::to_string(ctx.error()));
    ctx_ = std::move(*ctx);
  }

  coap::Message call(uint8_t method, const std::string& path, ByteView payload) {
    coap::Message req(coap::Type::kCon, method, 0);
    req.token = {0x02};
    req.set_uri_path(path);
    if (!payload.empty()) {
      req.set_uint(coap::option::kContentFormat, cp::cf::kAceGroupcommCbor);
      req.payload = to_bytes(payload);
    }
    Bytes buf(4096);
    oscore::Exchange ex;
    auto n = ctx_->protect_request(req, buf, ex);
    if (!n) usage(std::string("protect: ") + oscore::to_string(n.error()));
    auto wire = send_raw(client_, peer_, ByteView(buf.data(), *n), wait_);
    if (!wire) {
      std::fprintf(stderr, "error: no response from the KDC\n");
      fail_with(kExitFailure);
    }
    Bytes dec(8192);
    auto d = ctx_->unprotect_response(*wire, ex, dec);
    if (!d) {
      auto plain = coap::Message::parse(*wire);
      std::fprintf(stderr, "error: KDC response not OSCORE-verified (%s)%s%s\n", oscore::to_string(d.error()),
                   plain ? ": " : "", plain ? coap::code_string(plain->code).c_str() : "");
      fail_with(kExitFailure);
    }
    auto resp = coap::Message::parse(ByteView(dec.data(), *d));
    if (!resp) usage("bad inner response from the KDC");
    return std::move(*resp);
  }

 private:
  std::unique_ptr<oscore::FileSequenceStore> seq_;
  Duration wait_;
  coap::Address peer_;
  std::unique_ptr<oscore::Context> ctx_;
  io::BlockingClient client_;
};

[[noreturn]] void kdc_failed(const char* what, const coap::Message& r) {
  std::string diag;
  if (!r.find(coap::option::kContentFormat)) diag = std::string(as_string(r.payload));
  std::fprintf(stderr, "error: %s: %s%s%s\n", what, coap::code_string(r.code).c_str(), diag.empty() ? "" : " ",
               diag.c_str());
  fail_with(kExitFailure);
}

// print_key_distribution prints num, the Group ID and the Sender ID of a Joining /
// Key Distribution Response (never the master secret unless asked).
void print_key_distribution(ByteView payload, bool show_secrets) {
  auto v = cbor::decode(payload);
  if (!v || !v->is_map()) usage("KDC response is not a CBOR map");
  if (const auto* n = v->find(int64_t{cp::gc::kNum}); n && n->as_uint())
    std::printf("num: %llu\n", static_cast<unsigned long long>(*n->as_uint()));
  const cbor::Value* key = v->find(int64_t{cp::gc::kKey});
  if (!key || !key->is_map()) usage("KDC response without key");
  if (const auto* g = key->find(int64_t{cp::osc::kContextId}); g && g->as_bytes())
    std::printf("Group ID: %s\n", to_hex(*g->as_bytes()).c_str());
  if (const auto* sid = key->find(int64_t{cp::osc::kGroupSenderId}); sid && sid->as_bytes())
    std::printf("Sender ID: %s\n", to_hex(*sid->as_bytes()).c_str());
  if (show_secrets) {
    if (const auto* ms = key->find(int64_t{cp::osc::kMs}); ms && ms->as_bytes())
      std::printf("Master Secret: %s\n", to_hex(*ms->as_bytes()).c_str());
    if (const auto* salt = key->find(int64_t{cp::osc::kSalt}); salt && salt->as_bytes())
      std::printf("Master Salt: %s\n", to_hex(*salt->as_bytes()).c_str());
  }
}

void run_join(const GroupArgs& a) {
  auto provider = crypto::make_openssl_provider();
  ace::RoleSet roles = 0;
  for (const auto& list : a.roles) {
    std::stringstream ss(list);
    std::string r;
    while (std::getline(ss, r, ',')) {
      ace::RoleSet bit = ace::role_from_name(r);
      if (!bit) usage("unknown role: " + r);
      roles |= bit;
    }
  }
  if (!roles) usage("--role is required");
  ace::Scope scope;
  scope.entries.push_back(ace::ScopeEntry{a.group, roles});

  // 1. Token from the AS, 2. token POST to the KDC's /authz-info.
  TokenArgs ta;
  ta.uri = base_uri(a.as_uri) + "/token";
  ta.id = a.id;
  ta.secret = a.secret;
  ta.audience = a.audience;
  ta.timeout = a.timeout;
  ta.state = a.state;
  io::BlockingClient client;
  auto wait = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout));
  ace::TokenResponse t = request_token(*provider, client, ta, scope, wait);
  KdcSession ks = post_token(std::move(t), client, base_uri(a.kdc_uri) + "/authz-info", ta.recipient_id, true, wait);
  if (!ks.authz.rsnonce) usage("the KDC sent no rsnonce");
  Bytes rsnonce = *ks.authz.rsnonce;

  // 3. Join with a fresh Ed25519 key pair (kept in STATE/groups/GROUP.key); a
  // monitor sends no public key.
  const bool monitor_only = roles == ace::role_from_name("monitor");
  std::optional<cose::CoseKey> key;
  if (!monitor_only) {
    auto kp = provider->generate_keypair(cp::crv::kEd25519);
    if (!kp) usage("cannot generate an Ed25519 key pair");
    key = cose::CoseKey::from_keypair(*kp);
    write_private(state_dir(a.state) + "/groups/" + a.group + ".key", to_hex(key->encode(true)) + "\n");
  }
  KdcChannel ch(*provider, a, ks.params);
  SystemRandom random;
  coap::Message r;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Bytes scope_bytes = ace::encode_scope(scope);
    groupcomm::JoinRequest jr;
    jr.scope = scope_bytes;
    Bytes cred, cnonce, sig;
    if (key) {
      cred = key->encode(false);
      cnonce = random.bytes(8);
      auto s = groupcomm::sign_pop(*provider, cp::alg::kEdDSA, *key, rsnonce, cnonce);
      if (!s) usage(std::string("sign_pop: ") + groupcomm::to_string(s.error()));
      sig = std::move(*s);
      jr.client_cred = cred;
      jr.cnonce = cnonce;
      jr.client_cred_verify = sig;
    }
    r = ch.call(coap::code::kPost, "/ace-group/" + a.group, groupcomm::encode_join_request(jr));
    if (r.code != coap::code::kBadRequest || attempt > 0) break;
    // REQ17: a 4.00 carrying a fresh rsnonce asks to sign again over it.
    auto v = cbor::decode(r.payload);
    const cbor::Value* n = v && v->is_map() ? v->find(int64_t{cp::gc::kRsNonce}) : nullptr;
    if (!n || !n->as_bytes()) break;
    rsnonce = *n->as_bytes();
  }
  if (r.code != coap::code::kCreated) kdc_failed("join", r);
  Session s;
  s.params = ks.params;
  std::string loc = r.location_path();
  s.node = loc.substr(loc.find_last_of('/') + 1);
  save_session(a, s);
  std::printf("joined %s as node %s (Location-Path %s)\n", a.group.c_str(), s.node.c_str(), loc.c_str());
  print_key_distribution(r.payload, a.show_secrets);
}

void run_keys(const GroupArgs& a) {
  auto provider = crypto::make_openssl_provider();
  Session s = load_session(a);
  KdcChannel ch(*provider, a, s.params);
  coap::Message r = ch.call(coap::code::kGet, "/ace-group/" + a.group, {});
  if (r.code != coap::code::kContent) kdc_failed("keys", r);
  print_key_distribution(r.payload, a.show_secrets);
}

void run_leave(const GroupArgs& a) {
  auto provider = crypto::make_openssl_provider();
  Session s = load_session(a);
  KdcChannel ch(*provider, a, s.params);
  coap::Message r = ch.call(coap::code::kDelete, "/ace-group/" + a.group + "/nodes/" + s.node, {});
  if (r.code != coap::code::kDeleted) kdc_failed("leave", r);
  std::error_code ec;
  std::filesystem::remove(session_path(a), ec);
  std::filesystem::remove(state_dir(a.state) + "/groups/" + a.group + ".key", ec);
  std::printf("left %s (node %s)\n", a.group.c_str(), s.node.c_str());
}

Registrar reg("client", [](CLI::App& root) {
  auto* cl = root.add_subcommand("client", "ACE client operations");
  cl->require_subcommand(1);
  auto args = std::make_shared<TokenArgs>();
  auto* tok = cl->add_subcommand("token", "get an access token from the AS over OSCORE (and post it to a KDC)");
  tok->add_option("uri", args->uri, "the AS token endpoint, coap://host[:port]/token")->required();
  tok->add_option("--id", args->id, "the client's OSCORE Sender ID with the AS (hex)")->required();
  tok->add_option("--secret", args->secret, "the client-AS OSCORE Master Secret (hex)")->required();
  tok->add_option("--scope", args->scopes, "GROUP[:role[,role]] (repeatable)")->required();
  tok->add_option("--audience", args->audience, "the KDC's audience");
  tok->add_option("--post", args->post, "post the token to this /authz-info URI");
  tok->add_option("--recipient-id", args->recipient_id, "the client's Recipient ID with the KDC (hex, default 42)");
  tok->add_flag("--sign-info", args->sign_info, "ask the KDC for sign_info / pub_key_enc");
  tok->add_option("--timeout", args->timeout, "seconds to wait (default 10)");
  tok->add_option("--state", args->state, "directory for the client's persistent state (default $ACEKDC_STATE or ~/.local/state/acekdc)");
  tok->add_option("--seq", args->seq, "start at this OSCORE Sender Sequence Number, without persisting it (tests)");
  tok->callback([args] { run(*args); });

  auto gargs = std::make_shared<GroupArgs>();
  auto* join = cl->add_subcommand("join", "get a token, post it to the KDC and join a group (fresh Ed25519 key)");
  join->add_option("--as", gargs->as_uri, "the AS, coap://host[:port]")->required();
  join->add_option("--kdc", gargs->kdc_uri, "the KDC, coap://host[:port]")->required();
  join->add_option("--id", gargs->id, "the client's OSCORE Sender ID with the AS (hex)")->required();
  join->add_option("--secret", gargs->secret, "the client-AS OSCORE Master Secret (hex)")->required();
  join->add_option("--role", gargs->roles, "requester, responder, monitor (repeatable or comma-separated)")->required();
  join->add_option("--audience", gargs->audience, "the KDC's audience (default kdc)");
  for (auto* sc : {join, cl->add_subcommand("keys", "get the group's current keying material (GET /ace-group/GROUP)"),
                   cl->add_subcommand("leave", "leave the group (DELETE /ace-group/GROUP/nodes/NODE)")}) {
    if (sc != join) sc->add_option("--kdc", gargs->kdc_uri, "the KDC, coap://host[:port]")->required();
    sc->add_option("--group", gargs->group, "GROUPNAME")->required();
    sc->add_option("--state", gargs->state, "the client's state directory (default $ACEKDC_STATE or ~/.local/state/acekdc)");
    sc->add_option("--timeout", gargs->timeout, "seconds to wait (default 10)");
    if (sc->get_name() != "leave") sc->add_flag("--show-secrets", gargs->show_secrets, "also print the group's master secret and salt");
  }
  join->callback([gargs] { run_join(*gargs); });
  cl->get_subcommand("keys")->callback([gargs] { run_keys(*gargs); });
  cl->get_subcommand("leave")->callback([gargs] { run_leave(*gargs); });
});

}  // namespace
}  // namespace acekdc::app
