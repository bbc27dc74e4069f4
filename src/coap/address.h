// Address: a transport peer (IPv4 or IPv6 address + UDP port) as a plain value,
// so the sans-I/O core can key state by peer without touching sockets.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace acekdc::coap {

struct Address {
  uint8_t family = 0;              // 4 or 6; 0 = unset
  std::array<uint8_t, 16> ip{};    // IPv4 uses the first 4 bytes
  uint16_t port = 0;
  uint32_t scope_id = 0;           // IPv6 zone (link-local)

  static Address ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    Address r;
    r.family = 4;
    r.ip[0] = a, r.ip[1] = b, r.ip[2] = c, r.ip[3] = d;
    r.port = port;
    return r;
  }
  // parse reads "1.2.3.4:5683", "[::1]:5683", "1.2.3.4" or "[::1]" / "::1" (then
  // default_port). Returns nullopt for anything else.
  static std::optional<Address> parse(std::string_view s, uint16_t default_port = 5683);
  // parse_host reads a numeric IPv4/IPv6 host without port (brackets optional).
  static std::optional<Address> parse_host(std::string_view host, uint16_t port);
  // to_string formats as "1.2.3.4:5683" or "[::1]:5683".
  std::string to_string() const;
  std::string host_string() const;
  bool is_multicast() const;

  bool operator==(const Address& o) const {
    return family == o.family && port == o.port && scope_id == o.scope_id &&
           std::memcmp(ip.data(), o.ip.data(), family == 4 ? 4 : 16) == 0;
  }
  bool operator!=(const Address& o) const { return !(*this == o); }
  uint64_t hash() const {
    uint64_t h = 1469598103934665603ull ^ (uint64_t{family} << 16 | port);
    size_t n = family == 4 ? 4 : 16;
    for (size_t i = 0; i < n; ++i) h = (h ^ ip[i]) * 1099511628211ull;
    return h ^ scope_id;
  }
};

struct AddressHash {
  size_t operator()(const Address& a) const { return static_cast<size_t>(a.hash()); }
};

}  // namespace acekdc::coap
