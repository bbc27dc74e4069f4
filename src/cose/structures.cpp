#include "cose/structures.h"

#include "cbor/cbor.h"
#include "core/writer.h"

namespace acekdc::cose {

void append_sig_structure1(Bytes& out, ByteView body_protected, ByteView external_aad,
                           ByteView payload) {
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(4).put_tstr(kContextSignature1).put_bstr(body_protected).put_bstr(external_aad)
      .put_bstr(payload);
}

void append_sig_structure(Bytes& out, ByteView body_protected, ByteView sign_protected,
                          ByteView external_aad, ByteView payload) {
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(5).put_tstr(kContextSignature).put_bstr(body_protected).put_bstr(sign_protected)
      .put_bstr(external_aad).put_bstr(payload);
}

void append_enc_structure(Bytes& out, std::string_view context, ByteView body_protected,
                          ByteView external_aad) {
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(3).put_tstr(context).put_bstr(body_protected).put_bstr(external_aad);
}

void append_mac_structure(Bytes& out, std::string_view context, ByteView body_protected,
                          ByteView external_aad, ByteView payload) {
  Writer w(out);
  cbor::Encoder e(w);
  e.put_array(4).put_tstr(context).put_bstr(body_protected).put_bstr(external_aad)
      .put_bstr(payload);
}

}  // namespace acekdc::cose
