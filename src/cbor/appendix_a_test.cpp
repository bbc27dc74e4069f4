// RFC 8949 / RFC 7049 Appendix A examples (tests/vectors/cbor/appendix_a.json, as
// published): decode every entry, compare with the JSON value or the diagnostic
// notation, re-encode, and round-trip through EDN.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cbor/edn.h"
#include "cbor/value.h"
#include "core/hex.h"

namespace acekdc::cbor {
namespace {

using json = nlohmann::json;

// BigIntSax builds the DOM like nlohmann's parser, except that an integer too big
// for int64/uint64 (which nlohmann would turn into a lossy double) becomes the
// string "bigint:<digits as written>", so the test compares it exactly.
class BigIntSax {
 public:
  explicit BigIntSax(json& j) : dom_(j, false) {}
  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& s) {
    if (s.find_first_of(".eE") == std::string::npos) {
      std::string tagged = "bigint:" + s;
      return dom_.string(tagged);
    }
    return dom_.number_float(v, s);
  }
  bool string(std::string& s) { return dom_.string(s); }
  bool binary(json::binary_t& b) { return dom_.binary(b); }
  bool start_object(std::size_t n) { return dom_.start_object(n); }
  bool key(std::string& k) { return dom_.key(k); }
  bool end_object() { return dom_.end_object(); }
  bool start_array(std::size_t n) { return dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  bool parse_error(std::size_t pos, const std::string& tok, const nlohmann::detail::exception& e) {
    ADD_FAILURE() << "JSON parse error at " << pos << ": " << e.what();
    return false;
  }

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
};

json load_vectors() {
  std::ifstream f(ACEKDC_VECTORS_DIR "/cbor/appendix_a.json");
  EXPECT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  BigIntSax sax(j);
  EXPECT_TRUE(json::sax_parse(ss.str(), &sax));
  return j;
}

// Decimal digits of a big-endian unsigned magnitude, plus `add` (0 or 1).
std::string big_decimal(ByteView magnitude, unsigned add) {
  std::vector<uint8_t> n(magnitude.begin(), magnitude.end());
  // n += add
  for (size_t i = n.size(); add && i-- > 0;) {
    const unsigned s = n[i] + add;
    n[i] = static_cast<uint8_t>(s);
    add = s >> 8;
  }
  if (add) n.insert(n.begin(), 1);
  std::string digits;
  while (!n.empty()) {
    unsigned rem = 0;
    std::vector<uint8_t> q;
    for (uint8_t b : n) {
      const unsigned cur = rem * 256 + b;
      if (!q.empty() || cur / 10) q.push_back(static_cast<uint8_t>(cur / 10));
      rem = cur % 10;
    }
    digits.insert(digits.begin(), static_cast<char>('0' + rem));
    n = std::move(q);
  }
  return digits.empty() ? "0" : digits;
}

std::string u64_be_decimal(uint64_t v, unsigned add) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  return big_decimal(b, add);
}

// integer_text: the integer a Value denotes (int, or tag 2/3 bignum) in decimal;
// empty when it is not an integer.
std::string integer_text(const Value& v) {
  if (v.is_uint()) return u64_be_decimal(v.raw_uint(), 0);
  if (v.type() == Value::Type::kNegative) return "-" + u64_be_decimal(v.raw_uint(), 1);
  if (v.is_tag() && (v.tag_number() == 2 || v.tag_number() == 3) && v.tag_content()->is_bytes()) {
    const ByteView mag = v.tag_content()->bytes_view();
    return v.tag_number() == 2 ? big_decimal(mag, 0) : "-" + big_decimal(mag, 1);
  }
  return "";
}

// matches_json compares a decoded Value with the JSON "decoded" value.
::testing::AssertionResult matches_json(const Value& v, const json& j) {
  using ::testing::AssertionFailure;
  using ::testing::AssertionSuccess;
  switch (j.type()) {
    case json::value_t::null:
      return v.is_null() ? AssertionSuccess() : AssertionFailure() << "want null";
    case json::value_t::boolean:
      return v.as_bool() == j.get<bool>() ? AssertionSuccess() : AssertionFailure() << "want bool";
    case json::value_t::number_unsigned:
    case json::value_t::number_integer: {
      const std::string want = j.dump();
      const std::string got = integer_text(v);
      return got == want ? AssertionSuccess() : AssertionFailure() << got << " != " << want;
    }
    case json::value_t::number_float: {
      const double want = j.get<double>();
      if (!v.is_float()) return AssertionFailure() << "want float " << want;
      const double got = *v.as_float();
      if (got != want || std::signbit(got) != std::signbit(want))
        return AssertionFailure() << got << " != " << want;
      return AssertionSuccess();
    }
    case json::value_t::string: {
      const std::string s = j.get<std::string>();
      if (s.rfind("bigint:", 0) == 0) {
        const std::string got = integer_text(v);
        return got == s.substr(7) ? AssertionSuccess() : AssertionFailure() << got << " != " << s;
      }
      if (!v.is_text() || *v.as_text() != s) return AssertionFailure() << "want text " << s;
      return AssertionSuccess();
    }
    case json::value_t::array: {
      if (!v.is_array() || v.as_array()->size() != j.size()) return AssertionFailure() << "want array";
      for (size_t i = 0; i < j.size(); ++i) {
        auto r = matches_json((*v.as_array())[i], j[i]);
        if (!r) return r << " at [" << i << "]";
      }
      return AssertionSuccess();
    }
    case json::value_t::object: {
      if (!v.is_map() || v.as_map()->size() != j.size()) return AssertionFailure() << "want map";
      for (auto it = j.begin(); it != j.end(); ++it) {
        const Value* x = v.find(std::string_view(it.key()));
        if (!x) return AssertionFailure() << "missing key " << it.key();
        auto r = matches_json(*x, it.value());
        if (!r) return r << " at key " << it.key();
      }
      return AssertionSuccess();
    }
    default:
      return AssertionFailure() << "unexpected JSON type";
  }
}

// The vectors are RFC 7049's, whose simple(24) = f818 RFC 8949 no longer allows
// (see Limits::allow_legacy_simple); everything else decodes with the defaults.
Limits vector_limits() {
  Limits lim;
  lim.allow_legacy_simple = true;
  return lim;
}

TEST(CborAppendixA, DecodeCompareReencode) {
  const json vectors = load_vectors();
  ASSERT_TRUE(vectors.is_array());
  int processed = 0, compared_json = 0, roundtripped = 0;
  for (const json& e : vectors) {
    const std::string hex = e.at("hex").get<std::string>();
    SCOPED_TRACE(hex);
    const auto bytes = from_hex(hex);
    ASSERT_TRUE(bytes.has_value());
    auto v = decode(*bytes, vector_limits());
    ASSERT_TRUE(v) << to_string(v.error());
    if (hex != "f818") {
      EXPECT_TRUE(decode(*bytes)) << "default limits";
    }
    if (e.contains("decoded")) {
      EXPECT_TRUE(matches_json(*v, e.at("decoded")));
      ++compared_json;
    }
    // Value keeps indefinite lengths, chunks and float widths, so every entry
    // (not only the roundtrip:true ones) re-encodes to the same bytes.
    const Bytes again = encode(*v);
    EXPECT_EQ(to_hex(again), hex);
    if (e.at("roundtrip").get<bool>()) {
      EXPECT_EQ(to_hex(again), hex);
      ++roundtripped;
    }
    ++processed;
  }
  EXPECT_EQ(processed, 82);
  EXPECT_EQ(compared_json, 59);
  EXPECT_EQ(roundtripped, 65);
}

// strip_float_indicator removes a trailing encoding indicator (_1, _2, _3).
std::string strip_float_indicator(std::string s) {
  if (s.size() > 2 && s[s.size() - 2] == '_' && s.back() >= '1' && s.back() <= '3')
    s.resize(s.size() - 2);
  return s;
}

TEST(CborAppendixA, DiagnosticNotation) {
  const json vectors = load_vectors();
  int processed = 0, compared_diag = 0, normalized = 0;
  for (const json& e : vectors) {
    const std::string hex = e.at("hex").get<std::string>();
    SCOPED_TRACE(hex);
    const auto bytes = from_hex(hex);
    ASSERT_TRUE(bytes.has_value());
    auto v = decode(*bytes, vector_limits());
    ASSERT_TRUE(v) << to_string(v.error());
    const std::string diag = to_diag(*v);
    if (e.contains("diagnostic")) {
      const std::string want = e.at("diagnostic").get<std::string>();
      // The one documented difference in style: the vectors (RFC 7049 era) do not
      // write encoding indicators, so Infinity/NaN/-Infinity in single or double
      // width (the roundtrip:false float entries) print here as e.g. "NaN_2".
      // Only for those entries we compare with the indicator removed.
      if (!e.at("roundtrip").get<bool>() && diag != want) {
        EXPECT_EQ(strip_float_indicator(diag), want);
        EXPECT_NE(strip_float_indicator(diag), diag);
        ++normalized;
      } else {
        EXPECT_EQ(diag, want);
      }
      ++compared_diag;
    }
    // For every entry: EDN back to a Value that encodes to the same bytes.
    auto back = from_diag(diag);
    ASSERT_TRUE(back) << diag << ": " << back.error().message << " at " << back.error().offset;
    EXPECT_EQ(to_hex(encode(*back)), hex) << diag;
    EXPECT_TRUE(*back == *v) << diag;
    // The pretty and embedded forms parse back to the same bytes too.
    for (DiagOptions o : {DiagOptions{true, false}, DiagOptions{false, true}, DiagOptions{true, true}}) {
      auto b2 = from_diag(to_diag(*v, o));
      ASSERT_TRUE(b2) << to_diag(*v, o);
      EXPECT_EQ(to_hex(encode(*b2)), hex);
    }
    ++processed;
  }
  EXPECT_EQ(processed, 82);
  EXPECT_EQ(compared_diag, 23);
  EXPECT_EQ(normalized, 6);
}

}  // namespace
}  // namespace acekdc::cbor

namespace acekdc::cbor {
namespace {

// Every strict prefix of every Appendix A item is a truncated item (and every
// extension by one byte is trailing data), for validate() and the pull Decoder.
TEST(CborAppendixA, PrefixesAreTruncated) {
  const json vectors = load_vectors();
  int prefixes = 0;
  for (const json& e : vectors) {
    const auto bytes = from_hex(e.at("hex").get<std::string>());
    ASSERT_TRUE(bytes.has_value());
    for (size_t n = 0; n < bytes->size(); ++n) {
      const ByteView prefix(bytes->data(), n);
      auto r = validate(prefix, vector_limits());
      ASSERT_FALSE(r) << e.at("hex") << " prefix " << n;
      EXPECT_EQ(r.error(), Error::kTruncated) << e.at("hex") << " prefix " << n;
      Decoder d(prefix, vector_limits());
      EXPECT_FALSE(d.skip());
      EXPECT_EQ(d.error(), Error::kTruncated);
      ++prefixes;
    }
    Bytes longer = *bytes;
    longer.push_back(0);
    auto r = validate(longer, vector_limits());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Error::kTrailingBytes);
  }
  EXPECT_GT(prefixes, 400);
}

}  // namespace
}  // namespace acekdc::cbor
