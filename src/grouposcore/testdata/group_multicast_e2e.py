#!/usr/bin/python3
# Multi-process Group OSCORE over real IP multicast (CTest grouposcore_multicast_e2e_test).
# Runs itself in a new network namespace (unshare -n) whose loopback has multicast on
# and a 224.0.0.0/4 route, so nothing leaves the test; exits 77 (skipped) where
# network namespaces cannot be created.
#
#   1. A, B, C hold version 0 of the keying material; B and C listen on 224.0.1.187.
#      A's group request is answered by both. A sniffer captures A's datagram.
#   2. C leaves; A and B get version 1 (new Group ID and Master Secret, no C key).
#      B's listener restarts on v1; C keeps v0.
#      - a forged request (A's Sender ID, C's key, v1 material) is refused by B;
#      - A's v1 request is answered by B; C cannot read it (forward security);
#      - the sniffer replays A's v1 datagram: B detects the replay;
#      - D joins with v1 and is sent the v0 datagram captured before it joined:
#        it cannot read it (backward security).
# Usage: group_multicast_e2e.py PATH_TO_ACEKDC
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GROUP = "224.0.1.187"
PORT = 5683
SEEDS = {
    b"\x0a": bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    b"\x0b": bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    b"\x0c": bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
    b"\x0d": bytes.fromhex("0b1d3a5f7e9c2b4d6f8a1c3e5b7d9f2a4c6e8b1d3f5a7c9e2b4d6f8a1c3e5b7d"),
}
V0 = (bytes.fromhex("37cbf3210017a2d3"), bytes(range(1, 17)))
V1 = (bytes.fromhex("37cbf3210017a2d4"), bytes(range(101, 117)))


def reexec_in_netns():
    if os.environ.get("ACEKDC_IN_NETNS") == "1":
        return None
    if shutil.which("ip") is None:
        print("skipped: no ip(8) (iproute2)")
        return 77
    setup = ("{ ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo; } "
             "|| { echo 'skipped: cannot configure the namespace loopback'; exit 77; }; "
             "exec /usr/bin/python3 \"$0\" \"$@\"")
    env = dict(os.environ, ACEKDC_IN_NETNS="1")
    for unshare in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            probe = subprocess.run(unshare + ["true"], capture_output=True)
        except FileNotFoundError:
            break
        if probe.returncode == 0:
            r = subprocess.run(unshare + ["sh", "-c", setup, __file__] + sys.argv[1:], env=env)
            return r.returncode
    print("skipped: cannot create a network namespace")
    return 77


def x_of(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def cose_key(kid, seed, private):
    k = {1: 1, 2: kid, -1: 6, -2: x_of(seed)}
    if private:
        k[-4] = seed
    return k


def material(sid, version, members):
    gid, ms = version
    key = {2: ms, 3: 5, 4: 10, 5: bytes.fromhex("9e7ca92223786340"), 6: gid, 7: sid, 10: -8, 11: [[1], [1, 6]]}
    pub_keys = cbor2.dumps([cose_key(m, SEEDS[m], False) for m in members])
    return cbor2.dumps({7: 1, 8: key, 9: 0 if version is V0 else 1, 10: 1, 11: 2000000000, 13: pub_keys,
                        14: ["requester"] * len(members)})


class Run:
    def __init__(self, acekdc, d):
        self.acekdc, self.d, self.procs, self.failures = acekdc, d, [], []

    def file(self, name, data):
        p = os.path.join(self.d, name)
        with open(p, "wb") as f:
            f.write(data)
        return "@" + p

    def listen(self, mat, key):
        p = subprocess.Popen([self.acekdc, "group", "listen", "--material", mat, "--key", key, "--bind",
                              "0.0.0.0:%d" % PORT, "--join", GROUP, "--timeout", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        if not line.startswith("listening on"):
            self.failures.append("listener did not start: %s %s" % (line, p.stderr.read()))
        self.procs.append(p)
        return p

    def stop(self, p):
        p.terminate()
        out, err = p.communicate(timeout=10)
        return out, err

    def send(self, mat, key, payload, extra=()):
        r = subprocess.run([self.acekdc, "group", "send", "--material", mat, "--key", key, "--to",
                            "%s:%d" % (GROUP, PORT), "--wait", "1.5", *extra, payload],
                           capture_output=True, text=True, timeout=20)
        return r.stdout + r.stderr

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)


def sniffer():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", PORT))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton(GROUP),
                                                                         socket.inet_aton("0.0.0.0")))
    s.settimeout(3)
    return s


def replay(datagram):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    s.sendto(datagram, (GROUP, PORT))
    s.close()


def main():
    rc = reexec_in_netns()
    if rc is not None:
        return rc
    acekdc = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        t = Run(acekdc, d)
        try:
            keys = {sid: t.file("key_%s" % sid.hex(), cbor2.dumps(cose_key(sid, seed, True)))
                    for sid, seed in SEEDS.items()}
            abc = (b"\x0a", b"\x0b", b"\x0c")
            ab = (b"\x0a", b"\x0b")
            v0 = {sid: t.file("v0_%s" % sid.hex(), material(sid, V0, abc)) for sid in abc}
            v1 = {sid: t.file("v1_%s" % sid.hex(), material(sid, V1, ab)) for sid in ab}
            v1_d = t.file("v1_0d", material(b"\x0d", V1, ab + (b"\x0d",)))
            sniff = sniffer()

            # 1. Version 0: both listeners answer A.
            b = t.listen(v0[b"\x0b"], keys[b"\x0b"])
            c = t.listen(v0[b"\x0c"], keys[b"\x0c"])
            out = t.send(v0[b"\x0a"], keys[b"\x0a"], "hello v0")
            t.check("response from 0b 2.05: ack hello v0" in out, "v0: no answer from B: " + out)
            t.check("response from 0c 2.05: ack hello v0" in out, "v0: no answer from C: " + out)
            captured_v0 = sniff.recvfrom(2048)[0]

            # 2. C leaves, the group is rekeyed to version 1 (A and B only).
            b_out, _ = t.stop(b)
            t.check("request from 0a POST /group: hello v0" in b_out, "v0: B did not print the request")
            b = t.listen(v1[b"\x0b"], keys[b"\x0b"])
            out = t.send(v1[b"\x0a"], keys[b"\x0c"], "forged", ["--sid", "0a"])
            t.check("response from" not in out, "forged request answered: " + out)
            sniff.recvfrom(2048)  # the forged one
            out = t.send(v1[b"\x0a"], keys[b"\x0a"], "hello v1")
            t.check("response from 0b 2.05: ack hello v1" in out, "v1: no answer from B: " + out)
            t.check("response from 0c" not in out, "v1: departed C answered: " + out)
            captured_v1 = sniff.recvfrom(2048)[0]
            replay(captured_v1)
            dnode = t.listen(v1_d, keys[b"\x0d"])
            replay(captured_v0)
            time.sleep(1.0)

            b_out, b_err = t.stop(b)
            c_out, c_err = t.stop(c)
            d_out, d_err = t.stop(dnode)
            for name, o, e in (("B", b_out, b_err), ("C", c_out, c_err), ("D", d_out, d_err)):
                print("--- %s stdout\n%s--- %s stderr\n%s" % (name, o, name, e))
            t.check(b_out.count("request from 0a POST /group: hello v1") == 1, "v1: B output: " + b_out)
            t.check("forged" not in b_out, "B accepted the forged request: " + b_out)
            t.check("countersignature does not verify" in b_err, "B did not refuse the forgery: " + b_err)
            t.check("replay detected" in b_err, "B did not detect the replay: " + b_err)
            t.check("hello v1" not in c_out, "forward security: C read a v1 message: " + c_out)
            t.check("unknown Group ID" in c_err, "C did not report the unknown Group ID: " + c_err)
            t.check("hello v0" not in d_out, "backward security: D read a v0 message: " + d_out)
            t.check("unknown Group ID" in d_err, "D did not report the old Group ID: " + d_err)
        finally:
            for p in t.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for f in t.failures:
            print("FAIL:", f)
        print("ok" if not t.failures else "%d failure(s)" % len(t.failures))
        return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main())
