// Tests of the strict pull Decoder, validate()/item_size() and the Encoder.
#include "cbor/cbor.h"

#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>

#include "core/hex.h"

namespace acekdc::cbor {
namespace {

// H decodes hex into storage that lives for the whole test program, so that a
// Decoder may be constructed directly over H("...").
ByteView H(std::string_view hex) {
  static std::deque<Bytes> keep;
  auto b = from_hex(hex);
  EXPECT_TRUE(b.has_value()) << hex;
  keep.push_back(b.value_or(Bytes{}));
  return keep.back();
}

Error validate_error(ByteView in, const Limits& lim = {}) {
  auto r = validate(in, lim);
  return r ? Error::kNone : r.error();
}

const std::map<std::string, Error>& error_names() {
  static const std::map<std::string, Error> m = {
      {"kTruncated", Error::kTruncated},     {"kMalformed", Error::kMalformed},
      {"kTypeMismatch", Error::kTypeMismatch}, {"kOverflow", Error::kOverflow},
      {"kTooDeep", Error::kTooDeep},         {"kTooLarge", Error::kTooLarge},
      {"kNonDeterministic", Error::kNonDeterministic}, {"kIndefinite", Error::kIndefinite},
      {"kInvalidUtf8", Error::kInvalidUtf8}, {"kDuplicateKey", Error::kDuplicateKey},
      {"kTrailingBytes", Error::kTrailingBytes},
  };
  return m;
}

TEST(CborValidate, Rfc8949AppendixFMalformed) {
  std::ifstream f(ACEKDC_SOURCE_DIR "/src/cbor/testdata/malformed.txt");
  ASSERT_TRUE(f.good());
  Limits lim;
  lim.max_length = std::numeric_limits<uint64_t>::max();
  std::string line;
  int count = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string hex, name;
    ls >> hex >> name;
    ASSERT_TRUE(error_names().count(name)) << line;
    const Error want = error_names().at(name);
    const ByteView in = H(hex);
    EXPECT_EQ(validate_error(in, lim), want) << hex;
    EXPECT_FALSE(item_size(in, lim)) << hex;
    // The pull decoder's skip() agrees.
    Decoder d(in, lim);
    EXPECT_FALSE(d.skip()) << hex;
    EXPECT_EQ(d.error(), want) << hex;
    ++count;
  }
  EXPECT_EQ(count, 94);  // every non-comment line of the file
}

TEST(CborValidate, WellFormedExamples) {
  for (const char* hex : {"00", "1bffffffffffffffff", "3bffffffffffffffff", "5f42010243030405ff",
                          "7f657374726561646d696e67ff", "9f018202039f0405ffff", "bf61610161629f0203ffff",
                          "c249010000000000000000", "f820", "f8ff", "fb7ff8000000000000", "5fff",
                          "7fff", "9fff", "bfff", "a0", "80", "40", "60", "f97e00", "1800"}) {
    EXPECT_EQ(validate_error(H(hex)), Error::kNone) << hex;
  }
}

TEST(CborValidate, TrailingBytes) {
  EXPECT_EQ(validate_error(H("0000")), Error::kTrailingBytes);
  auto n = item_size(H("8101ff"));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  Decoder d(H("0102"));
  uint64_t v;
  EXPECT_TRUE(d.read_uint(v));
  EXPECT_FALSE(d.at_end());
  EXPECT_FALSE(d.finish());
  EXPECT_EQ(d.error(), Error::kTrailingBytes);
}

TEST(CborValidate, HugeDeclaredLengthDoesNotAllocate) {
  // 2^60 byte string, 2^60 element array, 2^60 pair map: rejected up front.
  for (const char* hex : {"5b1000000000000000", "7b1000000000000000", "9b1000000000000000",
                          "bb1000000000000000"}) {
    EXPECT_EQ(validate_error(H(hex)), Error::kTooLarge) << hex;
    Limits unlimited;
    unlimited.max_length = std::numeric_limits<uint64_t>::max();
    EXPECT_EQ(validate_error(H(hex), unlimited), Error::kTruncated) << hex;
  }
  Decoder d(H("5b1000000000000000"));
  ByteView b;
  EXPECT_FALSE(d.read_bstr(b));
  EXPECT_EQ(d.error(), Error::kTooLarge);
  Limits unlimited;
  unlimited.max_length = std::numeric_limits<uint64_t>::max();
  Decoder d2(H("9b100000000000000001"), unlimited);
  uint64_t count;
  EXPECT_FALSE(d2.read_array(count));
  EXPECT_EQ(d2.error(), Error::kTruncated);
  // A small configured limit.
  Limits small;
  small.max_length = 3;
  EXPECT_EQ(validate_error(H("4401020304"), small), Error::kTooLarge);
  EXPECT_EQ(validate_error(H("43010203"), small), Error::kNone);
  EXPECT_EQ(validate_error(H("8401020304"), small), Error::kTooLarge);
  EXPECT_EQ(validate_error(H("9f01020304ff"), small), Error::kTooLarge);
  EXPECT_EQ(validate_error(H("5f420102420304ff"), small), Error::kTooLarge);
}

TEST(CborValidate, DepthLimit) {
  Limits lim;
  lim.max_depth = 4;
  EXPECT_EQ(validate_error(H("8181818100"), lim), Error::kNone);
  EXPECT_EQ(validate_error(H("818181818100"), lim), Error::kTooDeep);
  EXPECT_EQ(validate_error(H("c1c1c1c100"), lim), Error::kNone);
  EXPECT_EQ(validate_error(H("c1c1c1c1c100"), lim), Error::kTooDeep);
  EXPECT_EQ(validate_error(H("a101a101a101a10100"), lim), Error::kNone);
  EXPECT_EQ(validate_error(H("a101a101a101a101a10100"), lim), Error::kTooDeep);
  // Default limit (32) against a deep input does not overflow the stack.
  Bytes deep(100000, 0x81);
  deep.push_back(0);
  EXPECT_EQ(validate_error(deep), Error::kTooDeep);
  Decoder d(deep);
  EXPECT_FALSE(d.skip());
  EXPECT_EQ(d.error(), Error::kTooDeep);
}

TEST(CborValidate, Utf8) {
  EXPECT_EQ(validate_error(H("62c3bc")), Error::kNone);
  EXPECT_EQ(validate_error(H("64f0908591")), Error::kNone);
  EXPECT_EQ(validate_error(H("61ff")), Error::kInvalidUtf8);
  EXPECT_EQ(validate_error(H("62c0af")), Error::kInvalidUtf8);      // overlong '/'
  EXPECT_EQ(validate_error(H("63eda080")), Error::kInvalidUtf8);    // surrogate D800
  EXPECT_EQ(validate_error(H("64f4908080")), Error::kInvalidUtf8);  // above U+10FFFF
  EXPECT_EQ(validate_error(H("61c3")), Error::kInvalidUtf8);        // cut sequence
  EXPECT_EQ(validate_error(H("7f61c361bcff")), Error::kInvalidUtf8);  // split across chunks
  Limits lax;
  lax.check_utf8 = false;
  EXPECT_EQ(validate_error(H("61ff"), lax), Error::kNone);
  Decoder d(H("61ff"));
  std::string_view s;
  EXPECT_FALSE(d.read_tstr(s));
  EXPECT_EQ(d.error(), Error::kInvalidUtf8);
}

TEST(CborValidate, IndefiniteNotAllowed) {
  Limits lim;
  lim.allow_indefinite = false;
  for (const char* hex : {"5fff", "7fff", "9fff", "bfff", "819fff"})
    EXPECT_EQ(validate_error(H(hex), lim), Error::kIndefinite) << hex;
}

TEST(CborValidate, DuplicateKeys) {
  Limits lim;
  lim.reject_duplicate_keys = true;
  EXPECT_EQ(validate_error(H("a201020103"), lim), Error::kDuplicateKey);
  EXPECT_EQ(validate_error(H("a3616101616202616103"), lim), Error::kDuplicateKey);
  EXPECT_EQ(validate_error(H("a201020304"), lim), Error::kNone);
  EXPECT_EQ(validate_error(H("a2030401 02"), lim), Error::kNone);  // unsorted is fine here
  EXPECT_EQ(validate_error(H("bf01020103ff"), lim), Error::kDuplicateKey);
  EXPECT_EQ(validate_error(H("a201020103")), Error::kNone);  // not checked by default
  // 0 and 0x1800 are the same key: a key not in preferred form cannot be compared by
  // its bytes, so it is refused (found by fuzz_cwt: a claims set that decoded, but whose
  // preferred re-encoding then held a duplicate).
  EXPECT_EQ(validate_error(H("a200001800 01"), lim), Error::kNonDeterministic);
  EXPECT_EQ(validate_error(H("a1a200001800 0101"), lim), Error::kNonDeterministic);
  EXPECT_EQ(validate_error(H("a17f6161ff01"), lim), Error::kNonDeterministic);  // indefinite key
  EXPECT_EQ(validate_error(H("a200001800 01")), Error::kNone);  // fine when not checking
}

TEST(CborValidate, DeterministicRejections) {
  Limits det;
  det.deterministic = true;
  struct Case {
    const char* hex;
    Error want;
  } cases[] = {
      {"1817", Error::kNonDeterministic},          // 23 with a 1-byte argument
      {"190017", Error::kNonDeterministic},        // 2-byte argument for a small value
      {"1a0000ffff", Error::kNonDeterministic},    //
      {"1b00000000ffffffff", Error::kNonDeterministic},
      {"3817", Error::kNonDeterministic},          // negative
      {"5800", Error::kNonDeterministic},          // length argument
      {"980100", Error::kNonDeterministic},        // count argument
      {"d80100", Error::kNonDeterministic},        // tag argument
      {"5fff", Error::kNonDeterministic},          // indefinite lengths
      {"7fff", Error::kNonDeterministic},
      {"9fff", Error::kNonDeterministic},
      {"bfff", Error::kNonDeterministic},
      {"fa3f800000", Error::kNonDeterministic},    // 1.0 as single
      {"fb3ff0000000000000", Error::kNonDeterministic},  // 1.0 as double
      {"fb3ff199999999999a", Error::kNone},        // 1.1 needs double
      {"fa47c35000", Error::kNone},                // 100000.0 needs single
      {"fa7fc00000", Error::kNonDeterministic},    // NaN must be f97e00
      {"f97e01", Error::kNonDeterministic},
      {"f97e00", Error::kNone},
      {"f97c00", Error::kNone},
      {"a2020101 02", Error::kNonDeterministic},   // keys 2, 1 unsorted
      {"a201020103", Error::kDuplicateKey},        // key 1 twice
      {"a201020203", Error::kNone},
      {"a2616101181802", Error::kNonDeterministic},  // {"a": 1, 24: 2}: 0x61.. > 0x18..
      {"a21818016161 02", Error::kNone},             // {24: 1, "a": 2}: bytewise sorted
      {"a220010a02", Error::kNonDeterministic},    // -1 (0x20) before 10 (0x0a): unsorted
      {"a20a012002", Error::kNone},
      {"81a2020101 02", Error::kNonDeterministic},  // nested
      {"1818", Error::kNone},
      {"f820", Error::kNone},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(validate_error(H(c.hex), det), c.want) << c.hex;
    if (c.want != Error::kNone) {
      EXPECT_EQ(validate_error(H(c.hex)), Error::kNone) << c.hex;
    }
  }
  // The pull decoder in deterministic mode checks a whole item before reading into it.
  Decoder d(H("a2020101 02"), det);
  uint64_t count;
  EXPECT_FALSE(d.read_map(count));
  EXPECT_EQ(d.error(), Error::kNonDeterministic);
  Decoder d2(H("1817"), det);
  uint64_t v;
  EXPECT_FALSE(d2.read_uint(v));
  EXPECT_EQ(d2.error(), Error::kNonDeterministic);
  Decoder d3(H("a201820203020a"), det);
  EXPECT_TRUE(d3.read_map(count));
  EXPECT_TRUE(d3.read_uint(v));
  EXPECT_TRUE(d3.read_array(count));
  EXPECT_TRUE(d3.read_uint(v) && d3.read_uint(v));
  EXPECT_TRUE(d3.read_uint(v) && d3.read_uint(v));
  EXPECT_TRUE(d3.finish());
}

// ---------------------------------------------------------------- Decoder API

TEST(CborDecoder, ReadUint) {
  Decoder d(H("001818190100 1a00010000 1bffffffffffffffff"));
  uint64_t v;
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, 24u);
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, 256u);
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, 65536u);
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(d.finish());

  Decoder m(H("20"));
  EXPECT_FALSE(m.read_uint(v));
  EXPECT_EQ(m.error(), Error::kTypeMismatch);
}

TEST(CborDecoder, ReadInt) {
  Decoder d(H("1b7fffffffffffffff 3b7fffffffffffffff 20 17"));
  int64_t v;
  ASSERT_TRUE(d.read_int(v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(d.read_int(v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(d.read_int(v));
  EXPECT_EQ(v, -1);
  ASSERT_TRUE(d.read_int(v));
  EXPECT_EQ(v, 23);
  EXPECT_TRUE(d.finish());

  Decoder big(H("1b8000000000000000"));  // 2^63
  EXPECT_FALSE(big.read_int(v));
  EXPECT_EQ(big.error(), Error::kOverflow);
  Decoder small(H("3b8000000000000000"));  // -2^63 - 1
  EXPECT_FALSE(small.read_int(v));
  EXPECT_EQ(small.error(), Error::kOverflow);
  Decoder t(H("40"));
  EXPECT_FALSE(t.read_int(v));
  EXPECT_EQ(t.error(), Error::kTypeMismatch);
}

TEST(CborDecoder, ReadNegative) {
  Decoder d(H("3bffffffffffffffff 20"));
  uint64_t n;
  ASSERT_TRUE(d.read_negative(n));
  EXPECT_EQ(n, std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(d.read_negative(n));
  EXPECT_EQ(n, 0u);
  Decoder m(H("01"));
  EXPECT_FALSE(m.read_negative(n));
  EXPECT_EQ(m.error(), Error::kTypeMismatch);
}

TEST(CborDecoder, ReadStrings) {
  Decoder d(H("4401020304 6449455446 40 60"));
  ByteView b;
  std::string_view s;
  ASSERT_TRUE(d.read_bstr(b));
  EXPECT_EQ(to_hex(b), "01020304");
  ASSERT_TRUE(d.read_tstr(s));
  EXPECT_EQ(s, "IETF");
  ASSERT_TRUE(d.read_bstr(b));
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(d.read_tstr(s));
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(d.finish());

  Decoder m(H("6161"));
  EXPECT_FALSE(m.read_bstr(b));
  EXPECT_EQ(m.error(), Error::kTypeMismatch);
  Decoder m2(H("4161"));
  EXPECT_FALSE(m2.read_tstr(s));
  EXPECT_EQ(m2.error(), Error::kTypeMismatch);
  Decoder i(H("5f41 01ff"));
  EXPECT_FALSE(i.read_bstr(b));
  EXPECT_EQ(i.error(), Error::kIndefinite);
  Decoder t(H("4301"));
  EXPECT_FALSE(t.read_bstr(b));
  EXPECT_EQ(t.error(), Error::kTruncated);
}

TEST(CborDecoder, ReadContainers) {
  Decoder d(H("8301 a1 0102 9f ff 0203"));
  uint64_t count, v;
  bool indef;
  ASSERT_TRUE(d.read_array(count));
  EXPECT_EQ(count, 3u);
  ASSERT_TRUE(d.read_uint(v));
  ASSERT_TRUE(d.read_map(count));
  EXPECT_EQ(count, 1u);
  ASSERT_TRUE(d.read_uint(v) && d.read_uint(v));
  ASSERT_TRUE(d.read_array_any(count, indef));
  EXPECT_TRUE(indef);
  EXPECT_TRUE(d.next_is_break());
  ASSERT_TRUE(d.read_break());
  ASSERT_TRUE(d.read_uint(v) && d.read_uint(v));
  EXPECT_TRUE(d.finish());

  Decoder m(H("a0"));
  EXPECT_FALSE(m.read_array(count));
  EXPECT_EQ(m.error(), Error::kTypeMismatch);
  Decoder i(H("9fff"));
  EXPECT_FALSE(i.read_array(count));
  EXPECT_EQ(i.error(), Error::kIndefinite);
  Decoder im(H("bf0102ff"));
  ASSERT_TRUE(im.read_map_any(count, indef));
  EXPECT_TRUE(indef);
  ASSERT_TRUE(im.read_uint(v) && im.read_uint(v));
  EXPECT_FALSE(im.read_uint(v));  // break is not an item
  EXPECT_EQ(im.error(), Error::kTypeMismatch);
  Decoder dm(H("a10102"));
  ASSERT_TRUE(dm.read_map_any(count, indef));
  EXPECT_FALSE(indef);
  EXPECT_EQ(count, 1u);
  Decoder stray(H("ff"));
  EXPECT_FALSE(stray.read_break());  // no open indefinite container
  EXPECT_EQ(stray.error(), Error::kMalformed);
  Decoder noitems(H("8301"));  // count above the remaining input
  EXPECT_FALSE(noitems.read_array(count));
  EXPECT_EQ(noitems.error(), Error::kTruncated);
}

TEST(CborDecoder, ReadTagSimpleFloat) {
  Decoder d(H("c249 010000000000000000 f4 f5 f6 f7 f0 f8ff f93e00 fa47c35000 fb3ff199999999999a"));
  uint64_t tag;
  ByteView b;
  bool bv;
  uint8_t sv;
  double f;
  ASSERT_TRUE(d.read_tag(tag));
  EXPECT_EQ(tag, 2u);
  ASSERT_TRUE(d.read_bstr(b));
  ASSERT_TRUE(d.read_bool(bv));
  EXPECT_FALSE(bv);
  ASSERT_TRUE(d.read_bool(bv));
  EXPECT_TRUE(bv);
  EXPECT_TRUE(d.next_is_null());
  ASSERT_TRUE(d.read_null());
  ASSERT_TRUE(d.read_undefined());
  ASSERT_TRUE(d.read_simple(sv));
  EXPECT_EQ(sv, 16);
  ASSERT_TRUE(d.read_simple(sv));
  EXPECT_EQ(sv, 255);
  ASSERT_TRUE(d.read_float(f));
  EXPECT_EQ(f, 1.5);
  ASSERT_TRUE(d.read_float(f));
  EXPECT_EQ(f, 100000.0);
  ASSERT_TRUE(d.read_float(f));
  EXPECT_EQ(f, 1.1);
  EXPECT_TRUE(d.finish());

  Decoder m1(H("f6"));
  EXPECT_FALSE(m1.read_bool(bv));
  EXPECT_EQ(m1.error(), Error::kTypeMismatch);
  Decoder m2(H("f4"));
  EXPECT_FALSE(m2.read_null());
  EXPECT_EQ(m2.error(), Error::kTypeMismatch);
  Decoder m3(H("01"));
  EXPECT_FALSE(m3.read_float(f));
  EXPECT_EQ(m3.error(), Error::kTypeMismatch);
  Decoder m4(H("f93c00"));
  EXPECT_FALSE(m4.read_simple(sv));
  EXPECT_EQ(m4.error(), Error::kTypeMismatch);
  Decoder m5(H("f81f"));
  EXPECT_FALSE(m5.read_simple(sv));
  EXPECT_EQ(m5.error(), Error::kMalformed);
  Decoder m6(H("01"));
  EXPECT_FALSE(m6.read_tag(tag));
  EXPECT_EQ(m6.error(), Error::kTypeMismatch);
  Decoder m7(H("f6"));
  EXPECT_FALSE(m7.read_undefined());
  EXPECT_EQ(m7.error(), Error::kTypeMismatch);

  Decoder nan(H("f97e00 f9fc00 f90001"));
  ASSERT_TRUE(nan.read_float(f));
  EXPECT_TRUE(std::isnan(f));
  ASSERT_TRUE(nan.read_float(f));
  EXPECT_EQ(f, -INFINITY);
  ASSERT_TRUE(nan.read_float(f));
  EXPECT_EQ(f, 5.960464477539063e-08);
}

TEST(CborDecoder, PoisonAfterFailure) {
  Decoder d(H("20 01 02"));
  uint64_t v;
  int64_t i;
  EXPECT_FALSE(d.read_uint(v));  // -1 is not unsigned
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.error(), Error::kTypeMismatch);
  // Every later read fails, even one that would have matched; the first error stays.
  EXPECT_FALSE(d.read_int(i));
  EXPECT_FALSE(d.skip());
  EXPECT_FALSE(d.at_end());
  EXPECT_FALSE(d.finish());
  EXPECT_TRUE(d.rest().empty());
  Major m;
  EXPECT_FALSE(d.peek_major(m));
  EXPECT_EQ(d.error(), Error::kTypeMismatch);

  Decoder s(H("0102"));
  EXPECT_TRUE(s.read_uint(v));
  EXPECT_FALSE(s.fail(Error::kOverflow));
  EXPECT_FALSE(s.read_uint(v));
  EXPECT_EQ(s.error(), Error::kOverflow);
}

TEST(CborDecoder, SkipAndReadItem) {
  Decoder d(H("a26161016162820203 9f0102ff 05"));
  ByteView item;
  Major m;
  ASSERT_TRUE(d.peek_major(m));
  EXPECT_EQ(m, Major::kMap);
  ASSERT_TRUE(d.read_item(item));
  EXPECT_EQ(to_hex(item), "a26161016162820203");
  EXPECT_TRUE(d.next_is(Major::kArray));
  ASSERT_TRUE(d.skip());
  uint64_t v;
  ASSERT_TRUE(d.read_uint(v));
  EXPECT_EQ(v, 5u);
  EXPECT_TRUE(d.at_end());
  EXPECT_TRUE(d.finish());
  Decoder e(H(""));
  EXPECT_FALSE(e.skip());
  EXPECT_EQ(e.error(), Error::kTruncated);
}

// ---------------------------------------------------------------- Encoder

std::string enc_hex(void (*fn)(Encoder&)) {
  Bytes out;
  Writer w(out);
  Encoder e(w);
  fn(e);
  EXPECT_TRUE(e.ok());
  return to_hex(out);
}

TEST(CborEncoder, PreferredHeads) {
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_uint(0).put_uint(23).put_uint(24).put_uint(255); }),
            "0017181818ff");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_uint(256).put_uint(65535).put_uint(65536); }),
            "19010019ffff1a00010000");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_uint(0xffffffffu).put_uint(0x100000000ull); }),
            "1affffffff1b0000000100000000");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_int(-1).put_int(-24).put_int(-25).put_int(INT64_MIN); }),
            "203738183b7fffffffffffffff");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_negative(UINT64_MAX); }), "3bffffffffffffffff");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_tag(1).put_tag(24).put_tag(55799); }), "c1d818d9d9f7");
}

TEST(CborEncoder, StringsContainersSimple) {
  EXPECT_EQ(enc_hex([](Encoder& e) {
              const uint8_t b[] = {1, 2, 3, 4};
              e.put_bstr(b).put_tstr("IETF").put_tstr("");
            }),
            "44010203046449455446"
            "60");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_array(3).put_map(1).put_array(25); }), "83a19819");
  EXPECT_EQ(enc_hex([](Encoder& e) {
              e.put_indefinite_array().put_indefinite_map().put_indefinite_bstr()
                  .put_indefinite_tstr().put_break();
            }),
            "9fbf5f7fff");
  EXPECT_EQ(enc_hex([](Encoder& e) {
              e.put_bool(false).put_bool(true).put_null().put_undefined().put_simple(16).put_simple(255);
            }),
            "f4f5f6f7f0f8ff");
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_bstr_header(300); }), "59012c");
  Bytes out;
  Writer w(out);
  Encoder bad(w);
  bad.put_simple(24);
  EXPECT_FALSE(bad.ok());
}

TEST(CborEncoder, PreferredFloats) {
  struct Case {
    double v;
    const char* hex;
  } cases[] = {
      {0.0, "f90000"},
      {-0.0, "f98000"},
      {1.0, "f93c00"},
      {1.5, "f93e00"},
      {65504.0, "f97bff"},
      {100000.0, "fa47c35000"},
      {3.4028234663852886e+38, "fa7f7fffff"},
      {1.0e+300, "fb7e37e43c8800759c"},
      {5.960464477539063e-08, "f90001"},
      {6.103515625e-05, "f90400"},
      {-4.0, "f9c400"},
      {-4.1, "fbc010666666666666"},
      {1.1, "fb3ff199999999999a"},
      {INFINITY, "f97c00"},
      {-INFINITY, "f9fc00"},
      {NAN, "f97e00"},
      {-NAN, "f97e00"},
      {65536.0, "fa47800000"},  // above half range
      {1.0 / 3.0, "fb3fd5555555555555"},
      {std::ldexp(1.0, -149), "fa00000001"},  // single subnormal
      {std::ldexp(1.0, -25), "fa33000000"},   // below half subnormal range
      {std::ldexp(3.0, -24), "f90003"},       // half subnormal
  };
  for (const auto& c : cases) {
    Bytes out;
    Writer w(out);
    Encoder e(w);
    e.put_float(c.v);
    EXPECT_EQ(to_hex(out), c.hex) << c.v;
    // And the decoder reads the same value back.
    Decoder d(out);
    double back;
    ASSERT_TRUE(d.read_float(back));
    if (std::isnan(c.v)) {
      EXPECT_TRUE(std::isnan(back));
    } else {
      EXPECT_EQ(back, c.v);
      EXPECT_EQ(std::signbit(back), std::signbit(c.v));
    }
  }
  EXPECT_EQ(enc_hex([](Encoder& e) { e.put_float32(1.0f).put_float64(1.0).put_float16_bits(0x7c00); }),
            "fa3f800000fb3ff0000000000000f97c00");
}

TEST(CborEncoder, FixedBufferOverflow) {
  std::array<uint8_t, 4> buf{};
  Writer w{MutableByteView(buf)};
  Encoder e(w);
  e.put_uint(1).put_uint(1000);
  EXPECT_TRUE(e.ok());
  e.put_uint(1000);
  EXPECT_FALSE(e.ok());
}

TEST(CborErrors, ToString) {
  for (const auto& [name, e] : error_names()) EXPECT_STRNE(to_string(e), "unknown CBOR error") << name;
  EXPECT_STREQ(to_string(Error::kTruncated), "truncated input");
}

}  // namespace
}  // namespace acekdc::cbor

namespace acekdc::cbor {
namespace {

TEST(CborValidate, LegacySimple) {
  // RFC 7049's simple(24) = f818 is not well-formed under RFC 8949.
  EXPECT_EQ(validate_error(H("f818")), Error::kMalformed);
  Limits legacy;
  legacy.allow_legacy_simple = true;
  EXPECT_EQ(validate_error(H("f818"), legacy), Error::kNone);
  EXPECT_EQ(validate_error(H("f81f"), legacy), Error::kNone);
  EXPECT_EQ(validate_error(H("f817"), legacy), Error::kMalformed);
  Decoder d(H("f818"), legacy);
  uint8_t v;
  ASSERT_TRUE(d.read_simple(v));
  EXPECT_EQ(v, 24);
}

}  // namespace
}  // namespace acekdc::cbor
