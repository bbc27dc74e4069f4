#!/usr/bin/env bash
# watch_test: key push over UDP with several client processes. acekdc serve (the
# embedded demo group, four clients given on the command line), three members that
# keep a `client watch` running (two observe nodes/NODENAME, one serves its
# control_path), then a fourth member joins and leaves: every watcher must print
# both new versions, and the member that left must hold stale material. Then a KDC
# restart: a watch registration passes the Echo round.
# Usage: watch_test.sh path/to/acekdc
set -u
acekdc=${1:?usage: watch_test.sh ACEKDC}
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
  for f in "$work"/*.out "$work"/serve*.log; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done
  exit 1
}

base=$((30000 + (RANDOM % 14000) * 2))
as_port=$base; kdc_port=$((base + 1)); ctl_port=$((base + 7))
AS="coap://127.0.0.1:$as_port"; KDC="coap://127.0.0.1:$kdc_port"
secret() { printf 'watch-test-secret-%s' "$1" | od -An -tx1 | tr -d ' \n'; }
args=()
for i in 1 2 3 4; do
  args+=(--client "m$i:0$i:$(secret $i)" --grant "m$i:demo-group:requester,responder")
done
"$acekdc" serve --as-listen "127.0.0.1:$as_port" --kdc-listen "127.0.0.1:$kdc_port" --state "$work/kdc" \
  "${args[@]}" > "$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "KDC .* listening" "$work/serve.log" && break; sleep 0.1; done
grep -q "KDC .* listening" "$work/serve.log" || fail "serve did not start"

join() {  # join N [extra args]
  local n=$1; shift
  "$acekdc" client join --as "$AS" --kdc "$KDC" --id "0$n" --secret "$(secret "$n")" --group demo-group \
    --role requester --state "$work/m$n" "$@" > "$work/join$n.out" 2>&1 || fail "member $n join"
}
join 1
join 2
join 3 --control-path /rekey
for n in 1 2 3; do
  extra=()
  [ "$n" = 3 ] && extra=(--listen "127.0.0.1:$ctl_port")
  "$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/m$n" --count 2 --duration 30 \
    "${extra[@]}" > "$work/watch$n.out" 2>&1 &
  pids+=($!)
  wpid[$n]=$!
done
for n in 1 2 3; do
  for _ in $(seq 50); do grep -q "(registration)" "$work/watch$n.out" && break; sleep 0.1; done
  grep -q "(registration)" "$work/watch$n.out" || fail "watcher $n did not register"
done

join 4 --json
v_join=$(sed -n 's/.*"num":\([0-9]*\).*/\1/p' "$work/join4.out")
[ -n "$v_join" ] || fail "no version in member 4's join"
"$acekdc" client leave --kdc "$KDC" --group demo-group --state "$work/m4" > "$work/leave4.out" 2>&1 || fail "leave"
v_leave=$((v_join + 1))

for n in 1 2 3; do wait "${wpid[$n]}" || fail "watcher $n exited with $?"; done
for n in 1 2 3; do
  for v in "$v_join" "$v_leave"; do
    grep -q "version $v," "$work/watch$n.out" || fail "watcher $n did not print version $v"
  done
done
grep -q "(control_path)" "$work/watch3.out" || fail "watcher 3 got no POST on its control path"
grep -q "(notification)" "$work/watch1.out" || fail "watcher 1 got no notification"
# The watchers stored what they received; the member that left holds stale material.
for n in 1 2 3; do
  "$acekdc" client status --group demo-group --state "$work/m$n" --json | grep -q "\"num\":$v_leave," ||
    fail "member $n did not store version $v_leave"
done
"$acekdc" client status --group demo-group --state "$work/m4" --json > "$work/status4.out"
grep -q '"member":false' "$work/status4.out" && grep -q "\"num\":$v_join," "$work/status4.out" ||
  fail "member 4's stored material is not the stale version $v_join"
grep -q "$(secret 1)" "$work/serve.log" && fail "the server log holds a client secret"
# KDC restart: the restored context's replay window is unknown, so a new watch
# registration goes through one Echo round (RFC 8613 Appendix B.1.2) and registers.
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null
"$acekdc" serve --as-listen "127.0.0.1:$as_port" --kdc-listen "127.0.0.1:$kdc_port" --state "$work/kdc" \
  "${args[@]}" > "$work/serve2.log" 2>&1 &
pids+=($!)
kdc2_pid=$!
for _ in $(seq 50); do grep -q "KDC .* listening" "$work/serve2.log" && break; sleep 0.1; done
grep -q "restored .* client context" "$work/serve2.log" || fail "the restarted KDC restored no context"
"$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/m1" --duration 2 > "$work/watch1b.out" 2>&1 ||
  fail "watch after the KDC restart"
grep -q "(registration)" "$work/watch1b.out" || fail "no registration after the KDC restart"
grep -q "asked for an Echo round" "$work/watch1b.out" || fail "no Echo round after the KDC restart"
# Push state across kill -9 (docs/kdc-state.md "Rekey delivery, end to end"): a watcher
# keeps its Observe registration while the KDC is killed and restarted; the restarted
# KDC restores the observation and sends it a fresh notification, and a rekey after
# the restart (member 2 leaves) reaches the watcher without a new registration.
"$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/m1" --count 2 --duration 40 \
  > "$work/watch1c.out" 2>&1 &
pids+=($!)
wc_pid=$!
for _ in $(seq 50); do grep -q "(registration)" "$work/watch1c.out" && break; sleep 0.1; done
grep -q "(registration)" "$work/watch1c.out" || fail "watcher 1 did not register before the kill"
# Member 3 serves its control path across the restart (its one GET is before the kill).
"$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/m3" --count 1 --duration 40 \
  --listen "127.0.0.1:$ctl_port" > "$work/watch3c.out" 2>&1 &
pids+=($!)
w3c_pid=$!
for _ in $(seq 50); do grep -q "(registration)" "$work/watch3c.out" && break; sleep 0.1; done
grep -q "(registration)" "$work/watch3c.out" || fail "watcher 3 did not register before the kill"
kill -9 "$kdc2_pid"; wait "$kdc2_pid" 2>/dev/null
"$acekdc" serve --as-listen "127.0.0.1:$as_port" --kdc-listen "127.0.0.1:$kdc_port" --state "$work/kdc" \
  "${args[@]}" > "$work/serve3.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "KDC .* listening" "$work/serve3.log" && break; sleep 0.1; done
grep -q "restored [0-9]* observation(s)" "$work/serve3.log" || fail "the restarted KDC restored no observation"
for _ in $(seq 50); do [ "$(grep -c "(notification)" "$work/watch1c.out")" -ge 1 ] && break; sleep 0.1; done
grep -q "version $v_leave, .*(notification)" "$work/watch1c.out" ||
  fail "watcher 1 got no fresh notification of version $v_leave after the KDC restart"
"$acekdc" client leave --kdc "$KDC" --group demo-group --state "$work/m2" > "$work/leave2.out" 2>&1 ||
  fail "member 2 leave after the restart"
v_after=$((v_leave + 1))
wait "$wc_pid" || fail "watcher 1 (across the restart) exited with $?"
wait "$w3c_pid" || fail "watcher 3 (control path across the restart) exited with $?"
grep -q "version $v_after, .*(control_path)" "$work/watch3c.out" ||
  fail "member 3's control path did not get version $v_after after the KDC restart"
grep -q "version $v_after, .*(notification)" "$work/watch1c.out" ||
  fail "watcher 1 did not get version $v_after after the KDC restart"
[ "$(grep -c "(registration)" "$work/watch1c.out")" = 1 ] || fail "watcher 1 registered again"
echo "PASS: 3 watchers saw versions $v_join and $v_leave; the departed member holds $v_join;" \
  "an observation and a control path survived kill -9 of the KDC and got version $v_after"
