// updateCtx (draft-hoeglund-core-oscore-key-limits-01 §3.2, Figure 4), the
// branch for contexts not established with EDHOC:
//
//   MSECRET_NEW = HKDF-Expand-Label(CTX_IN.MasterSecret, Label, N, len(CTX_IN.MasterSecret))
//               = HKDF-Expand(CTX_IN.MasterSecret, HkdfLabel, len(CTX_IN.MasterSecret))
//   MSALT_NEW   = N
//   HkdfLabel   = uint16 length || opaque label<7..255> = "oscore " + Label
//                               || opaque context<0..255> = N      (TLS 1.3 §7.1 style)
//
// and the RFC 8613 §3.2 derivation with every other parameter (AEAD and HKDF
// algorithms, Sender ID, Recipient ID, ID Context) unchanged. HKDF-Expand uses
// the context's HKDF hash. Label defaults to cp::oscore::kKeyUpdateLabel.
#pragma once

#include <string_view>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "crypto/provider.h"
#include "oscore/derivation.h"
#include "oscore/error.h"

namespace acekdc::oscore {

// build_hkdf_label writes the HkdfLabel structure into out and returns its length.
// kInvalidArgument if "oscore " + label is not 7..255 bytes, context exceeds 255
// bytes or length exceeds 65535; kBufferTooSmall if out is too small.
Expected<size_t, Error> build_hkdf_label(uint16_t length, std::string_view label, ByteView context,
                                         MutableByteView out);

// hkdf_expand_label computes HKDF-Expand(secret, HkdfLabel(out.size(), label, context), out.size()).
Expected<void, Error> hkdf_expand_label(crypto::Provider& provider, crypto::Hash hash, ByteView secret,
                                        std::string_view label, ByteView context, MutableByteView out);

// update_params returns CTX_IN's parameters with Master Secret and Master Salt
// replaced per Figure 4 (N = `nonce`, 1..255 bytes). Derive CTX_OUT from the
// result with derive_keys().
Expected<ContextParams, Error> update_params(crypto::Provider& provider, const ContextParams& in,
                                             ByteView nonce,
                                             std::string_view label = cp::oscore::kKeyUpdateLabel);

}  // namespace acekdc::oscore
