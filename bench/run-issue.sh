#!/usr/bin/env bash
# SVID issuance through one server (issue 8): simulated agents that joined with
# join tokens ask for SVIDs of their entries over mTLS, each request a CSR
# checked, authorized, signed and durably audited. Target: 5,000 SVIDs/s.
#   bench/run-issue.sh        ROUNDS (default 3) repeats; SECONDS (default 5) each
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b=$here/../build/bench_issue
zt=${ZT_BIN:-$here/../build/zt}
rounds=${ROUNDS:-3}
secs=${SECONDS_EACH:-5}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

"$zt" server --dir "$dir/state" --dev --listen 127.0.0.1:0 --ready-file "$dir/ready" \
  >"$dir/server.out" 2>"$dir/server.err" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
url=$(sed -n 1p "$dir/ready")
token=$(sed -n 2p "$dir/ready")
echo "== SVIDs through the server, one per request: simulated agents, ${secs} s each"
for agents in 1 4 16; do
  for r in $(seq "$rounds"); do "$b" server "$url" "$dir/state/bundle.pem" "$token" "$pid" "$agents" "$secs"; done
done
echo "== SVIDs through the server in batches (as agents renew): ${secs} s each"
for agents in 1 4 16; do
  for r in $(seq "$rounds"); do "$b" batch "$url" "$dir/state/bundle.pem" "$token" "$pid" "$agents" "$secs" 100; done
done
