// AceCoapGate: the CoAP binding of the ACE endpoints, sans-I/O: one request datagram
// in, one response datagram out (piggy-backed ACK for CON, NON for NON; no
// retransmission or deduplication: put a coap::Endpoint in front for that).
//
//   AS:  POST /token and /introspect, OSCORE-protected with a pre-established context
//        per peer (RFC 9203 §5: the client / RS is the identity its context names).
//        An unprotected /token request is answered invalid_client (4.01).
//   KDC: POST /authz-info unprotected: token POST (AuthzInfo::handle_token_post); the
//        derived OSCORE context is kept here. POST /authz-info protected with such a
//        context: update of access rights (handle_token_update).
//   Other paths protected with such a context: the resource handler set with
//   set_kdc_resource_handler (e.g. /ace-group/*), answered under the same context.
//   Anything else: 4.04 (4.05 for another method); OSCORE failures: the RFC 8613 error
//   responses (oscore::build_error_response).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ace/as.h"
#include "ace/authz_info.h"
#include "core/bytes.h"
#include "oscore/context.h"

namespace acekdc::ace {

class AceCoapGate {
 public:
  explicit AceCoapGate(crypto::Provider& provider, size_t max_datagram = 2048);

  // serve_as / serve_kdc attach the cores (they must outlive the gate).
  void serve_as(AuthorizationServer& as) { as_ = &as; }
  void serve_kdc(AuthzInfo& kdc) { kdc_ = &kdc; }

  // set_sequence_store: where the Sender Sequence Numbers of the KDC contexts made at
  // /authz-info are reserved before use (RFC 8613 Appendix B.1.1), one counter per
  // ContextKey ("kdc.<ID Context hex or ->.<Recipient ID hex>"); it must outlive the
  // gate. nullptr (the default): no persistence.
  void set_sequence_store(oscore::SequenceStore* store) { seq_store_ = store; }
  // restore_kdc_contexts re-creates the OSCORE context of every record of `store` that
  // kept its parameters (after a KDC restart; with the sequence store set first, the
  // sender continues above its last reservation). Returns how many were restored.
  size_t restore_kdc_contexts(const TokenStore& store);

  // KdcResourceHandler serves a request that arrived protected with the OSCORE context
  // `via` (established at /authz-info) for a path other than /authz-info. `req` is the
  // decrypted inner request; the handler sets resp's code, options and payload (resp
  // arrives as 4.04 with the exchange's type, message ID and token).
  using KdcResourceHandler =
      std::function<void(const ContextKey& via, const coap::Message& req, coap::Message& resp, int64_t now)>;
  void set_kdc_resource_handler(KdcResourceHandler h) { kdc_resources_ = std::move(h); }

  // add_peer registers a pre-established OSCORE context that authenticates `identity`
  // (a client or an RS talking to the AS).
  void add_peer(std::string identity, std::unique_ptr<oscore::Context> ctx);

  // handle processes one request datagram at unix time `now` and returns the response
  // datagram (empty: send nothing, e.g. a malformed or non-request message).
  Bytes handle(ByteView datagram, int64_t now);

  // purge drops expired tokens at the KDC and the OSCORE contexts left without one.
  std::vector<ContextKey> purge(int64_t now);

  // kdc_context returns the OSCORE context of a client established via /authz-info.
  oscore::Context* kdc_context(const ContextKey& key);
  size_t num_kdc_contexts() const { return kdc_contexts_.size(); }

 private:
  struct Peer {
    std::string identity;
    std::unique_ptr<oscore::Context> ctx;
  };
  struct KdcContext {
    ContextKey key;
    std::unique_ptr<oscore::Context> ctx;
  };
  Bytes handle_protected(const coap::MessageView& outer, ByteView datagram, int64_t now);
  Bytes handle_plain(const coap::MessageView& req, int64_t now);
  void adopt(const TokenPostResult& r);

  crypto::Provider& provider_;
  size_t max_datagram_;
  AuthorizationServer* as_ = nullptr;
  AuthzInfo* kdc_ = nullptr;
  KdcResourceHandler kdc_resources_;
  oscore::SequenceStore* seq_store_ = nullptr;
  std::vector<Peer> peers_;
  std::vector<KdcContext> kdc_contexts_;
  Bytes scratch_;
};

}  // namespace acekdc::ace
