#!/usr/bin/env bash
# Interop: libcoap's coap-client against `acekdc plugtest-server`, and
# `acekdc coap` against libcoap's coap-server. Checks the content of what
# comes back (libcoap's client exits 0 even on errors).
# Usage: coap_libcoap.sh /path/to/acekdc
set -u
ACEKDC=${1:?usage: $0 /path/to/acekdc}
CLIENT=$(command -v coap-client-notls || command -v coap-client || true)
SERVER=$(command -v coap-server-notls || command -v coap-server || true)
if [[ -z "$CLIENT" || -z "$SERVER" ]]; then
  echo "SKIP: libcoap3-bin not installed"
  exit 77
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

FAIL=0
PASS=0
check() {  # check NAME CONDITION-RESULT(0/1) [details]
  if [[ "$2" == 0 ]]; then
    PASS=$((PASS + 1)); echo "ok   $1"
  else
    FAIL=$((FAIL + 1)); echo "FAIL $1 ${3:-}"
  fi
}
contains() { grep -q -- "$2" <<<"$1"; echo $?; }
C() { timeout 15 "$CLIENT" -B 5 "$@" 2>&1; }
A() { timeout 15 "$ACEKDC" coap "$@" 2>&1; }

# ---------- libcoap client -> acekdc plugtest-server ----------
P1=$(free_port)
"$ACEKDC" plugtest-server --listen "[::]:$P1" --obs-interval 1 --separate-delay 0.3 >"$WORK/ps.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$WORK/ps.log" && break; sleep 0.1; done

for HOST in 127.0.0.1 "[::1]"; do
  U="coap://$HOST:$P1"
  out=$(C "$U/test"); check "[$HOST] GET /test" "$(contains "$out" "Code: GET")" "$out"
  out=$(C -m post -v 6 "$U/test"); check "[$HOST] POST /test -> 2.01 + Location-Path" \
    "$(grep -q 'c:2.01.*Location-Path:location1' <<<"$out"; echo $?)" "$out"
  out=$(C -m put -e x -v 6 "$U/test"); check "[$HOST] PUT /test -> 2.04" "$(contains "$out" "c:2.04")" "$out"
  out=$(C -m delete -v 6 "$U/test"); check "[$HOST] DELETE /test -> 2.02" "$(contains "$out" "c:2.02")" "$out"
done
U="coap://127.0.0.1:$P1"
out=$(C "$U/.well-known/core")
check "discovery lists /obs as observable" "$(contains "$out" '</obs>;rt="observe";ct=0;obs')" "$out"
check "discovery lists /large" "$(contains "$out" '</large>;rt="block"')" "$out"
out=$(C "$U/.well-known/core?rt=Type2*")
check "discovery filter rt=Type2*" "$( [[ "$out" == *"</link1>"* && "$out" == *"</link2>"* && "$out" != *"</link3>"* ]]; echo $?)" "$out"
out=$(C "$U/seg1/seg2/seg3"); check "GET /seg1/seg2/seg3" "$(contains "$out" "/seg1/seg2/seg3")" "$out"
out=$(C "$U/query?first=1&second=2"); check "GET /query" "$(contains "$out" "first=1&second=2")" "$out"
out=$(C "$U/separate"); check "GET /separate (separate response)" "$(contains "$out" "Type: CON")" "$out"
out=$(C -A 41 "$U/multi-format"); check "GET /multi-format Accept xml" "$(contains "$out" "<msg")" "$out"
out=$(C -A 50 -v 6 "$U/multi-format"); check "GET /multi-format Accept json -> 4.06" "$(contains "$out" "c:4.06")" "$out"
out=$(C -v 6 "$U/nonexistent"); check "GET unknown -> 4.04" "$(contains "$out" "c:4.04")" "$out"

# Block2: whole body in 64-byte blocks equals the body in 1024-byte blocks
C -o "$WORK/large64" -b 64 "$U/large" >/dev/null
C -o "$WORK/large1024" "$U/large" >/dev/null
sz=$(stat -c %s "$WORK/large64" 2>/dev/null || echo 0)
check "Block2 /large: 1280 bytes in 64-byte blocks" "$( [[ $sz == 1280 ]] && cmp -s "$WORK/large64" "$WORK/large1024"; echo $?)" "size $sz"
out=$(C -b 64 -v 6 "$U/large"); check "Block2 /large uses Block2 options" "$(contains "$out" "Block2:19/_/64")" ""

# Block1: POST 3000 bytes in 256-byte blocks, then read back from the Location-Path
head -c 2250 /dev/urandom | base64 -w0 >"$WORK/body"
out=$(C -m post -b 256 -f "$WORK/body" -v 6 "$U/large-create")
loc=$(grep -o 'Location-Path:large-create, Location-Path:[0-9]*' <<<"$out" | tail -1 | sed 's/.*Location-Path://')
check "Block1 POST /large-create -> 2.01" "$( [[ -n "$loc" ]]; echo $?)" "$(tail -3 <<<"$out")"
C -o "$WORK/back" "$U/large-create/$loc" >/dev/null
check "Block1 body read back equal" "$(cmp -s "$WORK/body" "$WORK/back"; echo $?)"
# Block1 PUT then GET on /large-update
C -m put -b 128 -f "$WORK/body" "$U/large-update" >/dev/null
C -o "$WORK/back2" "$U/large-update" >/dev/null
check "Block1 PUT /large-update read back equal" "$(cmp -s "$WORK/body" "$WORK/back2"; echo $?)"

# Observe /obs for 3.5 s with a change every second: at least 3 distinct values in order
out=$(timeout 15 "$CLIENT" -s 3 -w "$U/obs" 2>&1)
nums=$(grep -o '#[0-9]*' <<<"$out" | tr -d '#' | tr '\n' ' ')
check "Observe /obs: >= 3 notifications, increasing" "$(/usr/bin/python3 -c "
import sys; v=[int(x) for x in '$nums'.split()]
sys.exit(0 if len(v)>=3 and all(a<b for a,b in zip(v,v[1:])) else 1)"; echo $?)" "got: $nums"
out=$(timeout 15 "$CLIENT" -s 3 -w "$U/obs-non" 2>&1)
n=$(grep -c '#' <<<"$out")
check "Observe /obs-non (NON notifications)" "$( [[ $n -ge 3 ]]; echo $?)" "got $n"

# ---------- acekdc coap -> libcoap coap-server ----------
P2=$(free_port)
"$SERVER" -A "::" -p "$P2" >"$WORK/ls.log" 2>&1 &
PIDS+=($!)
sleep 0.5
for HOST in 127.0.0.1 "[::1]"; do
  U="coap://$HOST:$P2"
  out=$(A get "$U/"); check "[$HOST] acekdc GET / on libcoap" "$(contains "$out" "libcoap")" "$out"
done
U="coap://127.0.0.1:$P2"
out=$(A get "$U/.well-known/core"); check "acekdc discovery on libcoap" "$(contains "$out" '</time>')" "$out"
val="acekdc-$RANDOM"
out=$(A put "$U/example_data" -p "$val"); check "acekdc PUT /example_data" "$(contains "$out" "2.0[14]")" "$out"
out=$(A get "$U/example_data"); check "acekdc GET /example_data returns what was PUT" "$(contains "$out" "$val")" "$out"
out=$(A get "$U/async?1"); check "acekdc GET /async (separate response)" "$(contains "$out" "done")" "$out"
out=$(A get "$U/time" --observe --observe-count 3 --observe-seconds 10)
n=$(grep -c "Observe:" <<<"$out")
check "acekdc observe /time: 3 notifications" "$( [[ $n == 3 ]]; echo $?)" "$out"
big=$(head -c 1500 /dev/urandom | base64 -w0)
out=$(A put "$U/example_data" -p "$big" --block-size 256); check "acekdc Block1 PUT to libcoap" "$(contains "$out" "2.0[14]")" "$out"
out=$(A get "$U/example_data" --block-size 64); check "acekdc Block2 GET from libcoap equals" "$(contains "$out" "$big")" "$(head -c 200 <<<"$out")"

echo "passed $PASS, failed $FAIL"
[[ $FAIL == 0 ]]
