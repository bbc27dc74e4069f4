// fuzz_as_request: the AS's fast readers (ace/as_request.h) against the general
// ones. Whatever the fast reader of a token request or of a scope accepts, the
// general reader (TokenRequestView::decode / parse_scope_views) must accept too,
// with the same fields viewing the same bytes; a disagreement aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "ace/as_request.h"

using namespace acekdc;
using namespace acekdc::ace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView in(data, size);
  if (std::optional<as_fast::TokenRequestFields> f{std::in_place}; as_fast::read_token_request(in, *f)) {
    auto g = TokenRequestView::decode(in);
    if (!g || g->req_cnf || f->req_cnf || f->grant_type != g->grant_type || f->client_id != g->client_id ||
        f->audience != g->audience || f->ace_profile_requested != g->ace_profile_requested ||
        f->scope.has_value() != g->scope.has_value())
      std::abort();
    if (f->scope && (f->scope->is_text != g->scope->is_text || f->scope->value.data() != g->scope->value.data() ||
                     f->scope->value.size() != g->scope->value.size()))
      std::abort();
  }
  static std::vector<ScopeEntryView> a, b;
  if (as_fast::read_scope(in, a)) {
    if (!parse_scope_views(in, b) || a.size() != b.size()) std::abort();
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].group != b[i].group || a[i].group.data() != b[i].group.data() || a[i].roles != b[i].roles)
        std::abort();
  }
  return 0;
}
