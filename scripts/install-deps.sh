#!/usr/bin/env bash
# Install every Debian package that trustgate's build, tests, demo and bench
# need. Idempotent: when everything is present it runs dpkg-query once and
# exits without touching the network.
set -euo pipefail

PKGS=(
  build-essential pkg-config make git ca-certificates
  clang llvm libclang-rt-14-dev clang-format
  libssl-dev openssl
  libuv1-dev
  node-llhttp
  libinih-dev
  liblmdb-dev lmdb-utils
  libcurl4-openssl-dev curl
  libxml2-dev libxmlsec1-dev xmlsec1
  libcriterion-dev
  python3 iproute2
  wrk nginx-light gnuplot-nox
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
