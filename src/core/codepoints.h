// codepoints.h: every protocol number acekdc uses, in ONE place, with its source.
//
// The rule (shared/spec/profile.md): where a parameter of the seed draft
// (draft-ietf-ace-key-groupcomm-05) survives into the published standard
// (RFC 9594, RFC 9200, RFC 9203) use the number registered there; where it did
// not, use the number of the ACE interop hackathons of that time. Semantics
// always follow the seed draft. Do not write any of these numbers anywhere else.
#pragma once

#include <cstdint>

namespace acekdc::cp {

// ---- COSE algorithms (IANA "COSE Algorithms", RFC 9053) ----
namespace alg {
inline constexpr int kA128GCM = 1;
inline constexpr int kA192GCM = 2;
inline constexpr int kA256GCM = 3;
inline constexpr int kHMAC256_64 = 4;   // HMAC w/ SHA-256 truncated to 64 bits
inline constexpr int kHMAC256_256 = 5;  // HMAC w/ SHA-256; also "HKDF SHA-256" in Group OSCORE (profile.md)
inline constexpr int kHMAC384_384 = 6;
inline constexpr int kHMAC512_512 = 7;
inline constexpr int kAES_CCM_16_64_128 = 10;  // OSCORE default (RFC 8613)
inline constexpr int kAES_CCM_16_64_256 = 11;
inline constexpr int kAES_CCM_64_64_128 = 12;
inline constexpr int kAES_CCM_64_64_256 = 13;
inline constexpr int kChaCha20Poly1305 = 24;
inline constexpr int kAES_CCM_16_128_128 = 30;
inline constexpr int kAES_CCM_16_128_256 = 31;
inline constexpr int kAES_CCM_64_128_128 = 32;
inline constexpr int kAES_CCM_64_128_256 = 33;
inline constexpr int kDirect = -6;
inline constexpr int kDirectHKDF_SHA256 = -10;  // RFC 8613 writes HKDF SHA-256 as -10; accepted as 5
inline constexpr int kDirectHKDF_SHA512 = -11;
inline constexpr int kES256 = -7;
inline constexpr int kEdDSA = -8;
}  // namespace alg

// ---- COSE elliptic curves (IANA "COSE Elliptic Curves") ----
namespace crv {
inline constexpr int kP256 = 1;
inline constexpr int kP384 = 2;     // RFC 9053 Table 18 (COSE_Key length checks only)
inline constexpr int kP521 = 3;     // RFC 9053 Table 18 (COSE_Key length checks only)
inline constexpr int kX25519 = 4;
inline constexpr int kX448 = 5;     // RFC 9053 Table 18 (COSE_Key length checks only)
inline constexpr int kEd25519 = 6;
inline constexpr int kEd448 = 7;    // RFC 9053 Table 18 (COSE_Key length checks only)
}  // namespace crv

// ---- COSE key types and key parameters (RFC 9052 §7, RFC 9053) ----
namespace kty {
inline constexpr int kOKP = 1;
inline constexpr int kEC2 = 2;
inline constexpr int kSymmetric = 4;
}  // namespace kty
namespace keyparam {
inline constexpr int kKty = 1;
inline constexpr int kKid = 2;
inline constexpr int kAlg = 3;
inline constexpr int kKeyOps = 4;
inline constexpr int kBaseIV = 5;
inline constexpr int kCrv = -1;  // EC2/OKP
inline constexpr int kX = -2;
inline constexpr int kY = -3;
inline constexpr int kD = -4;
inline constexpr int kK = -1;  // Symmetric
}  // namespace keyparam

// ---- COSE header parameters (RFC 9052 §3.1) ----
namespace header {
inline constexpr int kAlg = 1;
inline constexpr int kCrit = 2;
inline constexpr int kContentType = 3;
inline constexpr int kKid = 4;
inline constexpr int kIV = 5;
inline constexpr int kPartialIV = 6;
inline constexpr int kCounterSignature = 7;
inline constexpr int kSalt = -20;  // RFC 9053 §6.1.2 (direct+HKDF recipient "salt")
// COSE_KDF_Context party info (RFC 9053 §5.2, Table 16)
inline constexpr int kPartyUIdentity = -21;
inline constexpr int kPartyUNonce = -22;
inline constexpr int kPartyUOther = -23;
inline constexpr int kPartyVIdentity = -24;
inline constexpr int kPartyVNonce = -25;
inline constexpr int kPartyVOther = -26;
}  // namespace header

// ---- CBOR tags (IANA "CBOR Tags") ----
namespace tag {
inline constexpr uint64_t kCoseEncrypt0 = 16;
inline constexpr uint64_t kCoseMac0 = 17;
inline constexpr uint64_t kCoseSign1 = 18;
inline constexpr uint64_t kCwt = 61;  // RFC 8392
inline constexpr uint64_t kCoseEncrypt = 96;
inline constexpr uint64_t kCoseMac = 97;
inline constexpr uint64_t kCoseSign = 98;
}  // namespace tag

// ---- CoAP Content-Formats (profile.md "Content-Formats") ----
namespace cf {
inline constexpr uint16_t kTextPlain = 0;
inline constexpr uint16_t kLinkFormat = 40;
inline constexpr uint16_t kOctetStream = 42;
inline constexpr uint16_t kXml = 41;                // application/xml (RFC 7252 §12.3)
inline constexpr uint16_t kJson = 50;
inline constexpr uint16_t kAceCbor = 19;            // application/ace+cbor (RFC 9200)
inline constexpr uint16_t kCbor = 60;               // application/cbor
inline constexpr uint16_t kCwt = 61;                // application/cwt
inline constexpr uint16_t kCoseKey = 101;           // application/cose-key
inline constexpr uint16_t kCoseKeySet = 102;        // application/cose-key-set
inline constexpr uint16_t kAceGroupcommCbor = 261;  // application/ace-groupcomm+cbor (RFC 9594)
}  // namespace cf

// ---- CWT claims (RFC 8392; ACE ones from RFC 9200/9203 registrations) ----
namespace claim {
inline constexpr int kIss = 1;
inline constexpr int kSub = 2;
inline constexpr int kAud = 3;
inline constexpr int kExp = 4;
inline constexpr int kNbf = 5;
inline constexpr int kIat = 6;
inline constexpr int kCti = 7;
inline constexpr int kCnf = 8;           // RFC 8747
inline constexpr int kScope = 9;         // RFC 9200
inline constexpr int kAceProfile = 38;   // RFC 9200
inline constexpr int kExi = 40;          // RFC 9200
}  // namespace claim

// ---- cnf (RFC 8747) confirmation methods ----
namespace cnf {
inline constexpr int kCoseKey = 1;
inline constexpr int kEncryptedCoseKey = 2;
inline constexpr int kKid = 3;
inline constexpr int kOscoreInputMaterial = 4;  // RFC 9203
}  // namespace cnf

// ---- ACE token endpoint / introspection parameters (RFC 9200, profile.md) ----
namespace ace {
inline constexpr int kAccessToken = 1;
inline constexpr int kExpiresIn = 2;
inline constexpr int kReqCnf = 4;
inline constexpr int kAudience = 5;
inline constexpr int kCnf = 8;
inline constexpr int kScope = 9;
inline constexpr int kActive = 10;  // introspection response
inline constexpr int kToken = 11;   // introspection request
inline constexpr int kClientId = 24;
inline constexpr int kError = 30;
inline constexpr int kErrorDescription = 31;
inline constexpr int kGrantType = 33;
inline constexpr int kTokenType = 34;
inline constexpr int kAceProfile = 38;
inline constexpr int kRsCnf = 41;
inline constexpr int kGrantClientCredentials = 2;
inline constexpr int kProfileCoapOscore = 2;  // RFC 9203
// Errors (RFC 9200 §5.8.3, CBOR abbreviations)
inline constexpr int kErrInvalidRequest = 1;
inline constexpr int kErrInvalidClient = 2;
inline constexpr int kErrInvalidGrant = 3;
inline constexpr int kErrUnauthorizedClient = 4;
inline constexpr int kErrUnsupportedGrantType = 5;
inline constexpr int kErrInvalidScope = 6;
inline constexpr int kErrUnsupportedPopKey = 7;
inline constexpr int kErrIncompatibleAceProfiles = 8;
// Token POST to /authz-info (RFC 9203 §4.1, profile.md)
inline constexpr int kNonce1 = 40;
inline constexpr int kNonce2 = 42;
inline constexpr int kAceClientRecipientId = 43;
inline constexpr int kAceServerRecipientId = 44;
inline constexpr int kSignInfo = 45;
inline constexpr int kRsNonce = 46;
inline constexpr int kPubKeyEnc = 204;
}  // namespace ace

// ---- OSCORE_Input_Material (RFC 9203 §3.2.1) ----
namespace osc {
inline constexpr int kId = 0;
inline constexpr int kVersion = 1;
inline constexpr int kMs = 2;
inline constexpr int kHkdf = 3;
inline constexpr int kAlg = 4;
inline constexpr int kSalt = 5;
inline constexpr int kContextId = 6;
// Group_OSCORE_Input_Material additions (profile.md REQ7/REQ8)
inline constexpr int kGroupSenderId = 7;
inline constexpr int kSignAlg = 10;
inline constexpr int kSignParams = 11;
}  // namespace osc

// ---- ACE Groupcomm parameters (seed draft §8, numbers per profile.md) ----
namespace gc {
inline constexpr int kScope = 3;
inline constexpr int kGetPubKeys = 4;
inline constexpr int kClientCred = 5;
inline constexpr int kCnonce = 6;
inline constexpr int kGkty = 7;
inline constexpr int kKey = 8;
inline constexpr int kNum = 9;
inline constexpr int kAceGroupcommProfile = 10;
inline constexpr int kExp = 11;
inline constexpr int kPubKeys = 13;
inline constexpr int kPeerRoles = 14;
inline constexpr int kGroupPolicies = 16;
inline constexpr int kGroupSenderId = 21;
inline constexpr int kClientCredVerify = 24;
inline constexpr int kPubKeysRepos = 25;
inline constexpr int kControlPath = 26;
inline constexpr int kMgtKeyMaterial = 27;
inline constexpr int kSignInfo = 29;
inline constexpr int kPubKeyEnc = 204;
inline constexpr int kRsNonce = 46;
// gkty (REQ7): Group_OSCORE_Input_Material
inline constexpr int kGktyGroupOscoreInputMaterial = 1;
// ace-groupcomm-profile (REQ12)
inline constexpr int kProfileCoapGroupOscoreApp = 1;
// pub_key_enc (REQ6): COSE_Key
inline constexpr int kPubKeyEncCoseKey = 1;
// group_policies labels (REQ14)
inline constexpr int kPolicySeqSyncMethod = 0;
inline constexpr int kPolicyKeyUpdateCheckInterval = 1;
inline constexpr int kPolicyExpirationDelta = 2;
inline constexpr int kSeqSyncBestEffort = 1;
inline constexpr int kSeqSyncBaseline = 2;
inline constexpr int kSeqSyncEcho = 3;
}  // namespace gc

// ---- Roles (REQ2; OPT7 integer abbreviations) ----
namespace role {
inline constexpr int kRequester = 1;
inline constexpr int kResponder = 2;
inline constexpr int kMonitor = 3;
inline constexpr const char* kRequesterName = "requester";
inline constexpr const char* kResponderName = "responder";
inline constexpr const char* kMonitorName = "monitor";
}  // namespace role

// ---- CoAP (RFC 7252 §12; RFC 7641, RFC 7959, RFC 7967, RFC 8132, RFC 8613, RFC 9175) ----
namespace coap {
inline constexpr uint8_t kVersion = 1;         // RFC 7252 §3
inline constexpr uint8_t kPayloadMarker = 0xFF;  // RFC 7252 §3
inline constexpr int kDefaultPort = 5683;      // RFC 7252 §12.6
// Message types (RFC 7252 §3)
namespace type {
inline constexpr uint8_t kCon = 0;
inline constexpr uint8_t kNon = 1;
inline constexpr uint8_t kAck = 2;
inline constexpr uint8_t kRst = 3;
}  // namespace type
// Codes as c.dd packed into one byte (RFC 7252 §12.1; FETCH/PATCH/iPATCH RFC 8132 §6;
// 2.31 and 4.08 RFC 7959 §2.9; 4.29 RFC 8516)
namespace code {
constexpr uint8_t make(uint8_t cls, uint8_t detail) { return static_cast<uint8_t>((cls << 5) | detail); }
inline constexpr uint8_t kEmpty = 0x00;
inline constexpr uint8_t kGet = 0x01;
inline constexpr uint8_t kPost = 0x02;
inline constexpr uint8_t kPut = 0x03;
inline constexpr uint8_t kDelete = 0x04;
inline constexpr uint8_t kFetch = 0x05;
inline constexpr uint8_t kPatch = 0x06;
inline constexpr uint8_t kIPatch = 0x07;
inline constexpr uint8_t kCreated = make(2, 1);
inline constexpr uint8_t kDeleted = make(2, 2);
inline constexpr uint8_t kValid = make(2, 3);
inline constexpr uint8_t kChanged = make(2, 4);
inline constexpr uint8_t kContent = make(2, 5);
inline constexpr uint8_t kContinue = make(2, 31);
inline constexpr uint8_t kBadRequest = make(4, 0);
inline constexpr uint8_t kUnauthorized = make(4, 1);
inline constexpr uint8_t kBadOption = make(4, 2);
inline constexpr uint8_t kForbidden = make(4, 3);
inline constexpr uint8_t kNotFound = make(4, 4);
inline constexpr uint8_t kMethodNotAllowed = make(4, 5);
inline constexpr uint8_t kNotAcceptable = make(4, 6);
inline constexpr uint8_t kRequestEntityIncomplete = make(4, 8);
inline constexpr uint8_t kConflict = make(4, 9);
inline constexpr uint8_t kPreconditionFailed = make(4, 12);
inline constexpr uint8_t kRequestEntityTooLarge = make(4, 13);
inline constexpr uint8_t kUnsupportedContentFormat = make(4, 15);
inline constexpr uint8_t kUnprocessableEntity = make(4, 22);
inline constexpr uint8_t kTooManyRequests = make(4, 29);
inline constexpr uint8_t kInternalServerError = make(5, 0);
inline constexpr uint8_t kNotImplemented = make(5, 1);
inline constexpr uint8_t kBadGateway = make(5, 2);
inline constexpr uint8_t kServiceUnavailable = make(5, 3);
inline constexpr uint8_t kGatewayTimeout = make(5, 4);
inline constexpr uint8_t kProxyingNotSupported = make(5, 5);
}  // namespace code
// Option numbers (RFC 7252 §12.2; Observe RFC 7641 §7; Block RFC 7959 §7;
// OSCORE RFC 8613 §2; No-Response RFC 7967 §2; Echo/Request-Tag RFC 9175 §2-3)
namespace option {
inline constexpr uint16_t kIfMatch = 1;
inline constexpr uint16_t kUriHost = 3;
inline constexpr uint16_t kETag = 4;
inline constexpr uint16_t kIfNoneMatch = 5;
inline constexpr uint16_t kObserve = 6;
inline constexpr uint16_t kUriPort = 7;
inline constexpr uint16_t kLocationPath = 8;
inline constexpr uint16_t kOscore = 9;
inline constexpr uint16_t kUriPath = 11;
inline constexpr uint16_t kContentFormat = 12;
inline constexpr uint16_t kMaxAge = 14;
inline constexpr uint16_t kUriQuery = 15;
inline constexpr uint16_t kAccept = 17;
inline constexpr uint16_t kLocationQuery = 20;
inline constexpr uint16_t kBlock2 = 23;
inline constexpr uint16_t kBlock1 = 27;
inline constexpr uint16_t kSize2 = 28;
inline constexpr uint16_t kProxyUri = 35;
inline constexpr uint16_t kProxyScheme = 39;
inline constexpr uint16_t kSize1 = 60;
inline constexpr uint16_t kEcho = 252;
inline constexpr uint16_t kNoResponse = 258;
inline constexpr uint16_t kRequestTag = 292;
}  // namespace option
// Transmission parameters (RFC 7252 §4.8) and Leisure (RFC 7252 §8.2)
namespace param {
inline constexpr int kAckTimeoutMs = 2000;
inline constexpr double kAckRandomFactor = 1.5;
inline constexpr int kMaxRetransmit = 4;
inline constexpr int kNstart = 1;
inline constexpr int kDefaultLeisureMs = 5000;
inline constexpr int kExchangeLifetimeS = 247;
inline constexpr int kNonLifetimeS = 145;
inline constexpr int kMaxAgeDefaultS = 60;
}  // namespace param
// Observe (RFC 7641 §4.5: CON notification at least every 24 h; §3.4 reordering window 128 s)
namespace observe {
inline constexpr uint32_t kRegister = 0;
inline constexpr uint32_t kDeregister = 1;
inline constexpr uint32_t kSequenceModulus = 1u << 24;
inline constexpr int kReorderWindowS = 128;
}  // namespace observe
// All-CoAP-Nodes multicast addresses (RFC 7252 §12.8)
inline constexpr const char* kAllCoapNodesIpv4 = "224.0.1.187";
inline constexpr const char* kAllCoapNodesIpv6LinkLocal = "ff02::fd";
inline constexpr const char* kAllCoapNodesIpv6SiteLocal = "ff05::fd";
}  // namespace coap

// ---- OSCORE (RFC 8613) and the key-limits extension (draft-hoeglund-core-oscore-key-limits-01) ----
// The OSCORE option number itself is coap::option::kOscore (RFC 8613 §2).
namespace oscore {
inline constexpr uint8_t kVersion = 1;                  // RFC 8613 §5.4 oscore_version
inline constexpr const char* kInfoTypeKey = "Key";      // RFC 8613 §3.2.1 info 'type'
inline constexpr const char* kInfoTypeIV = "IV";        // RFC 8613 §3.2.1 info 'type'
inline constexpr const char* kEncrypt0Context = "Encrypt0";  // RFC 8613 §5.4 / RFC 9052 §5.3
// Flag bits of the first option byte (RFC 8613 §6.1; registry positions count from the MSB)
inline constexpr uint8_t kFlagPivLenMask = 0x07;        // n: Partial IV length (6, 7 reserved)
inline constexpr uint8_t kFlagKid = 0x08;               // k (position 4)
inline constexpr uint8_t kFlagKidContext = 0x10;        // h (position 3)
inline constexpr uint8_t kFlagExtension1 = 0x40;        // position 1, key-limits draft §3.1/§5.1
inline constexpr uint8_t kFlagReserved = 0xA0;          // positions 0 and 2: malformed if set
// Flag bits of the second option byte (positions 8-15, key-limits draft §3.1/§5.1)
inline constexpr uint8_t kFlag2IdDetail = 0x01;         // d (position 15)
inline constexpr uint8_t kFlag2Reserved = 0xFE;         // positions 8-14: malformed if set
inline constexpr uint64_t kMaxPartialIv = (uint64_t{1} << 40) - 1;  // RFC 8613 §7.2.1
inline constexpr uint8_t kMaxPartialIvLen = 5;          // RFC 8613 §5.2
inline constexpr uint32_t kDefaultReplayWindow = 32;    // RFC 8613 §3.2.2 / §7.4
// Key usage limits (key-limits draft §2.1.1): q = 2^20, v = 2^20 (2^10 for
// AES-CCM-16-64-128), l = 2^8 blocks; no triplet whose IA or CA exceeds 2^-54.
inline constexpr uint64_t kDefaultLimitQ = uint64_t{1} << 20;
inline constexpr uint64_t kDefaultLimitV = uint64_t{1} << 20;
inline constexpr uint64_t kDefaultLimitVCcm8 = uint64_t{1} << 10;
inline constexpr uint64_t kDefaultLimitL = uint64_t{1} << 8;
inline constexpr int kMaxAdvantageLog2 = -54;
// updateCtx (key-limits draft §3.2, Figure 4): HkdfLabel label = "oscore " + Label.
// The -01 draft leaves Label open; we use "key update" (the label later adopted by
// draft-ietf-core-oscore-key-update).
inline constexpr const char* kHkdfLabelPrefix = "oscore ";
inline constexpr const char* kKeyUpdateLabel = "key update";
}  // namespace oscore

// ---- Group OSCORE, group mode (draft-ietf-core-oscore-groupcomm-23, as aiocoap implements it) ----
namespace group_oscore {
inline constexpr uint8_t kFlagGroup = 0x20;                   // Group Flag, position 2 of the OSCORE option (-23, OSCORE option)
inline constexpr const char* kInfoTypeSEKey = "SEKey";        // Signature Encryption Key derivation 'type' (-23)
inline constexpr const char* kCountersignContext = "CounterSignature0";  // RFC 9338 §3.3 / §4.1 Countersign_structure
// keystream 'info' type (-23, encryption of the countersignature): CBOR true for requests, false for responses.
inline constexpr bool kKeystreamRequest = true;
inline constexpr bool kKeystreamResponse = false;
}  // namespace group_oscore

}  // namespace acekdc::cp
