#include "coap/message.h"

#include <gtest/gtest.h>

#include "core/hex.h"

namespace acekdc::coap {
namespace {

Bytes H(std::string_view s) { return *from_hex(s); }

// RFC 7252 Appendix A, Figure 16: CON GET /temperature, MID 0x7d34, no token.
TEST(CoapMessage, Rfc7252Figure16Request) {
  Message m(Type::kCon, code::kGet, 0x7d34);
  m.set_uri_path("temperature");
  Bytes want = H("40017d34") ;
  want.push_back(0xbb);  // delta 11, length 11
  for (char c : std::string_view("temperature")) want.push_back(static_cast<uint8_t>(c));
  EXPECT_EQ(*m.encode(), want);
  auto v = MessageView::parse(want);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, Type::kCon);
  EXPECT_EQ(v->code, code::kGet);
  EXPECT_EQ(v->message_id, 0x7d34);
  EXPECT_TRUE(v->token.empty());
  ASSERT_EQ(v->num_options(), 1u);
  EXPECT_EQ(v->options()[0].number, option::kUriPath);
  EXPECT_EQ(as_string(v->options()[0].value), "temperature");
  EXPECT_TRUE(v->payload.empty());
}

// RFC 7252 Appendix A, Figure 16 response: ACK 2.05, MID 0x7d34, payload "22.3 C".
TEST(CoapMessage, Rfc7252Figure16Response) {
  Message m(Type::kAck, code::kContent, 0x7d34);
  m.set_payload("22.3 C");
  Bytes want = H("60457d34ff");
  for (char c : std::string_view("22.3 C")) want.push_back(static_cast<uint8_t>(c));
  EXPECT_EQ(*m.encode(), want);
  auto back = Message::parse(want);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
}

// RFC 7252 Appendix A, Figure 17/18: token 0x20 / 4-byte token; 2.05 with token.
TEST(CoapMessage, TokenRoundTrip) {
  Message m(Type::kCon, code::kGet, 0x7d35);
  m.token = H("20");
  m.set_uri_path("temperature");
  auto enc = *m.encode();
  EXPECT_EQ(enc[0], 0x41);
  EXPECT_EQ(enc[4], 0x20);
  Message r(Type::kAck, code::kContent, 0x7d38);
  r.token = H("4a14bc8f");
  r.set_payload("22.5 C");
  enc = *r.encode();
  EXPECT_EQ(to_hex(ByteView(enc).first(8)), "64457d384a14bc8f");
  EXPECT_EQ(*Message::parse(enc), r);
}

TEST(CoapMessage, EmptyAckAndRst) {
  Message ack(Type::kAck, code::kEmpty, 0x1234);
  EXPECT_EQ(to_hex(*ack.encode()), "60001234");
  Message rst(Type::kRst, code::kEmpty, 0xbeef);
  EXPECT_EQ(to_hex(*rst.encode()), "7000beef");
  // Empty message with anything after the header is a format error (RFC 7252 §4.1).
  EXPECT_EQ(MessageView::parse(H("6000123400")).error(), Error::kEmptyMessageNotEmpty);
  EXPECT_EQ(MessageView::parse(H("61001234aa")).error(), Error::kEmptyMessageNotEmpty);
}

TEST(CoapMessage, HeaderErrors) {
  EXPECT_EQ(MessageView::parse(H("400100")).error(), Error::kTruncated);
  EXPECT_EQ(MessageView::parse(H("80010000")).error(), Error::kBadVersion);
  EXPECT_EQ(MessageView::parse(H("49010000" "0102030405060708" "09")).error(), Error::kBadTokenLength);
  EXPECT_EQ(MessageView::parse(H("4401000001")).error(), Error::kTruncated);
  EXPECT_TRUE(MessageView::parse(H("480100000102030405060708")));
}

// RFC 7252 §3.1: delta/length 13 -> 1 extra byte minus 13, 14 -> 2 bytes minus 269, 15 reserved.
TEST(CoapMessage, ExtendedOptionEncoding) {
  Message m(Type::kNon, code::kPost, 1);
  m.add_uint(option::kSize1, 1000);                 // 60: delta 13 + 47
  m.add_option(option::kEcho, Bytes(13, 0xaa));     // 252: delta 192 -> 13 + 179, length 13 -> 13 + 0
  m.add_option(option::kRequestTag, Bytes(300, 1)); // 292: delta 40 -> 13+27; length 300 -> 14 + 31
  m.add_option(2000, {});                           // delta 1708 -> 14 + 1439
  auto enc = *m.encode();
  // first option header: delta nibble 13, length 2, ext 47, value 03e8
  EXPECT_EQ(to_hex(ByteView(enc).subspan(4, 4)), "d22f03e8");
  EXPECT_EQ(to_hex(ByteView(enc).subspan(8, 3)), "ddb300");
  EXPECT_EQ(to_hex(ByteView(enc).subspan(24, 4)), "de1b001f");
  size_t last = 4 + 4 + 3 + 13 + 4 + 300;
  EXPECT_EQ(to_hex(ByteView(enc).subspan(last, 3)), "e0059f");
  auto back = Message::parse(enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
  EXPECT_EQ(back->get_uint(option::kSize1), 1000u);
}

TEST(CoapMessage, OptionErrors) {
  // delta nibble 15 without being 0xFF marker
  EXPECT_EQ(MessageView::parse(H("40010000f1aa")).error(), Error::kReservedOptionNibble);
  // length nibble 15
  EXPECT_EQ(MessageView::parse(H("400100001f")).error(), Error::kReservedOptionNibble);
  // extended delta truncated
  EXPECT_EQ(MessageView::parse(H("40010000d0")).error(), Error::kTruncated);
  EXPECT_EQ(MessageView::parse(H("40010000e000")).error(), Error::kTruncated);
  // value truncated
  EXPECT_EQ(MessageView::parse(H("40010000b4616263")).error(), Error::kTruncated);
  EXPECT_EQ(MessageView::parse(H("40010000b3616263")).has_value(), true);
  // payload marker with empty payload
  EXPECT_EQ(MessageView::parse(H("40010000ff")).error(), Error::kPayloadMarkerNoPayload);
  // option number overflow: 65535 + 1
  EXPECT_EQ(MessageView::parse(H("40010000e0fef2" "e00000")).error(), Error::kOptionNumberOverflow);
  EXPECT_TRUE(MessageView::parse(H("40010000e0fef2")));
}

TEST(CoapMessage, TooManyOptions) {
  Message m(Type::kCon, code::kGet, 1);
  for (int i = 0; i < 10; ++i) m.add_string(option::kUriPath, "a");
  auto enc = *m.encode();
  EXPECT_TRUE(MessageView::parse(enc, ParseLimits{10}));
  EXPECT_EQ(MessageView::parse(enc, ParseLimits{9}).error(), Error::kTooManyOptions);
  Message big(Type::kCon, code::kGet, 1);
  for (size_t i = 0; i < kMaxOptions + 1; ++i) big.add_string(option::kUriPath, "a");
  EXPECT_EQ(MessageView::parse(*big.encode()).error(), Error::kTooManyOptions);
}

TEST(CoapMessage, OptionOrderAndEditing) {
  Message m(Type::kCon, code::kGet, 1);
  m.add_uri_query("a=1&b=2");
  m.set_uri_path("/seg1/seg2/seg3");
  m.add_uint(option::kObserve, 0);
  m.add_uint(option::kAccept, 60);
  std::vector<uint16_t> nums;
  for (auto& o : m.options()) nums.push_back(o.number);
  EXPECT_EQ(nums, (std::vector<uint16_t>{6, 11, 11, 11, 15, 15, 17}));
  EXPECT_EQ(m.uri_path(), "/seg1/seg2/seg3");
  EXPECT_EQ(m.find(option::kObserve)->value.size(), 0u);  // uint 0 is empty
  EXPECT_EQ(m.remove(option::kUriPath), 3u);
  EXPECT_EQ(m.uri_path(), "");
  m.set_uint(option::kAccept, 0);
  EXPECT_EQ(m.get_uint(option::kAccept), 0u);
  EXPECT_EQ(m.all(option::kUriQuery).size(), 2u);
}

TEST(CoapMessage, InnerEncoding) {
  // RFC 8613 §5.3 plaintext: code, options, payload.
  Message m(Type::kCon, code::kGet, 7);
  m.set_uri_path("tv1");
  auto inner = *m.encode_inner();
  EXPECT_EQ(to_hex(inner), "01b3747631");
  auto back = Message::parse_inner(inner);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->code, code::kGet);
  EXPECT_EQ(back->uri_path(), "/tv1");
  Message r(Type::kAck, code::kContent, 0);
  r.set_payload("Hello World!");
  EXPECT_EQ(to_hex(*r.encode_inner()), "45ff48656c6c6f20576f726c6421");
}

TEST(CoapMessage, FixedBufferEncode) {
  Message m(Type::kCon, code::kGet, 1);
  m.set_uri_path("temperature");
  uint8_t buf[10];
  Writer w{MutableByteView(buf)};
  EXPECT_EQ(m.encode_into(w).error(), Error::kBufferTooSmall);
  uint8_t big[64];
  Writer w2{MutableByteView(big)};
  ASSERT_TRUE(m.encode_into(w2));
  EXPECT_EQ(w2.size(), 16u);
}

TEST(CoapMessage, UintCodec) {
  uint8_t b[4];
  EXPECT_EQ(encode_uint(0, b), 0u);
  EXPECT_EQ(encode_uint(255, b), 1u);
  EXPECT_EQ(encode_uint(256, b), 2u);
  EXPECT_EQ(encode_uint(0x1000000, b), 4u);
  EXPECT_EQ(decode_uint(H("0102")), 0x102u);
  EXPECT_EQ(decode_uint(H("0102030405")), std::nullopt);
}

// RFC 7959 §2.2: NUM/M/SZX; Figure 2 example values.
TEST(CoapMessage, Rfc7959BlockValues) {
  auto b = BlockValue::decode(H("0a"));  // 0/1/64
  ASSERT_TRUE(b);
  EXPECT_EQ(b->num, 0u);
  EXPECT_TRUE(b->more);
  EXPECT_EQ(b->size(), 64u);
  b = BlockValue::decode(H("2a"));  // 2/1/64
  EXPECT_EQ(b->num, 2u);
  EXPECT_EQ(b->offset(), 128u);
  b = BlockValue::decode(H("0156"));  // 21/0/1024
  EXPECT_EQ(b->num, 21u);
  EXPECT_FALSE(b->more);
  EXPECT_EQ(b->size(), 1024u);
  EXPECT_EQ((BlockValue{21, false, 6}.encode()), 0x156u);
  EXPECT_FALSE(BlockValue::decode(H("0f")));        // szx 7 reserved
  EXPECT_FALSE(BlockValue::decode(H("01020304")));  // > 3 bytes
  EXPECT_TRUE(BlockValue::decode({}));               // empty = 0/0/16
  EXPECT_EQ(BlockValue::szx_for_size(1024), 6);
  EXPECT_EQ(BlockValue::szx_for_size(16), 0);
  EXPECT_EQ(BlockValue::szx_for_size(100), 2);
  EXPECT_EQ(BlockValue::szx_for_size(4096), 6);
}

TEST(CoapMessage, CodeHelpers) {
  EXPECT_EQ(code_string(code::kContent), "2.05");
  EXPECT_EQ(code_string(code::kNotFound), "4.04");
  EXPECT_EQ(code_string(code::kIPatch), "iPATCH");
  EXPECT_TRUE(is_critical(option::kUriPath));
  EXPECT_FALSE(is_critical(option::kContentFormat));
  EXPECT_TRUE(is_unsafe(option::kUriHost));
  EXPECT_TRUE(is_no_cache_key(option::kSize1));
}

// Every truncation of a valid message either parses or fails cleanly (no OOB; run under ASan).
TEST(CoapMessage, EveryPrefix) {
  Message m(Type::kCon, code::kPost, 0x55aa);
  m.token = H("01020304");
  m.set_uri_path("a/bb/ccc");
  m.add_option(option::kEcho, Bytes(20, 7));
  m.set_payload("payload");
  auto enc = *m.encode();
  for (size_t n = 0; n <= enc.size(); ++n) {
    auto v = MessageView::parse(ByteView(enc).first(n));
    if (v) {
      auto re = Message::from_view(*v).encode();
      EXPECT_TRUE(re);
    }
  }
}

}  // namespace
}  // namespace acekdc::coap
