#include "groupcomm/manager.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cbor/edn.h"
#include "cbor/value.h"
#include "core/clock.h"
#include "core/codepoints.h"
#include "cose/key.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/pop.h"
#include "kdc/memory_store.h"
#include "kdc/sqlite_store.h"
#include "kdc/test_util.h"

namespace acekdc::groupcomm {
namespace {

namespace code = cp::coap::code;
using kdc::testing::sample_config;
using kdc::testing::sample_key;

constexpr ace::RoleSet kReq = ace::kRoleRequester;
constexpr ace::RoleSet kResp = ace::kRoleResponder;
constexpr ace::RoleSet kMon = ace::kRoleMonitor;

struct Client {
  Requester who;
  cose::CoseKey key;
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { create_group(sample_config("g1")); }

  void create_group(const kdc::GroupConfig& c, uint8_t seed = 1) {
    ASSERT_TRUE(store.create_group(c, sample_key(0, seed, now())));
  }

  int64_t now() const { return clock.unix_time(); }

  Client client(std::string id, ace::RoleSet granted = kReq | kResp, std::string group = "g1") {
    Client c;
    c.who.client_id = id;
    c.who.token_id = Bytes(id.begin(), id.end());
    c.who.token_id.push_back(0x01);
    c.who.scope.entries.push_back(ace::ScopeEntry{group, granted});
    c.who.rsnonce = rng.bytes(8);
    kdc::TokenRecord t;
    t.token_id = c.who.token_id;
    t.client_id = id;
    t.scope = ace::encode_scope(c.who.scope);
    EXPECT_TRUE(store.put_token(t));
    auto kp = provider->generate_keypair(cp::crv::kEd25519);
    c.key = cose::CoseKey::from_keypair(*kp);
    return c;
  }

  Bytes join_payload(const Client& c, std::optional<ace::RoleSet> roles = kReq, bool get_keys = false,
                     bool with_cred = true) {
    Bytes scope;
    JoinRequest jr;
    if (roles) {
      ace::Scope s;
      s.entries.push_back(ace::ScopeEntry{"g1", *roles});
      scope = ace::encode_scope(s);
      jr.scope = scope;
    }
    jr.get_pub_keys = get_keys;
    Bytes cred = c.key.encode(false);
    Bytes n_c = {0xc1, 0xc2, 0xc3, 0xc4};
    Bytes sig;
    if (with_cred) {
      sig = *sign_pop(*provider, cp::alg::kEdDSA, c.key, c.who.rsnonce, n_c);
      jr.client_cred = cred;
      jr.cnonce = n_c;
      jr.client_cred_verify = sig;
    }
    return encode_join_request(jr);
  }

  Response call(const Requester* who, uint8_t method, std::vector<std::string_view> path,
                ByteView payload = {}, std::optional<uint16_t> cf = cp::cf::kAceGroupcommCbor) {
    Request r;
    r.method = method;
    r.path = std::move(path);
    r.payload = payload;
    r.content_format = payload.empty() ? std::nullopt : cf;
    return mgr.handle(who, r, now());
  }

  Response join(const Client& c, std::optional<ace::RoleSet> roles = kReq, bool get_keys = false) {
    Bytes p = join_payload(c, roles, get_keys, !(roles && *roles == kMon));
    return call(&c.who, code::kPost, {"ace-group", "g1"}, p);
  }

  // node_of returns NODENAME from a join response's Location-Path.
  static std::string node_of(const Response& r) {
    return r.location_path.size() == 4 ? r.location_path[3] : std::string();
  }

  kdc::GroupState group(std::string_view name = "g1") { return *store.load_group(name); }

  static std::string text(const Response& r) { return std::string(r.payload.begin(), r.payload.end()); }

  FakeClock clock;
  FakeRandom rng{7};
  std::unique_ptr<crypto::Provider> provider = crypto::make_openssl_provider();
  kdc::MemoryStore store;
  GroupManager mgr{store, *provider, rng};
};

TEST_F(ManagerTest, JoinCreatesMemberAndRekeys) {
  Client a = client("alice");
  Response r = join(a);
  ASSERT_EQ(code::kCreated, r.code) << text(r);
  EXPECT_EQ(cp::cf::kAceGroupcommCbor, r.content_format);
  ASSERT_EQ(4u, r.location_path.size());
  EXPECT_EQ("ace-group", r.location_path[0]);
  EXPECT_EQ("g1", r.location_path[1]);
  EXPECT_EQ("nodes", r.location_path[2]);

  kdc::GroupState g = group();
  const kdc::Member* m = g.find_member(node_of(r));
  ASSERT_NE(nullptr, m);
  EXPECT_EQ(kReq, m->roles);
  EXPECT_EQ(a.who.token_id, m->token_id);
  auto stored = cose::CoseKey::decode(m->public_key);
  ASSERT_TRUE(stored);
  EXPECT_EQ(a.key.x, stored->x);

  // Backward security: the join rekeyed (num 0 -> 1) and the joiner got version 1.
  EXPECT_EQ(1u, g.key.num);
  auto events = mgr.take_events();
  ASSERT_EQ(1u, events.size());
  EXPECT_EQ(RekeyEvent::Reason::kJoin, events[0].reason);
  EXPECT_EQ(1u, events[0].num);
  EXPECT_TRUE(mgr.take_events().empty());

  auto v = cbor::decode(r.payload);
  ASSERT_TRUE(v);
  EXPECT_EQ(1u, v->find(cp::gc::kNum)->as_uint());
  const cbor::Value* key = v->find(cp::gc::kKey);
  ASSERT_TRUE(key);
  EXPECT_EQ(g.key.master_secret, *key->find(cp::osc::kMs)->as_bytes());
  EXPECT_EQ(g.key.group_id, *key->find(cp::osc::kContextId)->as_bytes());
  EXPECT_EQ(m->sender_id, *key->find(cp::osc::kGroupSenderId)->as_bytes());
  EXPECT_NE(nullptr, v->find(cp::gc::kGroupPolicies));
  EXPECT_EQ(nullptr, v->find(cp::gc::kPubKeys));
  EXPECT_EQ(g.key.exp, v->find(cp::gc::kExp)->as_int());
}

TEST_F(ManagerTest, JoinWithoutScopeUsesTokenRoles) {
  Client a = client("alice", kReq);
  Response r = join(a, std::nullopt);
  ASSERT_EQ(code::kCreated, r.code) << text(r);
  EXPECT_EQ(kReq, group().find_member(node_of(r))->roles);
  // A token entry without roles and no scope in the request: which roles?
  Client b = client("bob", 0);
  r = join(b, std::nullopt);
  EXPECT_EQ(code::kBadRequest, r.code);
}

TEST_F(ManagerTest, JoinScopeAsSingleEntry) {
  Client a = client("alice");
  Bytes entry = cbor::encode(*cbor::from_diag(R"(["g1", ["requester", "responder"]])"));
  Bytes n_c = {1, 2, 3};
  Bytes cred = a.key.encode(false);
  Bytes sig = *sign_pop(*provider, cp::alg::kEdDSA, a.key, a.who.rsnonce, n_c);
  JoinRequest jr;
  jr.scope = entry;
  jr.client_cred = cred;
  jr.cnonce = n_c;
  jr.client_cred_verify = sig;
  Bytes p = encode_join_request(jr);
  Response r = call(&a.who, code::kPost, {"ace-group", "g1"}, p);
  ASSERT_EQ(code::kCreated, r.code) << text(r);
  EXPECT_EQ(kReq | kResp, group().find_member(node_of(r))->roles);
}

TEST_F(ManagerTest, JoinGetPubKeysReturnsOthersInOrder) {
  Client a = client("alice"), b = client("bob"), c = client("carol");
  Response ra = join(a, kReq | kResp);
  Response rb = join(b, kReq);
  ASSERT_EQ(code::kCreated, ra.code);
  ASSERT_EQ(code::kCreated, rb.code);
  Response rc = join(c, kReq, /*get_keys=*/true);
  ASSERT_EQ(code::kCreated, rc.code) << text(rc);
  auto v = cbor::decode(rc.payload);
  ASSERT_TRUE(v);
  auto set = cose::KeySet::decode(*v->find(cp::gc::kPubKeys)->as_bytes());
  ASSERT_TRUE(set);
  const cbor::Array* roles = v->find(cp::gc::kPeerRoles)->as_array();
  ASSERT_EQ(2u, set->keys.size());
  ASSERT_EQ(2u, roles->size());
  kdc::GroupState g = group();
  for (size_t i = 0; i < 2; ++i) {
    const kdc::Member* m = g.find_by_sender_id(set->keys[i].kid);
    ASSERT_NE(nullptr, m);
    EXPECT_NE(node_of(rc), m->node_name);
    EXPECT_EQ(cose::CoseKey::decode(m->public_key)->x, set->keys[i].x);
    if (m->node_name == node_of(ra)) {
      EXPECT_EQ(R"(["requester", "responder"])", cbor::to_diag((*roles)[i]));
    } else {
      EXPECT_EQ(R"("requester")", cbor::to_diag((*roles)[i]));
    }
  }
}

TEST_F(ManagerTest, JoinAuthorizationErrors) {
  Client a = client("alice", kReq);
  Bytes p = join_payload(a);
  kdc::GroupState before = group();
  // No token at all.
  EXPECT_EQ(code::kUnauthorized, call(nullptr, code::kPost, {"ace-group", "g1"}, p).code);
  // A token for another group.
  Client other = client("olga", kReq, "g2");
  EXPECT_EQ(code::kUnauthorized, call(&other.who, code::kPost, {"ace-group", "g1"}, join_payload(other)).code);
  // Roles the token does not grant.
  Response r = call(&a.who, code::kPost, {"ace-group", "g1"}, join_payload(a, kResp));
  EXPECT_EQ(code::kUnauthorized, r.code);
  // Invalid role combination.
  Client all = client("all", ace::kAllRoles);
  r = call(&all.who, code::kPost, {"ace-group", "g1"}, join_payload(all, kReq | kMon));
  EXPECT_EQ(code::kBadRequest, r.code);
  EXPECT_EQ(before, group());
  EXPECT_TRUE(mgr.take_events().empty());
}

TEST_F(ManagerTest, JoinUnknownGroupIs404OnlyWithAToken) {
  Client a = client("alice", kReq, "nogroup");
  EXPECT_EQ(code::kNotFound, call(&a.who, code::kPost, {"ace-group", "nogroup"}, join_payload(a)).code);
  EXPECT_EQ(code::kUnauthorized, call(nullptr, code::kPost, {"ace-group", "nogroup"}, join_payload(a)).code);
}

TEST_F(ManagerTest, JoinPayloadErrors) {
  Client a = client("alice");
  kdc::GroupState before = group();
  Bytes junk = {0xa1, 0x18, 0x63, 0x01};  // {99: 1}
  Response r = call(&a.who, code::kPost, {"ace-group", "g1"}, junk);
  EXPECT_EQ(code::kBadRequest, r.code);
  EXPECT_EQ("unknown field ? (99)", text(r));
  EXPECT_FALSE(r.content_format);
  // Missing client_cred for a requester.
  r = call(&a.who, code::kPost, {"ace-group", "g1"}, join_payload(a, kReq, false, false));
  EXPECT_EQ(code::kBadRequest, r.code);
  EXPECT_NE(std::string::npos, text(r).find("client_cred"));
  // Bad signature.
  Bytes p = join_payload(a);
  Client impostor = a;
  impostor.who.rsnonce[0] ^= 0xff;  // the KDC remembers a different N_S
  r = call(&impostor.who, code::kPost, {"ace-group", "g1"}, p);
  EXPECT_EQ(code::kBadRequest, r.code);
  EXPECT_EQ("client_cred_verify does not verify", text(r));
  // Scope naming another group.
  ace::Scope s;
  s.entries.push_back(ace::ScopeEntry{"g2", kReq});
  Bytes scope = ace::encode_scope(s);
  JoinRequest jr;
  jr.scope = scope;
  Bytes p2 = encode_join_request(jr);
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kPost, {"ace-group", "g1"}, p2).code);
  // Unknown role in the scope.
  Bytes bad_scope = cbor::encode(*cbor::from_diag(R"([["g1", "chef"]])"));
  jr.scope = bad_scope;
  Bytes p3 = encode_join_request(jr);
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kPost, {"ace-group", "g1"}, p3).code);
  // Wrong Content-Format.
  EXPECT_EQ(code::kUnsupportedContentFormat,
            call(&a.who, code::kPost, {"ace-group", "g1"}, join_payload(a), cp::cf::kCbor).code);
  // Empty payload is not a map.
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kPost, {"ace-group", "g1"}).code);
  EXPECT_EQ(before, group());
}

TEST_F(ManagerTest, JoinWithoutRsnonceGetsOne) {
  Client a = client("alice");
  Bytes p = join_payload(a);
  a.who.rsnonce.clear();
  Response r = call(&a.who, code::kPost, {"ace-group", "g1"}, p);
  ASSERT_EQ(code::kBadRequest, r.code);
  EXPECT_EQ(cp::cf::kAceGroupcommCbor, r.content_format);
  ASSERT_EQ(8u, r.new_rsnonce.size());
  auto v = cbor::decode(r.payload);
  ASSERT_TRUE(v);
  EXPECT_EQ(r.new_rsnonce, *v->find(cp::gc::kRsNonce)->as_bytes());
  EXPECT_TRUE(group().members.empty());
  // Signing again over the new N_S succeeds.
  a.who.rsnonce = r.new_rsnonce;
  EXPECT_EQ(code::kCreated, join(a).code);
}

TEST_F(ManagerTest, JoinTwiceRefused) {
  Client a = client("alice");
  ASSERT_EQ(code::kCreated, join(a).code);
  kdc::GroupState before = group();
  EXPECT_EQ(code::kBadRequest, join(a).code);
  EXPECT_EQ(before, group());
}

TEST_F(ManagerTest, JoinTwiceWithNewTokenRefused) {
  Client a = client("alice");
  ASSERT_EQ(code::kCreated, join(a).code);
  // A second token of the same client (stored under its client_id).
  kdc::TokenRecord t;
  t.token_id = {0x55};
  t.client_id = "alice";
  ASSERT_TRUE(store.put_token(t));
  a.who.token_id = t.token_id;
  EXPECT_EQ(code::kBadRequest, join(a).code);
  EXPECT_EQ(1u, group().members.size());
  // ... and it still reads the group keys as a member.
  EXPECT_EQ(code::kContent, call(&a.who, code::kGet, {"ace-group", "g1"}).code);
}

TEST_F(ManagerTest, MonitorJoinsWithoutKey) {
  Client m = client("mon", kMon);
  Response r = join(m, kMon);
  ASSERT_EQ(code::kCreated, r.code) << text(r);
  auto v = cbor::decode(r.payload);
  EXPECT_EQ(nullptr, v->find(cp::gc::kKey)->find(cp::osc::kGroupSenderId));
  EXPECT_TRUE(group().find_member(node_of(r))->public_key.empty());
  // A monitor sending a key is refused.
  Client m2 = client("mon2", kMon);
  Bytes p = join_payload(m2, kMon, false, true);
  EXPECT_EQ(code::kBadRequest, call(&m2.who, code::kPost, {"ace-group", "g1"}, p).code);
}

TEST_F(ManagerTest, SenderIdsAreUnique) {
  std::set<Bytes> ids;
  std::set<std::string> names;
  for (int i = 0; i < 30; ++i) {
    Client c = client("c" + std::to_string(i));
    Response r = join(c);
    ASSERT_EQ(code::kCreated, r.code) << text(r);
    names.insert(node_of(r));
  }
  for (const auto& [name, m] : group().members) ids.insert(m.sender_id);
  EXPECT_EQ(30u, ids.size());
  EXPECT_EQ(30u, names.size());
  EXPECT_EQ(30u, group().key.num);
}

TEST_F(ManagerTest, MethodsAndPaths) {
  Client a = client("alice");
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kPut, {"ace-group", "g1"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kDelete, {"ace-group", "g1"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kPost, {"ace-group", "g1", "ctx-num"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kPost, {"ace-group", "g1", "pub-key"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kFetch, {"ace-group", "g1", "policies"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kPost, {"ace-group", "g1", "nodes", "x"}).code);
  EXPECT_EQ(code::kMethodNotAllowed, call(&a.who, code::kGet, {"ace-group", "g1", "nodes", "x", "pub-key"}).code);
  EXPECT_EQ(code::kNotFound, call(&a.who, code::kGet, {"ace-group"}).code);
  EXPECT_EQ(code::kNotFound, call(&a.who, code::kGet, {"other", "g1"}).code);
  EXPECT_EQ(code::kNotFound, call(&a.who, code::kGet, {"ace-group", "g1", "stuff"}).code);
  EXPECT_EQ(code::kNotFound, call(&a.who, code::kGet, {"ace-group", "g1", "nodes"}).code);
}

TEST_F(ManagerTest, GetKeysOnlyForMembers) {
  Client a = client("alice"), b = client("bob");
  ASSERT_EQ(code::kCreated, join(a).code);
  Response r = call(&a.who, code::kGet, {"ace-group", "g1"});
  ASSERT_EQ(code::kContent, r.code);
  auto v = cbor::decode(r.payload);
  kdc::GroupState g = group();
  EXPECT_EQ(g.key.num, v->find(cp::gc::kNum)->as_uint());
  EXPECT_EQ(g.key.master_secret, *v->find(cp::gc::kKey)->find(cp::osc::kMs)->as_bytes());
  EXPECT_EQ(1, v->find(cp::gc::kGkty)->as_int());
  EXPECT_EQ(code::kUnauthorized, call(&b.who, code::kGet, {"ace-group", "g1"}).code);
  EXPECT_EQ(code::kUnauthorized, call(nullptr, code::kGet, {"ace-group", "g1"}).code);
}

TEST_F(ManagerTest, PubKeyGet) {
  Client a = client("alice"), m = client("mon", kMon);
  Response r = call(&a.who, code::kGet, {"ace-group", "g1", "pub-key"});
  ASSERT_EQ(code::kContent, r.code);
  EXPECT_EQ((Bytes{0x40}), r.payload);
  ASSERT_EQ(code::kCreated, join(m, kMon).code);
  r = call(&a.who, code::kGet, {"ace-group", "g1", "pub-key"});
  EXPECT_EQ((Bytes{0x40}), r.payload);  // a monitor has no key
  Response ja = join(a);
  ASSERT_EQ(code::kCreated, ja.code);
  r = call(&a.who, code::kGet, {"ace-group", "g1", "pub-key"});
  ASSERT_EQ(code::kContent, r.code);
  auto v = cbor::decode(r.payload);
  auto set = cose::KeySet::decode(*v->find(cp::gc::kPubKeys)->as_bytes());
  ASSERT_EQ(1u, set->keys.size());
  EXPECT_EQ(group().find_member(node_of(ja))->sender_id, set->keys[0].kid);
  EXPECT_EQ(1u, v->find(cp::gc::kPeerRoles)->as_array()->size());
  Client stranger = client("x", kReq, "g2");
  EXPECT_EQ(code::kUnauthorized, call(&stranger.who, code::kGet, {"ace-group", "g1", "pub-key"}).code);
}

TEST_F(ManagerTest, PubKeyFetchIgnoresUnknownIds) {
  Client a = client("alice"), b = client("bob");
  Response ja = join(a), jb = join(b);
  kdc::GroupState g = group();
  Bytes sa = g.find_member(node_of(ja))->sender_id;
  Bytes sb = g.find_member(node_of(jb))->sender_id;
  Bytes req = encode_pub_key_fetch({sb, Bytes{0x77, 0x77}, sa, sb});
  Response r = call(&a.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  ASSERT_EQ(code::kContent, r.code) << text(r);
  auto v = cbor::decode(r.payload);
  auto set = cose::KeySet::decode(*v->find(cp::gc::kPubKeys)->as_bytes());
  ASSERT_EQ(2u, set->keys.size());
  EXPECT_EQ(sb, set->keys[0].kid);
  EXPECT_EQ(sa, set->keys[1].kid);
  req = encode_pub_key_fetch({Bytes{0x77, 0x77}});
  r = call(&a.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  ASSERT_EQ(code::kContent, r.code);
  EXPECT_EQ((Bytes{0x40}), r.payload);
  Bytes bad = {0xa1, 0x04, 0x80};  // {4: []}
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kFetch, {"ace-group", "g1", "pub-key"}, bad).code);
}

TEST_F(ManagerTest, PubKeyFetchServesRetainedDepartedKeys) {
  kdc::GroupConfig c = sample_config("g1");
  c.departed_key_retention_s = 100;
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice"), b = client("bob");
  Response ja = join(a), jb = join(b);
  Bytes sb = group().find_member(node_of(jb))->sender_id;
  ASSERT_EQ(code::kDeleted, call(&b.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(jb)}).code);
  Bytes req = encode_pub_key_fetch({sb});
  Response r = call(&a.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  ASSERT_EQ(code::kContent, r.code);
  auto v = cbor::decode(r.payload);
  ASSERT_TRUE(v->is_map());
  EXPECT_EQ(sb, cose::KeySet::decode(*v->find(cp::gc::kPubKeys)->as_bytes())->keys[0].kid);
  // Not in the GET of current members.
  EXPECT_EQ(1u, cose::KeySet::decode(*cbor::decode(call(&a.who, code::kGet, {"ace-group", "g1", "pub-key"}).payload)
                                          ->find(cp::gc::kPubKeys)
                                          ->as_bytes())
                    ->keys.size());
  clock.advance(seconds(101));
  r = call(&a.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  EXPECT_EQ((Bytes{0x40}), r.payload);
}

TEST_F(ManagerTest, PoliciesAndCtxNum) {
  Client a = client("alice");
  Response r = call(&a.who, code::kGet, {"ace-group", "g1", "policies"});
  ASSERT_EQ(code::kContent, r.code);
  EXPECT_EQ(cp::cf::kAceGroupcommCbor, r.content_format);
  auto v = cbor::decode(r.payload);
  EXPECT_EQ(cp::gc::kSeqSyncBaseline, v->find(cp::gc::kGroupPolicies)->find(cp::gc::kPolicySeqSyncMethod)->as_int());
  r = call(&a.who, code::kGet, {"ace-group", "g1", "ctx-num"});
  ASSERT_EQ(code::kContent, r.code);
  EXPECT_EQ(cp::cf::kAceGroupcommCbor, r.content_format);
  EXPECT_EQ((Bytes{0x00}), r.payload);
  ASSERT_EQ(code::kCreated, join(a).code);
  r = call(&a.who, code::kGet, {"ace-group", "g1", "ctx-num"});
  EXPECT_EQ((Bytes{0x01}), r.payload);
  EXPECT_EQ(code::kUnauthorized, call(nullptr, code::kGet, {"ace-group", "g1", "ctx-num"}).code);
}

TEST_F(ManagerTest, NodeGetOwnOnly) {
  Client a = client("alice"), b = client("bob");
  Response ja = join(a), jb = join(b);
  Response r = call(&a.who, code::kGet, {"ace-group", "g1", "nodes", node_of(ja)});
  ASSERT_EQ(code::kContent, r.code);
  auto v = cbor::decode(r.payload);
  kdc::GroupState g = group();
  EXPECT_EQ(g.find_member(node_of(ja))->sender_id, *v->find(cp::gc::kKey)->find(cp::osc::kGroupSenderId)->as_bytes());
  EXPECT_EQ(g.key.num, v->find(cp::gc::kNum)->as_uint());
  EXPECT_EQ(code::kUnauthorized, call(&a.who, code::kGet, {"ace-group", "g1", "nodes", node_of(jb)}).code);
  EXPECT_EQ(code::kUnauthorized, call(&a.who, code::kGet, {"ace-group", "g1", "nodes", "nobody"}).code);
}

TEST_F(ManagerTest, NodeOwnershipByClientIdAcrossTokens) {
  Client a = client("alice");
  Response ja = join(a);
  // The same client with a new token (e.g. after expiry) still owns its node.
  Requester renewed = a.who;
  renewed.token_id = {0x99};
  EXPECT_EQ(code::kContent, call(&renewed, code::kGet, {"ace-group", "g1", "nodes", node_of(ja)}).code);
  Requester other = renewed;
  other.client_id = "mallory";
  EXPECT_EQ(code::kUnauthorized, call(&other, code::kGet, {"ace-group", "g1", "nodes", node_of(ja)}).code);
}

TEST_F(ManagerTest, NodePutGivesNewSenderId) {
  Client a = client("alice");
  Response ja = join(a);
  Bytes old = group().find_member(node_of(ja))->sender_id;
  Response r = call(&a.who, code::kPut, {"ace-group", "g1", "nodes", node_of(ja)});
  ASSERT_EQ(code::kContent, r.code) << text(r);
  auto v = cbor::decode(r.payload);
  Bytes fresh = *v->find(cp::gc::kGroupSenderId)->as_bytes();
  EXPECT_NE(old, fresh);
  EXPECT_EQ(fresh, group().find_member(node_of(ja))->sender_id);
  EXPECT_EQ(nullptr, group().find_by_sender_id(old));
  kdc::GroupState before = group();
  Bytes p = {0xa0};
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kPut, {"ace-group", "g1", "nodes", node_of(ja)}, p).code);
  EXPECT_EQ(before, group());
}

TEST_F(ManagerTest, NodePutRekeysGroupWhenConfigured) {
  kdc::GroupConfig c = sample_config("g1");
  c.key_renewal = kdc::KeyRenewal::kRekeyGroup;
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice");
  Response ja = join(a);
  mgr.take_events();
  uint64_t num = group().key.num;
  Bytes sid = group().find_member(node_of(ja))->sender_id;
  Response r = call(&a.who, code::kPut, {"ace-group", "g1", "nodes", node_of(ja)});
  EXPECT_EQ(code::kForbidden, r.code);
  EXPECT_EQ(num + 1, group().key.num);
  EXPECT_EQ(sid, group().find_member(node_of(ja))->sender_id);
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kRenewal, ev[0].reason);
}

TEST_F(ManagerTest, LeaveRemovesAndRekeys) {
  Client a = client("alice"), b = client("bob");
  Response ja = join(a), jb = join(b);
  mgr.take_events();
  kdc::GroupState before = group();
  // Not bob's node.
  EXPECT_EQ(code::kUnauthorized, call(&b.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(ja)}).code);
  // A scope with an unknown role.
  Bytes bad_scope = cbor::encode(*cbor::from_diag(R"(["g1", "chef"])"));
  Bytes p;
  {
    Writer w(p);
    cbor::Encoder(w).put_map(1).put_int(cp::gc::kScope).put_bstr(bad_scope);
  }
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(ja)}, p).code);
  EXPECT_EQ(before, group());
  Response r = call(&a.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(ja)});
  ASSERT_EQ(code::kDeleted, r.code) << text(r);
  EXPECT_TRUE(r.payload.empty());
  kdc::GroupState g = group();
  EXPECT_EQ(nullptr, g.find_member(node_of(ja)));
  EXPECT_NE(nullptr, g.find_member(node_of(jb)));
  EXPECT_EQ(before.key.num + 1, g.key.num);
  EXPECT_NE(before.key.group_id, g.key.group_id);
  EXPECT_NE(before.key.master_secret, g.key.master_secret);
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kLeave, ev[0].reason);
  // Gone: no longer its node, no more keys.
  EXPECT_EQ(code::kUnauthorized, call(&a.who, code::kGet, {"ace-group", "g1", "nodes", node_of(ja)}).code);
  EXPECT_EQ(code::kUnauthorized, call(&a.who, code::kGet, {"ace-group", "g1"}).code);
}

TEST_F(ManagerTest, LeaveWithScope) {
  Client a = client("alice");
  Response ja = join(a, kReq | kResp);
  auto leave_with = [&](std::string_view edn) {
    Bytes scope = cbor::encode(*cbor::from_diag(edn));
    Bytes p;
    Writer w(p);
    cbor::Encoder(w).put_map(1).put_int(cp::gc::kScope).put_bstr(scope);
    return call(&a.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(ja)}, p);
  };
  EXPECT_EQ(code::kBadRequest, leave_with(R"(["g2", "requester"])").code);
  EXPECT_EQ(code::kBadRequest, leave_with(R"(["g1", "monitor"])").code);
  EXPECT_EQ(code::kNotImplemented, leave_with(R"(["g1", "requester"])").code);
  EXPECT_NE(nullptr, group().find_member(node_of(ja)));
  EXPECT_EQ(code::kDeleted, leave_with(R"(["g1", ["requester", "responder"]])").code);
  EXPECT_EQ(nullptr, group().find_member(node_of(ja)));
}

TEST_F(ManagerTest, NodePubKeyUpdate) {
  Client a = client("alice"), b = client("bob");
  Response ja = join(a), jb = join(b);
  auto kp = provider->generate_keypair(cp::crv::kEd25519);
  cose::CoseKey fresh = cose::CoseKey::from_keypair(*kp);
  Bytes n_c = {5, 5, 5};
  Bytes sig = *sign_pop(*provider, cp::alg::kEdDSA, fresh, a.who.rsnonce, n_c);
  Bytes p = encode_pub_key_update(fresh.encode(false), n_c, sig);
  const std::string node = node_of(ja);
  std::vector<std::string_view> path = {"ace-group", "g1", "nodes", node, "pub-key"};
  // bob may not replace alice's key.
  EXPECT_EQ(code::kUnauthorized, call(&b.who, code::kPost, path, p).code);
  // A signature over another N_S.
  Requester wrong = a.who;
  wrong.rsnonce = {1, 1, 1};
  kdc::GroupState before = group();
  EXPECT_EQ(code::kBadRequest, call(&wrong, code::kPost, path, p).code);
  // Missing field.
  Bytes partial = {0xa1, 0x05, 0x41, 0x00};
  EXPECT_EQ(code::kBadRequest, call(&a.who, code::kPost, path, partial).code);
  EXPECT_EQ(before, group());
  Response r = call(&a.who, code::kPost, path, p);
  ASSERT_EQ(code::kChanged, r.code) << text(r);
  EXPECT_TRUE(r.payload.empty());
  EXPECT_EQ(fresh.x, cose::CoseKey::decode(group().find_member(node_of(ja))->public_key)->x);
  // No N_S known: a fresh one is offered.
  Requester no_nonce = a.who;
  no_nonce.rsnonce.clear();
  r = call(&no_nonce, code::kPost, path, p);
  EXPECT_EQ(code::kBadRequest, r.code);
  EXPECT_FALSE(r.new_rsnonce.empty());
}

TEST_F(ManagerTest, ES256Group) {
  kdc::GroupConfig c = sample_config("g1");
  c.sign_info = kdc::sign_info_es256();
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice");
  // An Ed25519 key does not fit.
  EXPECT_EQ(code::kBadRequest, join(a).code);
  auto kp = provider->generate_keypair(cp::crv::kP256);
  a.key = cose::CoseKey::from_keypair(*kp);
  Bytes n_c = {1, 2};
  Bytes sig = *sign_pop(*provider, cp::alg::kES256, a.key, a.who.rsnonce, n_c);
  Bytes cred = a.key.encode(false);
  JoinRequest jr;
  jr.client_cred = cred;
  jr.cnonce = n_c;
  jr.client_cred_verify = sig;
  Bytes p = encode_join_request(jr);
  Response r = call(&a.who, code::kPost, {"ace-group", "g1"}, p);
  ASSERT_EQ(code::kCreated, r.code) << text(r);
  auto v = cbor::decode(r.payload);
  EXPECT_EQ(cp::alg::kES256, v->find(cp::gc::kKey)->find(cp::osc::kSignAlg)->as_int());
}

TEST_F(ManagerTest, StoreFailureLeavesNothingBehind) {
  kdc::FailingStore failing(store);
  GroupManager m2(failing, *provider, rng);
  Client a = client("alice");
  Bytes p = join_payload(a);
  kdc::GroupState before = group();
  // The member write fails.
  failing.fail_write(1);
  Request req;
  req.method = code::kPost;
  req.path = {"ace-group", "g1"};
  req.payload = p;
  Response r = m2.handle(&a.who, req, now());
  EXPECT_EQ(code::kServiceUnavailable, r.code);
  EXPECT_EQ(before, group());
  // The rekey write fails: the member is taken out again.
  failing.fail_write(2);
  r = m2.handle(&a.who, req, now());
  EXPECT_EQ(code::kServiceUnavailable, r.code);
  kdc::GroupState after = group();
  EXPECT_TRUE(after.members.empty());
  EXPECT_EQ(before.key, after.key);
  EXPECT_TRUE(m2.take_events().empty());
  failing.fail_write(0);
  EXPECT_EQ(code::kCreated, m2.handle(&a.who, req, now()).code);
}

TEST_F(ManagerTest, NoRekeyWhenPolicySaysSo) {
  kdc::GroupConfig c = sample_config("g1");
  c.rekey.on_join = false;
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice");
  ASSERT_EQ(code::kCreated, join(a).code);
  EXPECT_EQ(0u, group().key.num);
  EXPECT_TRUE(mgr.take_events().empty());
}

TEST_F(ManagerTest, ManualRekeyNeverReusesGroupId) {
  std::set<Bytes> gids = {group().key.group_id};
  for (int i = 0; i < 20; ++i) {
    auto n = mgr.rekey("g1", now());
    ASSERT_TRUE(n);
    EXPECT_EQ(static_cast<uint64_t>(i + 1), *n);
    gids.insert(group().key.group_id);
  }
  EXPECT_EQ(21u, gids.size());
  EXPECT_EQ(20u, mgr.take_events().size());
  EXPECT_FALSE(mgr.rekey("nope", now()));
}

// The same flow over SqliteStore: the manager depends only on the Store contract.
// ---- timed duties: tick() / next_deadline() ----

TEST_F(ManagerTest, TickRekeysBeforeExpiry) {
  kdc::GroupConfig c = sample_config("g1");
  c.key_lifetime_s = 1000;
  ASSERT_TRUE(store.update_group_config(c));
  const int64_t exp0 = group().key.exp;
  TickReport t = mgr.tick(now());
  EXPECT_EQ(0u, t.num_rekeys);
  EXPECT_EQ(exp0 - 60, t.next_deadline);
  EXPECT_EQ(exp0 - 60, mgr.next_deadline());
  clock.advance(seconds(exp0 - 61 - now()));
  EXPECT_EQ(0u, mgr.tick(now()).num_rekeys);
  EXPECT_EQ(0u, group().key.num);
  clock.advance(seconds(1));
  t = mgr.tick(now());
  EXPECT_EQ(1u, t.num_rekeys);
  kdc::GroupState g = group();
  EXPECT_EQ(1u, g.key.num);
  EXPECT_EQ(now() + 1000, g.key.exp);
  EXPECT_EQ(g.key.exp - 60, t.next_deadline);
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kExpiry, ev[0].reason);
  EXPECT_EQ(1u, ev[0].num);
  // Nothing more until the new material nears its exp.
  clock.advance(seconds(100));
  EXPECT_EQ(0u, mgr.tick(now()).num_rekeys);
}

TEST_F(ManagerTest, TickWithoutExpiryPolicyNeverRekeys) {
  kdc::GroupConfig c = sample_config("g1");
  c.rekey.on_expiry = false;
  ASSERT_TRUE(store.update_group_config(c));
  TickReport t = mgr.tick(now());
  EXPECT_EQ(GroupManager::kNever, t.next_deadline);
  clock.advance(seconds(10 * 86400));
  EXPECT_EQ(0u, mgr.tick(now()).num_rekeys);
  EXPECT_EQ(0u, group().key.num);
}

TEST_F(ManagerTest, MinIntervalBatchesJoinsIntoOneRekey) {
  kdc::GroupConfig c = sample_config("g1");
  c.rekey.min_interval_s = 100;
  ASSERT_TRUE(store.update_group_config(c));
  const int64_t t0 = now();
  (void)mgr.tick(now());
  clock.advance(seconds(10));
  Client a = client("alice"), b = client("bob");
  ASSERT_EQ(code::kCreated, join(a).code);
  clock.advance(seconds(10));
  ASSERT_EQ(code::kCreated, join(b).code);
  EXPECT_EQ(0u, group().key.num);  // held back: at most one rekey per 100 s
  EXPECT_TRUE(mgr.take_events().empty());
  EXPECT_EQ(t0 + 100, mgr.next_deadline());
  clock.advance(seconds(50));
  EXPECT_EQ(0u, mgr.tick(now()).num_rekeys);
  clock.advance(seconds(t0 + 100 - now()));
  TickReport t = mgr.tick(now());
  EXPECT_EQ(1u, t.num_rekeys);
  EXPECT_EQ(1u, group().key.num);  // both joins, one rekey
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kBatched, ev[0].reason);
  EXPECT_EQ(0u, group().joins_since_rekey);
  // The next change waits for the next interval.
  clock.advance(seconds(5));
  Client d = client("dave");
  ASSERT_EQ(code::kCreated, join(d).code);
  EXPECT_EQ(1u, group().key.num);
  EXPECT_EQ(now() - 5 + 100, mgr.next_deadline());
}

TEST_F(ManagerTest, BatchChangesRekeysAfterNChanges) {
  kdc::GroupConfig c = sample_config("g1");
  c.rekey.batch_changes = 3;
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice"), b = client("bob"), d = client("dave");
  ASSERT_EQ(code::kCreated, join(a).code);
  Response jb = join(b);
  ASSERT_EQ(code::kCreated, jb.code);
  EXPECT_EQ(0u, group().key.num);
  EXPECT_EQ(0u, mgr.tick(now()).num_rekeys);  // no interval: only the count triggers
  ASSERT_EQ(code::kDeleted, call(&b.who, code::kDelete, {"ace-group", "g1", "nodes", node_of(jb)}).code);
  EXPECT_EQ(1u, group().key.num);  // the third change (a leave)
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kLeave, ev[0].reason);
  ASSERT_EQ(code::kCreated, join(d).code);
  EXPECT_EQ(1u, group().key.num);
}

TEST_F(ManagerTest, TickEvictsMembersWhoseTokensExpired) {
  kdc::GroupConfig c = sample_config("g1");
  c.departed_key_retention_s = 50;
  ASSERT_TRUE(store.update_group_config(c));
  Client a = client("alice"), b = client("bob");
  kdc::TokenRecord ta = *store.get_token(a.who.token_id);
  ta.exp = now() + 100;
  ASSERT_TRUE(store.put_token(ta));
  Response ja = join(a), jb = join(b);
  ASSERT_EQ(code::kCreated, ja.code);
  ASSERT_EQ(code::kCreated, jb.code);
  const Bytes sid_a = group().find_member(node_of(ja))->sender_id;
  const uint64_t num = group().key.num;
  mgr.take_events();
  TickReport t = mgr.tick(now());
  EXPECT_EQ(0u, t.num_evicted);
  EXPECT_EQ(now() + 100, t.next_deadline);
  clock.advance(seconds(99));
  EXPECT_EQ(0u, mgr.tick(now()).num_evicted);
  clock.advance(seconds(1));
  t = mgr.tick(now());
  EXPECT_EQ(1u, t.num_evicted);
  EXPECT_EQ(1u, t.num_rekeys);
  kdc::GroupState g = group();
  EXPECT_EQ(nullptr, g.find_member(node_of(ja)));
  EXPECT_NE(nullptr, g.find_member(node_of(jb)));
  EXPECT_EQ(num + 1, g.key.num);  // forward security
  auto ev = mgr.take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kEviction, ev[0].reason);
  auto gone = mgr.take_evictions();
  ASSERT_EQ(1u, gone.size());
  EXPECT_EQ(node_of(ja), gone[0].node_name);
  EXPECT_EQ(sid_a, gone[0].sender_id);
  // REQ13: the evicted member's key is served for 50 s, then purged by tick.
  Bytes req = encode_pub_key_fetch({sid_a});
  Response r = call(&b.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  ASSERT_EQ(code::kContent, r.code);
  EXPECT_NE((Bytes{0x40}), r.payload);
  EXPECT_LE(mgr.next_deadline(), now() + 50);
  clock.advance(seconds(49));
  EXPECT_EQ(0u, mgr.tick(now()).num_purged);
  EXPECT_EQ(1u, group().departed.size());
  r = call(&b.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  EXPECT_NE((Bytes{0x40}), r.payload);
  clock.advance(seconds(1));
  t = mgr.tick(now());
  EXPECT_GE(t.num_purged, 1u);
  EXPECT_EQ(0u, group().departed.size());
  r = call(&b.who, code::kFetch, {"ace-group", "g1", "pub-key"}, req);
  EXPECT_EQ((Bytes{0x40}), r.payload);
  // bob's token has no exp: he stays.
  clock.advance(seconds(100000));
  EXPECT_EQ(0u, mgr.tick(now()).num_evicted);
  EXPECT_NE(nullptr, group().find_member(node_of(jb)));
}

TEST_F(ManagerTest, TickKeepsMemberWithARenewedToken) {
  Client a = client("alice");
  kdc::TokenRecord t1 = *store.get_token(a.who.token_id);
  t1.exp = now() + 100;
  ASSERT_TRUE(store.put_token(t1));
  Response ja = join(a);
  ASSERT_EQ(code::kCreated, ja.code);
  // A newer token of the same client, still valid after the first one expired.
  kdc::TokenRecord t2 = t1;
  t2.token_id = Bytes{0x77, 0x02};
  t2.exp = now() + 1000;
  ASSERT_TRUE(store.put_token(t2));
  // A token of the same client for another group only does not count.
  kdc::TokenRecord t3 = t1;
  t3.token_id = Bytes{0x77, 0x03};
  t3.exp = now() + 5000;
  ace::Scope other;
  other.entries.push_back(ace::ScopeEntry{"g2", kReq});
  t3.scope = ace::encode_scope(other);
  ASSERT_TRUE(store.put_token(t3));
  clock.advance(seconds(101));
  TickReport t = mgr.tick(now());
  EXPECT_EQ(0u, t.num_evicted);
  EXPECT_NE(nullptr, group().find_member(node_of(ja)));
  EXPECT_LE(mgr.next_deadline(), t2.exp);
  clock.advance(seconds(t2.exp - now()));
  t = mgr.tick(now());
  EXPECT_EQ(1u, t.num_evicted);
  EXPECT_EQ(nullptr, group().find_member(node_of(ja)));
}

TEST_F(ManagerTest, TickEvictsMemberWhoseTokenRecordIsGone) {
  Client a = client("alice");
  Response ja = join(a);
  ASSERT_EQ(code::kCreated, ja.code);
  ASSERT_TRUE(store.delete_token(a.who.token_id));
  EXPECT_EQ(1u, mgr.tick(now()).num_evicted);  // the first tick checks everyone
  EXPECT_EQ(nullptr, group().find_member(node_of(ja)));
}

// One rekey per store round for joins (Store::batch_round): joins in the round
// after the group's rekey get that round's key, which nobody held before the round.
class ManagerRoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = kdc::SqliteStore::open(dir.file("kdc.db"));
    ASSERT_TRUE(s);
    store = std::move(*s);
    ASSERT_TRUE(store->create_group(sample_config("g1"), sample_key(0, 1, clock.unix_time())));
    mgr = std::make_unique<GroupManager>(*store, *provider, rng);
  }

  // join_new joins a fresh client; returns the num of the key it was given (0 on failure).
  uint64_t join_new(std::string* node_out = nullptr) {
    Requester who;
    who.client_id = "c" + std::to_string(next_client_++);
    who.token_id = Bytes(who.client_id.begin(), who.client_id.end());
    who.scope.entries.push_back(ace::ScopeEntry{"g1", kReq});
    who.rsnonce = rng.bytes(8);
    kdc::TokenRecord t;
    t.token_id = who.token_id;
    t.client_id = who.client_id;
    t.scope = ace::encode_scope(who.scope);
    EXPECT_TRUE(store->put_token(t));
    auto kp = provider->generate_keypair(cp::crv::kEd25519);
    cose::CoseKey key = cose::CoseKey::from_keypair(*kp);
    Bytes cred = key.encode(false);
    Bytes n_c = {9, 8, 7};
    Bytes sig = *sign_pop(*provider, cp::alg::kEdDSA, key, who.rsnonce, n_c);
    JoinRequest jr;
    jr.client_cred = cred;
    jr.cnonce = n_c;
    jr.client_cred_verify = sig;
    Bytes payload = encode_join_request(jr);
    Request req;
    req.method = code::kPost;
    req.path = {"ace-group", "g1"};
    req.content_format = cp::cf::kAceGroupcommCbor;
    req.payload = payload;
    Response r = mgr->handle(&who, req, clock.unix_time());
    EXPECT_EQ(code::kCreated, r.code);
    if (r.code != code::kCreated) return 0;
    if (node_out) *node_out = r.location_path.at(3);
    whos_[r.location_path.at(3)] = who;
    auto v = cbor::decode(r.payload);
    EXPECT_TRUE(v);
    return v ? v->find(cp::gc::kNum)->as_uint().value_or(0) : 0;
  }

  uint16_t leave(const std::string& node) {
    Request req;
    req.method = code::kDelete;
    req.path = {"ace-group", "g1", "nodes", node};
    return mgr->handle(&whos_.at(node), req, clock.unix_time()).code;
  }

  uint64_t num() { return store->load_group("g1")->key.num; }

  kdc::testing::TempDir dir;
  FakeClock clock;
  FakeRandom rng{11};
  std::unique_ptr<crypto::Provider> provider = crypto::make_openssl_provider();
  std::unique_ptr<kdc::SqliteStore> store;
  std::unique_ptr<GroupManager> mgr;
  std::map<std::string, Requester> whos_;
  int next_client_ = 0;
};

TEST_F(ManagerRoundTest, JoinsInOneRoundShareOneRekey) {
  ASSERT_EQ(0u, num());
  ASSERT_TRUE(store->begin_batch());
  EXPECT_NE(0u, store->batch_round());
  EXPECT_EQ(1u, join_new());  // the round's rekey: 0 -> 1
  EXPECT_EQ(1u, join_new());  // same round: that key, no second rekey
  EXPECT_EQ(1u, join_new());
  EXPECT_EQ(1u, num());
  auto ev = mgr->take_events();
  ASSERT_EQ(1u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kJoin, ev[0].reason);
  EXPECT_EQ(1u, ev[0].num);
  ASSERT_TRUE(store->commit_batch());
  EXPECT_EQ(0u, store->batch_round());
  EXPECT_EQ(3u, store->load_group("g1")->members.size());

  // The next round: its first joiner rekeys again (never the previous round's key).
  ASSERT_TRUE(store->begin_batch());
  EXPECT_EQ(2u, join_new());
  EXPECT_EQ(2u, join_new());
  ASSERT_TRUE(store->commit_batch());
  EXPECT_EQ(2u, num());
  EXPECT_EQ(1u, mgr->take_events().size());

  // Outside a window every join rekeys (nothing holds the answers back).
  EXPECT_EQ(3u, join_new());
  EXPECT_EQ(4u, join_new());
  EXPECT_EQ(2u, mgr->take_events().size());

  // tick() has nothing to rekey for covered joins, and num stays monotonic.
  ASSERT_TRUE(store->begin_batch());
  EXPECT_EQ(5u, join_new());
  EXPECT_EQ(5u, join_new());
  ASSERT_TRUE(store->commit_batch());
  mgr->take_events();
  TickReport t = mgr->tick(clock.unix_time());
  EXPECT_EQ(0u, t.num_rekeys);
  EXPECT_EQ(5u, num());
}

TEST_F(ManagerRoundTest, LeavesAlwaysRekeyAndJoinAfterLeaveUsesItsKey) {
  std::string a, b;
  ASSERT_EQ(1u, join_new(&a));
  ASSERT_EQ(2u, join_new(&b));
  mgr->take_events();
  ASSERT_TRUE(store->begin_batch());
  EXPECT_EQ(3u, join_new());           // rekey 2 -> 3
  EXPECT_EQ(code::kDeleted, leave(a));  // a leave always rekeys: 3 -> 4
  EXPECT_EQ(4u, num());
  EXPECT_EQ(4u, join_new());           // the round was rekeyed after the leave: that key
  EXPECT_EQ(code::kDeleted, leave(b));  // 4 -> 5
  EXPECT_EQ(5u, num());
  ASSERT_TRUE(store->commit_batch());
  auto ev = mgr->take_events();
  ASSERT_EQ(3u, ev.size());
  EXPECT_EQ(RekeyEvent::Reason::kJoin, ev[0].reason);
  EXPECT_EQ(RekeyEvent::Reason::kLeave, ev[1].reason);
  EXPECT_EQ(RekeyEvent::Reason::kLeave, ev[2].reason);
}

TEST_F(ManagerRoundTest, FailedRoundRekeysAgainInTheNext) {
  ASSERT_TRUE(store->begin_batch());
  EXPECT_EQ(1u, join_new());
  EXPECT_EQ(1u, join_new());
  // The round is lost (as on a failed COMMIT): nothing of it is kept.
  store.reset();
  auto s = kdc::SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(s);
  store = std::move(*s);
  mgr = std::make_unique<GroupManager>(*store, *provider, rng);
  EXPECT_EQ(0u, num());
  ASSERT_TRUE(store->begin_batch());
  EXPECT_EQ(1u, join_new());  // a new round: its own rekey
  EXPECT_EQ(1u, join_new());
  ASSERT_TRUE(store->commit_batch());
  EXPECT_EQ(1u, num());
}

TEST(ManagerSqlite, JoinLeaveSurviveReopen) {
  kdc::testing::TempDir dir;
  FakeClock clock;
  FakeRandom rng(3);
  auto provider = crypto::make_openssl_provider();
  std::string node;
  Requester who;
  who.client_id = "alice";
  who.token_id = {0x0a};
  who.scope.entries.push_back(ace::ScopeEntry{"g1", kReq});
  who.rsnonce = {1, 2, 3, 4, 5, 6, 7, 8};
  auto kp = provider->generate_keypair(cp::crv::kEd25519);
  cose::CoseKey key = cose::CoseKey::from_keypair(*kp);
  Bytes cred = key.encode(false);
  Bytes n_c = {9};
  Bytes sig = *sign_pop(*provider, cp::alg::kEdDSA, key, who.rsnonce, n_c);
  JoinRequest jr;
  jr.client_cred = cred;
  jr.cnonce = n_c;
  jr.client_cred_verify = sig;
  Bytes payload = encode_join_request(jr);
  {
    auto store = kdc::SqliteStore::open(dir.file("kdc.db"));
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->create_group(sample_config("g1"), sample_key(0, 1, clock.unix_time())));
    GroupManager mgr(**store, *provider, rng);
    Request req;
    req.method = code::kPost;
    req.path = {"ace-group", "g1"};
    req.content_format = cp::cf::kAceGroupcommCbor;
    req.payload = payload;
    Response r = mgr.handle(&who, req, clock.unix_time());
    ASSERT_EQ(code::kCreated, r.code);
    node = r.location_path.at(3);
  }
  auto store = kdc::SqliteStore::open(dir.file("kdc.db"));
  ASSERT_TRUE(store);
  GroupManager mgr(**store, *provider, rng);
  Request req;
  req.method = code::kDelete;
  req.path = {"ace-group", "g1", "nodes", node};
  EXPECT_EQ(code::kDeleted, mgr.handle(&who, req, clock.unix_time()).code);
  auto g = (*store)->load_group("g1");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->members.empty());
  EXPECT_EQ(2u, g->key.num);
}

}  // namespace
}  // namespace acekdc::groupcomm
