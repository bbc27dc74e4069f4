// acekdc oscore-interop-server: the resources and security contexts of the OSCORE
// interop test specification used at the IETF hackathons ("Tests Specification
// for OSCORE", core-wg.github.io/oscore/test-spec5.html; the one libcoap's
// oscore-interop-server and aiocoap's contrib/oscore-plugtest implement), served
// through oscore::SecureServer, so any OSCORE client can run Tests 0-17 against
// us. docs/oscore-interop.md lists the test cases.
//
// Without --config the spec's server contexts B and D are embedded
// (--print-config shows them; they are PUBLIC TEST KEYS). With --no-oscore the
// server is OSCORE-unaware (Test 16: an OSCORE request -> 4.02 Bad Option).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "acekdc/command.h"
#include "acekdc/io_util.h"
#include "acekdc/oscore_ctx_file.h"
#include "coap/server.h"
#include "crypto/openssl/openssl_provider.h"
#include "io/udp.h"
#include "oscore/secure_server.h"

namespace acekdc::app {
namespace {

// The spec's Security Contexts B and D (server side; the clients use A and C):
// the RFC 8613 Appendix C.1 master secret and salt, Sender ID 0x01, Recipient ID
// 0x (empty); D adds the ID Context 0x37cbf3210017a2d3. Public test values.
const char* const kDefaultConfig = R"toml(# acekdc oscore-interop-server: the server contexts of the OSCORE interop
# test specification (test-spec5). PUBLIC TEST KEYS: never use them for anything else.
# `state` is relative to --state.

[[context]]
name = "B"
master_secret = "0102030405060708090a0b0c0d0e0f10"
master_salt = "9e7ca92223786340"
sender_id = "01"
recipient_id = ""
aead_alg = "AES-CCM-16-64-128"
hkdf_alg = "HKDF-SHA-256"
replay_window = 32
state = "b"

[[context]]
name = "D"
master_secret = "0102030405060708090a0b0c0d0e0f10"
master_salt = "9e7ca92223786340"
sender_id = "01"
recipient_id = ""
id_context = "37cbf3210017a2d3"
aead_alg = "AES-CCM-16-64-128"
hkdf_alg = "HKDF-SHA-256"
replay_window = 32
state = "d"
)toml";

struct InteropArgs {
  std::string config;
  bool print_config = false;
  std::string listen = "[::]:5683";
  std::string state = "oscore-interop-state";
  bool no_oscore = false;
  bool lost_window = false;
  double observe_interval = 2;
  bool verbose = false;
  uint64_t key_update_after = 0;
};

io::Loop* g_loop = nullptr;
void on_signal(int) {
  if (g_loop) g_loop->stop();
}

using coap::Message;
using coap::Request;
namespace code = coap::code;
namespace option = coap::option;

constexpr std::string_view kHello = "Hello World!";

void text(Message& r, uint8_t c, std::string_view body) {
  r.code = c;
  r.set_uint(option::kContentFormat, cp::cf::kTextPlain);
  r.set_payload(body);
}

// ObserveScript: /oscore/observe1 and /oscore/observe2 (Tests 6 and 7). A
// registration answers "one"; `interval` later a notification "two"; for
// observe1 another `interval` later 5.00 "Terminate Observe", which ends the
// observation. A new registration restarts the script (generation counter).
struct ObserveScript {
  std::string path;
  bool terminate = false;
  int phase = 0;
  uint64_t generation = 0;
};

void add_observe(coap::Server& server, coap::Endpoint& ep, ObserveScript& s, Duration interval, bool verbose) {
  auto& r = server.add(s.path);
  r.observable = true;
  r.attrs.ct = {cp::cf::kTextPlain};
  r.attrs.rt = "observe";
  r.on(code::kGet, [&server, &ep, &s, interval, verbose](Request& req, Message& resp) {
    bool registration = req.can_defer() && req.message.get_uint(option::kObserve) == 0u;
    if (registration) {
      s.phase = 1;
      uint64_t gen = ++s.generation;
      int steps = s.terminate ? 2 : 1;
      for (int i = 1; i <= steps; ++i) {
        ep.schedule(ep.clock().now() + interval * i, [&server, &s, gen, i, verbose](TimePoint) {
          if (s.generation != gen) return;
          s.phase = i + 1;
          if (verbose)
            std::fprintf(stderr, "notify %s (phase %d, %zu observers)\n", s.path.c_str(), s.phase,
                         server.num_observers(s.path));
          server.notify(s.path);
        });
      }
    }
    switch (s.phase) {
      case 0:
      case 1: text(resp, code::kContent, "one"); break;
      case 2: text(resp, code::kContent, "two"); break;
      default: text(resp, code::kInternalServerError, "Terminate Observe"); break;
    }
  });
}

struct Resources {
  ObserveScript observe1{"/oscore/observe1", true};
  ObserveScript observe2{"/oscore/observe2", false};
};

void add_resources(coap::Server& server, coap::Endpoint& ep, Resources& res, Duration interval, bool oscore_aware,
                   bool verbose) {
  // Test 0 / Test 16: plain CoAP.
  auto& plain = server.add("/oscore/hello/coap");
  plain.attrs.ct = {cp::cf::kTextPlain};
  plain.on(code::kGet, [](Request&, Message& r) { text(r, code::kContent, kHello); });
  if (!oscore_aware) return;

  // Tests 1, 2, 5 (Observe on a resource that is not observable: no Observe back).
  auto& h1 = server.add("/oscore/hello/1");
  h1.attrs.ct = {cp::cf::kTextPlain};
  h1.on(code::kGet, [](Request&, Message& r) { text(r, code::kContent, kHello); });

  // Test 3: Uri-Query first=1, answered with ETag 0x2b.
  auto& h2 = server.add("/oscore/hello/2");
  h2.attrs.ct = {cp::cf::kTextPlain};
  h2.on(code::kGet, [](Request& req, Message& r) {
    if (req.query("first") != std::optional<std::string_view>("1")) {
      coap::error_response(r, code::kBadRequest, "Uri-Query first=1 expected");
      return;
    }
    text(r, code::kContent, kHello);
    const uint8_t etag = 0x2b;
    r.set_option(option::kETag, ByteView(&etag, 1));
  });

  // Test 4: Accept 0, answered with Max-Age 5 (another Accept: 4.06 by the Server).
  auto& h3 = server.add("/oscore/hello/3");
  h3.attrs.ct = {cp::cf::kTextPlain};
  h3.produced_formats = {cp::cf::kTextPlain};
  h3.on(code::kGet, [](Request&, Message& r) {
    text(r, code::kContent, kHello);
    r.set_uint(option::kMaxAge, 5);
  });

  // Test 8: POST with Content-Format 0 and payload 0x4a, echoed with 2.04.
  auto& h6 = server.add("/oscore/hello/6");
  h6.accepted_formats = {cp::cf::kTextPlain};
  h6.on(code::kPost, [](Request& req, Message& r) {
    r.code = code::kChanged;
    r.set_uint(option::kContentFormat, cp::cf::kTextPlain);
    r.payload = to_bytes(req.payload);
  });

  // Tests 9 and 10: PUT with If-Match 0x7b (the resource's ETag) -> 2.04;
  // If-None-Match on this existing resource, or another ETag -> 4.12.
  auto& h7 = server.add("/oscore/hello/7");
  h7.accepted_formats = {cp::cf::kTextPlain};
  h7.on(code::kPut, [](Request& req, Message& r) {
    const uint8_t etag = 0x7b;
    if (req.message.has(option::kIfNoneMatch)) {
      r.code = code::kPreconditionFailed;
      return;
    }
    if (req.message.has(option::kIfMatch)) {
      bool ok = false;
      for (const auto& o : req.message.options())
        if (o.number == option::kIfMatch) ok = ok || o.value.empty() || equal(o.value, ByteView(&etag, 1));
      if (!ok) {
        r.code = code::kPreconditionFailed;
        return;
      }
    }
    r.code = code::kChanged;
  });

  // Test 11: DELETE.
  server.add("/oscore/test").on(code::kDelete, [](Request&, Message& r) { r.code = code::kDeleted; });

  // Tests 6 and 7.
  add_observe(server, ep, res.observe1, interval, verbose);
  add_observe(server, ep, res.observe2, interval, verbose);
}

// LoadedContext: one server context and where its state lives.
struct LoadedContext {
  OscoreCtxFile file;
  std::unique_ptr<CtxState> state;
  oscore::ContextId id = 0;
  uint64_t saved_generation = 0;  // Session::state_generation() last persisted
  uint64_t requests = 0;          // protected requests verified (--key-update-after)
};

std::vector<OscoreCtxFile> load_contexts(const InteropArgs& a) {
  std::string text, source;
  if (a.config.empty()) {
    text = kDefaultConfig;
    source = "embedded configuration";
  } else {
    auto t = read_file(a.config);
    if (!t) {
      std::fprintf(stderr, "error: cannot read %s\n", a.config.c_str());
      fail_with(kExitUsage);
    }
    text = std::move(*t);
    source = a.config;
  }
  CtxFormat fmt = CtxFormat::kAuto;
  if (std::filesystem::path(a.config).extension() == ".json") fmt = CtxFormat::kJson;
  if (std::filesystem::path(a.config).extension() == ".toml") fmt = CtxFormat::kToml;
  auto list = parse_ctx_list(text, fmt, a.state, source);
  secure_zero(text.data(), text.size());
  if (!list) {
    std::fprintf(stderr, "error: %s\n", list.error().message.c_str());
    fail_with(kExitUsage);
  }
  if (a.state.empty())
    for (auto& f : *list) f.state_dir.clear();
  return std::move(*list);
}

void run(const InteropArgs& a) {
  if (a.print_config) {
    std::fputs(kDefaultConfig, stdout);
    return;
  }
  auto addr = coap::Address::parse(a.listen);
  if (!addr) {
    std::fprintf(stderr, "error: bad --listen address: %s\n", a.listen.c_str());
    fail_with(kExitUsage);
  }
  if (a.observe_interval <= 0 || a.observe_interval > 3600) {
    std::fprintf(stderr, "error: --observe-interval must be in (0, 3600] seconds\n");
    fail_with(kExitUsage);
  }
  std::vector<LoadedContext> contexts;
  if (!a.no_oscore) {
    for (auto& f : load_contexts(a)) contexts.push_back({std::move(f), nullptr, 0, 0, 0});
  }

  SystemClock clock;
  SystemRandom random;
  coap::EndpointConfig ecfg;
  ecfg.dedup_capacity = 1 << 14;
  coap::Endpoint ep(clock, random, ecfg);
  coap::Server server(ep);
  Resources res;
  auto interval = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.observe_interval));
  add_resources(server, ep, res, interval, !a.no_oscore, a.verbose);

  if (a.no_oscore) {
    // An OSCORE-unaware server: our CoAP core knows the OSCORE option number, so
    // answer it here as RFC 7252 §5.4.1 makes a server that does not (4.02).
    ep.set_request_handler([&server](coap::RequestContext& ctx) {
      if (ctx.request.has(option::kOscore)) {
        coap::error_response(ctx.response, code::kBadOption, "Unrecognized critical option 9");
        return;
      }
      server.handle_request(ctx);
    });
  }
  auto provider = crypto::make_openssl_provider();
  std::unique_ptr<oscore::SecureServer> secure;
  if (!a.no_oscore) {
    secure = std::make_unique<oscore::SecureServer>(ep, server, random, clock);
    secure->allow_unprotected("/oscore/hello/coap");
    secure->allow_unprotected("/.well-known/core");
    for (auto& lc : contexts) {
      lc.state = std::make_unique<CtxState>(lc.file);
      // B.1.2: a window is trusted only if it was saved at a clean shutdown; it is
      // removed once loaded, so a crash leaves none and the next start asks for Echo.
      bool lost = a.lost_window || (lc.state->used_before() && !lc.state->window_saved());
      std::string label = lc.file.name.empty() ? "context" : "context " + lc.file.name;
      if (lc.file.appendix_b2) {
        // RFC 8613 Appendix B.2 with this peer: a client with a new ID Context (R1)
        // runs Figure 14; after a start without a trustworthy replay window (lost
        // mutable state) the server initiates it (response #1 to any request).
        oscore::B2Config bc;
        bc.base = lc.file.context_config(lc.state->store(), &clock);
        bc.base.random = &random;
        auto b2 = oscore::B2Server::create(*provider, std::move(bc), random, clock, /*established=*/!lost);
        if (!b2) {
          std::fprintf(stderr, "error: %s: %s\n", label.c_str(), oscore::to_string(b2.error()));
          fail_with(kExitUsage);
        }
        auto id = secure->add_b2(std::move(*b2));
        if (!id) {
          std::fprintf(stderr, "error: %s: %s\n", label.c_str(), oscore::to_string(id.error()));
          fail_with(kExitUsage);
        }
        lc.id = *id;
        std::fprintf(stderr, "%s: Appendix B.2%s\n", label.c_str(),
                     lost ? ", no established context: every request gets response #1 first" : "");
        continue;
      }
      // A saved key update state (written before every response that depended
      // on it) is restored, so an update survives a kill -9 (key-limits draft §3.3).
      auto session = open_session(oscore::Role::kServer, *provider, lc.file, *lc.state, random, clock, !lost);
      if (!session) {
        std::fprintf(stderr, "error: %s\n", session.error().message.c_str());
        fail_with(session.error().code == CtxFileError::kIo ? kExitFailure : kExitUsage);
      }
      lc.state->discard_window();
      lc.saved_generation = (*session)->state_generation();
      const bool restored = lc.state->session_saved();
      auto id = secure->add_session(std::move(*session));
      if (!id) {
        std::fprintf(stderr, "error: %s: %s\n", label.c_str(), oscore::to_string(id.error()));
        fail_with(kExitUsage);
      }
      lc.id = *id;
      std::fprintf(stderr, "%s: %s%s\n", label.c_str(), lc.state->persistent() ? "state in " : "no state (in memory)",
                   lc.state->persistent() ? lc.file.state_dir.c_str() : "");
      if (restored) {
        const oscore::Session* s = secure->session(lc.id);
        std::fprintf(stderr, "%s: key update state restored: key generation %llu, %s\n", label.c_str(),
                     static_cast<unsigned long long>(s->updates_completed()), oscore::to_string(s->state()));
      }
      if (lost) std::fprintf(stderr, "%s: replay window not initialised, Echo (RFC 8613 B.1.2) first\n", label.c_str());
    }
    // Before each protected response leaves: persist the Session when it
    // changed (a failure stops the server before anything is sent), and at -v
    // log the key generation and Partial IV (never a key).
    secure->set_protect_observer([&contexts, &a](oscore::ContextId id, const oscore::Session& s, ByteView outer) {
      for (auto& lc : contexts) {
        if (lc.id != id) continue;
        if (s.state_generation() != lc.saved_generation && lc.state->persistent()) {
          Bytes blob = s.export_state();
          auto w = lc.state->save_session(blob);
          secure_zero(blob);
          if (!w) {
            std::fprintf(stderr, "error: %s\n", w.error().message.c_str());
            std::fflush(stderr);
            std::_Exit(kExitFailure);
          }
          lc.saved_generation = s.state_generation();
        }
        if (auto c = lc.state->checkpoint_counts(s); !c) {
          std::fprintf(stderr, "error: %s\n", c.error().message.c_str());
          std::fflush(stderr);
          std::_Exit(kExitFailure);
        }
        if (a.verbose)
          std::fprintf(stderr, "oscore-sent context %s %s\n", lc.file.name.c_str(),
                       sent_message_summary(s, outer, lc.file.key_update.r_len).c_str());
      }
    });
    // --key-update-after N: a server-initiated key update (Figure 6) in the
    // response to every Nth protected request of a context.
    secure->set_request_observer([&contexts, &a, &secure](std::optional<oscore::ContextId> id,
                                                          const coap::MessageView& inner, const coap::Address& peer) {
      std::string who = "unprotected";
      for (auto& lc : contexts) {
        if (!id || lc.id != *id) continue;
        who = "context " + lc.file.name;
        ++lc.requests;
        if (a.key_update_after > 0 && lc.requests % a.key_update_after == 0) {
          if (oscore::Session* s = secure->session(lc.id)) {
            s->request_key_update();
            if (a.verbose) std::fprintf(stderr, "%s: starting a key update (--key-update-after)\n", who.c_str());
          }
        }
      }
      if (a.verbose)
        std::fprintf(stderr, "%s %s from %s (%s)\n", coap::code_string(inner.code).c_str(),
                     Message::from_view(inner).uri_path().c_str(), peer.to_string().c_str(), who.c_str());
    });
  }

  auto sock = io::UdpSocket::bind(*addr);
  if (!sock) {
    std::fprintf(stderr, "error: %s %s\n", io::to_string(sock.error()), a.listen.c_str());
    fail_with(kExitFailure);
  }
  std::fprintf(stderr, "oscore-interop-server%s listening on %s\n", a.no_oscore ? " (OSCORE-unaware)" : "",
               sock->local_address().to_string().c_str());
  std::fflush(stderr);
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  g_loop = &loop;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  loop.run();
  g_loop = nullptr;

  int rc = kExitOk;
  if (secure) {
    const auto& st = secure->stats();
    std::fprintf(stderr, "stopping: %llu protected, %llu unprotected, %llu rejected, %llu Echo challenges, %llu not protectable, %llu B.2 responses #1\n",
                 static_cast<unsigned long long>(st.protected_requests),
                 static_cast<unsigned long long>(st.unprotected_requests),
                 static_cast<unsigned long long>(st.rejected), static_cast<unsigned long long>(st.echo_challenges),
                 static_cast<unsigned long long>(st.protect_failures),
                 static_cast<unsigned long long>(st.b2_responses1));
    for (auto& lc : contexts) {
      oscore::Session* s = secure->session(lc.id);
      if (!s) continue;
      auto w = lc.state->save_window(s->current());
      if (!w) {
        std::fprintf(stderr, "error: %s\n", w.error().message.c_str());
        rc = kExitFailure;
      }
      if (s->state_generation() != lc.saved_generation && lc.state->persistent()) {
        Bytes blob = s->export_state();
        auto ws = lc.state->save_session(blob);
        secure_zero(blob);
        if (!ws) {
          std::fprintf(stderr, "error: %s\n", ws.error().message.c_str());
          rc = kExitFailure;
        }
      }
    }
  }
  if (rc != kExitOk) fail_with(rc);
}

Registrar reg("oscore-interop-server", [](CLI::App& root) {
  auto args = std::make_shared<InteropArgs>();
  auto* sub = root.add_subcommand(
      "oscore-interop-server",
      "CoAP server with the resources and contexts of the OSCORE interop test specification (Tests 0-17)");
  sub->add_option("--config", args->config,
                  "contexts (TOML [[context]] tables or JSON {\"context\": [...]}); default: the spec's B and D");
  sub->add_flag("--print-config", args->print_config, "print the embedded configuration (PUBLIC test keys) and exit");
  sub->add_option("--listen", args->listen, "address:port to listen on (default [::]:5683; port 0: any free port)");
  sub->add_option("--state", args->state,
                  "directory for sequence numbers and replay windows (default ./oscore-interop-state; '' = none)");
  sub->add_flag("--no-oscore", args->no_oscore, "be an OSCORE-unaware server (Test 16: OSCORE option -> 4.02)");
  sub->add_flag("--lost-replay-window", args->lost_window,
                "start with uninitialised replay windows (RFC 8613 B.1.2 recovery with Echo)");
  sub->add_option("--observe-interval", args->observe_interval,
                  "seconds between the notifications of /oscore/observe1|2 (default 2)");
  sub->add_flag("-v,--verbose", args->verbose,
                "log each request with the context that authenticated it, and each protected response's key "
                "generation and Partial IV");
  sub->add_option("--key-update-after", args->key_update_after,
                  "start a key update (key-limits draft, Figure 6) in the response to every Nth protected request "
                  "of a context (default 0: only by the [key_update] thresholds)");
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace acekdc::app
