#!/usr/bin/env bash
# RFC 8613 Appendix B.2 between two acekdc processes over UDP on 127.0.0.1
# (kernel-chosen port): `acekdc oscore-interop-server` with a context marked
# `appendix_b2 = true` (SecureServer::add_b2) and the client `acekdc coap
# --oscore CTX --b2` (SecureClient over a B2Client, no established context).
#   (a) a client run with --b2: request #1 (kid context R1), the server's
#       protected 4.01 response #1 (kid context R2), request #2 under CTX3
#       (ID Context R2||R3), the answer; the client reports the 16-byte ID3;
#   (b) a second run derives another ID Context (fresh R1, R2, R3);
#   (c) a client without --b2 (the file's ID Context, no B.2 support) is not
#       served: the server treats its request as request #1 (exit 1);
#   (d) the server restarted with --lost-replay-window (no established context)
#       still runs B.2 with a --b2 client;
#   (e) the server counts its responses #1 in its shutdown line.
# Usage: b2_process_test.sh path/to/acekdc
set -u
acekdc=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# Test keys only.
common='master_secret = "303132333435363738393a3b3c3d3e3f"
master_salt = "9e7ca92223786340"
id_context = "b2b2b2b2b2b2b2b2"
aead_alg = "AES-CCM-16-64-128"
seq_chunk = 4'
cat >"$tmp/server.toml" <<EOF
[[context]]
name = "B2"
$common
sender_id = "01"
recipient_id = "b2"
state = "b2"
appendix_b2 = true
EOF
cat >"$tmp/client.toml" <<EOF
name = "CB2"
$common
sender_id = "b2"
recipient_id = "01"
state = "client.state"
EOF

srv_pid=""
start_server() {
  local log=$tmp/srv$1.log; shift
  "$acekdc" oscore-interop-server --config "$tmp/server.toml" --state "$tmp/srvstate" --listen 127.0.0.1:0 -v "$@" \
    >"$log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  port=""
  for _ in $(seq 1 100); do
    port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | sed 's/.*://')
    [ -n "$port" ] && break
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$port" ]; then echo "FAIL: server did not start"; cat "$log"; exit 1; fi
  srv_log=$log
}
stop_server() {
  kill -TERM "$srv_pid" 2>/dev/null
  wait "$srv_pid" 2>/dev/null
}

out=""
# req NAME WANT_RC PATTERN [args...]
req() {
  local name=$1 want_rc=$2 pattern=$3; shift 3
  local rc
  out=$("$acekdc" coap get "coap://127.0.0.1:$port/oscore/hello/1" --oscore "$tmp/client.toml" -v --timeout 5 "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then ok; else
    bad "$name (rc=$rc, want $want_rc, pattern '$pattern')"; echo "$out" | head -20
  fi
}
idc_of() { grep -oE 'Appendix B.2 established, ID Context [0-9a-f]+' <<<"$out" | awk '{print $NF}'; }

start_server 1
grep -q "context B2: Appendix B.2$" "$srv_log" && ok || { bad "server did not announce the B.2 context"; cat "$srv_log"; }

# (a)
req "a: --b2 run" 0 "Hello World!" --b2
id1=$(idc_of)
if [ ${#id1} -eq 32 ]; then ok; else bad "a: ID3 should be 16 bytes, got '$id1'"; fi
if [ "$id1" != "b2b2b2b2b2b2b2b2" ]; then ok; else bad "a: ID Context unchanged"; fi

# (b)
req "b: second --b2 run" 0 "Hello World!" --b2
id2=$(idc_of)
if [ ${#id2} -eq 32 ] && [ "$id2" != "$id1" ]; then ok; else bad "b: ID3 '$id2' should be new (was '$id1')"; fi

# (c)
req "c: a client without B.2 is not served" 1 "error: OSCORE"
if grep -q "Hello World!" <<<"$out"; then bad "c: served without B.2"; else ok; fi

# (e) for the first server
stop_server
if grep -qE "stopping: .* 3 B.2 responses #1" "$srv_log"; then ok; else bad "e: responses #1 count"; tail -3 "$srv_log"; fi

# (d)
start_server 2 --lost-replay-window
grep -q "no established context" "$srv_log" && ok || { bad "d: server did not start without a context"; cat "$srv_log"; }
req "d: --b2 against a server without context" 0 "Hello World!" --b2
id4=$(idc_of)
if [ ${#id4} -eq 32 ]; then ok; else bad "d: ID3 '$id4'"; fi
stop_server

echo "b2_process_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
