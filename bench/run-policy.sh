#!/usr/bin/env bash
# Policy decisions at 1,000 / 10,000 / 100,000 services: zt beside AWS Cedar
# (../shared/bench/policy, cedar-wasm) on the same workload, in the same run.
#
# Targets (issue 3) at 100,000 services on one core: decision p50 <= 300 ns,
# p99 <= 1 us; compile <= 1 s and <= 200 MB; p50 at most twice that at 1,000.
# Cedar is slow at scale, so it gets fewer decisions there (CEDAR_N_*); set
# NO_CEDAR=1 to skip it. Needs node and npm for Cedar.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/bench_policy
pin="taskset -c ${BENCH_CORE:-0}"
command -v taskset >/dev/null || pin=""
shared=${ZT_SHARED:-../shared}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for S in 1000 10000 100000; do
  $pin ./build/bench_policy "$S" "${ZT_N:-500000}" | tee -a "$out"
  if [ -z "${NO_CEDAR:-}" ] && command -v node >/dev/null && [ -x "$shared/bench/policy/run-cedar.sh" ]; then
    case $S in 1000) n=${CEDAR_N_1K:-5000} ;; 10000) n=${CEDAR_N_10K:-500} ;; *) n=${CEDAR_N_100K:-100} ;; esac
    timeout 1200 $pin bash "$shared/bench/policy/run-cedar.sh" "$S" "$n" 2>/dev/null | tee -a "$out" || echo "cedar services=$S: did not finish"
  fi
done

field() { awk -v s="$1" -v k="$2" '$1=="zt" && $2=="services="s {for (i=1;i<=NF;i++) {split($i,a,"="); if (a[1]==k) print a[2]}}' "$out"; }
p50_1k=$(field 1000 decide_ns_p50); p50=$(field 100000 decide_ns_p50); p99=$(field 100000 decide_ns_p99)
comp=$(field 100000 compile_ms); mem=$(field 100000 snapshot_mb)
echo
awk -v a="$p50" -v b="$p99" -v c="$comp" -v m="$mem" -v r="$p50_1k" 'BEGIN {
  printf "at 100,000 services: p50 %d ns (<= 300: %s), p99 %d ns (<= 1000: %s), compile %d ms (<= 1000: %s), snapshot %d MB (<= 200: %s), p50 / p50 at 1,000 = %.2f (<= 2: %s)\n",
    a, a <= 300 ? "ok" : "NO", b, b <= 1000 ? "ok" : "NO", c, c <= 1000 ? "ok" : "NO", m, m <= 200 ? "ok" : "NO", a / r, a / r <= 2 ? "ok" : "NO" }'
