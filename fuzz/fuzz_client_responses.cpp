// fuzz_client_responses: the client's decoders of the KDC's answers and pushes
// (src/client/responses.h) on arbitrary bytes; whatever decodes as a Key
// Distribution Response must re-encode with the KDC's encoder and decode to the
// same keying material (round trip of the fields the client keeps).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "client/responses.h"
#include "groupcomm/params.h"
#include "kdc/model.h"

using namespace acekdc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  (void)client::decode_pub_keys(in);
  (void)client::decode_policies(in);
  (void)client::decode_num(in);
  (void)client::decode_sender_id_response(in);
  (void)client::find_rsnonce(in);
  auto k = client::decode_key_distribution(in);
  if (!k) {
    (void)k.error().describe();
    return 0;
  }
  kdc::GroupConfig cfg;
  cfg.name = "g";
  kdc::GroupKeyMaterial key;
  key.num = k->num;
  key.group_id = k->group_id;
  key.master_secret = k->master_secret;
  key.master_salt = k->master_salt;
  groupcomm::KeyDistribution kd;
  kd.config = &cfg;
  kd.key = &key;
  if (k->sender_id) kd.sender_id = ByteView(*k->sender_id);
  auto again = groupcomm::encode_key_distribution(kd);
  if (!again) abort();
  auto k2 = client::decode_key_distribution(*again);
  if (!k2 || k2->num != k->num || k2->group_id != k->group_id || k2->master_secret != k->master_secret ||
      k2->master_salt != k->master_salt || k2->sender_id != k->sender_id)
    abort();
  return 0;
}
