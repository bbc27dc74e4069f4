// acekdc serve: the ACE AS (/token, /introspect over OSCORE with a pre-established
// context per client) and the KDC (/authz-info, then /ace-group/* over the OSCORE
// context derived there) over CoAP/UDP, in one process by default (docs/serve.md).
//
//   acekdc serve                      # the embedded demo configuration
//   acekdc serve --config FILE        # a TOML file (see --print-config)
//   acekdc serve --print-config       # print the embedded default and exit
//   acekdc serve --as-only | --kdc-only
//
// The older flags still work and replace the configured clients / key:
//   acekdc serve --audience kdc --shared-key 00..0f
//       --client client1:01:SECRET_HEX --grant client1:g1:requester,responder
//
// The pre-established client-AS context (RFC 9203 §5 leaves it open): Master Secret =
// SECRET, no salt, no ID Context; the client's Sender ID is its configured hex ID, the
// AS's Sender ID is empty.
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1

#include <toml++/toml.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <atomic>
#include <chrono>
#include <sstream>

#include "ace/as_peer_state.h"
#include "ace/coap_gate.h"
#include "ace/introspect_driver.h"
#include "ace/sqlite_token_store.h"
#include "acekdc/serve_push.h"
#include "acekdc/command.h"
#include "acekdc/kdc_setup.h"
#include "coap/endpoint.h"
#include "coap/uri.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/coap_binding.h"
#include "groupcomm/manager.h"
#include "groupcomm/token_inactive.h"
#include "io/client.h"
#include "io/sync_pipeline.h"
#include "io/udp.h"
#include "oscore/sequence_store.h"
#include "kdc/config.h"
#include "kdc/memory_store.h"
#include "kdc/sqlite_store.h"

namespace acekdc::app {
namespace {

// kServeDefaults: the serve-specific part of the embedded configuration; the KDC's
// [store] and [[group]] part is kdc::kDefaultConfig. Secrets here are DEMO ONLY.
constexpr const char* kServeDefaults = R"toml(# acekdc serve default configuration.
# WARNING: the token key and client secrets below are fixed DEMO values, public in
# the source code. Never use them outside a local demo.

[serve]
as_listen = "127.0.0.1:5683"    # the AS: /token, /introspect
kdc_listen = "127.0.0.1:5684"   # the KDC: /authz-info, /ace-group/*
# listen = "127.0.0.1:5683"     # instead: AS and KDC on one port (then a KDC-assigned
#                               # client ID may shadow an AS client ID: one client only)
state = "./acekdc-state"    # state directory; a relative [store] path lives in it

[as]
issuer = "acekdc-as"
token_lifetime = 3600       # seconds
token_key = "000102030405060708090a0b0c0d0e0f"   # AS-KDC AES-CCM-16-64-128 key, DEMO ONLY

[kdc]
audience = "kdc"

[[client]]
name = "member1"
id = "01"                   # the client's OSCORE Sender ID with the AS (hex)
secret = "6d656d626572312d64656d6f2d6f6e6c79"   # "member1-demo-only", DEMO ONLY
grants = ["demo-group:requester,responder"]

[[client]]
name = "member2"
id = "02"
secret = "6d656d626572322d64656d6f2d6f6e6c79"   # DEMO ONLY
grants = ["demo-group:requester,responder"]

[[client]]
name = "member3"
id = "03"
secret = "6d656d626572332d64656d6f2d6f6e6c79"   # DEMO ONLY
grants = ["demo-group:monitor"]

)toml";

struct ClientSpec {
  std::string name;
  Bytes id;
  Bytes secret;
  std::vector<std::string> grants;  // GROUP:role[,role]
};

struct ServeConfig {
  std::string listen;  // both roles on one port when set
  std::string as_listen;
  std::string kdc_listen;
  std::string state;
  std::string issuer;
  int64_t lifetime = 3600;
  Bytes token_key;
  std::string audience;
  // KDC -> AS introspection (RFC 9200 §5.9): the AS's /introspect URI, the KDC's
  // Sender ID and the Master Secret of the KDC-AS OSCORE context (AS Sender ID empty).
  std::string introspect;
  Bytes introspect_id;
  Bytes introspect_secret;
  std::string introspect_mode = "fallback";
  int64_t introspect_cache = 60;
  std::vector<ClientSpec> clients;
  kdc::KdcConfig kdc;
};

struct ServeArgs {
  std::string config_file;
  bool print_config = false;
  bool dump_state = false;
  bool as_only = false;
  bool kdc_only = false;
  std::string listen, as_listen, kdc_listen, audience, issuer, shared_key, state;
  std::vector<std::string> clients;  // NAME:ID_HEX:SECRET_HEX
  std::vector<std::string> grants;   // NAME:GROUP:role[,role]
  std::optional<int64_t> lifetime;
};

// g_stop ends every loop, also one not yet running when the signal arrives.
std::atomic<bool> g_stop{false};
io::Loop* g_loops[2] = {nullptr, nullptr};
void on_signal(int) {
  g_stop.store(true);
  for (io::Loop* l : g_loops)
    if (l) l->stop();
}

const char* reason_name(groupcomm::RekeyEvent::Reason r);

// KdcDuties: the KDC's durable store and timed duties, driven by the serve loop.
//  - Group commit: the first request of a loop round opens a store commit window
//    and schedules its commit at the round's time; io::Loop runs due timers after
//    draining every received datagram and before sending, so all the round's
//    store writes share one commit. With SQLite the commit is pipelined
//    (io::SyncPipeline): the round's COMMITs run without fsync on the loop's
//    thread, the fsyncs of the WAL files on a commit thread while the loop goes on
//    with the next round, and every datagram is held until the writes before it
//    are durable, so no response leaves before they are.
//    If a commit or an fsync fails the KDC drops the held responses and exits
//    (fail-stop: its in-memory OSCORE state is ahead of the store); restart it.
//  - GroupManager::tick when its next_deadline passes (expiry / batched rekeys,
//    eviction on token expiry, REQ13 retention).
struct KdcDuties {
  kdc::Store* store = nullptr;
  kdc::SqliteStore* sqlite = nullptr;  // `store` when it is SQLite (its commit is pipelined)
  // tokens: the /authz-info records (SQLite backend); written in the same window as
  // `store` and committed with it, so a token POST's 2.01 also waits for its fsync.
  ace::SqliteTokenStore* tokens = nullptr;
  groupcomm::GroupManager* mgr = nullptr;
  groupcomm::GroupCoapBinding* binding = nullptr;  // pushes the tick's rekeys
  ace::AceCoapGate* gate = nullptr;
  // Introspection at the AS (docs/ace.md): the KDC-AS context the loop's
  // IntrospectionDriver takes, and where to send (nullptr: no introspection).
  std::unique_ptr<oscore::Context> introspect_ctx;
  ace::IntrospectionDriverConfig introspect_cfg;
  uint64_t tick_timer = 0;
  int64_t tick_armed_at = groupcomm::GroupManager::kNever;
};

void run_tick(KdcDuties& d, coap::Endpoint& ep, Clock& clock);
void send_pushes(coap::Endpoint& ep, ace::AceCoapGate& gate);

// arm_tick (re)schedules the tick timer for the manager's next deadline.
void arm_tick(KdcDuties& d, coap::Endpoint& ep, Clock& clock) {
  const int64_t at = d.mgr->next_deadline();
  if (at == d.tick_armed_at) return;
  if (d.tick_timer) ep.cancel_timer(d.tick_timer);
  d.tick_timer = 0;
  d.tick_armed_at = at;
  if (at == groupcomm::GroupManager::kNever) return;
  const int64_t wait_s = std::max<int64_t>(0, at - clock.unix_time());
  d.tick_timer = ep.schedule(clock.now() + seconds(std::min<int64_t>(wait_s, 86400)),
                             [&d, &ep, &clock](TimePoint) {
                               d.tick_timer = 0;
                               d.tick_armed_at = groupcomm::GroupManager::kNever;
                               run_tick(d, ep, clock);
                             });
}

void run_tick(KdcDuties& d, coap::Endpoint& ep, Clock& clock) {
  const int64_t now = clock.unix_time();
  if (now >= d.mgr->next_deadline()) {
    groupcomm::TickReport t = d.mgr->tick(now);
    for (const auto& e : d.mgr->take_evictions())
      std::fprintf(stderr, "evicted: group %s node %s (tokens expired)\n", e.group.c_str(), e.node_name.c_str());
    if (d.binding) d.binding->poll(now);  // logs the rekeys and queues their pushes
    for (const auto& e : d.mgr->take_events())
      std::fprintf(stderr, "rekey: group %s version %llu (%s)\n", e.group.c_str(),
                   static_cast<unsigned long long>(e.num), reason_name(e.reason));
    if (t.num_purged) std::fprintf(stderr, "purged %zu departed keys / retired Sender IDs\n", t.num_purged);
    if (d.gate && d.gate->has_outgoing()) send_pushes(ep, *d.gate);
  }
  arm_tick(d, ep, clock);
}

// send_pushes sends the gate's queued pushes as CON messages (ace::PushDriver):
// Observe notifications (an observation whose notification is reset or times out
// is dropped) and the KDC's requests to members' control paths, whose answers are
// verified and checked (docs/serve.md, docs/kdc-state.md).
void send_pushes(coap::Endpoint& ep, ace::AceCoapGate& gate) { push_driver(ep, gate).send_all(); }

// serve_gate runs `gate` on a CoAP endpoint bound to `listen` until a signal (slot:
// this loop's index in g_loops). Returns false if the socket cannot be bound.
// as_state: the AS's peer contexts' replay windows (RFC 8613 Appendix B.1.2;
// nullptr: not the AS): the windows a loop round's requests changed are committed
// once at the round's end (AsPeerState::commit) and made durable by the same
// io::SyncPipeline as the KDC's stores (one fdatasync of as-peers/replay.slots per
// sync); the round's answers are held until then.
bool serve_gate(ace::AceCoapGate& gate, const coap::Address& addr, const std::string& listen, const char* what,
                const std::string& audience, int slot, KdcDuties* kdc = nullptr,
                ace::AsPeerState* as_state = nullptr) {
  SystemClock clock;
  SystemRandom random;
  coap::Endpoint ep(clock, random, kdc ? push_endpoint_config() : coap::EndpointConfig{});
  int64_t last_purge = 0;  // token expiry has a granularity of seconds: purge once per second
  // The KDC's group commit, pipelined: fsyncs on the commit thread, answers held.
  std::unique_ptr<io::SyncPipeline> sync;
  const bool kdc_durable = kdc && (kdc->sqlite || kdc->tokens);
  if (kdc_durable || as_state) {
    if (kdc_durable && kdc->sqlite) kdc->sqlite->set_deferred_sync(true);
    if (kdc_durable && kdc->tokens) kdc->tokens->set_deferred_sync(true);
    sync = std::make_unique<io::SyncPipeline>(
        [kdc, kdc_durable, as_state] {
          if (as_state && !as_state->sync_committed()) return false;
          if (!kdc_durable) return true;
          if (kdc->tokens && !kdc->tokens->sync_committed()) return false;
          return !kdc->sqlite || kdc->sqlite->sync_committed().has_value();
        },
        [kdc_durable] {
          std::fprintf(stderr, "fatal: %s fsync failed; exiting without answering\n",
                       kdc_durable ? "KDC store (or AS replay window)" : "AS replay window");
          std::fflush(stderr);
          std::_Exit(kExitFailure);
        });
    // A round's fsyncs under 1 ms run on the loop's thread (hand-offs would cost more).
    sync->set_inline_below(milliseconds(1));
  }
  // Introspection without blocking the loop: a token POST that needs the AS is
  // parked and answered (separate response) when the AS answered or timed out.
  std::unique_ptr<ace::IntrospectionDriver> introspection;
  if (kdc && kdc->introspect_ctx) {
    introspection = std::make_unique<ace::IntrospectionDriver>(ep, gate, std::move(kdc->introspect_ctx),
                                                               kdc->introspect_cfg);
    introspection->set_on_done([&](const ace::AceCoapGate::IntrospectionDone& d) {
      for (const auto& gone : d.dropped)
        std::fprintf(stderr, "context %s dropped (no active token left)\n", to_hex(gone.recipient_id).c_str());
      if (kdc->mgr) arm_tick(*kdc, ep, clock);
      if (gate.has_outgoing()) ep.schedule(clock.now() + microseconds(1), [&](TimePoint) { send_pushes(ep, gate); });
    });
  }
  // commit_round commits the open window of both stores (the fsyncs follow on the
  // pipeline's thread); while a sync runs the window stays open and is committed
  // when it returned (on_durable): one COMMIT per fsync.
  // The AS's round: its windows are committed at the round's end (with the KDC's
  // stores when both share this loop), or when the sync in flight returned.
  bool as_round_open = false;
  auto commit_as_windows = [&]() {
    as_round_open = false;
    if (auto r = as_state->commit(); !r) {
      std::fprintf(stderr, "fatal: AS replay window not written (%s); exiting without answering\n",
                   oscore::to_string(r.error()));
      std::fflush(stderr);
      ep.clear_transmits();
      std::_Exit(kExitFailure);
    }
  };
  auto commit_round = [&]() {
    if (as_round_open) commit_as_windows();
    if (kdc->tokens) {
      if (auto r = kdc->tokens->commit_batch(); !r) {
        std::fprintf(stderr, "fatal: KDC token store commit failed (%s); exiting without answering\n",
                     ace::to_string(r.error()));
        std::fflush(stderr);
        ep.clear_transmits();
        std::_Exit(kExitFailure);
      }
    }
    if (auto r = kdc->store->commit_batch(); !r) {
      std::fprintf(stderr, "fatal: KDC store commit failed (%s); exiting without answering\n",
                   kdc::to_string(r.error()));
      std::fflush(stderr);
      ep.clear_transmits();
      std::_Exit(kExitFailure);
    }
    if (sync) sync->mark_unsynced();  // this round's answers wait for the fsyncs
    if (kdc->mgr) arm_tick(*kdc, ep, clock);  // a join may have brought a deadline forward
  };
  auto commit_as_round = [&]() {
    commit_as_windows();
    sync->mark_unsynced();  // this round's answers wait for the fdatasync
  };
  if (sync) sync->set_on_durable([&] {
    if (kdc && kdc->store->in_batch()) commit_round();
    if (as_round_open) commit_as_round();
  });
  Bytes gate_out;  // the gate's answer to the request being handled (sent after the handler)
  ep.set_request_handler([&](coap::RequestContext& ctx) {
    if (kdc && kdc->store && !kdc->store->in_batch() && kdc->store->begin_batch()) {
      if (kdc->tokens) kdc->tokens->begin_batch();
      if (sync) sync->open_round();
      ep.schedule(ctx.now, [&](TimePoint) {
        if (!(sync && sync->sync_in_flight())) commit_round();  // else on_durable commits it
      });
    }
    // The received datagram goes to the gate as it is (re-encoded only for a request
    // the endpoint built itself, which has none).
    ByteView in = ctx.datagram;
    Bytes rebuilt;
    if (in.empty()) {
      auto d = coap::Message::from_view(ctx.request).encode();
      if (!d) return;
      rebuilt = std::move(*d);
      in = rebuilt;
    }
    gate_out = gate.handle(in, clock.unix_time(), ctx.peer);
    const Bytes& out = gate_out;
    if (as_state && !as_round_open) {  // the windows this round changes: one commit at its end
      as_round_open = true;
      sync->open_round();
      ep.schedule(ctx.now, [&](TimePoint) {
        if (as_round_open && !sync->sync_in_flight()) commit_as_round();  // else on_durable commits it
      });
    }
    if (introspection) {
      introspection->answer(ctx, out);  // or deferred: parked for the AS
    } else {
      // The gate's answer is a whole message echoing MID and token: it goes out as
      // it is (the endpoint sets type and MID, keeps it for a duplicate CON).
      auto resp = coap::MessageView::parse(out);
      if (!resp) return;  // nothing sent (a CON gets an empty ACK)
      ctx.response.code = resp->code;
      ctx.encoded_response = out;
    }
    if (const int64_t now = clock.unix_time(); now != last_purge) {  // a purge walks every client record
      last_purge = now;
      for (const auto& gone : gate.purge(now))
        std::fprintf(stderr, "context %s dropped (no active token left)\n", to_hex(gone.recipient_id).c_str());
    }
    if (introspection) introspection->pump();  // re-checks purge queued
    // Key push: the notifications / control-path requests this request caused, sent
    // just after the round (and its store commit).
    if (gate.has_outgoing()) ep.schedule(ctx.now + microseconds(1), [&](TimePoint) { send_pushes(ep, gate); });
  });
  auto sock = io::UdpSocket::bind(addr);
  if (!sock) {
    std::fprintf(stderr, "error: %s %s\n", io::to_string(sock.error()), listen.c_str());
    return false;
  }
  std::fprintf(stderr, "%s (audience %s) listening on %s\n", what, audience.c_str(),
               sock->local_address().to_string().c_str());
  std::fflush(stderr);
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  if (sync) loop.set_sync_pipeline(sync.get());
  if (kdc && kdc->mgr) run_tick(*kdc, ep, clock);  // the first tick checks every group
  if (introspection) introspection->start_rechecks();
  if (kdc && gate.has_outgoing()) send_pushes(ep, gate);  // notifications of restored observations
  g_loops[slot] = &loop;
  loop.run([] { return g_stop.load(); });
  g_loops[slot] = nullptr;
  return true;
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

std::string default_config_text() { return std::string(kServeDefaults) + kdc::kDefaultConfig; }

// str / int_of read an optional key of a table; a wrong type is a usage error.
std::optional<std::string> str(const toml::table& t, const char* where, const char* key) {
  const toml::node* n = t.get(key);
  if (!n) return std::nullopt;
  auto v = n->value<std::string>();
  if (!n->is_string() || !v) usage(std::string("config: ") + where + "." + key + " must be a string");
  return *v;
}
std::optional<int64_t> int_of(const toml::table& t, const char* where, const char* key) {
  const toml::node* n = t.get(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) usage(std::string("config: ") + where + "." + key + " must be an integer");
  return n->value<int64_t>();
}
void only_keys(const toml::table& t, const char* where, std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (const char* want : keys) ok = ok || k.str() == want;
    if (!ok) usage(std::string("config: unknown key ") + where + "." + std::string(k.str()));
  }
}
Bytes hex_or_die(const std::string& s, const std::string& what) {
  auto b = from_hex(s);
  if (!b) usage(what + " must be hex");  // the value itself may be a secret: not echoed
  return *b;
}

// parse_serve_config reads the serve tables ([serve], [as], [kdc], [[client]]) and
// hands the rest ([store], [[group]]) to kdc::parse_config.
ServeConfig parse_serve_config(const std::string& text) {
  toml::parse_result parsed = toml::parse(text);
  if (!parsed) {
    const auto& e = parsed.error();
    usage("config line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  toml::table root = std::move(parsed).table();
  ServeConfig c;
  c.as_listen = "127.0.0.1:5683";
  c.kdc_listen = "127.0.0.1:5684";
  c.state = "./acekdc-state";
  c.issuer = "acekdc-as";
  c.audience = "kdc";
  auto table = [&](const char* name) -> const toml::table* {
    const toml::node* n = root.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) usage(std::string("config: [") + name + "] must be a table");
    return n->as_table();
  };
  if (const auto* s = table("serve")) {
    only_keys(*s, "serve", {"listen", "as_listen", "kdc_listen", "state"});
    if (auto v = str(*s, "serve", "listen")) c.listen = *v;
    if (auto v = str(*s, "serve", "as_listen")) c.as_listen = *v;
    if (auto v = str(*s, "serve", "kdc_listen")) c.kdc_listen = *v;
    if (auto v = str(*s, "serve", "state")) c.state = *v;
  }
  if (const auto* a = table("as")) {
    only_keys(*a, "as", {"issuer", "token_lifetime", "token_key"});
    if (auto v = str(*a, "as", "issuer")) c.issuer = *v;
    if (auto v = int_of(*a, "as", "token_lifetime")) c.lifetime = *v;
    if (auto v = str(*a, "as", "token_key")) c.token_key = hex_or_die(*v, "as.token_key");
  }
  if (const auto* k = table("kdc")) {
    only_keys(*k, "kdc", {"audience", "introspect", "introspect_id", "introspect_secret", "introspect_mode",
                          "introspect_cache"});
    if (auto v = str(*k, "kdc", "audience")) c.audience = *v;
    if (auto v = str(*k, "kdc", "introspect")) c.introspect = *v;
    if (auto v = str(*k, "kdc", "introspect_id")) c.introspect_id = hex_or_die(*v, "kdc.introspect_id");
    if (auto v = str(*k, "kdc", "introspect_secret")) c.introspect_secret = hex_or_die(*v, "kdc.introspect_secret");
    if (auto v = str(*k, "kdc", "introspect_mode")) c.introspect_mode = *v;
    if (auto v = int_of(*k, "kdc", "introspect_cache")) c.introspect_cache = *v;
    if (c.introspect_mode != "fallback" && c.introspect_mode != "always")
      usage("config: kdc.introspect_mode must be \"fallback\" or \"always\"");
    if (c.introspect_cache < 0) usage("config: kdc.introspect_cache must be >= 0");
  }
  if (const toml::node* n = root.get("client")) {
    const toml::array* arr = n->as_array();
    if (!arr) usage("config: client must be an array of tables ([[client]])");
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::table* t = (*arr)[i].as_table();
      std::string where = "client[" + std::to_string(i) + "]";
      if (!t) usage("config: " + where + " must be a table");
      only_keys(*t, where.c_str(), {"name", "id", "secret", "grants"});
      ClientSpec cs;
      auto name = str(*t, where.c_str(), "name");
      auto id = str(*t, where.c_str(), "id");
      auto secret = str(*t, where.c_str(), "secret");
      if (!name || !id || !secret) usage("config: " + where + " needs name, id and secret");
      cs.name = *name;
      cs.id = hex_or_die(*id, where + ".id");
      cs.secret = hex_or_die(*secret, where + ".secret");
      if (const toml::node* g = t->get("grants")) {
        const toml::array* ga = g->as_array();
        if (!ga) usage("config: " + where + ".grants must be an array of strings");
        for (const auto& e : *ga) {
          auto v = e.value<std::string>();
          if (!e.is_string() || !v) usage("config: " + where + ".grants must be an array of strings");
          cs.grants.push_back(*v);
        }
      }
      c.clients.push_back(std::move(cs));
    }
  }
  for (const char* k : {"serve", "as", "kdc", "client"}) root.erase(k);
  std::ostringstream rest;
  rest << root;
  auto kc = kdc::parse_config(rest.str());
  if (!kc) usage("config: " + kc.error().message);
  c.kdc = std::move(*kc);
  return c;
}

// make_introspection: the KDC's side of the KDC-AS OSCORE context (its Sender ID
// `introspect_id`, the AS's empty; Sender Sequence Numbers reserved in
// STATE/kdc-as-seq, `seq` must outlive the context) and where the loop's
// IntrospectionDriver sends (5 s per introspection, re-checks at most every 10 s).
std::unique_ptr<oscore::Context> make_introspection(crypto::Provider& provider, const ServeConfig& c,
                                                    std::unique_ptr<oscore::FileSequenceStore>& seq,
                                                    ace::IntrospectionDriverConfig& out_cfg) {
  auto u = coap::Uri::parse(c.introspect);
  if (!u) usage("config: kdc.introspect is not a coap:// URI");
  auto peer = io::resolve(u->host, u->port);
  if (!peer) usage("config: cannot resolve kdc.introspect");
  if (c.introspect_id.empty() || c.introspect_id.size() > 7 || c.introspect_secret.empty())
    usage("config: kdc.introspect needs introspect_id (1-7 bytes hex) and introspect_secret");
  out_cfg.as = *peer;
  out_cfg.path = u->path;
  out_cfg.timeout = std::chrono::seconds(5);
  out_cfg.recheck_every = std::chrono::seconds(std::clamp<int64_t>(c.introspect_cache, 1, 10));
  std::filesystem::path dir = std::filesystem::path(c.state) / "kdc-as-seq";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  seq = std::make_unique<oscore::FileSequenceStore>(dir.string());
  oscore::ContextConfig cfg;
  cfg.params.master_secret = c.introspect_secret;
  cfg.params.sender_id = c.introspect_id;
  cfg.params.recipient_id = {};
  cfg.store = seq.get();
  cfg.seq_chunk = 64;
  auto ctx = oscore::Context::create(provider, std::move(cfg));
  if (!ctx) usage(std::string("KDC-AS context: ") + oscore::to_string(ctx.error()));
  return std::move(*ctx);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* reason_name(groupcomm::RekeyEvent::Reason r) {
  switch (r) {
    case groupcomm::RekeyEvent::Reason::kJoin: return "join";
    case groupcomm::RekeyEvent::Reason::kLeave: return "leave";
    case groupcomm::RekeyEvent::Reason::kRenewal: return "renewal";
    case groupcomm::RekeyEvent::Reason::kManual: return "manual";
    case groupcomm::RekeyEvent::Reason::kExpiry: return "expiry";
    case groupcomm::RekeyEvent::Reason::kBatched: return "batched";
    case groupcomm::RekeyEvent::Reason::kEviction: return "eviction";
  }
  return "?";
}

// dump_state prints the stored groups, versions and members (no secrets) for
// scripts and tests (--dump-state: read-only, the KDC does not start).
void dump_state(kdc::Store& store) {
  auto names = store.list_groups();
  if (!names) {
    std::fprintf(stderr, "error: %s\n", kdc::to_string(names.error()));
    fail_with(kExitFailure);
  }
  for (const auto& name : *names) {
    auto g = store.load_group(name);
    if (!g) {
      std::fprintf(stderr, "error: group %s: %s\n", name.c_str(), kdc::to_string(g.error()));
      fail_with(kExitFailure);
    }
    std::printf("group %s num %llu group_id %s members %zu\n", name.c_str(),
                static_cast<unsigned long long>(g->key.num), to_hex(g->key.group_id).c_str(), g->members.size());
    for (const auto& [node, m] : g->members)
      std::printf("member %s %s sender_id %s\n", name.c_str(), node.c_str(), to_hex(m.sender_id).c_str());
  }
}

void run(const ServeArgs& a) {
  if (a.print_config) {
    std::fputs(default_config_text().c_str(), stdout);
    return;
  }
  if (a.as_only && a.kdc_only) usage("--as-only and --kdc-only exclude each other");
  ServeConfig c = parse_serve_config(a.config_file.empty() ? default_config_text() : read_file(a.config_file));
  if (!a.listen.empty()) c.listen = a.listen;
  if (!a.as_listen.empty()) c.as_listen = a.as_listen;
  if (!a.kdc_listen.empty()) c.kdc_listen = a.kdc_listen;
  if (!a.audience.empty()) c.audience = a.audience;
  if (!a.issuer.empty()) c.issuer = a.issuer;
  if (!a.state.empty()) c.state = a.state;
  if (a.lifetime) c.lifetime = *a.lifetime;
  if (!a.shared_key.empty()) c.token_key = hex_or_die(a.shared_key, "--shared-key");
  if (!a.clients.empty()) {
    c.clients.clear();
    for (const auto& s : a.clients) {
      auto parts = split(s, ':');
      if (parts.size() != 3) usage("--client NAME:ID_HEX:SECRET_HEX: " + parts[0]);
      c.clients.push_back(ClientSpec{parts[0], hex_or_die(parts[1], "--client ID"),
                                     hex_or_die(parts[2], "--client SECRET"), {}});
    }
  }
  for (const auto& g : a.grants) {
    auto parts = split(g, ':');
    if (parts.size() != 3) usage("--grant NAME:GROUP:role[,role]: " + g);
    ClientSpec* cs = nullptr;
    for (auto& x : c.clients)
      if (x.name == parts[0]) cs = &x;
    if (!cs) usage("--grant for an unknown client: " + parts[0]);
    cs->grants.push_back(parts[1] + ":" + parts[2]);
  }
  if (c.token_key.size() != 16) usage("the AS-KDC token key must be 16 bytes (AES-CCM-16-64-128)");

  auto provider = crypto::make_openssl_provider();
  cose::CoseKey shared = cose::CoseKey::symmetric(c.token_key, {}, cp::alg::kAES_CCM_16_64_128);
  ace::AsPolicy pol;
  pol.issuer = c.issuer;
  ace::AudiencePolicy aud;
  aud.name = c.audience;
  aud.shared_key = shared;
  pol.audiences = {aud};
  ace::AuthzInfoConfig kcfg;
  kcfg.audience = c.audience;
  kcfg.issuer = c.issuer;
  kcfg.as_keys.keys.push_back(shared);
  for (const auto& g : c.kdc.groups) kcfg.groups[g.name] = ace_group_config(g);

  for (const auto& cs : c.clients) {
    if (cs.id.empty() || cs.id.size() > 7 || cs.secret.empty()) usage("client " + cs.name + ": bad id or secret");
    ace::ClientPolicy cpol;
    cpol.id = cs.name;
    cpol.max_lifetime = c.lifetime;
    for (const auto& g : cs.grants) {
      auto colon = g.find(':');
      if (colon == std::string::npos) usage("grant GROUP:role[,role]: " + g);
      std::string group = g.substr(0, colon);
      ace::RoleSet roles = 0;
      for (const auto& r : split(g.substr(colon + 1), ',')) {
        ace::RoleSet bit = ace::role_from_name(r);
        if (!bit) usage("unknown role: " + r);
        roles |= bit;
      }
      cpol.groups[group] |= roles;
      // A group granted but not configured at the KDC still gets token POSTs (with the
      // profile's default EdDSA sign_info); /ace-group answers 4.04 for it.
      if (!kcfg.groups.count(group)) {
        kdc::GroupConfig def;
        def.name = group;
        kcfg.groups[group] = ace_group_config(def);
      }
    }
    pol.clients.push_back(cpol);
  }

  SystemClock clock;
  // The KDC's draws (nonce2, rsnonce, node names, new keying material): OpenSSL's
  // CSPRNG, a DRBG seeded by the OS that draws without a system call per request.
  Random& random = provider->random();
  // The AS gets its own provider and RNG: it may run in its own thread.
  auto as_provider = crypto::make_openssl_provider();
  SystemRandom as_random;
  ace::AuthorizationServer as(*as_provider, as_random, pol);
  if (auto v = as.validate(); !v.empty()) usage(v);
  // The /authz-info state: with the SQLite KDC store it lives in STATE/kdc-tokens.sqlite
  // (tokens and the OSCORE contexts derived from them) and the KDC contexts' sequence
  // numbers in STATE/kdc-seq, so clients keep their contexts over a restart.
  ace::MemoryTokenStore memory_tokens;
  std::unique_ptr<ace::SqliteTokenStore> sqlite_tokens;
  std::unique_ptr<oscore::FileSequenceStore> kdc_seq;
  // Reserves the KDC contexts' next chunks ahead, off the send path (declared
  // after kdc_seq: its destructor writes what is queued before the store goes).
  std::unique_ptr<oscore::ThreadSequenceWriter> kdc_seq_writer;
  if (!a.as_only && c.kdc.store.backend != kdc::StoreConfig::Backend::kMemory) {
    std::filesystem::path dir(c.state);
    std::error_code ec;
    std::filesystem::create_directories(dir / "kdc-seq", ec);
    auto s = ace::SqliteTokenStore::open((dir / "kdc-tokens.sqlite").string());
    if (!s) {
      std::fprintf(stderr, "error: cannot open %s: %s\n", (dir / "kdc-tokens.sqlite").string().c_str(),
                   ace::to_string(s.error()));
      fail_with(kExitFailure);
    }
    sqlite_tokens = std::move(*s);
    // Indexed: this KDC alone writes kdc-seq, and a new client's context then costs
    // no open() of a file that does not exist.
    kdc_seq = std::make_unique<oscore::FileSequenceStore>((dir / "kdc-seq").string(), true);
    kdc_seq_writer = std::make_unique<oscore::ThreadSequenceWriter>();
    kdc_seq->set_writer(kdc_seq_writer.get(), &clock);  // chunks sized by rate
  }
  ace::TokenStore& tokens = sqlite_tokens ? static_cast<ace::TokenStore&>(*sqlite_tokens) : memory_tokens;
  ace::AuthzInfo authz(*provider, random, tokens, kcfg);
  ace::AceCoapGate gate(*provider);
  std::unique_ptr<oscore::FileSequenceStore> kdc_as_seq;
  std::unique_ptr<oscore::Context> introspect_ctx;
  ace::IntrospectionDriverConfig introspect_cfg;
  if (!a.as_only && !a.kdc_only && !c.listen.empty() && !c.introspect.empty())
    usage("kdc.introspect needs the AS on its own port or process (not with listen / --listen)");
  if (!a.as_only && !c.introspect.empty()) {
    introspect_ctx = make_introspection(*provider, c, kdc_as_seq, introspect_cfg);
    ace::IntrospectionConfig ic;
    ic.mode = c.introspect_mode == "always" ? ace::IntrospectMode::kAlways : ace::IntrospectMode::kFallback;
    ic.cache_ttl = c.introspect_cache;
    authz.set_deferred_introspection(ic);  // the KDC loop's IntrospectionDriver talks to the AS
    std::fprintf(stderr, "KDC introspects %s tokens at %s\n", c.introspect_mode == "always" ? "all" : "unverifiable",
                 c.introspect.c_str());
  }
  // The AS's peer contexts (clients, the KDC) keep their sequence numbers and replay
  // windows in STATE/as-peers (RFC 8613 Appendix B.1).
  std::unique_ptr<ace::AsPeerState> as_state;
  if (!a.kdc_only) as_state = std::make_unique<ace::AsPeerState>((std::filesystem::path(c.state) / "as-peers").string());
  // The AS's peer contexts reserve ahead through their own writer (the AS may run
  // in its own thread; declared after as_state, so it is drained before it).
  std::unique_ptr<oscore::ThreadSequenceWriter> as_seq_writer;
  if (!a.kdc_only) as_seq_writer = std::make_unique<oscore::ThreadSequenceWriter>();
  // The KDC as an introspection client of the AS (identity = its audience).
  auto add_rs_peer = [&](ace::AceCoapGate& g, crypto::Provider& prov) {
    if (c.introspect_secret.empty()) return;
    for (const auto& p : c.clients)
      if (p.id == c.introspect_id) usage("kdc.introspect_id equals the ID of client " + p.name);
    oscore::ContextConfig cfg;
    cfg.params.master_secret = c.introspect_secret;
    cfg.params.recipient_id = c.introspect_id;
    cfg.seq_writer = as_seq_writer.get();
    cfg.clock = &clock;
    auto ctx = as_state->make_context(prov, std::move(cfg), as_random);
    if (!ctx) usage(std::string("KDC-AS context: ") + oscore::to_string(ctx.error()));
    g.add_peer(c.audience, std::move(*ctx));
  };

  std::unique_ptr<kdc::Store> store;
  std::unique_ptr<groupcomm::GroupManager> mgr;
  std::unique_ptr<groupcomm::GroupCoapBinding> binding;
  std::unique_ptr<ace::SqlitePushStore> push_store;
  KdcDuties duties;
  if (!a.as_only) {
    gate.serve_kdc(authz);
    if (kdc_seq) {
      gate.set_sequence_store(kdc_seq.get());
      // Observations, the contexts' peer addresses and the Observe values in
      // STATE/kdc-push.sqlite (no secrets).
      auto ps = ace::SqlitePushStore::open((std::filesystem::path(c.state) / "kdc-push.sqlite").string());
      if (!ps) {
        std::fprintf(stderr, "error: cannot open %s/kdc-push.sqlite\n", c.state.c_str());
        fail_with(kExitFailure);
      }
      push_store = std::move(*ps);
      gate.set_push_store(push_store.get());
      size_t n = gate.restore_kdc_contexts(tokens);
      if (n) std::fprintf(stderr, "restored %zu client context(s) from /authz-info state\n", n);
    }
    if (c.kdc.store.backend == kdc::StoreConfig::Backend::kMemory) {
      store = std::make_unique<kdc::MemoryStore>();
    } else {
      std::filesystem::path p(c.kdc.store.path);
      if (p.is_relative()) p = std::filesystem::path(c.state) / p;
      std::error_code ec;
      std::filesystem::create_directories(p.parent_path(), ec);
      kdc::SqliteOptions sopts;
      sopts.cache_groups = true;  // the groups stay in memory (docs/kdc-state.md)
      auto s = kdc::SqliteStore::open(p.string(), sopts);
      if (!s) {
        std::fprintf(stderr, "error: cannot open the KDC store %s: %s\n", p.string().c_str(),
                     kdc::to_string(s.error()));
        fail_with(kExitFailure);
      }
      std::fprintf(stderr, "KDC store: %s\n", p.string().c_str());
      store = std::move(*s);
    }
    if (a.dump_state) {
      dump_state(*store);
      return;
    }
    int64_t now = clock.unix_time();
    for (const auto& g : c.kdc.groups) {
      if (store->load_group(g.name)) continue;  // kept as stored (keys, members, version)
      kdc::GroupKeyMaterial k = first_group_key(random, now, g);
      auto r = store->create_group(g, k);
      secure_zero(k.master_secret);
      if (!r) {
        std::fprintf(stderr, "error: cannot create group %s: %s\n", g.name.c_str(), kdc::to_string(r.error()));
        fail_with(kExitFailure);
      }
      std::fprintf(stderr, "group %s created (version 0, Group ID %s)\n", g.name.c_str(), to_hex(k.group_id).c_str());
    }
    mgr = std::make_unique<groupcomm::GroupManager>(*store, *provider, random);
    groupcomm::GroupCoapBinding::Observer obs;
    obs.on_rekey = [](const groupcomm::RekeyEvent& e, ByteView group_id) {
      std::fprintf(stderr, "rekey: group %s version %llu (%s), Group ID %s\n", e.group.c_str(),
                   static_cast<unsigned long long>(e.num), reason_name(e.reason), to_hex(group_id).c_str());
    };
    obs.on_request = [](const coap::Message& req, uint8_t code) {
      std::fprintf(stderr, "%s %s -> %s\n", coap::code_string(req.code).c_str(), req.uri_path().c_str(),
                   coap::code_string(code).c_str());
    };
    binding = std::make_unique<groupcomm::GroupCoapBinding>(authz, tokens, *store, *mgr, std::move(obs));
    binding->attach(gate);
    duties.store = store.get();
    duties.sqlite = dynamic_cast<kdc::SqliteStore*>(store.get());
    duties.tokens = sqlite_tokens.get();
    duties.mgr = mgr.get();
    duties.binding = binding.get();
    duties.gate = &gate;
    if (push_store) {  // Observe registrations of before the restart continue (docs/kdc-state.md)
      auto r = gate.restore_push_state();
      if (!r) std::fprintf(stderr, "warning: push state not restored: %s\n", ace::to_string(r.error()));
      if (r && *r)
        std::fprintf(stderr, "restored %zu observation(s); %zu fresh notification(s) queued\n", *r,
                     notify_restored(gate, *store));
      if (size_t n = binding->restore_control_paths())
        std::fprintf(stderr, "restored the control paths of %zu member(s)\n", n);
    }
    duties.introspect_ctx = std::move(introspect_ctx);
    duties.introspect_cfg = introspect_cfg;
    // A token the AS reports inactive (revoked): its member(s) leave their groups as
    // on expiry (rekey per policy, DELETE to a control_path), while the context that
    // carries the DELETE still exists; then the context goes if no token is left.
    authz.set_token_inactive_handler([&](const ace::ContextKey& k, const ace::StoredToken& t, bool dropped) {
      std::fprintf(stderr, "token %s of context %s inactive at the AS: removed%s\n", to_hex(t.cti).c_str(),
                   to_hex(k.recipient_id).c_str(), dropped ? " (context dropped)" : "");
      const int64_t now = clock.unix_time();
      auto r = groupcomm::evict_for_inactive_token(*duties.store, *duties.mgr, t.cti, now);
      if (!r) {
        std::fprintf(stderr, "error: eviction for the inactive token: %s\n", kdc::to_string(r.error()));
        return;
      }
      for (const auto& e : duties.mgr->take_evictions())
        std::fprintf(stderr, "evicted: group %s node %s (token inactive at the AS)\n", e.group.c_str(),
                     e.node_name.c_str());
      duties.binding->poll(now);  // logs the rekeys and queues their pushes (and the DELETE)
    });
  }
  if (!a.kdc_only && !c.listen.empty()) {
    gate.serve_as(as);
    for (const auto& p : c.clients) {
      oscore::ContextConfig cfg;
      cfg.params.master_secret = p.secret;
      cfg.params.sender_id = {};
      cfg.params.recipient_id = p.id;
      cfg.seq_writer = as_seq_writer.get();
      cfg.clock = &clock;
      auto ctx = as_state->make_context(*provider, std::move(cfg), as_random);
      if (!ctx) usage(std::string("client context: ") + oscore::to_string(ctx.error()));
      gate.add_peer(p.name, std::move(*ctx));
    }
    add_rs_peer(gate, *provider);
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (!c.listen.empty()) {  // one port for both roles
    auto addr = coap::Address::parse(c.listen);
    if (!addr) usage("bad listen address: " + c.listen);
    const char* what = a.as_only ? "ACE AS" : a.kdc_only ? "KDC (/authz-info, /ace-group)" : "ACE AS + KDC";
    if (!serve_gate(gate, *addr, c.listen, what, c.audience, 0, a.as_only ? nullptr : &duties, as_state.get()))
      fail_with(kExitFailure);
    return;
  }
  // Separate ports: the AS in its own thread with its own gate, provider and RNG (the
  // two roles share no state).
  auto as_addr = coap::Address::parse(c.as_listen);
  auto kdc_addr = coap::Address::parse(c.kdc_listen);
  if (!as_addr) usage("bad AS listen address: " + c.as_listen);
  if (!kdc_addr) usage("bad KDC listen address: " + c.kdc_listen);
  if (!a.as_only && !a.kdc_only && as_addr->to_string() == kdc_addr->to_string())
    usage("the AS and the KDC listen on the same address: use listen / --listen for one port");
  ace::AceCoapGate as_gate(*as_provider);
  if (!a.kdc_only) {
    as_gate.serve_as(as);
    for (const auto& p : c.clients) {
      oscore::ContextConfig cfg;
      cfg.params.master_secret = p.secret;
      cfg.params.recipient_id = p.id;
      cfg.seq_writer = as_seq_writer.get();
      cfg.clock = &clock;
      auto ctx = as_state->make_context(*as_provider, std::move(cfg), as_random);
      if (!ctx) usage(std::string("client context: ") + oscore::to_string(ctx.error()));
      as_gate.add_peer(p.name, std::move(*ctx));
    }
    add_rs_peer(as_gate, *as_provider);
  }
  std::atomic<bool> as_failed{false};
  std::thread as_thread;
  if (!a.kdc_only) {
    as_thread = std::thread([&] {
      if (!serve_gate(as_gate, *as_addr, c.as_listen, "ACE AS (/token, /introspect)", c.audience, 1, nullptr,
                      as_state.get())) {
        as_failed = true;
        on_signal(0);
      }
    });
  }
  bool kdc_ok = true;
  if (!a.as_only) {
    kdc_ok = serve_gate(gate, *kdc_addr, c.kdc_listen, "KDC (/authz-info, /ace-group)", c.audience, 0,
                        &duties);
    if (!kdc_ok) on_signal(0);
  }
  if (as_thread.joinable()) {
    as_thread.join();
  }
  if (!kdc_ok || as_failed) fail_with(kExitFailure);
}

Registrar reg("serve", [](CLI::App& root) {
  auto args = std::make_shared<ServeArgs>();
  auto* sub = root.add_subcommand("serve", "ACE AS and group KDC over CoAP/OSCORE (embedded demo config by default)");
  sub->add_option("--config", args->config_file, "TOML configuration file (default: the embedded one)");
  sub->add_flag("--print-config", args->print_config, "print the embedded default configuration and exit");
  sub->add_flag("--dump-state", args->dump_state,
                "print the stored groups, versions and members (no secrets) and exit");
  sub->add_flag("--as-only", args->as_only, "run only the AS (/token, /introspect)");
  sub->add_flag("--kdc-only", args->kdc_only, "run only the KDC (/authz-info, /ace-group)");
  sub->add_option("--state", args->state, "state directory (default ./acekdc-state)");
  sub->add_option("--listen", args->listen, "address:port for both roles on one port");
  sub->add_option("--as-listen", args->as_listen, "the AS's address:port (default 127.0.0.1:5683)");
  sub->add_option("--kdc-listen", args->kdc_listen, "the KDC's address:port (default 127.0.0.1:5684)");
  sub->add_option("--audience", args->audience, "the KDC's audience (default kdc)");
  sub->add_option("--issuer", args->issuer, "the AS's iss (default acekdc-as)");
  sub->add_option("--shared-key", args->shared_key, "AS-KDC token key, 16 bytes hex (replaces as.token_key)");
  sub->add_option("--client", args->clients, "NAME:ID_HEX:SECRET_HEX (repeatable; replaces the configured clients)");
  sub->add_option("--grant", args->grants, "NAME:GROUP:role[,role] (repeatable)");
  sub->add_option("--lifetime", args->lifetime, "token lifetime in seconds (default 3600)");
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace acekdc::app
