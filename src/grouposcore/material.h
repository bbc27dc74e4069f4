// Group_OSCORE_Input_Material as the KDC hands it out (profile.md REQ7/REQ8, the
// 'key' of a Joining / Key Distribution Response; encoder: groupcomm/params.h).
//
//   { ms 2: bstr, hkdf 3: int, alg 4: int, salt 5: bstr, contextId 6: bstr (Group ID),
//     group_SenderId 7: bstr (the member's own Sender ID, optional),
//     sign_alg 10: int, sign_params 11: [[int...], [int...]] }
//
// What the -05 material does NOT carry (draft-ietf-core-oscore-groupcomm-23 names):
//   - Group Encryption Algorithm and AEAD Algorithm are one field, 'alg': we use it as both.
//   - Pairwise Key Agreement Algorithm: absent (pairwise mode is not implemented): null.
//   - the Group Manager's authentication credential (gm_cred): absent: CBOR null in
//     the external_aad, as -23 prescribes when no GM credential exists; both sides do so.
//   - authentication credentials are COSE_Keys (pub_key_enc 1), not CCS: see
//     auth_credential() in group_context.h.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "cose/key.h"
#include "grouposcore/error.h"

namespace acekdc::grouposcore {

// InputMaterial: the decoded Group_OSCORE_Input_Material. master_secret is secret
// (zeroed on destruction, never logged).
struct InputMaterial {
  Bytes master_secret;
  int hkdf_alg = cp::alg::kHMAC256_256;           // HKDF SHA-256 (5; -10 accepted)
  int aead_alg = cp::alg::kAES_CCM_16_64_128;     // Group Encryption Algorithm = AEAD Algorithm
  Bytes master_salt;
  Bytes group_id;                                 // contextId: the Group ID (OSCORE ID Context)
  std::optional<Bytes> sender_id;                 // group_SenderId: this member's Sender ID
  int sign_alg = cp::alg::kEdDSA;
  std::vector<std::vector<int>> sign_params;      // kept as received (not used in group mode)
  std::optional<uint64_t> num;                    // the version 'num' of the response, if known

  InputMaterial() = default;
  InputMaterial(const InputMaterial&) = default;
  InputMaterial& operator=(const InputMaterial&) = default;
  InputMaterial(InputMaterial&&) = default;
  InputMaterial& operator=(InputMaterial&&) = default;
  ~InputMaterial() { secure_zero(master_secret); }
};

// parse_input_material decodes the Group_OSCORE_Input_Material map (the CBOR of
// 'key'). Unknown labels are ignored; ms, contextId and sign_alg are required.
// kMalformedMaterial on anything else that does not decode.
Expected<InputMaterial, Error> parse_input_material(ByteView key_cbor);

// parse_key_distribution decodes a Joining Response / Key Distribution Response
// payload: checks gkty 7 == 1 (Group_OSCORE_Input_Material), decodes 'key' 8 and
// copies 'num' 9. kMalformedMaterial otherwise.
Expected<InputMaterial, Error> parse_key_distribution(ByteView payload);

// parse_pub_keys returns the members' public keys (kid = Sender ID) from the pub_keys
// 13 of a Joining / Key Distribution / pub-key response payload: a bstr wrapping a
// COSE_KeySet. Keys that do not parse are skipped; no pub_keys (or the empty byte
// string a pub-key response with no members is) gives an empty list.
// kMalformedMaterial if the payload or the key set does not decode.
Expected<std::vector<cose::CoseKey>, Error> parse_pub_keys(ByteView payload);

}  // namespace acekdc::grouposcore
