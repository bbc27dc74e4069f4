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

printf '\nNext: CoAP, OSCORE, the Authorization Server and the KDC (see README.md, Status).\n'
