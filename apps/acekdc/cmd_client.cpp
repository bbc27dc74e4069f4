// acekdc client: the client side of the ACE group KDC (the protocol logic lives in
// src/client; this file parses arguments and prints).
//
//   acekdc client token coap://[::1]/token --id 01 --secret SECRET_HEX
//       --scope g1:requester,responder --audience kdc --post coap://[::1]/authz-info
//   acekdc client join --as URI --kdc URI --id 01 --secret HEX --group G --role requester
//   acekdc client keys|pub-keys|policies|version|renew|update-pub-key|leave|status|watch
//       --kdc URI --group G [--state DIR] [--json]
//
// Output is readable text, or one JSON object per result with --json. The group's
// master secret is printed only with --show-secrets; other secrets never.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "ace/scope.h"
#include "acekdc/command.h"
#include "cbor/value.h"
#include "client/kdc_client.h"
#include "client/watch.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/error.h"

namespace acekdc::app {
namespace {

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitUsage);
}

Duration to_duration(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// Json: one JSON object on one line.
class Json {
 public:
  Json& str(const char* k, std::string_view v) {
    key(k);
    quote(v);
    return *this;
  }
  Json& hex(const char* k, ByteView v) { return str(k, to_hex(v)); }
  Json& num(const char* k, int64_t v) {
    key(k);
    s_ += std::to_string(v);
    return *this;
  }
  Json& boolean(const char* k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
  }
  Json& raw(const char* k, const std::string& json) {
    key(k);
    s_ += json;
    return *this;
  }
  std::string text() const { return "{" + s_ + "}"; }
  void print() const { std::printf("%s\n", text().c_str()); }
  static std::string quoted(std::string_view v) {
    Json j;
    j.quote(v);
    return j.s_;
  }

 private:
  void key(const char* k) {
    if (!s_.empty()) s_ += ",";
    quote(k);
    s_ += ":";
  }
  void quote(std::string_view v) {
    s_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') {
        s_ += '\\';
        s_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        s_ += b;
      } else {
        s_ += c;
      }
    }
    s_ += '"';
  }
  std::string s_;
};

struct Out {
  bool json = false;
  bool show_secrets = false;
};

[[noreturn]] void failed(const Out& o, const char* op, const client::Failure& f) {
  // An answer without OSCORE fails verification as "security context not found",
  // which reads as if this client lacked a context: say who answered what.
  if (f.error == client::Error::kNotVerified &&
      f.detail.rfind(oscore::to_string(oscore::Error::kContextNotFound), 0) == 0) {
    std::fprintf(stderr, "error: %s: the server answered without OSCORE%s: it has no security context for this "
                 "client (unknown client ID at the AS; at the KDC: token expired or revoked, state lost, "
                 "or no token posted)\n",
                 op, f.detail.substr(std::string(oscore::to_string(oscore::Error::kContextNotFound)).size()).c_str());
  } else {
    std::fprintf(stderr, "error: %s: %s\n", op, f.describe().c_str());
  }
  if (o.json) Json().str("op", op).boolean("ok", false).str("error", client::to_string(f.error)).str("detail", f.detail).print();
  fail_with(f.error == client::Error::kInvalidArgument ? kExitUsage : kExitFailure);
}

ace::RoleSet parse_roles(const std::vector<std::string>& lists) {
  ace::RoleSet roles = 0;
  for (const auto& list : lists) {
    std::stringstream ss(list);
    std::string r;
    while (std::getline(ss, r, ',')) {
      ace::RoleSet bit = ace::role_from_name(r);
      if (!bit) usage("unknown role: " + r);
      roles |= bit;
    }
  }
  return roles;
}

// parse_scope turns GROUP[:role[,role]] strings into a Scope.
ace::Scope parse_scope(const std::vector<std::string>& scopes) {
  ace::Scope scope;
  for (const auto& s : scopes) {
    auto colon = s.find(':');
    ace::ScopeEntry e;
    e.group = s.substr(0, colon);
    if (colon != std::string::npos) e.roles = parse_roles({s.substr(colon + 1)});
    scope.entries.push_back(e);
  }
  if (scope.entries.empty()) usage("--scope is required");
  return scope;
}

Bytes hex_arg(const std::string& s, const char* what) {
  auto b = from_hex(s);
  if (!b) usage(std::string(what) + " must be hex");
  return *b;
}

std::string base_uri(std::string u) {
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

coap::Address address_of(const std::string& uri) {
  auto r = client::resolve_uri(uri);
  if (!r) usage(r.error().detail);
  return r->first;
}

// ---- client token ----

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
  bool json = false;
  std::string out;  // save the access token (raw bytes) here
};

// write_token saves the access token's bytes (mode 0600).
void write_token(const std::string& path, ByteView token) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  std::error_code ec;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  f.write(reinterpret_cast<const char*>(token.data()), static_cast<std::streamsize>(token.size()));
  if (!f) usage("cannot write " + path);
}

void run_token(const TokenArgs& a) {
  Out o{a.json, false};
  auto provider = crypto::make_openssl_provider();
  client::UdpTransport transport;
  auto target = client::resolve_uri(a.uri);
  if (!target) usage(target.error().detail);
  client::TokenRequestConfig tc;
  tc.as = target->first;
  tc.path = target->second;
  tc.id = hex_arg(a.id, "--id");
  tc.secret = hex_arg(a.secret, "--secret");
  tc.audience = a.audience;
  tc.scope = parse_scope(a.scopes);
  tc.timeout = to_duration(a.timeout);
  // The Sender Sequence Number survives between runs: it is reserved in STATE/seq
  // (RFC 8613 Appendix B.1.1) before use. --seq starts from a given number without
  // persistence (tests only).
  client::StateDir state(a.state);
  std::unique_ptr<oscore::FileSequenceStore> seq;
  // Reserves the next chunk ahead (off the send path); drained before the lock goes.
  std::unique_ptr<oscore::ThreadSequenceWriter> seq_writer;
  std::optional<client::StateLock> lock;
  if (a.seq) {
    tc.initial_seq = *a.seq;
  } else {
    auto s = state.seq_store("seq");
    if (!s) usage(s.error().detail);
    seq = std::move(*s);
    seq_writer = std::make_unique<oscore::ThreadSequenceWriter>();
    seq->set_writer(seq_writer.get());
    tc.seq_store = seq.get();
    auto l = state.lock();
    if (!l) usage(l.error().detail);
    lock = std::move(*l);
  }
  auto t = client::request_token(*provider, transport, tc);
  seq_writer.reset();  // every queued reservation written while the state is still ours
  lock.reset();
  if (!t) failed(o, "token", t.error());
  if (!a.out.empty()) write_token(a.out, t->access_token);
  Json j;
  j.str("op", "token").boolean("ok", true).num("access_token_len", static_cast<int64_t>(t->access_token.size()));
  if (t->expires_in) j.num("expires_in", static_cast<int64_t>(*t->expires_in));
  if (t->scope) j.hex("scope", t->scope->value);
  j.hex("material_id", *t->cnf->osc->id);
  if (!a.json) {
    std::printf("access_token: %zu bytes\n", t->access_token.size());
    if (t->expires_in) std::printf("expires_in: %llu\n", static_cast<unsigned long long>(*t->expires_in));
    if (t->ace_profile) std::printf("ace_profile: %lld\n", static_cast<long long>(*t->ace_profile));
    if (t->scope) std::printf("granted scope: %s\n", to_hex(t->scope->value).c_str());
    std::printf("OSCORE_Input_Material id: %s\n", to_hex(*t->cnf->osc->id).c_str());
  }
  if (!a.post.empty()) {
    auto kdc = client::resolve_uri(a.post);
    if (!kdc) usage(kdc.error().detail);
    SystemRandom random;
    auto s = client::post_token(transport, random, std::move(*t), kdc->first, kdc->second,
                                hex_arg(a.recipient_id, "--recipient-id"), a.sign_info, tc.timeout);
    if (!s) failed(o, "token", s.error());
    j.hex("sender_id", s->params.sender_id).hex("recipient_id", s->params.recipient_id);
    if (s->authz.rsnonce) j.hex("rsnonce", *s->authz.rsnonce);
    if (!a.json) {
      std::printf("OSCORE context with the KDC: Sender ID %s, Recipient ID %s, Master Salt %s\n",
                  to_hex(s->params.sender_id).c_str(), to_hex(s->params.recipient_id).c_str(),
                  to_hex(s->params.master_salt).c_str());
      if (s->authz.rsnonce) std::printf("rsnonce: %s\n", to_hex(*s->authz.rsnonce).c_str());
      for (const auto& x : s->authz.sign_info)
        std::printf("sign_info: %s\n", to_hex(cbor::encode(x.to_value())).c_str());
    }
  }
  if (a.json) j.print();
}

// ---- client post-token: a saved (or hand-made) token to /authz-info, as is ----

struct PostArgs {
  std::string uri;
  std::string token_file;
  std::string recipient_id = "42";
  double timeout = 10;
  bool json = false;
};

// run_post_token prints "2.01 Created ..." (nonce2, the KDC's Recipient ID) or, on a
// refusal, "error: token POST: CODE: diagnostic" on stderr with exit status 1.
void run_post_token(const PostArgs& a) {
  std::ifstream f(a.token_file, std::ios::binary);
  if (!f) usage("cannot read " + a.token_file);
  Bytes token((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto target = client::resolve_uri(a.uri);
  if (!target) usage(target.error().detail);
  SystemRandom random;
  ace::ClientTokenPost sent = ace::prepare_token_post(token, hex_arg(a.recipient_id, "--recipient-id"), random);
  coap::Message req(coap::Type::kCon, coap::code::kPost, 0);
  req.set_uri_path(target->second);
  req.set_uint(coap::option::kContentFormat, cp::cf::kAceCbor);
  req.payload = sent.payload;
  auto dg = req.encode();
  if (!dg) usage("token too large");
  client::UdpTransport transport;
  auto wire = transport.exchange(target->first, *dg, to_duration(a.timeout));
  const Out o{a.json, false};
  if (!wire) failed(o, "token POST", wire.error());
  auto resp = coap::Message::parse(*wire);
  if (!resp) failed(o, "token POST", client::Failure{client::Error::kBadResponse, 0, "answer does not parse"});
  if (resp->code != coap::code::kCreated) {
    std::fprintf(stderr, "error: token POST: %s: %s\n", coap::code_string(resp->code).c_str(),
                 std::string(as_string(resp->payload)).c_str());
    if (a.json)
      Json().str("op", "post-token").boolean("ok", false).str("error", client::to_string(client::Error::kRefused))
          .str("code", coap::code_string(resp->code)).print();
    fail_with(kExitFailure);
  }
  auto air = ace::AuthzInfoResponse::decode(resp->payload);
  if (a.json) {
    Json j;
    j.str("op", "post-token").boolean("ok", true).str("code", coap::code_string(resp->code));
    if (air && air->server_recipient_id) j.hex("ace_server_recipientid", *air->server_recipient_id);
    if (air && air->nonce2) j.hex("nonce2", *air->nonce2);
    return j.print();
  }
  std::printf("%s", coap::code_string(resp->code).c_str());
  if (air && air->server_recipient_id) std::printf(" ace_server_recipientid %s", to_hex(*air->server_recipient_id).c_str());
  if (air && air->nonce2) std::printf(" nonce2 %s", to_hex(*air->nonce2).c_str());
  std::printf("\n");
}

// ---- the /ace-group operations ----

struct GroupArgs {
  std::string as_uri;
  std::string kdc_uri;
  std::string group;
  std::vector<std::string> roles;
  std::string id;
  std::string secret;
  std::string audience = "kdc";
  std::string state;
  std::string control_path;
  std::vector<std::string> ids;  // pub-keys --id
  bool get_pub_keys = false;
  bool node = false;
  bool show_secrets = false;
  bool json = false;
  double timeout = 10;
  // watch
  double duration = 0;
  int count = 0;
  double poll = 0;
  std::string listen;
};

struct Ctx {
  std::unique_ptr<crypto::Provider> provider = crypto::make_openssl_provider();
  client::UdpTransport transport;
  std::unique_ptr<client::GroupMember> member;
  Out out;
  explicit Ctx(const GroupArgs& a) : out{a.json, a.show_secrets} {
    coap::Address kdc;
    if (!a.kdc_uri.empty()) kdc = address_of(base_uri(a.kdc_uri) + "/");
    member = std::make_unique<client::GroupMember>(*provider, transport, client::StateDir(a.state), a.group, kdc,
                                                   to_duration(a.timeout));
  }
  // A restarted KDC made the member prove freshness (RFC 8613 Appendix B.1.2): say so.
  ~Ctx() {
    if (member && member->echo_rounds())
      std::fprintf(stderr, "the KDC asked for an Echo round (restarted): %llu request(s) resent with Echo\n",
                   static_cast<unsigned long long>(member->echo_rounds()));
  }
};

std::string roles_json(const std::vector<std::string>& roles) {
  std::string s = "[";
  for (size_t i = 0; i < roles.size(); ++i) s += (i ? "," : "") + Json::quoted(roles[i]);
  return s + "]";
}

std::string join_roles(const std::vector<std::string>& roles) {
  std::string s;
  for (const auto& r : roles) s += (s.empty() ? "" : ",") + r;
  return s;
}

// keys_json / print_keys: num, Group ID, Sender ID (the master secret and salt
// only when asked).
Json keys_json(const char* op, const std::string& group, const client::GroupKeys& k, bool secrets) {
  Json j;
  j.str("op", op).boolean("ok", true).str("group", group).num("num", static_cast<int64_t>(k.num)).hex("group_id", k.group_id);
  if (k.sender_id) j.hex("sender_id", *k.sender_id);
  if (k.exp) j.num("exp", *k.exp);
  if (secrets) j.hex("master_secret", k.master_secret).hex("master_salt", k.master_salt);
  if (!k.pub_keys.empty()) {
    std::string arr = "[";
    for (size_t i = 0; i < k.pub_keys.size(); ++i)
      arr += std::string(i ? "," : "") + Json().hex("sender_id", k.pub_keys[i].sender_id).raw("roles", roles_json(k.pub_keys[i].roles)).text();
    j.raw("pub_keys", arr + "]");
  }
  return j;
}

void print_keys(const client::GroupKeys& k, bool secrets) {
  std::printf("num: %llu\n", static_cast<unsigned long long>(k.num));
  std::printf("Group ID: %s\n", to_hex(k.group_id).c_str());
  if (k.sender_id) std::printf("Sender ID: %s\n", to_hex(*k.sender_id).c_str());
  for (const auto& p : k.pub_keys)
    std::printf("public key of %s: %s\n", to_hex(p.sender_id).c_str(), join_roles(p.roles).c_str());
  if (secrets) {
    std::printf("Master Secret: %s\n", to_hex(k.master_secret).c_str());
    std::printf("Master Salt: %s\n", to_hex(k.master_salt).c_str());
  }
}

void run_join(const GroupArgs& a) {
  Ctx c(a);
  client::JoinConfig jc;
  jc.as = address_of(base_uri(a.as_uri) + "/");
  jc.id = hex_arg(a.id, "--id");
  jc.secret = hex_arg(a.secret, "--secret");
  jc.audience = a.audience;
  jc.roles = parse_roles(a.roles);
  if (!jc.roles) usage("--role is required");
  jc.control_path = a.control_path;
  jc.get_pub_keys = a.get_pub_keys;
  SystemRandom random;
  auto r = c.member->join(random, jc);
  if (!r) failed(c.out, "join", r.error());
  if (a.json) {
    keys_json("join", a.group, r->keys, a.show_secrets).str("node", r->node).str("location", r->location).print();
    return;
  }
  std::printf("joined %s as node %s (Location-Path %s)\n", a.group.c_str(), r->node.c_str(), r->location.c_str());
  print_keys(r->keys, a.show_secrets);
}

void run_keys(const GroupArgs& a) {
  Ctx c(a);
  auto k = a.node ? c.member->node_keys() : c.member->keys();
  if (!k) failed(c.out, "keys", k.error());
  if (a.json) return keys_json("keys", a.group, *k, a.show_secrets).print();
  print_keys(*k, a.show_secrets);
}

void run_pub_keys(const GroupArgs& a) {
  Ctx c(a);
  std::vector<Bytes> ids;
  for (const auto& s : a.ids) ids.push_back(hex_arg(s, "--id"));
  ace::RoleSet want = parse_roles(a.roles);
  auto keys = c.member->pub_keys(ids);
  if (!keys) failed(c.out, "pub-keys", keys.error());
  size_t shown = 0;
  std::string arr = "[";
  for (const auto& k : *keys) {
    // --role filters on the client: the -05 FETCH selects by member identifier only.
    if (want) {
      ace::RoleSet have = 0;
      for (const auto& r : k.roles) have |= ace::role_from_name(r);
      if (!(have & want)) continue;
    }
    if (a.json) {
      arr += std::string(shown ? "," : "") + Json().hex("sender_id", k.sender_id).raw("roles", roles_json(k.roles))
                 .num("crv", k.crv).hex("public_key", k.x).text();
    } else {
      std::printf("%s  %-20s %s\n", to_hex(k.sender_id).c_str(), join_roles(k.roles).c_str(), to_hex(k.x).c_str());
    }
    ++shown;
  }
  if (a.json) Json().str("op", "pub-keys").boolean("ok", true).str("group", a.group).raw("pub_keys", arr + "]").print();
  else if (!shown) std::printf("(no public keys)\n");
}

void run_policies(const GroupArgs& a) {
  Ctx c(a);
  auto p = c.member->policies();
  if (!p) failed(c.out, "policies", p.error());
  if (a.json) {
    std::string m = "{";
    for (size_t i = 0; i < p->size(); ++i)
      m += (i ? "," : "") + Json::quoted(std::to_string((*p)[i].label)) + ":" + std::to_string((*p)[i].value);
    Json().str("op", "policies").boolean("ok", true).str("group", a.group).raw("group_policies", m + "}").print();
    return;
  }
  for (const auto& x : *p) {
    const char* name = client::policy_name(x.label);
    std::printf("%lld %s: %lld\n", static_cast<long long>(x.label), *name ? name : "(unknown)",
                static_cast<long long>(x.value));
  }
}

void run_version(const GroupArgs& a) {
  Ctx c(a);
  auto v = c.member->version();
  if (!v) failed(c.out, "version", v.error());
  if (a.json) return Json().str("op", "version").boolean("ok", true).str("group", a.group).num("num", static_cast<int64_t>(*v)).print();
  std::printf("num: %llu\n", static_cast<unsigned long long>(*v));
}

void run_renew(const GroupArgs& a) {
  Ctx c(a);
  auto s = c.member->renew();
  if (!s) failed(c.out, "renew", s.error());
  if (a.json) return Json().str("op", "renew").boolean("ok", true).str("group", a.group).hex("sender_id", *s).print();
  std::printf("new Sender ID: %s\n", to_hex(*s).c_str());
}

void run_update_pub_key(const GroupArgs& a) {
  Ctx c(a);
  SystemRandom random;
  auto k = c.member->update_pub_key(random);
  if (!k) failed(c.out, "update-pub-key", k.error());
  if (a.json) return Json().str("op", "update-pub-key").boolean("ok", true).str("group", a.group).hex("public_key", k->x).print();
  std::printf("new public key: %s\n", to_hex(k->x).c_str());
}

void run_leave(const GroupArgs& a) {
  Ctx c(a);
  auto l = c.member->load();
  if (!l) failed(c.out, "leave", l.error());
  std::string node = c.member->session().node;
  auto r = c.member->leave();
  if (!r) failed(c.out, "leave", r.error());
  if (a.json) return Json().str("op", "leave").boolean("ok", true).str("group", a.group).str("node", node).print();
  std::printf("left %s (node %s)\n", a.group.c_str(), node.c_str());
}

void run_status(const GroupArgs& a) {
  client::StateDir state(a.state);
  Out o{a.json, a.show_secrets};
  auto k = state.load_keys(a.group);
  if (!k) failed(o, "status", k.error());
  auto s = state.load_session(a.group);
  if (a.json) {
    Json j = keys_json("status", a.group, k->keys, a.show_secrets);
    j.boolean("member", !k->left);
    if (s) j.str("node", s->node);
    return j.print();
  }
  std::printf("%s: %s\n", a.group.c_str(), k->left ? "left the group (this material is stale)" : ("member, node " + (s ? s->node : std::string("?"))).c_str());
  print_keys(k->keys, a.show_secrets);
}

void run_watch(const GroupArgs& a) {
  Ctx c(a);
  client::WatchOptions w;
  w.duration = a.duration > 0 ? std::optional<Duration>(to_duration(a.duration)) : std::nullopt;
  w.max_updates = a.count;
  if (a.poll > 0) w.poll = to_duration(a.poll);
  w.control = !a.listen.empty();
  if (w.control) {
    auto addr = coap::Address::parse(a.listen);
    if (!addr) usage("--listen ADDRESS:PORT");
    w.listen = *addr;
  }
  auto r = client::watch(*c.member, c.transport, w, [&](const client::Update& u) {
    if (a.json) {
      Json j = keys_json("watch", a.group, u.keys, a.show_secrets);
      j.str("via", u.via);
      if (!u.reason.empty()) j.str("reason", u.reason);
      if (u.evicted) j.boolean("evicted", true);
      j.print();
    } else if (u.evicted) {
      std::printf("%s: evicted by the KDC (DELETE at the control path)\n", a.group.c_str());
    } else {
      std::printf("%s: version %llu, Group ID %s%s%s (%s)\n", a.group.c_str(), static_cast<unsigned long long>(u.keys.num),
                  to_hex(u.keys.group_id).c_str(), u.reason.empty() ? "" : ", reason ", u.reason.c_str(), u.via.c_str());
    }
    std::fflush(stdout);
  });
  if (!r) failed(c.out, "watch", r.error());
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
  tok->add_flag("--json", args->json, "one JSON object instead of text");
  tok->add_option("--out", args->out, "also save the access token (raw bytes) to this file");
  tok->callback([args] { run_token(*args); });

  auto pargs = std::make_shared<PostArgs>();
  auto* pt = cl->add_subcommand("post-token", "post a saved access token to a KDC's /authz-info and print the answer");
  pt->add_option("uri", pargs->uri, "the KDC's /authz-info, coap://host[:port]/authz-info")->required();
  pt->add_option("--token", pargs->token_file, "file with the access token (raw bytes, e.g. from token --out)")->required();
  pt->add_option("--recipient-id", pargs->recipient_id, "the client's Recipient ID with the KDC (hex, default 42)");
  pt->add_option("--timeout", pargs->timeout, "seconds to wait (default 10)");
  pt->add_flag("--json", pargs->json, "one JSON object instead of text");
  pt->callback([pargs] { run_post_token(*pargs); });

  auto g = std::make_shared<GroupArgs>();
  struct Sub {
    const char* name;
    const char* help;
    void (*fn)(const GroupArgs&);
  };
  const Sub subs[] = {
      {"join", "get a token, post it to the KDC and join a group (fresh Ed25519 key)", run_join},
      {"keys", "get the group's current keying material (GET /ace-group/GROUP; --node: nodes/NODE)", run_keys},
      {"pub-keys", "get the members' public keys (GET, or FETCH with --id SENDERID...)", run_pub_keys},
      {"policies", "get the group policies (GET /ace-group/GROUP/policies)", run_policies},
      {"version", "get the version of the keying material (GET /ace-group/GROUP/ctx-num)", run_version},
      {"renew", "get a new Sender ID (PUT /ace-group/GROUP/nodes/NODE)", run_renew},
      {"update-pub-key", "a fresh key pair, posted with proof of possession (POST nodes/NODE/pub-key)", run_update_pub_key},
      {"leave", "leave the group (DELETE /ace-group/GROUP/nodes/NODE)", run_leave},
      {"status", "show the keying material stored in --state (no network)", run_status},
      {"watch", "observe nodes/NODE (or with --listen serve the control path) and print each rekey", run_watch},
  };
  for (const Sub& s : subs) {
    auto* sc = cl->add_subcommand(s.name, s.help);
    const std::string n = s.name;
    if (n == "join") {
      sc->add_option("--as", g->as_uri, "the AS, coap://host[:port]")->required();
      sc->add_option("--id", g->id, "the client's OSCORE Sender ID with the AS (hex)")->required();
      sc->add_option("--secret", g->secret, "the client-AS OSCORE Master Secret (hex)")->required();
      sc->add_option("--role", g->roles, "requester, responder, monitor (repeatable or comma-separated)")->required();
      sc->add_option("--audience", g->audience, "the KDC's audience (default kdc)");
      sc->add_option("--control-path", g->control_path, "a path at this client where the KDC may POST new keys (control_path)");
      sc->add_flag("--get-pub-keys", g->get_pub_keys, "ask for the members' public keys in the response");
    }
    if (n == "pub-keys") {
      sc->add_option("--id", g->ids, "only these members (Sender IDs, hex; FETCH)");
      sc->add_option("--role", g->roles, "only members with one of these roles (filtered here)");
    }
    if (n == "keys") sc->add_flag("--node", g->node, "GET nodes/NODE: also the member's own Sender ID");
    if (n == "watch") {
      sc->add_option("--duration", g->duration, "stop after this many seconds (default: run until killed)");
      sc->add_option("--count", g->count, "stop after this many updates");
      sc->add_option("--listen", g->listen, "serve the control path on ADDRESS:PORT instead of observing");
      sc->add_option("--poll", g->poll, "also poll nodes/NODE every SECONDS (the group's key update check interval)");
    }
    if (n != "status") sc->add_option("--kdc", g->kdc_uri, "the KDC, coap://host[:port]")->required();
    sc->add_option("--group", g->group, "GROUPNAME")->required();
    sc->add_option("--state", g->state, "the client's state directory (default $ACEKDC_STATE or ~/.local/state/acekdc)");
    if (n != "status") sc->add_option("--timeout", g->timeout, "seconds to wait for each answer (default 10)");
    sc->add_flag("--json", g->json, "one JSON object per result instead of text");
    if (n == "join" || n == "keys" || n == "status" || n == "watch")
      sc->add_flag("--show-secrets", g->show_secrets, "also print the group's master secret and salt");
    auto fn = s.fn;
    sc->callback([g, fn] { fn(*g); });
  }
});

}  // namespace
}  // namespace acekdc::app
