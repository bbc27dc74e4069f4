#!/usr/bin/python3
"""End-to-end check of `acekdc serve` (embedded default configuration) with
`acekdc client join / keys / leave` over UDP on localhost.

usage: serve_e2e.py PATH_TO_ACEKDC

The server runs with the embedded demo config (AS and KDC on two free ports, state in
a temporary directory). member1 and member2 join demo-group (the version grows on
every join, rekey-on-join), member2 leaves (rekey-on-leave), member3 (monitor only)
is refused a requester token; the server log names the rekeys and no secret; after a
restart over the same SQLite store the group's version continues.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SECRETS = {  # the embedded demo configuration's DEMO ONLY client secrets
    "01": "6d656d626572312d64656d6f2d6f6e6c79",
    "02": "6d656d626572322d64656d6f2d6f6e6c79",
    "03": "6d656d626572332d64656d6f2d6f6e6c79",
}


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, exe, tmp, as_port, kdc_port, n):
        self.log_path = os.path.join(tmp, "serve%d.log" % n)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [exe, "serve", "--as-listen", "127.0.0.1:%d" % as_port, "--kdc-listen", "127.0.0.1:%d" % kdc_port,
             "--state", os.path.join(tmp, "kdc")],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.text().count("listening on") >= 2 or self.proc.poll() is not None:
                break
            time.sleep(0.05)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="acekdc-serve-e2e-")
    as_port, kdc_port = free_port(), free_port()
    as_uri = "coap://127.0.0.1:%d" % as_port
    kdc_uri = "coap://127.0.0.1:%d" % kdc_port
    failures = []

    def run(*args):
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=20)

    def join(cid, roles, state):
        return run("client", "join", "--as", as_uri, "--kdc", kdc_uri, "--id", cid, "--secret", SECRETS[cid],
                   "--group", "demo-group", "--role", roles, "--state", os.path.join(tmp, state))

    def group_cmd(cmd, state, *extra):
        return run("client", cmd, "--kdc", kdc_uri, "--group", "demo-group", "--state", os.path.join(tmp, state),
                   *extra)

    def field(out, name):
        m = re.search(r"^%s: (\S+)$" % re.escape(name), out.stdout, re.M)
        return m.group(1) if m else None

    def expect_ok(what, r, **fields):
        if r.returncode != 0:
            failures.append("%s: rc %d: %s" % (what, r.returncode, r.stderr))
            return
        for k, v in fields.items():
            got = field(r, k.replace("_", " "))
            if got != v:
                failures.append("%s: %s is %r, want %r (%r)" % (what, k, got, v, r.stdout))
        if "Master Secret" in r.stdout:
            failures.append("%s: master secret printed without --show-secrets" % what)

    cfg = run("serve", "--print-config")
    for want in ('name = "demo-group"', "DEMO ONLY", 'name = "member1"', "kdc_listen"):
        if want not in cfg.stdout:
            failures.append("--print-config: missing %r" % want)

    server = Server(exe, tmp, as_port, kdc_port, 1)
    server2 = None
    try:
        j1 = join("01", "requester,responder", "m1")
        expect_ok("member1 join", j1, num="1")
        if not field(j1, "Sender ID") or not field(j1, "Group ID"):
            failures.append("member1 join: no Sender ID / Group ID in %r" % j1.stdout)
        j2 = join("02", "requester", "m2")
        expect_ok("member2 join", j2, num="2")
        if field(j2, "Group ID") == field(j1, "Group ID"):
            failures.append("the Group ID did not change on the rekey")
        if field(j2, "Sender ID") == field(j1, "Sender ID"):
            failures.append("two members got the same Sender ID")
        expect_ok("member1 keys", group_cmd("keys", "m1"), num="2", Group_ID=field(j2, "Group ID"))
        lv = group_cmd("leave", "m2")
        if lv.returncode != 0 or "left demo-group" not in lv.stdout:
            failures.append("member2 leave: rc %d: %s %s" % (lv.returncode, lv.stdout, lv.stderr))
        expect_ok("member1 keys after the leave", group_cmd("keys", "m1"), num="3")
        gone = group_cmd("keys", "m2")
        if gone.returncode == 0:
            failures.append("member2 keys after leaving succeeded")
        mon = join("03", "requester", "m3")
        if mon.returncode == 0 or "invalid_scope" not in mon.stderr:
            failures.append("member3 as requester: rc %d: %s" % (mon.returncode, mon.stderr))
        sec = group_cmd("keys", "m1", "--show-secrets")
        secret = field(sec, "Master Secret")
        if not secret:
            failures.append("--show-secrets: no Master Secret in %r" % sec.stdout)
        log = server.text()
        for want in ("rekey: group demo-group version 1 (join)", "rekey: group demo-group version 2 (join)",
                     "rekey: group demo-group version 3 (leave)", "DELETE /ace-group/demo-group/nodes/"):
            if want not in log:
                failures.append("server log: missing %r" % want)
        for cid, s in SECRETS.items():
            if s in log:
                failures.append("server log holds client %s's secret" % cid)
        if secret and secret in log:
            failures.append("server log holds the group master secret")
        for state in ("m1",):
            session = os.path.join(tmp, state, "groups", "demo-group.session")
            if not os.path.exists(session) or os.stat(session).st_mode & 0o077:
                failures.append("%s: session file missing or readable by others" % state)

        # A restart keeps the group (SQLite store): the version continues.
        server.stop()
        server2 = Server(exe, tmp, as_port, kdc_port, 2)
        if "created" in server2.text():
            failures.append("restart: the group was created again: %r" % server2.text())
        expect_ok("member2 joins again after a restart", join("02", "responder", "m2"), num="4")
    finally:
        server.stop()
        if server2:
            server2.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("serve_e2e: ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
