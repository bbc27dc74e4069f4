#include "cose/message.h"

#include "cbor/cbor.h"
#include "cbor/value.h"
#include "core/codepoints.h"
#include "core/writer.h"
#include "cose/algorithms.h"

namespace acekdc::cose {
namespace {

cbor::Limits limits_for(const DecodeOptions& opts) {
  cbor::Limits l;
  l.max_depth = opts.max_depth;
  l.max_length = opts.max_message_len;
  l.reject_duplicate_keys = true;
  return l;
}

size_t num_items(MessageType t) { return t == MessageType::kEncrypt0 ? 3 : 4; }

// decode_top: decodes `in` as exactly one CBOR item under the options' limits.
Expected<cbor::Value, Error> decode_top(ByteView in, const DecodeOptions& opts) {
  if (in.size() > opts.max_message_len) return unexpected(Error::kTooLarge);
  auto v = cbor::decode(in, limits_for(opts));
  if (!v) return unexpected(Error::kMalformed);
  return std::move(*v);
}

std::optional<MessageType> type_of_tag(uint64_t tag) {
  switch (tag) {
    case cp::tag::kCoseSign1: return MessageType::kSign1;
    case cp::tag::kCoseEncrypt0: return MessageType::kEncrypt0;
    case cp::tag::kCoseMac0: return MessageType::kMac0;
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::kSign1: return "COSE_Sign1";
    case MessageType::kEncrypt0: return "COSE_Encrypt0";
    case MessageType::kMac0: return "COSE_Mac0";
  }
  return "?";
}

uint64_t cose_tag(MessageType t) {
  switch (t) {
    case MessageType::kSign1: return cp::tag::kCoseSign1;
    case MessageType::kEncrypt0: return cp::tag::kCoseEncrypt0;
    case MessageType::kMac0: return cp::tag::kCoseMac0;
  }
  return 0;
}

Expected<Message, Error> decode_message(ByteView in, MessageType expected,
                                        const DecodeOptions& opts) {
  auto top = decode_top(in, opts);
  if (!top) return unexpected(top.error());
  const cbor::Value* v = &*top;
  Message m;
  m.type = expected;
  if (v->is_tag()) {
    if (v->tag_number() != cose_tag(expected) || opts.tag_mode == TagMode::kForbidden)
      return unexpected(Error::kUnexpectedTag);
    m.tagged = true;
    v = v->tag_content();
    if (!v) return unexpected(Error::kMalformed);
  } else if (opts.tag_mode == TagMode::kRequired) {
    return unexpected(Error::kUnexpectedTag);
  }
  const cbor::Array* a = v->as_array();
  if (!a || a->size() != num_items(expected)) return unexpected(Error::kMalformed);
  const cbor::Value& prot = (*a)[0];
  const cbor::Value& unprot = (*a)[1];
  const cbor::Value& content = (*a)[2];
  if (!prot.is_bytes() || !unprot.is_map()) return unexpected(Error::kMalformed);
  if (content.is_null()) {
    m.detached = true;
  } else if (content.is_bytes()) {
    m.content = *content.as_bytes();
  } else {
    return unexpected(Error::kMalformed);
  }
  if (expected != MessageType::kEncrypt0) {
    const cbor::Value& auth = (*a)[3];
    if (!auth.is_bytes()) return unexpected(Error::kMalformed);
    m.auth = *auth.as_bytes();
  }
  auto h = Headers::parse(prot.bytes_view(), unprot, opts.headers);
  if (!h) return unexpected(h.error());
  m.headers = std::move(*h);
  return m;
}

Expected<MessageType, Error> identify(ByteView in, const DecodeOptions& opts) {
  auto top = decode_top(in, opts);
  if (!top) return unexpected(top.error());
  if (top->is_tag()) {
    auto t = type_of_tag(top->tag_number());
    if (!t) return unexpected(Error::kUnexpectedTag);
    return *t;
  }
  const cbor::Array* a = top->as_array();
  if (!a || !(a->size() == 3 || a->size() == 4)) return unexpected(Error::kMalformed);
  if (a->size() == 3) return MessageType::kEncrypt0;
  const cbor::Value& prot = (*a)[0];
  const cbor::Value& unprot = (*a)[1];
  if (!prot.is_bytes() || !unprot.is_map()) return unexpected(Error::kMalformed);
  auto h = Headers::parse(prot.bytes_view(), unprot, opts.headers);
  if (!h) return unexpected(h.error());
  auto alg = h->alg();
  if (!alg) return unexpected(alg.error());
  switch (family(*alg)) {
    case AlgFamily::kSignature: return MessageType::kSign1;
    case AlgFamily::kMac: return MessageType::kMac0;
    default: return unexpected(Error::kUnsupportedAlgorithm);
  }
}

Expected<Headers, Error> sealed_headers(const Headers& h, const HeaderPolicy& policy) {
  if (h.protected_bytes.empty()) {
    const cbor::MapEntries* m = h.protected_map.as_map();
    if (!m) return unexpected(Error::kMalformed);
    if (!m->empty()) {
      Headers out = Headers::make(h.protected_map, h.unprotected);
      ACEKDC_TRY(validate(out, policy));
      return out;
    }
  }
  return Headers::parse(h.protected_bytes, h.unprotected, policy);
}

Expected<ByteView, Error> content_of(const Message& m, const std::optional<ByteView>& detached) {
  if (m.detached != detached.has_value()) return unexpected(Error::kDetachedPayload);
  return m.detached ? *detached : ByteView(m.content);
}

void encode_message(const Message& m, Bytes& out) {
  Writer w(out);
  cbor::Encoder e(w);
  if (m.tagged) e.put_tag(cose_tag(m.type));
  e.put_array(num_items(m.type));
  e.put_bstr(m.headers.protected_bytes);
  cbor::encode(m.headers.unprotected, e);
  if (m.detached) {
    e.put_null();
  } else {
    e.put_bstr(m.content);
  }
  if (m.type != MessageType::kEncrypt0) e.put_bstr(m.auth);
}

}  // namespace acekdc::cose
