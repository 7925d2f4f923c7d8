#!/usr/bin/env bash
# The audit log's benchmark (issue 6): durable appends through group commit,
# proofs and offline verification at 1 million and 10 million entries.
#   bench/run-audit.sh            (AUDIT_BENCH_DIR: where the logs go, default
#                                  a temp dir; the 10M log takes 2.6 GB)
# Prints one line per measurement; docs/performance.md says what they mean.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b=$here/../build/bench_audit
zt=${ZT_BIN:-$here/../build/zt}
base=${AUDIT_BENCH_DIR:-$(mktemp -d)}
trap 'rm -rf "$base/append" "$base/big"' EXIT
rounds=${ROUNDS:-3}

echo "== durable appends: 16 writers, 200-byte entries, $rounds rounds of 5 s per window"
for window in 1 16 64 256; do
  for r in $(seq "$rounds"); do
    rm -rf "$base/append"
    "$zt" audit init --dir "$base/append" --origin bench.example/append >/dev/null
    "$b" append "$base/append" 5 "$window"
  done
done

rm -rf "$base/big"
"$zt" audit init --dir "$base/big" --origin bench.example/big >/dev/null
for n in 1000000 10000000; do
  echo "== $n entries"
  "$b" fill "$base/big" "$n"
  "$b" proofs "$base/big" 20000
  for r in $(seq "$rounds"); do "$b" verify "$base/big"; done
  /usr/bin/time -f "zt audit verify (CLI): %e s wall, %U s user, %S s system" \
    "$zt" audit verify --dir "$base/big" --key "$base/big/log.pub"
done
