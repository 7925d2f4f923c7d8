#!/usr/bin/env bash
# zt's sidecar pair (TCP mode) beside HAProxy's, in one run, with the shared
# scripts: requests through the pair (CPU per request, latency) and full
# mTLS handshakes (server CPU per handshake), then the crypto floor.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${ZT_SHARED:-../shared}/bench
export ZT_REPO=$PWD ZT_PAIR_MODE=tcp
secs=${BENCH_SECONDS:-8}
for peer in haproxy-tcp zt; do "$shared/run-pair.sh" "$peer" "$secs" 64; done
for peer in haproxy zt; do "$shared/run-handshakes.sh" "$peer" "$secs"; done
openssl speed -seconds 2 ecdsap256 ecdhx25519 2>/dev/null | grep -E "ecdsa \(nistp256\)|X25519" || true
# the same handshake with no sockets: libssl's share, beside the floor timed in-process
make -s build/bench_tls && echo "in-memory (bench/bench_tls.c, us):" && build/bench_tls /tmp/zt-bench/pki
# resident memory: idle, and per idle mTLS connection (9,900 open; bench/run-conns.sh)
bench/run-conns.sh "${BENCH_CONNS:-9900}"
