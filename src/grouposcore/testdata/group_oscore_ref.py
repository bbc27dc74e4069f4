#!/usr/bin/python3
# An independent Group OSCORE (group mode) implementation for cross-checking
# src/grouposcore: draft-ietf-core-oscore-groupcomm-23 with python3-cryptography and
# python3-cbor2, written from the draft text (not from the C++ code).
#
# Fixed parameters: AES-CCM-16-64-128 (10), HKDF SHA-256 (5), EdDSA/Ed25519 (-8).
# Authentication credentials: the COSE_Key {1: 1, 2: kid, -1: 6, -2: x}; gm_cred null.
#
# Usage:
#   group_oscore_ref.py derive MS SALT GID SID_A SID_B
#       prints "name hex" lines: key_A key_B iv sekey
#   group_oscore_ref.py request MS SALT GID SID SEED SEQ TYPE MID TOKEN CODE OPTS PAYLOAD [tamper]
#       prints "datagram hex": a group request from SID (OPTS: CBOR-free inner options
#       as hex of the CoAP option encoding); tamper flips a ciphertext bit and re-signs.
#   group_oscore_ref.py verify MS SALT GID DATAGRAM SENDER_SEED [REQ_KID REQ_PIV]
#       verifies a request (no REQ_*) or a response and prints
#       "sender hex", "code hex", "plaintext hex" or "error reason".
#   group_oscore_ref.py verify_es256 MS SALT GID DATAGRAM X Y [REQ_KID REQ_PIV]
#       the same for a group using ES256 (-7): the sender's P-256 public key is x, y;
#       credential {1: 2, 2: kid, -1: 1, -2: x, -3: y}.
import sys

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG, SIGN_ALG, KEY_LEN, NONCE_LEN, TAG_LEN, SIG_LEN = 10, -8, 16, 13, 8, 64


def hkdf(salt, ikm, info, length):
    return HKDF(hashes.SHA256(), length, salt, cbor2.dumps(info)).derive(ikm)


def derive(ms, salt, gid, ident, typ, length):
    return hkdf(salt, ms, [ident, gid, ALG, typ, length], length)


def public_x(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def credential(x, kid):
    return cbor2.dumps({1: 1, 2: kid, -1: 6, -2: x}, canonical=True)


def external_aad(req_kid, req_piv, gid, option, cred, sign_alg=SIGN_ALG):
    return cbor2.dumps([1, [ALG, ALG, sign_alg, None], req_kid, req_piv, b"", gid, option, cred, None])


def nonce(common_iv, ident, piv):
    x = bytes([len(ident)]) + bytes(NONCE_LEN - 6 - len(ident)) + ident + bytes(5 - len(piv)) + piv
    return bytes(a ^ b for a, b in zip(x, common_iv))


def keystream(sekey, gid, ident, piv, is_request):
    return hkdf(piv, sekey, [ident, gid, is_request, SIG_LEN], SIG_LEN)


def tbs(ext, ciphertext):
    return cbor2.dumps(["CounterSignature0", b"", b"", ext, ciphertext])


def piv_bytes(seq):
    return seq.to_bytes(5, "big").lstrip(b"\0") or b"\0"


def coap_options(options):
    out, last = b"", 0
    for number, value in options:
        delta, length = number - last, len(value)
        last = number

        def nib(v):
            if v < 13:
                return v, b""
            if v < 269:
                return 13, bytes([v - 13])
            return 14, (v - 269).to_bytes(2, "big")

        dn, dx = nib(delta)
        ln, lx = nib(length)
        out += bytes([(dn << 4) | ln]) + dx + lx + value
    return out


def parse_coap(d):
    tkl = d[0] & 0x0F
    code, mid, token = d[1], d[2:4], d[4:4 + tkl]
    i, number, options = 4 + tkl, 0, []
    while i < len(d) and d[i] != 0xFF:
        dn, ln = d[i] >> 4, d[i] & 0x0F
        i += 1

        def ext(v):
            nonlocal i
            if v == 13:
                i += 1
                return d[i - 1] + 13
            if v == 14:
                i += 2
                return int.from_bytes(d[i - 2:i], "big") + 269
            return v

        number += ext(dn)
        length = ext(ln)
        options.append((number, d[i:i + length]))
        i += length
    payload = d[i + 1:] if i < len(d) else b""
    return d[0], code, mid, token, options, payload


def context(ms, salt, gid):
    return {
        "iv": derive(ms, salt, gid, b"", "IV", NONCE_LEN),
        "sekey": derive(ms, salt, gid, b"", "SEKey", KEY_LEN),
        "ms": ms, "salt": salt, "gid": gid,
    }


def protect_request(ctx, sid, seed, seq, typ, mid, token, code, opts, payload, tamper=False):
    gid = ctx["gid"]
    piv = piv_bytes(seq)
    option = bytes([len(piv) | 0x08 | 0x10 | 0x20]) + piv + bytes([len(gid)]) + gid + sid
    cred = credential(public_x(seed), sid)
    ext = external_aad(sid, piv, gid, option, cred)
    aad = cbor2.dumps(["Encrypt0", b"", ext])
    key = derive(ctx["ms"], ctx["salt"], gid, sid, "Key", KEY_LEN)
    plaintext = bytes([code]) + opts + ((b"\xff" + payload) if payload else b"")
    ct = AESCCM(key, TAG_LEN).encrypt(nonce(ctx["iv"], sid, piv), plaintext, aad)
    if tamper:
        ct = bytes([ct[0] ^ 0x01]) + ct[1:]
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(tbs(ext, ct))
    ks = keystream(ctx["sekey"], gid, sid, piv, True)
    enc_sig = bytes(a ^ b for a, b in zip(sig, ks))
    header = bytes([0x40 | (typ << 4) | len(token), 0x02]) + mid.to_bytes(2, "big") + token
    return header + coap_options([(9, option)]) + b"\xff" + ct + enc_sig


class Es256Sender:
    """The sender's P-256 public key (x, y) for verify(); credential and check differ."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def credential(self, kid):
        return cbor2.dumps({1: 2, 2: kid, -1: 1, -2: self.x, -3: self.y}, canonical=True)

    def verify(self, sig, data):
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(self.x, "big"), int.from_bytes(self.y, "big"),
                                            ec.SECP256R1()).public_key()
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, data, ec.ECDSA(hashes.SHA256()))


def verify(ctx, datagram, sender_seed, req_kid=None, req_piv=None):
    gid = ctx["gid"]
    _, code, _, _, options, payload = parse_coap(datagram)
    oscore = [v for n, v in options if n == 9]
    if len(oscore) != 1:
        return "error no-option"
    option = oscore[0]
    flags = option[0]
    if not flags & 0x20:
        return "error not-group"
    n = flags & 7
    piv = option[1:1 + n]
    rest = option[1 + n:]
    if flags & 0x10:
        s = rest[0]
        if rest[1:1 + s] != gid:
            return "error group-id"
        rest = rest[1 + s:]
    kid = rest
    is_request = req_kid is None
    if is_request:
        req_kid, req_piv = kid, piv
    generator, used_piv = (kid, piv) if piv else (req_kid, req_piv)
    es256 = isinstance(sender_seed, Es256Sender)
    cred = sender_seed.credential(kid) if es256 else credential(public_x(sender_seed), kid)
    ext = external_aad(req_kid, req_piv, gid, option, cred, -7 if es256 else SIGN_ALG)
    ct, enc_sig = payload[:-SIG_LEN], payload[-SIG_LEN:]
    sig = bytes(a ^ b for a, b in zip(enc_sig, keystream(ctx["sekey"], gid, generator, used_piv, is_request)))
    try:
        if es256:
            sender_seed.verify(sig, tbs(ext, ct))
        else:
            Ed25519PrivateKey.from_private_bytes(sender_seed).public_key().verify(sig, tbs(ext, ct))
    except InvalidSignature:
        return "error signature"
    key = derive(ctx["ms"], ctx["salt"], gid, kid, "Key", KEY_LEN)
    try:
        pt = AESCCM(key, TAG_LEN).decrypt(nonce(ctx["iv"], generator, used_piv), ct,
                                         cbor2.dumps(["Encrypt0", b"", ext]))
    except InvalidTag:
        return "error decrypt"
    return "sender %s\ncode %02x\nplaintext %s" % (kid.hex(), pt[0], pt[1:].hex())


def h(s):
    return bytes.fromhex(s)


def main(argv):
    cmd = argv[1]
    ctx = context(h(argv[2]), h(argv[3]), h(argv[4]))
    if cmd == "derive":
        print("key_A", derive(ctx["ms"], ctx["salt"], ctx["gid"], h(argv[5]), "Key", KEY_LEN).hex())
        print("key_B", derive(ctx["ms"], ctx["salt"], ctx["gid"], h(argv[6]), "Key", KEY_LEN).hex())
        print("iv", ctx["iv"].hex())
        print("sekey", ctx["sekey"].hex())
    elif cmd == "request":
        sid, seed, seq, typ, mid, token, code, opts, payload = argv[5:14]
        d = protect_request(ctx, h(sid), h(seed), int(seq), int(typ), int(mid), h(token), int(code, 16),
                            h(opts), h(payload), tamper=len(argv) > 14 and argv[14] == "tamper")
        print("datagram", d.hex())
    elif cmd == "verify_es256":
        sender = Es256Sender(h(argv[6]), h(argv[7]))
        if len(argv) > 8:
            print(verify(ctx, h(argv[5]), sender, h(argv[8]), h(argv[9])))
        else:
            print(verify(ctx, h(argv[5]), sender))
    elif cmd == "verify":
        if len(argv) > 7:
            print(verify(ctx, h(argv[5]), h(argv[6]), h(argv[7]), h(argv[8])))
        else:
            print(verify(ctx, h(argv[5]), h(argv[6])))


if __name__ == "__main__":
    main(sys.argv)
