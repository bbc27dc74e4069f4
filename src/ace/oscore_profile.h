// The OSCORE security context setup of the ACE OSCORE profile (RFC 9203 §4.3), used
// by both sides of a token POST:
//
//   Master Secret = ms of the OSCORE_Input_Material
//   Master Salt   = bstr(salt) | bstr(N1) | bstr(N2)   (each CBOR-encoded as a byte
//                   string, then concatenated; an absent salt counts as the empty
//                   byte string, i.e. 0x40)
//   ID Context    = contextId if present, else absent
//   AEAD / HKDF   = alg / hkdf if present, else the RFC 8613 defaults
//   client: Sender ID = ace_server_recipientid (ID2), Recipient ID = ace_client_recipientid (ID1)
//   RS:     Sender ID = ID1,                          Recipient ID = ID2
#pragma once

#include <optional>

#include "ace/params.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "core/random.h"
#include "oscore/derivation.h"

namespace acekdc::ace {

// build_master_salt returns bstr(salt) | bstr(n1) | bstr(n2) (RFC 9203 §4.3).
Bytes build_master_salt(ByteView salt, ByteView n1, ByteView n2);

enum class Side : uint8_t { kClient, kServer };

// MaterialView: an OSCORE_Input_Material as views into bytes someone else owns (a
// token's plaintext, or an OscoreInputMaterial: MaterialView::of); hkdf / alg given as
// text are flagged, not kept (derive_context_params refuses them).
struct MaterialView {
  std::optional<ByteView> id;
  std::optional<uint64_t> version;
  std::optional<ByteView> ms;
  std::optional<int64_t> hkdf;
  bool hkdf_text = false;
  std::optional<int64_t> alg;
  bool alg_text = false;
  std::optional<ByteView> salt;
  std::optional<ByteView> context_id;
  static MaterialView of(const OscoreInputMaterial& m);
};

// derive_context_params builds the OSCORE ContextParams of `side` from the material
// and the exchanged nonces and identifiers (id1 = ace_client_recipientid, id2 =
// ace_server_recipientid). Errors: kMissingParameter (no ms: key osc::kMs; empty
// nonce), kBadValue (version other than 1, an alg / hkdf given as text, id1 == id2; an
// empty ID is allowed, RFC 8613 §3.3).
Expected<oscore::ContextParams, ParamError> derive_context_params(const OscoreInputMaterial& material,
                                                                  ByteView n1, ByteView n2, ByteView id1,
                                                                  ByteView id2, Side side);
Expected<oscore::ContextParams, ParamError> derive_context_params(const MaterialView& material, ByteView n1,
                                                                  ByteView n2, ByteView id1, ByteView id2, Side side);

// ClientTokenPost: what a client sent in its token POST (kept until the answer).
struct ClientTokenPost {
  Bytes payload;       // the ace+cbor request
  Bytes nonce1;        // N1 (8 random bytes, RFC 9203 §4.1)
  Bytes recipient_id;  // ID1
};
// prepare_token_post builds the unprotected token POST with a fresh N1 from `random`
// and the client's Recipient ID `id1` (which the client must keep unique among its
// own); ask_sign_info adds sign_info and pub_key_enc as null (seed §3.3).
ClientTokenPost prepare_token_post(ByteView access_token, ByteView id1, Random& random,
                                   bool ask_sign_info = false);
// finish_token_post parses the KDC's 2.01 payload and derives the client's context
// parameters (RFC 9203 §4.3). Errors: the payload's decode errors, kMissingParameter
// without nonce2 / ace_server_recipientid, kBadValue when ID2 equals ID1 (the client
// MUST stop), and derive_context_params() ones. `out_response` (optional) receives
// the parsed payload (rsnonce, sign_info, pub_key_enc).
Expected<oscore::ContextParams, ParamError> finish_token_post(const OscoreInputMaterial& material,
                                                              const ClientTokenPost& sent,
                                                              ByteView response_payload,
                                                              AuthzInfoResponse* out_response = nullptr);

}  // namespace acekdc::ace
