#include "ace/scope.h"

#include <gtest/gtest.h>

#include "cbor/edn.h"
#include "core/hex.h"

using namespace acekdc;
using namespace acekdc::ace;

static Bytes edn(const char* text) {
  auto v = cbor::from_diag(text);
  EXPECT_TRUE(v) << text;
  return v ? cbor::encode(*v) : Bytes{};
}

TEST(Scope, ParsesEntriesWithRoleForms) {
  auto s = parse_scope(edn(R"([["g1", "requester"], ["g2", ["requester", "responder"]], ["g3"], ["g4", 3]])"));
  ASSERT_TRUE(s);
  ASSERT_EQ(s->entries.size(), 4u);
  EXPECT_EQ(s->entries[0], (ScopeEntry{"g1", kRoleRequester}));
  EXPECT_EQ(s->entries[1], (ScopeEntry{"g2", kRoleRequester | kRoleResponder}));
  EXPECT_EQ(s->entries[2], (ScopeEntry{"g3", 0}));
  EXPECT_EQ(s->entries[3], (ScopeEntry{"g4", kRoleMonitor}));
  EXPECT_TRUE(covers(*s, "g2", kRoleResponder));
  EXPECT_FALSE(covers(*s, "g1", kRoleResponder));
  EXPECT_FALSE(covers(*s, "nope", kRoleRequester));
}

TEST(Scope, RejectsWhatTheProfileForbids) {
  EXPECT_EQ(parse_scope(edn(R"([])")).error(), ScopeError::kEmpty);
  EXPECT_EQ(parse_scope(edn(R"([["g", "admin"]])")).error(), ScopeError::kUnknownRole);
  EXPECT_EQ(parse_scope(edn(R"([["g", 7]])")).error(), ScopeError::kUnknownRole);
  EXPECT_EQ(parse_scope(edn(R"([["g", ["monitor", "requester"]]])")).error(), ScopeError::kBadRoleCombination);
  EXPECT_EQ(parse_scope(edn(R"([["g", ["requester", "requester"]]])")).error(), ScopeError::kBadRoleCombination);
  EXPECT_EQ(parse_scope(edn(R"([["g"], ["g", "requester"]])")).error(), ScopeError::kDuplicateGroup);
  EXPECT_EQ(parse_scope(edn(R"([[h'6767', "requester"]])")).error(), ScopeError::kMalformed);
  EXPECT_EQ(parse_scope(edn(R"([["g", ["requester"]]])")).error(), ScopeError::kMalformed);
  EXPECT_EQ(parse_scope(edn(R"({"g": 1})")).error(), ScopeError::kMalformed);
  Bytes trailing = edn(R"([["g"]])");
  trailing.push_back(0);
  EXPECT_EQ(parse_scope(trailing).error(), ScopeError::kMalformed);
  EXPECT_EQ(parse_scope(*from_hex("9fff")).error(), ScopeError::kMalformed);  // indefinite
  EXPECT_EQ(parse_scope(*from_hex("9b00ffffffffffffff")).error(), ScopeError::kMalformed);
}

TEST(Scope, EncodeRoundTrips) {
  Scope s{{{"g1", kRoleRequester}, {"g2", kRoleRequester | kRoleResponder}, {"g3", 0}}};
  auto text = encode_scope(s);
  EXPECT_EQ(cbor::diag_of_bytes(text), R"([["g1", "requester"], ["g2", ["requester", "responder"]], ["g3"]])");
  auto back = parse_scope(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
  auto abbr = encode_scope(s, true);
  EXPECT_EQ(cbor::diag_of_bytes(abbr), R"([["g1", 1], ["g2", [1, 2]], ["g3"]])");
  EXPECT_EQ(*parse_scope(abbr), s);
}
