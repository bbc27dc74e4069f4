#include "coap/address.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <charconv>

namespace acekdc::coap {

std::optional<Address> Address::parse_host(std::string_view host, uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > 63) return std::nullopt;
  std::string h(host);
  Address a;
  a.port = port;
  if (inet_pton(AF_INET, h.c_str(), a.ip.data()) == 1) {
    a.family = 4;
    return a;
  }
  size_t pct = h.find('%');
  std::string zone;
  if (pct != std::string::npos) {
    zone = h.substr(pct + 1);
    h.resize(pct);
  }
  if (inet_pton(AF_INET6, h.c_str(), a.ip.data()) != 1) return std::nullopt;
  a.family = 6;
  if (!zone.empty()) {
    unsigned idx = if_nametoindex(zone.c_str());
    if (idx == 0) {
      auto [p, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), idx);
      if (ec != std::errc() || p != zone.data() + zone.size()) return std::nullopt;
    }
    a.scope_id = idx;
  }
  return a;
}

std::optional<Address> Address::parse(std::string_view s, uint16_t default_port) {
  std::string_view host = s;
  uint16_t port = default_port;
  auto parse_port = [&](std::string_view p) -> bool {
    unsigned v = 0;
    auto [q, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || q != p.data() + p.size() || v > 65535 || p.empty()) return false;
    port = static_cast<uint16_t>(v);
    return true;
  };
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !parse_port(rest.substr(1))) return std::nullopt;
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    size_t c = s.find(':');
    host = s.substr(0, c);
    if (!parse_port(s.substr(c + 1))) return std::nullopt;
  }
  return parse_host(host, port);
}

std::string Address::host_string() const {
  char buf[INET6_ADDRSTRLEN + 16] = {0};
  if (family == 4) {
    inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
    return buf;
  }
  if (family == 6) {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
    std::string r = buf;
    if (scope_id) r += "%" + std::to_string(scope_id);
    return r;
  }
  return "?";
}

std::string Address::to_string() const {
  if (family == 6) return "[" + host_string() + "]:" + std::to_string(port);
  return host_string() + ":" + std::to_string(port);
}

bool Address::is_multicast() const {
  if (family == 4) return (ip[0] & 0xf0) == 0xe0;
  if (family == 6) return ip[0] == 0xff;
  return false;
}

}  // namespace acekdc::coap
