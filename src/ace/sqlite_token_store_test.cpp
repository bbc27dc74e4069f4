// KDC-side persistence of /authz-info: SqliteTokenStore (records with tokens and the
// derived OSCORE context), and a KDC restart: the gate re-creates the contexts from
// the store, the client keeps talking without re-posting its token, and the KDC's
// Sender Sequence Number continues above everything it used before the restart.
#include "ace/sqlite_token_store.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include <sqlite3.h>

#include "ace/coap_gate.h"
#include "ace/oscore_profile.h"
#include "core/codepoints.h"
#include "core/hex.h"
#include "crypto/openssl/openssl_provider.h"
#include "oscore/sequence_store.h"

namespace acekdc::ace {
namespace {

namespace code = cp::coap::code;
namespace option = cp::coap::option;
constexpr int64_t kNow = 1700000000;

Bytes h(const char* s) { return *from_hex(s); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ace_store_test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

ClientRecord sample_record(uint8_t rid) {
  ClientRecord r;
  r.key = ContextKey{Bytes{rid}, h("c0ffee")};
  r.sender_id = h("42");
  r.material_id = h("a1a2a3a4a5a6");
  r.rsnonce = h("0102030405060708");
  StoredToken t1;
  t1.cti = h("11223344");
  t1.issuer = "as";
  t1.scope = Scope{{ScopeEntry{"g1", kRoleRequester}}};
  t1.exp = kNow + 100;
  t1.raw = h("d08343a1010aa1054d0102");
  StoredToken t2 = t1;
  t2.cti = {};
  t2.issuer.reset();
  t2.scope = Scope{{ScopeEntry{"g2", kRoleMonitor}}};
  t2.introspected = true;
  r.tokens = {t1, t2};
  oscore::ContextParams p;
  p.master_secret = h("000102030405060708090a0b0c0d0e0f");
  p.master_salt = h("4800");
  p.sender_id = h("42");
  p.recipient_id = Bytes{rid};
  p.id_context = h("c0ffee");
  r.context = p;
  return r;
}

void expect_same(const ClientRecord& a, const ClientRecord& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.sender_id, b.sender_id);
  EXPECT_EQ(a.material_id, b.material_id);
  EXPECT_EQ(a.rsnonce, b.rsnonce);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_EQ(a.tokens[i].cti, b.tokens[i].cti);
    EXPECT_EQ(a.tokens[i].issuer, b.tokens[i].issuer);
    EXPECT_EQ(encode_scope(a.tokens[i].scope), encode_scope(b.tokens[i].scope));
    EXPECT_EQ(a.tokens[i].exp, b.tokens[i].exp);
    EXPECT_EQ(a.tokens[i].raw, b.tokens[i].raw);
    EXPECT_EQ(a.tokens[i].introspected, b.tokens[i].introspected);
  }
  ASSERT_EQ(a.context.has_value(), b.context.has_value());
  if (a.context) {
    EXPECT_EQ(a.context->master_secret, b.context->master_secret);
    EXPECT_EQ(a.context->master_salt, b.context->master_salt);
    EXPECT_EQ(a.context->sender_id, b.context->sender_id);
    EXPECT_EQ(a.context->recipient_id, b.context->recipient_id);
    EXPECT_EQ(a.context->id_context, b.context->id_context);
    EXPECT_EQ(a.context->aead_alg, b.context->aead_alg);
    EXPECT_EQ(a.context->hkdf_alg, b.context->hkdf_alg);
  }
}

TEST(RecordCodec, RoundTripAndRefusals) {
  ClientRecord r = sample_record(1);
  auto back = decode_record(encode_record(r));
  ASSERT_TRUE(back);
  expect_same(r, *back);
  r.context.reset();
  r.key.id_context.reset();
  back = decode_record(encode_record(r));
  ASSERT_TRUE(back);
  expect_same(r, *back);
  EXPECT_FALSE(decode_record(h("80")));
  EXPECT_FALSE(decode_record(h("a0")));
  EXPECT_FALSE(decode_record(h("874101f6410141014101" "80" "f600")));  // trailing byte
  EXPECT_FALSE(decode_record(h("874101f6410141014101" "81" "80" "f6")));  // token of the wrong arity
  EXPECT_TRUE(decode_record(h("874101f6410141014101" "80" "f6")));
}

TEST(SqliteTokenStore, SurvivesReopenAndErase) {
  TempDir dir;
  const std::string path = dir.file("tokens.sqlite");
  {
    auto s = SqliteTokenStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put(sample_record(1)));
    ASSERT_TRUE((*s)->put(sample_record(2)));
    ClientRecord r3 = sample_record(3);
    r3.material_id = h("bb");
    ASSERT_TRUE((*s)->put(r3));
    ASSERT_TRUE((*s)->erase(sample_record(2).key));
    EXPECT_EQ((*s)->size(), 2u);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the file holds master secrets";
  auto s = SqliteTokenStore::open(path, /*capacity=*/2);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->size(), 2u);
  auto r1 = (*s)->get(sample_record(1).key);
  ASSERT_TRUE(r1);
  expect_same(sample_record(1), *r1);
  EXPECT_FALSE((*s)->get(sample_record(2).key));
  EXPECT_EQ((*s)->find_material(h("bb")), sample_record(3).key);
  EXPECT_EQ((*s)->put(sample_record(4)).error(), StoreError::kFull);
  ClientRecord again = sample_record(1);
  again.rsnonce = h("ff");
  EXPECT_TRUE((*s)->put(again)) << "replacing an existing key needs no room";
}

TEST(SqliteTokenStore, CorruptRecordFailsOpen) {
  TempDir dir;
  const std::string path = dir.file("tokens.sqlite");
  {
    auto s = SqliteTokenStore::open(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->put(sample_record(1)));
  }
  const std::string cmd = "/usr/bin/python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                          "c.execute('UPDATE ace_token_records SET record=x\\'82\\''); c.commit()\" " + path;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto s = SqliteTokenStore::open(path);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), StoreError::kIo);
  EXPECT_FALSE(SqliteTokenStore::open(dir.file("no/such/dir/x.sqlite")));
}

TEST(MemoryTokenStore, IndexedLookupsKeepOrderAndFirstMaterial) {
  MemoryTokenStore m(8);
  ClientRecord a = sample_record(1), b = sample_record(2), c = sample_record(3);
  b.material_id = h("bb");
  c.key.id_context.reset();  // the same Recipient ID without an ID Context is another key
  c.key.recipient_id = Bytes{1};
  ASSERT_TRUE(m.put(a));
  ASSERT_TRUE(m.put(b));
  ASSERT_TRUE(m.put(c));
  EXPECT_TRUE(m.contains(a.key));
  EXPECT_TRUE(m.contains(c.key));
  EXPECT_FALSE(m.contains(ContextKey{Bytes{1}, h("c0ff")}));
  EXPECT_FALSE(m.contains(ContextKey{Bytes{1, 0}, std::nullopt}));
  // find_material: the first record (insertion order) that holds it.
  EXPECT_EQ(m.find_material(a.material_id), a.key);
  EXPECT_EQ(m.find_material(h("bb")), b.key);
  EXPECT_FALSE(m.find_material(h("cc")));
  ASSERT_TRUE(m.erase(a.key));
  EXPECT_EQ(m.find_material(a.material_id), c.key) << "c holds a's material too";
  std::vector<ContextKey> order = m.keys();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], b.key);
  EXPECT_EQ(order[1], c.key);
  // A replaced record with another material is found by the new one only.
  b.material_id = h("b2");
  ASSERT_TRUE(m.put(b));
  EXPECT_FALSE(m.find_material(h("bb")));
  EXPECT_EQ(m.find_material(h("b2")), b.key);
  EXPECT_EQ(m.get(b.key)->material_id, h("b2"));
  EXPECT_TRUE(m.erase(ContextKey{Bytes{9}, std::nullopt})) << "erasing an absent key is a no-op";
  EXPECT_EQ(m.size(), 2u);
}

TEST(SqliteTokenStore, BatchIsDurableOnlyAtCommit) {
  TempDir dir;
  const std::string path = dir.file("tokens.sqlite");
  auto s = SqliteTokenStore::open(path);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->put(sample_record(1)));
  (*s)->begin_batch();
  EXPECT_TRUE((*s)->in_batch());
  ASSERT_TRUE((*s)->put(sample_record(2)));
  ASSERT_TRUE((*s)->erase(sample_record(1).key));
  EXPECT_TRUE((*s)->get(sample_record(2).key)) << "the window's writes are visible at once";
  {
    // Another connection sees the committed state only.
    auto other = SqliteTokenStore::open(path);
    ASSERT_TRUE(other);
    EXPECT_TRUE((*other)->get(sample_record(1).key));
    EXPECT_FALSE((*other)->get(sample_record(2).key));
  }
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_FALSE((*s)->in_batch());
  EXPECT_EQ((*s)->batches_committed(), 1u);
  {
    auto other = SqliteTokenStore::open(path);
    ASSERT_TRUE(other);
    EXPECT_FALSE((*other)->get(sample_record(1).key));
    EXPECT_TRUE((*other)->get(sample_record(2).key));
  }
  // An empty window commits nothing.
  (*s)->begin_batch();
  ASSERT_TRUE((*s)->commit_batch());
  EXPECT_EQ((*s)->batches_committed(), 1u);
  // A window never committed is not kept.
  (*s)->begin_batch();
  ASSERT_TRUE((*s)->put(sample_record(3)));
  s->reset();
  auto again = SqliteTokenStore::open(path);
  ASSERT_TRUE(again);
  EXPECT_FALSE((*again)->get(sample_record(3).key));
  EXPECT_EQ((*again)->size(), 1u);
}

// set_deferred_sync: the window's commit is visible at once (no fsync); sync_committed
// (here from another thread, as io::SyncPipeline's commit thread calls it) makes it
// durable; writes outside windows and later windows work as before.
TEST(SqliteTokenStore, DeferredSyncWindowVisibleAtCommitThenSynced) {
  TempDir dir;
  const std::string path = dir.file("tokens.sqlite");
  auto s = SqliteTokenStore::open(path);
  ASSERT_TRUE(s);
  (*s)->set_deferred_sync(true);
  for (uint8_t i = 1; i <= 20; ++i) {
    (*s)->begin_batch();
    ASSERT_TRUE((*s)->put(sample_record(i)));
    ASSERT_TRUE((*s)->commit_batch());
    {
      auto other = SqliteTokenStore::open(path);
      ASSERT_TRUE(other);
      EXPECT_TRUE((*other)->get(sample_record(i).key)) << "visible at commit";
    }
    Expected<void, StoreError> synced = unexpected(StoreError::kIo);
    std::thread t([&] { synced = (*s)->sync_committed(); });
    t.join();
    EXPECT_TRUE(synced);
  }
  ASSERT_TRUE((*s)->put(sample_record(21)));  // outside a window
  EXPECT_EQ((*s)->batches_committed(), 20u);
  s->reset();
  auto again = SqliteTokenStore::open(path);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->size(), 21u);
}

TEST(SqliteTokenStore, FailedBatchKeepsNothingAndShowsTheFile) {
  TempDir dir;
  const std::string path = dir.file("tokens.sqlite");
  auto s = SqliteTokenStore::open(path);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->put(sample_record(1)));
  // Another writer holds the write lock: the window cannot begin its transaction.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  (*s)->begin_batch();
  EXPECT_EQ((*s)->put(sample_record(2)).error(), StoreError::kIo);
  EXPECT_FALSE((*s)->get(sample_record(2).key));
  EXPECT_EQ((*s)->commit_batch().error(), StoreError::kIo) << "a failed write fails the window";
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE((*s)->get(sample_record(1).key));
  EXPECT_EQ((*s)->size(), 1u);
  // The store works on afterwards, batched or not.
  (*s)->begin_batch();
  ASSERT_TRUE((*s)->put(sample_record(2)));
  ASSERT_TRUE((*s)->commit_batch());
  ASSERT_TRUE((*s)->put(sample_record(3)));
  auto again = SqliteTokenStore::open(path);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->size(), 3u);
}

// Token POSTs get the shortest free KDC Recipient ID (never ID1), also after a
// record went (the freed ID is handed out again).
TEST(AuthzInfoRecipientId, ShortestFreeIdAfterManyPostsAndAnErase) {
  auto p = crypto::make_openssl_provider();
  FakeRandom as_rnd{7};
  FakeRandom kdc_rnd{8};
  cose::CoseKey key = cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128);
  AsPolicy pol;
  ClientPolicy c;
  c.id = "client1";
  c.groups = {{"g1", kRoleRequester}};
  pol.clients = {c};
  pol.max_materials = 1000;
  AudiencePolicy a;
  a.name = "kdc";
  a.shared_key = key;
  pol.audiences = {a};
  AuthorizationServer as(*p, as_rnd, pol);
  MemoryTokenStore store(1000);
  AuthzInfoConfig cfg;
  cfg.audience = "kdc";
  cfg.as_keys.keys.push_back(key);
  cfg.groups = {{"g1", GroupConfig{}}};
  AuthzInfo authz(*p, kdc_rnd, store, cfg);
  TokenRequest tr;
  tr.audience = "kdc";
  tr.scope = ScopeParam{false, encode_scope(Scope{{ScopeEntry{"g1", kRoleRequester}}})};
  auto post = [&](const Bytes& id1) -> Bytes {
    auto t = TokenResponse::decode(as.handle_token("client1", tr.encode(), kNow).payload);
    EXPECT_TRUE(t);
    if (!t) return {};
    ClientTokenPost sent = prepare_token_post(t->access_token, id1, as_rnd);
    TokenPostResult r = authz.handle_token_post(sent.payload, kNow);
    EXPECT_EQ(r.code, code::kCreated);
    return r.established ? r.established->key.recipient_id : Bytes{};
  };
  std::vector<Bytes> got;
  for (int i = 0; i < 300; ++i) got.push_back(post(h("02")));
  // 0x00, 0x01, 0x03 ... 0xff (0x02 is ID1), then 0x0100, 0x0101, ...
  EXPECT_EQ(got[0], h("00"));
  EXPECT_EQ(got[1], h("01"));
  EXPECT_EQ(got[2], h("03"));
  EXPECT_EQ(got[254], h("ff"));
  EXPECT_EQ(got[255], h("0100"));
  EXPECT_EQ(got[299], h("012c"));
  std::set<Bytes> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), got.size());
  // ID1 0x02 is free now for another client: taken by the next POST with another ID1.
  EXPECT_EQ(post(h("77")), h("02"));
  ASSERT_TRUE(store.erase(ContextKey{h("05"), std::nullopt}));
  EXPECT_EQ(post(h("77")), h("05")) << "a freed ID is the shortest free one again";
  EXPECT_EQ(post(h("77")), h("012d"));
}

// The KDC side of a restart test: store, sequence store, AuthzInfo and gate, made
// again from the same files.
struct Kdc {
  Kdc(crypto::Provider& p, Random& rnd, const TempDir& dir, const cose::CoseKey& key)
      : seq(dir.file("seq")), gate(p) {
    std::filesystem::create_directories(dir.file("seq"));
    auto s = SqliteTokenStore::open(dir.file("tokens.sqlite"));
    EXPECT_TRUE(s);
    store = std::move(*s);
    AuthzInfoConfig cfg;
    cfg.audience = "kdc";
    cfg.as_keys.keys.push_back(key);
    cfg.groups = {{"g1", GroupConfig{}}};
    authz = std::make_unique<AuthzInfo>(p, rnd, *store, cfg);
    gate.serve_kdc(*authz);
    gate.set_sequence_store(&seq);
    gate.set_kdc_resource_handler(
        [](const ContextKey&, const coap::Message& req, coap::Message& resp, int64_t) {
          resp.code = req.uri_path().find("ace-group/g1") != std::string::npos ? code::kContent : code::kNotFound;
          resp.payload = h("01");
        });
  }
  std::unique_ptr<SqliteTokenStore> store;
  oscore::FileSequenceStore seq;
  std::unique_ptr<AuthzInfo> authz;
  AceCoapGate gate;
};

TEST(KdcRestart, ClientKeepsItsContextAndTheKdcNeverReusesANonce) {
  TempDir dir;
  auto p = crypto::make_openssl_provider();
  FakeRandom as_rnd{5};
  FakeRandom kdc_rnd{6};
  cose::CoseKey key = cose::CoseKey::symmetric(h("101112131415161718191a1b1c1d1e1f"), {}, cp::alg::kAES_CCM_16_64_128);
  AsPolicy pol;
  ClientPolicy c;
  c.id = "client1";
  c.groups = {{"g1", kRoleRequester}};
  pol.clients = {c};
  AudiencePolicy a;
  a.name = "kdc";
  a.shared_key = key;
  pol.audiences = {a};
  AuthorizationServer as(*p, as_rnd, pol);
  TokenRequest tr;
  tr.audience = "kdc";
  tr.scope = ScopeParam{false, encode_scope(Scope{{ScopeEntry{"g1", kRoleRequester}}})};
  auto tresp = TokenResponse::decode(as.handle_token("client1", tr.encode(), kNow).payload);
  ASSERT_TRUE(tresp && tresp->cnf && tresp->cnf->osc);

  // Token POST to the first KDC instance.
  std::unique_ptr<oscore::Context> client;
  ContextKey key_at_kdc;
  uint64_t kdc_seq_used = 0;
  auto get_g1 = [&](AceCoapGate& gate, uint16_t mid) -> uint8_t {
    coap::Message req(coap::Type::kCon, code::kGet, mid);
    req.token = h("77");
    req.set_uri_path("/ace-group/g1");
    for (int attempt = 0; attempt < 2; ++attempt) {
      uint8_t out[1024];
      oscore::Exchange ex;
      auto n = client->protect_request(req, out, ex);
      EXPECT_TRUE(n);
      Bytes wire = gate.handle(ByteView(out, *n), kNow + 1);
      uint8_t dec[1024];
      auto d = client->unprotect_response(wire, ex, dec);
      if (!d) return 0;
      auto m = coap::Message::parse(ByteView(dec, *d));
      if (!m) return 0;
      // A restored KDC context asks for an Echo round first (RFC 8613 B.1.2): resend once.
      const auto* echo = m->find(cp::coap::option::kEcho);
      if (m->code != code::kUnauthorized || !echo || attempt) return m->code;
      req.set_option(cp::coap::option::kEcho, echo->value);
    }
    return 0;
  };
  {
    Kdc kdc(*p, kdc_rnd, dir, key);
    ClientTokenPost sent = prepare_token_post(tresp->access_token, h("42"), as_rnd);
    coap::Message post(coap::Type::kCon, code::kPost, 1);
    post.set_uri_path("/authz-info");
    post.payload = sent.payload;
    auto wire = kdc.gate.handle(*post.encode(), kNow);
    auto resp = coap::Message::parse(wire);
    ASSERT_TRUE(resp);
    ASSERT_EQ(resp->code, code::kCreated);
    AuthzInfoResponse air;
    auto params = finish_token_post(*tresp->cnf->osc, sent, resp->payload, &air);
    ASSERT_TRUE(params);
    key_at_kdc = ContextKey{params->sender_id, params->id_context};
    oscore::ContextConfig cc;
    cc.params = *params;
    auto ctx = oscore::Context::create(*p, std::move(cc));
    ASSERT_TRUE(ctx);
    client = std::move(*ctx);
    EXPECT_EQ(get_g1(kdc.gate, 2), code::kContent);
    // The KDC sends with its own Partial IVs (as for notifications): three numbers used.
    oscore::Context* kctx = kdc.gate.kdc_context(key_at_kdc);
    ASSERT_TRUE(kctx);
    for (int i = 0; i < 3; ++i) {
      coap::Message m(coap::Type::kCon, code::kPost, 0);
      m.set_uri_path("/ctl");
      uint8_t out[256];
      oscore::Exchange ex;
      ASSERT_TRUE(kctx->protect_request(m, out, ex));
    }
    kdc_seq_used = kctx->next_sequence_number();
    EXPECT_GE(kdc_seq_used, 3u);
  }
  // Restart: a new KDC over the same files.
  Kdc kdc(*p, kdc_rnd, dir, key);
  EXPECT_EQ(kdc.gate.num_kdc_contexts(), 0u);
  EXPECT_EQ(kdc.gate.restore_kdc_contexts(*kdc.store), 1u);
  EXPECT_EQ(kdc.gate.restore_kdc_contexts(*kdc.store), 0u) << "already there";
  oscore::Context* kctx = kdc.gate.kdc_context(key_at_kdc);
  ASSERT_TRUE(kctx);
  EXPECT_GE(kctx->next_sequence_number(), kdc_seq_used) << "no Partial IV of the KDC is used twice";
  EXPECT_EQ(get_g1(kdc.gate, 3), code::kContent) << "the client talks on without re-posting its token";
  auto scope = kdc.authz->scope_of(key_at_kdc, kNow + 1);
  ASSERT_TRUE(scope);
  EXPECT_EQ(scope->entries.at(0).group, "g1");
  // Expiry still works on the restored state: the context goes with its token.
  auto gone = kdc.gate.purge(kNow + 3601);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(kdc.gate.kdc_context(key_at_kdc));
  EXPECT_EQ(kdc.store->size(), 0u);
  Kdc again(*p, kdc_rnd, dir, key);
  EXPECT_EQ(again.gate.restore_kdc_contexts(*again.store), 0u) << "the purge was persisted";
}

}  // namespace
}  // namespace acekdc::ace
