#!/usr/bin/env bash
# Starts zt as both halves of a sidecar pair for ../shared/bench/run-pair.sh and
# run-handshakes.sh, and stays in the foreground until killed:
#   plain in on 127.0.0.1:18001 -> [zt outbound, client SVID] -> mTLS on
#   127.0.0.1:18443 -> [zt inbound, server SVID, policy] -> app on 127.0.0.1:18080
# usage: zt-pair.sh tcp|http   (certificates from $PKI, as the shared mkpki.sh makes them)
#   http: both listeners speak HTTP/1.1 and the inbound one decides every
#   request against a policy of 10,000 rules (bench/gen-policy.py; ZT_RULES
#   changes the count)
set -euo pipefail
mode=${1:-tcp}
here=$(cd "$(dirname "$0")" && pwd)
zt=${ZT_BIN:-$here/../build/zt}
case $mode in tcp|http) ;; *) echo "zt-pair.sh: mode is tcp or http, not $mode" >&2; exit 2 ;; esac
: "${PKI:?set PKI to the folder mkpki.sh made}"
w=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$w"' EXIT INT TERM
policy=$here/pair-policy.yaml
if [ "$mode" = http ]; then
  policy=$w/policy.yaml
  python3 "$here/gen-policy.py" "${ZT_RULES:-10000}" >"$policy"
fi

cat >"$w/in.yaml" <<C
apiVersion: zt.dev/v1
kind: ProxyConfig
spec:
  trustDomain: example.org
  identity: {cert: $PKI/server.crt, key: $PKI/server.key, bundle: $PKI/ca.crt}
  policy: $policy
  workers: ${ZT_WORKERS:-1}
  tls: {resumption: ${ZT_RESUMPTION:-true}}
  limits: {maxConnections: 20000}
  listeners: [{name: in, mode: inbound, protocol: $mode, listen: "127.0.0.1:18443", forward: "127.0.0.1:18080"}]
C
cat >"$w/out.yaml" <<C
apiVersion: zt.dev/v1
kind: ProxyConfig
spec:
  trustDomain: example.org
  identity: {cert: $PKI/client.crt, key: $PKI/client.key, bundle: $PKI/ca.crt}
  workers: ${ZT_WORKERS:-1}
  limits: {maxConnections: 20000}
  listeners: [{name: out, mode: outbound, protocol: $mode, listen: "127.0.0.1:18001", upstream: "127.0.0.1:18443",
               expect: [spiffe://example.org/ns/default/sa/server]}]
C
"$zt" proxy -c "$w/in.yaml" --log-level warn & pids+=($!)
"$zt" proxy -c "$w/out.yaml" --log-level warn & pids+=($!)
wait
