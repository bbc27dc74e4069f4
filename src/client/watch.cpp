#include "client/watch.h"

#include <functional>

#include "coap/endpoint.h"
#include "core/codepoints.h"
#include "io/udp.h"
#include "oscore/error.h"

namespace acekdc::client {

namespace code = cp::coap::code;
namespace option = cp::coap::option;

namespace {

constexpr size_t kMaxDatagram = 8192;

Unexpected<Failure> fail(Error e, std::string detail = {}) { return unexpected(Failure{e, 0, std::move(detail)}); }

std::string strip_slash(std::string p) {
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  return p;
}

// copy_into sets `to`'s code, options and payload from a datagram.
bool copy_into(ByteView datagram, coap::Message& to) {
  auto m = coap::Message::parse(datagram);
  if (!m) return false;
  to.code = m->code;
  for (const auto& o : m->options()) to.add_option(o.number, o.value);
  to.payload = std::move(m->payload);
  return true;
}

}  // namespace

Expected<void, Failure> watch(GroupMember& member, UdpTransport& transport, const WatchOptions& w,
                              const std::function<void(const Update&)>& on_update) {
  (void)transport;
  if (auto l = member.load(); !l) return unexpected(l.error());
  const std::string control_path = strip_slash(member.session().control_path);
  if (w.control && control_path.empty())
    return fail(Error::kInvalidArgument, "the membership has no control_path (join with --control-path)");

  SystemClock clock;
  SystemRandom random;
  coap::Endpoint ep(clock, random);
  coap::Address local = w.control ? w.listen : coap::Address{};
  if (!w.control) local.family = member.kdc().family;
  auto sock = io::UdpSocket::bind(local);
  if (!sock) return fail(Error::kInvalidArgument, std::string("cannot bind: ") + io::to_string(sock.error()));
  io::Loop loop(ep, clock);
  loop.add_socket(std::move(*sock));

  // The registration: GET nodes/NODENAME, with Observe: 0 unless serving the control path.
  auto ctx = member.context();
  if (!ctx) return unexpected(ctx.error());
  coap::Message req(coap::Type::kCon, code::kGet, 0);
  if (!w.control) req.set_uint(option::kObserve, 0);
  req.set_uri_path("/ace-group/" + member.group() + "/nodes/" + member.session().node);
  Bytes buf(kMaxDatagram);
  oscore::Exchange ex;
  // protect_registration protects `req` (again, with a fresh sequence number, for the
  // Echo resend) into the outer message the endpoint sends.
  auto protect_registration = [&]() -> Expected<coap::Message, Failure> {
    ex = oscore::Exchange{};
    auto n = (*ctx)->protect_request(req, buf, ex);
    if (!n) return fail(Error::kCrypto, std::string("protect: ") + oscore::to_string(n.error()));
    auto outer = coap::Message::parse(ByteView(buf.data(), *n));
    if (!outer) return fail(Error::kInvalidArgument, "registration does not parse");
    outer->remove(option::kObserve);  // the endpoint adds the outer Observe: 0 itself
    return std::move(*outer);
  };
  auto outer = protect_registration();
  if (!outer) return unexpected(outer.error());
  // A KDC that restarted answers the first registration with a verified 4.01 + Echo
  // (RFC 8613 Appendix B.1.2): the registration is sent once more with that Echo.
  bool echo_sent = false, resend_with_echo = false;

  int updates = 0;
  bool done = false, registered = false;
  std::optional<Failure> error;
  std::optional<uint64_t> last_num;
  auto deliver = [&](ByteView payload, const char* via) {
    auto k = decode_key_distribution(payload);
    if (!k) return false;
    last_num = k->num;
    if (auto s = member.accept_keys(*k); !s) {
      error = s.error();
      done = true;
      return false;
    }
    on_update(Update{std::move(*k), via, {}, false});
    return true;
  };

  coap::RequestOptions opts;
  opts.observe = !w.control;
  opts.timeout = w.control ? member.timeout() : (w.duration ? *w.duration : seconds(int64_t{3600} * 24 * 365));
  std::function<void(const coap::ClientEvent&)> on_registration = [&](const coap::ClientEvent& ev) {
    if (ev.status != coap::ClientStatus::kResponse && ev.status != coap::ClientStatus::kNotification) {
      if (ev.status == coap::ClientStatus::kCancelled || resend_with_echo) return;
      if (!registered || (!w.control && !w.poll)) {
        error = Failure{Error::kNoResponse, 0, registered ? "the observation ended" : "no answer from the KDC"};
        done = true;
      }
      return;
    }
    auto dg = ev.response->encode();
    if (!dg) return;
    Bytes dec(kMaxDatagram);
    auto d = (*ctx)->unprotect_response(*dg, ex, dec);
    if (!d) return;  // not from the KDC, or a replayed notification: dropped
    auto inner = coap::Message::parse(ByteView(dec.data(), *d));
    if (!inner) return;
    if (!registered && !echo_sent) {
      if (auto echo = echo_challenge_of(*inner)) {
        req.set_option(option::kEcho, *echo);
        echo_sent = resend_with_echo = true;
        member.note_echo_round();
        return;
      }
    }
    if (inner->code != code::kContent) {
      error = refused("watch", *inner);
      done = true;
      return;
    }
    const bool first = !registered;
    registered = true;
    if (!w.control && !inner->find(option::kObserve) && ev.status == coap::ClientStatus::kResponse) {
      error = Failure{Error::kRefused, inner->code, "the KDC does not offer Observe on nodes/NODENAME"};
      done = true;
      return;
    }
    if (deliver(inner->payload, first ? "registration" : "notification") && !first) {
      if (w.max_updates && ++updates >= w.max_updates) done = true;
    }
  };
  ep.request(member.kdc(), std::move(*outer), opts, on_registration);

  // The control path: the KDC's POST (new keying material) and DELETE (evicted).
  ep.set_request_handler([&](coap::RequestContext& rc) {
    coap::Message in = coap::Message::from_view(rc.request);
    auto dg = in.encode();
    if (!dg) return;
    Bytes plain(kMaxDatagram);
    oscore::Exchange sx;
    auto pn = (*ctx)->unprotect_request(*dg, plain, sx);
    if (!pn) {
      auto e = oscore::build_error_response(*dg, pn.error(), buf);
      if (e) copy_into(ByteView(buf.data(), *e), rc.response);
      return;
    }
    auto inner = coap::Message::parse(ByteView(plain.data(), *pn));
    if (!inner) return;
    coap::Message resp(coap::Type::kAck, code::kNotFound, 0);
    bool evicted = false;
    if (!w.control || strip_slash(inner->uri_path()) != control_path) {
      resp.code = code::kNotFound;
    } else if (inner->code == code::kPost) {
      resp.code = deliver(inner->payload, "control_path") ? code::kChanged : code::kBadRequest;
      if (resp.code == code::kChanged && w.max_updates && ++updates >= w.max_updates) done = true;
    } else if (inner->code == code::kDelete) {
      resp.code = code::kDeleted;
      evicted = true;
    } else {
      resp.code = code::kMethodNotAllowed;
    }
    Bytes out(kMaxDatagram);
    auto m = (*ctx)->protect_response(resp, sx, out);
    if (m) copy_into(ByteView(out.data(), *m), rc.response);
    if (evicted) {
      member.state().forget_membership(member.group());
      Update u;
      u.via = "control_path";
      u.evicted = true;
      on_update(u);
      done = true;
    }
  });

  // Polling at the Key Update Check Interval (seed §4.2): a plain GET nodes/NODENAME
  // from the same socket; a version not seen yet is reported as "poll".
  auto poll_once = [&] {
    coap::Message g(coap::Type::kCon, code::kGet, 0);
    g.set_uri_path("/ace-group/" + member.group() + "/nodes/" + member.session().node);
    // A fresh context per poll: its sequence numbers come from a chunk reserved under
    // the state lock, never from the watch context's (another process may have
    // reserved the numbers after that chunk meanwhile).
    auto fresh = member.context();
    if (!fresh) return;
    std::shared_ptr<oscore::Context> pctx = std::move(*fresh);
    auto pex = std::make_shared<oscore::Exchange>();
    Bytes pbuf(kMaxDatagram);
    auto pn = pctx->protect_request(g, pbuf, *pex);
    if (!pn) return;
    auto pm = coap::Message::parse(ByteView(pbuf.data(), *pn));
    if (!pm) return;
    coap::RequestOptions po;
    po.timeout = member.timeout();
    ep.request(member.kdc(), std::move(*pm), po, [&, pex, pctx](const coap::ClientEvent& ev) {
      if (ev.status != coap::ClientStatus::kResponse || !ev.response) return;
      auto dg = ev.response->encode();
      if (!dg) return;
      Bytes dec(kMaxDatagram);
      auto d = pctx->unprotect_response(*dg, *pex, dec);
      if (!d) return;
      auto inner = coap::Message::parse(ByteView(dec.data(), *d));
      if (!inner || inner->code != code::kContent) return;
      auto k = decode_key_distribution(inner->payload);
      if (!k || (last_num && *last_num == k->num)) return;
      if (deliver(inner->payload, "poll") && w.max_updates && ++updates >= w.max_updates) done = true;
    });
  };
  const TimePoint end = w.duration ? clock.now() + *w.duration : TimePoint::max();
  TimePoint next_poll = w.poll ? clock.now() + *w.poll : TimePoint::max();
  while (!done && clock.now() < end && !(w.stop && w.stop->load())) {
    if (resend_with_echo) {
      resend_with_echo = false;
      auto again = protect_registration();
      if (!again) return unexpected(again.error());
      ep.request(member.kdc(), std::move(*again), opts, on_registration);
    }
    if (clock.now() >= next_poll) {
      poll_once();
      next_poll = clock.now() + *w.poll;
    }
    loop.run_once(std::min<Duration>(std::min(end, next_poll) - clock.now(), milliseconds(100)));
  }
  loop.flush();
  if (error) return unexpected(*error);
  if (!registered && !done) return fail(Error::kNoResponse, "no answer from the KDC");
  return {};
}

}  // namespace acekdc::client
