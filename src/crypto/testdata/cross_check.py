# Independent cross-check of acekdc's crypto provider with python3-cryptography
# (run by src/crypto/cross_check_test.cpp with /usr/bin/python3; not a vector file).
#
# Reads lines "<kind> <hex> <hex> ..." on stdin and prints one line per input:
# "ok" or "fail". Kinds:
#   ed25519 <public x> <msg> <sig>               verify an Ed25519 signature
#   es256 <x> <y> <msg> <r||s>                   verify an ES256 signature
#   ccm8 <key> <nonce> <aad> <ct||tag> <pt>      AES-CCM, 8-byte tag: decrypt, compare
#   chacha <key> <nonce> <aad> <ct||tag> <pt>    ChaCha20-Poly1305: decrypt, compare
#   make <kind> <key> <nonce> <aad> <pt>         encrypt (ccm8|chacha) here; prints ct||tag
#   make-ed25519 <seed> <msg>                    sign here; prints the signature
import sys

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, ChaCha20Poly1305


def aead(kind, key):
    return AESCCM(key, tag_length=8) if kind == "ccm8" else ChaCha20Poly1305(key)


def run(kind, args):
    if kind == "make":  # args[0] names the AEAD; the rest is hex
        return run_make(args[0], args[1:])
    b = [bytes.fromhex(a) if a != "-" else b"" for a in args]
    try:
        if kind == "ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(b[0]).verify(b[2], b[1])
        elif kind == "es256":
            pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b[0], "big"), int.from_bytes(b[1], "big"),
                                                ec.SECP256R1()).public_key()
            r, s = int.from_bytes(b[3][:32], "big"), int.from_bytes(b[3][32:], "big")
            if len(b[3]) != 64:
                return "fail"
            pub.verify(encode_dss_signature(r, s), b[2], ec.ECDSA(hashes.SHA256()))
        elif kind in ("ccm8", "chacha"):
            if aead(kind, b[0]).decrypt(b[1], b[3], b[2]) != b[4]:
                return "fail"
        elif kind == "make-ed25519":
            return ed25519.Ed25519PrivateKey.from_private_bytes(b[0]).sign(b[1]).hex()
        else:
            return "unknown"
    except (InvalidSignature, InvalidTag):
        return "fail"
    return "ok"


def run_make(kind, args):
    key, nonce, aad, pt = [bytes.fromhex(a) if a != "-" else b"" for a in args]
    return aead(kind, key).encrypt(nonce, pt, aad).hex()


for line in sys.stdin:
    parts = line.split()
    if parts:
        print(run(parts[0], parts[1:]), flush=True)
