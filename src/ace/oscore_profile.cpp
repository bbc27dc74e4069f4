#include "ace/oscore_profile.h"

#include "cbor/cbor.h"
#include "core/codepoints.h"
#include "core/writer.h"

namespace acekdc::ace {

Bytes build_master_salt(ByteView salt, ByteView n1, ByteView n2) {
  Bytes out;
  out.reserve(salt.size() + n1.size() + n2.size() + 6);
  Writer w(out);
  cbor::Encoder e(w);
  e.put_bstr(salt).put_bstr(n1).put_bstr(n2);
  return out;
}

Expected<oscore::ContextParams, ParamError> derive_context_params(const OscoreInputMaterial& m,
                                                                  ByteView n1, ByteView n2, ByteView id1,
                                                                  ByteView id2, Side side) {
  if (!m.ms || m.ms->empty()) return unexpected(ParamError{Error::kMissingParameter, cp::osc::kMs});
  if (m.version && *m.version != cp::oscore::kVersion)
    return unexpected(ParamError{Error::kBadValue, cp::osc::kVersion});
  if (n1.empty()) return unexpected(ParamError{Error::kMissingParameter, cp::ace::kNonce1});
  if (n2.empty()) return unexpected(ParamError{Error::kMissingParameter, cp::ace::kNonce2});
  if (equal(id1, id2)) return unexpected(ParamError{Error::kBadValue, cp::ace::kAceServerRecipientId});
  oscore::ContextParams p;
  if (m.alg) {
    const auto* a = std::get_if<int64_t>(&*m.alg);
    if (!a) return unexpected(ParamError{Error::kBadValue, cp::osc::kAlg});
    p.aead_alg = static_cast<int>(*a);
  }
  if (m.hkdf) {
    const auto* h = std::get_if<int64_t>(&*m.hkdf);
    if (!h) return unexpected(ParamError{Error::kBadValue, cp::osc::kHkdf});
    p.hkdf_alg = static_cast<int>(*h);
  }
  p.master_secret = *m.ms;
  static const Bytes kEmpty;
  p.master_salt = build_master_salt(m.salt ? ByteView(*m.salt) : ByteView(kEmpty), n1, n2);
  if (m.context_id) p.id_context = *m.context_id;
  if (side == Side::kClient) {
    p.sender_id = to_bytes(id2);
    p.recipient_id = to_bytes(id1);
  } else {
    p.sender_id = to_bytes(id1);
    p.recipient_id = to_bytes(id2);
  }
  return p;
}

ClientTokenPost prepare_token_post(ByteView access_token, ByteView id1, Random& random, bool ask_sign_info) {
  ClientTokenPost p;
  p.nonce1 = random.bytes(8);
  p.recipient_id = to_bytes(id1);
  AuthzInfoRequest q;
  q.access_token = to_bytes(access_token);
  q.nonce1 = p.nonce1;
  q.client_recipient_id = p.recipient_id;
  q.sign_info_requested = ask_sign_info;
  q.pub_key_enc_requested = ask_sign_info;
  p.payload = q.encode();
  return p;
}

Expected<oscore::ContextParams, ParamError> finish_token_post(const OscoreInputMaterial& material,
                                                              const ClientTokenPost& sent,
                                                              ByteView response_payload,
                                                              AuthzInfoResponse* out_response) {
  auto r = AuthzInfoResponse::decode(response_payload);
  if (!r) return unexpected(r.error());
  if (!r->nonce2) return unexpected(ParamError{Error::kMissingParameter, cp::ace::kNonce2});
  if (!r->server_recipient_id)
    return unexpected(ParamError{Error::kMissingParameter, cp::ace::kAceServerRecipientId});
  auto params = derive_context_params(material, sent.nonce1, *r->nonce2, sent.recipient_id,
                                      *r->server_recipient_id, Side::kClient);
  if (!params) return unexpected(params.error());
  if (out_response) *out_response = std::move(*r);
  return params;
}

}  // namespace acekdc::ace
