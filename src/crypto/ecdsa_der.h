// Conversion between the COSE form of an ECDSA signature (r||s, each integer
// big-endian and left-padded to the group size, RFC 9053 §2.1) and the DER form
// (SEQUENCE { INTEGER r, INTEGER s }, SEC 1 / RFC 3279) that backends speak.
// Pure functions over caller buffers: no allocation, no backend.
#pragma once

#include "core/bytes.h"
#include "core/expected.h"
#include "crypto/provider.h"

namespace acekdc::crypto {

// kMaxEcdsaDerLen is the largest DER signature for a group of up to 66-byte
// scalars (P-521): 2 * (2 + 1 + 66) + 3.
inline constexpr size_t kMaxEcdsaDerLen = 2 * (3 + 66) + 3;

// ecdsa_raw_to_der encodes raw r||s (even length, each half one integer) as DER
// into out and returns the DER length. kInvalidArgument if raw has odd or zero
// length, a half is longer than 66 bytes, or out is too small.
Expected<size_t, Error> ecdsa_raw_to_der(ByteView raw, MutableByteView out);

// ecdsa_der_to_raw decodes a strict DER ECDSA signature into out (2 * scalar_len
// bytes: r then s, each left-padded to scalar_len). kBadSignature if der is not
// exactly one well-formed, minimally encoded SEQUENCE of two non-negative
// INTEGERs each fitting in scalar_len bytes; kInvalidArgument if out is smaller
// than 2 * scalar_len.
Expected<void, Error> ecdsa_der_to_raw(ByteView der, size_t scalar_len, MutableByteView out);

}  // namespace acekdc::crypto
