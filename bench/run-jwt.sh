#!/usr/bin/env bash
# JWT verification on one core with a cached JWKS (issue 9), beside OpenSSL's
# own signature verification rate on the same machine in the same run.
# Target: zt's rate at least 80% of `openssl speed`'s verify rate.
#   ROUNDS (default 5) rounds of SECONDS_EACH (default 1) per algorithm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b=$here/../build/bench_jwt
rounds=${ROUNDS:-5}
secs=${SECONDS_EACH:-1}

speed() { # $1: openssl speed algorithm; prints verifies/s
  openssl speed -seconds "$secs" "$1" 2>/dev/null | awk -v a="$1" '
    a ~ /^rsa/  && $1 == "rsa" && $2 == "2048" { print $(NF) ; exit }
    a ~ /^ecdsa/ && $0 ~ /nistp256/ { print $(NF); exit }
    a ~ /^ed25519/ && $0 ~ /Ed25519/ { print $(NF); exit }'
}
printf '%-6s %14s %16s %8s\n' alg "zt verify/s" "openssl verify/s" ratio
for pair in ES256:ecdsap256 RS256:rsa2048 EdDSA:ed25519; do
  alg=${pair%%:*}; peer=${pair#*:}
  # interleave so both see the same machine: openssl, zt, openssl
  o1=$(speed "$peer")
  z=$("$b" "$alg" "$secs" "$rounds" | sed -n 's/.*, \([0-9]*\)\/s on one core.*/\1/p')
  o2=$(speed "$peer")
  o=$(echo "($o1 + $o2) / 2" | bc -l)
  printf '%-6s %14.0f %16.0f %7.0f%%\n' "$alg" "$z" "$o" "$(echo "100 * $z / $o" | bc -l)"
done
