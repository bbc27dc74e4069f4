// CoAP message codec (RFC 7252 §3, with the FETCH/PATCH/iPATCH codes of RFC 8132).
//
// API in brief
//   MessageView::parse(datagram) -> Expected<MessageView, Error>
//       Strict, allocation-free parse of one datagram. The view holds pointers
//       into `datagram` (token, option values, payload) and a fixed-capacity
//       array of up to kMaxOptions options; it must not outlive the datagram.
//   Message
//       The owning, buildable form: type, code, message_id, token, options
//       (always kept sorted by number; options with the same number keep the
//       order they were added in), payload.
//       Message::parse(datagram), Message::from_view(view)
//       encode() / encode_into(Writer&)                full datagram
//       encode_inner() / parse_inner(bytes)           code || options || 0xFF payload,
//                                                     no header and no token (the
//                                                     OSCORE plaintext, RFC 8613 §5.3)
//       add_option / add_uint / add_string / set_* / remove(number) / find(number)
//       / get_uint(number) / options() / for each `const Option&`.
//   option::k*   option numbers (aliases of cp::coap::option in core/codepoints.h)
//   code::k*     codes; code_class(), code_detail(), is_request(), is_response()
//   is_critical / is_unsafe / is_no_cache_key: option number properties (RFC 7252 §5.4.6)
//   encode_uint / decode_uint: the minimal-length uint option format (RFC 7252 §3.2)
//   BlockValue: decode/encode of Block1/Block2 option values (RFC 7959 §2.2)
#pragma once

#include <array>
#include <cstring>
#include <memory>
#include <type_traits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/codepoints.h"
#include "core/expected.h"
#include "core/writer.h"

namespace acekdc::coap {

namespace option = ::acekdc::cp::coap::option;
namespace code = ::acekdc::cp::coap::code;

// Error lists every way a CoAP message can be rejected by the codec.
enum class Error {
  kTruncated = 1,            // datagram shorter than the header / token / option says
  kBadVersion,               // version field is not 1
  kBadTokenLength,           // TKL 9..15 (reserved, RFC 7252 §3)
  kReservedOptionNibble,     // option delta or length nibble 15 without payload marker
  kPayloadMarkerNoPayload,   // 0xFF followed by nothing (RFC 7252 §3)
  kOptionNumberOverflow,     // option number beyond 65535
  kTooManyOptions,           // more options than the parser is configured for
  kEmptyMessageNotEmpty,     // code 0.00 with token, options or payload (RFC 7252 §4.1)
  kBufferTooSmall,           // encode into a fixed buffer that is too small
  kValueTooLong,             // option value longer than 65535 + 269 bytes
  kBadToken,                 // token longer than 8 bytes when building
};
const char* to_string(Error e);

enum class Type : uint8_t { kCon = 0, kNon = 1, kAck = 2, kRst = 3 };
const char* to_string(Type t);

inline constexpr size_t kMaxTokenLen = 8;
// kMaxOptions is the capacity of MessageView's option array.
inline constexpr size_t kMaxOptions = 64;

constexpr uint8_t code_class(uint8_t c) { return c >> 5; }
constexpr uint8_t code_detail(uint8_t c) { return c & 0x1f; }
constexpr bool is_request(uint8_t c) { return c >= 1 && c <= 31; }
constexpr bool is_response(uint8_t c) { return c >= 64; }
constexpr bool is_empty(uint8_t c) { return c == 0; }
// code_string formats a code as "2.05", method codes as "GET", ...
std::string code_string(uint8_t c);
// method_name returns "GET" ... "iPATCH" or nullptr for other codes.
const char* method_name(uint8_t c);
// code_name returns the registered name of a response code ("Content") or "".
const char* code_name(uint8_t c);

constexpr bool is_critical(uint16_t number) { return number & 1; }
constexpr bool is_unsafe(uint16_t number) { return number & 2; }
constexpr bool is_no_cache_key(uint16_t number) { return (number & 0x1e) == 0x1c; }
// option_name returns the registered name of an option ("Uri-Path") or nullptr.
const char* option_name(uint16_t number);
// OptionFormat is the value format of an option (RFC 7252 §3.2).
enum class OptionFormat { kEmpty, kOpaque, kUint, kString };
OptionFormat option_format(uint16_t number);
// is_known_option reports whether this implementation understands `number`.
bool is_known_option(uint16_t number);

// encode_uint writes v as a minimal big-endian uint option value (0 -> empty)
// into out (4 bytes) and returns the length used.
size_t encode_uint(uint32_t v, uint8_t out[4]);
// decode_uint reads an option value of up to 4 bytes; nullopt if longer.
std::optional<uint32_t> decode_uint(ByteView v);

struct OptionView {
  uint16_t number = 0;
  ByteView value;
};

struct Option {
  uint16_t number = 0;
  Bytes value;
  std::string_view str() const { return as_string(value); }
};

// ParseLimits: parser configuration (hard limits on untrusted input).
struct ParseLimits {
  size_t max_options = kMaxOptions;  // clamped to kMaxOptions
};

// MessageView is a parsed datagram. It never allocates and points into the
// datagram it was parsed from.
class MessageView {
 public:
  // parse checks the whole datagram (RFC 7252 §3): version 1, TKL <= 8, every
  // option's extended delta/length in bounds, nibble 15 only as the payload
  // marker, a marker followed by a non-empty payload, and an Empty message
  // (0.00) being exactly 4 bytes. On failure returns the reason; the caller
  // answers a malformed CON with RST and drops anything else (RFC 7252 §4.2-4.3).
  static Expected<MessageView, Error> parse(ByteView datagram, const ParseLimits& limits = {});
  // parse_inner parses code || options || [0xFF payload] (no header, no token).
  static Expected<MessageView, Error> parse_inner(ByteView bytes, const ParseLimits& limits = {});
  // peek_header reads type and message id from a datagram whose parse failed
  // (to send RST to a malformed CON). Returns false if shorter than 4 bytes.
  static bool peek_header(ByteView datagram, Type& out_type, uint16_t& out_message_id);

  Type type = Type::kCon;
  uint8_t code = 0;
  uint16_t message_id = 0;
  ByteView token;
  ByteView payload;

  std::span<const OptionView> options() const { return {options_, num_options_}; }
  size_t num_options() const { return num_options_; }
  // find returns the first option with `number`, or nullptr.
  const OptionView* find(uint16_t number) const;
  bool has(uint16_t number) const { return find(number) != nullptr; }
  // get_uint decodes the first option with `number` as uint (nullopt if absent or > 4 bytes).
  std::optional<uint32_t> get_uint(uint16_t number) const;
  // count returns how many options have `number`.
  size_t count(uint16_t number) const;

 private:
  static Expected<MessageView, Error> parse_options(MessageView& m, const uint8_t* p,
                                                    const uint8_t* end, const ParseLimits& limits);
  void copy_from(const MessageView& o) {
    type = o.type;
    code = o.code;
    message_id = o.message_id;
    token = o.token;
    payload = o.payload;
    num_options_ = o.num_options_;
    // OptionView is trivially copyable: memcpy creates the objects (implicit lifetime).
    if (num_options_ != 0) std::memcpy(options_, o.options_, num_options_ * sizeof(OptionView));
  }

 public:
  MessageView() {}
  // Copies copy the options in use only (not the whole kMaxOptions array): a
  // view is returned by value from every parse.
  MessageView(const MessageView& o) { copy_from(o); }
  MessageView& operator=(const MessageView& o) {
    if (this != &o) copy_from(o);
    return *this;
  }

 private:
  // Entries [0, num_options_) are set; the rest is left uninitialized.
  union {
    OptionView options_[kMaxOptions];
  };
  size_t num_options_ = 0;
};
static_assert(std::is_trivially_copyable_v<OptionView> && std::is_trivially_destructible_v<OptionView>);

// Message is the owning, mutable form used to build messages.
class Message {
 public:
  Message() = default;
  Message(Type type, uint8_t code, uint16_t message_id = 0) : type(type), code(code), message_id(message_id) {}

  Type type = Type::kCon;
  uint8_t code = 0;
  uint16_t message_id = 0;
  Bytes token;
  Bytes payload;

  static Expected<Message, Error> parse(ByteView datagram, const ParseLimits& limits = {});
  static Expected<Message, Error> parse_inner(ByteView bytes, const ParseLimits& limits = {});
  static Message from_view(const MessageView& v);

  // encode returns the datagram; fails with kBadToken / kValueTooLong.
  Expected<Bytes, Error> encode() const;
  // encode_into appends the datagram to w (fixed or growing); kBufferTooSmall if it did not fit.
  Expected<void, Error> encode_into(Writer& w) const;
  // encode_inner: code || options || [0xFF payload] (OSCORE plaintext, RFC 8613 §5.3).
  Expected<Bytes, Error> encode_inner() const;
  Expected<void, Error> encode_inner_into(Writer& w) const;

  // Options, sorted by number. add_* insert after existing options with the same number.
  const std::vector<Option>& options() const { return options_; }
  void add_option(uint16_t number, ByteView value);
  void add_uint(uint16_t number, uint32_t v);
  void add_string(uint16_t number, std::string_view s);
  // set_* replace every option with that number by one option.
  void set_option(uint16_t number, ByteView value);
  void set_uint(uint16_t number, uint32_t v);
  // remove deletes every option with `number` and returns how many were removed.
  size_t remove(uint16_t number);
  void clear_options() { options_.clear(); }
  const Option* find(uint16_t number) const;
  bool has(uint16_t number) const { return find(number) != nullptr; }
  std::optional<uint32_t> get_uint(uint16_t number) const;
  // all returns every value with `number`, in order.
  std::vector<ByteView> all(uint16_t number) const;

  // uri_path joins the Uri-Path options with '/' ("" for the root); set_uri_path
  // splits a path ("/a/b" or "a/b") into Uri-Path options. Same for Location-Path.
  std::string uri_path() const;
  void set_uri_path(std::string_view path);
  std::string location_path() const;
  void set_location_path(std::string_view path);
  // add_uri_query adds "k=v" style Uri-Query options split at '&'.
  void add_uri_query(std::string_view query);
  void set_payload(std::string_view s) { payload.assign(s.begin(), s.end()); }

  bool operator==(const Message& o) const;

 private:
  std::vector<Option> options_;
};

// encode_options writes options (sorted by number) with delta encoding.
// Returns false if a value is too long or w ran out of space.
bool encode_options(Writer& w, std::span<const OptionView> options);

// BlockValue is the content of a Block1/Block2 option (RFC 7959 §2.2).
struct BlockValue {
  uint32_t num = 0;
  bool more = false;
  uint8_t szx = 6;  // size = 2^(szx+4); 7 is reserved (BERT in RFC 8323)
  size_t size() const { return size_t{1} << (szx + 4); }
  size_t offset() const { return size_t{num} * size(); }
  uint32_t encode() const { return (num << 4) | (more ? 8u : 0u) | szx; }
  // decode returns nullopt for values longer than 3 bytes or szx 7.
  static std::optional<BlockValue> decode(ByteView v);
  // szx_for_size maps 16..1024 to 0..6 (rounding down; clamps).
  static uint8_t szx_for_size(size_t size);
};

// split_path splits "/a/b?x=1" into the path part segments and query part.
void split_path_query(std::string_view in, std::string_view& out_path, std::string_view& out_query);

}  // namespace acekdc::coap
