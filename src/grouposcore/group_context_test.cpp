// GroupContext: group requests and responses between members, and every rejection.
#include "grouposcore/group_context.h"

#include <gtest/gtest.h>

#include "cbor/cbor.h"
#include "core/writer.h"
#include "grouposcore/test_util.h"
#include "oscore/sequence_store.h"

namespace acekdc::grouposcore {
namespace {

using namespace test;

class GroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    provider = crypto::make_openssl_provider();
    a = make_member(*provider, kSidA, kSeedA);
    b = make_member(*provider, kSidB, kSeedB);
    c = make_member(*provider, kSidC, kSeedC);
    ASSERT_TRUE(a && b && c);
    for (auto* ctx : {a.get(), b.get(), c.get()}) introduce(*ctx);
  }
  // introduce gives `ctx` the public keys of every other member.
  void introduce(GroupContext& ctx) {
    const std::pair<const char*, const char*> all[] = {{kSidA, kSeedA}, {kSidB, kSeedB}, {kSidC, kSeedC}};
    for (const auto& [sid, seed] : all) {
      if (equal(hx(sid), ctx.sender_id())) continue;
      ASSERT_TRUE(ctx.add_member_key(public_cose_key(member_key(*provider, seed), hx(sid))));
    }
  }
  Bytes request_from(GroupContext& ctx, GroupExchange& ex, std::string_view path = "temp") {
    std::array<uint8_t, 1500> buf;
    auto n = ctx.protect_request(group_get(path), buf, ex);
    EXPECT_TRUE(n) << (n ? "" : to_string(n.error()));
    return n ? Bytes(buf.begin(), buf.begin() + *n) : Bytes{};
  }
  std::unique_ptr<crypto::Provider> provider;
  std::unique_ptr<GroupContext> a, b, c;
  std::array<uint8_t, 1500> out{};
};

TEST_F(GroupTest, RequestAndResponsesBetweenMembers) {
  GroupExchange ex_a;
  const Bytes req = request_from(*a, ex_a);
  ASSERT_FALSE(req.empty());
  EXPECT_EQ(a->next_sequence_number(), 1u);

  // Both B and C verify the same multicast request.
  for (auto* member : {b.get(), c.get()}) {
    GroupExchange ex;
    auto rx = member->verify_request(req, out, ex);
    ASSERT_TRUE(rx) << to_string(rx.error());
    EXPECT_EQ(to_hex(rx->sender_id()), kSidA);
    auto plain = coap::Message::parse(ByteView(out.data(), rx->len));
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->code, cp::coap::code::kGet);
    EXPECT_EQ(plain->uri_path(), "/temp");
    EXPECT_EQ(plain->type, coap::Type::kNon);
    EXPECT_EQ(to_hex(plain->token), "7a");

    // Each answers in group mode, reusing the request's Partial IV.
    coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, 0x99);
    resp.token = hx("7a");
    resp.set_payload(member == b.get() ? "21 C" : "22 C");
    std::array<uint8_t, 1500> rbuf;
    auto rn = member->protect_response(resp, ex, rbuf);
    ASSERT_TRUE(rn) << to_string(rn.error());
    EXPECT_TRUE(ex.nonce_used);
    auto got = a->verify_response(ByteView(rbuf.data(), *rn), ex_a, out);
    ASSERT_TRUE(got) << to_string(got.error());
    EXPECT_EQ(to_hex(got->sender_id()), to_hex(member->sender_id()));
    auto plain_resp = coap::Message::parse(ByteView(out.data(), got->len));
    ASSERT_TRUE(plain_resp);
    EXPECT_EQ(plain_resp->code, cp::coap::code::kContent);
    EXPECT_EQ(as_string(plain_resp->payload), member == b.get() ? "21 C" : "22 C");
    // The same response again is a replay.
    auto again = a->verify_response(ByteView(rbuf.data(), *rn), ex_a, out);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), Error::kReplay);

    // A second response from the same responder gets its own Partial IV.
    auto rn2 = member->protect_response(resp, ex, rbuf);
    ASSERT_TRUE(rn2);
    GroupExchange fresh_view = ex_a;
    fresh_view.num_responders = 0;
    auto got2 = a->verify_response(ByteView(rbuf.data(), *rn2), fresh_view, out);
    ASSERT_TRUE(got2) << to_string(got2.error());
  }
  EXPECT_EQ(ex_a.num_responders, 2u);
  EXPECT_EQ(b->num_recipient_contexts(), 1u);
}

TEST_F(GroupTest, ForgedSignatureRejected) {
  GroupExchange ex;
  Bytes req = request_from(*a, ex);
  req.back() ^= 0x01;  // inside the encrypted countersignature
  GroupExchange ex_b;
  auto rx = b->verify_request(req, out, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kBadSignature);
  // The failure did not move the replay window: the genuine message still verifies.
  req.back() ^= 0x01;
  { auto r2 = b->verify_request(req, out, ex_b); EXPECT_TRUE(r2) << to_string(r2.error()); }
}

TEST_F(GroupTest, SignatureByAnotherMembersKeyRejected) {
  // C signs with its own key but claims to be A: the group key does not help it.
  auto impostor = make_member(*provider, kSidA, kSeedC);
  ASSERT_TRUE(impostor);
  GroupExchange ex;
  const Bytes req = request_from(*impostor, ex);
  GroupExchange ex_b;
  auto rx = b->verify_request(req, out, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kBadSignature);
}

TEST_F(GroupTest, TamperedCiphertextRejected) {
  GroupExchange ex;
  Bytes req = request_from(*a, ex);
  req[req.size() - 64 - 3] ^= 0x80;  // in the AEAD ciphertext, covered by the signature
  GroupExchange ex_b;
  auto rx = b->verify_request(req, out, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kBadSignature);
}

TEST_F(GroupTest, TamperedOptionRejected) {
  GroupExchange ex;
  Bytes req = request_from(*a, ex);
  // The OSCORE option is in the external_aad: change the Partial IV 00 -> 05.
  auto view = coap::MessageView::parse(req);
  ASSERT_TRUE(view);
  const auto* o = view->find(cp::coap::option::kOscore);
  const size_t piv_at = static_cast<size_t>(o->value.data() - req.data()) + 1;
  req[piv_at] = 0x05;
  GroupExchange ex_b;
  auto rx = b->verify_request(req, out, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kBadSignature);
}

TEST_F(GroupTest, ReplayRejected) {
  GroupExchange ex;
  const Bytes first = request_from(*a, ex);
  const Bytes second = request_from(*a, ex);
  GroupExchange ex_b;
  { auto r2 = b->verify_request(second, out, ex_b); ASSERT_TRUE(r2) << to_string(r2.error()); }
  ASSERT_TRUE(b->verify_request(first, out, ex_b));  // reordered, inside the window
  for (const Bytes* d : {&first, &second}) {
    auto rx = b->verify_request(*d, out, ex_b);
    ASSERT_FALSE(rx);
    EXPECT_EQ(rx.error(), Error::kReplay);
  }
}

TEST_F(GroupTest, UnknownSenderThenLookup) {
  auto d = make_member(*provider, "0d", kSeedC);  // knows nobody
  ASSERT_TRUE(d);
  GroupExchange ex;
  const Bytes req = request_from(*a, ex);
  GroupExchange ex_d;
  auto rx = d->verify_request(req, out, ex_d);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kUnknownSender);
  EXPECT_EQ(d->num_recipient_contexts(), 0u);
  // The caller fetched A's key from the KDC; the lookup hands it over.
  int asked = 0;
  d->set_key_lookup([&](ByteView kid) -> std::optional<cose::CoseKey> {
    ++asked;
    if (to_hex(kid) != kSidA) return std::nullopt;
    return public_cose_key(member_key(*provider, kSeedA), kid);
  });
  rx = d->verify_request(req, out, ex_d);
  ASSERT_TRUE(rx) << to_string(rx.error());
  EXPECT_EQ(asked, 1);
  EXPECT_TRUE(d->has_member(hx(kSidA)));
}

TEST_F(GroupTest, OwnMessageAndNonGroupMessage) {
  GroupExchange ex;
  Bytes req = request_from(*a, ex);
  GroupExchange ex_a;
  auto own = a->verify_request(req, out, ex_a);
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error(), Error::kOwnMessage);
  // Clear the Group Flag: not group mode.
  auto view = coap::MessageView::parse(req);
  const size_t flags_at = static_cast<size_t>(view->find(cp::coap::option::kOscore)->value.data() - req.data());
  req[flags_at] &= static_cast<uint8_t>(~cp::group_oscore::kFlagGroup);
  auto rx = b->verify_request(req, out, ex_a);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kNotGroupMode);
}

TEST_F(GroupTest, RekeyStaleAndUnknownGroupId) {
  GroupExchange ex;
  const Bytes old_req = request_from(*a, ex);
  InputMaterial next = material("37cbf3210017a2d4", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  auto b2 = b->rekey(next);
  ASSERT_TRUE(b2) << to_string(b2.error());
  EXPECT_EQ((*b2)->num_members(), 2u);
  EXPECT_EQ(to_hex((*b2)->sender_id()), to_hex(b->sender_id()));
  EXPECT_EQ((*b2)->own_credential(), b->own_credential());
  GroupExchange ex_b;
  auto stale = (*b2)->verify_request(old_req, out, ex_b);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error(), Error::kStaleGroupId);

  // A rekeyed too: its new messages verify at B's new context, not at the old one
  // (which has never seen that Group ID: it must fetch the new material).
  auto a2 = a->rekey(next);
  ASSERT_TRUE(a2);
  EXPECT_EQ((*a2)->next_sequence_number(), 0u);  // a new Group ID restarts the sequence
  GroupExchange ex2;
  const Bytes new_req = request_from(**a2, ex2);
  EXPECT_TRUE((*b2)->verify_request(new_req, out, ex_b));
  auto unknown = c->verify_request(new_req, out, ex_b);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), Error::kUnknownGroupId);
  // Forward security: a departed member (C, not rekeyed) with the new Group ID
  // forced into its material still cannot read: wrong keys.
  InputMaterial guess = material("37cbf3210017a2d4");  // the old master secret
  auto c_guess = make_member(*provider, kSidC, kSeedC, guess);
  ASSERT_TRUE(c_guess);
  introduce(*c_guess);
  auto denied = c_guess->verify_request(new_req, out, ex_b);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error(), Error::kBadSignature);  // the keystream needs the new SEKey
}

TEST_F(GroupTest, ResponseToStaleExchangeRejected) {
  GroupExchange ex_a;
  const Bytes req = request_from(*a, ex_a);
  GroupExchange ex_b;
  ASSERT_TRUE(b->verify_request(req, out, ex_b));
  auto b2 = b->rekey(material("99", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"));
  ASSERT_TRUE(b2);
  coap::Message resp(coap::Type::kNon, cp::coap::code::kContent, 1);
  std::array<uint8_t, 1500> rbuf;
  auto rn = (*b2)->protect_response(resp, ex_b, rbuf);
  ASSERT_FALSE(rn);
  EXPECT_EQ(rn.error(), Error::kStaleGroupId);
}

TEST_F(GroupTest, RecipientContextsAreBoundedLru) {
  auto d = make_member(*provider, "0d", kSeedC, material(), nullptr, 0, /*max_recipients=*/1);
  ASSERT_TRUE(d);
  introduce(*d);
  GroupExchange ex;
  const Bytes a1 = request_from(*a, ex);
  const Bytes a2 = request_from(*a, ex);
  const Bytes b1 = request_from(*b, ex);
  GroupExchange ex_d;
  ASSERT_TRUE(d->verify_request(a2, out, ex_d));
  ASSERT_TRUE(d->verify_request(b1, out, ex_d));  // evicts A's Recipient Context
  EXPECT_EQ(d->num_recipient_contexts(), 1u);
  // A's context is recreated, but nothing at or below what was seen is accepted.
  for (const Bytes* old : {&a1, &a2}) {
    auto rx = d->verify_request(*old, out, ex_d);
    ASSERT_FALSE(rx);
    EXPECT_EQ(rx.error(), Error::kReplay);
  }
  const Bytes a3 = request_from(*a, ex);
  EXPECT_TRUE(d->verify_request(a3, out, ex_d));
}

TEST_F(GroupTest, RemovedMemberIsUnknown) {
  GroupExchange ex;
  const Bytes req = request_from(*a, ex);
  b->remove_member(hx(kSidA));
  GroupExchange ex_b;
  auto rx = b->verify_request(req, out, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kUnknownSender);
}

TEST_F(GroupTest, SequenceNumbersPersistAcrossRestart) {
  oscore::MemorySequenceStore store;
  {
    auto m = make_member(*provider, "0e", kSeedA, material(), &store);
    ASSERT_TRUE(m);
    GroupExchange ex;
    for (int i = 0; i < 3; ++i) request_from(*m, ex);
    EXPECT_EQ(m->next_sequence_number(), 3u);
  }
  auto again = make_member(*provider, "0e", kSeedA, material(), &store);
  ASSERT_TRUE(again);
  EXPECT_GE(again->next_sequence_number(), 3u);
  EXPECT_EQ(again->next_sequence_number(), oscore::SequenceAllocator::kDefaultChunk);
  store.fail_after(static_cast<int64_t>(store.num_writes()));
  auto fresh = make_member(*provider, "0f", kSeedA, material(), &store);
  ASSERT_TRUE(fresh);
  GroupExchange ex;
  std::array<uint8_t, 1500> buf;
  auto n = fresh->protect_request(group_get("temp"), buf, ex);
  ASSERT_FALSE(n);  // the first reservation cannot be persisted: nothing is sent
  EXPECT_EQ(n.error(), Error::kStorageFailure);
}

TEST_F(GroupTest, MalformedInputs) {
  GroupExchange ex;
  const Bytes req = request_from(*a, ex);
  GroupExchange ex_b;
  // Truncations never verify.
  for (size_t n = 0; n < req.size(); ++n) {
    auto rx = b->verify_request(ByteView(req.data(), n), out, ex_b);
    EXPECT_FALSE(rx) << n;
  }
  // Too small an output buffer.
  std::array<uint8_t, 8> tiny;
  auto rx = b->verify_request(req, tiny, ex_b);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kBufferTooSmall);
  // Protect with too small a buffer.
  std::array<uint8_t, 40> small;
  EXPECT_EQ(a->protect_request(group_get("temp"), small, ex).error(), Error::kBufferTooSmall);
  // A response code is not a request.
  coap::Message bad(coap::Type::kNon, cp::coap::code::kContent, 1);
  EXPECT_EQ(a->protect_request(bad, out, ex).error(), Error::kInvalidArgument);
}

TEST_F(GroupTest, CreateRejectsBadConfiguration) {
  GroupConfig cfg;
  cfg.material = material();
  cfg.own_key = member_key(*provider, kSeedA);
  EXPECT_EQ(GroupContext::create(*provider, cfg).error(), Error::kInvalidArgument);  // no Sender ID
  cfg.sender_id = hx("0102030405060708");  // longer than 13 - 6
  EXPECT_EQ(GroupContext::create(*provider, cfg).error(), Error::kInvalidArgument);
  cfg.sender_id = hx("01");
  cfg.material.sign_alg = cp::alg::kES256;  // an Ed25519 key for ES256
  EXPECT_EQ(GroupContext::create(*provider, cfg).error(), Error::kInvalidKey);
  cfg.material.sign_alg = 12345;
  EXPECT_EQ(GroupContext::create(*provider, cfg).error(), Error::kUnsupportedAlgorithm);
  cfg.material = material();
  cfg.material.sender_id = hx("07");
  cfg.sender_id.reset();
  auto ok = GroupContext::create(*provider, cfg);
  ASSERT_TRUE(ok);
  EXPECT_EQ(to_hex((*ok)->sender_id()), "07");
  // A wrong public part given with the private key is ignored (recomputed from d).
  GroupConfig wrong_x = cfg;
  wrong_x.own_key.x = member_key(*provider, kSeedB).x;
  auto recomputed = GroupContext::create(*provider, wrong_x);
  ASSERT_TRUE(recomputed);
  EXPECT_EQ((*recomputed)->own_credential(), (*ok)->own_credential());
  // A key of the wrong curve for a member.
  crypto::KeyPair p256 = *provider->generate_keypair(cp::crv::kP256);
  EXPECT_EQ((*ok)->add_member_key(public_cose_key(p256, hx("02"))).error(), Error::kInvalidKey);
  EXPECT_EQ((*ok)->add_member_key(public_cose_key(member_key(*provider, kSeedB), {})).error(),
            Error::kInvalidKey);
  EXPECT_EQ((*ok)->add_member_key(public_cose_key(member_key(*provider, kSeedB), hx("07"))).error(),
            Error::kInvalidArgument);
}

// Echo for new senders (RFC 9175): a listener that (re)started cannot be fooled by a
// request captured before; the sender's repeat with the Echo is delivered once.
class GroupEchoTest : public GroupTest {
 protected:
  std::unique_ptr<GroupContext> listener() {
    GroupConfig cfg;
    cfg.material = material();
    cfg.sender_id = hx(kSidB);
    cfg.own_key = member_key(*provider, kSeedB);
    cfg.echo_new_senders = true;
    auto l = GroupContext::create(*provider, std::move(cfg));
    EXPECT_TRUE(l);
    if (!l) return nullptr;
    EXPECT_TRUE((*l)->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
    return std::move(*l);
  }
  // challenge: B's 4.01 + Echo to a request, as A reads it; returns the Echo value.
  Bytes challenge(GroupContext& l, GroupExchange& ex_l, GroupExchange& ex_a) {
    coap::Message r(coap::Type::kNon, cp::coap::code::kUnauthorized, 7);
    r.token = hx("7a");
    r.set_option(cp::coap::option::kEcho, ex_l.echo());
    std::array<uint8_t, 1500> buf;
    auto n = l.protect_response(r, ex_l, buf);
    EXPECT_TRUE(n);
    if (!n) return {};
    auto rx = a->verify_response(ByteView(buf.data(), *n), ex_a, out);
    EXPECT_TRUE(rx) << (rx ? "" : to_string(rx.error()));
    if (!rx) return {};
    auto m = coap::Message::parse(ByteView(out.data(), rx->len));
    EXPECT_TRUE(m && m->code == cp::coap::code::kUnauthorized);
    const auto* e = m ? m->find(cp::coap::option::kEcho) : nullptr;
    return e ? Bytes(e->value.begin(), e->value.end()) : Bytes{};
  }
  Bytes request_with_echo(ByteView echo, GroupExchange& ex) {
    coap::Message m = group_get("temp");
    m.set_option(cp::coap::option::kEcho, echo);
    std::array<uint8_t, 1500> buf;
    auto n = a->protect_request(m, buf, ex);
    EXPECT_TRUE(n);
    return n ? Bytes(buf.begin(), buf.begin() + *n) : Bytes{};
  }
};

TEST_F(GroupEchoTest, FirstRequestIsChallengedAndTheRepeatDelivered) {
  auto l = listener();
  ASSERT_TRUE(l);
  GroupExchange ex_a, ex_l;
  const Bytes first = request_from(*a, ex_a);
  auto rx = l->verify_request(first, out, ex_l);
  ASSERT_FALSE(rx);
  ASSERT_EQ(rx.error(), Error::kEchoRequired);
  ASSERT_EQ(ex_l.echo().size(), 8u);
  const Bytes echo = challenge(*l, ex_l, ex_a);
  ASSERT_EQ(echo, Bytes(ex_l.echo().begin(), ex_l.echo().end()));

  // A wrong Echo is challenged again (with a new value); the right one is delivered.
  GroupExchange ex_w, ex_r, ex_l2;
  Bytes wrong = echo;
  wrong[0] ^= 1;
  rx = l->verify_request(request_with_echo(wrong, ex_w), out, ex_l2);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kEchoRequired);
  const Bytes echo2(ex_l2.echo().begin(), ex_l2.echo().end());
  EXPECT_NE(echo2, echo);
  const Bytes repeat = request_with_echo(echo2, ex_r);
  rx = l->verify_request(repeat, out, ex_l2);
  ASSERT_TRUE(rx) << to_string(rx.error());
  EXPECT_EQ(l->num_echo_challenges(), 2u);
  // Then: the repeat and the first request are replays; later requests pass.
  EXPECT_EQ(l->verify_request(repeat, out, ex_l2).error(), Error::kReplay);
  EXPECT_EQ(l->verify_request(first, out, ex_l2).error(), Error::kReplay);
  GroupExchange ex_n;
  EXPECT_TRUE(l->verify_request(request_from(*a, ex_n), out, ex_l2));
  // An Echo is single use: the same repeat cannot sync another time (it is a replay).
  EXPECT_EQ(l->num_echo_challenges(), 2u);
}

TEST_F(GroupEchoTest, ReplayAfterTheListenerRestartIsNotDelivered) {
  GroupExchange ex_a, ex_b, ex;
  const Bytes captured = request_from(*a, ex_a);
  // Without Echo, B read it; a restarted B (a new context) reads the replay again.
  ASSERT_TRUE(b->verify_request(captured, out, ex_b));
  auto restarted_plain = make_member(*provider, kSidB, kSeedB);
  ASSERT_TRUE(restarted_plain);
  ASSERT_TRUE(restarted_plain->add_member_key(public_cose_key(member_key(*provider, kSeedA), hx(kSidA))));
  EXPECT_TRUE(restarted_plain->verify_request(captured, out, ex)) << "the gap Echo closes";
  // With Echo the restarted listener challenges the replay instead of delivering it.
  auto restarted = listener();
  ASSERT_TRUE(restarted);
  auto rx = restarted->verify_request(captured, out, ex);
  ASSERT_FALSE(rx);
  EXPECT_EQ(rx.error(), Error::kEchoRequired);
  // Only the real sender can answer the challenge; its repeat carries a newer number.
  const Bytes echo = challenge(*restarted, ex, ex_a);
  GroupExchange ex_r;
  const Bytes repeat = request_with_echo(echo, ex_r);
  EXPECT_TRUE(restarted->verify_request(repeat, out, ex));
  EXPECT_EQ(restarted->verify_request(captured, out, ex).error(), Error::kReplay);
}

TEST(GroupEs256, RoundTrip) {
  auto provider = crypto::make_openssl_provider();
  InputMaterial m = material();
  m.sign_alg = cp::alg::kES256;
  auto ka = *provider->generate_keypair(cp::crv::kP256);
  auto kb = *provider->generate_keypair(cp::crv::kP256);
  GroupConfig ca, cb;
  ca.material = m;
  ca.sender_id = hx("01");
  ca.own_key = ka;
  cb.material = m;
  cb.sender_id = hx("02");
  cb.own_key = kb;
  auto a = GroupContext::create(*provider, ca);
  auto b = GroupContext::create(*provider, cb);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*b)->add_member_key(public_cose_key(ka, hx("01"))));
  std::array<uint8_t, 1500> buf, out;
  GroupExchange ex, ex_b;
  auto n = (*a)->protect_request(group_get("x"), buf, ex);
  ASSERT_TRUE(n);
  auto rx = (*b)->verify_request(ByteView(buf.data(), *n), out, ex_b);
  ASSERT_TRUE(rx) << to_string(rx.error());
}

TEST(GroupMaterial, ParsesKeyDistribution) {
  Bytes payload;
  Writer w(payload);
  cbor::Encoder e(w);
  e.put_map(3);
  e.put_int(cp::gc::kGkty).put_int(cp::gc::kGktyGroupOscoreInputMaterial);
  e.put_int(cp::gc::kKey).put_map(8);
  e.put_int(cp::osc::kMs).put_bstr(hx(kMs));
  e.put_int(cp::osc::kHkdf).put_int(5);
  e.put_int(cp::osc::kAlg).put_int(10);
  e.put_int(cp::osc::kSalt).put_bstr(hx(kSalt));
  e.put_int(cp::osc::kContextId).put_bstr(hx(kGid));
  e.put_int(cp::osc::kGroupSenderId).put_bstr(hx("0a"));
  e.put_int(cp::osc::kSignAlg).put_int(-8);
  e.put_int(cp::osc::kSignParams).put_array(2);
  e.put_array(1).put_int(1);
  e.put_array(2).put_int(1).put_int(6);
  e.put_int(cp::gc::kNum).put_uint(3);
  auto m = parse_key_distribution(payload);
  ASSERT_TRUE(m) << to_string(m.error());
  EXPECT_EQ(to_hex(m->master_secret), kMs);
  EXPECT_EQ(to_hex(m->group_id), kGid);
  EXPECT_EQ(to_hex(*m->sender_id), "0a");
  EXPECT_EQ(m->sign_alg, -8);
  EXPECT_EQ(m->num, 3u);
  ASSERT_EQ(m->sign_params.size(), 2u);
  EXPECT_EQ(m->sign_params[1], (std::vector<int>{1, 6}));
  // Every truncation fails cleanly.
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(parse_key_distribution(ByteView(payload.data(), n))) << n;
  }
  // No pub_keys here: an empty key list.
  auto none = parse_pub_keys(payload);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  // A wrong gkty is refused.
  Bytes wrong = payload;
  wrong[2] = 0x02;
  EXPECT_EQ(parse_key_distribution(wrong).error(), Error::kMalformedMaterial);
}

TEST(GroupMaterial, ParsesPubKeys) {
  auto provider = crypto::make_openssl_provider();
  cose::KeySet set;
  set.keys.push_back(public_cose_key(member_key(*provider, kSeedA), hx(kSidA)));
  set.keys.push_back(public_cose_key(member_key(*provider, kSeedB), hx(kSidB)));
  Bytes payload;
  Writer w(payload);
  cbor::Encoder e(w);
  e.put_map(1).put_int(cp::gc::kPubKeys).put_bstr(set.encode(false));
  auto keys = parse_pub_keys(payload);
  ASSERT_TRUE(keys) << to_string(keys.error());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ(to_hex((*keys)[1].kid), kSidB);
  // Usable as member keys: B's context learns A from them.
  auto b = make_member(*provider, kSidB, kSeedB);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->add_member_key((*keys)[0]));
  // The empty byte string (pub-key response without members) and garbage.
  EXPECT_TRUE(parse_pub_keys(hx("40"))->empty());
  EXPECT_FALSE(parse_pub_keys(hx("a10d01")));
  EXPECT_FALSE(parse_pub_keys(hx("ff")));
}

}  // namespace
}  // namespace acekdc::grouposcore
