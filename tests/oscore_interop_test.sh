#!/usr/bin/env bash
# The OSCORE interop test specification (core-wg.github.io/oscore/test-spec5.html,
# Tests 0-17; docs/oscore-interop.md) run with our client `acekdc coap --oscore`
# against our `acekdc oscore-interop-server`, both over UDP on 127.0.0.1 (ports
# chosen by the kernel). Plus: Echo recovery after a lost replay window, the
# replay window kept across a clean restart, and strict context files.
# Usage: oscore_interop_test.sh path/to/acekdc
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

# start_server VAR LOG args...: start an interop server on a free port; its port goes to $VAR.
start_server() {
  local var=$1 log=$2; shift 2
  "$acekdc" oscore-interop-server --listen 127.0.0.1:0 --observe-interval 0.3 -v "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local got=""
  for _ in $(seq 1 100); do
    got=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | sed 's/.*://')
    [ -n "$got" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$got" ]; then
    echo "FAIL: server did not start"; cat "$log"; exit 1
  fi
  printf -v "$var" '%s' "$got"
  last_pid=$pid
}
# stop_server PID: SIGTERM (a clean shutdown saves the replay windows) and wait.
stop_server() {
  kill -TERM "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

out=""
# check NAME EXPECTED_RC PATTERN -- command...: exit code and an extended regex on stdout+stderr.
check() {
  local name=$1 want_rc=$2 pattern=$3; shift 4
  local rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: $name (rc=$rc, want $want_rc, pattern '$pattern')"; echo "$out" | head -20
  fi
}
# also NAME PATTERN: another pattern on the last check's output.
also() {
  if grep -qE -- "$2" <<<"$out"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: $1 (pattern '$2')"; echo "$out" | head -20
  fi
}
# never NAME PATTERN: the last check's output must not match.
never() {
  if grep -qE -- "$2" <<<"$out"; then
    fail=$((fail + 1)); echo "FAIL: $1 (unexpected '$2')"; echo "$out" | head -20
  else pass=$((pass + 1)); fi
}

# ---- the spec's client contexts (A, C) and the broken ones of Tests 12-14 ----
ctx=$tmp/ctx
mkdir -p "$ctx"
common='master_salt = "9e7ca92223786340"
aead_alg = "AES-CCM-16-64-128"
hkdf_alg = "HKDF-SHA-256"'
secret='0102030405060708090a0b0c0d0e0f10'
cat >"$ctx/a.toml" <<EOF
master_secret = "$secret"
$common
sender_id = ""
recipient_id = "01"
state = "a.state"
EOF
cat >"$ctx/c.json" <<EOF
{"master_secret": "$secret", "master_salt": "9e7ca92223786340", "sender_id": "", "recipient_id": "01",
 "id_context": "37cbf3210017a2d3", "aead_alg": 10, "hkdf_alg": -10, "state": "c.state"}
EOF
# E: a Sender ID the server has no context for (Test 12)
sed 's/^sender_id = ""/sender_id = "010101"/; s/a.state/e.state/' "$ctx/a.toml" >"$ctx/e.toml"
# F: a wrong Sender Key (Test 13): another master secret; it shares A's sequence
# numbers (same Sender ID), so the server's replay check passes and decryption fails.
sed "s/$secret/0102030405060708090a0b0c0d0e0fff/" "$ctx/a.toml" >"$ctx/f.toml"
# G: a wrong Recipient Key (Test 14): the Recipient ID enters only the Recipient
# Key derivation; Sender Key, Common IV and sequence numbers stay A's.
sed 's/^recipient_id = "01"/recipient_id = "02"/' "$ctx/a.toml" >"$ctx/g.toml"

# ---- the OSCORE-aware server (contexts B and D) and the OSCORE-unaware one ----
start_server port "$tmp/server.log" --state "$tmp/server-state"; server_pid=$last_pid
start_server port_n "$tmp/server-n.log" --no-oscore --state ""
base=coap://127.0.0.1:$port
hello='^Hello World!$'

check "Test 0: plain CoAP GET /oscore/hello/coap" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/coap"
also "Test 0: 2.05 with Content-Format 0" '^2\.05 Content' ; also "Test 0: text/plain" 'Content-Format: 0'
check "Test 1: A->B GET /oscore/hello/1" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
also "Test 1: Content-Format 0" 'Content-Format: 0'
check "Test 2: C->D GET /oscore/hello/1 (kid context)" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/c.json"
check "Test 3: GET /oscore/hello/2?first=1" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/2?first=1" --oscore "$ctx/a.toml"
also "Test 3: ETag 0x2b" "ETag: h'2b'"
check "Test 4: GET /oscore/hello/3 Accept 0" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/3" -A 0 --oscore "$ctx/a.toml"
also "Test 4: Max-Age 5" 'Max-Age: 5'
check "Test 5: Observe on a non-observable resource" 0 "$hello" -- \
  "$acekdc" coap get "$base/oscore/hello/1" --observe --observe-seconds 3 --oscore "$ctx/a.toml"
never "Test 5: no Observe in the response" 'Observe:'
check "Test 6: observe /oscore/observe1 until the server ends it" 1 '^one$' -- \
  "$acekdc" coap get "$base/oscore/observe1" --observe --observe-seconds 5 --oscore "$ctx/a.toml"
also "Test 6: notification two" '^two$'; also "Test 6: 5.00 Terminate Observe" '^5\.00 Internal Server Error'
also "Test 6: Terminate Observe payload" '^Terminate Observe$'
check "Test 7: observe /oscore/observe2, cancel after two" 0 '^one$' -- \
  "$acekdc" coap get "$base/oscore/observe2" --observe --observe-count 2 --observe-seconds 5 --oscore "$ctx/a.toml"
also "Test 7: notification two" '^two$'
check "Test 8: POST /oscore/hello/6 0x4a" 0 '^2\.04 Changed' -- \
  "$acekdc" coap post "$base/oscore/hello/6" --hex 4a -c 0 --oscore "$ctx/a.toml"
also "Test 8: payload 0x4a echoed" '^J$'
check "Test 9: PUT /oscore/hello/7 If-Match 0x7b" 0 '^2\.04 Changed' -- \
  "$acekdc" coap put "$base/oscore/hello/7" --hex 7a -c 0 --if-match 7b --oscore "$ctx/a.toml"
check "Test 10: PUT /oscore/hello/7 If-None-Match" 1 '^4\.12 Precondition Failed' -- \
  "$acekdc" coap put "$base/oscore/hello/7" --hex 8a -c 0 --if-none-match --oscore "$ctx/a.toml"
never "Test 10: a verified response, not an OSCORE error" 'unprotected'
check "Test 11: DELETE /oscore/test" 0 '^2\.02 Deleted' -- "$acekdc" coap delete "$base/oscore/test" --oscore "$ctx/a.toml"
check "Test 12: unknown Sender ID -> 4.01" 1 'unprotected response .*4\.01 Unauthorized' -- \
  "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/e.toml"
also "Test 12: diagnostic" '^Security context not found$'
check "Test 13: wrong Sender Key -> 4.00" 1 'unprotected response .*4\.00 Bad Request' -- \
  "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/f.toml"
also "Test 13: diagnostic" '^Decryption failed$'
check "Test 14: wrong Recipient Key: the client rejects the response" 1 'OSCORE: decryption failed' -- \
  "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/g.toml"
never "Test 14: nothing shown as verified" 'Hello World'
# Test 15: the client sends a sequence number again (its state put back).
cp -r "$ctx/a.state" "$tmp/a.state.saved"
check "Test 15: first use" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
rm -rf "$ctx/a.state"; cp -r "$tmp/a.state.saved" "$ctx/a.state"
check "Test 15: replay -> 4.01" 1 'unprotected response .*4\.01 Unauthorized' -- \
  "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
also "Test 15: diagnostic" '^Replay detected$'
check "Test 16: OSCORE to an OSCORE-unaware server -> 4.02" 1 'unprotected response .*4\.02 Bad Option' -- \
  "$acekdc" coap get "coap://127.0.0.1:$port_n/oscore/hello/coap" --oscore "$ctx/a.toml"
check "Test 17: protected resource without OSCORE -> 4.01" 1 '^4\.01 Unauthorized' -- \
  "$acekdc" coap get "$base/oscore/hello/1"
check "server: Test 1 used context B" 0 'GET /oscore/hello/1 from .*\(context B\)' -- cat "$tmp/server.log"
also "server: Test 2 used context D" 'GET /oscore/hello/1 from .*\(context D\)'
never "server log holds no master secret" "$secret"

# ---- beyond the spec: the replay window across a clean restart, then Echo ----
# The server saves its windows on SIGTERM and loads them at start: the Test 15
# replay is still refused after a restart.
stop_server "$server_pid"
check "clean shutdown saved the windows" 0 'replay-window' -- ls "$tmp/server-state/b"
start_server port "$tmp/server2.log" --state "$tmp/server-state"; server_pid=$last_pid
base=coap://127.0.0.1:$port
rm -rf "$ctx/a.state"; cp -r "$tmp/a.state.saved" "$ctx/a.state"
check "restart: replay still detected" 1 '^Replay detected$' -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
# kill -9: no window saved; the next start must re-initialise it with Echo (RFC 8613 B.1.2).
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null
start_server port "$tmp/server3.log" --state "$tmp/server-state"; server_pid=$last_pid
base=coap://127.0.0.1:$port
check "after kill -9: window not initialised" 0 'replay window not initialised' -- cat "$tmp/server3.log"
check "Echo round trip, then the request is served" 0 "$hello" -- \
  "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
check "the next request needs no Echo" 0 "$hello" -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/a.toml"
stop_server "$server_pid"
check "server counted one Echo challenge" 0 '1 Echo challenges' -- cat "$tmp/server3.log"

# ---- context files: strict, exit code 2, secrets never printed ----
printf 'master_secret = "%s"\nsender_id = ""\nrecipient_id = "01"\ncolour = "blue"\n' "$secret" >"$ctx/bad1.toml"
check "unknown key -> 2" 2 'unknown key "colour"' -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/bad1.toml"
never "unknown key: no secret" "$secret"
printf 'master_secret = "%szz"\nsender_id = ""\nrecipient_id = "01"\n' "$secret" >"$ctx/bad2.toml"
check "bad hex -> 2" 2 'master_secret: not a hex string' -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/bad2.toml"
never "bad hex: no secret" "$secret"
printf '{"master_secret": "%s", "sender_id": "", "recipient_id": 1}' "$secret" >"$ctx/bad3.json"
check "wrong type -> 2" 2 'recipient_id: must be a string' -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/bad3.json"
check "missing file -> 2" 2 'cannot read' -- "$acekdc" coap get "$base/oscore/hello/1" --oscore "$ctx/none.toml"
check "server config: not a list of contexts -> 2" 2 'missing key context' -- \
  "$acekdc" oscore-interop-server --config "$ctx/bad1.toml"
{ echo '[[context]]'; cat "$ctx/bad1.toml"; } >"$ctx/bad-server.toml"
check "server config: unknown key -> 2" 2 'context 1: line 5: unknown key "colour"' -- \
  "$acekdc" oscore-interop-server --config "$ctx/bad-server.toml"
never "server config error: no secret" "$secret"
printf '{"context": [{"master_secret": "%s", "master_salt": "9e7ca92223786340", "sender_id": "01", "recipient_id": ""}]}' "$secret" >"$ctx/one.json"
start_server port_j "$tmp/server-j.log" --config "$ctx/one.json" --state "$tmp/server-j-state"
check "JSON server config: served" 0 "$hello" -- "$acekdc" coap get "coap://127.0.0.1:$port_j/oscore/hello/1" --oscore "$ctx/a.toml"
check "print-config shows contexts B and D" 0 'id_context = "37cbf3210017a2d3"' -- "$acekdc" oscore-interop-server --print-config

echo "oscore interop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
