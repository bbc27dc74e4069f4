// acekdc serve: the ACE endpoints over CoAP/UDP: an AS (/token, /introspect, OSCORE-
// protected with a pre-established context per client) and a KDC's /authz-info, in one
// process (ace::AceCoapGate behind a coap::Endpoint).
//
//   acekdc serve --audience kdc --shared-key 00..0f
//       --client client1:01:SECRET_HEX --grant client1:g1:requester,responder
//
// The pre-established client-AS context (RFC 9203 §5 leaves it open): Master Secret =
// SECRET, no salt, no ID Context; the client's Sender ID is the given hex ID, the AS's
// Sender ID is empty.
#include <csignal>
#include <cstdio>
#include <memory>
#include <sstream>

#include "ace/coap_gate.h"
#include "acekdc/command.h"
#include "coap/endpoint.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "io/udp.h"

namespace acekdc::app {
namespace {

struct ServeArgs {
  std::string listen = "[::]:5683";
  std::string audience = "kdc";
  std::string issuer = "acekdc-as";
  std::string shared_key;
  std::vector<std::string> clients;  // NAME:ID_HEX:SECRET_HEX
  std::vector<std::string> grants;   // NAME:GROUP:role[,role]
  int64_t lifetime = 3600;
};

io::Loop* g_loop = nullptr;
void on_signal(int) {
  if (g_loop) g_loop->stop();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitUsage);
}

void run(const ServeArgs& a) {
  auto provider = crypto::make_openssl_provider();
  auto key = from_hex(a.shared_key);
  if (!key || key->size() != 16) usage("--shared-key must be 16 bytes of hex (AES-CCM-16-64-128)");
  cose::CoseKey shared = cose::CoseKey::symmetric(*key, {}, cp::alg::kAES_CCM_16_64_128);

  ace::AsPolicy pol;
  pol.issuer = a.issuer;
  ace::AudiencePolicy aud;
  aud.name = a.audience;
  aud.shared_key = shared;
  pol.audiences = {aud};
  ace::AuthzInfoConfig kcfg;
  kcfg.audience = a.audience;
  kcfg.issuer = a.issuer;
  kcfg.as_keys.keys.push_back(shared);

  struct PeerSpec {
    std::string name;
    Bytes id;
    Bytes secret;
  };
  std::vector<PeerSpec> peers;
  for (const auto& c : a.clients) {
    auto parts = split(c, ':');
    if (parts.size() != 3) usage("--client NAME:ID_HEX:SECRET_HEX: " + c);
    auto id = from_hex(parts[1]);
    auto secret = from_hex(parts[2]);
    if (!id || id->empty() || id->size() > 7 || !secret || secret->empty()) usage("--client: bad ID or secret");
    peers.push_back(PeerSpec{parts[0], *id, *secret});
    ace::ClientPolicy cp_;
    cp_.id = parts[0];
    cp_.max_lifetime = a.lifetime;
    pol.clients.push_back(cp_);
  }
  for (const auto& g : a.grants) {
    auto parts = split(g, ':');
    if (parts.size() != 3) usage("--grant NAME:GROUP:role[,role]: " + g);
    ace::ClientPolicy* cpol = nullptr;
    for (auto& c : pol.clients)
      if (c.id == parts[0]) cpol = &c;
    if (!cpol) usage("--grant for an unknown client: " + parts[0]);
    ace::RoleSet roles = 0;
    for (const auto& r : split(parts[2], ',')) {
      ace::RoleSet bit = ace::role_from_name(r);
      if (!bit) usage("unknown role: " + r);
      roles |= bit;
    }
    cpol->groups[parts[1]] |= roles;
    ace::GroupConfig gc;
    gc.sign_info.sign_alg = int64_t{cp::alg::kEdDSA};
    gc.sign_info.sign_parameters = cbor::Value::array({cbor::Value::integer(cp::kty::kOKP)});
    gc.sign_info.sign_key_parameters =
        cbor::Value::array({cbor::Value::integer(cp::kty::kOKP), cbor::Value::integer(cp::crv::kEd25519)});
    gc.pub_key_enc = cp::gc::kPubKeyEncCoseKey;
    kcfg.groups[parts[1]] = gc;
  }

  SystemClock clock;
  SystemRandom random;
  ace::AuthorizationServer as(*provider, random, pol);
  if (auto v = as.validate(); !v.empty()) usage(v);
  ace::MemoryTokenStore store;
  ace::AuthzInfo kdc(*provider, random, store, kcfg);
  ace::AceCoapGate gate(*provider);
  gate.serve_as(as);
  gate.serve_kdc(kdc);
  for (const auto& p : peers) {
    oscore::ContextConfig cfg;
    cfg.params.master_secret = p.secret;
    cfg.params.sender_id = {};
    cfg.params.recipient_id = p.id;
    auto ctx = oscore::Context::create(*provider, std::move(cfg));
    if (!ctx) usage(std::string("client context: ") + oscore::to_string(ctx.error()));
    gate.add_peer(p.name, std::move(*ctx));
  }

  auto addr = coap::Address::parse(a.listen);
  if (!addr) usage("bad --listen address: " + a.listen);
  coap::Endpoint ep(clock, random);
  ep.set_request_handler([&](coap::RequestContext& ctx) {
    coap::Message req = coap::Message::from_view(ctx.request);
    auto datagram = req.encode();
    if (!datagram) return;
    Bytes out = gate.handle(*datagram, clock.unix_time());
    auto resp = coap::Message::parse(out);
    if (!resp) return;
    ctx.response.code = resp->code;
    for (const auto& o : resp->options()) ctx.response.add_option(o.number, o.value);
    ctx.response.payload = std::move(resp->payload);
    for (const auto& gone : gate.purge(clock.unix_time()))
      std::fprintf(stderr, "context %s dropped (tokens expired)\n", to_hex(gone.recipient_id).c_str());
  });
  auto sock = io::UdpSocket::bind(*addr);
  if (!sock) {
    std::fprintf(stderr, "error: %s %s\n", io::to_string(sock.error()), a.listen.c_str());
    fail_with(kExitFailure);
  }
  std::fprintf(stderr, "ACE AS + /authz-info (audience %s) listening on %s\n", a.audience.c_str(),
               sock->local_address().to_string().c_str());
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  g_loop = &loop;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  loop.run();
  g_loop = nullptr;
}

Registrar reg("serve", [](CLI::App& root) {
  auto args = std::make_shared<ServeArgs>();
  auto* sub = root.add_subcommand("serve", "ACE AS (/token, /introspect over OSCORE) and KDC /authz-info over CoAP");
  sub->add_option("--listen", args->listen, "address:port (default [::]:5683)");
  sub->add_option("--audience", args->audience, "the KDC's audience (default kdc)");
  sub->add_option("--issuer", args->issuer, "the AS's iss (default acekdc-as)");
  sub->add_option("--shared-key", args->shared_key, "AS-KDC token key, 16 bytes hex")->required();
  sub->add_option("--client", args->clients, "NAME:ID_HEX:SECRET_HEX (repeatable)")->required();
  sub->add_option("--grant", args->grants, "NAME:GROUP:role[,role] (repeatable)");
  sub->add_option("--lifetime", args->lifetime, "token lifetime in seconds (default 3600)");
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace acekdc::app
