// Additional authenticated data (RFC 8613 §5.4).
//
//   external_aad = bstr .cbor [oscore_version: 1, algorithms: [alg_aead],
//                              request_kid: bstr, request_piv: bstr, options: bstr]
//   AAD          = Enc_structure ["Encrypt0", h'', external_aad]
//
// build_aad writes the AAD into a caller buffer without allocating.
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/expected.h"
#include "oscore/error.h"

namespace acekdc::oscore {

// kMaxAadLen is enough for any AAD with up to 64 bytes of Class I options
// (kid <= 10 bytes, Partial IV <= 5 bytes).
inline constexpr size_t kMaxAadLen = 128;

// aad_len returns the exact size build_aad will write.
size_t aad_len(int alg_aead, ByteView request_kid, ByteView request_piv, ByteView class_i_options);

// build_aad writes the Enc_structure for `alg_aead`, the request's kid and Partial
// IV, and the serialized Class I options (empty: none are defined by RFC 8613)
// into out and returns its length; kBufferTooSmall if it does not fit.
Expected<size_t, Error> build_aad(int alg_aead, ByteView request_kid, ByteView request_piv,
                                  ByteView class_i_options, MutableByteView out);

// build_aad_array writes only the aad_array (the external_aad content).
Expected<size_t, Error> build_aad_array(int alg_aead, ByteView request_kid, ByteView request_piv,
                                        ByteView class_i_options, MutableByteView out);

}  // namespace acekdc::oscore
