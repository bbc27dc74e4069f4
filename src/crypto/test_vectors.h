// Test-only helper: reads the vector files in src/crypto/testdata/. A file is a
// run of records separated by blank lines; each line is "name = value" where
// value is hex (empty for a zero-length string) or plain text; '#' lines are
// comments (each file names its source there).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/hex.h"

namespace acekdc::crypto::testing {

struct Record {
  std::map<std::string, std::string> fields;

  bool has(const std::string& k) const { return fields.count(k) != 0; }
  const std::string& str(const std::string& k) const {
    static const std::string kMissing;
    auto it = fields.find(k);
    EXPECT_NE(it, fields.end()) << "missing field " << k;
    return it == fields.end() ? kMissing : it->second;
  }
  Bytes hex(const std::string& k) const {
    auto b = from_hex(str(k));
    EXPECT_TRUE(b.has_value()) << "field " << k << " is not hex";
    return b.value_or(Bytes{});
  }
  std::string name() const { return has("case") ? str("case") : std::string("?"); }
};

inline std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// load_vectors reads testdata/<file>; a missing or empty file fails the test.
inline std::vector<Record> load_vectors(const std::string& file) {
  const std::string path = std::string(ACEKDC_SOURCE_DIR) + "/src/crypto/testdata/" + file;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<Record> out;
  Record cur;
  std::string line;
  auto flush = [&] {
    if (!cur.fields.empty()) out.push_back(std::move(cur));
    cur = Record{};
  };
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (t.empty()) {
      flush();
      continue;
    }
    if (t[0] == '#') continue;
    const auto eq = t.find('=');
    EXPECT_NE(eq, std::string::npos) << "bad line in " << file << ": " << t;
    if (eq == std::string::npos) continue;
    cur.fields[trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
  }
  flush();
  EXPECT_FALSE(out.empty()) << "no vectors in " << path;
  return out;
}

}  // namespace acekdc::crypto::testing
