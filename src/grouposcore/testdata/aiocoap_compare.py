#!/usr/bin/python3
# LOCAL ONLY (not in CI): drive aiocoap's Group OSCORE implementation
# (aiocoap.oscore.SimpleGroupContext, draft-ietf-core-oscore-groupcomm-23) on the inputs
# of python_cross_test.cpp, for the AiocoapInterop test there. Needs an aiocoap source
# tree (ACEKDC_AIOCOAP_DIR) and python3-filelock.
#
# aiocoap takes CCS credentials; our members' credentials are bare COSE_Keys
# {1: 1, 2: kid, -1: 6, -2: x} and there is no GM credential (null). The context is
# built with CCSs for aiocoap's consistency checks, then the credentials that go into
# the external_aad are replaced by ours. Nothing else of aiocoap is changed.
#
#   aiocoap_compare.py AIOCOAP_DIR MS SALT GID request SID SEED SEQ
#   aiocoap_compare.py AIOCOAP_DIR MS SALT GID serve SID SEED PEER_SID PEER_SEED REQUEST_HEX PAYLOAD_HEX
#       (verify a request from PEER, print it, answer it in group mode)
#   aiocoap_compare.py AIOCOAP_DIR MS SALT GID verify_response SID SEED PEER_SID PEER_SEED RESPONSE_HEX REQ_PIV
import sys

sys.path.insert(0, sys.argv[1])

import cbor2  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

import aiocoap.oscore as oscore  # noqa: E402
from aiocoap import CONTENT, GET, NON, POST, Message  # noqa: E402


def h(s):
    return bytes.fromhex(s)


def x_of(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ccs(seed):
    return cbor2.dumps({8: {1: {1: 1, 3: -8, -1: 6, -2: x_of(seed)}}})


def our_cred(seed, kid):
    return cbor2.dumps({1: 1, 2: kid, -1: 6, -2: x_of(seed)}, canonical=True)


def group(ms, salt, gid, sid, seed, peers):
    alg = oscore.algorithms["AES-CCM-16-64-128"]
    ctx = oscore.SimpleGroupContext(
        alg, oscore.hashfunctions["sha256"], oscore.Ed25519(), alg, None, gid, ms, salt, sid, seed,
        ccs(seed), {kid: ccs(pseed) for kid, pseed in peers}, None)
    ctx.sender_auth_cred = our_cred(seed, sid)
    ctx.recipient_auth_creds = {kid: our_cred(pseed, kid) for kid, pseed in peers}
    return ctx


def main(argv):
    ms, salt, gid, cmd = h(argv[2]), h(argv[3]), h(argv[4]), argv[5]
    sid, seed = h(argv[6]), h(argv[7])
    if cmd == "request":
        ctx = group(ms, salt, gid, sid, seed, [])
        ctx.sender_sequence_number = int(argv[8])
        msg = Message(code=GET, uri_path=["temp"])
        outer, _ = ctx.protect(msg)
        outer.mtype, outer.mid, outer.token = NON, 0x1234, b"\x7a"
        print("datagram", outer.encode().hex())
    elif cmd == "serve":
        peer_sid, peer_seed = h(argv[8]), h(argv[9])
        ctx = group(ms, salt, gid, sid, seed, [(peer_sid, peer_seed)])
        req = Message.decode(h(argv[10]))
        _, _, unprotected, _ = ctx._extract_encrypted0(req)
        aspect = ctx.get_oscore_context_for(unprotected)
        plain, request_id = aspect.unprotect(req)
        print("sender", aspect.recipient_id.hex())
        print("path", "/" + "/".join(plain.opt.uri_path))
        print("payload", plain.payload.hex() or "-")
        resp = Message(code=CONTENT, payload=h(argv[11]))
        outer, _ = ctx.protect(resp, request_id)
        outer.mtype, outer.mid, outer.token = NON, 0x4321, req.token
        print("response", outer.encode().hex())
    elif cmd == "verify_response":
        peer_sid, peer_seed = h(argv[8]), h(argv[9])
        ctx = group(ms, salt, gid, sid, seed, [(peer_sid, peer_seed)])
        resp = Message.decode(h(argv[10]))
        request_id = oscore.RequestIdentifiers(sid, h(argv[11]), can_reuse_nonce=None, request_code=POST)
        _, _, unprotected, _ = ctx._extract_encrypted0(resp)
        aspect = ctx.context_from_response(unprotected)
        plain, _ = aspect.unprotect(resp, request_id)
        print("sender", aspect.recipient_id.hex())
        print("code", "%02x" % int(plain.code))
        print("payload", plain.payload.hex() or "-")


if __name__ == "__main__":
    main(sys.argv)
