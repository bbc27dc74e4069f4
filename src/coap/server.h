// Server: a resource tree over an Endpoint (RFC 7252 §5.8, RFC 8132), with
// server-side block-wise transfer (RFC 7959), Observe (RFC 7641) and
// /.well-known/core discovery in link format (RFC 6690).
//
//   Server server(endpoint);                  // installs itself as the request handler
//   Resource& r = server.add("/temp");
//   r.attrs.rt = "temperature"; r.attrs.ct = {0}; r.observable = true;
//   r.on(code::kGet, [](Request& req, Message& resp) {
//     resp.code = code::kContent; resp.set_uint(option::kContentFormat, 0); resp.set_payload("22 C"); });
//   server.notify("/temp");                   // when the state changed
//
// Automatic answers (all with a short diagnostic payload): 4.04 unknown path,
// 4.05 method without handler, 4.15 request Content-Format not in
// Resource::accepted_formats, 4.06 Accept not in Resource::produced_formats,
// 4.08 Block1 out of sequence, 4.13 body larger than ServerConfig::max_body_size
// (with Size1), 4.02 Block2 beyond the end, 4.00 bad Block option.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coap/endpoint.h"

namespace acekdc::coap {

struct ServerConfig {
  size_t block_size = 1024;             // largest Block2 this server sends (16..1024)
  size_t max_body_size = 64 * 1024;     // largest Block1 body reassembled
  size_t max_block1_transfers = 64;     // concurrent Block1 uploads (oldest dropped)
  Duration block1_lifetime = seconds(cp::coap::param::kExchangeLifetimeS);
  size_t max_observers = 1024;          // over all resources
  // A notification is sent as CON when the last CON to that observer is older
  // than this (RFC 7641 §4.5: at least every 24 hours).
  Duration con_notification_interval = std::chrono::hours(24);
};

// Request is what a handler sees.
class Request {
 public:
  Request(const MessageView& msg, const Address& peer, bool multicast, TimePoint now, ByteView payload,
          std::string_view path, RequestContext* ctx)
      : message(msg), peer(peer), multicast(multicast), now(now), payload(payload), path(path), ctx_(ctx) {}
  const MessageView& message;
  const Address& peer;
  bool multicast;
  TimePoint now;
  ByteView payload;       // the whole body (Block1 reassembled)
  std::string_view path;  // "/a/b"
  uint8_t method() const { return message.code; }
  std::optional<uint32_t> content_format() const { return message.get_uint(option::kContentFormat); }
  std::optional<uint32_t> accept() const { return message.get_uint(option::kAccept); }
  // query returns the value of the first Uri-Query "key=value" (or "" for a bare "key").
  std::optional<std::string_view> query(std::string_view key) const;
  std::vector<std::string_view> queries() const;
  // can_defer: false while the server re-runs a handler for an Observe notification.
  bool can_defer() const { return ctx_ != nullptr; }
  // defer: answer later with Server::respond_later (only if can_defer()).
  DeferredResponse defer() { return ctx_->defer(); }

 private:
  RequestContext* ctx_;
};

using Handler = std::function<void(Request&, Message& response)>;

struct LinkAttrs {
  std::string rt;               // resource type
  std::string if_;              // interface description
  std::string title;
  std::vector<uint16_t> ct;     // content formats
  size_t sz = 0;                // size estimate (0: not shown)
};

struct Resource {
  std::string path;
  LinkAttrs attrs;
  bool observable = false;
  bool con_notifications = false;   // every notification as CON
  bool hidden = false;              // not listed in /.well-known/core
  std::vector<uint16_t> accepted_formats;  // request Content-Format allowed (empty: any)
  std::vector<uint16_t> produced_formats;  // Accept values served (empty: any)
  std::array<Handler, 8> handlers;         // indexed by method code 1..7

  Resource& on(uint8_t method, Handler h) {
    if (method >= 1 && method <= 7) handlers[method] = std::move(h);
    return *this;
  }
  uint32_t observe_seq = 2;  // last sequence number sent
};

class Server {
 public:
  explicit Server(Endpoint& ep, ServerConfig cfg = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // add creates (or returns) the resource at `path` ("/a/b"). References stay
  // valid until remove().
  Resource& add(std::string_view path);
  bool remove(std::string_view path);
  Resource* find(std::string_view path);

  // notify re-runs the GET handler of `path` for every observer and sends the
  // result as a notification (2.xx with a new sequence number; anything else
  // ends the observation).
  void notify(std::string_view path);
  size_t num_observers(std::string_view path) const;
  size_t num_observers() const;

  // respond_later sends a separate response for a deferred request.
  void respond_later(const DeferredResponse& d, Message response, SendCallback done = {});

  // link_format renders /.well-known/core (RFC 6690), optionally filtered by
  // one "attr=value" query (value may end in '*').
  std::string link_format(std::string_view filter = {}) const;

  Endpoint& endpoint() { return ep_; }
  const ServerConfig& config() const { return cfg_; }

  // ---- hooks for a layer between the Endpoint and this Server (e.g. OSCORE) ----
  // handle_request dispatches one request to the resource tree; `ctx` may be
  // built by that layer around a request it decoded (the Server's own handler on
  // the Endpoint calls it too).
  void handle_request(RequestContext& ctx) { on_request(ctx); }
  // ResponseHook sees every response this Server sends on its own (Observe
  // notifications, respond_later) after its token is set, and may rewrite it;
  // returning false drops the message (a notification then ends the observation).
  using ResponseHook = std::function<bool(const Address& peer, ByteView token, Message& response)>;
  void set_response_hook(ResponseHook h) { response_hook_ = std::move(h); }

 private:
  struct Observer;
  struct Block1State;
  void on_request(RequestContext& ctx);
  void dispatch(RequestContext& ctx, Resource& r, ByteView payload, std::string_view path);
  void apply_block2(const MessageView* req, Message& resp);
  void remove_observer(const std::string& path, const Address& peer, ByteView token);
  void send_notification(Resource& r, Observer& o, TimePoint now);

  Endpoint& ep_;
  ServerConfig cfg_;
  std::map<std::string, std::unique_ptr<Resource>, std::less<>> resources_;
  std::multimap<std::string, std::unique_ptr<Observer>, std::less<>> observers_;
  std::vector<std::unique_ptr<Block1State>> block1_;
  std::string path_scratch_;
  ResponseHook response_hook_;
};

// error_response fills `resp` with `code` and a short diagnostic text (the one
// place where server-side errors become CoAP responses).
void error_response(Message& resp, uint8_t code, std::string_view diagnostic);

}  // namespace acekdc::coap
