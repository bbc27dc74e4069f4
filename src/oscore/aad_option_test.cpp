// AAD (RFC 8613 §5.4) and OSCORE option value (§6.1 + key-limits draft §3.1).
#include <gtest/gtest.h>

#include "cbor/cbor.h"
#include "core/hex.h"
#include "core/writer.h"
#include "oscore/aad.h"
#include "oscore/option.h"
#include "oscore/rfc_vectors_test.h"

using namespace acekdc;
using namespace acekdc::oscore;

namespace {

Bytes H(const char* s) { return *from_hex(s); }

TEST(Aad, MatchesAppendixC4AndC5) {
  for (const char* sec : {"C.4.", "C.5.", "C.6.", "C.7.", "C.8."}) {
    auto v = test::rfc8613_section(sec);
    ASSERT_TRUE(v.count("AAD")) << sec;
    // C.4-C.6 are requests from the client with kid = Sender ID and Partial IV 0x14;
    // C.7/C.8 responses use the request's kid (empty) and Partial IV (0x14).
    Bytes kid = v.count("kid") ? v["kid"] : Bytes{};
    Bytes piv = {0x14};
    uint8_t buf[kMaxAadLen];
    auto n = build_aad(10, kid, piv, {}, buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(v["AAD"])) << sec;
    EXPECT_EQ(*n, aad_len(10, kid, piv, {}));
    auto m = build_aad_array(10, kid, piv, {}, buf);
    ASSERT_TRUE(m);
    EXPECT_EQ(to_hex(ByteView(buf, *m)), to_hex(v["aad_array"])) << sec;
  }
}

TEST(Aad, FixedBufferTooSmallAndOtherAlgs) {
  uint8_t buf[19];
  EXPECT_EQ(build_aad(10, {}, H("14"), {}, buf).error(), Error::kBufferTooSmall);
  uint8_t big[kMaxAadLen];
  // Negative / larger alg ids and class I options change the encoding lengths.
  auto n = build_aad(-100, H("0102"), H("0a0b0c"), H("aa"), big);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, aad_len(-100, H("0102"), H("0a0b0c"), H("aa")));
  EXPECT_EQ(to_hex(ByteView(big, *n)),
            "8368456e63727970743040" "4e" "8501813863420102430a0b0c41aa");
}

// build_aad writes short AADs byte by byte (one-byte CBOR heads); every
// combination around the 24-byte head boundary must equal the Enc_structure a
// generic CBOR encoder gives.
TEST(Aad, ShortPathEqualsGenericEncoding) {
  uint8_t buf[256];
  Bytes pattern(40);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(0xa0 + i);
  for (int alg : {-40, -25, -24, -8, -1, 0, 1, 10, 23, 24, 30, 33, 256}) {
    for (size_t kid_len : {0u, 1u, 7u, 13u, 14u, 15u, 23u, 24u, 30u}) {
      for (size_t piv_len : {0u, 1u, 5u}) {
        for (size_t opt_len : {0u, 2u, 23u, 24u}) {
          const ByteView kid(pattern.data(), kid_len), piv(pattern.data() + 1, piv_len),
              opts(pattern.data() + 2, opt_len);
          Bytes inner, want;
          Writer wi(inner);
          cbor::Encoder ei(wi);
          ei.put_array(5).put_uint(1).put_array(1).put_int(alg).put_bstr(kid).put_bstr(piv).put_bstr(opts);
          Writer ww(want);
          cbor::Encoder ew(ww);
          ew.put_array(3).put_tstr("Encrypt0").put_bstr({}).put_bstr(inner);
          auto n = build_aad(alg, kid, piv, opts, buf);
          ASSERT_TRUE(n.has_value());
          EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(want)) << alg << " " << kid_len << " " << piv_len;
          EXPECT_EQ(*n, aad_len(alg, kid, piv, opts));
          // One byte short: refused, never truncated.
          EXPECT_EQ(build_aad(alg, kid, piv, opts, MutableByteView(buf, *n - 1)).error(), Error::kBufferTooSmall);
        }
      }
    }
  }
}

TEST(Option, AppendixCValuesRoundTrip) {
  struct Case {
    const char* sec;
    const char* piv;
    std::optional<const char*> kid;
    std::optional<const char*> ctx;
  };
  const Case cases[] = {
      {"C.4.", "14", "", std::nullopt},
      {"C.5.", "14", "00", std::nullopt},
      {"C.6.", "14", "", "37cbf3210017a2d3"},
      {"C.8.", "00", std::nullopt, std::nullopt},
  };
  for (const auto& c : cases) {
    auto v = test::rfc8613_section(c.sec);
    const Bytes& wire = v["OSCORE option value"];
    ASSERT_FALSE(wire.empty()) << c.sec;
    auto o = parse_option(wire);
    ASSERT_TRUE(o) << c.sec;
    EXPECT_EQ(to_hex(o->partial_iv), c.piv);
    ASSERT_EQ(o->kid.has_value(), c.kid.has_value());
    if (c.kid) {
      EXPECT_EQ(to_hex(*o->kid), *c.kid);
    }
    ASSERT_EQ(o->kid_context.has_value(), c.ctx.has_value());
    if (c.ctx) {
      EXPECT_EQ(to_hex(*o->kid_context), *c.ctx);
    }
    EXPECT_FALSE(o->id_detail);
    uint8_t buf[64];
    auto n = encode_option(*o, buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(to_hex(ByteView(buf, *n)), to_hex(wire)) << c.sec;
  }
  // C.7: no kid, no Partial IV -> empty value.
  auto o = parse_option({});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->partial_iv.empty());
  EXPECT_FALSE(o->kid || o->kid_context || o->id_detail);
  uint8_t buf[4];
  EXPECT_EQ(*encode_option(*o, buf), 0u);
}

TEST(Option, Section63Examples) {
  // RFC 8613 §6.3 example 1: kid 0x25, Partial IV 0x05 -> 0x090525
  const Bytes ex1 = H("090525"), ex2 = H("0900");
  auto o = parse_option(ex1);
  ASSERT_TRUE(o);
  EXPECT_EQ(to_hex(o->partial_iv), "05");
  EXPECT_EQ(to_hex(*o->kid), "25");
  // example 2: kid empty, Partial IV 0x00 -> 0x0900
  o = parse_option(ex2);
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->kid && o->kid->empty());
}

TEST(Option, IdDetailExtension) {
  const Bytes piv = H("2a"), kid = H("01"), ctx = H("37cbf321"), detail = H("00112233445566778899");
  OptionValue v;
  v.partial_iv = piv;
  v.kid = ByteView(kid);
  v.kid_context = ByteView(ctx);
  v.id_detail = ByteView(detail);
  uint8_t buf[64];
  auto n = encode_option(v, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, encoded_option_len(v));
  // flags 0x40|0x10|0x08|1, flags2 0x01, PIV, s ctx, x detail, kid
  EXPECT_EQ(to_hex(ByteView(buf, *n)), "5901" "2a" "0437cbf321" "0a00112233445566778899" "01");
  auto p = parse_option(ByteView(buf, *n));
  ASSERT_TRUE(p);
  EXPECT_EQ(to_hex(p->partial_iv), "2a");
  EXPECT_EQ(to_hex(*p->kid), "01");
  EXPECT_EQ(to_hex(*p->kid_context), "37cbf321");
  EXPECT_EQ(to_hex(*p->id_detail), "00112233445566778899");

  // id detail alone (no kid, no Partial IV): a response of the key update.
  OptionValue w;
  w.id_detail = ByteView(detail);
  n = encode_option(w, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf, *n)), "40010a00112233445566778899");
  p = parse_option(ByteView(buf, *n));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->kid);
  EXPECT_EQ(p->id_detail->size(), 10u);
  // empty id detail is representable
  Bytes none;
  w.id_detail = ByteView(none);
  n = encode_option(w, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(to_hex(ByteView(buf, *n)), "400100");
}

TEST(Option, MalformedValuesAreRejected) {
  const char* bad[] = {
      "00",          // all-zero flag byte must be sent as an empty value
      "80",          // reserved bit 0 (0x80)
      "2914",        // reserved bit 2 (0x20)
      "0e0102030405 06",  // n = 6 reserved
      "0f",          // n = 7 reserved
      "0a14",        // n = 2 but one byte
      "1914",        // h set, length byte missing
      "191405aabb",  // kid context length 5 but 2 bytes
      "011400",      // trailing bytes without k
      "40",          // extension flag without the second byte
      "4000",        // second byte with no flag set
      "4002",        // reserved bit in the second byte
      "4080",        // reserved bit in the second byte
      "400105aa",    // id detail length 5, 1 byte
      "4101",        // d set, detail length missing
  };
  for (const char* b : bad) {
    auto r = parse_option(H(b));
    EXPECT_FALSE(r) << b;
    if (!r) {
      EXPECT_EQ(r.error(), Error::kMalformedOption);
    }
  }
}

TEST(Option, EncodeRejectsOversizedFields) {
  uint8_t buf[600];
  Bytes piv(6, 1), big(256, 0);
  OptionValue v;
  v.partial_iv = piv;
  EXPECT_EQ(encode_option(v, buf).error(), Error::kInvalidArgument);
  v.partial_iv = {};
  v.kid_context = ByteView(big);
  EXPECT_EQ(encode_option(v, buf).error(), Error::kInvalidArgument);
  v.kid_context.reset();
  v.id_detail = ByteView(big);
  EXPECT_EQ(encode_option(v, buf).error(), Error::kInvalidArgument);
  Bytes kid(10, 2);
  v.id_detail.reset();
  v.kid = ByteView(kid);
  uint8_t small[5];
  EXPECT_EQ(encode_option(v, small).error(), Error::kBufferTooSmall);
}

}  // namespace
