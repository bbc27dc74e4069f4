// The client side of the ACE group KDC (seed draft draft-ietf-ace-key-groupcomm-05
// §4, ACE OSCORE profile RFC 9203): a token from the AS, the token POST to the KDC,
// and GroupMember, which joins a group with proof of possession and then uses the
// group's resources over the client-KDC OSCORE context, keeping its state in a
// StateDir (sequence numbers reserved there before use).
//
//   Transport                    one request datagram out, its response datagram back
//   UdpTransport                 over io::BlockingClient (CoAP CON, retransmission)
//   request_token()              POST /token at the AS over the pre-established context
//   post_token()                 POST /authz-info at the KDC, derive the context
//   GroupMember                  join, keys, node_keys, pub_keys, policies, version,
//                                renew, update_pub_key, leave, protect_observe
//
// Every call is synchronous; no method throws. Failures carry a short diagnostic
// that never contains a secret.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ace/oscore_profile.h"
#include "ace/params.h"
#include "ace/scope.h"
#include "client/error.h"
#include "client/responses.h"
#include "client/state.h"
#include "coap/address.h"
#include "coap/message.h"
#include "core/clock.h"
#include "core/random.h"
#include "crypto/provider.h"
#include "oscore/context.h"

namespace acekdc::io {
class BlockingClient;
}

namespace acekdc::client {

class Transport {
 public:
  virtual ~Transport() = default;
  // exchange sends the request datagram `request` (its type, message ID and token
  // may be replaced) to `peer` and returns the response datagram. kNoResponse when
  // nothing came back within `wait`.
  virtual Expected<Bytes, Failure> exchange(const coap::Address& peer, ByteView request, Duration wait) = 0;
};

// UdpTransport: CoAP over UDP (CON with retransmission) with io::BlockingClient.
class UdpTransport final : public Transport {
 public:
  UdpTransport();
  ~UdpTransport() override;
  Expected<Bytes, Failure> exchange(const coap::Address& peer, ByteView request, Duration wait) override;
  io::BlockingClient& blocking_client() { return *client_; }

 private:
  std::unique_ptr<io::BlockingClient> client_;
};

// resolve_uri turns coap://host[:port][/path] into an address and a path.
Expected<std::pair<coap::Address, std::string>, Failure> resolve_uri(const std::string& uri);

// TokenRequestConfig: a token request at the AS over the client-AS context
// (Master Secret = secret, Sender ID = id, Recipient ID empty; RFC 9203 §5).
struct TokenRequestConfig {
  coap::Address as;
  std::string path = "/token";
  Bytes id;
  Bytes secret;  // SECRET
  std::string audience;
  ace::Scope scope;
  // seq_store: where the Sender Sequence Number is reserved (null: start at initial_seq).
  oscore::SequenceStore* seq_store = nullptr;
  uint64_t initial_seq = 0;
  Duration timeout = seconds(10);
};
// request_token returns the AS's 2.01 token response (with cnf.osc). kRefused
// carries the AS's error name in detail.
Expected<ace::TokenResponse, Failure> request_token(crypto::Provider& provider, Transport& transport,
                                                    const TokenRequestConfig& cfg);

// KdcSession: what a token POST produced.
struct KdcSession {
  ace::TokenResponse token;
  oscore::ContextParams params;  // the client's side of the KDC context (SECRET)
  ace::AuthzInfoResponse authz;  // rsnonce, sign_info
};
// post_token posts `token` to the KDC (unprotected, RFC 9203 §4.1) and derives the context.
Expected<KdcSession, Failure> post_token(Transport& transport, Random& random, ace::TokenResponse token,
                                         const coap::Address& kdc, const std::string& path, ByteView recipient_id,
                                         bool sign_info, Duration timeout);

// JoinConfig: what GroupMember::join needs besides the member's own settings.
struct JoinConfig {
  coap::Address as;
  Bytes id;      // the client's Sender ID with the AS
  Bytes secret;  // the client-AS Master Secret (SECRET)
  std::string audience = "kdc";
  ace::RoleSet roles = 0;
  Bytes recipient_id = {0x42};  // the client's Recipient ID with the KDC
  std::string control_path;     // sent as control_path when not empty
  bool get_pub_keys = false;
};

struct JoinResult {
  std::string node;      // NODENAME
  std::string location;  // the Location-Path
  GroupKeys keys;
};

// ObserveRequest: a protected registration (GET nodes/NODENAME with Observe: 0);
// `ctx` and `exchange` verify the notifications (unprotect_response).
struct ObserveRequest {
  Bytes datagram;
  std::unique_ptr<oscore::Context> ctx;
  oscore::Exchange exchange;
};

class GroupMember {
 public:
  // The provider and transport must outlive the member.
  GroupMember(crypto::Provider& provider, Transport& transport, StateDir state, std::string group,
              coap::Address kdc, Duration timeout = seconds(10));

  // join: token from the AS (scope GROUP:roles), token POST, a fresh key for the
  // group's sign_alg (sign_info: Ed25519 for EdDSA, P-256 for ES256; none for a
  // monitor) and the Joining Request with PoP over N_S|N_C, signing
  // again once if the KDC answers 4.00 with a fresh rsnonce (REQ17). Saves the
  // session, the private key and the keying material.
  Expected<JoinResult, Failure> join(Random& random, const JoinConfig& cfg);
  // keys: GET /ace-group/G (group keying material); saved.
  Expected<GroupKeys, Failure> keys();
  // node_keys: GET /ace-group/G/nodes/NODE (with the member's Sender ID); saved.
  Expected<GroupKeys, Failure> node_keys();
  // pub_keys: GET /ace-group/G/pub-key, or FETCH with the Sender IDs `ids`.
  Expected<std::vector<PubKey>, Failure> pub_keys(const std::vector<Bytes>& ids = {});
  Expected<std::vector<Policy>, Failure> policies();
  // version: GET /ace-group/G/ctx-num.
  Expected<uint64_t, Failure> version();
  // renew: PUT /ace-group/G/nodes/NODE; returns and saves the new Sender ID.
  Expected<Bytes, Failure> renew();
  // update_pub_key: a fresh key (the stored sign_alg's curve) to POST nodes/NODE/pub-key with PoP over
  // N_S|N_C (N_S the last rsnonce, REQ17; signs again once on a fresh rsnonce).
  // The new private key replaces the stored one on success.
  Expected<cose::CoseKey, Failure> update_pub_key(Random& random);
  // leave: DELETE nodes/NODE; forgets the session and marks the material stale.
  Expected<void, Failure> leave();
  // protect_observe builds the Observe registration on nodes/NODE. `echo`: the
  // value of a verified 4.01 + Echo answer to a previous registration (a restarted
  // KDC, RFC 8613 Appendix B.1.2): the caller builds the registration again once
  // with it (carried as an inner option) and sends that instead.
  Expected<ObserveRequest, Failure> protect_observe(ByteView echo = {});
  // accept_keys stores keying material received by push (notification or a POST
  // to control_path): the group part replaces the stored one, the Sender ID and the
  // signature algorithm are kept when the push has none.
  Expected<void, Failure> accept_keys(GroupKeys k, std::optional<SignAlgorithm> sign = std::nullopt);
  // context creates the member's KDC context (reserving sequence numbers under the
  // state lock), e.g. to serve the KDC's requests at control_path. The context
  // (also ObserveRequest::ctx) must not outlive this GroupMember.
  Expected<std::unique_ptr<oscore::Context>, Failure> context();

  // load reads the session (kNotJoined without one); the operations call it.
  Expected<void, Failure> load();
  const Session& session() const { return session_; }
  const std::string& group() const { return group_; }
  const coap::Address& kdc() const { return kdc_; }
  Duration timeout() const { return timeout_; }
  const StateDir& state() const { return state_; }

  // call sends one protected request and returns the decrypted response. A verified
  // 4.01 carrying Echo (a KDC that restarted and must initialise its replay window,
  // RFC 8613 Appendix B.1.2) makes it send the same request once more with that Echo
  // as an inner option (fresh sequence number); every operation above goes through it.
  Expected<coap::Message, Failure> call(uint8_t method, const std::string& path, ByteView payload);
  // echo_rounds: how many requests were resent with an Echo by this member.
  uint64_t echo_rounds() const { return echo_rounds_; }
  // note_echo_round counts a resend made outside call() (the watch registration).
  void note_echo_round() { ++echo_rounds_; }

 private:
  Expected<GroupKeys, Failure> get_keys(const std::string& path);
  std::string base() const { return "/ace-group/" + group_; }

  crypto::Provider& provider_;
  Transport& transport_;
  StateDir state_;
  std::string group_;
  coap::Address kdc_;
  Duration timeout_;
  Session session_;
  bool loaded_ = false;
  uint64_t echo_rounds_ = 0;
  std::unique_ptr<ClaimingSequenceStore> seq_;  // STATE/kdc-seq; outlives the contexts made here
};

// echo_challenge_of returns the Echo value of a (decrypted, verified) 4.01 response
// asking for an Echo round trip, nullopt for any other response.
std::optional<Bytes> echo_challenge_of(const coap::Message& inner);

// refused turns an error response into a kRefused Failure (diagnostic payload as detail).
Failure refused(const char* what, const coap::Message& r);

}  // namespace acekdc::client
