#!/bin/bash
# as_group_commit_kill_test.sh ACEKDC: kill -9 of `acekdc serve --as-only` while its
# replay windows are kept by group commit (docs/ace.md "Persistence of the AS's peer
# contexts": one commit of the changed windows per loop round into
# STATE/as-peers/replay.slots, one fdatasync, the round's answers held until it
# returned). Four clients ask for tokens at the same time, each through its own
# recording proxy (tests/interop/udp_record_proxy.py), three tokens each; then the
# AS is killed with SIGKILL and restarted on the same state directory, and:
#   - every request that was ever sent (retransmissions included) replayed to the
#     restarted AS is refused as a replay (4.01, unprotected): an answered request
#     is never served twice (RFC 8613 Appendix B.1.2);
#   - each client's next token request is served at once (no Echo round: the
#     windows were restored, not lost);
#   - no Partial IV of a client or of the AS repeats on any proxy's wire;
#   - the windows live in the slot file (no per-peer files are written).
set -u
EXE=${1:?usage: as_group_commit_kill_test.sh PATH_TO_ACEKDC}
PY=/usr/bin/python3
PROXY_PY="$(dirname "$0")/interop/udp_record_proxy.py"
WORK=$(mktemp -d /tmp/acekdc-as-gc-kill.XXXXXX)
PIDS=()
FAILURES=0
N=4

cleanup() {
  for p in "${PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  FAILURES=$((FAILURES + 1))
}

free_port() {
  $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

AS_PORT=$(free_port)
secret() { printf 'gc-kill-member-%d' "$1" | od -An -tx1 | tr -d ' \n'; }

{
  cat <<CFG
[serve]
as_listen = "127.0.0.1:$AS_PORT"
state = "$WORK/state"

[as]
issuer = "acekdc-as"
token_lifetime = 600
token_key = "000102030405060708090a0b0c0d0e0f"

[kdc]
audience = "kdc"
CFG
  for i in $(seq 1 $N); do
    printf '\n[[client]]\nname = "m%d"\nid = "0%d"\nsecret = "%s"\ngrants = ["demo-group:requester"]\n' \
      "$i" "$i" "$(secret "$i")"
  done
  printf '\n[[group]]\nname = "demo-group"\n'
} >"$WORK/acekdc.toml"

start_as() {
  local log=$1
  "$EXE" serve --config "$WORK/acekdc.toml" --as-only 2>>"$log" &
  PIDS+=($!)
  AS_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "the AS did not start: $(cat "$log")"
  return 1
}

start_as "$WORK/as1.log" || exit 1
declare -a PROXY_PORTS
for i in $(seq 1 $N); do
  PROXY_PORTS[$i]=$(free_port)
  $PY "$PROXY_PY" proxy "${PROXY_PORTS[$i]}" "$AS_PORT" "$WORK/wire$i.log" &
  PIDS+=($!)
done
for i in $(seq 1 $N); do
  for _ in $(seq 1 100); do  # each proxy opens its log once its sockets are bound
    [ -f "$WORK/wire$i.log" ] && break
    sleep 0.05
  done
done

# token I K: client I's K-th token through its proxy.
token() {
  "$EXE" client token "coap://127.0.0.1:${PROXY_PORTS[$1]}/token" --id "0$1" --secret "$(secret "$1")" \
    --scope demo-group:requester --audience kdc --state "$WORK/client$1" --timeout 5 \
    --out "$WORK/tok$1-$2" >"$WORK/t$1-$2.out" 2>&1
}

# Four clients at once, three tokens each (the AS's rounds take what arrives together).
for i in $(seq 1 $N); do
  (for k in 1 2 3; do token "$i" "$k" || echo "token $i/$k: $(cat "$WORK/t$i-$k.out")" >>"$WORK/errors"; done) &
done
wait $(jobs -p | grep -v -F -x -f <(printf '%s\n' "${PIDS[@]}")) 2>/dev/null
[ -s "$WORK/errors" ] && fail "token requests before the kill: $(cat "$WORK/errors")"

[ -f "$WORK/state/as-peers/replay.slots" ] || fail "no STATE/as-peers/replay.slots"
[ -d "$WORK/state/as-peers/replay" ] && fail "per-peer window files were written: $(ls "$WORK/state/as-peers/replay")"

kill -9 "$AS_PID"
wait "$AS_PID" 2>/dev/null
start_as "$WORK/as2.log" || exit 1

# Every request sent before the kill, replayed to the restarted AS: a replay each time.
replayed=0
for i in $(seq 1 $N); do
  while read -r dir hex; do
    [ "$dir" = c2s ] || continue
    got=$($PY "$PROXY_PY" send "$AS_PORT" "$hex")
    replayed=$((replayed + 1))
    [ "$got" = "4.01" ] || fail "client $i: a request answered before the kill, replayed after it, got: $got"
  done <"$WORK/wire$i.log"
done
[ "$replayed" -ge $((3 * N)) ] || fail "expected at least $((3 * N)) recorded requests, have $replayed"

# Each client's next request: served at once (the windows were restored).
for i in $(seq 1 $N); do
  token "$i" 4 || fail "token request after the restart: $(cat "$WORK/t$i-4.out")"
  grep -qi "echo" "$WORK/t$i-4.out" && fail "client $i needed an Echo round after the restart: $(cat "$WORK/t$i-4.out")"
done
for i in $(seq 1 $N); do
  $PY "$PROXY_PY" check "$WORK/wire$i.log" >"$WORK/piv$i.out" || fail "client $i: a Partial IV was reused: $(cat "$WORK/piv$i.out")"
done

if [ "$FAILURES" -ne 0 ]; then
  echo "as_group_commit_kill_test: $FAILURES failure(s)"
  exit 1
fi
echo "as_group_commit_kill_test: ok ($replayed replays refused after kill -9, $N clients served on)"
