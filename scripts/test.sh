#!/usr/bin/env bash
# Runs zt's tests and ends with one line "N passed, N failed".
#   scripts/test.sh [all|unit|e2e|asan]
#   all:  unit tests (gcc build), end-to-end tests (pytest), then the unit
#         tests and the end-to-end tests again with everything built by
#         clang under AddressSanitizer + UBSan.
set -uo pipefail
cd "$(dirname "$0")/.."
export ZT_SRCDIR=$PWD
mode=${1:-all}
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
problems=()

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
run_unit_dir() {
  local dir=$1 label=$2 t out p f
  for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    p=$(grep -oE '^\[  PASSED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' | tail -1)
    f=$(grep -oE '^\[  FAILED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer abort
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
      problems+=("$label $(basename "$t")")
      printf '%s\n' "$out" | tail -40
    fi
    printf '%-6s %-28s %3d passed, %d failed\n' "$label" "$(basename "$t")" "$p" "$f"
  done
}

unit() {
  make -s -j"$jobs" unit-bins build/zt || { failed=$((failed + 1)); problems+=("build"); return; }
  run_unit_dir build unit
}

# The unit tests, and the zt binary the end-to-end tests then drive, built
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer.
asan() {
  make -s -j"$jobs" BUILD=build-asan SAN=1 CC=clang unit-bins build-asan/zt \
    || { failed=$((failed + 1)); problems+=("asan build"); return; }
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_unit_dir build-asan asan
  # test_jwtpeers.py checks only the node interop peers, never zt: once is enough
  ZT_BIN=$PWD/build-asan/zt e2e asan-e2e --ignore=tests/e2e/test_jwtpeers.py
}

e2e() {
  local label=${1:-e2e}
  shift $(( $# > 0 ? 1 : 0 ))
  [ -n "${ZT_BIN:-}" ] || make -s -j"$jobs" build/zt || { failed=$((failed + 1)); problems+=("build"); return; }
  local out rc p f er
  # one test at a time: under two pytest-xdist workers and ASan, test_zt_dev once saw the
  # allowed call denied right after zt dev's own check passed (a race under load, not yet
  # understood); ZT_TEST_WORKERS=N runs N workers for a quicker local run
  local par=()
  if [ -n "${ZT_TEST_WORKERS:-}" ] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
    par=(-n "$ZT_TEST_WORKERS")
  fi
  out=$(ZT_BIN=${ZT_BIN:-$PWD/build/zt} /usr/bin/python3 -m pytest -q -p no:cacheprovider "${par[@]}" "$@" tests/e2e 2>&1); rc=$?
  printf '%s\n' "$out" | tail -25
  p=$(grep -oE '[0-9]+ passed' <<<"$out" | tail -1 | grep -oE '^[0-9]+'); p=${p:-0}
  f=$(grep -oE '[0-9]+ failed' <<<"$out" | tail -1 | grep -oE '^[0-9]+'); f=${f:-0}
  er=$(grep -oE '[0-9]+ errors?' <<<"$out" | tail -1 | grep -oE '^[0-9]+'); er=${er:-0}
  f=$((f + er))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  [ "$p" -eq 0 ] && { f=$((f + 1)); problems+=("$label ran no test"); }
  [ "$f" -ne 0 ] && problems+=("$label")
  printf '%-6s %-28s %3d passed, %d failed\n' "$label" "tests/e2e" "$p" "$f"
  passed=$((passed + p)); failed=$((failed + f))
}

case "$mode" in
  all) unit; e2e; asan ;;
  unit) unit ;;
  e2e) e2e ;;
  asan) asan ;;
  *) echo "usage: $0 [all|unit|e2e|asan]" >&2; exit 2 ;;
esac

[ ${#problems[@]} -gt 0 ] && echo "failures in: ${problems[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
