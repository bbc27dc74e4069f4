// The byte strings COSE signs, MACs, or authenticates as AEAD additional data
// (RFC 9052 §4.4, §5.3, §6.3). Each function appends the CBOR encoding to `out`.
#pragma once

#include <string_view>

#include "core/bytes.h"

namespace acekdc::cose {

// Sig_structure for COSE_Sign1: ["Signature1", body_protected, external_aad, payload].
void append_sig_structure1(Bytes& out, ByteView body_protected, ByteView external_aad,
                           ByteView payload);
// Sig_structure for one signer of COSE_Sign:
// ["Signature", body_protected, sign_protected, external_aad, payload].
void append_sig_structure(Bytes& out, ByteView body_protected, ByteView sign_protected,
                          ByteView external_aad, ByteView payload);
// Enc_structure [context, protected, external_aad]; context is "Encrypt0" or "Encrypt"
// (or a recipient context).
void append_enc_structure(Bytes& out, std::string_view context, ByteView body_protected,
                          ByteView external_aad);
// MAC_structure [context, protected, external_aad, payload]; context "MAC0" or "MAC".
void append_mac_structure(Bytes& out, std::string_view context, ByteView body_protected,
                          ByteView external_aad, ByteView payload);

inline constexpr std::string_view kContextSignature1 = "Signature1";
inline constexpr std::string_view kContextSignature = "Signature";
inline constexpr std::string_view kContextEncrypt0 = "Encrypt0";
inline constexpr std::string_view kContextEncrypt = "Encrypt";
inline constexpr std::string_view kContextMac0 = "MAC0";
inline constexpr std::string_view kContextMac = "MAC";

}  // namespace acekdc::cose
