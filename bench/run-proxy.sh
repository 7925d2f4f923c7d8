#!/usr/bin/env bash
# zt's sidecar pair beside HAProxy's and nginx's, in one run, with the shared
# scripts (../shared/bench): requests through the pair in TCP mode (issue 4)
# and HTTP mode (issue 5, zt deciding every request against 10,000 rules),
# full mTLS handshakes, the crypto floor, libssl's in-memory share of a
# handshake, then memory. Each measurement runs BENCH_ROUNDS times, the peers
# alternating, and the summary gives medians and the ratios of medians.
#   usage: bench/run-proxy.sh      BENCH_SECONDS (8) BENCH_ROUNDS (3) BENCH_CONNS (9900)
# docs/performance.md keeps the figures and how to read them.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${ZT_SHARED:-../shared}/bench
export ZT_REPO=$PWD
secs=${BENCH_SECONDS:-8}
rounds=${BENCH_ROUNDS:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # run LABEL CMD...: one measurement line, kept under LABEL
  local label=$1 line
  shift
  line=$("$@" 2>/dev/null | tail -1) || true
  echo "$label ${line:-failed}" | tee -a "$out"
}
for r in $(seq "$rounds"); do
  echo "== round $r"
  run tcp:haproxy "$shared/run-pair.sh" haproxy-tcp "$secs" 64
  run tcp:zt env ZT_PAIR_MODE=tcp "$shared/run-pair.sh" zt "$secs" 64
  run http:haproxy "$shared/run-pair.sh" haproxy "$secs" 64
  run http:nginx "$shared/run-pair.sh" nginx "$secs" 64
  run http:zt env ZT_PAIR_MODE=http "$shared/run-pair.sh" zt "$secs" 64
  run hs:haproxy "$shared/run-handshakes.sh" haproxy "$secs"
  run hs:zt env ZT_PAIR_MODE=tcp "$shared/run-handshakes.sh" zt "$secs"
done

med() { sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "nan"}'; }
get() { awk -v l="$1" -v k="$2" '$1==l {for (i=2;i<=NF;i++) {split($i,a,"="); if (a[1]==k) print a[2]}}' "$out" | med; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "nan"}'; }

echo
echo "== medians of $rounds rounds"
printf '%-34s %10s %10s %10s\n' "" "zt" "HAProxy" "nginx"
for mode in tcp http; do
  z=$(get $mode:zt proxy_cpu_us_per_req); h=$(get $mode:haproxy proxy_cpu_us_per_req)
  n=$([ $mode = http ] && get http:nginx proxy_cpu_us_per_req || echo -)
  printf '%-34s %10s %10s %10s   zt/HAProxy %s%s\n' "$mode: proxy CPU us/request" "$z" "$h" "$n" \
    "$(ratio "$z" "$h")" "$([ $mode = http ] && echo ", zt/nginx $(ratio "$z" "$n")")"
  printf '%-34s %10s %10s %10s\n' "$mode: p99 ms" "$(get $mode:zt p99_ms)" "$(get $mode:haproxy p99_ms)" \
    "$([ $mode = http ] && get http:nginx p99_ms || echo -)"
  printf '%-34s %10s %10s %10s\n' "$mode: requests/s" "$(get $mode:zt rps)" "$(get $mode:haproxy rps)" \
    "$([ $mode = http ] && get http:nginx rps || echo -)"
done
printf '%-34s %10s %10s\n' "handshake: server CPU us" "$(get hs:zt server_cpu_us_per_handshake)" \
  "$(get hs:haproxy server_cpu_us_per_handshake)"
echo
openssl speed -seconds 2 ecdsap256 ecdhx25519 2>/dev/null | grep -E "ecdsa \(nistp256\)|X25519" || true
# the same handshake with no sockets: libssl's share, beside the floor timed in-process
make -s build/bench_tls && echo "in-memory (bench/bench_tls.c, us):" && build/bench_tls /tmp/zt-bench/pki
# resident memory: idle, and per idle mTLS connection (9,900 open; bench/run-conns.sh)
bench/run-conns.sh "${BENCH_CONNS:-9900}"
