#include "acekdc/io_util.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cbor/edn.h"
#include "core/hex.h"

namespace acekdc::app {

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

static bool looks_like_hex(std::string_view s) {
  bool any = false;
  for (char c : s) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      any = true;
    } else if (!std::isspace(static_cast<unsigned char>(c)) && c != ':') {
      return false;
    }
  }
  return any;
}

static bool is_text(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f) return false;
  return true;
}

std::optional<Bytes> cbor_from_text(const std::string& text, const char* what) {
  std::string src = text;
  bool binary_ok = false;
  if (text == "-") {
    src = read_stdin();
    binary_ok = true;
  } else if (!text.empty() && text[0] == '@') {
    auto f = read_file(text.substr(1));
    if (!f) {
      std::fprintf(stderr, "error: cannot read %s file '%s'\n", what, text.c_str() + 1);
      return std::nullopt;
    }
    src = *f;
    binary_ok = true;
  }
  if (binary_ok && !is_text(src)) return Bytes(src.begin(), src.end());
  if (looks_like_hex(src)) {
    if (auto b = from_hex(src)) return b;
  }
  auto v = cbor::from_diag(src);
  if (v) return cbor::encode(*v);
  std::fprintf(stderr, "error: %s is neither hex nor diagnostic notation (at offset %zu: %s)\n",
               what, v.error().offset, v.error().message.c_str());
  return std::nullopt;
}

}  // namespace acekdc::app
