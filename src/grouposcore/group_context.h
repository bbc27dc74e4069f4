// Group OSCORE, group mode: draft-ietf-core-oscore-groupcomm-23, as aiocoap (2026-04,
// f867dc4) implements it. Members protect CoAP messages with the KDC's keying material
// (material.h) and sign them with their own key pair.
//
// What we follow, in brief (details and the -05 material gaps: docs/group-oscore.md):
//   Keys (HKDF as RFC 8613 §3.2.1, alg = Group Encryption Algorithm = 'alg'):
//     Sender/Recipient Key  info [id, Group ID, alg, "Key", key_len]
//     Common IV             info [h'', Group ID, alg, "IV", nonce_len]
//     Signature Enc. Key    info [h'', Group ID, alg, "SEKey", key_len]
//   external_aad = bstr .cbor [1, [alg, alg, sign_alg, null], request_kid, request_piv,
//                  h'' (Class I options), request_kid_context (Group ID), OSCORE option,
//                  sender's auth credential, gm_cred = null]
//   the same external_aad for encryption (Enc_structure) and for the countersignature
//   (Countersign_structure ["CounterSignature0", h'', h'', external_aad, ciphertext]);
//   payload = ciphertext || (signature XOR keystream), keystream = HKDF(salt = Partial IV,
//   IKM = Signature Encryption Key, info = [PIV generator's Sender ID, Group ID,
//   true (request) / false (response), sig_len], L = sig_len);
//   OSCORE option: Group Flag 0x20; requests carry kid, kid context (Group ID) and
//   Partial IV; responses carry kid and optionally their own Partial IV.
//   Authentication credential of a member: its public COSE_Key as the deterministic
//   CBOR map {1: kty, 2: kid = Sender ID, -1: crv, -2: x[, -3: y]} (auth_credential()).
//
// API in brief
//   GroupConfig                      material + own key pair + bounds + sequence store
//   GroupContext::create(provider, cfg)
//   add_member_key(COSE_Key) / remove_member(kid) / set_key_lookup(fn)
//   protect_request(msg, out, ex)    a group request (NON to the multicast address)
//   verify_request(dgram, out, ex)   -> Received (plain request, sender's kid)
//   protect_response(msg, ex, out)   a group mode response to a verified request
//   verify_response(dgram, ex, out)  -> Received (plain response, responder's kid)
//   rekey(new material)              a new context with the same key pair and member keys
//
// Recipient Contexts are created on the first message from each sender and kept in a
// bounded LRU (GroupConfig::max_recipients). Evicting one keeps the highest sequence
// number seen from that sender with its public key, so a recreated Recipient Context
// never accepts an older message (replay-safe, at the price of rejecting late
// reordered ones). No heap allocation per message once a sender's Recipient Context
// exists. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coap/message.h"
#include "core/bytes.h"
#include "core/expected.h"
#include "cose/key.h"
#include "crypto/provider.h"
#include "grouposcore/error.h"
#include "grouposcore/material.h"
#include "oscore/derivation.h"
#include "oscore/replay.h"
#include "oscore/sequence_store.h"

namespace acekdc::grouposcore {

// Largest Sender ID (nonce_len - 6 <= 10) and Group ID we accept.
inline constexpr size_t kMaxIdLen = oscore::kMaxNonceLen - 6;
inline constexpr size_t kMaxGroupIdLen = 32;
// Largest signature (Ed25519 and ES256: 64 bytes).
inline constexpr size_t kMaxSignatureLen = 64;
// Most responders one GroupExchange remembers (a second response from one is a replay).
inline constexpr size_t kMaxResponders = 32;

struct GroupConfig {
  InputMaterial material;
  // sender_id: this member's Sender ID; nullopt = material.sender_id (one is required).
  std::optional<Bytes> sender_id;
  // own_key: this member's signature key pair (d required), crv matching sign_alg.
  crypto::KeyPair own_key;
  size_t max_members = 256;     // public keys held
  size_t max_recipients = 32;   // Recipient Contexts held (LRU)
  uint32_t replay_window = cp::oscore::kDefaultReplayWindow;
  // store: Sender Sequence Number persistence (nullptr: in memory, from initial_seq).
  // The key is oscore::sequence_key(Group ID, Sender ID): a new Group ID starts at 0.
  oscore::SequenceStore* store = nullptr;
  uint64_t seq_chunk = oscore::SequenceAllocator::kDefaultChunk;
  uint64_t initial_seq = 0;
  // restart_sequence_on_failure: when the store refuses to extend the reservation
  // (kStorageFailure), protect_* calls restart_sequence() once and retries instead of
  // failing. For a store shared by several processes of one member that refuses an
  // extension after another process claimed (client::ClaimingSequenceStore): the
  // restart claims a fresh chunk. Off: kStorageFailure is returned.
  bool restart_sequence_on_failure = false;
  // echo_new_senders: a request from a sender without a Recipient Context (the first
  // one, also the first after this context was created, e.g. after a restart) is not
  // delivered: verify_request fails with kEchoRequired and an Echo value to send back
  // in a 4.01 (RFC 9175; draft-ietf-core-oscore-groupcomm-23 §9 replay window
  // initialisation); the repeated request carrying that Echo is delivered, and only
  // requests with a higher sequence number after it. A replay of a request made before
  // this context existed is thus never delivered. Off: the first message is trusted.
  bool echo_new_senders = false;
  size_t max_message_len = 1280;  // bound of a received / sent message (scratch size)
  size_t max_previous_group_ids = 8;  // Group IDs remembered across rekeyings (kStaleGroupId)
};

// GroupExchange binds responses to a group request: the requester's kid and Partial
// IV, the Group ID it was sent under, and (requester side) the responders heard.
struct GroupExchange {
  std::array<uint8_t, kMaxIdLen> kid{};
  uint8_t kid_len = 0;
  std::array<uint8_t, 5> piv{};
  uint8_t piv_len = 0;
  std::array<uint8_t, kMaxGroupIdLen> group_id{};
  uint8_t group_id_len = 0;
  bool nonce_used = false;  // responder: a response reused the request's Partial IV
  std::array<std::array<uint8_t, kMaxIdLen + 1>, kMaxResponders> responders{};  // [len, id...]
  uint8_t num_responders = 0;
  std::array<uint8_t, 8> echo_value{};  // responder: the Echo to send (kEchoRequired)
  uint8_t echo_len = 0;
  ByteView echo() const { return {echo_value.data(), echo_len}; }
  ByteView request_kid() const { return {kid.data(), kid_len}; }
  ByteView request_piv() const { return {piv.data(), piv_len}; }
  ByteView request_group_id() const { return {group_id.data(), group_id_len}; }
};

// Received describes a verified message: its decrypted length in `out` and the
// sender's Sender ID (the kid).
struct Received {
  size_t len = 0;
  std::array<uint8_t, kMaxIdLen> sender{};
  uint8_t sender_len = 0;
  ByteView sender_id() const { return {sender.data(), sender_len}; }
};

// KeyLookup is asked for the public key of an unknown kid (e.g. a cache of the last
// pub-key response); nullopt = unknown: the message fails with kUnknownSender.
using KeyLookup = std::function<std::optional<cose::CoseKey>(ByteView kid)>;

// auth_credential writes the authentication credential of a member (the deterministic
// COSE_Key map {1: kty, 2: kid, -1: crv, -2: x[, -3: y]}) of `key` with kid `sender_id`.
Expected<Bytes, Error> auth_credential(const crypto::KeyPair& key, ByteView sender_id);

class GroupContext {
 public:
  // create derives the Group OSCORE keys. Errors: kInvalidArgument (no Sender ID, an
  // ID too long for the nonce, a Group ID above kMaxGroupIdLen, own_key without d),
  // kUnsupportedAlgorithm (AEAD, HKDF or signature algorithm), kInvalidKey (own_key
  // does not fit sign_alg), kStorageFailure, kCrypto.
  static Expected<std::unique_ptr<GroupContext>, Error> create(crypto::Provider& provider,
                                                               GroupConfig config);
  ~GroupContext();

  // rekey returns a context for new keying material (new Group ID): same key pair, same
  // member keys, Sender ID from the new material if it has one; the old Group ID is
  // remembered so its messages fail with kStaleGroupId. Errors as create().
  Expected<std::unique_ptr<GroupContext>, Error> rekey(InputMaterial material) const;

  // add_member_key adds (or replaces) a member's public key; kid = its Sender ID.
  // kInvalidKey (no kid, kid too long, a key not for sign_alg), kInvalidArgument (kid =
  // own Sender ID), kTooManyMembers.
  Expected<void, Error> add_member_key(const cose::CoseKey& key);
  // remove_member forgets a member's key and its Recipient Context.
  void remove_member(ByteView kid);
  void set_key_lookup(KeyLookup lookup) { lookup_ = std::move(lookup); }
  // restart_sequence starts the Sender Sequence Number over from the store (load(): a
  // ClaimingSequenceStore claims a fresh chunk above every earlier claim), keeping the
  // keys, the member keys and the Recipient Contexts with their replay windows. The
  // numbers left in the old reservation are never used. kStorageFailure if the store
  // cannot be read; the old allocator stays then.
  Expected<void, Error> restart_sequence();
  // num_sequence_restarts: how many times restart_sequence() succeeded.
  uint64_t num_sequence_restarts() const { return num_seq_restarts_; }

  // protect_request protects `request` (a request code; no OSCORE, Proxy-Uri or
  // Observe option) into `out` and fills `out_exchange`. Returns the datagram length.
  // Errors: kInvalidArgument, kBufferTooSmall, kSequenceExhausted, kStorageFailure, kCrypto.
  Expected<size_t, Error> protect_request(const coap::Message& request, MutableByteView out,
                                          GroupExchange& out_exchange);
  // verify_request checks a group request and writes the decrypted CoAP request into
  // `out`. Errors: kMalformedMessage, kMalformedOption, kNotGroupMode, kStaleGroupId,
  // kUnknownGroupId, kUnknownSender, kOwnMessage, kReplay, kBadSignature,
  // kDecryptionFailed, kBufferTooSmall, kCrypto; kEchoRequired (echo_new_senders):
  // verified but not delivered, out_exchange is filled (with echo()) for the 4.01.
  Expected<Received, Error> verify_request(ByteView datagram, MutableByteView out,
                                           GroupExchange& out_exchange);
  // protect_response protects `response` to the request of `exchange` in group mode.
  // new_partial_iv = false reuses the request's Partial IV (allowed once per exchange).
  // Errors as protect_request, kStaleGroupId if the request was under another Group ID.
  Expected<size_t, Error> protect_response(const coap::Message& response, GroupExchange& exchange,
                                           MutableByteView out, bool new_partial_iv = false);
  // verify_response checks a group mode response to the request of `exchange`.
  // Errors as verify_request; kReplay for a second response from one responder.
  Expected<Received, Error> verify_response(ByteView datagram, GroupExchange& exchange,
                                            MutableByteView out);

  ByteView sender_id() const { return sender_id_; }
  ByteView group_id() const { return config_.material.group_id; }
  const InputMaterial& material() const { return config_.material; }
  const Bytes& own_credential() const { return own_cred_; }
  uint64_t next_sequence_number() const { return seq_->peek(); }
  size_t num_members() const { return peers_.size(); }
  size_t num_recipient_contexts() const;
  // num_echo_challenges: how many kEchoRequired this context returned.
  uint64_t num_echo_challenges() const { return num_echo_challenges_; }
  bool has_member(ByteView kid) const { return find_peer(kid) != nullptr; }

  GroupContext(const GroupContext&) = delete;
  GroupContext& operator=(const GroupContext&) = delete;

 private:
  struct Peer;
  struct Recipient;
  struct Outgoing;
  GroupContext(crypto::Provider& provider, GroupConfig config);
  Expected<void, Error> init();
  Peer* find_peer(ByteView kid) const;
  Expected<Recipient*, Error> recipient_for(ByteView kid);
  Expected<size_t, Error> protect(const Outgoing& m, MutableByteView out);
  Expected<size_t, Error> verify(ByteView datagram, bool is_request, GroupExchange& ex,
                                 MutableByteView out, Received& rx);
  Expected<void, Error> keystream(ByteView piv_generator, ByteView piv, bool request,
                                  MutableByteView out);

  crypto::Provider& provider_;
  GroupConfig config_;
  Bytes sender_id_;
  crypto::AeadInfo aead_info_{};
  size_t sig_len_ = 0;
  crypto::Hash hash_ = crypto::Hash::kSha256;
  std::array<uint8_t, oscore::kMaxKeyLen> sender_key_{};
  std::array<uint8_t, oscore::kMaxKeyLen> sekey_{};
  std::array<uint8_t, oscore::kMaxNonceLen> common_iv_{};
  std::unique_ptr<crypto::Aead> sender_aead_;
  std::unique_ptr<crypto::Signer> signer_;
  Bytes own_cred_;
  std::unique_ptr<oscore::SequenceAllocator> seq_;
  uint64_t num_seq_restarts_ = 0;
  uint64_t num_echo_challenges_ = 0;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Recipient>> recipients_;
  uint64_t use_clock_ = 0;
  std::vector<Bytes> previous_group_ids_;
  KeyLookup lookup_;
  Bytes scratch_;  // plaintext / to-be-signed buffer, allocated once
};

}  // namespace acekdc::grouposcore
