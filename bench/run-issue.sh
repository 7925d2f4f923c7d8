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
for agents in ${AGENT_COUNTS:-1 4 16}; do
  for r in $(seq "$rounds"); do "$b" server "$url" "$dir/state/bundle.pem" "$token" "$pid" "$agents" "$secs"; done
done
echo "== SVIDs through the server in batches (as agents renew): ${secs} s each"
for agents in ${AGENT_COUNTS:-1 4 16}; do
  for r in $(seq "$rounds"); do "$b" batch "$url" "$dir/state/bundle.pem" "$token" "$pid" "$agents" "$secs" 100; done
done

# end to end: a real agent (joined with a token) with N entries on its node, from its start to
# every SVID held (keys made by the agent, batches of 100, each SVID audited)
n=${AGENT_ENTRIES:-2000}
echo "== end to end through a real agent: $n entries on its node"
for r in $(seq "$rounds"); do
  node=e2e-$r-$$
  "$b" entries "$url" "$dir/state/bundle.pem" "$token" "$node" "$n"
  jt=$(curl -s --cacert "$dir/state/bundle.pem" -H "Authorization: Bearer $token" \
    -d "{\"node\":\"$node\"}" "$url/v1/jointokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  port=$((21000 + RANDOM % 20000))
  cat >"$dir/agent-$r.yaml" <<AGENT
apiVersion: zt.dev/v1
kind: AgentConfig
spec:
  server: "$url"
  trustBundle: $dir/state/bundle.pem
  joinToken: $jt
  dataDir: $dir/agent-$r
  socket: $dir/agent-$r.sock
  admin: {listen: "127.0.0.1:$port"}
AGENT
  t0=$(date +%s.%N)
  "$zt" agent -c "$dir/agent-$r.yaml" 2>"$dir/agent-$r.log" &
  apid=$!
  got=0
  for _ in $(seq 1200); do
    got=$(curl -s "127.0.0.1:$port/metrics" 2>/dev/null | sed -n 's/^zt_agent_svids_issued_total //p' || true)
    [ "${got:-0}" -ge "$n" ] && break
    sleep 0.05
  done
  t1=$(date +%s.%N)
  kill "$apid"; wait "$apid" 2>/dev/null || true
  awk -v n="$n" -v got="${got:-0}" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "issue op=agent entries=%d issued=%d seconds=%.2f svids_per_s=%.0f (join and start included)\n", n, got, b - a, got / (b - a) }'
done
