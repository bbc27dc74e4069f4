// fuzz_group_oscore_verify: Group OSCORE group mode verification of arbitrary input
// with fixed members (src/grouposcore/test_util.h: A, B, C, Ed25519). The first
// input byte picks the path:
//   0: B verify_request(rest); B challenges new senders with Echo when bit 3 of the
//      first byte is set (then the same input is verified again after the challenge)
//   1: A verify_response(rest) to a fixed request A sent
//   2: parse_key_distribution, parse_input_material and parse_pub_keys of rest
//   3: the rest is a CoAP request: A protects it, B verifies it; code, token, type,
//      options and payload must come back unchanged (decode-encode round trip)
//   4: the same for a response: B answers A's fixed request, A verifies
// Contexts are rebuilt for every input so runs are reproducible.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "grouposcore/group_context.h"
#include "grouposcore/test_util.h"

using namespace acekdc;
using namespace acekdc::grouposcore;
using namespace acekdc::grouposcore::test;

namespace {

crypto::Provider& provider() {
  static std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  return *p;
}

std::unique_ptr<GroupContext> member(const char* sid, const char* seed, bool echo = false) {
  GroupConfig cfg;
  cfg.material = material();
  cfg.sender_id = hx(sid);
  cfg.own_key = member_key(provider(), seed);
  cfg.echo_new_senders = echo;
  auto made = GroupContext::create(provider(), std::move(cfg));
  if (!made) std::abort();
  std::unique_ptr<GroupContext> c = std::move(*made);
  const std::pair<const char*, const char*> all[] = {{kSidA, kSeedA}, {kSidB, kSeedB}, {kSidC, kSeedC}};
  for (const auto& [s, k] : all) {
    if (std::string_view(s) == sid) continue;
    if (!c->add_member_key(public_cose_key(member_key(provider(), k), hx(s)))) std::abort();
  }
  return c;
}

void same_message(ByteView original, ByteView decrypted) {
  auto a = coap::Message::parse(original);
  auto b = coap::Message::parse(decrypted);
  if (!a || !b || !(*a == *b)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 5;
  const ByteView rest(data + 1, size - 1);
  uint8_t out[1500];
  uint8_t buf[1500];
  if (mode == 0) {
    const bool echo = (data[0] & 0x08) != 0;
    auto b = member(kSidB, kSeedB, echo);
    GroupExchange ex;
    auto r = b->verify_request(rest, out, ex);
    if (r && r->len > sizeof(out)) std::abort();
    if (echo && r) std::abort();  // a new sender is never delivered without an Echo round
    if (echo && !r && r.error() == Error::kEchoRequired) {
      if (ex.echo().size() != 8) std::abort();
      auto again = b->verify_request(rest, out, ex);  // the same input: challenged again or a replay
      if (again) std::abort();
    }
  } else if (mode == 1 || mode == 4) {
    auto a = member(kSidA, kSeedA);
    auto b = member(kSidB, kSeedB);
    GroupExchange ex_a, ex_b;
    auto n = a->protect_request(group_get("temp"), buf, ex_a);
    if (!n || !b->verify_request(ByteView(buf, *n), out, ex_b)) std::abort();
    if (mode == 1) {
      auto r = a->verify_response(rest, ex_a, out);
      if (r && r->len > sizeof(out)) std::abort();
      return 0;
    }
    auto resp = coap::Message::parse(rest);
    if (!resp) return 0;
    auto rn = b->protect_response(*resp, ex_b, buf);
    if (!rn) return 0;
    auto r = a->verify_response(ByteView(buf, *rn), ex_a, out);
    if (!r) std::abort();
    same_message(rest, ByteView(out, r->len));
  } else if (mode == 2) {
    (void)parse_key_distribution(rest);
    (void)parse_input_material(rest);
    (void)parse_pub_keys(rest);
  } else {
    auto req = coap::Message::parse(rest);
    if (!req) return 0;
    auto a = member(kSidA, kSeedA);
    auto b = member(kSidB, kSeedB);
    GroupExchange ex_a, ex_b;
    auto n = a->protect_request(*req, buf, ex_a);
    if (!n) return 0;
    auto r = b->verify_request(ByteView(buf, *n), out, ex_b);
    if (!r) std::abort();
    same_message(rest, ByteView(out, r->len));
  }
  return 0;
}
