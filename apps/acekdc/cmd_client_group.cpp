// acekdc client send|listen: Group OSCORE (group mode) messages between members of a
// KDC group, with the keying material, key pair and Sender ID the member holds in its
// --state (from `client join`, `client keys`, `client watch`). docs/group-oscore.md.
//
//   acekdc client listen --kdc URI --group G [--listen 0.0.0.0:5683] [--join 224.0.1.187]
//       [--count N] [--timeout S] [--poll S] [--echo] [--json]
//     prints each verified request with its sender ("request from <sid> (<roles>) POST
//     /group: <payload>") and answers it in group mode ("ack <payload>"). With --echo
//     (or the group policy seq_sync = echo) the first request of each sender since the
//     listener started gets a 4.01 with Echo instead (RFC 9175); `send` repeats it with
//     that Echo to the challenger, and only then it is delivered: a request captured
//     before a restart of the listener is never delivered again.
//   acekdc client send --kdc URI --group G [--to 224.0.1.187:5683] [--wait S] PAYLOAD
//     checks the material's version at the KDC (ctx-num; new material fetched if it
//     changed; --stored: no check), sends one NON POST group request and prints each
//     verified response.
//
// Unknown sender: its public key is fetched from the KDC (FETCH pub-key with its Sender
// ID), then the message is verified. A message under a Group ID this member does not
// know is kept (PendingMessages, OPT4) while the latest material is fetched (GET
// /ace-group/G), then retried. The listener also rekeys when the stored material
// changes (a `client watch` of the same --state) and polls ctx-num at the Key Update
// Check Interval (group policies; --poll overrides). No multicast address comes from
// the KDC (the -05 material has none): --to / --join default to the CoAP all-nodes
// group 224.0.1.187, port 5683. Never prints key material.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "acekdc/alg_names.h"
#include "acekdc/command.h"
#include "client/kdc_client.h"
#include "coap/address.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "grouposcore/group_context.h"
#include "grouposcore/group_socket.h"
#include "grouposcore/pending.h"

namespace acekdc::app {
namespace {

using grouposcore::GroupContext;
using grouposcore::GroupExchange;

struct CgArgs {
  std::string kdc_uri;
  std::string group;
  std::string state;
  std::string to = "224.0.1.187:5683";
  std::string bind = "0.0.0.0:0";
  std::string listen = "0.0.0.0:5683";
  std::string join;
  std::string path = "/group";
  std::string payload;
  double wait = 2;
  double timeout = 0;   // listen: 0 = forever
  double kdc_timeout = 10;
  double poll = 0;      // 0: the group's Key Update Check Interval, if any
  int count = 0;
  bool json = false;
  bool stored_only = false;  // send: do not ask the KDC for the current version first
  bool echo = false;         // listen: Echo challenge for each new sender (also: policy seq_sync = echo)
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitUsage);
}

Duration to_duration(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

std::string printable(ByteView b) {
  std::string s;
  for (uint8_t c : b) s += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
  return s;
}

std::string json_str(std::string_view v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      s += '\\';
      s += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      s += b;
    } else {
      s += c;
    }
  }
  return s + "\"";
}

// GroupPeer: this member's Group OSCORE context built from its --state, and what it
// knows of the other members' roles.
class GroupPeer {
 public:
  explicit GroupPeer(const CgArgs& a) : state_(a.state), json_(a.json) {
    coap::Address kdc;
    if (!a.kdc_uri.empty()) {
      std::string u = a.kdc_uri;
      while (!u.empty() && u.back() == '/') u.pop_back();
      auto r = client::resolve_uri(u + "/");
      if (!r) usage(r.error().detail);
      kdc = r->first;
    }
    member_ = std::make_unique<client::GroupMember>(*provider_, transport_, state_, a.group, kdc,
                                                    to_duration(a.kdc_timeout));
    auto seq = state_.seq_store("group-seq");
    if (!seq) usage(seq.error().detail);
    // Each group context claims its own chunk under STATE/lock (a `send` next to the
    // same member's `listen` never uses the same Partial IV).
    seq_ = std::make_unique<client::ClaimingSequenceStore>(state_.path(), std::move(*seq),
                                                           oscore::SequenceAllocator::kDefaultChunk);
  }

  // load builds the context from the stored material (exit on failure).
  void load() {
    auto k = state_.load_keys(member_->group());
    if (!k) die("no keying material in --state (join first)", k.error().describe());
    if (k->left) die("this member left the group", "its stored material is stale");
    auto key = state_.load_private_key(member_->group());
    if (!key) die("no private key in --state", key.error().describe());
    auto pair = key->to_keypair();
    if (!pair) die("the stored key is not a signature key", "");
    // The group's signature algorithm as the KDC stated it (sign_alg of the material,
    // recorded by join / keys); state from before it was recorded: the key's curve.
    if (k->sign) {
      sign_alg_ = static_cast<int>(k->sign->alg);
    } else {
      sign_alg_ = pair->crv == cp::crv::kP256 ? cp::alg::kES256 : cp::alg::kEdDSA;
    }
    if (client::sign_curve(sign_alg_) != pair->crv)
      die("the stored key does not fit the group's signature algorithm", "join again");
    grouposcore::GroupConfig cfg;
    cfg.material = material_of(k->keys);
    cfg.own_key = std::move(*pair);
    cfg.store = seq_.get();
    // When another process of this member (a `send` next to this `listen`) claimed
    // since, the context restarts its sequence on a fresh claim instead of failing.
    cfg.restart_sequence_on_failure = true;
    cfg.echo_new_senders = echo_;
    auto ctx = GroupContext::create(*provider_, std::move(cfg));
    if (!ctx) die("group context", grouposcore::to_string(ctx.error()));
    ctx_ = std::move(*ctx);
    num_ = k->keys.num;
    add_keys(k->keys.pub_keys);
    install_lookup();
  }

  // update switches to `keys` if it is a version not in use; true if it did.
  bool update(const client::GroupKeys& keys) {
    if (keys.num == num_ && equal(keys.group_id, ctx_->group_id())) return false;
    auto next = ctx_->rekey(material_of(keys));
    if (!next) {
      std::fprintf(stderr, "material version %llu not used: %s\n", static_cast<unsigned long long>(keys.num),
                   grouposcore::to_string(next.error()));
      return false;
    }
    ctx_ = std::move(*next);
    num_ = keys.num;
    add_keys(keys.pub_keys);
    install_lookup();
    if (json_) {
      std::printf("{\"op\":\"rekey\",\"ok\":true,\"num\":%llu,\"group_id\":\"%s\",\"sender_id\":\"%s\"}\n",
                  static_cast<unsigned long long>(num_), to_hex(ctx_->group_id()).c_str(),
                  to_hex(ctx_->sender_id()).c_str());
    } else {
      std::printf("rekeyed: version %llu, Group ID %s, Sender ID %s\n", static_cast<unsigned long long>(num_),
                  to_hex(ctx_->group_id()).c_str(), to_hex(ctx_->sender_id()).c_str());
    }
    std::fflush(stdout);
    return true;
  }

  // fetch_keys asks the KDC for the latest material; true if it changed the context.
  bool fetch_keys() {
    auto k = member_->keys();
    if (!k) {
      note("cannot get the latest keying material: " + k.error().describe());
      return false;
    }
    return update(*k);
  }

  // follow_stored switches to material another process (`client watch`) stored.
  bool follow_stored() {
    auto k = state_.load_keys(member_->group());
    if (!k || k->left) return false;
    return update(k->keys);
  }

  std::optional<uint64_t> kdc_version() {
    auto v = member_->version();
    if (!v) {
      note("cannot get the material's version: " + v.error().describe());
      return std::nullopt;
    }
    return *v;
  }

  // policy returns a group policy's value (REQ14), asking the KDC once; nullopt if
  // the KDC has none or cannot be asked.
  std::optional<int64_t> policy(int64_t label) {
    if (!policies_) {
      auto p = member_->policies();
      policies_ = p ? std::move(*p) : std::vector<client::Policy>{};
    }
    for (const auto& x : *policies_)
      if (x.label == label) return x.value;
    return std::nullopt;
  }
  // check_interval: the group policy Key Update Check Interval (seconds), if the KDC has one.
  std::optional<int64_t> check_interval() {
    auto v = policy(cp::gc::kPolicyKeyUpdateCheckInterval);
    if (v && *v > 0) return v;
    return std::nullopt;
  }
  // set_echo: challenge each new sender with Echo (GroupConfig::echo_new_senders); before load().
  void set_echo(bool on) { echo_ = on; }

  std::string roles_of(ByteView sid) const {
    auto it = roles_.find(Bytes(sid.begin(), sid.end()));
    return it == roles_.end() ? std::string() : it->second;
  }
  std::string roles_json(ByteView sid) const {
    std::string r = roles_of(sid), s = "[";
    size_t start = 0;
    while (!r.empty() && start <= r.size()) {
      size_t c = r.find(',', start);
      if (c == std::string::npos) c = r.size();
      s += (s.size() > 1 ? "," : "") + json_str(r.substr(start, c - start));
      start = c + 1;
    }
    return s + "]";
  }

  GroupContext& ctx() { return *ctx_; }
  uint64_t num() const { return num_; }
  crypto::Provider& provider() { return *provider_; }

  [[noreturn]] void die(const char* what, const std::string& detail) {
    std::fprintf(stderr, "error: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    if (json_) std::printf("{\"ok\":false,\"error\":%s}\n", json_str(what).c_str());
    fail_with(kExitFailure);
  }

 private:
  // note reports a KDC failure on stderr once (not again while it repeats).
  void note(const std::string& msg) {
    if (msg == last_note_) return;
    last_note_ = msg;
    std::fprintf(stderr, "%s\n", msg.c_str());
  }

  grouposcore::InputMaterial material_of(const client::GroupKeys& k) const {
    grouposcore::InputMaterial m;
    m.master_secret = k.master_secret;
    m.master_salt = k.master_salt;
    m.group_id = k.group_id;
    m.sender_id = k.sender_id;
    if (k.aead_alg) m.aead_alg = static_cast<int>(*k.aead_alg);
    if (k.hkdf_alg) m.hkdf_alg = static_cast<int>(*k.hkdf_alg);
    m.num = k.num;
    m.sign_alg = sign_alg_;
    return m;
  }

  void add_keys(const std::vector<client::PubKey>& keys) {
    for (const auto& p : keys) {
      std::string r;
      for (const auto& x : p.roles) r += (r.empty() ? "" : ",") + x;
      roles_[p.sender_id] = r;
      if (equal(p.sender_id, ctx_->sender_id())) continue;
      auto key = cose::CoseKey::decode(p.cose_key);
      if (!key) continue;
      if (key->kid.empty()) key->kid = p.sender_id;
      auto added = ctx_->add_member_key(*key);
      if (!added)
        std::fprintf(stderr, "key of %s skipped: %s\n", to_hex(p.sender_id).c_str(), grouposcore::to_string(added.error()));
    }
  }

  // install_lookup: an unknown sender's key is fetched from the KDC (FETCH pub-key).
  void install_lookup() {
    ctx_->set_key_lookup([this](ByteView kid) -> std::optional<cose::CoseKey> {
      auto keys = member_->pub_keys({Bytes(kid.begin(), kid.end())});
      if (!keys) {
        std::fprintf(stderr, "cannot fetch the public key of %s: %s\n", to_hex(kid).c_str(),
                     keys.error().describe().c_str());
        return std::nullopt;
      }
      for (const auto& p : *keys) {
        if (!equal(p.sender_id, kid)) continue;
        std::string r;
        for (const auto& x : p.roles) r += (r.empty() ? "" : ",") + x;
        roles_[p.sender_id] = r;
        auto key = cose::CoseKey::decode(p.cose_key);
        if (!key) return std::nullopt;
        if (key->kid.empty()) key->kid = p.sender_id;
        return std::move(*key);
      }
      return std::nullopt;
    });
  }

  std::unique_ptr<crypto::Provider> provider_ = crypto::make_openssl_provider();
  client::UdpTransport transport_;
  client::StateDir state_;
  bool json_;
  std::unique_ptr<client::GroupMember> member_;
  std::unique_ptr<client::ClaimingSequenceStore> seq_;
  std::unique_ptr<GroupContext> ctx_;
  uint64_t num_ = 0;
  int sign_alg_ = cp::alg::kEdDSA;
  bool echo_ = false;
  std::optional<std::vector<client::Policy>> policies_;
  std::map<Bytes, std::string> roles_;
  std::string last_note_;
};

grouposcore::GroupSocket open_socket(const std::string& bind, const std::string& join_addr) {
  auto local = coap::Address::parse(bind, 0);
  if (!local) usage("not an address: " + bind);
  std::optional<coap::Address> join;
  if (!join_addr.empty()) {
    join = coap::Address::parse_host(join_addr, 0);
    if (!join || !join->is_multicast()) usage("--join: not a multicast address");
  }
  auto s = grouposcore::GroupSocket::open(*local, join);
  if (!s) {
    std::fprintf(stderr, "error: socket %s: %s\n", bind.c_str(), io::to_string(s.error()));
    fail_with(kExitFailure);
  }
  return std::move(*s);
}

void reject(const CgArgs& a, const coap::Address& from, const char* why) {
  std::fprintf(stderr, "rejected from %s: %s\n", from.to_string().c_str(), why);
  if (a.json) std::printf("{\"op\":\"rejected\",\"from\":%s,\"error\":%s}\n", json_str(from.to_string()).c_str(), json_str(why).c_str());
  std::fflush(stdout);
}

void run_listen(const CgArgs& a) {
  GroupPeer peer(a);
  // Echo for new senders: asked for, or the group's sequence number synchronization
  // policy is Echo (REQ14 seq_sync 3).
  const bool echo = a.echo || peer.policy(cp::gc::kPolicySeqSyncMethod) == cp::gc::kSeqSyncEcho;
  peer.set_echo(echo);
  peer.load();
  auto sock = open_socket(a.listen, a.join);
  std::optional<Duration> poll;
  if (a.poll > 0) poll = to_duration(a.poll);
  else if (auto s = peer.check_interval()) poll = std::chrono::seconds(*s);
  if (a.json) {
    std::printf("{\"op\":\"listen\",\"ok\":true,\"address\":%s,\"group\":%s,\"sender_id\":\"%s\",\"group_id\":\"%s\",\"num\":%llu,\"sign_alg\":%s}\n",
                json_str(sock.local_address().to_string()).c_str(), json_str(a.group).c_str(),
                to_hex(peer.ctx().sender_id()).c_str(), to_hex(peer.ctx().group_id()).c_str(),
                static_cast<unsigned long long>(peer.num()), json_str(alg_name(peer.ctx().material().sign_alg)).c_str());
  } else {
    std::printf("listening on %s as %s in %s (Group ID %s, version %llu, %s%s)\n", sock.local_address().to_string().c_str(),
                to_hex(peer.ctx().sender_id()).c_str(), a.group.c_str(), to_hex(peer.ctx().group_id()).c_str(),
                static_cast<unsigned long long>(peer.num()), alg_name(peer.ctx().material().sign_alg).c_str(),
                echo ? ", Echo for new senders" : "");
  }
  std::fflush(stdout);

  std::array<uint8_t, 1500> in, out, resp_buf;
  int served = 0;
  int challenged = 0;
  const auto start = std::chrono::steady_clock::now();
  auto next_poll = poll ? start + *poll : TimePoint::max();
  auto next_fetch = start;  // the KDC is asked at most once a second for kept messages
  grouposcore::PendingMessages pending;

  auto handle = [&](ByteView datagram, const coap::Address& from, bool first_time) {
    GroupExchange ex;
    auto rx = peer.ctx().verify_request(datagram, out, ex);
    if (!rx) {
      if (first_time && grouposcore::PendingMessages::keeps_for(rx.error()) &&
          pending.keep(datagram, from, std::chrono::steady_clock::now(), rx.error())) {
        std::fprintf(stderr, "kept from %s: %s\n", from.to_string().c_str(), grouposcore::to_string(rx.error()));
        return false;
      }
      if (rx.error() == grouposcore::Error::kEchoRequired) {
        // A sender new to this listener: answer 4.01 with Echo; its repeat is delivered.
        auto outer = coap::Message::parse(datagram);
        coap::Message resp(coap::Type::kNon, cp::coap::code::kUnauthorized, static_cast<uint16_t>(0x4000 + ++challenged));
        if (outer) resp.token = outer->token;
        resp.set_option(cp::coap::option::kEcho, ex.echo());
        auto rn = peer.ctx().protect_response(resp, ex, resp_buf);
        if (!rn || !sock.send_to(ByteView(resp_buf.data(), *rn), from))
          std::fprintf(stderr, "could not challenge %s\n", from.to_string().c_str());
        if (a.json) {
          std::printf("{\"op\":\"echo\",\"ok\":true,\"sender_id\":\"%s\",\"from\":%s}\n", to_hex(ex.request_kid()).c_str(),
                      json_str(from.to_string()).c_str());
        } else {
          std::printf("echo challenge to %s at %s (its first request since this listener started: not delivered)\n",
                      to_hex(ex.request_kid()).c_str(), from.to_string().c_str());
        }
        std::fflush(stdout);
        return true;
      }
      if (!first_time && rx.error() == grouposcore::Error::kUnknownGroupId) {
        // Kept, the latest material fetched, still no key: not readable by this member.
        const std::string why = "unknown Group ID even with the latest keying material (version " +
                                std::to_string(peer.num()) +
                                "): sent before this member joined, or under keys it never received";
        reject(a, from, why.c_str());
        return true;
      }
      if (rx.error() != grouposcore::Error::kOwnMessage) reject(a, from, grouposcore::to_string(rx.error()));
      return true;
    }
    auto req = coap::Message::parse(ByteView(out.data(), rx->len));
    if (!req) return true;
    const std::string roles = peer.roles_of(rx->sender_id());
    if (a.json) {
      std::printf("{\"op\":\"request\",\"ok\":true,\"sender_id\":\"%s\",\"roles\":%s,\"method\":%s,\"path\":%s,"
                  "\"payload\":%s,\"group_id\":\"%s\"}\n",
                  to_hex(rx->sender_id()).c_str(), peer.roles_json(rx->sender_id()).c_str(),
                  json_str(coap::code_string(req->code)).c_str(), json_str(req->uri_path()).c_str(),
                  json_str(printable(req->payload)).c_str(), to_hex(peer.ctx().group_id()).c_str());
    } else {
      std::printf("request from %s%s%s%s %s %s: %s\n", to_hex(rx->sender_id()).c_str(), roles.empty() ? "" : " (",
                  roles.c_str(), roles.empty() ? "" : ")", coap::code_string(req->code).c_str(), req->uri_path().c_str(),
                  printable(req->payload).c_str());
    }
    std::fflush(stdout);
    ++served;
    coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, static_cast<uint16_t>(0x8000 + served));
    resp.token = req->token;
    resp.set_payload("ack " + printable(req->payload));
    auto rn = peer.ctx().protect_response(resp, ex, resp_buf);
    if (!rn || !sock.send_to(ByteView(resp_buf.data(), *rn), from))
      std::fprintf(stderr, "could not answer %s\n", from.to_string().c_str());
    return true;
  };
  auto retry = [&] {
    pending.retry(std::chrono::steady_clock::now(),
                  [&](ByteView d, const coap::Address& from) { return handle(d, from, false); });
  };

  while (a.count == 0 || served < a.count) {
    const auto now = std::chrono::steady_clock::now();
    if (a.timeout > 0 && now >= start + to_duration(a.timeout)) break;
    if (peer.follow_stored()) retry();
    if (now >= next_poll) {
      next_poll = now + *poll;
      auto v = peer.kdc_version();
      if (v && *v != peer.num() && peer.fetch_keys()) retry();
    }
    if (pending.size() > 0 && now >= next_fetch) {
      next_fetch = now + std::chrono::seconds(1);
      peer.fetch_keys();
      retry();  // also gives unknown senders another key lookup; drops what fails for good
      pending.expire(now);
    }
    coap::Address from;
    auto n = sock.receive(in, from, std::chrono::milliseconds(pending.size() ? 100 : 500));
    if (n) handle(ByteView(in.data(), *n), from, true);
  }
}

void run_send(const CgArgs& a) {
  GroupPeer peer(a);
  peer.load();
  if (!a.stored_only) {
    auto v = peer.kdc_version();  // send under the current material (a join or leave rekeyed)
    if (v && *v != peer.num()) peer.fetch_keys();
  }
  auto sock = open_socket(a.bind, "");
  auto to = coap::Address::parse(a.to, 5683);
  if (!to) usage("--to: not an address");
  coap::Message req(coap::Type::kNon, cp::coap::code::kPost, 0);
  std::array<uint8_t, 4> rnd;
  peer.provider().random().fill(rnd);
  req.message_id = static_cast<uint16_t>((rnd[0] << 8) | rnd[1]);
  req.token = {rnd[2], rnd[3]};
  req.set_uri_path(a.path);
  req.set_payload(a.payload);
  std::array<uint8_t, 1500> buf, out;
  // The request and its repeats with Echo (one per challenging responder), told apart
  // by token: a repeat uses the original token + 1 byte.
  struct Sent {
    Bytes token;
    GroupExchange ex;
  };
  std::vector<Sent> sent(1);
  sent.reserve(grouposcore::kMaxResponders + 1);
  sent[0].token = req.token;
  GroupExchange& ex = sent[0].ex;
  auto n = peer.ctx().protect_request(req, buf, ex);
  if (!n) peer.die("protect", grouposcore::to_string(n.error()));
  if (!sock.send_to(ByteView(buf.data(), *n), *to)) peer.die("could not send", to->to_string());
  if (a.json) {
    std::printf("{\"op\":\"send\",\"ok\":true,\"to\":%s,\"sender_id\":\"%s\",\"group_id\":\"%s\",\"num\":%llu,\"piv\":\"%s\"}\n",
                json_str(to->to_string()).c_str(), to_hex(peer.ctx().sender_id()).c_str(),
                to_hex(peer.ctx().group_id()).c_str(), static_cast<unsigned long long>(peer.num()),
                to_hex(ex.request_piv()).c_str());
  } else {
    std::printf("sent to %s as %s (Group ID %s, version %llu, Partial IV %s)\n", to->to_string().c_str(),
                to_hex(peer.ctx().sender_id()).c_str(), to_hex(peer.ctx().group_id()).c_str(),
                static_cast<unsigned long long>(peer.num()), to_hex(ex.request_piv()).c_str());
  }
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() + to_duration(a.wait);
  while (true) {
    const auto left = end - std::chrono::steady_clock::now();
    if (left.count() <= 0) break;
    coap::Address from;
    auto got = sock.receive(buf, from, left);
    if (!got) break;
    auto outer = coap::Message::parse(ByteView(buf.data(), *got));
    Sent* to_which = nullptr;
    for (auto& x : sent)
      if (outer && outer->token == x.token) to_which = &x;
    if (!to_which) {
      reject(a, from, "not an answer to this request (token)");
      continue;
    }
    auto rx = peer.ctx().verify_response(ByteView(buf.data(), *got), to_which->ex, out);
    if (!rx) {
      if (rx.error() != grouposcore::Error::kOwnMessage) reject(a, from, grouposcore::to_string(rx.error()));
      continue;
    }
    auto resp = coap::Message::parse(ByteView(out.data(), rx->len));
    if (!resp) continue;
    const auto* echo = resp->find(cp::coap::option::kEcho);
    if (resp->code == cp::coap::code::kUnauthorized && echo && to_which == &sent[0] && sent.size() < sent.capacity()) {
      // A responder new to us challenged with Echo (RFC 9175): repeat the request to it
      // (unicast) with that Echo, under a fresh Partial IV.
      coap::Message again = req;
      again.message_id = static_cast<uint16_t>(req.message_id + sent.size());
      again.token.push_back(static_cast<uint8_t>(sent.size()));
      again.set_option(cp::coap::option::kEcho, echo->value);
      Sent& r = sent.emplace_back();
      r.token = again.token;
      std::array<uint8_t, 1500> rbuf;
      auto rn = peer.ctx().protect_request(again, rbuf, r.ex);
      if (!rn || !sock.send_to(ByteView(rbuf.data(), *rn), from)) {
        std::fprintf(stderr, "could not repeat the request to %s\n", from.to_string().c_str());
        continue;
      }
      if (a.json) {
        std::printf("{\"op\":\"echo\",\"ok\":true,\"sender_id\":\"%s\",\"to\":%s,\"piv\":\"%s\"}\n",
                    to_hex(rx->sender_id()).c_str(), json_str(from.to_string()).c_str(), to_hex(r.ex.request_piv()).c_str());
      } else {
        std::printf("echo challenge from %s: sent again with its Echo to %s (Partial IV %s)\n",
                    to_hex(rx->sender_id()).c_str(), from.to_string().c_str(), to_hex(r.ex.request_piv()).c_str());
      }
      std::fflush(stdout);
      continue;
    }
    const std::string roles = peer.roles_of(rx->sender_id());
    if (a.json) {
      std::printf("{\"op\":\"response\",\"ok\":true,\"sender_id\":\"%s\",\"roles\":%s,\"code\":%s,\"payload\":%s}\n",
                  to_hex(rx->sender_id()).c_str(), peer.roles_json(rx->sender_id()).c_str(),
                  json_str(coap::code_string(resp->code)).c_str(), json_str(printable(resp->payload)).c_str());
    } else {
      std::printf("response from %s%s%s%s %s: %s\n", to_hex(rx->sender_id()).c_str(), roles.empty() ? "" : " (",
                  roles.c_str(), roles.empty() ? "" : ")", coap::code_string(resp->code).c_str(),
                  printable(resp->payload).c_str());
    }
    std::fflush(stdout);
  }
}

// Registered after "client" (registrars run sorted by name): adds to its subcommand.
Registrar reg("client-group", [](CLI::App& root) {
  CLI::App* cl = nullptr;
  try {
    cl = root.get_subcommand("client");
  } catch (const CLI::OptionNotFound&) {
    return;
  }
  auto a = std::make_shared<CgArgs>();
  auto common = [&](CLI::App* c) {
    c->add_option("--kdc", a->kdc_uri, "the KDC, coap://host[:port] (public keys and new material)")->required();
    c->add_option("--group", a->group, "GROUPNAME")->required();
    c->add_option("--state", a->state, "the client's state directory (default $ACEKDC_STATE or ~/.local/state/acekdc)");
    c->add_option("--kdc-timeout", a->kdc_timeout, "seconds to wait for the KDC (default 10)");
    c->add_option("--path", a->path, "Uri-Path (default /group)");
    c->add_flag("--json", a->json, "one JSON object per line instead of text");
  };
  auto* send = cl->add_subcommand("send", "send a Group OSCORE request to the group and print the verified responses");
  common(send);
  send->add_option("--to", a->to, "destination address:port (default the all-CoAP-nodes group 224.0.1.187:5683)");
  send->add_option("--bind", a->bind, "local address (default 0.0.0.0:0)");
  send->add_option("--wait", a->wait, "seconds to collect responses (default 2)");
  send->add_flag("--stored", a->stored_only, "use the stored material as is (do not check the KDC's version first)");
  send->add_option("payload", a->payload, "payload text")->required();
  send->callback([a] { run_send(*a); });
  auto* listen = cl->add_subcommand("listen", "print and answer verified Group OSCORE requests of the group");
  common(listen);
  listen->add_option("--listen", a->listen, "local address:port (default 0.0.0.0:5683)");
  listen->add_option("--join", a->join, "multicast group to join (e.g. 224.0.1.187 or ff02::fd)");
  listen->add_option("--count", a->count, "stop after N verified requests (0: never)");
  listen->add_option("--timeout", a->timeout, "stop after S seconds (0: never)");
  listen->add_flag("--echo", a->echo,
                   "challenge each sender's first request with Echo (RFC 9175; default: the group's seq_sync policy)");
  listen->add_option("--poll", a->poll, "check the KDC's version every S seconds (default: the Key Update Check Interval policy)");
  listen->callback([a] { run_listen(*a); });
});

}  // namespace
}  // namespace acekdc::app
