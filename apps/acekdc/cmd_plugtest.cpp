// acekdc plugtest-server: the ETSI CoAP plugtest resources (as served by the
// test servers of Californium and libcoap) on our stack, for interop testing.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "acekdc/command.h"
#include "coap/server.h"
#include "io/udp.h"

namespace acekdc::app {
namespace {

struct PlugtestArgs {
  std::string listen = "[::]:5683";
  bool multicast = false;
  size_t block_size = 1024;
  double obs_interval = 5;
  double separate_delay = 1;
};

io::Loop* g_loop = nullptr;
void on_signal(int) {
  if (g_loop) g_loop->stop();
}

using coap::Message;
using coap::Request;
namespace code = coap::code;
namespace option = coap::option;

void text(Message& r, uint8_t c, std::string_view body) {
  r.code = c;
  r.set_uint(option::kContentFormat, cp::cf::kTextPlain);
  r.set_payload(body);
}

std::string describe(Request& req) {
  std::string s = "Type: " + std::string(coap::to_string(req.message.type)) + "\nCode: " +
                  coap::code_string(req.message.code) + "\nMID: " + std::to_string(req.message.message_id);
  return s;
}

std::string now_string() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%b %d %H:%M:%S", std::gmtime(&t));
  return buf;
}

std::string large_text(size_t n) {
  // a recognisable text: line numbers make block boundaries visible
  std::string s;
  for (int i = 0; s.size() < n; ++i) {
    char line[80];
    std::snprintf(line, sizeof line, "|---------------------- line %04d of the /large resource ---------|\n", i);
    s += line;
  }
  s.resize(n);
  return s;
}

struct State {
  std::string large_update = large_text(1280);
  uint16_t large_update_cf = cp::cf::kTextPlain;
  std::map<std::string, Bytes> created;  // /large-create/N and /create1
  int create_counter = 0;
  std::string validate = "validate resource v0";
  uint32_t validate_etag = 1;
  bool create1_exists = false;
  Bytes create1;
  int obs_counter = 0;
};

void add_resources(coap::Server& server, coap::Endpoint& ep, const PlugtestArgs& a, State& st) {
  server.add("/").on(code::kGet, [](Request&, Message& r) {
    // about as long as libcoap's banner, so `bench coap --compare` compares like with like
    text(r, code::kContent,
         "This is a test server made with acekdc, a C++20 CoAP/OSCORE/ACE stack.\n"
         "It serves the ETSI plugtest resources; see /.well-known/core.\n");
    r.set_uint(option::kMaxAge, 196607);
  }).hidden = true;

  auto& test = server.add("/test");
  test.attrs.rt = "test";
  test.attrs.title = "Default test resource";
  test.attrs.ct = {0};
  test.on(code::kGet, [](Request& req, Message& r) { text(r, code::kContent, describe(req)); });
  test.on(code::kPost, [](Request& req, Message& r) {
    r.code = code::kCreated;
    r.set_location_path("/location1/location2/location3");
  });
  test.on(code::kPut, [](Request& req, Message& r) { r.code = code::kChanged; });
  test.on(code::kDelete, [](Request& req, Message& r) { r.code = code::kDeleted; });
  test.on(code::kFetch, [](Request& req, Message& r) { text(r, code::kContent, as_string(req.payload)); });
  test.on(code::kPatch, [](Request& req, Message& r) { r.code = code::kChanged; });
  test.on(code::kIPatch, [](Request& req, Message& r) { r.code = code::kChanged; });

  auto& seg = server.add("/seg1/seg2/seg3");
  seg.attrs.title = "Long path resource";
  seg.on(code::kGet, [](Request&, Message& r) { text(r, code::kContent, "/seg1/seg2/seg3"); });

  auto& query = server.add("/query");
  query.attrs.title = "Resource accepting query parameters";
  query.on(code::kGet, [](Request& req, Message& r) {
    std::string s;
    for (auto q : req.queries()) s += (s.empty() ? "" : "&") + std::string(q);
    text(r, code::kContent, s.empty() ? "no query" : s);
  });

  auto& sep = server.add("/separate");
  sep.attrs.title = "Resource which cannot be served immediately and which cannot be acknowledged in a "
                    "piggy-backed way";
  double delay = a.separate_delay;
  sep.on(code::kGet, [&server, &ep, delay](Request& req, Message& r) {
    if (!req.can_defer()) {
      text(r, code::kContent, "separate");
      return;
    }
    coap::DeferredResponse d = req.defer();
    std::string body = describe(req);
    auto at = req.now + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(delay));
    ep.schedule(at, [&server, d, body](TimePoint) {
      Message resp;
      text(resp, code::kContent, body);
      server.respond_later(d, std::move(resp));
    });
  });

  std::string large = large_text(1280);
  auto& lg = server.add("/large");
  lg.attrs.rt = "block";
  lg.attrs.title = "Large resource";
  lg.attrs.sz = large.size();
  lg.on(code::kGet, [large](Request&, Message& r) { text(r, code::kContent, large); });

  auto& lu = server.add("/large-update");
  lu.attrs.rt = "block";
  lu.attrs.title = "Large resource that can be updated using PUT method";
  lu.on(code::kGet, [&st](Request&, Message& r) {
    r.code = code::kContent;
    r.set_uint(option::kContentFormat, st.large_update_cf);
    r.set_payload(st.large_update);
  });
  lu.on(code::kPut, [&st](Request& req, Message& r) {
    st.large_update = std::string(as_string(req.payload));
    st.large_update_cf = static_cast<uint16_t>(req.content_format().value_or(cp::cf::kTextPlain));
    r.code = code::kChanged;
  });

  auto& lc = server.add("/large-create");
  lc.attrs.rt = "block";
  lc.attrs.title = "Large resource that can be created using POST method";
  lc.on(code::kPost, [&st, &server](Request& req, Message& r) {
    std::string path = "/large-create/" + std::to_string(++st.create_counter);
    st.created[path] = to_bytes(req.payload);
    auto cf = req.content_format().value_or(cp::cf::kTextPlain);
    server.add(path).on(code::kGet, [&st, path, cf](Request&, Message& resp) {
      resp.code = code::kContent;
      resp.set_uint(option::kContentFormat, cf);
      resp.payload = st.created[path];
    });
    r.code = code::kCreated;
    r.set_location_path(path);
  });

  auto obs_handler = [&st](Request&, Message& r) {
    text(r, code::kContent, now_string() + " #" + std::to_string(st.obs_counter));
    r.set_uint(option::kMaxAge, 5);
  };
  auto& obs = server.add("/obs");
  obs.attrs.rt = "observe";
  obs.attrs.title = "Observable resource which changes every 5 seconds";
  obs.attrs.ct = {0};
  obs.observable = true;
  obs.con_notifications = true;
  obs.on(code::kGet, obs_handler);
  auto& obsn = server.add("/obs-non");
  obsn.attrs.rt = "observe";
  obsn.attrs.title = "Observable resource which changes every 5 seconds (NON notifications)";
  obsn.attrs.ct = {0};
  obsn.observable = true;
  obsn.on(code::kGet, obs_handler);
  // the observed state changes every obs_interval seconds
  auto interval = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.obs_interval));
  auto tick = std::make_shared<std::function<void(TimePoint)>>();
  *tick = [&server, &ep, &st, interval, tick](TimePoint now) {
    ++st.obs_counter;
    server.notify("/obs");
    server.notify("/obs-non");
    ep.schedule(now + interval, *tick);
  };
  ep.schedule(ep.clock().now() + interval, *tick);

  auto& mf = server.add("/multi-format");
  mf.attrs.title = "Resource that exists in different content formats (text/plain utf8 and application/xml)";
  mf.attrs.ct = {0, 41};
  mf.produced_formats = {cp::cf::kTextPlain, cp::cf::kXml};
  mf.on(code::kGet, [](Request& req, Message& r) {
    auto acc = req.accept().value_or(cp::cf::kTextPlain);
    r.code = code::kContent;
    r.set_uint(option::kContentFormat, acc);
    if (acc == cp::cf::kXml) {
      r.set_payload("<msg type=\"" + std::string(coap::to_string(req.message.type)) + "\" code=\"" +
                    coap::code_string(req.method()) + "\" mid=\"" + std::to_string(req.message.message_id) + "\"/>");
    } else {
      r.set_payload(describe(req));
    }
  });

  struct L {
    const char* path;
    const char* rt;
    const char* if_;
  };
  for (L l : {L{"/link1", "Type1 Type2", "If1"}, L{"/link2", "Type2 Type3", "If2"}, L{"/link3", "Type1 Type3", "foo"}}) {
    auto& r = server.add(l.path);
    r.attrs.rt = l.rt;
    r.attrs.if_ = l.if_;
    r.attrs.title = "Link test resource";
    r.on(code::kGet, [p = std::string(l.path)](Request&, Message& resp) { text(resp, code::kContent, p); });
  }

  auto& path = server.add("/path");
  path.attrs.ct = {40};
  path.attrs.title = "Hierarchical link description entry";
  path.on(code::kGet, [](Request&, Message& r) {
    r.code = code::kContent;
    r.set_uint(option::kContentFormat, cp::cf::kLinkFormat);
    r.set_payload("</path/sub1>,</path/sub2>,</path/sub3>");
  });
  for (int i = 1; i <= 3; ++i) {
    std::string p = "/path/sub" + std::to_string(i);
    auto& sub = server.add(p);
    sub.attrs.title = "Hierarchical link description sub-resource";
    sub.on(code::kGet, [p](Request&, Message& r) { text(r, code::kContent, p); });
  }

  auto& lq = server.add("/location-query");
  lq.attrs.title = "Perform POST transaction with responses containing several Location-Query options";
  lq.on(code::kPost, [](Request&, Message& r) {
    r.code = code::kCreated;
    r.add_string(option::kLocationQuery, "first=1");
    r.add_string(option::kLocationQuery, "second=2");
  });

  auto& val = server.add("/validate");
  val.attrs.title = "Resource which varies";
  val.attrs.ct = {0};
  auto etag = [&st] {
    uint8_t b[4];
    size_t n = coap::encode_uint(st.validate_etag, b);
    return Bytes(b, b + std::max<size_t>(n, 1));
  };
  val.on(code::kGet, [&st, etag](Request& req, Message& r) {
    Bytes tag = etag();
    for (const auto& o : req.message.options()) {
      if (o.number == option::kETag && equal(o.value, tag)) {
        r.code = code::kValid;
        r.set_option(option::kETag, tag);
        return;
      }
    }
    text(r, code::kContent, st.validate);
    r.set_option(option::kETag, tag);
  });
  val.on(code::kPut, [&st, etag](Request& req, Message& r) {
    if (const auto* im = req.message.find(option::kIfMatch); im && !im->value.empty() && !equal(im->value, etag())) {
      r.code = code::kPreconditionFailed;
      return;
    }
    st.validate = std::string(as_string(req.payload));
    ++st.validate_etag;
    r.code = code::kChanged;
    r.set_option(option::kETag, etag());
  });

  auto& c1 = server.add("/create1");
  c1.attrs.title = "Resource which does not exist yet (to perform atomic PUT)";
  c1.on(code::kPut, [&st](Request& req, Message& r) {
    if (req.message.has(option::kIfNoneMatch) && st.create1_exists) {
      coap::error_response(r, code::kPreconditionFailed, "Precondition Failed");
      return;
    }
    r.code = st.create1_exists ? code::kChanged : code::kCreated;
    st.create1_exists = true;
    st.create1 = to_bytes(req.payload);
  });
  c1.on(code::kGet, [&st](Request&, Message& r) {
    if (!st.create1_exists) {
      coap::error_response(r, code::kNotFound, "Not Found");
      return;
    }
    r.code = code::kContent;
    r.payload = st.create1;
  });
  c1.on(code::kDelete, [&st](Request&, Message& r) {
    st.create1_exists = false;
    r.code = code::kDeleted;
  });
}

void run(const PlugtestArgs& a) {
  auto addr = coap::Address::parse(a.listen);
  if (!addr) {
    std::fprintf(stderr, "error: bad --listen address: %s\n", a.listen.c_str());
    fail_with(kExitUsage);
  }
  SystemClock clock;
  SystemRandom random;
  coap::EndpointConfig ecfg;
  ecfg.dedup_capacity = 1 << 16;
  coap::Endpoint ep(clock, random, ecfg);
  coap::ServerConfig scfg;
  scfg.block_size = a.block_size;
  coap::Server server(ep, scfg);
  State st;
  add_resources(server, ep, a, st);
  auto sock = io::UdpSocket::bind(*addr);
  if (!sock) {
    std::fprintf(stderr, "error: %s %s\n", io::to_string(sock.error()), a.listen.c_str());
    fail_with(kExitFailure);
  }
  if (a.multicast) {
    for (const char* g : {cp::coap::kAllCoapNodesIpv4, cp::coap::kAllCoapNodesIpv6LinkLocal,
                          cp::coap::kAllCoapNodesIpv6SiteLocal}) {
      auto ga = coap::Address::parse_host(g, addr->port);
      if (ga && sock->join_group(*ga)) std::fprintf(stderr, "joined %s\n", g);
    }
  }
  std::fprintf(stderr, "plugtest-server listening on %s\n", sock->local_address().to_string().c_str());
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));
  g_loop = &loop;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  loop.run();
  g_loop = nullptr;
}

Registrar reg("plugtest-server", [](CLI::App& root) {
  auto args = std::make_shared<PlugtestArgs>();
  auto* sub = root.add_subcommand("plugtest-server", "CoAP server with the ETSI plugtest resources");
  sub->add_option("--listen", args->listen, "address:port to listen on (default [::]:5683, dual-stack)");
  sub->add_flag("--multicast", args->multicast, "join the All-CoAP-Nodes groups (224.0.1.187, ff02::fd, ff05::fd)");
  sub->add_option("--block-size", args->block_size, "largest Block2 size sent (16..1024)");
  sub->add_option("--obs-interval", args->obs_interval, "seconds between /obs changes (default 5)");
  sub->add_option("--separate-delay", args->separate_delay, "seconds before /separate answers (default 1)");
  sub->callback([args] { run(*args); });
});

}  // namespace
}  // namespace acekdc::app
