#!/usr/bin/python3
"""Independent OSCORE server peer (cbor2 + cryptography), run by src/oscore/interop_test.cpp.

  oscore_peer.py IN.json OUT.json

For each case in IN.json (a security context and an OSCORE request that acekdc
protected as the client) this script, written from RFC 8613 and
draft-hoeglund-core-oscore-key-limits-01 alone, derives the server context
(§3.2), parses the CoAP message and the OSCORE option (§6.1, with the
Extension-1 / 'd' flags of the draft's §3.1), builds nonce (§5.2) and AAD
(§5.4), decrypts, and then protects a 2.05 response with the request nonce
(§8.3). OUT.json gets the plaintext and the response datagram per case.
Exit codes: 0 ok, 1 a check failed, 77 cbor2/cryptography not importable.
"""
import json
import sys

try:
    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
except ImportError as e:  # pragma: no cover
    print("skip: %s" % e)
    sys.exit(77)

OPT_OSCORE = 9
OUTER_ONLY = {3, 7, 35, 39, 9}
# alg -> (key length, nonce length, AEAD constructor)
AEADS = {
    10: (16, 13, lambda k: AESCCM(k, tag_length=8)),
    30: (16, 13, lambda k: AESCCM(k, tag_length=16)),
    1: (16, 12, AESGCM),
    3: (32, 12, AESGCM),
    24: (32, 12, ChaCha20Poly1305),
}


def hkdf(secret, salt, info, length):
    return HKDF(hashes.SHA256(), length, salt, info).derive(secret)


def derive(c):
    key_len, nonce_len, make = AEADS[c["alg"]]
    secret = bytes.fromhex(c["secret"])
    salt = bytes.fromhex(c["salt"])
    ctx = None if c["id_context"] is None else bytes.fromhex(c["id_context"])
    def info(id_, typ, n):
        return cbor2.dumps([id_, ctx, c["alg"], typ, n])
    sid, rid = bytes.fromhex(c["server_id"]), bytes.fromhex(c["client_id"])
    return {
        "sender_key": hkdf(secret, salt, info(sid, "Key", key_len), key_len),
        "recipient_key": hkdf(secret, salt, info(rid, "Key", key_len), key_len),
        "iv": hkdf(secret, salt, info(b"", "IV", nonce_len), nonce_len),
        "nonce_len": nonce_len, "make": make, "rid": rid, "ctx": ctx,
    }


def parse_coap(d):
    tkl = d[0] & 0x0F
    msg = {"byte0": d[0], "code": d[1], "mid": d[2:4], "token": d[4:4 + tkl], "options": [], "payload": b""}
    i, num = 4 + tkl, 0
    while i < len(d):
        if d[i] == 0xFF:
            msg["payload"] = d[i + 1:]
            break
        delta, length = d[i] >> 4, d[i] & 0x0F
        i += 1
        def ext(v):
            nonlocal i
            if v == 13:
                v = d[i] + 13; i += 1
            elif v == 14:
                v = (d[i] << 8 | d[i + 1]) + 269; i += 2
            return v
        delta, length = ext(delta), ext(length)
        num += delta
        msg["options"].append((num, d[i:i + length]))
        i += length
    return msg


def encode_options(opts):
    out, prev = b"", 0
    for num, val in sorted(opts, key=lambda o: o[0]):
        def nib(v):
            if v < 13: return v, b""
            if v < 269: return 13, bytes([v - 13])
            return 14, (v - 269).to_bytes(2, "big")
        dn, de = nib(num - prev)
        ln, le = nib(len(val))
        out += bytes([dn << 4 | ln]) + de + le + val
        prev = num
    return out


def parse_oscore_option(v):
    """RFC 8613 §6.1 + key-limits draft §3.1 (0x40 = Extension-1, then 'd' = 0x01)."""
    r = {"piv": b"", "kid": None, "kid_context": None, "id_detail": None}
    if not v:
        return r
    flags, i = v[0], 1
    if flags & 0xA0:
        raise ValueError("reserved flag bits")
    flags2 = 0
    if flags & 0x40:
        flags2, i = v[1], 2
        if flags2 & 0xFE:
            raise ValueError("reserved flag bits (second byte)")
    n = flags & 0x07
    r["piv"], i = v[i:i + n], i + n
    if flags & 0x10:
        s = v[i]
        r["kid_context"], i = v[i + 1:i + 1 + s], i + 1 + s
    if flags2 & 0x01:
        x = v[i]
        r["id_detail"], i = v[i + 1:i + 1 + x], i + 1 + x
    if flags & 0x08:
        r["kid"] = v[i:]
    return r


def nonce(iv, id_piv, piv, nonce_len):
    b = bytes([len(id_piv)]) + id_piv.rjust(nonce_len - 6, b"\0") + piv.rjust(5, b"\0")
    return bytes(x ^ y for x, y in zip(b, iv))


def aad(alg, kid, piv):
    ext = cbor2.dumps([1, [alg], kid, piv, b""])
    return cbor2.dumps(["Encrypt0", b"", ext])


def run_case(c):
    k = derive(c)
    req = parse_coap(bytes.fromhex(c["request"]))
    osc = [v for n, v in req["options"] if n == OPT_OSCORE]
    o = parse_oscore_option(osc[0])
    assert o["kid"] == k["rid"], "kid does not name the client"
    if o["kid_context"] is not None:
        assert o["kid_context"] == k["ctx"], "kid context mismatch"
    n = nonce(k["iv"], o["kid"], o["piv"], k["nonce_len"])
    a = aad(c["alg"], o["kid"], o["piv"])
    plain = k["make"](k["recipient_key"]).decrypt(n, req["payload"], a)
    # A 2.05 response with the request nonce (no Partial IV), payload from the case;
    # outer code 2.04, empty OSCORE option (§4.2, §6.1).
    resp_plain = bytes([0x45]) + b"\xff" + bytes.fromhex(c["response_payload"])
    ct = k["make"](k["sender_key"]).encrypt(n, resp_plain, a)
    tkl = len(req["token"])
    header = bytes([0x60 | tkl, 0x44]) + req["mid"] + req["token"]
    response = header + encode_options([(OPT_OSCORE, b"")]) + b"\xff" + ct
    return {
        "plaintext": plain.hex(),
        "piv": o["piv"].hex(),
        "id_detail": None if o["id_detail"] is None else o["id_detail"].hex(),
        "kid_context": None if o["kid_context"] is None else o["kid_context"].hex(),
        "outer_options": [[num, v.hex()] for num, v in req["options"]],
        "outer_code": req["code"],
        "response": response.hex(),
    }


def main():
    cases = json.load(open(sys.argv[1]))
    out, ok = [], True
    for c in cases:
        try:
            out.append(run_case(c))
        except Exception as e:  # report, keep going
            ok = False
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, open(sys.argv[2], "w"), indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
