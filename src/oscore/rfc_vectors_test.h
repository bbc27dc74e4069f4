// Test helper: reads the byte-string values of one section of RFC 8613
// Appendix C straight from the RFC text in tests/vectors/rfc/rfc8613.txt
// (lines "[o  ]<name>: 0x<hex> (<n> bytes)", possibly wrapped over lines).
#pragma once

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "core/bytes.h"
#include "core/hex.h"

namespace acekdc::oscore::test {

// rfc8613_section returns name -> bytes for the section whose heading starts
// with `section` (e.g. "C.1.1."), up to the next "C." heading. Each value's
// declared byte count is checked against its hex length; a mismatch or an
// unreadable file yields an empty map (so tests fail loudly).
inline std::map<std::string, Bytes> rfc8613_section(const std::string& section) {
  std::ifstream in(std::string(ACEKDC_VECTORS_DIR) + "/rfc/rfc8613.txt");
  std::string line, text = "\n";
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind(section, 0) == 0) {
      inside = true;
      continue;
    }
    if (inside && line.rfind("C.", 0) == 0) break;
    if (inside && line.rfind("Appendix", 0) == 0) break;
    if (!inside) continue;
    // Drop page footers/headers and form feeds.
    if (line.rfind("Selander, et al.", 0) == 0 || line.rfind("RFC 8613", 0) == 0) continue;
    if (!line.empty() && line[0] == '\f') continue;
    text += line;
    text += '\n';
  }
  std::map<std::string, Bytes> out;
  static const std::regex re(R"(\n\s*(?:o\s+)?([^:\n]+?):\s*0x([0-9a-f\s]*)\((\d+)\s+bytes?\))");
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    std::string hex;
    for (char c : (*it)[2].str()) {
      if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
    }
    auto b = from_hex(hex);
    if (!b || b->size() != std::stoul((*it)[3].str())) return {};
    out[(*it)[1].str()] = *b;
  }
  return out;
}

}  // namespace acekdc::oscore::test
