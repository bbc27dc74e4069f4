#!/usr/bin/env bash
# The OSCORE key update (draft-hoeglund-core-oscore-key-limits-01 §3.3, §3.4)
# between two acekdc processes over UDP on 127.0.0.1 (kernel-chosen ports): our
# `acekdc oscore-interop-server` and our client `acekdc coap --oscore`, each
# keeping its Session state in its state directory.
#   (a) client-initiated update (Figure 5, `coap --key-update`), requests keep
#       working, the state shows the new key generation;
#   (b) server-initiated update (Figure 6) triggered by the server's limit_q
#       threshold (q = 20, auto_threshold = 0.5);
#   (c) retention: a request under CTX_OLD is accepted within [key_update]
#       retention, refused after it;
#   (d) kill -9 of the server between the client's R1 and its key confirmation,
#       kill -9 of the client mid-update, kill -9 of the server after its R1
#       (Figure 6): both sides continue afterwards.
# Throughout, both sides log (-v) every message they protect as
# "oscore-sent ... key=<generation label> piv=<Partial IV>" (never a key); the
# test asserts that no sender ever used a Partial IV twice, across every update
# and every kill -9, so no (key, nonce) pair is used twice.
# Usage: oscore_key_update_test.sh path/to/acekdc
set -u
acekdc=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# ---- context files: K1 (client-initiated updates, retention 3 s) and K2
# (server-initiated by its limit_q threshold). Test keys only. ----
common='master_salt = "9e7ca92223786340"
aead_alg = "AES-CCM-16-64-128"
hkdf_alg = "HKDF-SHA-256"
seq_chunk = 4'
cat >"$tmp/server.toml" <<EOF
[[context]]
name = "K1"
master_secret = "101112131415161718191a1b1c1d1e1f"
$common
sender_id = "01"
recipient_id = "c1"
state = "k1"
[context.key_update]
auto_threshold = false
retention = 3

[[context]]
name = "K2"
master_secret = "202122232425262728292a2b2c2d2e2f"
$common
sender_id = "01"
recipient_id = "c2"
state = "k2"
[context.limits]
q = 20
v = 20
l = 256
[context.key_update]
auto_threshold = 0.5
EOF
cat >"$tmp/c1.toml" <<EOF
name = "C1"
master_secret = "101112131415161718191a1b1c1d1e1f"
$common
sender_id = "c1"
recipient_id = "01"
state = "c1.state"
[key_update]
auto_threshold = false
retention = 3
EOF
cat >"$tmp/c2.toml" <<EOF
name = "C2"
master_secret = "202122232425262728292a2b2c2d2e2f"
$common
sender_id = "c2"
recipient_id = "01"
state = "c2.state"
[key_update]
auto_threshold = false
EOF

# start_server: an interop server on a free port ($port), logging to srv<N>.log.
nstart=0
start_server() {
  nstart=$((nstart + 1))
  local log=$tmp/srv$nstart.log
  "$acekdc" oscore-interop-server --config "$tmp/server.toml" --state "$tmp/srvstate" --listen 127.0.0.1:0 -v \
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

out=""
# req NAME CTX WANT_RC PATTERN [args...]: one `coap get` with context CTX; its
# stdout+stderr is appended to CTX's log (for the Partial IV check) and must
# match PATTERN with exit code WANT_RC.
req() {
  local name=$1 ctx=$2 want_rc=$3 pattern=$4; shift 4
  local rc
  out=$("$acekdc" coap get "coap://127.0.0.1:$port/oscore/hello/1" --oscore "$tmp/$ctx.toml" -v --timeout 5 "$@" 2>&1)
  rc=$?
  printf '%s\n' "$out" >>"$tmp/$ctx.log"
  if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then ok; else
    bad "$name (rc=$rc, want $want_rc, pattern '$pattern')"; echo "$out" | head -20
  fi
}
# also NAME PATTERN: another pattern on the last req's output.
also() { if grep -qE -- "$2" <<<"$out"; then ok; else bad "$1 (pattern '$2')"; echo "$out" | head -20; fi; }
# in_log NAME FILE PATTERN: FILE matches PATTERN.
in_log() { if grep -qE -- "$3" "$2"; then ok; else bad "$1 (pattern '$3' not in $(basename "$2"))"; tail -20 "$2"; fi; }

start_server

# ---- (a) client-initiated key update (Figure 5) ----
req "a: request under the first key" c1 0 "Hello World!"
also "a: generation 0" "key=g0 piv=[0-9]+ d=0"
cp -a "$tmp/c1.state" "$tmp/old.state"
req "a: --key-update" c1 0 "Hello World!" --key-update
also "a: request under CTX_1 with R1" "oscore-sent key=g0r1 piv=[0-9]+ d=8 state=client awaiting R2"
also "a: client holds the new key" "<- key generation 1, key update idle"
in_log "a: server answered under CTX_NEW with R1|R2" "$srv_log" "context K1 key=g1 piv=- d=16"
mode=$(stat -c %a "$tmp/c1.state/session" 2>/dev/null)
if [ "$mode" = 600 ]; then ok; else bad "a: client session state mode $mode, want 600"; fi
mode=$(stat -c %a "$tmp/srvstate/k1/session" 2>/dev/null)
if [ "$mode" = 600 ]; then ok; else bad "a: server session state mode $mode, want 600"; fi
if cmp -s "$tmp/c1.state/session" "$tmp/old.state/session"; then bad "a: session state unchanged"; else ok; fi
req "a: next request (key confirmation)" c1 0 "Hello World!"
also "a: state restored at generation 1" "key generation 1, key update idle"
also "a: sent under the new key" "oscore-sent key=g1 piv=[0-9]+ d=0"
in_log "a: server confirmed" "$srv_log" "context K1 key=g1 piv=- d=0 state=idle"

# ---- (c) retention: CTX_OLD accepted for 3 s after the update, then refused ----
# A message under CTX_OLD that arrives late: the client state copied before the
# update, its sequence store set to a Partial IV the first run reserved but did
# not use (seq_chunk = 4), so the message is new to the server's replay window
# (shared by the contexts of a chain) and no (key, Partial IV) pair repeats (the
# check at the end covers this copy too).
first_piv=$(grep -oE "oscore-sent key=g0 piv=[0-9]+" "$tmp/c1.log" | head -1 | sed 's/.*piv=//')
sed -e 's/^name = "C1"/name = "OLD"/' -e 's/^state = "c1.state"/state = "old.state"/' "$tmp/c1.toml" >"$tmp/old.toml"
for f in "$tmp"/old.state/seq_*; do [ -f "$f" ] && echo $((first_piv + 1)) >"$f"; done
rm -f "$tmp/old.state/replay-window"
req "c: CTX_OLD within retention" old 0 "Hello World!"
also "c: sent under the old key" "oscore-sent key=g0 piv=$((first_piv + 1)) d=0"
sleep 3.2
req "c: CTX_OLD after retention" old 1 "unprotected response|OSCORE: "
never_ok=$(grep -c "Hello World!" <<<"$out")
if [ "$never_ok" -eq 0 ]; then ok; else bad "c: CTX_OLD accepted after retention"; fi
req "c: CTX_NEW still fine" c1 0 "Hello World!"

# ---- (b) server-initiated key update (Figure 6) by K2's limit_q threshold ----
for i in $(seq 1 13); do req "b: request $i" c2 0 "Hello World!"; done
in_log "b: server sent R1 under CTX_1" "$srv_log" "context K2 key=g0r1 piv=- d=8 state=server sent R1"
in_log "b: client derived CTX_NEW" "$tmp/c2.log" "<- key generation 0, key update client has CTX_NEW"
in_log "b: client sent R1|R2 under CTX_NEW" "$tmp/c2.log" "oscore-sent key=g1 piv=[0-9]+ d=16 state=client has CTX_NEW"
in_log "b: client at generation 1" "$tmp/c2.log" "<- key generation 1, key update idle"
in_log "b: server at generation 1" "$srv_log" "context K2 key=g1 piv=- d=0 state=idle"

# ---- (d1) kill -9 of the server between the client's R1 and its confirmation ----
req "d1: --key-update" c1 0 "Hello World!" --key-update
also "d1: client holds generation 2" "<- key generation 2, key update idle"
kill -9 "$srv_pid"; wait "$srv_pid" 2>/dev/null
start_server
in_log "d1: server restored mid-update" "$srv_log" "context K1: key update state restored: key generation 1, server awaiting key confirmation"
in_log "d1: replay window lost: Echo first" "$srv_log" "context K1: replay window not initialised"
req "d1: confirmation after the restart" c1 0 "Hello World!"
n=$(grep -cE "oscore-sent key=g2 piv=[0-9]+ d=0" <<<"$out")
if [ "$n" -eq 2 ]; then ok; else bad "d1: Echo round: $n requests sent, want 2"; echo "$out" | head -20; fi
in_log "d1: server confirmed generation 2" "$srv_log" "context K1 key=g2 piv=- d=0 state=idle"
req "d1: and again" c1 0 "Hello World!"

# ---- (d2) kill -9 of the client mid-update (its R1 sent, no answer yet) ----
kill -STOP "$srv_pid"
"$acekdc" coap get "coap://127.0.0.1:$port/oscore/hello/1" --oscore "$tmp/c1.toml" -v --key-update --timeout 10 \
  >"$tmp/killed.log" 2>&1 &
cli_pid=$!
pids+=("$cli_pid")
for _ in $(seq 1 100); do grep -q "oscore-sent key=g2r1" "$tmp/killed.log" && break; sleep 0.05; done
in_log "d2: client sent R1" "$tmp/killed.log" "oscore-sent key=g2r1 piv=[0-9]+ d=8"
kill -9 "$cli_pid"; wait "$cli_pid" 2>/dev/null
cat "$tmp/killed.log" >>"$tmp/c1.log"
kill -CONT "$srv_pid"
sleep 0.3  # the server answers the dead client's R1 (and waits for a confirmation)
req "d2: restarted client starts a fresh update" c1 0 "Hello World!"
also "d2: a new R1" "oscore-sent key=g2r1 piv=[0-9]+ d=8"
also "d2: client at generation 3" "<- key generation 3, key update idle"
req "d2: confirmation" c1 0 "Hello World!"
also "d2: sent under generation 3" "oscore-sent key=g3 piv=[0-9]+ d=0"
in_log "d2: server at generation 3" "$srv_log" "context K1 key=g3 piv=- d=0 state=idle"
req "b/d: K2 unaffected by the restarts" c2 0 "Hello World!"

# ---- (d3) kill -9 of the server in Figure 6, after it sent R1, before the
# client's R1|R2 under CTX_NEW (K2's next threshold) ----
got=""
for i in $(seq 1 15); do
  req "d3: request $i" c2 0 "Hello World!"
  if grep -q "<- key generation 1, key update client has CTX_NEW" <<<"$out"; then got=1; break; fi
done
if [ -n "$got" ]; then ok; else bad "d3: no second server-initiated update"; fi
kill -9 "$srv_pid"; wait "$srv_pid" 2>/dev/null
start_server
in_log "d3: server restored after sending R1" "$srv_log" "context K2: key update state restored: key generation 1, server sent R1"
req "d3: client continues under CTX_NEW" c2 0 "Hello World!"
also "d3: R1|R2 under CTX_NEW" "oscore-sent key=g2 piv=[0-9]+ d=16"
also "d3: client at generation 2" "<- key generation 2, key update idle"
in_log "d3: server at generation 2" "$srv_log" "context K2 key=g2 piv=- d=0 state=idle"
req "d3: and again" c2 0 "Hello World!"
req "d3: K1 unaffected" c1 0 "Hello World!"
also "d3: K1 still at generation 3" "oscore-sent key=g3 piv=[0-9]+ d=0"

kill -TERM "$srv_pid"; wait "$srv_pid" 2>/dev/null

# ---- no sender used a Partial IV twice (so no (key, nonce) pair twice) ----
# Client C1 and the CTX_OLD copy share C1's Sender ID; the server's two senders
# are K1 and K2 (responses without a Partial IV reuse the request's nonce).
check_unique() {
  local name=$1; shift
  local all dups n
  all=$(cat "$@" | grep -oE "oscore-sent ${filter}key=g[0-9r]+ piv=[0-9]+" | sed 's/.*piv=//')
  n=$(grep -c . <<<"$all")
  dups=$(sort -n <<<"$all" | uniq -d)
  if [ -z "$dups" ] && [ "$n" -gt 0 ]; then ok; else bad "$name: Partial IV used twice: $dups (of $n)"; fi
}
filter="" check_unique "client C1 (+ CTX_OLD copy)" "$tmp/c1.log" "$tmp/old.log"
filter="" check_unique "client C2" "$tmp/c2.log"
filter="context K1 " check_unique "server K1" "$tmp"/srv*.log
filter="context K2 " check_unique "server K2" "$tmp"/srv*.log
# (label, piv) pairs over the whole run, per sender, as the logs give them
pairs=$(cat "$tmp/c1.log" "$tmp/old.log" | grep -oE "key=g[0-9r]+ piv=[0-9]+" | sort | uniq -d)
if [ -z "$pairs" ]; then ok; else bad "client C1: (key, piv) repeated: $pairs"; fi
if grep -qiE "master_secret|101112131415161718191a1b1c1d1e1f" "$tmp"/*.log; then bad "a secret in a log"; else ok; fi

echo "oscore key update e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
