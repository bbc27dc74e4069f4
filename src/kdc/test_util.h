// Helpers shared by the kdc tests: temporary directories and sample records.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "kdc/model.h"

namespace acekdc::kdc::testing {

// TempDir creates a fresh directory under $TMPDIR (or /tmp) and removes it on
// destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/acekdc-kdc-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline GroupConfig sample_config(std::string name = "g1") {
  GroupConfig c;
  c.name = std::move(name);
  c.multicast_address = "ff35:30:2001:db8::23";
  return c;
}

// sample_key returns version `num` with a Group ID derived from `gid_seed`.
inline GroupKeyMaterial sample_key(uint64_t num, uint8_t gid_seed, int64_t now = 1700000000) {
  GroupKeyMaterial k;
  k.num = num;
  k.master_secret = Bytes(16, static_cast<uint8_t>(0xA0 + gid_seed));
  k.master_salt = Bytes(8, static_cast<uint8_t>(0x50 + gid_seed));
  k.group_id = Bytes{0xFE, gid_seed};
  k.exp = now + 86400;
  k.established_at = now;
  return k;
}

inline Member sample_member(std::string name, Bytes sender_id, int64_t now = 1700000000) {
  Member m;
  m.node_name = std::move(name);
  m.sender_id = std::move(sender_id);
  m.roles = 1u << 1 | 1u << 2;
  // An Ed25519 COSE_Key-shaped byte string (content is opaque to the store).
  m.public_key = Bytes(45, 0x11);
  m.public_key[0] = 0xA4;
  m.control_path = "/ctl/" + m.node_name;
  m.joined_at = now;
  m.token_id = Bytes{0x01, 0x02, 0x03, static_cast<uint8_t>(m.node_name.size())};
  return m;
}

}  // namespace acekdc::kdc::testing
