#!/usr/bin/env bash
# Command-line tests of the acekdc binary: what a user types, checked on its output
# and exit code. Usage: cli_test.sh path/to/acekdc
set -u
acekdc=$1
root=$(cd "$(dirname "$0")/.." && pwd)
ex="$root/examples/rfc8392"
pass=0 fail=0
check() {  # check NAME EXPECTED_RC EXPECTED_GREP -- command...
  local name=$1 want_rc=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: $name (rc=$rc, want $want_rc, pattern '$pattern')"; echo "$out" | head -20
  fi
}

check "diag of RFC 8949 example" 0 '^\{"a": 1, "b": \[2, 3\]\}$' -- "$acekdc" cbor diag a26161016162820203
check "diag of stdin binary" 0 '^\[1, \[2, 3\], \[4, 5\]\]$' -- bash -c "printf '\x83\x01\x82\x02\x03\x82\x04\x05' | '$acekdc' cbor diag -"
check "encode EDN" 0 '^a201420102616182f93e0021$' -- "$acekdc" cbor encode "{1: h'0102', \"a\": [1.5, -2]}"
check "encode indefinite" 0 '^5f42010243030405ff$' -- "$acekdc" cbor encode "(_ h'0102', h'030405')"
check "diag rejects truncated" 1 'not well-formed' -- "$acekdc" cbor diag a26161
check "diag rejects bad hex" 2 'not hex' -- "$acekdc" cbor diag zz
check "encode rejects bad EDN" 2 'offset' -- "$acekdc" cbor encode "[1, "
check "A.3 signed" 0 'COSE_Sign1, authenticated' -- "$acekdc" token inspect --key "@$ex/sign-key.edn" "@$ex/signed.hex" --now 1443944944
check "A.4 maced" 0 'COSE_Mac0, authenticated' -- "$acekdc" token inspect --key "@$ex/mac-key.edn" "@$ex/maced.hex" --now 1443944944
check "A.5 encrypted" 0 '2: "erikw"' -- "$acekdc" token inspect --key "@$ex/enc-key.edn" "@$ex/encrypted.hex" --now 1443944944
check "expired" 1 'expired' -- "$acekdc" token inspect --key "@$ex/sign-key.edn" "@$ex/signed.hex"
check "wrong audience" 1 'audience' -- "$acekdc" token inspect --key "@$ex/sign-key.edn" "@$ex/signed.hex" --now 1443944944 --audience other
check "wrong key" 1 'rejected' -- "$acekdc" token inspect --key "@$ex/mac-key.edn" "@$ex/encrypted.hex" --now 1443944944
tampered=$(sed 's/..$/00/' "$ex/encrypted.hex")
check "tampered ciphertext" 1 'rejected' -- "$acekdc" token inspect --key "@$ex/enc-key.edn" "$tampered" --no-time-check
check "garbage token" 1 'rejected' -- "$acekdc" token inspect --key "@$ex/enc-key.edn" 00 --no-time-check
check "garbage key" 2 'COSE_Key|CBOR|hex' -- "$acekdc" token inspect --key 01 "@$ex/encrypted.hex"
for alg in EdDSA ES256 A128GCM A256GCM AES-CCM-16-64-128 AES-CCM-16-128-128 ChaCha20/Poly1305 "HMAC 256/64"; do
  check "key generate $alg" 0 '^\{1: ' -- "$acekdc" key generate --alg "$alg"
done
check "key generate unknown" 2 'unknown algorithm' -- "$acekdc" key generate --alg ROT13
key=$("$acekdc" key generate --alg ES256)
tok=$("$acekdc" token create --key "$key" --claims '{1: "as", 3: "kdc", 4: 4000000000}' --type sign)
check "create+inspect ES256" 0 '3: "kdc"' -- "$acekdc" token inspect --key "$key" "$tok" --audience kdc
key=$("$acekdc" key generate --alg AES-CCM-16-64-128)
tok=$("$acekdc" token create --key "$key" --claims '{3: "kdc", 4: 4000000000}' --type encrypt --cwt-tag)
check "create+inspect encrypted" 0 'COSE_Encrypt0' -- "$acekdc" token inspect --key "$key" "$tok"
# draft-hoeglund-core-oscore-key-limits-01 §2.1.1: the recommended triplets and one refused.
check "limits CCM_8 default" 0 'IA = 2\^-54\.00' -- "$acekdc" oscore limits --alg AES-CCM-16-64-128
check "limits CCM_8 v=2^20 refused" 1 'IA = 2\^-44\.00' -- "$acekdc" oscore limits --alg AES-CCM-16-64-128 --v 2^20
check "limits GCM" 0 'CA = 2\^-89\.00' -- "$acekdc" oscore limits --alg A128GCM
check "limits unknown alg" 2 'unknown algorithm' -- "$acekdc" oscore limits --alg ROT13
check "help" 0 'Subcommands' -- "$acekdc" --help
# The client side without a KDC: subcommands, an empty state, JSON errors, bad arguments.
nostate=$(mktemp -d)
check "client help" 0 'watch' -- "$acekdc" client --help
for sub in pub-keys policies version renew update-pub-key status; do
  check "client $sub help" 0 '--group' -- "$acekdc" client "$sub" --help
done
check "client status, nothing stored" 1 'not joined: no keying material' -- "$acekdc" client status --group g1 --state "$nostate"
check "client keys, not joined" 1 'not joined: no session' -- "$acekdc" client keys --kdc coap://127.0.0.1:9 --group g1 --state "$nostate"
check "client keys --json error" 1 '^\{"op":"keys","ok":false,"error":"not joined"' -- "$acekdc" client keys --kdc coap://127.0.0.1:9 --group g1 --state "$nostate" --json
check "client version needs --kdc" 106 'kdc' -- "$acekdc" client version --group g1
check "client pub-keys bad id" 2 'must be hex' -- "$acekdc" client pub-keys --kdc coap://127.0.0.1:9 --group g1 --state "$nostate" --id zz
check "client join bad role" 2 'unknown role' -- "$acekdc" client join --as coap://127.0.0.1:9 --kdc coap://127.0.0.1:9 --id 01 --secret 00 --group g1 --role boss --state "$nostate"
rm -rf "$nostate"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
