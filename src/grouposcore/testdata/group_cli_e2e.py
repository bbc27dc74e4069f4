#!/usr/bin/python3
# End to end over UDP on 127.0.0.1 (CTest grouposcore_cli_e2e_test): `acekdc group
# listen` (member B) answers `acekdc group send` (member A); a forged sender (A's
# Sender ID, C's key), a sender under an unknown Group ID and one without B's keys
# are rejected. Then live rekeying (--reload) with OPT4: a request under the new
# Group ID is kept until the listener's material file changes, then answered; the old
# Group ID is stale. Material files are KDC Joining Response payloads built here with
# cbor2. Usage: group_cli_e2e.py PATH_TO_ACEKDC
import os
import subprocess
import sys
import tempfile
import time

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ACEKDC = sys.argv[1]
SEEDS = {
    b"\x0a": bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    b"\x0b": bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    b"\x0c": bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
}
GID = bytes.fromhex("37cbf3210017a2d3")


def x_of(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def cose_key(kid, seed, private):
    k = {1: 1, 2: kid, -1: 6, -2: x_of(seed)}
    if private:
        k[-4] = seed
    return k


def material(sid, gid=GID, members=(b"\x0a", b"\x0b", b"\x0c"), ms=bytes(range(1, 17))):
    key = {2: ms, 3: 5, 4: 10, 5: bytes.fromhex("9e7ca92223786340"), 6: gid, 7: sid,
           10: -8, 11: [[1], [1, 6]]}
    pub_keys = cbor2.dumps([cose_key(m, SEEDS[m], False) for m in members])
    return cbor2.dumps({7: 1, 8: key, 9: 0, 10: 1, 11: 2000000000, 13: pub_keys, 14: ["requester"] * len(members)})


def main():
    failures = []
    with tempfile.TemporaryDirectory() as d:
        def write(name, data):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            return "@" + p

        keys = {sid: write("key_%s" % sid.hex(), cbor2.dumps(cose_key(sid, seed, True))) for sid, seed in SEEDS.items()}
        mats = {sid: write("mat_%s" % sid.hex(), material(sid)) for sid in SEEDS}
        other_group = write("mat_other", material(b"\x0a", gid=b"\x99"))
        no_b = write("mat_nob", material(b"\x0c", members=(b"\x0a", b"\x0c")))

        listener = subprocess.Popen(
            [ACEKDC, "group", "listen", "--material", mats[b"\x0b"], "--key", keys[b"\x0b"], "--bind", "127.0.0.1:0",
             "--count", "2", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = listener.stdout.readline()
            if not first.startswith("listening on 127.0.0.1:"):
                print("listener did not start:", first, listener.stderr.read())
                return 1
            port = first.split()[2].split(":")[1]
            to = "127.0.0.1:" + port

            def send(mat, key, payload, extra=()):
                r = subprocess.run([ACEKDC, "group", "send", "--material", mat, "--key", key, "--to", to, "--wait",
                                    "1.5", *extra, payload], capture_output=True, text=True, timeout=20)
                return r.stdout

            # (first: a later one with sequence number 0 would be a replay) C's key under A's Sender ID: B rejects, no response.
            out = send(mats[b"\x0a"], keys[b"\x0c"], "forged", ["--sid", "0a"])
            if "response from" in out:
                failures.append("forged sender answered: " + out)
            out = send(mats[b"\x0a"], keys[b"\x0a"], "hello")
            if "response from 0b 2.05: ack hello" not in out:
                failures.append("A -> B: " + out)
            # A under a Group ID B never had.
            out = send(other_group, keys[b"\x0a"], "other")
            if "response from" in out:
                failures.append("unknown group answered: " + out)
            # C does not have B's key: B answers, C cannot verify the answer.
            out = send(no_b, keys[b"\x0c"], "from c")
            if "response from" in out:
                failures.append("unknown responder accepted: " + out)
            try:
                stdout, stderr = listener.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                listener.kill()
                stdout, stderr = listener.communicate()
                failures.append("listener did not stop after two requests")
            stdout = first + stdout
            for want in ["request from 0a POST /group: hello", "request from 0c POST /group: from c"]:
                if want not in stdout:
                    failures.append("listener missed '%s': %s" % (want, stdout))
            for want in ["countersignature does not verify", "unknown Group ID"]:
                if want not in stderr:
                    failures.append("listener did not report '%s': %s" % (want, stderr))
            if "forged" in stdout or "other" in stdout:
                failures.append("listener accepted a rejected message: " + stdout)
            if listener.returncode != 0:
                failures.append("listener exit %d" % listener.returncode)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()

        # Live rekeying with OPT4: B listens on version 0 with --reload; A's version 1
        # request is kept until B's material file changes to version 1, then answered.
        # After that A's version 0 request is stale; C's version 1 request is served.
        gid1, ms1 = bytes.fromhex("37cbf3210017a2d4"), bytes(range(101, 117))
        reload_path = os.path.join(d, "mat_reload_b")
        write("mat_reload_b", material(b"\x0b"))
        v1 = {sid: write("v1_%s" % sid.hex(), material(sid, gid=gid1, ms=ms1)) for sid in SEEDS}
        listener = subprocess.Popen(
            [ACEKDC, "group", "listen", "--material", "@" + reload_path, "--key", keys[b"\x0b"], "--bind",
             "127.0.0.1:0", "--count", "2", "--timeout", "30", "--reload"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = listener.stdout.readline()
            to = "127.0.0.1:" + first.split()[2].split(":")[1]

            def send2(mat, key, payload):
                r = subprocess.run([ACEKDC, "group", "send", "--material", mat, "--key", key, "--to", to, "--wait",
                                    "0.5", payload], capture_output=True, text=True, timeout=20)
                return r.stdout

            send2(v1[b"\x0a"], keys[b"\x0a"], "late")
            time.sleep(0.3)
            write("mat_reload_b", material(b"\x0b", gid=gid1, ms=ms1))
            os.utime(reload_path, ns=(time.time_ns(), time.time_ns() + 1000))
            time.sleep(1.0)
            out = send2(mats[b"\x0a"], keys[b"\x0a"], "old")
            if "response from" in out:
                failures.append("stale request answered: " + out)
            out = send2(v1[b"\x0c"], keys[b"\x0c"], "c on v1")
            if "response from 0b 2.05: ack c on v1" not in out:
                failures.append("C on v1 not answered: " + out)
            try:
                stdout, stderr = listener.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                listener.kill()
                stdout, stderr = listener.communicate()
                failures.append("reload listener did not stop")
            for want in ["rekeyed: group 37cbf3210017a2d4", "request from 0a POST /group: late",
                         "request from 0c POST /group: c on v1"]:
                if want not in stdout:
                    failures.append("reload listener missed '%s': %s" % (want, stdout))
            for want in ["kept from", "stale Group ID"]:
                if want not in stderr:
                    failures.append("reload listener did not report '%s': %s" % (want, stderr))
            if stdout.index("rekeyed") > stdout.index("late"):
                failures.append("the kept request was read before the rekeying: " + stdout)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
    for f in failures:
        print("FAIL:", f)
    print("ok" if not failures else "%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
