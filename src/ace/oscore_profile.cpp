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

MaterialView MaterialView::of(const OscoreInputMaterial& m) {
  MaterialView v;
  if (m.id) v.id = ByteView(*m.id);
  v.version = m.version;
  if (m.ms) v.ms = ByteView(*m.ms);
  if (m.hkdf) {
    if (const auto* h = std::get_if<int64_t>(&*m.hkdf)) v.hkdf = *h;
    else v.hkdf_text = true;
  }
  if (m.alg) {
    if (const auto* a = std::get_if<int64_t>(&*m.alg)) v.alg = *a;
    else v.alg_text = true;
  }
  if (m.salt) v.salt = ByteView(*m.salt);
  if (m.context_id) v.context_id = ByteView(*m.context_id);
  return v;
}

Expected<oscore::ContextParams, ParamError> derive_context_params(const OscoreInputMaterial& m, ByteView n1,
                                                                  ByteView n2, ByteView id1, ByteView id2,
                                                                  Side side) {
  return derive_context_params(MaterialView::of(m), n1, n2, id1, id2, side);
}

Expected<oscore::ContextParams, ParamError> derive_context_params(const MaterialView& m, ByteView n1, ByteView n2,
                                                                  ByteView id1, ByteView id2, Side side) {
  if (!m.ms || m.ms->empty()) return unexpected(ParamError{Error::kMissingParameter, cp::osc::kMs});
  if (m.version && *m.version != cp::oscore::kVersion)
    return unexpected(ParamError{Error::kBadValue, cp::osc::kVersion});
  if (n1.empty()) return unexpected(ParamError{Error::kMissingParameter, cp::ace::kNonce1});
  if (n2.empty()) return unexpected(ParamError{Error::kMissingParameter, cp::ace::kNonce2});
  if (equal(id1, id2)) return unexpected(ParamError{Error::kBadValue, cp::ace::kAceServerRecipientId});
  oscore::ContextParams p;
  if (m.alg_text) return unexpected(ParamError{Error::kBadValue, cp::osc::kAlg});
  if (m.alg) p.aead_alg = static_cast<int>(*m.alg);
  if (m.hkdf_text) return unexpected(ParamError{Error::kBadValue, cp::osc::kHkdf});
  if (m.hkdf) p.hkdf_alg = static_cast<int>(*m.hkdf);
  p.master_secret.assign(m.ms->begin(), m.ms->end());
  const ByteView salt = m.salt ? *m.salt : ByteView();
  p.master_salt.reserve(salt.size() + n1.size() + n2.size() + 6);
  Writer w(p.master_salt);
  cbor::Encoder e(w);
  e.put_bstr(salt).put_bstr(n1).put_bstr(n2);
  if (m.context_id) p.id_context.emplace(m.context_id->begin(), m.context_id->end());
  const ByteView sender = side == Side::kClient ? id2 : id1;
  const ByteView recipient = side == Side::kClient ? id1 : id2;
  p.sender_id.assign(sender.begin(), sender.end());
  p.recipient_id.assign(recipient.begin(), recipient.end());
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
