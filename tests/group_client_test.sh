#!/usr/bin/env bash
# group_client_test: Group OSCORE between KDC members over UDP on 127.0.0.1 (unicast;
# multicast is tested in a network namespace by src/grouposcore's e2e tests).
# acekdc serve, members A, B, C join through the real flow (token, token POST, Joining
# Request); A sends, B and C listen (`client listen`) and print it; B leaves, the group
# is rekeyed, A sends again: C reads it, B (still listening with its old material)
# cannot; D joins after a message was captured and cannot read that message. Then an
# ES256 group (sign_info / sign_alg from the KDC: P-256 keys): E sends, F verifies.
# Last, Echo (listen --echo): a listener challenges a new sender, `send` repeats with
# the Echo; a request captured before the listener restarts is not delivered again.
# Usage: group_client_test.sh path/to/acekdc
set -u
acekdc=${1:?usage: group_client_test.sh ACEKDC}
py=/usr/bin/python3
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.out "$work"/*.err "$work"/serve.log; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done
  exit 1
}

base=$((30000 + (RANDOM % 14000) * 2))
as_port=$base; kdc_port=$((base + 1)); pB=$((base + 3)); pC=$((base + 5)); pD=$((base + 7)); pX=$((base + 9))
AS="coap://127.0.0.1:$as_port"; KDC="coap://127.0.0.1:$kdc_port"
secret() { printf 'group-client-secret-%s' "$1" | od -An -tx1 | tr -d ' \n'; }
args=()
for i in 1 2 3 4; do
  args+=(--client "m$i:0$i:$(secret $i)" --grant "m$i:demo-group:requester,responder")
done
for i in 5 6; do
  args+=(--client "m$i:0$i:$(secret $i)" --grant "m$i:es256-group:requester,responder")
done
cat > "$work/kdc.toml" <<'EOF'
[[group]]
name = "demo-group"

[[group]]
name = "es256-group"
sign_alg = "ES256"
EOF
"$acekdc" serve --config "$work/kdc.toml" --shared-key 000102030405060708090a0b0c0d0e0f \
  --as-listen "127.0.0.1:$as_port" --kdc-listen "127.0.0.1:$kdc_port" --state "$work/kdc" \
  "${args[@]}" > "$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "KDC .* listening" "$work/serve.log" && break; sleep 0.1; done
grep -q "KDC .* listening" "$work/serve.log" || fail "serve did not start"

join() {  # join N [GROUP]
  "$acekdc" client join --as "$AS" --kdc "$KDC" --id "0$1" --secret "$(secret "$1")" --group "${2:-demo-group}" \
    --role requester,responder --state "$work/m$1" --json > "$work/join$1.out" 2>&1 || fail "member $1 join"
}
sid() { sed -n 's/.*"sender_id":"\([0-9a-f]*\)".*/\1/p' "$work/join$1.out" | head -1; }
listen() {  # listen N PORT [GROUP]
  "$acekdc" client listen --kdc "$KDC" --group "${3:-demo-group}" --state "$work/m$1" --listen "127.0.0.1:$2" \
    --poll 1 --timeout 60 > "$work/listen$1.out" 2> "$work/listen$1.err" &
  pids+=($!)
  for _ in $(seq 50); do grep -q "^listening" "$work/listen$1.out" && break; sleep 0.1; done
  grep -q "^listening" "$work/listen$1.out" || fail "member $1 does not listen"
}
send() {  # send PORT PAYLOAD (member A = 1)
  "$acekdc" client send --kdc "$KDC" --group demo-group --state "$work/m1" --to "127.0.0.1:$1" --wait 1 "$2" \
    >> "$work/send.out" 2>> "$work/send.err" || fail "send $2 to $1"
}
wait_for() {  # wait_for FILE PATTERN
  for _ in $(seq 60); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  return 1
}
capture() {  # capture PORT FILE: receive one datagram in the background (bound on return)
  rm -f "$2.ready"
  "$py" -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",int(sys.argv[1]))); s.settimeout(20)
open(sys.argv[2]+".ready","w").close()
open(sys.argv[2],"wb").write(s.recvfrom(2000)[0])' "$1" "$2" &
  cap_pid=$!
  pids+=($cap_pid)
  for _ in $(seq 100); do [ -f "$2.ready" ] && return 0; sleep 0.1; done
  fail "capture on $1 did not start"
}
replay() {  # replay FILE PORT
  "$py" -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(open(sys.argv[1],"rb").read(),("127.0.0.1",int(sys.argv[2])))' "$1" "$2"
}

join 1; join 2; join 3
A=$(sid 1)
[ -n "$A" ] || fail "no Sender ID for A"
listen 2 "$pB"
listen 3 "$pC"

# 1. A sends; B and C verify (A's public key fetched from the KDC) and answer.
send "$pB" hello-1
send "$pC" hello-1
for n in 2 3; do
  wait_for "$work/listen$n.out" "request from $A (requester,responder) POST /group: hello-1" ||
    fail "member $n did not print A's first message"
done
[ "$(grep -c "response from .*: ack hello-1" "$work/send.out")" = 2 ] || fail "A did not verify both answers"

# A replayed datagram is rejected.
capture "$pX" "$work/msg1.bin"
send "$pX" replayed
wait "$cap_pid" || fail "capture 1"
replay "$work/msg1.bin" "$pC"; replay "$work/msg1.bin" "$pC"
wait_for "$work/listen3.out" "POST /group: replayed" || fail "C did not read the first copy"
wait_for "$work/listen3.err" "rejected from .*replay" || fail "C did not reject the replay"
[ "$(grep -c "POST /group: replayed" "$work/listen3.out")" = 1 ] || fail "C accepted a replay"

# 2. B leaves; the group is rekeyed. A gets the new material and sends again.
"$acekdc" client leave --kdc "$KDC" --group demo-group --state "$work/m2" > "$work/leave2.out" 2>&1 || fail "B leave"
"$acekdc" client keys --kdc "$KDC" --group demo-group --state "$work/m1" > "$work/keys1.out" 2>&1 || fail "A keys"
wait_for "$work/listen3.out" "^rekeyed" || fail "C did not pick up the new material"
send "$pC" hello-2
send "$pB" hello-2
wait_for "$work/listen3.out" "request from $A .*: hello-2" || fail "C did not read A's message after the rekey"
wait_for "$work/listen2.err" "rejected from .*" || fail "B did not reject the message under the new Group ID"
sleep 1
grep -q "hello-2" "$work/listen2.out" && fail "B (departed) read a message sent after it left"
gid=$(sed -n 's/^Group ID: //p' "$work/keys1.out")
[ -n "$gid" ] || fail "no Group ID after the leave"
grep -q "Group ID $gid" "$work/listen2.out" && fail "B got the new material after leaving"

# 3. A message captured before D joins; D joins (rekey), cannot read it; it reads new ones.
capture "$pX" "$work/msg2.bin"
send "$pX" before-D
wait "$cap_pid" || fail "capture 2"
join 4
listen 4 "$pD"
replay "$work/msg2.bin" "$pD"
wait_for "$work/listen4.err" "rejected from" || fail "D did not reject the captured message"
grep -q "before-D" "$work/listen4.out" && fail "D read a message sent before it joined"
"$acekdc" client keys --kdc "$KDC" --group demo-group --state "$work/m1" > "$work/keys1.out" 2>&1 || fail "A keys 2"
send "$pD" after-D
wait_for "$work/listen4.out" "request from $A .*: after-D" || fail "D did not read a message sent after it joined"

# --json output of send.
"$acekdc" client send --kdc "$KDC" --group demo-group --state "$work/m1" --to "127.0.0.1:$pD" --wait 1 --json j \
  > "$work/json.out" 2>&1 || fail "send --json"
grep -q '^{"op":"send","ok":true' "$work/json.out" && grep -q '"op":"response","ok":true,"sender_id"' "$work/json.out" ||
  fail "send --json output"

# 4. An ES256 group: the members make P-256 keys (the KDC's sign_info), record sign_alg
# with the material, and protect / verify with ES256 countersignatures.
join 5 es256-group; join 6 es256-group
grep -q '^sign_alg -7$' "$work/m5/groups/es256-group.keys" || fail "E did not record sign_alg ES256"
E=$(sid 5)
pF=$((base + 11))
listen 6 "$pF" es256-group
grep -q "^listening .*, ES256)" "$work/listen6.out" || fail "F does not use ES256"
"$acekdc" client send --kdc "$KDC" --group es256-group --state "$work/m5" --to "127.0.0.1:$pF" --wait 1 hello-es256 \
  > "$work/send5.out" 2>> "$work/send.err" || fail "E send"
wait_for "$work/listen6.out" "request from $E (requester,responder) POST /group: hello-es256" ||
  fail "F did not verify E's ES256 message"
grep -q "response from .*: ack hello-es256" "$work/send5.out" || fail "E did not verify F's ES256 answer"
# A datagram of the EdDSA group does not pass in the ES256 group.
replay "$work/msg2.bin" "$pF"
wait_for "$work/listen6.err" "rejected from\\|kept from" || fail "F did not refuse a datagram of the other group"

# 5. Echo for new senders (RFC 9175): D listens with --echo on another port.
pG=$((base + 13))
echo_listen() {  # echo_listen OUTFILE
  "$acekdc" client listen --kdc "$KDC" --group demo-group --state "$work/m4" --listen "127.0.0.1:$pG" --echo \
    --timeout 60 > "$work/$1.out" 2> "$work/$1.err" &
  echo_pid=$!
  pids+=($echo_pid)
  wait_for "$work/$1.out" "^listening .*Echo for new senders)" || fail "D does not listen with Echo"
}
echo_listen echoD
send "$pG" echo-1
grep -q "echo challenge from $(sid 4): sent again with its Echo" "$work/send.out" || fail "A did not answer the Echo challenge"
grep -q "response from $(sid 4) .*: ack echo-1" "$work/send.out" || fail "A did not verify D's answer after Echo"
wait_for "$work/echoD.out" "echo challenge to $A" || fail "D did not challenge A"
wait_for "$work/echoD.out" "request from $A .*: echo-1" || fail "D did not deliver the repeat with Echo"
[ "$(grep -c "POST /group: echo-1" "$work/echoD.out")" = 1 ] || fail "D delivered echo-1 twice"
capture "$pX" "$work/msg3.bin"
send "$pX" echo-captured
wait "$cap_pid" || fail "capture 3"
replay "$work/msg3.bin" "$pG"
wait_for "$work/echoD.out" "POST /group: echo-captured" || fail "D (in sync with A) did not read a fresh request"
kill "$echo_pid"; wait "$echo_pid" 2>/dev/null
echo_listen echoD2  # D's listener restarts: no replay window for A any more
replay "$work/msg3.bin" "$pG"
wait_for "$work/echoD2.out" "echo challenge to $A" || fail "the restarted D did not challenge the replay"
sleep 0.5
grep -q "echo-captured" "$work/echoD2.out" && fail "the restarted D delivered a replayed request"
echo "group_client_test: OK"
