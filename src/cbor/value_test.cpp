// Tests of the owning Value tree: construction, accessors, decode/encode.
#include "cbor/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/hex.h"

namespace acekdc::cbor {
namespace {

Bytes H(std::string_view hex) { return from_hex(hex).value_or(Bytes{}); }

TEST(CborValue, ScalarsAndAccessors) {
  EXPECT_EQ(Value::integer(-1).type(), Value::Type::kNegative);
  EXPECT_EQ(Value::integer(-1).raw_uint(), 0u);
  EXPECT_EQ(Value::integer(INT64_MIN).raw_uint(), static_cast<uint64_t>(INT64_MAX));
  EXPECT_EQ(Value::integer(INT64_MIN).as_int(), INT64_MIN);
  EXPECT_EQ(Value::uint(UINT64_MAX).as_int(), std::nullopt);
  EXPECT_EQ(Value::uint(UINT64_MAX).as_uint(), UINT64_MAX);
  EXPECT_FALSE(Value::negative(UINT64_MAX).is_int());
  EXPECT_EQ(Value::text("x").as_uint(), std::nullopt);
  EXPECT_EQ(Value::text("x").as_bytes(), nullptr);
  EXPECT_EQ(*Value::text("x").as_text(), "x");
  const uint8_t b[] = {1, 2};
  EXPECT_EQ(*Value::bytes(ByteView(b)).as_bytes(), Bytes({1, 2}));
  EXPECT_TRUE(Value().is_null());
  EXPECT_TRUE(Value::null().is_null());
  EXPECT_TRUE(Value::undefined().is_undefined());
  EXPECT_EQ(Value::boolean(true).as_bool(), true);
  EXPECT_EQ(Value::null().as_bool(), std::nullopt);
  EXPECT_EQ(Value::floating(1.5).as_float(), 1.5);
  EXPECT_EQ(Value::uint(1).as_float(), std::nullopt);
  EXPECT_EQ(Value::tag(1, Value::uint(5)).tag_content()->as_uint(), 5u);
  EXPECT_EQ(Value::uint(1).tag_content(), nullptr);
  EXPECT_EQ(Value::uint(1).as_array(), nullptr);
  EXPECT_EQ(Value::uint(1).as_map(), nullptr);
}

TEST(CborValue, MapFindSetAndCopyOnWrite) {
  Value m = Value::map();
  m.set(1, Value::text("one"));
  m.set(Value::text("k"), Value::uint(2));
  m.set(1, Value::text("uno"));  // replaces
  ASSERT_EQ(m.as_map()->size(), 2u);
  EXPECT_EQ(*m.find(1)->as_text(), "uno");
  EXPECT_EQ(m.find(std::string_view("k"))->as_uint(), 2u);
  EXPECT_EQ(m.find(7), nullptr);
  EXPECT_EQ(Value::uint(1).find(1), nullptr);
  Value copy = m;
  copy.set(2, Value::null());
  EXPECT_EQ(m.as_map()->size(), 2u);  // the original is unchanged
  EXPECT_EQ(copy.as_map()->size(), 3u);
  Value a = Value::array();
  a.push(Value::uint(1));
  Value a2 = a;
  a2.push(Value::uint(2));
  EXPECT_EQ(a.as_array()->size(), 1u);
  EXPECT_EQ(a2.as_array()->size(), 2u);
}

TEST(CborValue, DecodeEncodeKeepsEncodingChoices) {
  for (const char* hex : {"5f42010243030405ff", "7f657374726561646d696e67ff", "9f018202039f0405ffff",
                          "bf61610161629f0203ffff", "fa3f800000", "fb3ff0000000000000", "f93c00",
                          "5fff", "7f60ff", "c249010000000000000000", "f97e01", "fa7fc00001"}) {
    auto v = decode(H(hex));
    ASSERT_TRUE(v) << hex;
    EXPECT_EQ(to_hex(encode(*v)), hex);
  }
}

TEST(CborValue, DeterministicEncoding) {
  auto v = decode(H("bf 6161 01 20 02 0a 03 5f4101ff 04 fa3f800000 05 ff"));
  ASSERT_TRUE(v);
  EncodeOptions det;
  det.deterministic = true;
  // Keys sorted bytewise by encoding: 0a, 20, 4101, 6161, fa3f800000 -> f93c00.
  EXPECT_EQ(to_hex(encode(*v, det)), "a50a032002410104616101f93c0005");
  Limits strict;
  strict.deterministic = true;
  EXPECT_TRUE(decode(encode(*v, det), strict));
  // Non-deterministic encoding keeps the order and indefinite forms.
  EXPECT_EQ(to_hex(encode(*v)), "bf61610120020a035f4101ff04fa3f80000005ff");
}

TEST(CborValue, FloatWidths) {
  // A width that cannot hold the value exactly widens to the next that can.
  EXPECT_EQ(to_hex(encode(Value::floating(1.1, Value::FloatWidth::kHalf))), "fb3ff199999999999a");
  EXPECT_EQ(to_hex(encode(Value::floating(100000.0, Value::FloatWidth::kHalf))), "fa47c35000");
  EXPECT_EQ(to_hex(encode(Value::floating(1.0, Value::FloatWidth::kDouble))), "fb3ff0000000000000");
  EXPECT_EQ(to_hex(encode(Value::floating(1.0))), "f93c00");
  EXPECT_EQ(to_hex(encode(Value::floating(NAN))), "f97e00");
  EXPECT_EQ(to_hex(encode(Value::floating(NAN, Value::FloatWidth::kDouble))), "fb7ff8000000000000");
  EXPECT_EQ(Value::floating(1.0), Value::floating(1.0, Value::FloatWidth::kHalf));
  EXPECT_FALSE(Value::floating(1.0) == Value::floating(1.0, Value::FloatWidth::kSingle));
  EXPECT_FALSE(Value::floating(0.0) == Value::floating(-0.0));
}

TEST(CborValue, DecodeErrors) {
  EXPECT_EQ(decode(H("0000")).error(), Error::kTrailingBytes);
  EXPECT_EQ(decode(H("5b1000000000000000")).error(), Error::kTooLarge);
  EXPECT_EQ(decode(H("9a00100000")).error(), Error::kTruncated);
  EXPECT_EQ(decode(H("ff")).error(), Error::kMalformed);
  Limits lim;
  lim.max_depth = 2;
  EXPECT_EQ(decode(H("818181 00"), lim).error(), Error::kTooDeep);
  lim.reject_duplicate_keys = true;
  EXPECT_EQ(decode(H("a201020103"), lim).error(), Error::kDuplicateKey);
  size_t used = 0;
  auto v = decode_prefix(H("8201020304"), used);
  ASSERT_TRUE(v);
  EXPECT_EQ(used, 3u);
}

TEST(CborValue, Equality) {
  auto a = decode(H("5f42010243030405ff"));
  auto b = decode(H("5f41014402030405ff"));
  auto c = decode(H("450102030405"));
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(*a == *b);  // different chunking
  EXPECT_FALSE(*a == *c);  // definite vs indefinite
  auto a2 = decode(H("5f42010243030405ff"));
  EXPECT_TRUE(*a == *a2);
  EXPECT_TRUE(Value::tag(2, Value::uint(1)) == Value::tag(2, Value::uint(1)));
  EXPECT_FALSE(Value::tag(2, Value::uint(1)) == Value::tag(3, Value::uint(1)));
}

}  // namespace
}  // namespace acekdc::cbor
