#!/usr/bin/python3
"""Independent COSE check (cbor2 + cryptography), run by src/cose/interop_test.cpp.

  cose_check.py verify IN.json   -- verify/decrypt messages acekdc produced
  cose_check.py make OUT.json    -- produce messages for acekdc to verify

Everything COSE-specific (Sig_structure, Enc_structure, tags, header labels) is
built here from RFC 9052 / RFC 9053 directly; nothing comes from acekdc.
Exit codes: 0 ok, 1 a check failed, 77 cbor2/cryptography not importable.
"""
import json
import os
import sys

try:
    import cbor2
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature, encode_dss_signature)
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM
except ImportError as e:  # pragma: no cover
    print("skip: %s" % e)
    sys.exit(77)

# RFC 9052 §9 / IANA: CBOR tags and header labels; RFC 9053: algorithm ids.
TAG_SIGN1, TAG_ENCRYPT0 = 18, 16
H_ALG, H_KID, H_IV = 1, 4, 5
ALG_EDDSA, ALG_ES256, ALG_CCM_16_64_128 = -8, -7, 10

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def split(msg_hex, tag, n):
    item = cbor2.loads(bytes.fromhex(msg_hex))
    check(isinstance(item, cbor2.CBORTag) and item.tag == tag, "tag %d" % tag)
    arr = item.value if isinstance(item, cbor2.CBORTag) else item
    check(isinstance(arr, list) and len(arr) == n, "array of %d" % n)
    prot_bytes, unprot = arr[0], arr[1]
    prot = cbor2.loads(prot_bytes) if prot_bytes else {}
    return arr, prot_bytes, prot, unprot


def sig_structure(prot_bytes, aad, payload):
    return cbor2.dumps(["Signature1", prot_bytes, aad, payload])


def enc_structure(prot_bytes, aad):
    return cbor2.dumps(["Encrypt0", prot_bytes, aad])


def verify_sign1(m):
    arr, pb, prot, unprot = split(m["msg"], TAG_SIGN1, 4)
    payload, sig = arr[2], arr[3]
    aad = bytes.fromhex(m["aad"])
    check(payload == bytes.fromhex(m["payload"]), "%s payload" % m["name"])
    check(unprot.get(H_KID) == bytes.fromhex(m["kid"]), "%s kid" % m["name"])
    tbs = sig_structure(pb, aad, payload)
    x = bytes.fromhex(m["x"])
    if m["alg"] == ALG_EDDSA:
        check(prot.get(H_ALG) == ALG_EDDSA, "%s alg header" % m["name"])
        pub = ed25519.Ed25519PublicKey.from_public_bytes(x)
        verify = lambda data, s: pub.verify(s, data)
    else:
        check(prot.get(H_ALG) == ALG_ES256, "%s alg header" % m["name"])
        y = bytes.fromhex(m["y"])
        pub = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()).public_key()
        check(len(sig) == 64, "%s ES256 signature is r||s" % m["name"])

        def verify(data, s):
            der = encode_dss_signature(int.from_bytes(s[:32], "big"), int.from_bytes(s[32:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
    try:
        verify(tbs, sig)
        print("ok: %s verifies" % m["name"])
    except InvalidSignature:
        check(False, "%s signature" % m["name"])
    # The checker itself must be able to fail: other external AAD, flipped payload.
    for bad_tbs in (sig_structure(pb, aad + b"x", payload),
                    sig_structure(pb, aad, bytes([payload[0] ^ 1]) + payload[1:])):
        try:
            verify(bad_tbs, sig)
            check(False, "%s: tampered input verified" % m["name"])
        except InvalidSignature:
            pass


def decrypt_encrypt0(m):
    arr, pb, prot, unprot = split(m["msg"], TAG_ENCRYPT0, 3)
    check(prot.get(H_ALG) == ALG_CCM_16_64_128, "%s alg header" % m["name"])
    iv = unprot.get(H_IV)
    check(isinstance(iv, bytes) and len(iv) == 13, "%s 13-byte IV" % m["name"])
    aad = bytes.fromhex(m["aad"])
    ccm = AESCCM(bytes.fromhex(m["k"]), tag_length=8)
    try:
        pt = ccm.decrypt(iv, arr[2], enc_structure(pb, aad))
        check(pt == bytes.fromhex(m["plaintext"]), "%s plaintext" % m["name"])
        print("ok: %s decrypts" % m["name"])
    except InvalidTag:
        check(False, "%s decrypt" % m["name"])
    try:
        ccm.decrypt(iv, arr[2], enc_structure(pb, aad + b"x"))
        check(False, "%s: wrong AAD decrypted" % m["name"])
    except InvalidTag:
        pass


def cmd_verify(path):
    with open(path) as f:
        doc = json.load(f)
    for m in doc["sign1"]:
        verify_sign1(m)
    for m in doc["encrypt0"]:
        decrypt_encrypt0(m)
    check(len(doc["sign1"]) >= 2 and len(doc["encrypt0"]) >= 1, "enough messages")


def cmd_make(path):
    payload = b"made by cose_check.py"
    aad = b"interop-aad"
    out = {"sign1": [], "encrypt0": []}
    # EdDSA
    sk = ed25519.Ed25519PrivateKey.generate()
    pb = cbor2.dumps({H_ALG: ALG_EDDSA})
    sig = sk.sign(sig_structure(pb, aad, payload))
    x = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    msg = cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [pb, {H_KID: b"py-ed"}, payload, sig]))
    out["sign1"].append({"name": "py EdDSA", "alg": ALG_EDDSA, "msg": msg.hex(), "x": x.hex(),
                         "aad": aad.hex(), "payload": payload.hex()})
    # ES256
    ek = ec.generate_private_key(ec.SECP256R1())
    pb = cbor2.dumps({H_ALG: ALG_ES256})
    r, s = decode_dss_signature(ek.sign(sig_structure(pb, aad, payload), ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    nums = ek.public_key().public_numbers()
    msg = cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [pb, {H_KID: b"py-es"}, payload, sig]))
    out["sign1"].append({"name": "py ES256", "alg": ALG_ES256, "msg": msg.hex(),
                         "x": nums.x.to_bytes(32, "big").hex(), "y": nums.y.to_bytes(32, "big").hex(),
                         "aad": aad.hex(), "payload": payload.hex()})
    # AES-CCM-16-64-128
    k = os.urandom(16)
    iv = os.urandom(13)
    pb = cbor2.dumps({H_ALG: ALG_CCM_16_64_128})
    ct = AESCCM(k, tag_length=8).encrypt(iv, payload, enc_structure(pb, aad))
    msg = cbor2.dumps(cbor2.CBORTag(TAG_ENCRYPT0, [pb, {H_IV: iv}, ct]))
    out["encrypt0"].append({"name": "py AES-CCM-16-64-128", "msg": msg.hex(), "k": k.hex(),
                            "aad": aad.hex(), "plaintext": payload.hex()})
    with open(path, "w") as f:
        json.dump(out, f)
    print("ok: wrote", path)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("verify", "make"):
        print(__doc__)
        return 2
    if sys.argv[1] == "verify":
        cmd_verify(sys.argv[2])
    else:
        cmd_make(sys.argv[2])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
