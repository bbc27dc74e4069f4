// sim.h: a deterministic network simulator for CoAP endpoints (tests and fuzzing).
//
// Endpoints register with an address; run() moves datagrams between them with
// seeded loss, duplication and reordering (random delay), and drives every
// endpoint's timers with one FakeClock. Nothing here touches sockets or real time.
#pragma once

#include <map>
#include <vector>

#include "coap/endpoint.h"
#include "core/clock.h"
#include "core/random.h"

namespace acekdc::coap::sim {

struct LinkParams {
  double loss = 0;         // probability a datagram is dropped
  double duplicate = 0;    // probability a datagram is delivered twice
  Duration min_delay = milliseconds(1);
  Duration max_delay = milliseconds(1);  // random delay in [min, max]: reordering
};

class Network {
 public:
  Network(FakeClock& clock, uint64_t seed, LinkParams params = {}) : clock_(clock), rng_(seed), params_(params) {}

  void attach(const Address& a, Endpoint& ep) { nodes_[key(a)] = {a, &ep}; }
  LinkParams& params() { return params_; }
  // drop_next makes the next n datagrams sent from `from` disappear.
  void drop_next(const Address& from, int n) { drops_[key(from)] += n; }
  // inject delivers raw bytes to `to` as if sent by `from`.
  void inject(const Address& from, const Address& to, ByteView data) {
    queue_.push_back({clock_.now(), seq_++, from, to, to_bytes(data), key(to)});
  }

  // run advances time until `until` or until nothing is pending.
  void run(Duration max_time) {
    TimePoint end = clock_.now() + max_time;
    collect();
    while (true) {
      TimePoint next = TimePoint::max();
      for (auto& d : queue_) next = std::min(next, d.at);
      for (auto& [k, n] : nodes_) {
        if (auto dl = n.ep->next_deadline()) next = std::min(next, *dl);
      }
      if (next > end) break;  // nothing (more) to do before `end`
      if (next > clock_.now()) clock_.advance(next - clock_.now());
      TimePoint now = clock_.now();
      // deliver everything due, in (time, seq) order
      std::stable_sort(queue_.begin(), queue_.end(),
                       [](const Pending& a, const Pending& b) { return a.at < b.at || (a.at == b.at && a.seq < b.seq); });
      std::vector<Pending> due;
      while (!queue_.empty() && queue_.front().at <= now) {
        due.push_back(std::move(queue_.front()));
        queue_.erase(queue_.begin());
      }
      for (auto& d : due) {
        auto it = nodes_.find(d.dest);
        if (it != nodes_.end()) it->second.ep->receive(d.data, d.from, now, d.to.is_multicast());
        ++delivered_;
      }
      for (auto& [k, n] : nodes_) {
        if (auto dl = n.ep->next_deadline(); dl && *dl <= now) n.ep->handle_timeout(now);
      }
      collect();
      if (queue_.empty() && !any_deadline_before(end) && due.empty()) break;
      if (now >= end) break;
    }
  }
  size_t delivered() const { return delivered_; }
  size_t dropped() const { return dropped_; }
  // sent returns every datagram sent so far by `from` (for inspection).
  const std::vector<Bytes>& sent(const Address& from) { return log_[key(from)]; }

 private:
  struct Node {
    Address addr;
    Endpoint* ep;
  };
  struct Pending {
    TimePoint at;
    uint64_t seq;
    Address from, to;
    Bytes data;
    std::string dest;  // node key (differs from `to` for multicast)
  };
  static std::string key(const Address& a) { return a.to_string(); }
  bool any_deadline_before(TimePoint end) {
    for (auto& [k, n] : nodes_)
      if (auto dl = n.ep->next_deadline(); dl && *dl <= end) return true;
    return false;
  }
  double unit() { return rng_.uniform(1000000) / 1e6; }
  Duration delay() {
    auto span = (params_.max_delay - params_.min_delay).count();
    return params_.min_delay + Duration(span > 0 ? static_cast<Duration::rep>(rng_.uniform(span + 1)) : 0);
  }
  void collect() {
    for (auto& [k, n] : nodes_) {
      for (const Transmit& t : n.ep->transmits()) {
        log_[k].push_back(t.data);
        if (drops_[k] > 0) {
          --drops_[k];
          ++dropped_;
          continue;
        }
        if (unit() < params_.loss) {
          ++dropped_;
          continue;
        }
        if (t.peer.is_multicast()) {
          for (auto& [k2, n2] : nodes_)
            if (k2 != k) queue_.push_back({clock_.now() + delay(), seq_++, n.addr, t.peer, t.data, k2});
          continue;
        }
        queue_.push_back({clock_.now() + delay(), seq_++, n.addr, t.peer, t.data, key(t.peer)});
        if (unit() < params_.duplicate)
          queue_.push_back({clock_.now() + delay(), seq_++, n.addr, t.peer, t.data, key(t.peer)});
      }
      n.ep->clear_transmits();
    }
  }

  FakeClock& clock_;
  FakeRandom rng_;
  LinkParams params_;
  std::map<std::string, Node> nodes_;
  std::map<std::string, int> drops_;
  std::map<std::string, std::vector<Bytes>> log_;
  std::vector<Pending> queue_;
  uint64_t seq_ = 0;
  size_t delivered_ = 0;
  size_t dropped_ = 0;
};

}  // namespace acekdc::coap::sim
