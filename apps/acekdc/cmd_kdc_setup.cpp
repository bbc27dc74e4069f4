// The shared KDC set-up pieces (kdc_setup.h). Named cmd_* so that the acekdc
// target's source glob picks it up; it registers no subcommand.
#include "acekdc/kdc_setup.h"

#include <vector>

#include "cbor/value.h"

namespace acekdc::app {

ace::GroupConfig ace_group_config(const kdc::GroupConfig& g) {
  ace::GroupConfig gc;
  gc.sign_info.sign_alg = int64_t{g.sign_info.sign_alg};
  std::vector<cbor::Value> sp, skp;
  for (int v : g.sign_info.sign_params) sp.push_back(cbor::Value::integer(v));
  for (int v : g.sign_info.sign_key_params) skp.push_back(cbor::Value::integer(v));
  gc.sign_info.sign_parameters = cbor::Value::array(std::move(sp));
  gc.sign_info.sign_key_parameters = cbor::Value::array(std::move(skp));
  gc.pub_key_enc = g.pub_key_enc;
  return gc;
}

kdc::GroupKeyMaterial first_group_key(Random& random, int64_t now, const kdc::GroupConfig& g) {
  kdc::GroupKeyMaterial k;
  k.num = 0;
  k.master_secret = random.bytes(16);
  k.master_salt = random.bytes(8);
  k.group_id = random.bytes(4);
  k.exp = now + static_cast<int64_t>(g.key_lifetime_s);
  k.established_at = now;
  return k;
}

}  // namespace acekdc::app
