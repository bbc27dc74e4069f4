#include "coap/message.h"

#include <algorithm>
#include <cstdio>

namespace acekdc::coap {

const char* to_string(Error e) {
  switch (e) {
    case Error::kTruncated: return "truncated message";
    case Error::kBadVersion: return "unsupported CoAP version";
    case Error::kBadTokenLength: return "reserved token length";
    case Error::kReservedOptionNibble: return "reserved option delta/length 15";
    case Error::kPayloadMarkerNoPayload: return "payload marker without payload";
    case Error::kOptionNumberOverflow: return "option number beyond 65535";
    case Error::kTooManyOptions: return "too many options";
    case Error::kEmptyMessageNotEmpty: return "empty message with content";
    case Error::kBufferTooSmall: return "output buffer too small";
    case Error::kValueTooLong: return "option value too long";
    case Error::kBadToken: return "token longer than 8 bytes";
  }
  return "unknown error";
}

const char* to_string(Type t) {
  switch (t) {
    case Type::kCon: return "CON";
    case Type::kNon: return "NON";
    case Type::kAck: return "ACK";
    case Type::kRst: return "RST";
  }
  return "?";
}

const char* method_name(uint8_t c) {
  switch (c) {
    case code::kGet: return "GET";
    case code::kPost: return "POST";
    case code::kPut: return "PUT";
    case code::kDelete: return "DELETE";
    case code::kFetch: return "FETCH";
    case code::kPatch: return "PATCH";
    case code::kIPatch: return "iPATCH";
    default: return nullptr;
  }
}

std::string code_string(uint8_t c) {
  if (const char* m = method_name(c)) return m;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%u.%02u", code_class(c), code_detail(c));
  return buf;
}

const char* option_name(uint16_t n) {
  switch (n) {
    case option::kIfMatch: return "If-Match";
    case option::kUriHost: return "Uri-Host";
    case option::kETag: return "ETag";
    case option::kIfNoneMatch: return "If-None-Match";
    case option::kObserve: return "Observe";
    case option::kUriPort: return "Uri-Port";
    case option::kLocationPath: return "Location-Path";
    case option::kOscore: return "OSCORE";
    case option::kUriPath: return "Uri-Path";
    case option::kContentFormat: return "Content-Format";
    case option::kMaxAge: return "Max-Age";
    case option::kUriQuery: return "Uri-Query";
    case option::kAccept: return "Accept";
    case option::kLocationQuery: return "Location-Query";
    case option::kBlock2: return "Block2";
    case option::kBlock1: return "Block1";
    case option::kSize2: return "Size2";
    case option::kProxyUri: return "Proxy-Uri";
    case option::kProxyScheme: return "Proxy-Scheme";
    case option::kSize1: return "Size1";
    case option::kEcho: return "Echo";
    case option::kNoResponse: return "No-Response";
    case option::kRequestTag: return "Request-Tag";
    default: return nullptr;
  }
}

const char* code_name(uint8_t c) {
  switch (c) {
    case code::kCreated: return "Created";
    case code::kDeleted: return "Deleted";
    case code::kValid: return "Valid";
    case code::kChanged: return "Changed";
    case code::kContent: return "Content";
    case code::kContinue: return "Continue";
    case code::kBadRequest: return "Bad Request";
    case code::kUnauthorized: return "Unauthorized";
    case code::kBadOption: return "Bad Option";
    case code::kForbidden: return "Forbidden";
    case code::kNotFound: return "Not Found";
    case code::kMethodNotAllowed: return "Method Not Allowed";
    case code::kNotAcceptable: return "Not Acceptable";
    case code::kRequestEntityIncomplete: return "Request Entity Incomplete";
    case code::kConflict: return "Conflict";
    case code::kPreconditionFailed: return "Precondition Failed";
    case code::kRequestEntityTooLarge: return "Request Entity Too Large";
    case code::kUnsupportedContentFormat: return "Unsupported Content-Format";
    case code::kUnprocessableEntity: return "Unprocessable Entity";
    case code::kTooManyRequests: return "Too Many Requests";
    case code::kInternalServerError: return "Internal Server Error";
    case code::kNotImplemented: return "Not Implemented";
    case code::kBadGateway: return "Bad Gateway";
    case code::kServiceUnavailable: return "Service Unavailable";
    case code::kGatewayTimeout: return "Gateway Timeout";
    case code::kProxyingNotSupported: return "Proxying Not Supported";
    default: return "";
  }
}

OptionFormat option_format(uint16_t n) {
  switch (n) {
    case option::kIfNoneMatch: return OptionFormat::kEmpty;
    case option::kUriHost:
    case option::kLocationPath:
    case option::kUriPath:
    case option::kUriQuery:
    case option::kLocationQuery:
    case option::kProxyUri:
    case option::kProxyScheme: return OptionFormat::kString;
    case option::kObserve:
    case option::kUriPort:
    case option::kContentFormat:
    case option::kMaxAge:
    case option::kAccept:
    case option::kBlock2:
    case option::kBlock1:
    case option::kSize2:
    case option::kSize1:
    case option::kNoResponse: return OptionFormat::kUint;
    default: return OptionFormat::kOpaque;
  }
}

bool is_known_option(uint16_t n) { return option_name(n) != nullptr; }

size_t encode_uint(uint32_t v, uint8_t out[4]) {
  size_t n = v == 0 ? 0 : v < 0x100 ? 1 : v < 0x10000 ? 2 : v < 0x1000000 ? 3 : 4;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
  return n;
}

std::optional<uint32_t> decode_uint(ByteView v) {
  if (v.size() > 4) return std::nullopt;
  uint32_t r = 0;
  for (uint8_t b : v) r = (r << 8) | b;
  return r;
}

// ---- MessageView ----

namespace {

// read_ext resolves an option delta/length nibble. Returns false on nibble 15 or truncation.
inline bool read_ext(uint32_t nibble, const uint8_t*& p, const uint8_t* end, uint32_t& out, Error& err) {
  if (nibble < 13) {
    out = nibble;
    return true;
  }
  if (nibble == 13) {
    if (end - p < 1) return err = Error::kTruncated, false;
    out = 13u + *p++;
    return true;
  }
  if (nibble == 14) {
    if (end - p < 2) return err = Error::kTruncated, false;
    out = 269u + ((uint32_t{p[0]} << 8) | p[1]);
    p += 2;
    return true;
  }
  err = Error::kReservedOptionNibble;
  return false;
}

}  // namespace

Expected<MessageView, Error> MessageView::parse_options(MessageView& m, const uint8_t* p,
                                                       const uint8_t* end, const ParseLimits& limits) {
  size_t max_options = std::min(limits.max_options, kMaxOptions);
  uint32_t number = 0;
  m.num_options_ = 0;
  m.payload = {};
  while (p < end) {
    uint8_t b = *p++;
    if (b == cp::coap::kPayloadMarker) {
      if (p == end) return unexpected(Error::kPayloadMarkerNoPayload);
      m.payload = ByteView(p, static_cast<size_t>(end - p));
      return m;
    }
    uint32_t delta = 0, len = 0;
    Error err{};
    if (!read_ext(b >> 4, p, end, delta, err)) return unexpected(err);
    if (!read_ext(b & 0x0f, p, end, len, err)) return unexpected(err);
    number += delta;
    if (number > 0xffff) return unexpected(Error::kOptionNumberOverflow);
    if (static_cast<size_t>(end - p) < len) return unexpected(Error::kTruncated);
    if (m.num_options_ == max_options) return unexpected(Error::kTooManyOptions);
    std::construct_at(&m.options_[m.num_options_++], OptionView{static_cast<uint16_t>(number), ByteView(p, len)});
    p += len;
  }
  return m;
}

Expected<MessageView, Error> MessageView::parse(ByteView d, const ParseLimits& limits) {
  MessageView m;
  if (d.size() < 4) return unexpected(Error::kTruncated);
  if ((d[0] >> 6) != cp::coap::kVersion) return unexpected(Error::kBadVersion);
  m.type = static_cast<Type>((d[0] >> 4) & 3);
  size_t tkl = d[0] & 0x0f;
  if (tkl > kMaxTokenLen) return unexpected(Error::kBadTokenLength);
  m.code = d[1];
  m.message_id = static_cast<uint16_t>((d[2] << 8) | d[3]);
  if (m.code == code::kEmpty) {
    // RFC 7252 §4.1: an Empty message has TKL 0 and nothing after the header.
    if (d.size() != 4 || tkl != 0) return unexpected(Error::kEmptyMessageNotEmpty);
    return m;
  }
  if (d.size() < 4 + tkl) return unexpected(Error::kTruncated);
  m.token = d.subspan(4, tkl);
  return parse_options(m, d.data() + 4 + tkl, d.data() + d.size(), limits);
}

Expected<MessageView, Error> MessageView::parse_inner(ByteView d, const ParseLimits& limits) {
  MessageView m;
  if (d.empty()) return unexpected(Error::kTruncated);
  m.code = d[0];
  return parse_options(m, d.data() + 1, d.data() + d.size(), limits);
}

bool MessageView::peek_header(ByteView d, Type& out_type, uint16_t& out_message_id) {
  if (d.size() < 4) return false;
  out_type = static_cast<Type>((d[0] >> 4) & 3);
  out_message_id = static_cast<uint16_t>((d[2] << 8) | d[3]);
  return true;
}

const OptionView* MessageView::find(uint16_t number) const {
  for (size_t i = 0; i < num_options_; ++i) {
    if (options_[i].number == number) return &options_[i];
    if (options_[i].number > number) break;
  }
  return nullptr;
}

std::optional<uint32_t> MessageView::get_uint(uint16_t number) const {
  const OptionView* o = find(number);
  if (!o) return std::nullopt;
  return decode_uint(o->value);
}

size_t MessageView::count(uint16_t number) const {
  size_t n = 0;
  for (size_t i = 0; i < num_options_; ++i) n += options_[i].number == number;
  return n;
}

// ---- encoding ----

namespace {

inline void put_nibble_ext(uint32_t v, uint8_t& nibble, uint8_t ext[2], size_t& ext_len) {
  if (v < 13) {
    nibble = static_cast<uint8_t>(v);
    ext_len = 0;
  } else if (v < 269) {
    nibble = 13;
    ext[0] = static_cast<uint8_t>(v - 13);
    ext_len = 1;
  } else {
    nibble = 14;
    ext[0] = static_cast<uint8_t>((v - 269) >> 8);
    ext[1] = static_cast<uint8_t>(v - 269);
    ext_len = 2;
  }
}

inline bool put_option(Writer& w, uint16_t prev, uint16_t number, ByteView value) {
  if (value.size() > 65535 + 269) return false;
  uint8_t dn, ln, dext[2], lext[2];
  size_t dlen, llen;
  put_nibble_ext(number - prev, dn, dext, dlen);
  put_nibble_ext(static_cast<uint32_t>(value.size()), ln, lext, llen);
  uint8_t* p = w.reserve(1 + dlen + llen + value.size());
  if (!p) return false;
  *p++ = static_cast<uint8_t>((dn << 4) | ln);
  for (size_t i = 0; i < dlen; ++i) *p++ = dext[i];
  for (size_t i = 0; i < llen; ++i) *p++ = lext[i];
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  return true;
}

}  // namespace

bool encode_options(Writer& w, std::span<const OptionView> options) {
  uint16_t prev = 0;
  for (const OptionView& o : options) {
    if (o.number < prev) return false;
    if (!put_option(w, prev, o.number, o.value)) return false;
    prev = o.number;
  }
  return w.ok();
}

static bool encode_option_list(Writer& w, const std::vector<Option>& options, Error& err) {
  uint16_t prev = 0;
  for (const Option& o : options) {
    if (o.value.size() > 65535 + 269) return err = Error::kValueTooLong, false;
    if (!put_option(w, prev, o.number, o.value)) return err = Error::kBufferTooSmall, false;
    prev = o.number;
  }
  return true;
}

Expected<void, Error> Message::encode_into(Writer& w) const {
  if (token.size() > kMaxTokenLen) return unexpected(Error::kBadToken);
  uint8_t* h = w.reserve(4 + token.size());
  if (!h) return unexpected(Error::kBufferTooSmall);
  h[0] = static_cast<uint8_t>((cp::coap::kVersion << 6) | (static_cast<uint8_t>(type) << 4) | token.size());
  h[1] = code;
  h[2] = static_cast<uint8_t>(message_id >> 8);
  h[3] = static_cast<uint8_t>(message_id);
  if (!token.empty()) std::memcpy(h + 4, token.data(), token.size());
  Error err{};
  if (!encode_option_list(w, options_, err)) return unexpected(err);
  if (!payload.empty()) {
    if (!w.put_u8(cp::coap::kPayloadMarker) || !w.put_bytes(payload)) return unexpected(Error::kBufferTooSmall);
  }
  return {};
}

Expected<Bytes, Error> Message::encode() const {
  Bytes out;
  out.reserve(4 + token.size() + payload.size() + 1 + options_.size() * 8);
  Writer w(out);
  ACEKDC_TRY(encode_into(w));
  return out;
}

Expected<void, Error> Message::encode_inner_into(Writer& w) const {
  if (!w.put_u8(code)) return unexpected(Error::kBufferTooSmall);
  Error err{};
  if (!encode_option_list(w, options_, err)) return unexpected(err);
  if (!payload.empty()) {
    if (!w.put_u8(cp::coap::kPayloadMarker) || !w.put_bytes(payload)) return unexpected(Error::kBufferTooSmall);
  }
  return {};
}

Expected<Bytes, Error> Message::encode_inner() const {
  Bytes out;
  Writer w(out);
  ACEKDC_TRY(encode_inner_into(w));
  return out;
}

Message Message::from_view(const MessageView& v) {
  Message m(v.type, v.code, v.message_id);
  m.token = to_bytes(v.token);
  m.payload = to_bytes(v.payload);
  m.options_.reserve(v.num_options());
  for (const OptionView& o : v.options()) m.options_.push_back(Option{o.number, to_bytes(o.value)});
  return m;
}

Expected<Message, Error> Message::parse(ByteView datagram, const ParseLimits& limits) {
  auto v = MessageView::parse(datagram, limits);
  if (!v) return unexpected(v.error());
  return from_view(*v);
}

Expected<Message, Error> Message::parse_inner(ByteView bytes, const ParseLimits& limits) {
  auto v = MessageView::parse_inner(bytes, limits);
  if (!v) return unexpected(v.error());
  return from_view(*v);
}

// ---- options ----

void Message::add_option(uint16_t number, ByteView value) {
  auto it = std::upper_bound(options_.begin(), options_.end(), number,
                             [](uint16_t n, const Option& o) { return n < o.number; });
  options_.insert(it, Option{number, to_bytes(value)});
}

void Message::add_uint(uint16_t number, uint32_t v) {
  uint8_t b[4];
  size_t n = encode_uint(v, b);
  add_option(number, ByteView(b, n));
}

void Message::add_string(uint16_t number, std::string_view s) { add_option(number, as_bytes(s)); }

void Message::set_option(uint16_t number, ByteView value) {
  remove(number);
  add_option(number, value);
}

void Message::set_uint(uint16_t number, uint32_t v) {
  remove(number);
  add_uint(number, v);
}

size_t Message::remove(uint16_t number) {
  size_t before = options_.size();
  std::erase_if(options_, [number](const Option& o) { return o.number == number; });
  return before - options_.size();
}

const Option* Message::find(uint16_t number) const {
  for (const Option& o : options_) {
    if (o.number == number) return &o;
  }
  return nullptr;
}

std::optional<uint32_t> Message::get_uint(uint16_t number) const {
  const Option* o = find(number);
  if (!o) return std::nullopt;
  return decode_uint(o->value);
}

std::vector<ByteView> Message::all(uint16_t number) const {
  std::vector<ByteView> r;
  for (const Option& o : options_) {
    if (o.number == number) r.emplace_back(o.value);
  }
  return r;
}

static std::string join_option(const std::vector<Option>& options, uint16_t number) {
  std::string s;
  for (const Option& o : options) {
    if (o.number != number) continue;
    s += '/';
    s.append(o.str());
  }
  return s;
}

static void split_into(Message& m, uint16_t number, std::string_view path, char sep) {
  m.remove(number);
  while (!path.empty() && path.front() == sep) path.remove_prefix(1);
  if (path.empty()) return;
  while (true) {
    size_t i = path.find(sep);
    m.add_string(number, path.substr(0, i));
    if (i == std::string_view::npos) break;
    path.remove_prefix(i + 1);
  }
}

std::string Message::uri_path() const { return join_option(options_, option::kUriPath); }
void Message::set_uri_path(std::string_view path) { split_into(*this, option::kUriPath, path, '/'); }
std::string Message::location_path() const { return join_option(options_, option::kLocationPath); }
void Message::set_location_path(std::string_view path) { split_into(*this, option::kLocationPath, path, '/'); }

void Message::add_uri_query(std::string_view query) {
  while (!query.empty()) {
    size_t i = query.find('&');
    std::string_view part = query.substr(0, i);
    if (!part.empty()) add_string(option::kUriQuery, part);
    if (i == std::string_view::npos) break;
    query.remove_prefix(i + 1);
  }
}

bool Message::operator==(const Message& o) const {
  if (type != o.type || code != o.code || message_id != o.message_id || token != o.token ||
      payload != o.payload || options_.size() != o.options_.size())
    return false;
  for (size_t i = 0; i < options_.size(); ++i) {
    if (options_[i].number != o.options_[i].number || options_[i].value != o.options_[i].value) return false;
  }
  return true;
}

// ---- Block ----

std::optional<BlockValue> BlockValue::decode(ByteView v) {
  if (v.size() > 3) return std::nullopt;
  uint32_t x = *decode_uint(v);
  BlockValue b;
  b.num = x >> 4;
  b.more = (x & 8) != 0;
  b.szx = static_cast<uint8_t>(x & 7);
  if (b.szx == 7) return std::nullopt;
  return b;
}

uint8_t BlockValue::szx_for_size(size_t size) {
  uint8_t szx = 0;
  while (szx < 6 && (size_t{1} << (szx + 5)) <= size) ++szx;
  return szx;
}

void split_path_query(std::string_view in, std::string_view& out_path, std::string_view& out_query) {
  size_t q = in.find('?');
  out_path = in.substr(0, q);
  out_query = q == std::string_view::npos ? std::string_view() : in.substr(q + 1);
}

}  // namespace acekdc::coap
