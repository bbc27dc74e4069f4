// kdc_setup: pieces of the KDC's set-up shared by `acekdc serve` and the benches that
// build a KDC as serve does (bench join, bench rekey-e2e).
#pragma once

#include <cstdint>

#include "ace/authz_info.h"
#include "core/random.h"
#include "kdc/config.h"
#include "kdc/model.h"

namespace acekdc::app {

// ace_group_config: what /authz-info needs of a configured group (sign_info and
// pub_key_enc for the token POST's answer).
ace::GroupConfig ace_group_config(const kdc::GroupConfig& g);

// first_group_key: a group's keying material version 0, established at `now`
// (fresh Master Secret, Master Salt and Group ID; exp after the key lifetime).
kdc::GroupKeyMaterial first_group_key(Random& random, int64_t now, const kdc::GroupConfig& g);

}  // namespace acekdc::app
