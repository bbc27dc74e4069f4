#!/usr/bin/python3
"""A recording UDP proxy for CoAP/OSCORE process tests, written apart from acekdc.

  udp_record_proxy.py proxy LISTEN_PORT TARGET_PORT LOG   forward 127.0.0.1 datagrams
      between one client and TARGET, appending "c2s|s2c HEX" lines to LOG
  udp_record_proxy.py check LOG                          every OSCORE sender's Partial
      IVs: (direction, kid of the request or "server", Partial IV) must never repeat
      (RFC 8613 §7.2.1: a nonce is never used twice with a key); prints the counts
  udp_record_proxy.py send PORT HEX                      sends one datagram to
      127.0.0.1:PORT and prints the CoAP code of the answer ("none" after 3 s) and
      "oscore" when the answer carries an OSCORE option
"""
import socket
import sys

OSCORE = 9


def options(dgram):
    """Yields (number, value) of a CoAP message's options (RFC 7252 §3.1)."""
    tkl = dgram[0] & 0x0F
    i = 4 + tkl
    number = 0
    while i < len(dgram) and dgram[i] != 0xFF:
        b = dgram[i]
        i += 1
        delta, length = b >> 4, b & 0x0F
        for which in ("delta", "length"):
            v = delta if which == "delta" else length
            if v == 13:
                v = dgram[i] + 13
                i += 1
            elif v == 14:
                v = (dgram[i] << 8 | dgram[i + 1]) + 269
                i += 2
            elif v == 15:
                raise ValueError("reserved option nibble")
            if which == "delta":
                delta = v
            else:
                length = v
        number += delta
        yield number, dgram[i:i + length]
        i += length


def oscore_piv_kid(value):
    """Partial IV and kid of an OSCORE option value (RFC 8613 §6.1)."""
    if not value:
        return b"", None
    flags = value[0]
    i = 1
    if flags & 0x40:  # key-limits draft: a second flag byte
        i += 1
    n = flags & 0x07
    piv = value[i:i + n]
    i += n
    if flags & 0x10:  # kid context
        s = value[i]
        i += 1 + s
    if len(value) > 1 and flags & 0x40 and value[1] & 0x01:  # id detail
        x = value[i]
        i += 1 + x
    kid = value[i:] if flags & 0x08 else None
    return piv, kid


def proxy(listen_port, target_port, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", listen_port))
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    client = None
    import select
    with open(log, "a") as out:  # created only now: the sockets are bound (tests wait for it)
        while True:
            r, _, _ = select.select([s, up], [], [])
            if s in r:
                data, client = s.recvfrom(65536)
                out.write("c2s " + data.hex() + "\n")
                out.flush()
                up.sendto(data, ("127.0.0.1", target_port))
            if up in r:
                data, _ = up.recvfrom(65536)
                out.write("s2c " + data.hex() + "\n")
                out.flush()
                if client:
                    s.sendto(data, client)


def check(log):
    seen = {}
    dups = 0
    counts = {"c2s": 0, "s2c": 0}
    for line in open(log):
        direction, hexdata = line.split()
        d = bytes.fromhex(hexdata)
        if len(d) < 4 or d[1] == 0:  # empty message (ACK / RST)
            continue
        for number, value in options(d):
            if number != OSCORE:
                continue
            piv, kid = oscore_piv_kid(value)
            if not piv:
                continue  # a response using the request's nonce
            sender = kid.hex() if direction == "c2s" and kid is not None else "server"
            key = (direction, sender, int.from_bytes(piv, "big"))
            if key in seen and seen[key] != hexdata:
                print("REUSED Partial IV", key)
                dups += 1
            seen[key] = hexdata
            counts[direction] += 1
    print("partial IVs: client %d, server %d, reused %d" % (counts["c2s"], counts["s2c"], dups))
    return 1 if dups else 0


def send(port, hexdata):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(bytes.fromhex(hexdata), ("127.0.0.1", port))
    try:
        d, _ = s.recvfrom(65536)
    except socket.timeout:
        print("none")
        return 0
    code = "%d.%02d" % (d[1] >> 5, d[1] & 0x1F)
    has_oscore = any(n == OSCORE for n, _ in options(d))
    print(code + (" oscore" if has_oscore else ""))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "proxy":
        proxy(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    elif sys.argv[1] == "send":
        sys.exit(send(int(sys.argv[2]), sys.argv[3]))
    else:
        sys.exit(__doc__)
