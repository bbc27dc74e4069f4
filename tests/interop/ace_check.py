#!/usr/bin/python3
"""Independent checks of acekdc's ACE layer, written from the RFCs with cbor2 and
cryptography (no acekdc code):

  ace_check.py token FILE   FILE is JSON {"key": hex, "token": hex}: decrypts the
                            COSE_Encrypt0 access token (AES-CCM-16-64-128, Enc_structure
                            built here, RFC 9052 §5.3) and prints its claims as JSON
                            (byte strings as hex, integer keys as strings).
  ace_check.py derive FILE  FILE is JSON {"ms", "salt" (optional), "n1", "n2", "id1", "id2",
                            "context_id" (optional)} in hex: builds the RFC 9203 §4.3 Master
                            Salt and runs the RFC 8613 §3.2.1 derivation for the client side
                            (Sender ID = id2, Recipient ID = id1), printing JSON with
                            master_salt, sender_key, recipient_key, common_iv in hex.
  ace_check.py probe X      exits 2 (usage) if the imports work, 77 if they do not.
"""
import json
import sys

try:
    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as e:  # pragma: no cover
    print("import failed:", e)
    sys.exit(77)

AES_CCM_16_64_128 = 10


def to_json(v):
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, cbor2.CBORTag):
        return {"tag": v.tag, "value": to_json(v.value)}
    return v


def decrypt_token(key, token):
    msg = cbor2.loads(token)
    if isinstance(msg, cbor2.CBORTag):
        if msg.tag != 16:
            raise ValueError("not COSE_Encrypt0 (tag %d)" % msg.tag)
        msg = msg.value
    protected, unprotected, ciphertext = msg
    prot = cbor2.loads(protected) if protected else {}
    alg = prot.get(1, unprotected.get(1))
    if alg != AES_CCM_16_64_128:
        raise ValueError("unexpected alg %r" % alg)
    iv = unprotected[5]
    enc_structure = cbor2.dumps(["Encrypt0", protected, b""])
    plaintext = AESCCM(key, tag_length=8).decrypt(iv, ciphertext, enc_structure)
    return cbor2.loads(plaintext)


def hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def derive(doc):
    ms = bytes.fromhex(doc["ms"])
    salt = bytes.fromhex(doc["salt"]) if "salt" in doc else b""
    n1, n2 = bytes.fromhex(doc["n1"]), bytes.fromhex(doc["n2"])
    id1, id2 = bytes.fromhex(doc["id1"]), bytes.fromhex(doc["id2"])
    ctx = bytes.fromhex(doc["context_id"]) if "context_id" in doc else None
    # RFC 9203 §4.3: Master Salt = salt | N1 | N2, each a CBOR byte string.
    master_salt = cbor2.dumps(salt) + cbor2.dumps(n1) + cbor2.dumps(n2)

    def expand(ident, kind, length):
        info = cbor2.dumps([ident, ctx, AES_CCM_16_64_128, kind, length])
        return hkdf(master_salt, ms, info, length)

    sender_id, recipient_id = id2, id1  # the client's side
    return {
        "master_salt": master_salt.hex(),
        "sender_key": expand(sender_id, "Key", 16).hex(),
        "recipient_key": expand(recipient_id, "Key", 16).hex(),
        "common_iv": expand(b"", "IV", 13).hex(),
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("token", "derive"):
        print(__doc__)
        return 2
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    if sys.argv[1] == "token":
        claims = decrypt_token(bytes.fromhex(doc["key"]), bytes.fromhex(doc["token"]))
        print(json.dumps(to_json(claims)))
    else:
        print(json.dumps(derive(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
