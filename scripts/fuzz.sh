#!/usr/bin/env bash
# Runs each fuzz target for SECONDS, starting from fuzz/corpus/<target>/.
# New inputs go to build-fuzz/corpus/<target>/ (not committed); crashes to
# build-fuzz/crash-<target>-*. Exits non-zero if any target finds a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=$1; shift
status=0
for bin in "$@"; do
  name=$(basename "$bin")
  work=build-fuzz/corpus/$name
  mkdir -p "$work" "fuzz/corpus/$name"
  echo "== $name for ${secs}s"
  # libFuzzer's per-input leak check rescans OpenSSL's large, growing heap
  # after every input (20x slower); leaks are the unit tests' job (LSan)
  leaks=1
  case $name in fuzz_svid|fuzz_csr) leaks=0 ;; esac
  if ! "$bin" -detect_leaks=$leaks -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
       -artifact_prefix="build-fuzz/crash-$name-" "$work" "fuzz/corpus/$name" 2>build-fuzz/$name.log; then
    echo "!! $name found a problem; see build-fuzz/$name.log and build-fuzz/crash-$name-*"
    tail -30 build-fuzz/$name.log
    status=1
  else
    grep -E "^#[0-9]+.*DONE" build-fuzz/$name.log | tail -1
  fi
done
exit $status
