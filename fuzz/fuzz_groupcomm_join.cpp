// fuzz_groupcomm_join: the Joining Request parser (with a decode-encode round
// trip) and the whole GroupManager handler for a join, a pub-key FETCH, a leave
// and a public key update carrying the input as payload, against a fresh
// MemoryStore holding one group and one member, for a fixed requester.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/codepoints.h"
#include "crypto/openssl/openssl_provider.h"
#include "groupcomm/manager.h"
#include "groupcomm/params.h"
#include "kdc/memory_store.h"

using namespace acekdc;

namespace {

crypto::Provider& provider() {
  static std::unique_ptr<crypto::Provider> p = crypto::make_openssl_provider();
  return *p;
}

void check_round_trip(ByteView data) {
  auto r = groupcomm::parse_join_request(data);
  if (!r) {
    (void)r.error().describe();
    return;
  }
  Bytes once = groupcomm::encode_join_request(*r);
  auto again = groupcomm::parse_join_request(once);
  if (!again) abort();
  if (groupcomm::encode_join_request(*again) != once) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  check_round_trip(in);
  (void)groupcomm::parse_pub_key_fetch(in);
  (void)groupcomm::parse_pub_key_update(in);
  (void)groupcomm::parse_leave_request(in);

  kdc::MemoryStore store;
  kdc::GroupConfig c;
  c.name = "g1";
  c.departed_key_retention_s = 60;
  kdc::GroupKeyMaterial k;
  k.master_secret = Bytes(16, 0xaa);
  k.master_salt = Bytes(8, 0xbb);
  k.group_id = {0xfe, 0x01};
  k.exp = 1700086400;
  if (!store.create_group(c, k)) abort();
  kdc::Member bob;
  bob.node_name = "bob";
  bob.sender_id = {0x01};
  bob.roles = 1u << cp::role::kRequester;
  bob.token_id = {0x42};
  if (!store.add_member("g1", bob)) abort();

  FakeRandom rng(1);
  groupcomm::GroupManager mgr(store, provider(), rng);
  groupcomm::Requester who;
  who.client_id = "bob";
  who.token_id = {0x42};
  who.scope.entries.push_back(ace::ScopeEntry{"g1", ace::kRoleRequester | ace::kRoleResponder});
  who.rsnonce = Bytes(8, 0x11);

  groupcomm::Request req;
  req.content_format = cp::cf::kAceGroupcommCbor;
  req.payload = in;
  const int64_t now = 1700000000;

  req.method = cp::coap::code::kPost;
  req.path = {"ace-group", "g1"};
  auto r = mgr.handle(&who, req, now);
  // bob is already a member: a join must never succeed here.
  if (r.code == cp::coap::code::kCreated) abort();

  req.method = cp::coap::code::kFetch;
  req.path = {"ace-group", "g1", "pub-key"};
  (void)mgr.handle(&who, req, now);

  req.method = cp::coap::code::kPost;
  req.path = {"ace-group", "g1", "nodes", "bob", "pub-key"};
  (void)mgr.handle(&who, req, now);

  req.method = cp::coap::code::kDelete;
  req.path = {"ace-group", "g1", "nodes", "bob"};
  (void)mgr.handle(&who, req, now);

  // The same join by a newcomer with the input as payload; eve may join as a
  // monitor (no key needed), so the success path (Sender ID, rekey, response) runs.
  groupcomm::Requester eve = who;
  eve.client_id = "eve";
  eve.token_id = {0x43};
  eve.scope.entries[0].roles = ace::kAllRoles;
  req.method = cp::coap::code::kPost;
  req.path = {"ace-group", "g1"};
  r = mgr.handle(&eve, req, now);
  if (r.code == cp::coap::code::kCreated) {
    if (r.location_path.size() != 4) abort();
    auto g = store.load_group("g1");
    if (!g || !g->find_member(r.location_path[3])) abort();
  }
  return 0;
}
