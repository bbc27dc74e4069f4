// fuzz_oscore_ctx_file: the OSCORE context file loader of `acekdc coap --oscore`
// and `acekdc oscore-interop-server` (apps/acekdc/oscore_ctx_file.h).
//  - first byte bit 0: JSON (1) or TOML (0); bit 1: a context list (the server's
//    configuration) instead of one context.
// Never crash; whatever is accepted satisfies the loader's promises: a non-empty
// master secret, Sender ID != Recipient ID, a replay window in 1..1024, limits
// (if given) within the 2^-54 bound, send_kid_context only with an ID Context.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "acekdc/oscore_ctx_file.h"
#include "oscore/limits.h"

using namespace acekdc;
using namespace acekdc::app;

static void check(const OscoreCtxFile& f) {
  if (f.params.master_secret.empty()) std::abort();
  if (f.params.sender_id == f.params.recipient_id) std::abort();
  if (f.replay_window < 1 || f.replay_window > oscore::ReplayWindow::kMaxSize) std::abort();
  if (f.send_kid_context && !f.params.id_context) std::abort();
  if (f.limits && !oscore::check_limits(f.params.aead_alg, *f.limits)) std::abort();
  if (f.key_update.r_len < 1 || f.key_update.r_len > 32) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const CtxFormat fmt = (data[0] & 1) ? CtxFormat::kJson : CtxFormat::kToml;
  if (data[0] & 2) {
    auto list = parse_ctx_list(text, fmt, "/state", "fuzz");
    if (list) {
      if (list->empty()) std::abort();
      for (const auto& f : *list) check(f);
    } else if (list.error().message.empty()) {
      std::abort();
    }
    return 0;
  }
  auto f = parse_ctx(text, fmt, "/base", "fuzz");
  if (f) check(*f);
  else if (f.error().message.empty()) std::abort();
  return 0;
}
