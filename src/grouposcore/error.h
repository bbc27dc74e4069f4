// Group OSCORE errors (draft-ietf-core-oscore-groupcomm-23, group mode).
#pragma once

#include <cstdint>

namespace acekdc::grouposcore {

// Error lists every way a Group OSCORE operation can fail, and what the caller does:
//   kInvalidArgument, kUnsupportedAlgorithm, kInvalidKey: fix the configuration / input.
//   kMalformedMaterial: the KDC's keying material does not decode; ask the KDC again.
//   kMalformedMessage, kMalformedOption: drop the message (a request may get 4.02).
//   kNotGroupMode: no Group Flag (pairwise mode or plain OSCORE): not handled here.
//   kStaleGroupId: the message uses a Group ID this member used before a rekeying; drop
//     (the sender is behind; nothing to fetch).
//   kUnknownGroupId: a Group ID this member never had: it may be behind. Keep the message
//     (bounded, OPT4), fetch the latest material from the KDC, rekey(), retry.
//   kUnknownSender: no public key for the kid: fetch it from the KDC (pub-key FETCH),
//     add_member_key(), retry.
//   kOwnMessage: the message carries our own Sender ID (multicast loopback): drop silently.
//   kReplay: drop (a request may get 4.01 "Replay detected").
//   kBadSignature, kDecryptionFailed: drop (forged or corrupted).
//   kTooManyMembers: raise GroupConfig::max_members or remove departed members.
//   kSequenceExhausted: the Sender Sequence Number space is used up; get new material.
//   kStorageFailure: the sequence number could not be persisted; do not send.
//   kBufferTooSmall: give a larger output buffer (or raise max_message_len).
//   kCrypto: the crypto provider failed unexpectedly.
//   kEchoRequired: a verified request from a sender whose Recipient Context is new
//     (GroupConfig::echo_new_senders): not delivered; answer it with
//     protect_response() of a 4.01 carrying the Echo option GroupExchange::echo()
//     (RFC 9175 §2.4); the sender repeats the request with that Echo, which is then
//     delivered and sets the replay floor.
enum class Error : uint8_t {
  kInvalidArgument = 1,
  kUnsupportedAlgorithm,
  kInvalidKey,
  kMalformedMaterial,
  kMalformedMessage,
  kMalformedOption,
  kNotGroupMode,
  kStaleGroupId,
  kUnknownGroupId,
  kUnknownSender,
  kOwnMessage,
  kReplay,
  kBadSignature,
  kDecryptionFailed,
  kTooManyMembers,
  kSequenceExhausted,
  kStorageFailure,
  kBufferTooSmall,
  kCrypto,
  kEchoRequired,
};

// to_string returns a short English description; never includes key material.
const char* to_string(Error e);

}  // namespace acekdc::grouposcore
