#!/usr/bin/env bash
# Resident memory of the inbound proxy: idle, and per idle mTLS connection with
# N open (default 9,900: two sockets each, under a 20,000 open-file limit).
# usage: bench/run-conns.sh [N]        (certificates from the shared mkpki.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-9900}
shared=${ZT_SHARED:-../shared}/bench
PKI=/tmp/zt-bench/pki
[ -f $PKI/ca.crt ] || "$shared/mkpki.sh" $PKI >/dev/null
w=$(mktemp -d)
trap 'kill $zpid 2>/dev/null; wait 2>/dev/null; rm -rf "$w"' EXIT
cat >"$w/in.yaml" <<C
apiVersion: zt.dev/v1
kind: ProxyConfig
spec:
  trustDomain: example.org
  identity: {cert: $PKI/server.crt, key: $PKI/server.key, bundle: $PKI/ca.crt}
  policy: $PWD/bench/pair-policy.yaml
  workers: ${ZT_WORKERS:-2}
  limits: {maxConnections: 20000, maxConnectionsPerIdentity: 20000}
  listeners: [{name: in, mode: inbound, listen: "127.0.0.1:18543", forward: "127.0.0.1:18580"}]
C
./build/zt proxy -c "$w/in.yaml" --log-level warn 2>"$w/zt.log" & zpid=$!
sleep 0.5
/usr/bin/python3 bench/conns.py $zpid 18543 18580 $PKI "$n"
