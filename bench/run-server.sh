#!/usr/bin/env bash
# The control plane's benchmark (issue 7): authenticated API reads, policy
# writes, and the time from a policy write to enforcement at 100 watching
# proxies (simulated: each long-polls with an SVID and compiles every answer).
#   bench/run-server.sh        ROUNDS (default 3) repeats of each measurement
# Prints one line per measurement; docs/performance.md says what they mean.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b=$here/../build/bench_server
zt=${ZT_BIN:-$here/../build/zt}
rounds=${ROUNDS:-3}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

"$zt" server --dir "$dir/state" --dev --listen 127.0.0.1:0 --ready-file "$dir/ready" \
  >"$dir/server.out" 2>"$dir/server.err" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
url=$(sed -n 1p "$dir/ready")
token=$(sed -n 2p "$dir/ready")
ca=$dir/state/bundle.pem
"$zt" ca issue --dir "$dir/state/ca" --id spiffe://zt.local/ns/dev/sa/web \
  --key-out "$dir/web.key" --out "$dir/web.pem" >/dev/null

# the peer: nginx serving the same answer as a static file over the same TLS (a certificate
# with the server's identity, from the same CA), read by the same client: what an HTTPS
# request costs without authentication, authorization or the store
npid=
if command -v nginx >/dev/null; then
  mkdir -p "$dir/nginx/www/v1/orgs" "$dir/nginx/logs"
  "$zt" ca issue --dir "$dir/state/ca" --id spiffe://zt.local/zt/server --dns localhost \
    --key-out "$dir/nginx/server.key" --out "$dir/nginx/server.pem" >/dev/null
  curl -s --cacert "$ca" -H "Authorization: Bearer $token" "$url/v1/orgs/demo" >"$dir/nginx/www/v1/orgs/demo"
  nport=$((20000 + RANDOM % 20000))
  cat >"$dir/nginx/nginx.conf" <<NGINX
daemon off;
user root;
worker_processes 1;
error_log $dir/nginx/logs/error.log;
pid $dir/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_certificate $dir/nginx/server.pem;
    ssl_certificate_key $dir/nginx/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $dir/nginx/www;
  }
}
NGINX
  nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" &
  npid=$!
  trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$npid" ] && kill "$npid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 50); do nworker=$(pgrep -P "$npid" || true); [ -n "$nworker" ] && break; sleep 0.1; done
fi

echo "== authenticated reads (GET /v1/orgs/demo, bearer token, kept-alive TLS), 5 s each"
for threads in 1 4 16; do
  for r in $(seq "$rounds"); do "$b" reads "$url" "$ca" "$token" "$pid" "$threads" 5; done
  if [ -n "$npid" ]; then
    for r in $(seq "$rounds"); do
      "$b" reads "https://localhost:$nport" "$ca" "$token" "$nworker" "$threads" 5 | sed 's/op=read/op=read-nginx-static/'
    done
  fi
done
echo "== policy writes (PUT with version: compile check, audit append, durable commit)"
for threads in 1 4; do
  for r in $(seq "$rounds"); do "$b" writes "$url" "$ca" "$token" "$pid" "$threads" 200; done
done
echo "== a policy write to enforcement at 100 watchers (20 writes each run)"
for r in $(seq "$rounds"); do
  "$b" watch "$url" "$ca" "$token" "$pid" 100 20 "$dir/web.pem" "$dir/web.key"
done
