// Tests of diagnostic notation (EDN) printing and parsing.
#include "cbor/edn.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/hex.h"

namespace acekdc::cbor {
namespace {

Bytes H(std::string_view hex) { return from_hex(hex).value_or(Bytes{}); }

std::string diag(std::string_view hex, DiagOptions o = {}) { return diag_of_bytes(H(hex), o); }

// edn_hex parses EDN and returns the hex of its encoding ("error@N: msg" on failure).
std::string edn_hex(std::string_view text) {
  auto v = from_diag(text);
  if (!v) return "error@" + std::to_string(v.error().offset) + ": " + v.error().message;
  return to_hex(encode(*v));
}

TEST(CborEdnPrint, Scalars) {
  EXPECT_EQ(diag("00"), "0");
  EXPECT_EQ(diag("1bffffffffffffffff"), "18446744073709551615");
  EXPECT_EQ(diag("3bffffffffffffffff"), "-18446744073709551616");
  EXPECT_EQ(diag("3903e7"), "-1000");
  EXPECT_EQ(diag("f4"), "false");
  EXPECT_EQ(diag("f5"), "true");
  EXPECT_EQ(diag("f6"), "null");
  EXPECT_EQ(diag("f7"), "undefined");
  EXPECT_EQ(diag("f0"), "simple(16)");
  EXPECT_EQ(diag("f8ff"), "simple(255)");
  EXPECT_EQ(diag("c11a514b67b0"), "1(1363896240)");
  EXPECT_EQ(diag("40"), "h''");
  EXPECT_EQ(diag("4401020304"), "h'01020304'");
  EXPECT_EQ(diag("60"), "\"\"");
  EXPECT_EQ(diag("62225c"), "\"\\\"\\\\\"");
  EXPECT_EQ(diag("62c3bc"), "\"\xc3\xbc\"");
  EXPECT_EQ(diag("630a0109"), "\"\\n\\u0001\\t\"");
  EXPECT_EQ(diag("ff"), "error: malformed CBOR");
}

TEST(CborEdnPrint, Floats) {
  EXPECT_EQ(diag("f90000"), "0.0");
  EXPECT_EQ(diag("f98000"), "-0.0");
  EXPECT_EQ(diag("f93c00"), "1.0");
  EXPECT_EQ(diag("fb3ff199999999999a"), "1.1");
  EXPECT_EQ(diag("f97bff"), "65504.0");
  EXPECT_EQ(diag("fa47c35000"), "100000.0");
  EXPECT_EQ(diag("fa7f7fffff"), "3.4028234663852886e+38");
  EXPECT_EQ(diag("fb7e37e43c8800759c"), "1.0e+300");
  EXPECT_EQ(diag("f90001"), "5.960464477539063e-8");
  EXPECT_EQ(diag("f90400"), "0.00006103515625");
  EXPECT_EQ(diag("fbc010666666666666"), "-4.1");
  EXPECT_EQ(diag("f97c00"), "Infinity");
  EXPECT_EQ(diag("f9fc00"), "-Infinity");
  EXPECT_EQ(diag("f97e00"), "NaN");
  EXPECT_EQ(diag("c1fb41d452d9ec200000"), "1(1363896240.5)");
  // Not the preferred width: encoding indicators.
  EXPECT_EQ(diag("fa3f800000"), "1.0_2");
  EXPECT_EQ(diag("fb3ff0000000000000"), "1.0_3");
  EXPECT_EQ(diag("fb40f86a0000000000"), "100000.0_3");
  EXPECT_EQ(diag("fa7fc00000"), "NaN_2");
  EXPECT_EQ(diag("fbfff0000000000000"), "-Infinity_3");
  EXPECT_EQ(diag("fb4415af1d78b58c40"), "100000000000000000000.0");
  EXPECT_EQ(diag("fb44b52d02c7e14af6"), "1.0e+23");
  EXPECT_EQ(diag("fb3e7ad7f29abcaf48"), "0.0000001");
  EXPECT_EQ(diag("fb3e45798ee2308c3a"), "1.0e-8");
}

TEST(CborEdnPrint, ContainersAndIndefinite) {
  EXPECT_EQ(diag("8301820203820405"), "[1, [2, 3], [4, 5]]");
  EXPECT_EQ(diag("a26161016162820203"), "{\"a\": 1, \"b\": [2, 3]}");
  EXPECT_EQ(diag("80"), "[]");
  EXPECT_EQ(diag("a0"), "{}");
  EXPECT_EQ(diag("9fff"), "[_ ]");
  EXPECT_EQ(diag("bfff"), "{_ }");
  EXPECT_EQ(diag("9f018202039f0405ffff"), "[_ 1, [2, 3], [_ 4, 5]]");
  EXPECT_EQ(diag("bf6346756ef563416d7421ff"), "{_ \"Fun\": true, \"Amt\": -2}");
  EXPECT_EQ(diag("5f42010243030405ff"), "(_ h'0102', h'030405')");
  EXPECT_EQ(diag("7f657374726561646d696e67ff"), "(_ \"strea\", \"ming\")");
  EXPECT_EQ(diag("5f40ff"), "(_ h'')");
  // No chunks at all: RFC 8949 §8.1 forms.
  EXPECT_EQ(diag("5fff"), "''_");
  EXPECT_EQ(diag("7fff"), "\"\"_");
}

TEST(CborEdnPrint, EmbeddedAndPretty) {
  DiagOptions emb;
  emb.embedded = true;
  EXPECT_EQ(diag("d818456449455446", emb), "24(<<\"IETF\">>)");
  EXPECT_EQ(diag("43010203", emb), "h'010203'");      // raw-looking bytes stay hex
  EXPECT_EQ(diag("d83f43010203", emb), "63(<<1, 2, 3>>)");  // tag 63: a CBOR sequence
  EXPECT_EQ(diag("43a10126", emb), "<<{1: -7}>>");    // a bstr-wrapped COSE header map
  EXPECT_EQ(diag("4482010203", emb), "h'82010203'");  // one array and trailing data
  EXPECT_EQ(diag("4118", emb), "h'18'");  // not well-formed inside: stays hex
  EXPECT_EQ(diag("421801", emb), "h'1801'");  // would not re-encode identically
  EXPECT_EQ(diag("40", emb), "h''");
  // A NaN prints as NaN (payload lost), so content holding one stays hex (fuzz_cbor find).
  EXPECT_EQ(diag("d81845fa7fc00001", emb), "24(h'fa7fc00001')");
  EXPECT_EQ(diag("4481f97e00", emb), "h'81f97e00'");

  DiagOptions pretty;
  pretty.pretty = true;
  EXPECT_EQ(diag("83010203", pretty), "[1, 2, 3]");  // short: one line
  // A token-like map with long byte strings breaks into indented lines.
  Value m = Value::map();
  m.set(1, Value::bytes(Bytes(40, 0xaa)));
  m.set(2, Value::array({Value::uint(1), Value::bytes(Bytes(40, 0xbb))}));
  const std::string p = to_diag(m, pretty);
  EXPECT_EQ(p,
            "{\n"
            "  1: h'" + std::string(80, 'a') + "',\n"
            "  2: [\n"
            "    1,\n"
            "    h'" + std::string(80, 'b') + "'\n"
            "  ]\n"
            "}");
  auto back = from_diag(p);
  ASSERT_TRUE(back);
  EXPECT_EQ(encode(*back), encode(m));
}

TEST(CborEdnParse, Basics) {
  EXPECT_EQ(edn_hex("0"), "00");
  EXPECT_EQ(edn_hex("  [1, [2, 3], [4, 5]] "), "8301820203820405");
  EXPECT_EQ(edn_hex("{\"a\": 1, \"b\": [2, 3]}"), "a26161016162820203");
  EXPECT_EQ(edn_hex("[_ 1, 2]"), "9f0102ff");
  EXPECT_EQ(edn_hex("[_ ]"), "9fff");
  EXPECT_EQ(edn_hex("{_ 1: 2}"), "bf0102ff");
  EXPECT_EQ(edn_hex("(_ h'0102', h'030405')"), "5f42010243030405ff");
  EXPECT_EQ(edn_hex("(_ \"strea\", \"ming\")"), "7f657374726561646d696e67ff");
  EXPECT_EQ(edn_hex("(_ )"), "5fff");
  EXPECT_EQ(edn_hex("''_"), "5fff");
  EXPECT_EQ(edn_hex("\"\"_"), "7fff");
  EXPECT_EQ(edn_hex("h''_"), "5fff");
  EXPECT_EQ(edn_hex("true"), "f5");
  EXPECT_EQ(edn_hex("false"), "f4");
  EXPECT_EQ(edn_hex("null"), "f6");
  EXPECT_EQ(edn_hex("undefined"), "f7");
  EXPECT_EQ(edn_hex("simple(16)"), "f0");
  EXPECT_EQ(edn_hex("simple( 255 )"), "f8ff");
  EXPECT_EQ(edn_hex("0(\"2013-03-21T20:04:00Z\")"), "c074323031332d30332d32315432303a30343a30305a");
  EXPECT_EQ(edn_hex("2(h'010000000000000000')"), "c249010000000000000000");
  EXPECT_EQ(edn_hex("\"\\u00fc\\ud800\\udd51\\n\""), "67c3bcf09085910a");
}

TEST(CborEdnParse, Integers) {
  EXPECT_EQ(edn_hex("18446744073709551615"), "1bffffffffffffffff");
  EXPECT_EQ(edn_hex("-18446744073709551616"), "3bffffffffffffffff");
  EXPECT_EQ(edn_hex("-1"), "20");
  EXPECT_EQ(edn_hex("-0"), "00");
  EXPECT_EQ(edn_hex("0x1F"), "181f");
  EXPECT_EQ(edn_hex("-0x10"), "2f");
  EXPECT_EQ(edn_hex("0o17"), "0f");
  EXPECT_EQ(edn_hex("0b101"), "05");
  EXPECT_EQ(edn_hex("0xffffffffffffffff"), "1bffffffffffffffff");
  EXPECT_EQ(edn_hex("1_0"), "01");  // indicator checked, preferred head kept
  EXPECT_EQ(edn_hex("65535_1"), "19ffff");
  EXPECT_EQ(edn_hex("18446744073709551616"), "error@0: integer out of range");
  EXPECT_EQ(edn_hex("-18446744073709551617"), "error@0: integer out of range");
  EXPECT_EQ(edn_hex("256_0"), "error@3: integer does not fit the encoding indicator");
  EXPECT_EQ(edn_hex("1_4"), "error@1: invalid integer encoding indicator");
  EXPECT_EQ(edn_hex("0x"), "error@2: expected digits");
  EXPECT_EQ(edn_hex("12ab"), "error@2: unexpected character after number");
}

TEST(CborEdnParse, Floats) {
  EXPECT_EQ(edn_hex("1.5"), "f93e00");
  EXPECT_EQ(edn_hex("-4.1"), "fbc010666666666666");
  EXPECT_EQ(edn_hex("1.0e+300"), "fb7e37e43c8800759c");
  EXPECT_EQ(edn_hex("1e300"), "fb7e37e43c8800759c");
  EXPECT_EQ(edn_hex("5.960464477539063e-8"), "f90001");
  EXPECT_EQ(edn_hex("100000.0"), "fa47c35000");
  EXPECT_EQ(edn_hex("-0.0"), "f98000");
  EXPECT_EQ(edn_hex("NaN"), "f97e00");
  EXPECT_EQ(edn_hex("Infinity"), "f97c00");
  EXPECT_EQ(edn_hex("-Infinity"), "f9fc00");
  EXPECT_EQ(edn_hex("NaN_2"), "fa7fc00000");
  EXPECT_EQ(edn_hex("Infinity_3"), "fb7ff0000000000000");
  EXPECT_EQ(edn_hex("1.0_1"), "f93c00");
  EXPECT_EQ(edn_hex("1.0_2"), "fa3f800000");
  EXPECT_EQ(edn_hex("1.0_3"), "fb3ff0000000000000");
  EXPECT_EQ(edn_hex("1.1_1"), "error@3: value is not exact as a half float");
  EXPECT_EQ(edn_hex("1.5_0"), "error@3: invalid float encoding indicator");
  EXPECT_EQ(edn_hex("1e999"), "error@0: number out of range");
  EXPECT_EQ(edn_hex("1."), "error@2: expected digits after '.'");
}

TEST(CborEdnParse, ByteStringForms) {
  EXPECT_EQ(edn_hex("h'01 02\n 0A0b'"), "4401020a0b");
  EXPECT_EQ(edn_hex("h''"), "40");
  EXPECT_EQ(edn_hex("b64'AQID'"), "43010203");
  EXPECT_EQ(edn_hex("b64'+/8='"), "42fbff");   // base64
  EXPECT_EQ(edn_hex("b64'-_8'"), "42fbff");    // base64url, no padding
  EXPECT_EQ(edn_hex("b64'AQ=='"), "4101");
  EXPECT_EQ(edn_hex("'hello'"), "4568656c6c6f");
  EXPECT_EQ(edn_hex("'it\\'s'"), "4469742773");
  EXPECT_EQ(edn_hex("<<1, 2>>"), "420102");
  EXPECT_EQ(edn_hex("<<>>"), "40");
  EXPECT_EQ(edn_hex("<<{1: <<h'ff'>>}>>"), "45a1014241ff");
  EXPECT_EQ(edn_hex("h'0'"), "error@0: odd number of hex digits");
  EXPECT_EQ(edn_hex("h'0g'"), "error@3: invalid hex digit");
  EXPECT_EQ(edn_hex("b64'A'"), "error@0: invalid base64 length");
  EXPECT_EQ(edn_hex("b64'AR=='"), "error@0: non-zero base64 padding bits");
  EXPECT_EQ(edn_hex("(_ h'01', \"a\")"), "error@0: chunks of (_ ) must be definite strings of one type");
  EXPECT_EQ(edn_hex("'ab'_"), "error@4: '_' after a string is only for the empty indefinite-length forms ''_ and \"\"_");
}

TEST(CborEdnParse, CommentsAndWhitespace) {
  EXPECT_EQ(edn_hex("/ a comment / [1, /two/ 2] # trailing\n"), "820102");
  EXPECT_EQ(edn_hex("{ # key\n 1 : 2 }"), "a10102");
  EXPECT_EQ(edn_hex("[1, 2 /oops"), "error@6: unterminated /comment/");
}

TEST(CborEdnParse, ErrorsCarryOffsets) {
  EXPECT_EQ(edn_hex(""), "error@0: expected a data item");
  EXPECT_EQ(edn_hex("[1, 2"), "error@5: expected ',' or ']'");
  EXPECT_EQ(edn_hex("{1 2}"), "error@3: expected ':'");
  EXPECT_EQ(edn_hex("\"abc"), "error@0: unterminated string");
  EXPECT_EQ(edn_hex("\"\\q\""), "error@1: unknown escape");
  EXPECT_EQ(edn_hex("\"\\ud800\""), "error@1: unpaired surrogate in \\u escape");
  EXPECT_EQ(edn_hex("1 2"), "error@2: unexpected text after the item");
  EXPECT_EQ(edn_hex("tru"), "error@0: unexpected character");
  EXPECT_EQ(edn_hex("-1(2)"), "error@0: tag number must be unsigned");
  EXPECT_EQ(edn_hex("simple(256)"), "error@7: simple value out of range");
  EXPECT_EQ(edn_hex(std::string(200, '[') + std::string(200, ']')).substr(0, 5), "error");
  EXPECT_EQ(edn_hex("\"\xff\""), "error@0: invalid UTF-8 in text string");
}

TEST(CborEdn, RoundTripSelection) {
  // Items beyond Appendix A: print, parse, and encode back to the same bytes.
  for (const char* hex :
       {"a3 01 a1 0126 04 42 6b31 20 58 40" "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "5f ff", "7f ff", "5f 40 ff", "7f 60 6161 ff", "bf ff", "9f 9f ff ff", "d9d9f7 83 f4 f5 f6",
        "f8ff", "fa 7f800000", "fb 3ff0000000000000", "f9 0003", "fa 00000001", "c3 49 010000000000000000",
        "3b7fffffffffffffff", "a2 00 01 20 02", "8a 00 01 02 03 04 05 06 07 08 09"}) {
    const Bytes in = H(hex);
    auto v = decode(in);
    ASSERT_TRUE(v) << hex;
    for (DiagOptions o : {DiagOptions{false, false}, DiagOptions{true, true}}) {
      const std::string d = to_diag(*v, o);
      auto back = from_diag(d);
      ASSERT_TRUE(back) << d << ": " << back.error().message;
      EXPECT_EQ(to_hex(encode(*back)), to_hex(in)) << d;
    }
  }
}

}  // namespace
}  // namespace acekdc::cbor
