#!/usr/bin/env bash
# Installs the Debian 12 packages acekdc needs to build, test and run its interop
# checks. Does nothing (and needs no network) when all are present. Run as root
# (or with sudo available).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  libssl-dev libsqlite3-dev libasio-dev libcli11-dev libtomlplusplus-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  libcoap3-bin python3 python3-cbor2 python3-cryptography
  iproute2 procps
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
