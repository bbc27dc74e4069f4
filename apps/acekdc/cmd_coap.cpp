// acekdc coap get|post|put|delete|fetch|patch|ipatch URI: a CoAP client, with
// --oscore CTX an OSCORE client (RFC 8613) over the context file CTX (see
// acekdc/oscore_ctx_file.h).
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "acekdc/command.h"
#include "acekdc/io_util.h"
#include "acekdc/oscore_ctx_file.h"
#include "cbor/edn.h"
#include "coap/message.h"
#include "coap/uri.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "io/client.h"
#include "io/udp.h"
#include "oscore/secure_client.h"

namespace acekdc::app {
namespace {

struct CoapArgs {
  std::string uri;
  std::string payload, hex, edn, file;
  std::string content_format, accept;
  bool observe = false;
  double observe_seconds = 30;
  int observe_count = 0;
  size_t block_size = 0;
  bool non = false;
  bool verbose = false;
  double timeout = 30;
  std::string oscore;  // context file
  bool key_update = false;
  bool b2 = false;
  std::vector<std::string> if_match;  // hex ETags ("" = If-Match present, empty)
  bool if_none_match = false;
};

struct FormatName {
  const char* name;
  uint16_t number;
};
const FormatName kFormats[] = {
    {"text/plain", cp::cf::kTextPlain},       {"text", cp::cf::kTextPlain},
    {"application/link-format", cp::cf::kLinkFormat}, {"link-format", cp::cf::kLinkFormat},
    {"application/xml", cp::cf::kXml},         {"xml", cp::cf::kXml},
    {"application/octet-stream", cp::cf::kOctetStream}, {"octet-stream", cp::cf::kOctetStream},
    {"application/json", cp::cf::kJson},       {"json", cp::cf::kJson},
    {"application/cbor", cp::cf::kCbor},       {"cbor", cp::cf::kCbor},
    {"application/cwt", cp::cf::kCwt},         {"cwt", cp::cf::kCwt},
    {"application/ace+cbor", cp::cf::kAceCbor}, {"ace+cbor", cp::cf::kAceCbor},
    {"application/cose-key", cp::cf::kCoseKey}, {"cose-key", cp::cf::kCoseKey},
    {"application/cose-key-set", cp::cf::kCoseKeySet}, {"cose-key-set", cp::cf::kCoseKeySet},
    {"application/ace-groupcomm+cbor", cp::cf::kAceGroupcommCbor},
    {"ace-groupcomm+cbor", cp::cf::kAceGroupcommCbor},
};

std::optional<uint16_t> parse_format(const std::string& s) {
  for (const auto& f : kFormats)
    if (s == f.name) return f.number;
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (!s.empty() && end && *end == 0 && v <= 65535) return static_cast<uint16_t>(v);
  return std::nullopt;
}

const char* format_name(uint32_t n) {
  for (const auto& f : kFormats)
    if (f.number == n && std::string_view(f.name).find('/') != std::string_view::npos) return f.name;
  return nullptr;
}

bool is_cbor_format(uint32_t cf) {
  return cf == cp::cf::kCbor || cf == cp::cf::kCwt || cf == cp::cf::kAceCbor || cf == cp::cf::kCoseKey ||
         cf == cp::cf::kCoseKeySet || cf == cp::cf::kAceGroupcommCbor;
}

bool printable(ByteView b) {
  for (uint8_t c : b)
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) return false;
  return true;
}

void print_message(const coap::Message& m, bool verbose) {
  std::printf("%s %s\n", coap::code_string(m.code).c_str(), coap::code_name(m.code));
  if (verbose) {
    std::printf("  type %s, MID %u, token %s\n", coap::to_string(m.type), m.message_id, to_hex(m.token).c_str());
  }
  for (const coap::Option& o : m.options()) {
    const char* name = coap::option_name(o.number);
    std::string label = name ? name : "Option " + std::to_string(o.number);
    std::string value;
    switch (coap::option_format(o.number)) {
      case coap::OptionFormat::kString: value = "\"" + std::string(o.str()) + "\""; break;
      case coap::OptionFormat::kUint: {
        auto v = coap::decode_uint(o.value);
        value = v ? std::to_string(*v) : "h'" + to_hex(o.value) + "'";
        if (v && (o.number == coap::option::kBlock1 || o.number == coap::option::kBlock2)) {
          auto b = coap::BlockValue::decode(o.value);
          if (b) value = std::to_string(b->num) + (b->more ? "/1/" : "/0/") + std::to_string(b->size());
        }
        if (v && (o.number == coap::option::kContentFormat || o.number == coap::option::kAccept)) {
          if (const char* fn = format_name(*v)) value += std::string(" (") + fn + ")";
        }
        break;
      }
      default: value = o.value.empty() ? "" : "h'" + to_hex(o.value) + "'"; break;
    }
    std::printf("  %s: %s\n", label.c_str(), value.c_str());
  }
  if (m.payload.empty()) return;
  auto cf = m.get_uint(coap::option::kContentFormat);
  if (cf && is_cbor_format(*cf)) {
    std::printf("%s\n", cbor::diag_of_bytes(m.payload, {.pretty = true}).c_str());
  } else if (printable(m.payload)) {
    std::printf("%.*s\n", static_cast<int>(m.payload.size()), reinterpret_cast<const char*>(m.payload.data()));
  } else {
    std::printf("h'%s'\n", to_hex(m.payload).c_str());
  }
}

// print_unprotected shows an answer that came without OSCORE (an RFC 8613 §8.2
// error response, or a peer that does not speak OSCORE): never authenticated.
void print_unprotected(const coap::Message& m, bool verbose) {
  std::printf("unprotected response (not authenticated): ");
  print_message(m, verbose);
}

// OscoreRun: the client side of `coap --oscore`: a Session (restored from the
// context's state directory when a key update left state there), a
// SecureClient on its own Endpoint, socket and Loop.
struct OscoreRun {
  SystemClock clock;
  SystemRandom random;
  coap::Endpoint ep{clock, random};
  io::Loop loop{ep, clock};
  std::unique_ptr<oscore::Session> session;
  std::unique_ptr<oscore::B2Client> b2;  // --b2 instead of the Session
  std::unique_ptr<oscore::SecureClient> client;

  // wait runs the loop until `done` or `end` (a timeout).
  void wait(const bool& done, TimePoint end) {
    while (!done && clock.now() < end) loop.run_once(std::min<Duration>(end - clock.now(), milliseconds(100)));
  }
};

void run_protected(const CoapArgs& a, const coap::Address& peer, coap::Message req, const coap::RequestOptions& opts,
                   OscoreRun& run, const std::function<void()>& finish);

// run_oscore sends `req` protected with the context file a.oscore. The
// sequence number is reserved in the file's state directory before use; the
// replay window (for notifications) and the key update's Session state are
// kept there between runs: the Session state is written (atomically) before
// any request that depends on it is sent, so a kill -9 at any point leaves a
// state from which the next run continues (key-limits draft §3.3).
void run_oscore(const CoapArgs& a, const coap::Address& peer, coap::Message req, const coap::RequestOptions& opts) {
  if (peer.is_multicast()) {
    std::fprintf(stderr, "error: --oscore cannot be used with a multicast URI (Group OSCORE is not this)\n");
    fail_with(kExitUsage);
  }
  auto file = load_ctx_file(a.oscore);
  if (!file) {
    std::fprintf(stderr, "error: %s\n", file.error().message.c_str());
    fail_with(kExitUsage);
  }
  CtxState state(*file);
  auto provider = crypto::make_openssl_provider();
  OscoreRun run;
  if (a.b2) {
    // RFC 8613 Appendix B.2: this run derives a fresh context with the server
    // (request #1 with R1, response #1, request #2 under CTX3 = ID Context R2||R3).
    // CTX3's sequence numbers are reserved in the state directory under its own
    // ID Context; no key update Session is used or written.
    oscore::B2Config bc;
    bc.base = file->context_config(state.store(), &run.clock);
    bc.base.random = &run.random;
    auto c = oscore::B2Client::create(*provider, std::move(bc), run.random, /*established=*/false);
    if (!c) {
      std::fprintf(stderr, "error: %s: %s\n", a.oscore.c_str(), oscore::to_string(c.error()));
      fail_with(kExitUsage);
    }
    run.b2 = std::move(*c);
    run.client = std::make_unique<oscore::SecureClient>(run.ep, *run.b2);
    run_protected(a, peer, std::move(req), opts, run, [&] {
      if (a.verbose && run.b2->current()) {
        const auto& idc = run.b2->current()->params().id_context;
        std::fprintf(stderr, "<- Appendix B.2 %s, ID Context %s\n", oscore::to_string(run.b2->state()),
                     idc ? to_hex(*idc).c_str() : "(none)");
      }
    });
    return;
  }
  auto session = open_session(oscore::Role::kClient, *provider, *file, state, run.random, run.clock, true);
  if (!session) {
    std::fprintf(stderr, "error: %s: %s\n", a.oscore.c_str(), session.error().message.c_str());
    fail_with(session.error().code == CtxFileError::kIo ? kExitFailure : kExitUsage);
  }
  state.discard_window();
  run.session = std::move(*session);
  oscore::Session& s = *run.session;
  if (!state.persistent())
    std::fprintf(stderr, "warning: %s has no state directory: sequence numbers restart at 0 in every run\n",
                 a.oscore.c_str());
  if (a.key_update) s.request_key_update();
  if (a.verbose) {
    std::fprintf(stderr, "-> OSCORE, sequence number %llu, key generation %llu, key update %s\n",
                 static_cast<unsigned long long>(s.current().next_sequence_number()),
                 static_cast<unsigned long long>(s.updates_completed()), oscore::to_string(s.state()));
  }
  uint64_t saved_generation = s.state_generation();
  bool save_failed = false;
  auto save_session = [&](const oscore::Session& sess) {
    if (!state.persistent() || sess.state_generation() == saved_generation) return true;
    Bytes blob = sess.export_state();
    auto w = state.save_session(blob);
    secure_zero(blob);
    if (!w) {
      std::fprintf(stderr, "error: %s\n", w.error().message.c_str());
      save_failed = true;
      return false;
    }
    saved_generation = sess.state_generation();
    return true;
  };
  run.client = std::make_unique<oscore::SecureClient>(run.ep, s);
  // Before each protected request leaves: persist the Session if it changed
  // (if that fails, end the run before the Loop sends anything: never send
  // what a reboot could not continue), and log the key generation and Partial
  // IV (no secrets).
  run.client->set_protect_observer([&](const oscore::Session& sess, ByteView outer) {
    if (!save_session(sess)) fail_with(kExitFailure);
    if (auto c = state.checkpoint_counts(sess); !c) {
      std::fprintf(stderr, "error: %s\n", c.error().message.c_str());
      fail_with(kExitFailure);
    }
    if (a.verbose) std::fprintf(stderr, "oscore-sent %s\n", sent_message_summary(sess, outer, file->key_update.r_len).c_str());
  });
  auto finish = [&] {
    save_session(s);
    if (auto w = state.save_window(s.current()); !w)
      std::fprintf(stderr, "warning: %s\n", w.error().message.c_str());
    if (a.verbose)
      std::fprintf(stderr, "<- key generation %llu, key update %s\n",
                   static_cast<unsigned long long>(s.updates_completed()), oscore::to_string(s.state()));
    if (save_failed) fail_with(kExitFailure);
  };
  run_protected(a, peer, std::move(req), opts, run, finish);
}

// run_protected sends `req` through run.client (socket, observe or one
// request, printing) and calls `finish` before exiting.
void run_protected(const CoapArgs& a, const coap::Address& peer, coap::Message req, const coap::RequestOptions& opts,
                   OscoreRun& run, const std::function<void()>& finish) {
  {
    coap::Address local;
    local.family = peer.family;
    auto sock = io::UdpSocket::bind(local);
    if (!sock) {
      std::fprintf(stderr, "error: %s\n", io::to_string(sock.error()));
      fail_with(kExitFailure);
    }
    run.loop.add_socket(std::move(*sock));
  }
  auto max_wait = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout));
  coap::RequestOptions o = opts;
  if (a.observe) {
    int n = 0;
    bool got_error = false, done = false, stop = false;
    auto total = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.observe_seconds));
    o.observe = true;
    if (!o.timeout) o.timeout = total;
    auto id = run.client->request(peer, std::move(req), o, [&](const oscore::SecureEvent& ev) {
      if (ev.status != coap::ClientStatus::kNotification) done = true;
      if (ev.status == coap::ClientStatus::kCancelled || stop) return;
      if (ev.status == coap::ClientStatus::kBadResponse && ev.unprotected_response) {
        print_unprotected(*ev.unprotected_response, a.verbose);
        got_error = stop = true;
        return;
      }
      if (!ev.response) {
        if (ev.error) std::printf("observation ended: %s\n", oscore::to_string(*ev.error));
        else std::printf("observation ended: %s\n", coap::to_string(ev.status));
        got_error = ev.status != coap::ClientStatus::kResponse;
        stop = true;
        return;
      }
      print_message(*ev.response, a.verbose);
      std::fflush(stdout);
      if (coap::code_class(ev.response->code) != 2) got_error = true;
      ++n;
      if (a.observe_count != 0 && n >= a.observe_count) stop = true;
    });
    if (!id) {
      finish();
      std::fprintf(stderr, "error: OSCORE: %s\n", oscore::to_string(id.error()));
      fail_with(kExitFailure);
    }
    bool ended = false;
    TimePoint end = run.clock.now() + total;
    while (!done && !stop && run.clock.now() < end)
      run.loop.run_once(std::min<Duration>(end - run.clock.now(), milliseconds(100)));
    ended = done;
    if (!ended) {
      run.client->cancel(*id, /*deregister=*/true);
      TimePoint grace = run.clock.now() + milliseconds(500);
      while (run.ep.num_exchanges() > 0 && run.clock.now() < grace) run.loop.run_once(milliseconds(50));
    }
    run.loop.flush();
    finish();
    if (got_error || n == 0) fail_with(kExitFailure);
    return;
  }
  std::optional<coap::Message> response, unprotected;
  std::optional<oscore::Error> error;
  coap::ClientStatus status = coap::ClientStatus::kTimeout;
  bool done = false;
  if (!o.timeout) o.timeout = max_wait;
  o.observe = false;
  auto id = run.client->request(peer, std::move(req), o, [&](const oscore::SecureEvent& ev) {
    status = ev.status;
    if (ev.response) response = *ev.response;
    if (ev.unprotected_response) unprotected = *ev.unprotected_response;
    error = ev.error;
    done = true;
  });
  if (!id) {
    finish();
    std::fprintf(stderr, "error: OSCORE: %s\n", oscore::to_string(id.error()));
    fail_with(kExitFailure);
  }
  run.wait(done, run.clock.now() + max_wait);
  if (!done) {
    run.client->cancel(*id);
    status = coap::ClientStatus::kTimeout;
    response.reset();
    unprotected.reset();
    error.reset();
  }
  run.loop.flush();
  finish();
  if (unprotected) {
    print_unprotected(*unprotected, a.verbose);
    fail_with(kExitFailure);
  }
  if (status != coap::ClientStatus::kResponse || !response) {
    if (error) std::fprintf(stderr, "error: OSCORE: %s\n", oscore::to_string(*error));
    else std::fprintf(stderr, "error: %s\n", coap::to_string(status));
    fail_with(kExitFailure);
  }
  print_message(*response, a.verbose);
  if (coap::code_class(response->code) != 2) fail_with(kExitFailure);
}

void run(uint8_t method, const CoapArgs& a) {
  auto uri = coap::Uri::parse(a.uri);
  if (!uri) {
    std::fprintf(stderr, "error: not a coap:// URI: %s\n", a.uri.c_str());
    fail_with(kExitUsage);
  }
  auto peer = io::resolve(uri->host, uri->port);
  if (!peer) {
    std::fprintf(stderr, "error: %s: %s\n", io::to_string(peer.error()), uri->host.c_str());
    fail_with(kExitFailure);
  }
  coap::Message req(a.non ? coap::Type::kNon : coap::Type::kCon, method);
  uri->apply_to(req);
  int sources = !a.payload.empty() + !a.hex.empty() + !a.edn.empty() + !a.file.empty();
  if (sources > 1) {
    std::fprintf(stderr, "error: use only one of --payload, --hex, --edn, --file\n");
    fail_with(kExitUsage);
  }
  std::optional<uint16_t> cf;
  if (!a.content_format.empty()) {
    cf = parse_format(a.content_format);
    if (!cf) {
      std::fprintf(stderr, "error: unknown content format: %s\n", a.content_format.c_str());
      fail_with(kExitUsage);
    }
  }
  if (!a.payload.empty()) {
    req.set_payload(a.payload);
  } else if (!a.hex.empty()) {
    auto b = from_hex(a.hex);
    if (!b) {
      std::fprintf(stderr, "error: --hex is not hex\n");
      fail_with(kExitUsage);
    }
    req.payload = std::move(*b);
  } else if (!a.edn.empty()) {
    auto v = cbor::from_diag(a.edn);
    if (!v) {
      std::fprintf(stderr, "error: --edn at offset %zu: %s\n", v.error().offset, v.error().message.c_str());
      fail_with(kExitUsage);
    }
    req.payload = cbor::encode(*v);
    if (!cf) cf = cp::cf::kCbor;
  } else if (!a.file.empty()) {
    auto f = a.file == "-" ? std::optional<std::string>(read_stdin()) : read_file(a.file);
    if (!f) {
      std::fprintf(stderr, "error: cannot read %s\n", a.file.c_str());
      fail_with(kExitUsage);
    }
    req.set_payload(*f);
  }
  if (cf) req.set_uint(coap::option::kContentFormat, *cf);
  if (!a.accept.empty()) {
    auto acc = parse_format(a.accept);
    if (!acc) {
      std::fprintf(stderr, "error: unknown accept format: %s\n", a.accept.c_str());
      fail_with(kExitUsage);
    }
    req.set_uint(coap::option::kAccept, *acc);
  }
  for (const std::string& m : a.if_match) {
    auto v = from_hex(m);
    if (!v || v->size() > 8) {
      std::fprintf(stderr, "error: --if-match takes an ETag as hex (0..8 bytes)\n");
      fail_with(kExitUsage);
    }
    req.add_option(coap::option::kIfMatch, *v);
  }
  if (a.if_none_match) req.add_option(coap::option::kIfNoneMatch, {});
  if ((a.b2 || a.key_update) && a.oscore.empty()) {
    std::fprintf(stderr, "error: --b2 and --key-update need --oscore\n");
    fail_with(kExitUsage);
  }
  if (a.b2 && a.key_update) {
    std::fprintf(stderr, "error: --b2 and --key-update exclude each other\n");
    fail_with(kExitUsage);
  }
  coap::RequestOptions opts;
  opts.confirmable = !a.non;
  if (a.block_size) {
    if (a.block_size < 16 || a.block_size > 1024 || (a.block_size & (a.block_size - 1))) {
      std::fprintf(stderr, "error: --block-size must be a power of two in 16..1024\n");
      fail_with(kExitUsage);
    }
    opts.block1_size = a.block_size;
    opts.block2_size = a.block_size;
  }
  if (a.verbose) {
    std::fprintf(stderr, "-> %s %s (%s)\n", coap::code_string(method).c_str(), a.uri.c_str(),
                 peer->to_string().c_str());
  }
  if (!a.oscore.empty()) {
    run_oscore(a, *peer, std::move(req), opts);
    return;
  }
  io::BlockingClient client;
  auto max_wait = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout));
  if (a.observe) {
    int n = 0;
    bool got_error = false;
    auto total = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.observe_seconds));
    auto r = client.observe(*peer, req, opts, total, [&](const coap::ClientEvent& ev) {
      if (!ev.response) {
        std::printf("observation ended: %s\n", coap::to_string(ev.status));
        got_error = ev.status != coap::ClientStatus::kResponse;
        return false;
      }
      print_message(*ev.response, a.verbose);
      std::fflush(stdout);
      if (coap::code_class(ev.response->code) != 2) got_error = true;
      ++n;
      return a.observe_count == 0 || n < a.observe_count;
    });
    if (!r) {
      std::fprintf(stderr, "error: %s\n", io::to_string(r.error()));
      fail_with(kExitFailure);
    }
    if (got_error || n == 0) fail_with(kExitFailure);
    return;
  }
  auto r = client.request(*peer, req, opts, max_wait);
  if (!r) {
    std::fprintf(stderr, "error: %s\n", io::to_string(r.error()));
    fail_with(kExitFailure);
  }
  if (peer->is_multicast()) {
    for (const auto& [from, resp] : r->group_responses) {
      std::printf("from %s: ", from.to_string().c_str());
      print_message(resp, a.verbose);
    }
    if (r->group_responses.empty()) {
      std::fprintf(stderr, "no responses to the group request\n");
      fail_with(kExitFailure);
    }
    return;
  }
  if (!r->response) {
    std::fprintf(stderr, "error: %s\n", coap::to_string(r->status));
    fail_with(kExitFailure);
  }
  print_message(*r->response, a.verbose);
  if (coap::code_class(r->response->code) != 2) fail_with(kExitFailure);
}

Registrar reg("coap", [](CLI::App& root) {
  auto* coap = root.add_subcommand("coap", "CoAP client: send a request, print the response");
  coap->require_subcommand(1);
  struct M {
    const char* name;
    uint8_t code;
  };
  static const M methods[] = {{"get", coap::code::kGet},     {"post", coap::code::kPost},
                              {"put", coap::code::kPut},     {"delete", coap::code::kDelete},
                              {"fetch", coap::code::kFetch}, {"patch", coap::code::kPatch},
                              {"ipatch", coap::code::kIPatch}};
  for (const M& m : methods) {
    auto args = std::make_shared<CoapArgs>();
    auto* sub = coap->add_subcommand(m.name, std::string("send a ") + coap::method_name(m.code) + " request");
    sub->add_option("uri", args->uri, "coap://host[:port]/path?query")->required();
    sub->add_option("-p,--payload", args->payload, "payload as text");
    sub->add_option("--hex", args->hex, "payload as hex");
    sub->add_option("--edn", args->edn, "payload as CBOR diagnostic notation (sets Content-Format 60)");
    sub->add_option("--file", args->file, "payload from a file ('-' for stdin)");
    sub->add_option("-c,--content-format", args->content_format, "Content-Format (number or name)");
    sub->add_option("-A,--accept", args->accept, "Accept (number or name)");
    sub->add_flag("--observe", args->observe, "observe the resource (RFC 7641)");
    sub->add_option("--observe-seconds", args->observe_seconds, "how long to observe (default 30)");
    sub->add_option("--observe-count", args->observe_count, "stop after N responses/notifications");
    sub->add_option("--block-size", args->block_size, "block size for Block1/Block2 (16..1024)");
    sub->add_flag("--non", args->non, "send as NON");
    sub->add_option("--timeout", args->timeout,
                    "seconds to wait for the response (default 30; for a multicast URI: how long to collect)");
    sub->add_flag("-v,--verbose", args->verbose, "show message type, MID and token");
    sub->add_option("--if-match", args->if_match, "If-Match with this ETag (hex; repeatable)");
    sub->add_flag("--if-none-match", args->if_none_match, "If-None-Match (only if the resource does not exist)");
    sub->add_option("--oscore", args->oscore,
                    "protect the request with OSCORE (RFC 8613), context from this TOML/JSON file");
    sub->add_flag("--key-update", args->key_update,
                  "with --oscore: start a key update with this request (key-limits draft, Figure 5)");
    sub->add_flag("--b2", args->b2,
                  "with --oscore: derive a fresh context with the server first (RFC 8613 Appendix B.2)");
    uint8_t code = m.code;
    sub->callback([args, code] { run(code, *args); });
  }
});

}  // namespace
}  // namespace acekdc::app
