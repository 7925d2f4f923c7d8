#!/usr/bin/env bash
# Installs (install) or checks-then-installs (ensure) the Debian packages that
# zt's build, tests, fuzzers and benchmarks need. One list, here.
set -euo pipefail

PKGS=(
  build-essential clang llvm libclang-rt-14-dev pkg-config
  libssl-dev openssl libjansson-dev libyaml-dev libcmocka-dev libsqlite3-dev
  libargon2-dev  # Argon2id password hashes (crypto/password.c)
  python3 python3-pytest python3-pytest-xdist curl ca-certificates
  # interop peers of the audit log and sealed keys: Go's reference signed-note and
  # tlog code, and python-cryptography (Ed25519, AES-GCM) in the end-to-end tests
  golang-go golang-golang-x-mod-dev python3-cryptography
)

# only for `make bench`: the peers and the load generator
BENCH_PKGS=(haproxy nginx-light wrk bc util-linux)  # Cedar also needs node and npm (the image has them)

missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

install() {
  local need
  need=$(missing "$@")
  [ -z "$need" ] && return 0
  echo "zt: installing Debian packages: $need" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >&2
}

# the JWT/OIDC interop peers of the end-to-end tests: panva's jose and oidc-provider,
# pinned in tests/interop/node/package-lock.json (node and npm come with the image)
node_deps() {
  local dir lock stamp
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/interop/node"
  lock="$dir/package-lock.json" stamp="$dir/node_modules/.package-lock.json"
  [ -f "$stamp" ] && [ ! "$stamp" -ot "$lock" ] && return 0
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    install nodejs npm  # the image brings node 20; Debian's is the fallback
  fi
  echo "zt: installing the node interop peers (npm ci in tests/interop/node)" >&2
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
}

case "${1:-ensure}" in
  install|ensure) install "${PKGS[@]}"; node_deps ;;
  bench) install "${PKGS[@]}" "${BENCH_PKGS[@]}" ;;
  list) printf '%s\n' "${PKGS[@]}" ;;
  *) echo "usage: $0 install|ensure|bench|list" >&2; exit 2 ;;
esac
