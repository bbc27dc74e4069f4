#include "ace/introspect_driver.h"

#include "core/codepoints.h"

namespace acekdc::ace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;

namespace {
constexpr size_t kMaxIntrospectionDatagram = 4096;
}  // namespace

IntrospectionDriver::IntrospectionDriver(coap::Endpoint& ep, AceCoapGate& gate, std::unique_ptr<oscore::Context> ctx,
                                         IntrospectionDriverConfig config)
    : ep_(ep), gate_(gate), ctx_(std::move(ctx)), config_(std::move(config)) {}

IntrospectionDriver::~IntrospectionDriver() {
  std::map<uint64_t, Flight> flights;
  flights.swap(flights_);  // callbacks of cancelled exchanges find nothing
  for (auto& [id, f] : flights) {
    if (f.timer) ep_.cancel_timer(f.timer);
    if (f.exchange_id) ep_.cancel(f.exchange_id);
  }
  if (recheck_timer_) ep_.cancel_timer(recheck_timer_);
}

void IntrospectionDriver::answer(coap::RequestContext& ctx, ByteView out) {
  if (uint64_t parked = gate_.last_parked()) {
    deferred_[parked] = ctx.defer();
  } else if (auto resp = coap::Message::parse(out)) {
    ctx.response.code = resp->code;
    for (const auto& o : resp->options()) ctx.response.add_option(o.number, o.value);
    ctx.response.payload = std::move(resp->payload);
  }
  pump();
}

void IntrospectionDriver::pump() {
  for (auto& p : gate_.take_introspections()) {
    uint64_t id = next_flight_++;
    Flight f;
    f.token = std::move(p.token);
    f.request = std::move(p.request);
    flights_.emplace(id, std::move(f));
    flights_[id].timer = ep_.schedule(ep_.clock().now() + config_.timeout, [this, id](TimePoint) {
      auto it = flights_.find(id);
      if (it == flights_.end()) return;
      it->second.timer = 0;
      finish(id, std::nullopt);
    });
    send(id, std::nullopt);
  }
}

void IntrospectionDriver::send(uint64_t id, std::optional<Bytes> echo) {
  auto it = flights_.find(id);
  if (it == flights_.end()) return;
  Flight& f = it->second;
  coap::Message req(coap::Type::kCon, code::kPost, 0);
  req.set_uri_path(config_.path);
  req.set_uint(option::kContentFormat, cp::cf::kAceCbor);
  if (echo) req.set_option(option::kEcho, *echo);
  req.payload = f.request;
  Bytes buf(kMaxIntrospectionDatagram);
  f.exchange = oscore::Exchange{};
  auto n = ctx_->protect_request(req, buf, f.exchange);
  std::optional<coap::Message> outer;
  if (n)
    if (auto m = coap::Message::parse(ByteView(buf.data(), *n))) outer = std::move(*m);
  if (!outer) {
    finish(id, std::nullopt);
    return;
  }
  ++stats_.sent;
  f.exchange_id = 0;
  uint64_t ex = ep_.request(config_.as, std::move(*outer), coap::RequestOptions{},
                            [this, id](const coap::ClientEvent& ev) { on_event(id, ev); });
  // request() may have called back already (too many exchanges): the flight is then gone.
  if (auto again = flights_.find(id); again != flights_.end() && ex) again->second.exchange_id = ex;
}

void IntrospectionDriver::on_event(uint64_t id, const coap::ClientEvent& ev) {
  auto it = flights_.find(id);
  if (it == flights_.end()) return;
  it->second.exchange_id = 0;
  if (ev.status != coap::ClientStatus::kResponse || !ev.response) {
    if (ev.status == coap::ClientStatus::kNotification) return;
    finish(id, std::nullopt);
    return;
  }
  auto wire = ev.response->encode();
  Bytes plain(kMaxIntrospectionDatagram);
  auto d = wire ? ctx_->unprotect_response(*wire, it->second.exchange, plain)
                : Expected<size_t, oscore::Error>(unexpected(oscore::Error::kMalformedMessage));
  std::optional<coap::Message> inner;
  if (d)
    if (auto m = coap::Message::parse(ByteView(plain.data(), *d))) inner = std::move(*m);
  if (!inner) {  // not verified (or an unprotected error): no answer
    finish(id, std::nullopt);
    return;
  }
  if (inner->code == code::kUnauthorized && !it->second.echo_sent) {
    if (const auto* e = inner->find(option::kEcho)) {
      it->second.echo_sent = true;
      ++stats_.echo_resends;
      send(id, to_bytes(e->value));
      return;
    }
  }
  finish(id, IntrospectionReply{inner->code, std::move(inner->payload)});
}

void IntrospectionDriver::finish(uint64_t id, std::optional<IntrospectionReply> reply) {
  auto it = flights_.find(id);
  if (it == flights_.end()) return;
  Flight f = std::move(it->second);
  flights_.erase(it);
  if (f.timer) ep_.cancel_timer(f.timer);
  if (f.exchange_id) ep_.cancel(f.exchange_id);  // its callback finds no flight
  ++(reply ? stats_.answered : stats_.no_answer);
  AceCoapGate::IntrospectionDone done = gate_.complete_introspection(f.token, reply, ep_.clock().unix_time());
  for (auto& a : done.answers) {
    auto d = deferred_.find(a.parked);
    if (d == deferred_.end()) continue;
    coap::DeferredResponse to = d->second;
    deferred_.erase(d);
    auto m = coap::Message::parse(a.datagram);
    if (!m) continue;  // nothing to answer (the context went): the client times out
    coap::Message resp(coap::Type::kCon, m->code, 0);
    for (const auto& o : m->options()) resp.add_option(o.number, o.value);
    resp.payload = std::move(m->payload);
    ep_.send_separate(to, std::move(resp));
  }
  if (on_done_) on_done_(done);
  pump();  // the re-runs may have queued more (other tokens' re-checks)
}

void IntrospectionDriver::start_rechecks() {
  if (config_.recheck_every <= Duration::zero() || recheck_timer_) return;
  recheck_timer_ = ep_.schedule(ep_.clock().now() + config_.recheck_every, [this](TimePoint) {
    recheck_timer_ = 0;
    recheck();
    start_rechecks();
  });
}

void IntrospectionDriver::recheck() {
  AceCoapGate::IntrospectionDone done;
  done.dropped = gate_.purge(ep_.clock().unix_time());
  if (on_done_ && !done.dropped.empty()) on_done_(done);
  pump();
}

}  // namespace acekdc::ace
