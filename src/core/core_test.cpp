#include <gtest/gtest.h>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/expected.h"
#include "core/hex.h"
#include "core/random.h"
#include "core/reader.h"
#include "core/writer.h"

using namespace acekdc;

TEST(Reader, ReadsBigEndianAndPoisonsOnShortRead) {
  const uint8_t buf[] = {0x01, 0x02, 0x03, 0x04, 0x05};
  Reader r{ByteView(buf)};
  uint16_t a;
  ASSERT_TRUE(r.read_u16(a));
  EXPECT_EQ(a, 0x0102);
  uint32_t b;
  EXPECT_FALSE(r.read_u32(b));  // only 3 left
  EXPECT_FALSE(r.ok());
  uint8_t c;
  EXPECT_FALSE(r.read_u8(c));  // poisoned: even a 1-byte read fails now
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Reader, SubReaderAndFinish) {
  const uint8_t buf[] = {0x02, 0xaa, 0xbb, 0xcc};
  Reader r{ByteView(buf)};
  uint8_t len;
  Reader inner;
  ASSERT_TRUE(r.read_u8(len));
  ASSERT_TRUE(r.sub(len, inner));
  EXPECT_EQ(inner.remaining(), 2u);
  EXPECT_FALSE(r.finish());  // one trailing byte
  ASSERT_TRUE(r.skip(1));
  EXPECT_TRUE(r.finish());
  uint64_t v;
  Reader r2{ByteView(buf)};
  EXPECT_FALSE(r2.read_uint_be(9, v));
}

TEST(Writer, FixedBufferFailsWhenFull) {
  uint8_t buf[3];
  Writer w{MutableByteView(buf)};
  EXPECT_TRUE(w.put_u16(0xabcd));
  EXPECT_FALSE(w.put_u16(0x1234));
  EXPECT_FALSE(w.ok());
  EXPECT_TRUE(w.written().empty());
}

TEST(Writer, VectorGrows) {
  Bytes out{0x00};
  Writer w(out);
  w.put_u32(0x01020304);
  w.put_uint_be(0x0506, 2);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(to_hex(out), "00010203040506");
}

TEST(Hex, RoundTripAndRejects) {
  auto b = from_hex("DE ad:bE\nef");
  ASSERT_TRUE(b);
  EXPECT_EQ(to_hex(*b), "deadbeef");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

enum class E { kBad };
static Expected<int, E> half(int x) {
  if (x % 2) return unexpected(E::kBad);
  return x / 2;
}
static Expected<void, E> chain(int x) {
  ACEKDC_TRY(half(x));
  return {};
}

TEST(Expected, ValueAndError) {
  auto a = half(4);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 2);
  auto b = half(3);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), E::kBad);
  EXPECT_TRUE(chain(2));
  EXPECT_FALSE(chain(1));
}

TEST(Random, FakeIsDeterministicAndUniformBounded) {
  FakeRandom a(7), b(7), c(8);
  EXPECT_EQ(a.bytes(16), b.bytes(16));
  EXPECT_NE(a.bytes(16), c.bytes(16));
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.uniform(10), 10u);
  SystemRandom s;
  EXPECT_NE(s.bytes(32), s.bytes(32));
}

TEST(Clock, FakeClockAdvances) {
  FakeClock c(1000);
  auto t0 = c.now();
  c.advance(std::chrono::seconds(5));
  EXPECT_EQ(c.now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(c.unix_time(), 1005);
}

TEST(Bytes, ConstantTimeEqual) {
  Bytes a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, Bytes{1, 2}));
}
