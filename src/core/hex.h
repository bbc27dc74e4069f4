// Hex encoding and decoding.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"

namespace acekdc {

// to_hex returns lowercase hex of b.
std::string to_hex(ByteView b);
// from_hex decodes hex (either case; whitespace and ':' separators ignored).
// Returns nullopt on an odd digit count or a non-hex character.
std::optional<Bytes> from_hex(std::string_view s);

}  // namespace acekdc
