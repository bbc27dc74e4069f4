#!/usr/bin/python3
# Group OSCORE over real IP multicast with the KDC's keying material (CTest
# grouposcore_kdc_multicast_e2e_test): `acekdc serve` (AS + KDC) and the members as
# separate processes in a new network namespace (unshare -n) whose loopback has
# multicast on and a 224.0.0.0/4 route, so nothing leaves the test; exits 77 (skipped)
# where no namespace can be made. Members join through serve (token, token POST,
# Joining Request) and talk with `client send` / `client listen --join 224.0.1.187`.
#
#   1. A, B, C join; B and C listen on the group. A's request is answered by both.
#   2. Replay: a sniffer on the group replays A's datagram: B and C detect it.
#   3. Forged signature: a fresh request of A (sent to a unicast sniffer) with one
#      byte of its countersignature changed is refused by B and C; the untouched
#      datagram is accepted afterwards (only the signature made the difference).
#   4. Forward security: C leaves, the KDC rekeys; B's listener picks the new
#      material up (ctx-num poll); A's next request is answered by B, and C, still
#      listening with what it had, cannot read it.
#   5. Backward security: that request was captured; D joins (rekey) and listens:
#      the captured datagram replayed on the group is unreadable for D. A's next
#      request is answered by B and D.
# Usage: group_kdc_multicast_e2e.py PATH_TO_ACEKDC
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GROUP = "224.0.1.187"
PORT = 5683
AS_PORT, KDC_PORT, SNIFF_PORT = 5690, 5691, 5699


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


def secret(n):
    return ("kdc-multicast-secret-%d" % n).encode().hex()


class Listener:
    """A `client listen` process whose stdout / stderr lines are collected by threads."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink):
        for line in stream:
            with self.lock:
                sink.append(line)

    def text(self, which="out"):
        with self.lock:
            return "".join(self.out if which == "out" else self.err)

    def wait_for(self, needle, which="out", timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.text(which):
                return True
            time.sleep(0.05)
        return False


class Run:
    def __init__(self, acekdc, d):
        self.acekdc, self.d, self.procs, self.failures = acekdc, d, [], []
        self.kdc = "coap://127.0.0.1:%d" % KDC_PORT

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond

    def cli(self, *args, timeout=30):
        r = subprocess.run([self.acekdc, *args], capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def join(self, n):
        rc, out = self.cli("client", "join", "--as", "coap://127.0.0.1:%d" % AS_PORT, "--kdc", self.kdc, "--id",
                           "0%d" % n, "--secret", secret(n), "--group", "demo-group", "--role",
                           "requester,responder", "--state", self.state(n), "--json")
        if not self.check(rc == 0, "member %d join: %s" % (n, out)):
            return ""
        return json.loads(out.splitlines()[0])["sender_id"]

    def state(self, n):
        return os.path.join(self.d, "m%d" % n)

    def listen(self, n):
        lst = Listener([self.acekdc, "client", "listen", "--kdc", self.kdc, "--group", "demo-group", "--state",
                        self.state(n), "--listen", "0.0.0.0:%d" % PORT, "--join", GROUP, "--poll", "1",
                        "--timeout", "90"])
        self.procs.append(lst.p)
        self.check(lst.wait_for("listening on"), "member %d does not listen: %s" % (n, lst.text("err")))
        return lst

    def send(self, n, payload, to="%s:%d" % (GROUP, PORT), wait="1.5"):
        rc, out = self.cli("client", "send", "--kdc", self.kdc, "--group", "demo-group", "--state", self.state(n),
                           "--to", to, "--wait", wait, payload)
        self.check(rc == 0, "member %d send %s: %s" % (n, payload, out))
        return out


def group_sniffer():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", PORT))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0")))
    s.settimeout(5)
    return s


def drain(sniff):
    sniff.setblocking(False)
    try:
        while True:
            sniff.recvfrom(2048)
    except BlockingIOError:
        pass
    sniff.settimeout(5)


def next_request(sniff):
    """The next datagram on the group that is a request (CoAP code 0.01-0.31)."""
    while True:
        data, src = sniff.recvfrom(2048)
        if len(data) > 1 and 1 <= data[1] <= 31:
            return data


def to_group(datagram):
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
        listeners = {}
        try:
            args = []
            for n in (1, 2, 3, 4):
                args += ["--client", "m%d:0%d:%s" % (n, n, secret(n)), "--grant", "m%d:demo-group:requester,responder" % n]
            serve = Listener([acekdc, "serve", "--as-listen", "127.0.0.1:%d" % AS_PORT, "--kdc-listen",
                              "127.0.0.1:%d" % KDC_PORT, "--state", os.path.join(d, "kdc"), *args])
            t.procs.append(serve.p)
            ready = "listening on 127.0.0.1:%d" % KDC_PORT
            end = time.time() + 10
            while time.time() < end and ready not in serve.text() + serve.text("err"):
                time.sleep(0.05)
            if not t.check(ready in serve.text() + serve.text("err"), "serve did not start: " + serve.text("err")):
                return 1
            A, B, C = t.join(1), t.join(2), t.join(3)
            if not (A and B and C):
                return 1
            sniff = group_sniffer()
            listeners["B"] = t.listen(2)
            listeners["C"] = t.listen(3)
            b, c = listeners["B"], listeners["C"]

            # 1. Both listeners answer A's multicast request.
            out = t.send(1, "hello-1")
            t.check("response from %s (requester,responder) 2.05: ack hello-1" % B in out, "1: no answer from B: " + out)
            t.check("response from %s (requester,responder) 2.05: ack hello-1" % C in out, "1: no answer from C: " + out)
            t.check(b.wait_for("request from %s (requester,responder) POST /group: hello-1" % A), "1: B: " + b.text())
            t.check(c.wait_for("request from %s (requester,responder) POST /group: hello-1" % A), "1: C: " + c.text())
            hello1 = next_request(sniff)

            # 2. The captured datagram replayed on the group.
            to_group(hello1)
            t.check(b.wait_for("replay detected", "err"), "2: B did not detect the replay: " + b.text("err"))
            t.check(c.wait_for("replay detected", "err"), "2: C did not detect the replay: " + c.text("err"))

            # 3. A forged signature on a fresh request (never seen by the listeners).
            uni = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            uni.bind(("127.0.0.1", SNIFF_PORT))
            uni.settimeout(5)
            t.send(1, "forge-me", to="127.0.0.1:%d" % SNIFF_PORT, wait="0.2")
            fresh = uni.recvfrom(2048)[0]
            forged = bytearray(fresh)
            forged[-1] ^= 0x01  # the last byte of the (encrypted) countersignature
            to_group(bytes(forged))
            t.check(b.wait_for("countersignature does not verify", "err"), "3: B took the forgery: " + b.text("err"))
            t.check(c.wait_for("countersignature does not verify", "err"), "3: C took the forgery: " + c.text("err"))
            to_group(fresh)
            t.check(b.wait_for("POST /group: forge-me"), "3: B did not read the untouched datagram: " + b.text())
            t.check(c.wait_for("POST /group: forge-me"), "3: C did not read the untouched datagram: " + c.text())
            t.check(b.text().count("forge-me") == 1 and c.text().count("forge-me") == 1,
                    "3: a listener printed the forged request")

            # 4. C leaves; the KDC rekeys. B follows (poll); C keeps listening with its old keys.
            rc, out = t.cli("client", "leave", "--kdc", t.kdc, "--group", "demo-group", "--state", t.state(3))
            t.check(rc == 0, "4: C leave: " + out)
            t.check(b.wait_for("rekeyed"), "4: B did not pick up the new material: " + b.text() + b.text("err"))
            drain(sniff)
            out = t.send(1, "hello-2")
            t.check("2.05: ack hello-2" in out and ("response from %s " % B) in out, "4: no answer from B: " + out)
            t.check(("response from %s " % C) not in out, "4: departed C answered: " + out)
            hello2 = next_request(sniff)
            t.check(b.wait_for("POST /group: hello-2"), "4: B did not read hello-2: " + b.text())
            t.check(c.wait_for("unknown Group ID", "err"), "4: C did not report the new Group ID: " + c.text("err"))
            time.sleep(1.5)  # C's listener asked the KDC (4.01 now) and gave up on the message
            t.check("hello-2" not in c.text(), "4: forward security: C read hello-2: " + c.text())

            # 5. D joins after hello-2 was captured; the replayed capture is unreadable for D.
            D = t.join(4)
            listeners["D"] = dl = t.listen(4)
            end = time.time() + 10
            while time.time() < end and b.text().count("rekeyed") < 2:
                time.sleep(0.05)
            t.check(b.text().count("rekeyed") >= 2, "5: B did not follow D's join: " + b.text())
            to_group(hello2)
            t.check(dl.wait_for("sent before this member joined", "err", timeout=10),
                    "5: D did not refuse the captured message: " + dl.text("err"))
            t.check("hello-2" not in dl.text(), "5: backward security: D read hello-2: " + dl.text())
            out = t.send(1, "hello-3")
            t.check(("response from %s " % B) in out and ("response from %s " % D) in out,
                    "5: no answers from B and D: " + out)
            t.check(dl.wait_for("request from %s (requester,responder) POST /group: hello-3" % A),
                    "5: D did not read hello-3: " + dl.text())
        finally:
            for p in t.procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
        for name, lst in listeners.items():
            print("--- %s stdout\n%s--- %s stderr\n%s" % (name, lst.text(), name, lst.text("err")))
        for f in t.failures:
            print("FAIL:", f)
        print("ok" if not t.failures else "%d failure(s)" % len(t.failures))
        return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main())
