// Decoding and encoding of the single-layer COSE messages (RFC 9052 §4.2, §5.2,
// §6.2): COSE_Sign1 = [protected, unprotected, payload, signature],
// COSE_Encrypt0 = [protected, unprotected, ciphertext], COSE_Mac0 = [protected,
// unprotected, payload, tag], each optionally wrapped in its CBOR tag (18, 16, 17).
#pragma once

#include <optional>

#include "core/bytes.h"
#include "core/expected.h"
#include "cose/error.h"
#include "cose/headers.h"

namespace acekdc::cose {

enum class MessageType : uint8_t { kSign1, kEncrypt0, kMac0 };
const char* to_string(MessageType t);
// cose_tag is the CBOR tag number of a message type (cp::tag).
uint64_t cose_tag(MessageType t);

// TagMode: whether the CBOR tag of the message type must, may or must not be present.
// A different tag is always kUnexpectedTag.
enum class TagMode : uint8_t { kOptional, kRequired, kForbidden };

// DecodeOptions: parser configuration for untrusted messages.
struct DecodeOptions {
  TagMode tag_mode = TagMode::kOptional;
  HeaderPolicy headers;
  size_t max_message_len = 1u << 20;  // kTooLarge above this
  uint32_t max_depth = 16;            // CBOR nesting
};

// Message: one decoded single-layer COSE message (not yet verified).
struct Message {
  MessageType type = MessageType::kSign1;
  bool tagged = false;
  Headers headers;
  bool detached = false;  // payload / ciphertext was nil
  Bytes content;          // payload (Sign1, Mac0) or ciphertext (Encrypt0); empty if detached
  Bytes auth;             // signature (Sign1) or tag (Mac0); empty for Encrypt0
};

// decode_message parses `in` as a message of type `expected`: exactly one CBOR
// item, the optional/required tag, the array shape and item types, and the
// headers (validate()). Errors: kTooLarge, kMalformed, kUnexpectedTag, and the
// header errors of validate().
Expected<Message, Error> decode_message(ByteView in, MessageType expected,
                                        const DecodeOptions& opts = {});

// identify reports which message type `in` is: by its COSE tag, or when untagged by
// its shape (3 items: Encrypt0) and, for 4 items, by the family of its alg header
// (signature: Sign1, MAC: Mac0). kUnexpectedTag for another tag; kMalformed or
// kUnsupportedAlgorithm when it cannot tell.
Expected<MessageType, Error> identify(ByteView in, const DecodeOptions& opts = {});

// CreateOptions: how a message is written.
struct CreateOptions {
  bool tagged = true;    // wrap in the COSE tag (18 / 16 / 17)
  bool detached = false; // send nil instead of the payload / ciphertext (RFC 9052 §2)
  HeaderPolicy headers;  // crit labels the creator understands beyond the built-in ones
};

// VerifyOptions: parser configuration plus the detached content, if any.
struct VerifyOptions : DecodeOptions {
  // detached_content: the payload (Sign1, Mac0) or ciphertext (Encrypt0) when the
  // message carries nil. Giving one for a message that carries its own content, or
  // none for a detached message, is kDetachedPayload.
  std::optional<ByteView> detached_content;
};

// Verified: the result of a successful verify / decrypt.
struct Verified {
  Headers headers;
  bool tagged = false;
  Bytes payload;  // the payload (Sign1, Mac0) or the plaintext (Encrypt0)
};

// sealed_headers returns `h` with protected_bytes made authoritative: if
// protected_bytes is empty but protected_map is not, the map is encoded; otherwise
// the bytes are decoded again. Then validate() applies.
Expected<Headers, Error> sealed_headers(const Headers& h, const HeaderPolicy& policy = {});

// content_of picks the content to authenticate: the message's own, or the
// detached one (kDetachedPayload when exactly one of the two is not there).
Expected<ByteView, Error> content_of(const Message& m, const std::optional<ByteView>& detached);

// encode_message appends the encoding of `m` to out (tagged if m.tagged).
void encode_message(const Message& m, Bytes& out);

}  // namespace acekdc::cose
