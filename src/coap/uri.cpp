#include "coap/uri.h"

#include <charconv>

namespace acekdc::coap {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::optional<Uri> Uri::parse(std::string_view s) {
  constexpr std::string_view kScheme = "coap://";
  if (s.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  s.remove_prefix(kScheme.size());
  Uri u;
  size_t end = s.find_first_of("/?");
  std::string_view auth = s.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : s.substr(end);
  if (auth.empty()) return std::nullopt;
  std::string_view port;
  if (auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(auth.substr(1, close - 1));
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    size_t c = auth.find(':');
    u.host = std::string(auth.substr(0, c));
    if (c != std::string_view::npos) port = auth.substr(c + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) return std::nullopt;
    u.port = static_cast<uint16_t>(v);
  }
  std::string_view path, query;
  split_path_query(rest, path, query);
  u.path = std::string(path);
  u.query = std::string(query);
  return u;
}

void Uri::apply_to(Message& m) const {
  m.remove(option::kUriPath);
  m.remove(option::kUriQuery);
  std::string_view p = path;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty()) {
    size_t i = p.find('/');
    auto seg = percent_decode(p.substr(0, i));
    m.add_string(option::kUriPath, seg ? *seg : std::string(p.substr(0, i)));
    if (i == std::string_view::npos) break;
    p.remove_prefix(i + 1);
  }
  std::string_view q = query;
  while (!q.empty()) {
    size_t i = q.find('&');
    auto part = q.substr(0, i);
    if (!part.empty()) {
      auto dec = percent_decode(part);
      m.add_string(option::kUriQuery, dec ? *dec : std::string(part));
    }
    if (i == std::string_view::npos) break;
    q.remove_prefix(i + 1);
  }
}

}  // namespace acekdc::coap
