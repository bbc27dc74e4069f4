// GroupCoapBinding over real ACE cores: a token from the AS, posted to AuthzInfo,
// then joins, the REQ17 nonce refresh and a leave through the binding.
#include "groupcomm/coap_binding.h"

#include <gtest/gtest.h>

#include "ace/as.h"
#include "ace/oscore_profile.h"
#include "cose/key.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/params.h"
#include "groupcomm/pop.h"
#include "kdc/memory_store.h"
#include "kdc/test_util.h"

namespace acekdc::groupcomm {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

class BindingTest : public ::testing::Test {
 protected:
  BindingTest() : shared_(cose::CoseKey::symmetric(*from_hex("101112131415161718191a1b1c1d1e1f"), {},
                                                   cp::alg::kAES_CCM_16_64_128)) {
    ace::AsPolicy pol;
    ace::ClientPolicy c;
    c.id = "client1";
    c.groups = {{"g1", ace::kRoleRequester | ace::kRoleResponder}};
    pol.clients = {c};
    ace::AudiencePolicy a;
    a.name = "kdc";
    a.shared_key = shared_;
    pol.audiences = {a};
    as_ = std::make_unique<ace::AuthorizationServer>(*p_, rnd_, pol);
    ace::AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(shared_);
    cfg.groups = {{"g1", ace::GroupConfig{}}};
    authz_ = std::make_unique<ace::AuthzInfo>(*p_, rnd_, tokens_, cfg);
    EXPECT_TRUE(store_.create_group(kdc::testing::sample_config("g1"), kdc::testing::sample_key(0, 1, kNow)));
    GroupCoapBinding::Observer obs;
    obs.on_rekey = [this](const RekeyEvent& e, ByteView gid) {
      rekeys_.push_back(e.num);
      EXPECT_FALSE(gid.empty());
    };
    obs.on_request = [this](const coap::Message&, uint8_t c) { codes_.push_back(c); };
    binding_ = std::make_unique<GroupCoapBinding>(*authz_, tokens_, store_, mgr_, obs);
  }

  // connect: token request at the AS + token POST; returns the KDC's context key.
  ace::ContextKey connect() {
    ace::TokenRequest tr;
    tr.audience = "kdc";
    ace::Scope s;
    s.entries.push_back(ace::ScopeEntry{"g1", ace::kRoleRequester});
    tr.scope = ace::ScopeParam{false, ace::encode_scope(s)};
    ace::AsResponse r = as_->handle_token("client1", tr.encode(), kNow);
    EXPECT_EQ(r.code, code::kCreated);
    auto t = ace::TokenResponse::decode(r.payload);
    EXPECT_TRUE(t);
    ace::ClientTokenPost sent = ace::prepare_token_post(t->access_token, *from_hex("42"), rnd_);
    ace::TokenPostResult p = authz_->handle_token_post(sent.payload, kNow);
    EXPECT_EQ(p.code, code::kCreated);
    EXPECT_TRUE(p.established);
    return p.established ? p.established->key : ace::ContextKey{};
  }

  coap::Message call(const ace::ContextKey& via, uint8_t method, std::string_view path, Bytes payload = {}) {
    coap::Message req(coap::Type::kCon, method, 7);
    req.set_uri_path(path);
    if (!payload.empty()) req.set_uint(option::kContentFormat, cp::cf::kAceGroupcommCbor);
    req.payload = std::move(payload);
    coap::Message resp(coap::Type::kAck, code::kNotFound, 7);
    binding_->handle(via, req, resp, kNow);
    return resp;
  }

  Bytes join_payload(const cose::CoseKey& key, ByteView rsnonce) {
    ace::Scope s;
    s.entries.push_back(ace::ScopeEntry{"g1", ace::kRoleRequester});
    Bytes scope = ace::encode_scope(s);
    Bytes cred = key.encode(false);
    Bytes n_c = {1, 2, 3, 4, 5, 6, 7, 8};
    Bytes sig = *sign_pop(*p_, cp::alg::kEdDSA, key, rsnonce, n_c);
    JoinRequest jr;
    jr.scope = scope;
    jr.client_cred = cred;
    jr.cnonce = n_c;
    jr.client_cred_verify = sig;
    return encode_join_request(jr);
  }

  cose::CoseKey fresh_key() { return cose::CoseKey::from_keypair(*p_->generate_keypair(cp::crv::kEd25519)); }

  std::unique_ptr<crypto::Provider> p_ = crypto::make_openssl_provider();
  FakeRandom rnd_{3};
  cose::CoseKey shared_;
  std::unique_ptr<ace::AuthorizationServer> as_;
  ace::MemoryTokenStore tokens_;
  std::unique_ptr<ace::AuthzInfo> authz_;
  kdc::MemoryStore store_;
  GroupManager mgr_{store_, *p_, rnd_};
  std::unique_ptr<GroupCoapBinding> binding_;
  std::vector<uint64_t> rekeys_;
  std::vector<uint8_t> codes_;
};

TEST_F(BindingTest, JoinKeysAndLeaveOverTheContextsTokens) {
  ace::ContextKey key = connect();
  Bytes rsnonce = tokens_.get(key)->rsnonce;
  ASSERT_FALSE(rsnonce.empty());
  coap::Message j = call(key, code::kPost, "/ace-group/g1", join_payload(fresh_key(), rsnonce));
  ASSERT_EQ(j.code, code::kCreated) << as_string(j.payload);
  std::string loc = j.location_path();
  EXPECT_EQ(loc.rfind("/ace-group/g1/nodes/", 0), 0u) << loc;
  EXPECT_EQ(j.get_uint(option::kContentFormat), cp::cf::kAceGroupcommCbor);
  // The token is known to the KDC store under the context's identity.
  auto toks = store_.tokens_for_client("osc:" + to_hex(tokens_.get(key)->material_id));
  ASSERT_TRUE(toks);
  EXPECT_EQ(toks->size(), 1u);

  EXPECT_EQ(call(key, code::kGet, "/ace-group/g1").code, code::kContent);
  coap::Message l = call(key, code::kDelete, loc);
  EXPECT_EQ(l.code, code::kDeleted) << as_string(l.payload);
  EXPECT_EQ(store_.load_group("g1")->members.size(), 0u);
  EXPECT_EQ(codes_, (std::vector<uint8_t>{code::kCreated, code::kContent, code::kDeleted}));
  EXPECT_EQ(rekeys_.size(), store_.load_group("g1")->key.num);  // one event per version
}

TEST_F(BindingTest, MissingRsnonceIsRefreshedAndRemembered) {
  ace::ContextKey key = connect();
  auto rec = *tokens_.get(key);
  rec.rsnonce.clear();
  ASSERT_TRUE(tokens_.put(rec));
  coap::Message r = call(key, code::kPost, "/ace-group/g1", join_payload(fresh_key(), Bytes{9, 9}));
  ASSERT_EQ(r.code, code::kBadRequest);
  Bytes fresh = tokens_.get(key)->rsnonce;
  ASSERT_FALSE(fresh.empty());
  EXPECT_EQ(r.payload, encode_rsnonce_response(fresh));
  // Signing over the remembered N_S now succeeds.
  EXPECT_EQ(call(key, code::kPost, "/ace-group/g1", join_payload(fresh_key(), fresh)).code, code::kCreated);
}

TEST_F(BindingTest, UnknownContextAndOtherPaths) {
  connect();
  ace::ContextKey stranger{Bytes{0x77}, std::nullopt};
  EXPECT_EQ(call(stranger, code::kGet, "/ace-group/g1").code, code::kUnauthorized);
  // Not under /ace-group: left to the gate (4.04 untouched, observer not called).
  codes_.clear();
  EXPECT_EQ(call(stranger, code::kGet, "/other").code, code::kNotFound);
  EXPECT_TRUE(codes_.empty());
}

}  // namespace
}  // namespace acekdc::groupcomm
