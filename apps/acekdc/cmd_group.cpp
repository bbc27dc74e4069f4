// acekdc group send|listen: Group OSCORE (group mode) messages between members, for
// testing, from the KDC's keying material in a file (docs/group-oscore.md).
//
//   acekdc group listen --material join.cbor --key me.cbor --bind 0.0.0.0:5683
//       [--join 224.0.1.187] [--count N] [--timeout S]
//     prints each verified request ("request from <sid> <METHOD> <path>: <payload>")
//     and answers it in group mode (2.05, payload "ack <payload>"); rejected
//     messages are reported on stderr with the reason. --reload: when the @file
//     material changes, rekey (same key pair) and retry the messages kept meanwhile
//     (unknown Group ID / unknown sender, OPT4).
//   acekdc group send --material join.cbor --key me.cbor --to 224.0.1.187:5683
//       [--path /group] [--wait S] PAYLOAD
//     sends a NON POST group request and prints each verified response
//     ("response from <sid> <code>: <payload>") until --wait seconds pass.
//
// --material: the KDC's Joining / Key Distribution Response payload (CBOR: @file,
// hex or EDN), with pub_keys for the other members; --key: this member's COSE_Key
// with its private part; --sid overrides the material's group_SenderId.
// Never prints key material.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "acekdc/command.h"
#include "acekdc/io_util.h"
#include "coap/address.h"
#include "core/hex.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "grouposcore/group_context.h"
#include "grouposcore/group_socket.h"
#include "grouposcore/pending.h"
#include "io/udp.h"

namespace acekdc::app {
namespace {

using grouposcore::GroupContext;
using grouposcore::GroupExchange;

struct GroupArgs {
  std::string material;
  std::string key;
  std::string sid;
  std::string bind = "0.0.0.0:0";
  std::string join;
  std::string to;
  std::string path = "/group";
  std::string payload;
  double wait = 2;
  double timeout = 0;  // 0: forever
  int count = 0;       // 0: unlimited
  bool reload = false;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  fail_with(kExitUsage);
}

std::string printable(ByteView b) {
  std::string s;
  for (uint8_t c : b) s += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
  return s;
}

void add_member_keys(GroupContext& ctx, ByteView material_cbor) {
  auto keys = grouposcore::parse_pub_keys(material_cbor);
  if (!keys) return;
  for (const auto& k : *keys) {
    if (equal(k.kid, ctx.sender_id())) continue;  // our own entry
    auto added = ctx.add_member_key(k);
    if (!added) {
      std::fprintf(stderr, "warning: key of %s skipped: %s\n", to_hex(k.kid).c_str(),
                   grouposcore::to_string(added.error()));
    }
  }
}

Expected<grouposcore::InputMaterial, grouposcore::Error> material_of(ByteView cbor) {
  auto material = grouposcore::parse_key_distribution(cbor);
  if (!material) material = grouposcore::parse_input_material(cbor);
  return material;
}

std::unique_ptr<GroupContext> load_context(crypto::Provider& provider, const GroupArgs& a) {
  auto material_cbor = cbor_from_text(a.material, "material");
  if (!material_cbor) fail_with(kExitUsage);
  auto material = material_of(*material_cbor);
  if (!material) usage(std::string("material: ") + grouposcore::to_string(material.error()));
  auto key_cbor = cbor_from_text(a.key, "key");
  if (!key_cbor) fail_with(kExitUsage);
  auto key = cose::CoseKey::decode(*key_cbor);
  if (!key || !key->has_private()) usage("key: not a COSE_Key with a private part");
  auto pair = key->to_keypair();
  if (!pair) usage("key: not a signature key");

  grouposcore::GroupConfig cfg;
  cfg.material = std::move(*material);
  if (!a.sid.empty()) {
    auto sid = from_hex(a.sid);
    if (!sid) usage("--sid: not hex");
    cfg.sender_id = *sid;
  }
  cfg.own_key = std::move(*pair);
  auto ctx = GroupContext::create(provider, std::move(cfg));
  if (!ctx) usage(std::string("group context: ") + grouposcore::to_string(ctx.error()));
  add_member_keys(**ctx, *material_cbor);
  return std::move(*ctx);
}

// MaterialWatch notices a new version of an @file material (its mtime changed).
struct MaterialWatch {
  std::string path;
  struct timespec mtime {};
  explicit MaterialWatch(const std::string& spec) {
    if (spec.size() > 1 && spec[0] == '@') path = spec.substr(1);
    changed();
  }
  bool changed() {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return false;
    const bool c = st.st_mtim.tv_sec != mtime.tv_sec || st.st_mtim.tv_nsec != mtime.tv_nsec;
    mtime = st.st_mtim;
    return c;
  }
};

grouposcore::GroupSocket open_socket(const GroupArgs& a) {
  auto local = coap::Address::parse(a.bind, 0);
  if (!local) usage("--bind: not an address");
  std::optional<coap::Address> join;
  if (!a.join.empty()) {
    join = coap::Address::parse_host(a.join, 0);
    if (!join || !join->is_multicast()) usage("--join: not a multicast address");
  }
  auto s = grouposcore::GroupSocket::open(*local, join);
  if (!s) {
    std::fprintf(stderr, "error: socket: %s\n", io::to_string(s.error()));
    fail_with(kExitFailure);
  }
  return std::move(*s);
}

void run_listen(const GroupArgs& a) {
  auto provider = crypto::make_openssl_provider();
  auto ctx = load_context(*provider, a);
  auto sock = open_socket(a);
  std::printf("listening on %s as %s in group %s\n", sock.local_address().to_string().c_str(),
              to_hex(ctx->sender_id()).c_str(), to_hex(ctx->group_id()).c_str());
  std::fflush(stdout);
  std::array<uint8_t, 1500> in, out, resp_buf;
  int served = 0;
  const auto start = std::chrono::steady_clock::now();
  // OPT4: messages under an unknown Group ID or from an unknown sender are kept until
  // new material arrives (--reload: the @file changed), then processed again.
  grouposcore::PendingMessages pending;
  MaterialWatch watch(a.material);

  auto handle = [&](ByteView datagram, const coap::Address& from, bool first_time) {
    GroupExchange ex;
    auto rx = ctx->verify_request(datagram, out, ex);
    if (!rx) {
      if (first_time && a.reload && grouposcore::PendingMessages::keeps_for(rx.error()) &&
          pending.keep(datagram, from, std::chrono::steady_clock::now(), rx.error())) {
        std::fprintf(stderr, "kept from %s: %s\n", from.to_string().c_str(), grouposcore::to_string(rx.error()));
        return false;
      }
      if (rx.error() != grouposcore::Error::kOwnMessage) {
        std::fprintf(stderr, "rejected from %s: %s\n", from.to_string().c_str(), grouposcore::to_string(rx.error()));
      }
      return !grouposcore::PendingMessages::keeps_for(rx.error());
    }
    auto req = coap::Message::parse(ByteView(out.data(), rx->len));
    if (!req) return true;
    std::printf("request from %s %s %s: %s\n", to_hex(rx->sender_id()).c_str(), coap::code_string(req->code).c_str(),
                req->uri_path().c_str(), printable(req->payload).c_str());
    std::fflush(stdout);
    ++served;
    coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, static_cast<uint16_t>(0x8000 + served));
    resp.token = req->token;
    resp.set_payload("ack " + printable(req->payload));
    auto rn = ctx->protect_response(resp, ex, resp_buf);
    if (!rn || !sock.send_to(ByteView(resp_buf.data(), *rn), from)) {
      std::fprintf(stderr, "error: could not answer %s\n", from.to_string().c_str());
    }
    return true;
  };

  while (a.count == 0 || served < a.count) {
    if (a.reload && watch.changed()) {
      auto cbor = read_file(watch.path);
      auto material = cbor ? material_of(as_bytes(*cbor)) : unexpected(grouposcore::Error::kMalformedMaterial);
      auto next = material ? ctx->rekey(std::move(*material)) : unexpected(material.error());
      if (next) {
        ctx = std::move(*next);
        add_member_keys(*ctx, as_bytes(*cbor));
        std::printf("rekeyed: group %s as %s\n", to_hex(ctx->group_id()).c_str(), to_hex(ctx->sender_id()).c_str());
        std::fflush(stdout);
        pending.retry(std::chrono::steady_clock::now(),
                      [&](ByteView d, const coap::Address& from) { return handle(d, from, false); });
      } else {
        std::fprintf(stderr, "material not used: %s\n", grouposcore::to_string(next.error()));
      }
      continue;
    }
    Duration wait = std::chrono::seconds(1);
    if (a.timeout > 0) {
      const auto left = start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout)) -
                        std::chrono::steady_clock::now();
      if (left.count() <= 0) break;
      wait = std::min<Duration>(wait, left);
    }
    coap::Address from;
    auto n = sock.receive(in, from, a.reload ? std::min<Duration>(wait, std::chrono::milliseconds(200)) : wait);
    if (!n) continue;
    handle(ByteView(in.data(), *n), from, true);
  }
}

void run_send(const GroupArgs& a) {
  auto provider = crypto::make_openssl_provider();
  auto ctx = load_context(*provider, a);
  auto sock = open_socket(a);
  auto to = coap::Address::parse(a.to, 5683);
  if (!to) usage("--to: not an address");
  coap::Message req(coap::Type::kNon, cp::coap::code::kPost, 0);
  std::array<uint8_t, 4> rnd;
  provider->random().fill(rnd);
  req.message_id = static_cast<uint16_t>((rnd[0] << 8) | rnd[1]);
  req.token = {rnd[2], rnd[3]};
  req.set_uri_path(a.path);
  req.set_payload(a.payload);
  std::array<uint8_t, 1500> buf, out;
  GroupExchange ex;
  auto n = ctx->protect_request(req, buf, ex);
  if (!n) {
    std::fprintf(stderr, "error: protect: %s\n", grouposcore::to_string(n.error()));
    fail_with(kExitFailure);
  }
  if (!sock.send_to(ByteView(buf.data(), *n), *to)) {
    std::fprintf(stderr, "error: could not send to %s\n", to->to_string().c_str());
    fail_with(kExitFailure);
  }
  std::printf("sent request %s from %s\n", to_hex(ex.request_piv()).c_str(), to_hex(ctx->sender_id()).c_str());
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.wait));
  while (true) {
    const auto left = end - std::chrono::steady_clock::now();
    if (left.count() <= 0) break;
    coap::Address from;
    auto got = sock.receive(buf, from, left);
    if (!got) break;
    auto rx = ctx->verify_response(ByteView(buf.data(), *got), ex, out);
    if (!rx) {
      if (rx.error() != grouposcore::Error::kOwnMessage) {
        std::fprintf(stderr, "rejected from %s: %s\n", from.to_string().c_str(), grouposcore::to_string(rx.error()));
      }
      continue;
    }
    auto resp = coap::Message::parse(ByteView(out.data(), rx->len));
    if (!resp) continue;
    std::printf("response from %s %s: %s\n", to_hex(rx->sender_id()).c_str(), coap::code_string(resp->code).c_str(),
                printable(resp->payload).c_str());
    std::fflush(stdout);
  }
}

Registrar reg("group", [](CLI::App& root) {
  auto* group = root.add_subcommand("group", "Group OSCORE messages between members (testing)");
  group->require_subcommand(1);
  auto args = std::make_shared<GroupArgs>();
  auto common = [&](CLI::App* c) {
    c->add_option("--material,-m", args->material, "KDC Joining/Key Distribution Response (CBOR: @file, hex, EDN)")
        ->required();
    c->add_option("--key,-k", args->key, "This member's COSE_Key with private part (@file, hex, EDN)")->required();
    c->add_option("--sid", args->sid, "Own Sender ID, hex (default: the material's group_SenderId)");
    c->add_option("--bind", args->bind, "Local address (default 0.0.0.0:0)");
  };
  auto* listen = group->add_subcommand("listen", "Verify and answer group requests");
  common(listen);
  listen->add_option("--join", args->join, "Multicast group to join (e.g. 224.0.1.187)");
  listen->add_option("--count", args->count, "Stop after N verified requests (0: never)");
  listen->add_option("--timeout", args->timeout, "Stop after S seconds (0: never)");
  listen->add_flag("--reload", args->reload,
                   "Rekey when the @file material changes; keep undecryptable messages until then (OPT4)");
  listen->callback([args] { run_listen(*args); });
  auto* send = group->add_subcommand("send", "Send one group request and print the verified responses");
  common(send);
  send->add_option("--to", args->to, "Destination (multicast) address:port")->required();
  send->add_option("--path", args->path, "Uri-Path (default /group)");
  send->add_option("--wait", args->wait, "Seconds to collect responses (default 2)");
  send->add_option("payload", args->payload, "Payload text");
  send->callback([args] { run_send(*args); });
});

}  // namespace
}  // namespace acekdc::app
