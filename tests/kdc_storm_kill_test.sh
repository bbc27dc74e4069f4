#!/bin/bash
# kill -9 of the KDC during a storm of joins (issue 6, "Proof"): `acekdc serve` with
# a state directory and a configuration written here (NUM_CLIENTS extra AS
# clients), NUM_CLIENTS concurrent `acekdc client join` processes with different
# identities, SIGKILL of the server once some joins were acknowledged, then:
#   - `serve --dump-state` (a restart's open of the SQLite store, read-only) must
#     list every member whose join a client printed as successful ("joined ... as
#     node N"), and the group's num must be >= every num a client was given;
#   - a restarted `serve` on the same state answers new joins with a higher num.
# Usage: kdc_storm_kill_test.sh /path/to/acekdc   (bounded: well under 60 s)
set -u
ACEKDC=${1:?usage: $0 /path/to/acekdc}
NUM_CLIENTS=${NUM_CLIENTS:-40}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/acekdc-storm-XXXXXX")
SERVER_PID=""
CLIENT_PIDS=()

cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null
  for p in "${CLIENT_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- server log ---" >&2
  tail -n 30 "$WORK"/server*.log >&2 2>/dev/null
  exit 1
}

# Two free-looking UDP ports in a range other tests do not use.
BASE=$((30000 + (RANDOM % 2000) * 2 + ($$ % 2) * 4000))
AS_PORT=$BASE
KDC_PORT=$((BASE + 1))

CONFIG="$WORK/kdc.toml"
{
  cat <<EOF
[serve]
as_listen = "127.0.0.1:$AS_PORT"
kdc_listen = "127.0.0.1:$KDC_PORT"
state = "$WORK/state"

[as]
issuer = "acekdc-as"
token_lifetime = 3600
token_key = "000102030405060708090a0b0c0d0e0f"

[kdc]
audience = "kdc"

[store]
backend = "sqlite"
path = "kdc.db"

[[group]]
name = "storm"
max_members = 1000
EOF
  for i in $(seq 1 "$NUM_CLIENTS"); do
    printf '\n[[client]]\nname = "c%d"\nid = "%02x"\nsecret = "%032x"\ngrants = ["storm:requester,responder"]\n' \
      "$i" $((i + 16)) $((i * 7919))
  done
} > "$CONFIG"

start_server() {
  "$ACEKDC" serve --config "$CONFIG" > "$WORK/server$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q "KDC (/authz-info" "$WORK/server$1.log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "serve exited at start"
    sleep 0.05
  done
  fail "serve did not start"
}

join() {  # join INDEX OUTFILE
  local i=$1
  "$ACEKDC" client join --as "coap://127.0.0.1:$AS_PORT" --kdc "coap://127.0.0.1:$KDC_PORT" \
    --id "$(printf '%02x' $((i + 16)))" --secret "$(printf '%032x' $((i * 7919)))" \
    --group storm --role requester,responder --state "$WORK/c$i" --timeout 3 > "$2" 2>&1
}

start_server 1

# The storm: every client joins at once; the KDC is killed once at least a few
# joins were acknowledged (or after 10 s at the latest).
for i in $(seq 1 "$NUM_CLIENTS"); do
  join "$i" "$WORK/join$i.out" &
  CLIENT_PIDS+=($!)
done
KILL_AFTER=$((NUM_CLIENTS / 10))
for _ in $(seq 1 1000); do
  acked=$(cat "$WORK"/join*.out 2>/dev/null | grep -c "^joined storm as node")
  [ "$acked" -ge "$KILL_AFTER" ] && break
  sleep 0.01
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
CLIENT_PIDS=()

ACKED_NODES=$(cat "$WORK"/join*.out | sed -n 's/^joined storm as node \([^ ]*\) .*/\1/p' | sort)
NUM_ACKED=$(echo "$ACKED_NODES" | grep -c .)
MAX_NUM=$(cat "$WORK"/join*.out | sed -n 's/^num: //p' | sort -n | tail -1)
MAX_NUM=${MAX_NUM:-0}
echo "acknowledged joins before kill -9: $NUM_ACKED of $NUM_CLIENTS (highest num seen by a client: $MAX_NUM)"
[ "$NUM_ACKED" -ge 1 ] || fail "no join was acknowledged before the kill"
[ "$NUM_ACKED" -lt "$NUM_CLIENTS" ] || echo "note: every join finished before the kill"

# The restart's view of the durable state.
"$ACEKDC" serve --config "$CONFIG" --dump-state > "$WORK/dump.txt" 2> "$WORK/dump.err" ||
  fail "serve --dump-state failed: $(cat "$WORK/dump.err")"
STORED_NUM=$(sed -n 's/^group storm num \([0-9]*\) .*/\1/p' "$WORK/dump.txt")
[ -n "$STORED_NUM" ] || fail "no group storm in the dump: $(cat "$WORK/dump.txt")"
for n in $ACKED_NODES; do
  grep -q "^member storm $n " "$WORK/dump.txt" || fail "acknowledged member $n lost after kill -9"
done
[ "$STORED_NUM" -ge "$MAX_NUM" ] || fail "num went back: stored $STORED_NUM < $MAX_NUM seen by a client"
STORED_MEMBERS=$(grep -c "^member storm " "$WORK/dump.txt")
echo "after restart: num $STORED_NUM, $STORED_MEMBERS members (all $NUM_ACKED acknowledged ones present)"
# Sender IDs stay unique.
DUP=$(sed -n 's/^member storm [^ ]* sender_id //p' "$WORK/dump.txt" | sort | uniq -d)
[ -z "$DUP" ] || fail "duplicate Sender IDs: $DUP"

# The restarted KDC carries on: one more client (a fresh identity) joins above the stored num.
NEW_I=$((NUM_CLIENTS + 1))
printf '\n[[client]]\nname = "c%d"\nid = "%02x"\nsecret = "%032x"\ngrants = ["storm:requester,responder"]\n' \
  "$NEW_I" $((NEW_I + 16)) $((NEW_I * 7919)) >> "$CONFIG"
start_server 2
join "$NEW_I" "$WORK/after.out" || fail "join after restart failed: $(cat "$WORK/after.out")"
AFTER_NUM=$(sed -n 's/^num: //p' "$WORK/after.out")
[ "${AFTER_NUM:-0}" -gt "$STORED_NUM" ] || fail "num after restart $AFTER_NUM not above $STORED_NUM"
echo "join after restart: num $AFTER_NUM"
echo "PASS"
