#!/usr/bin/env bash
# make demo: shows what acekdc does today, on published data nobody here wrote.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
acekdc="$root/$build/acekdc"
ex="$root/examples/rfc8392"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ acekdc %s\n' "$*"; "$acekdc" "$@"; }

step "CBOR: diagnostic notation both ways (RFC 8949); a join-request-like payload"
run cbor diag --embedded a5035181826467727031697265717565737465720480064801020304050607080b190e1010a2000201f93e00
run cbor encode "[\"demo-group\", [\"requester\", \"responder\"]]"

step "The three CWTs of RFC 8392 Appendix A, verified with the RFC's keys"
echo "(checked as of their issue time, 2015-10-04, and for audience coap://light.example.com)"
for t in signed:sign maced:mac encrypted:enc; do
  run token inspect --key "@$ex/${t##*:}-key.edn" "@$ex/${t%%:*}.hex" --now 1443944944 \
    --audience coap://light.example.com
done

step "The same signed token today: expired, and rejected"
run token inspect --key "@$ex/sign-key.edn" "@$ex/signed.hex" || echo "(exit $?)"

step "A tampered token (one byte of the signature flipped) is rejected"
tampered=$(sed 's/\(.\)$/0/; s/0$/1/' "$ex/signed.hex")
run token inspect --key "@$ex/sign-key.edn" "$tampered" --no-time-check || echo "(exit $?)"

step "A fresh EdDSA key, and a token signed with it"
key=$("$acekdc" key generate --alg EdDSA --kid 6b6463)
printf '$ acekdc key generate --alg EdDSA --kid 6b6463\n%s\n' "$key"
now=$(date +%s)
claims="{1: \"acekdc-as\", 3: \"kdc\", 4: $((now + 3600)), 6: $now, 9: h'$("$acekdc" cbor encode '[["demo-group", "requester"]]')'}"
token=$("$acekdc" token create --key "$key" --claims "$claims" --type sign --cwt-tag)
printf '$ acekdc token create --key KEY --claims CLAIMS --type sign --cwt-tag\n%s\n' "$token"
run token inspect --key "$key" "$token" --audience kdc

step "The KDC on its embedded default configuration: AS + KDC, three members, one leaves"
work=$(mktemp -d)
as_port=$((20000 + RANDOM % 20000)); kdc_port=$((as_port + 1))
AS="coap://127.0.0.1:$as_port"; KDC="coap://127.0.0.1:$kdc_port"
printf '$ acekdc serve --as-listen 127.0.0.1:%s --kdc-listen 127.0.0.1:%s --state %s/kdc &\n' "$as_port" "$kdc_port" "$work"
"$acekdc" serve --as-listen "127.0.0.1:$as_port" --kdc-listen "127.0.0.1:$kdc_port" --state "$work/kdc" > "$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.7
# The demo clients and their secrets are in the embedded configuration
# (`acekdc serve --print-config`), marked DEMO ONLY.
secret=("" 6d656d626572312d64656d6f2d6f6e6c79 6d656d626572322d64656d6f2d6f6e6c79
        6d656d626572332d64656d6f2d6f6e6c79)
join() {  # join N ROLE [args]: memberN, whose OSCORE Sender ID with the AS is 0N
  local n=$1 role=$2; shift 2
  echo "-- member$n gets a token from the AS, posts it to the KDC and joins demo-group as $role:"
  run client join --as "$AS" --kdc "$KDC" --id "0$n" --secret "${secret[$n]}" --group demo-group \
    --role "$role" --state "$work/member$n" "$@"
}
join 1 requester,responder
join 2 requester
join 3 monitor --control-path /rekey
echo "-- member1 observes its node resource; member3 serves its control path (both in the background):"
ctl_port=$((kdc_port + 2))
printf '$ acekdc client watch --kdc %s --group demo-group --state member1 &\n' "$KDC"
"$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/member1" > "$work/watch1" 2>&1 &
w1=$!
printf '$ acekdc client watch --kdc %s --group demo-group --state member3 --listen 127.0.0.1:%s &\n' "$KDC" "$ctl_port"
"$acekdc" client watch --kdc "$KDC" --group demo-group --state "$work/member3" --listen "127.0.0.1:$ctl_port" \
  > "$work/watch3" 2>&1 &
w3=$!
trap 'kill $w1 $w3 $serve_pid 2>/dev/null; wait $w1 $w3 $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 30); do grep -q registration "$work/watch1" && grep -q registration "$work/watch3" && break; sleep 0.1; done
echo "-- member2 listens for Group OSCORE messages with its KDC material (in the background):"
p2=$((kdc_port + 4))
printf '$ acekdc client listen --kdc %s --group demo-group --state member2 --listen 127.0.0.1:%s &\n' "$KDC" "$p2"
"$acekdc" client listen --kdc "$KDC" --group demo-group --state "$work/member2" --listen "127.0.0.1:$p2" \
  --timeout 30 > "$work/listen2" 2>&1 &
l2=$!
trap 'kill $w1 $w3 $l2 $serve_pid 2>/dev/null; wait $w1 $w3 $l2 $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 30); do grep -q ^listening "$work/listen2" && break; sleep 0.1; done
echo "-- member1 sends a group request (unicast to member2's port here; multicast works the same);"
echo "   member2 fetches member1's public key from the KDC, verifies the signature and answers:"
run client send --kdc "$KDC" --group demo-group --state "$work/member1" --to "127.0.0.1:$p2" --wait 1 "hello group"
echo "-- member2 leaves; the KDC rekeys the group (forward security) and pushes the new keys:"
run client leave --kdc "$KDC" --group demo-group --state "$work/member2"
sleep 0.5
echo "-- what the watchers printed (registration = the keys they held, then each push):"
sed 's/^/   member1 watch: /' "$work/watch1"
sed 's/^/   member3 watch: /' "$work/watch3"
echo "-- member1 sends again under the new keys; member2, still listening with its old material, cannot read it:"
run client send --kdc "$KDC" --group demo-group --state "$work/member1" --to "127.0.0.1:$p2" --wait 1 "after member2 left"
sleep 1.5
sed 's/^/   member2 listen: /' "$work/listen2"
echo "-- member2's stored material is stale: the group has moved on without it:"
run client status --group demo-group --state "$work/member2"
echo "-- member1 asks the KDC which version is current:"
run client version --kdc "$KDC" --group demo-group --state "$work/member1"
echo "-- a message member1 sends now is captured on the way (a sniffer on port $((kdc_port + 6))):"
cap="$work/captured.bin"
/usr/bin/python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",int(sys.argv[1]))); s.settimeout(10)
open(sys.argv[2]+".ready","w").close()
open(sys.argv[2],"wb").write(s.recvfrom(2000)[0])' "$((kdc_port + 6))" "$cap" &
sniffer=$!
for _ in $(seq 50); do [ -f "$cap.ready" ] && break; sleep 0.1; done
run client send --kdc "$KDC" --group demo-group --state "$work/member1" --to "127.0.0.1:$((kdc_port + 6))" \
  --wait 0.3 "sent before member2 joins again"
wait $sniffer
kill $l2 2>/dev/null; wait $l2 2>/dev/null
echo "-- member2 joins again: the KDC rekeys (backward security), member2 gets the new keys and listens;"
echo "   the captured message, replayed to it, stays unreadable:"
join 2 requester
printf '$ acekdc client listen --kdc %s --group demo-group --state member2 --listen 127.0.0.1:%s &\n' "$KDC" "$p2"
"$acekdc" client listen --kdc "$KDC" --group demo-group --state "$work/member2" --listen "127.0.0.1:$p2" \
  --timeout 4 > "$work/listen2b" 2>&1 &
l2=$!
for _ in $(seq 30); do grep -q ^listening "$work/listen2b" && break; sleep 0.1; done
echo "\$ (replay the captured datagram to member2)"
/usr/bin/python3 -c 'import socket,sys
socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(open(sys.argv[1],"rb").read(),("127.0.0.1",int(sys.argv[2])))' \
  "$cap" "$p2"
for _ in $(seq 40); do grep -q "^rejected" "$work/listen2b" && break; sleep 0.1; done
sed 's/^/   member2 listen: /' "$work/listen2b"
echo "-- member3 (monitor only) may not become a requester:"
run client join --as "$AS" --kdc "$KDC" --id 03 --secret "${secret[3]}" --group demo-group \
  --role requester --state "$work/member3" || echo "(exit $?)"
echo "-- the KDC's log (no secrets in it):"
sed 's/^/   /' "$work/serve.log"

