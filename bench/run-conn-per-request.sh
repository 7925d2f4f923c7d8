#!/usr/bin/env bash
# A service that opens a new connection for every request (wrk with
# "Connection: close") through zt's HTTP sidecar pair: the proxies' CPU per
# request. The outbound proxy's worker pools its upstream mTLS connections
# (src/proxy/pool.c), so only the plain local hop is per request.
#   usage: bench/run-conn-per-request.sh [SECONDS]   (ZT_BIN picks the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
shared=${ZT_SHARED:-../shared}/bench
export PKI=/tmp/zt-bench/pki ZT_WORKERS=${ZT_WORKERS:-1}
W=/tmp/zt-bench
[ -f $PKI/ca.crt ] || "$shared/mkpki.sh" $PKI >/dev/null
nginx -p $W -c "$shared/backend.nginx.conf" & ng=$!
bench/zt-pair.sh http >$W/zt-conn.log 2>&1 & zp=$!
trap 'kill $zp 2>/dev/null; nginx -p $W -c "$shared/backend.nginx.conf" -s stop 2>/dev/null; wait 2>/dev/null' EXIT
for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18001/ && break; sleep 0.1; done
ticks() { local t=0 p; for p in $(pgrep -P $zp); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
t0=$(ticks)
out=$(wrk -t1 -c16 -d${secs}s -H "Connection: close" http://127.0.0.1:18001/)
t1=$(ticks)
reqs=$(awk '/requests in/{print $1}' <<<"$out")
echo "zt conn-per-request reqs=$reqs proxy_cpu_us_per_req=$(echo "scale=1; ($t1-$t0)*1000000/$(getconf CLK_TCK)/$reqs" | bc)"
