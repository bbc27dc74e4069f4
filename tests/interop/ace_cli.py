#!/usr/bin/python3
"""End-to-end check of `acekdc serve` and `acekdc client token` over UDP on localhost.

usage: ace_cli.py PATH_TO_ACEKDC

Starts the server on a free port, then: a token for an allowed scope is issued over
OSCORE, posted to /authz-info and a context derived (with sign_info); a refused scope
gets invalid_scope; an unknown client ID gets an unprotected 4.01, reported as such.
"""
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SHARED = "000102030405060708090a0b0c0d0e0f"
SECRET = "0123456789abcdef0123456789abcdef"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = sys.argv[1]
    port = free_port()
    base = "coap://127.0.0.1:%d" % port
    state = tempfile.mkdtemp(prefix="acekdc-ace-cli-")
    server = subprocess.Popen(
        [exe, "serve", "--listen", "127.0.0.1:%d" % port, "--state", state, "--shared-key", SHARED,
         "--client", "client1:01:" + SECRET, "--grant", "client1:g1:requester,responder",
         "--grant", "client1:g2:monitor", "--lifetime", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failures = []
    try:
        time.sleep(0.5)

        def client(*args):
            return subprocess.run([exe, "client", "token", base + "/token", "--secret", SECRET] + list(args),
                                  capture_output=True, text=True, timeout=30)

        ok = client("--id", "01", "--scope", "g1:requester", "--scope", "g2:monitor", "--audience", "kdc",
                    "--post", base + "/authz-info", "--sign-info", "--seq", "100")
        if ok.returncode != 0:
            failures.append("allowed scope: rc %d: %s" % (ok.returncode, ok.stderr))
        for want in ("expires_in: 600", "ace_profile: 2", "OSCORE context with the KDC", "rsnonce: ",
                     "sign_info: 83278101820106"):
            if want not in ok.stdout:
                failures.append("allowed scope: missing %r in %r" % (want, ok.stdout))
        if "granted scope" in ok.stdout:
            failures.append("granted scope printed although equal to the request")

        refused = client("--id", "01", "--scope", "g3:requester", "--seq", "200")
        if refused.returncode == 0 or "invalid_scope" not in refused.stderr:
            failures.append("refused scope: rc %d: %s" % (refused.returncode, refused.stderr))

        stranger = client("--id", "09", "--scope", "g1", "--seq", "300")
        if (stranger.returncode == 0 or "answered without OSCORE (4.01)" not in stranger.stderr
                or "security context not found" in stranger.stderr):
            failures.append("unknown client: rc %d: %s" % (stranger.returncode, stranger.stderr))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(state, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
