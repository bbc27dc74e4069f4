#include "groupcomm/params.h"

#include <gtest/gtest.h>

#include "cbor/edn.h"
#include "cbor/value.h"
#include "core/codepoints.h"
#include "cose/key.h"

namespace acekdc::groupcomm {
namespace {

Bytes diag(std::string_view edn) {
  auto v = cbor::from_diag(edn);
  EXPECT_TRUE(v) << edn;
  return cbor::encode(*v);
}

ParamFailure join_error(std::string_view edn) {
  Bytes b = diag(edn);
  auto r = parse_join_request(b);
  EXPECT_FALSE(r) << edn;
  return r ? ParamFailure{} : r.error();
}

TEST(JoinRequest, FullRequestParses) {
  Bytes b;
  b = diag(R"({3: <<["g1", "requester"]>>, 4: [], 5: h'a10101', 6: h'0102', 24: h'aabb', 25: "coap://r", 26: "/gc"})");
  auto r = parse_join_request(b);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->scope);
  EXPECT_EQ(diag(R"(["g1", "requester"])"), to_bytes(*r->scope));
  EXPECT_TRUE(r->get_pub_keys);
  EXPECT_EQ((Bytes{0xa1, 0x01, 0x01}), to_bytes(*r->client_cred));
  EXPECT_EQ((Bytes{1, 2}), to_bytes(*r->cnonce));
  EXPECT_EQ((Bytes{0xaa, 0xbb}), to_bytes(*r->client_cred_verify));
  EXPECT_EQ("coap://r", *r->pub_keys_repos);
  EXPECT_EQ("/gc", *r->control_path);
}

TEST(JoinRequest, EmptyMapIsValid) {
  Bytes b = diag("{}");
  auto r = parse_join_request(b);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->scope);
  EXPECT_FALSE(r->get_pub_keys);
  EXPECT_FALSE(r->client_cred);
}

TEST(JoinRequest, RoundTrip) {
  Bytes scope = diag(R"(["g1", ["requester", "responder"]])");
  Bytes cred = {0xa1, 0x01, 0x01};
  Bytes n = {9, 9, 9};
  Bytes sig(64, 7);
  JoinRequest in;
  in.scope = scope;
  in.get_pub_keys = true;
  in.client_cred = cred;
  in.cnonce = n;
  in.client_cred_verify = sig;
  in.control_path = "/ctl";
  Bytes enc = encode_join_request(in);
  auto out = parse_join_request(enc);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(scope, to_bytes(*out->scope));
  EXPECT_TRUE(out->get_pub_keys);
  EXPECT_EQ(sig, to_bytes(*out->client_cred_verify));
  EXPECT_EQ("/ctl", *out->control_path);
  EXPECT_FALSE(out->pub_keys_repos);
  EXPECT_EQ(enc, encode_join_request(*out));
}

TEST(JoinRequest, Errors) {
  auto e = join_error("{99: 1}");
  EXPECT_EQ(ParamError::kUnknownField, e.error);
  EXPECT_EQ(99, e.field);
  EXPECT_EQ(ParamError::kUnknownField, join_error(R"({"scope": h'00'})").error);
  // A response-only parameter is not allowed in a request.
  EXPECT_EQ(ParamError::kUnknownField, join_error("{9: 1}").error);
  e = join_error("{3: h'01', 3: h'02'}");
  EXPECT_EQ(ParamError::kDuplicateField, e.error);
  EXPECT_EQ(cp::gc::kScope, e.field);
  e = join_error(R"({3: "g1"})");
  EXPECT_EQ(ParamError::kWrongType, e.error);
  EXPECT_EQ(cp::gc::kScope, e.field);
  EXPECT_EQ(ParamError::kWrongType, join_error("{4: {}}").error);
  EXPECT_EQ(ParamError::kWrongType, join_error("{26: h'00'}").error);
  e = join_error("{4: [h'01']}");
  EXPECT_EQ(ParamError::kInvalidValue, e.error);
  EXPECT_EQ(cp::gc::kGetPubKeys, e.field);
  e = join_error("{5: h'a0', 6: h'01'}");
  EXPECT_EQ(ParamError::kMissingField, e.error);
  EXPECT_EQ(cp::gc::kClientCredVerify, e.field);
  e = join_error("{5: h'a0', 24: h'01'}");
  EXPECT_EQ(ParamError::kMissingField, e.error);
  EXPECT_EQ(cp::gc::kCnonce, e.field);
  e = join_error("{6: h'01', 24: h'01'}");
  EXPECT_EQ(ParamError::kMissingField, e.error);
  EXPECT_EQ(cp::gc::kClientCred, e.field);
  EXPECT_EQ(ParamError::kNotMap, join_error("[]").error);
  EXPECT_EQ(ParamError::kNotMap, join_error("h''").error);
}

TEST(JoinRequest, MalformedAndTrailing) {
  Bytes b = diag("{3: h'01'}");
  b.push_back(0x00);
  auto r = parse_join_request(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kTrailingBytes, r.error().error);
  b = diag("{3: h'0102'}");
  b.pop_back();
  r = parse_join_request(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kMalformedCbor, r.error().error);
  r = parse_join_request(ByteView{});
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kMalformedCbor, r.error().error);
  // Indefinite-length map.
  Bytes indef = {0xbf, 0x03, 0x41, 0x01, 0xff};
  EXPECT_FALSE(parse_join_request(indef));
  // A map header claiming far more pairs than bytes.
  Bytes huge = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(parse_join_request(huge));
  // Too long control_path.
  Limits l;
  l.max_text = 3;
  Bytes cp = diag(R"({26: "/abcd"})");
  r = parse_join_request(cp, l);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kTooLarge, r.error().error);
  // Payload over the limit.
  l = Limits{};
  l.max_payload = 4;
  Bytes big = diag("{3: h'0102030405'}");
  r = parse_join_request(big, l);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kTooLarge, r.error().error);
}

TEST(ParamFailure, Describe) {
  EXPECT_EQ("duplicate field client_cred (5)", (ParamFailure{ParamError::kDuplicateField, 5}).describe());
  EXPECT_EQ("trailing bytes after the map", (ParamFailure{ParamError::kTrailingBytes, 0}).describe());
}

TEST(PubKeyFetch, ParsesIdsInOrder) {
  Bytes b = encode_pub_key_fetch({{0x01}, {0x02, 0x03}, {0x01}});
  EXPECT_EQ(diag("{4: [h'01', h'0203', h'01']}"), b);
  auto r = parse_pub_key_fetch(b);
  ASSERT_TRUE(r);
  ASSERT_EQ(3u, r->ids.size());
  EXPECT_EQ((Bytes{2, 3}), to_bytes(r->ids[1]));
}

TEST(PubKeyFetch, Errors) {
  Bytes b = diag("{4: []}");
  auto r = parse_pub_key_fetch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kInvalidValue, r.error().error);
  b = diag("{}");
  r = parse_pub_key_fetch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kMissingField, r.error().error);
  b = diag(R"({4: ["x"]})");
  r = parse_pub_key_fetch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kWrongType, r.error().error);
  b = diag("{4: [h'01'], 5: h'01'}");
  r = parse_pub_key_fetch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kUnknownField, r.error().error);
  Limits l;
  l.max_ids = 2;
  b = diag("{4: [h'01', h'02', h'03']}");
  r = parse_pub_key_fetch(b, l);
  ASSERT_FALSE(r);
  EXPECT_EQ(ParamError::kTooLarge, r.error().error);
  // An array header claiming 2^32 ids in a few bytes: refused before any reserve.
  Bytes lie = {0xa1, 0x04, 0x9a, 0xff, 0xff, 0xff, 0xff, 0x41, 0x01};
  l.max_ids = SIZE_MAX;
  r = parse_pub_key_fetch(lie, l);
  ASSERT_FALSE(r);
}

TEST(PubKeyUpdate, RoundTripAndRequired) {
  Bytes cred = {0xa0}, n = {1}, sig = {2, 2};
  Bytes b = encode_pub_key_update(cred, n, sig);
  auto r = parse_pub_key_update(b);
  ASSERT_TRUE(r);
  EXPECT_EQ(cred, to_bytes(r->client_cred));
  EXPECT_EQ(sig, to_bytes(r->client_cred_verify));
  b = diag("{5: h'a0', 6: h'01'}");
  auto e = parse_pub_key_update(b);
  ASSERT_FALSE(e);
  EXPECT_EQ(ParamError::kMissingField, e.error().error);
  EXPECT_EQ(cp::gc::kClientCredVerify, e.error().field);
  b = diag("{3: h'00', 5: h'a0', 6: h'01', 24: h'01'}");
  e = parse_pub_key_update(b);
  ASSERT_FALSE(e);
  EXPECT_EQ(ParamError::kUnknownField, e.error().error);
}

TEST(Leave, EmptyOrScopeOnly) {
  auto r = parse_leave_request(ByteView{});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->scope);
  Bytes b = diag("{}");
  EXPECT_TRUE(parse_leave_request(b));
  b = diag(R"({3: <<["g1", "requester"]>>})");
  r = parse_leave_request(b);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->scope);
  b = diag(R"({4: []})");
  EXPECT_FALSE(parse_leave_request(b));
}

kdc::GroupConfig config() {
  kdc::GroupConfig c;
  c.name = "g1";
  return c;
}

TEST(KeyDistribution, Layout) {
  kdc::GroupConfig c = config();
  kdc::GroupKeyMaterial k;
  k.num = 3;
  k.master_secret = Bytes(16, 0x11);
  k.master_salt = Bytes(8, 0x22);
  k.group_id = {0xfe, 0xed};
  k.exp = 1700086400;
  cose::CoseKey pk;
  pk.kty = cp::kty::kOKP;
  pk.crv = cp::crv::kEd25519;
  pk.x = Bytes(32, 0x33);
  pk.kid = {0x99};  // replaced by the Sender ID
  Bytes stored = pk.encode(false);
  Bytes sid = {0x05}, other = {0x07};
  KeyDistribution kd;
  kd.config = &c;
  kd.key = &k;
  kd.sender_id = ByteView(sid);
  kd.include_policies = true;
  kd.include_pub_keys = true;
  kd.members = {MemberKey{other, stored, 0x06}, MemberKey{sid, stored, 0x02}};
  auto enc = encode_key_distribution(kd);
  ASSERT_TRUE(enc);
  auto v = cbor::decode(*enc);
  ASSERT_TRUE(v);
  EXPECT_EQ(1, v->find(7)->as_int());
  const cbor::Value* key = v->find(8);
  ASSERT_TRUE(key && key->is_map());
  EXPECT_EQ(Bytes(16, 0x11), *key->find(2)->as_bytes());
  EXPECT_EQ(5, key->find(3)->as_int());
  EXPECT_EQ(10, key->find(4)->as_int());
  EXPECT_EQ(Bytes(8, 0x22), *key->find(5)->as_bytes());
  EXPECT_EQ((Bytes{0xfe, 0xed}), *key->find(6)->as_bytes());
  EXPECT_EQ(sid, *key->find(7)->as_bytes());
  EXPECT_EQ(-8, key->find(10)->as_int());
  EXPECT_EQ("[[1], [1, 6]]", cbor::to_diag(*key->find(11)));
  EXPECT_EQ(3, v->find(9)->as_int());
  EXPECT_EQ(1, v->find(10)->as_int());
  EXPECT_EQ(1700086400, v->find(11)->as_int());
  auto set = cose::KeySet::decode(*v->find(13)->as_bytes());
  ASSERT_TRUE(set);
  ASSERT_EQ(2u, set->keys.size());
  EXPECT_EQ(other, set->keys[0].kid);
  EXPECT_EQ(sid, set->keys[1].kid);
  EXPECT_EQ(R"([["requester", "responder"], "requester"])", cbor::to_diag(*v->find(14)));
  ASSERT_TRUE(v->find(16) && v->find(16)->is_map());
  EXPECT_EQ(nullptr, v->find(27));
}

TEST(KeyDistribution, MinimalAndCorruptKey) {
  kdc::GroupConfig c = config();
  kdc::GroupKeyMaterial k;
  k.master_secret = Bytes(16, 1);
  k.group_id = {1};
  KeyDistribution kd;
  kd.config = &c;
  kd.key = &k;
  auto enc = encode_key_distribution(kd);
  ASSERT_TRUE(enc);
  auto v = cbor::decode(*enc);
  ASSERT_TRUE(v);
  EXPECT_EQ(5u, v->as_map()->size());
  EXPECT_EQ(nullptr, v->find(8)->find(7));
  Bytes junk = {0xff};
  kd.include_pub_keys = true;
  kd.members = {MemberKey{junk, junk, 2}};
  EXPECT_FALSE(encode_key_distribution(kd));
  kd.config = nullptr;
  EXPECT_FALSE(encode_key_distribution(kd));
}

TEST(Responses, SmallOnes) {
  auto empty = encode_pub_keys_response({});
  ASSERT_TRUE(empty);
  EXPECT_EQ((Bytes{0x40}), *empty);
  EXPECT_EQ((Bytes{0x18, 0x2a}), encode_num(42));
  EXPECT_EQ(diag("{21: h'0102'}"), encode_sender_id_response(Bytes{1, 2}));
  EXPECT_EQ(diag("{46: h'09'}"), encode_rsnonce_response(Bytes{9}));
  kdc::GroupPolicies p;
  auto v = cbor::decode(encode_policies_response(p));
  ASSERT_TRUE(v);
  const cbor::Value* pol = v->find(16);
  ASSERT_TRUE(pol && pol->is_map());
  EXPECT_EQ(2, pol->find(0)->as_int());
  EXPECT_EQ(3600, pol->find(1)->as_int());
}

}  // namespace
}  // namespace acekdc::groupcomm
