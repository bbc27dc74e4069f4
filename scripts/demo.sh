#!/usr/bin/env bash
# make demo: shows what acekdc does today, on published data nobody here wrote.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
acekdc="$root/$build/acekdc"
ex="$root/examples/rfc8392"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ acekdc %s\n' "$*"; "$acekdc" "$@"; }

step "CBOR: diagnostic notation both ways (RFC 8949)"
run cbor diag a3016b636f61703a2f2f6b6463026474657374038201f90001
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

step "The ACE Authorization Server and the KDC's /authz-info, over CoAP + OSCORE on localhost"
port=$((20000 + RANDOM % 20000))
as_key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
client_secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
state=$(mktemp -d)
printf '$ acekdc serve --listen 127.0.0.1:%s --shared-key <16 random bytes> --client sensor1:01:<secret> --grant sensor1:demo-group:requester,responder &\n' "$port"
"$acekdc" serve --listen "127.0.0.1:$port" --state "$state/kdc" --shared-key "$as_key" --client "sensor1:01:$client_secret" \
  --grant sensor1:demo-group:requester,responder > "$state/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; rm -rf "$state"' EXIT
sleep 0.5
echo "-- sensor1 asks for a token for demo-group as requester and posts it to the KDC:"
run client token "coap://127.0.0.1:$port/token" --id 01 --secret "$client_secret" --state "$state" \
  --scope demo-group:requester --audience kdc --post "coap://127.0.0.1:$port/authz-info" --sign-info
echo "-- sensor1 asks for a group the AS does not allow it:"
run client token "coap://127.0.0.1:$port/token" --id 01 --secret "$client_secret" --state "$state" \
  --scope other-group:requester --audience kdc || echo "(exit $?)"
echo "-- a stranger with a wrong OSCORE secret:"
run client token "coap://127.0.0.1:$port/token" --id 01 --secret 000102030405060708090a0b0c0d0e0f \
  --state "$state/stranger" --scope demo-group:requester --audience kdc || echo "(exit $?)"

printf '\nNext: the KDC group interface (join, keys, rekeying) and Group OSCORE (see README.md, Status).\n'
