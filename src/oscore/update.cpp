#include "oscore/update.h"

#include <array>
#include <cstring>

#include "core/writer.h"

namespace acekdc::oscore {

Expected<size_t, Error> build_hkdf_label(uint16_t length, std::string_view label, ByteView context,
                                         MutableByteView out) {
  const size_t prefix_len = std::strlen(cp::oscore::kHkdfLabelPrefix);
  const size_t full_len = prefix_len + label.size();
  if (full_len < 7 || full_len > 255 || context.size() > 255) return unexpected(Error::kInvalidArgument);
  Writer w(out);
  w.put_u16(length);
  w.put_u8(static_cast<uint8_t>(full_len));
  w.put_bytes(as_bytes(cp::oscore::kHkdfLabelPrefix));
  w.put_bytes(as_bytes(label));
  w.put_u8(static_cast<uint8_t>(context.size()));
  w.put_bytes(context);
  if (!w.ok()) return unexpected(Error::kBufferTooSmall);
  return w.size();
}

Expected<void, Error> hkdf_expand_label(crypto::Provider& provider, crypto::Hash hash, ByteView secret,
                                        std::string_view label, ByteView context, MutableByteView out) {
  if (out.size() > 0xffff) return unexpected(Error::kInvalidArgument);
  std::array<uint8_t, 2 + 1 + 255 + 1 + 255> info;
  auto n = build_hkdf_label(static_cast<uint16_t>(out.size()), label, context, info);
  if (!n) return unexpected(n.error());
  if (!provider.hkdf_expand(hash, secret, ByteView(info.data(), *n), out)) {
    return unexpected(Error::kCrypto);
  }
  return {};
}

Expected<ContextParams, Error> update_params(crypto::Provider& provider, const ContextParams& in,
                                             ByteView nonce, std::string_view label) {
  if (nonce.empty() || nonce.size() > 255 || in.master_secret.empty()) {
    return unexpected(Error::kInvalidArgument);
  }
  auto hash = hkdf_hash(in.hkdf_alg);
  if (!hash) return unexpected(hash.error());
  ContextParams out = in;
  auto r = hkdf_expand_label(provider, *hash, in.master_secret, label, nonce, out.master_secret);
  if (!r) return unexpected(r.error());
  out.master_salt.assign(nonce.begin(), nonce.end());
  return out;
}

}  // namespace acekdc::oscore
