#!/usr/bin/env bash
# Quick throughput check (not the bench harness): wrk with keep-alive
# connections against trustgate's /healthz and an OCSP GET, beside nginx
# serving a static file of the same size as the OCSP answer, in one run.
# Every figure is the median of RUNS alternated runs.
#
# usage: bench/quick-wrk.sh [BUILD_DIR]    env: RUNS=3 SECS=5 CONNS=8 WORKERS=2
set -euo pipefail
BUILD=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-8}
WORKERS=${WORKERS:-2}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# an OCSP request for a real (generated) certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
    -out "$work/ca.pem" -subj /CN=bench-ca -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ee.key" \
    -out "$work/ee.csr" -subj /CN=bench-ee 2>/dev/null
openssl x509 -req -in "$work/ee.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -out "$work/ee.pem" -days 1 2>/dev/null
openssl ocsp -issuer "$work/ca.pem" -cert "$work/ee.pem" -no_nonce -reqout "$work/req.der" \
    >/dev/null
b64=$(base64 -w0 "$work/req.der")

tg_port=$(free_port)
cat >"$work/tg.ini" <<INI
[server]
listen = 127.0.0.1:$tg_port
workers = $WORKERS
log_level = warn
admin_socket = admin.sock
[cache]
path = cache
INI
"$top/$BUILD/trustgate" serve -c "$work/tg.ini" 2>"$work/tg.log" &
pids+=($!)

ng_port=$(free_port)
mkdir -p "$work/www" "$work/ngx"
chmod 755 "$work" "$work/www" # nginx workers run as an unprivileged user
# wait_up URL OUT: polls for up to 5 s; fails loudly instead of hanging
wait_up() {
    for _ in $(seq 50); do
        curl -sf -o "$2" --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "quick-wrk: $1 did not answer; logs in $work" >&2
    cat "$work"/*.log >&2 || true
    exit 1
}
wait_up "http://127.0.0.1:$tg_port/ocsp/$b64" "$work/www/resp.der"
cat >"$work/nginx.conf" <<NGX
worker_processes $WORKERS;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/ngx; proxy_temp_path $work/ngx;
    fastcgi_temp_path $work/ngx; uwsgi_temp_path $work/ngx; scgi_temp_path $work/ngx;
    server {
        listen 127.0.0.1:$ng_port reuseport;
        location / { root $work/www; default_type application/ocsp-response; }
    }
}
NGX
nginx -c "$work/nginx.conf" &
pids+=($!)
chmod 644 "$work/www/resp.der"
wait_up "http://127.0.0.1:$ng_port/resp.der" /dev/null

rate() { wrk -t1 -c"$CONNS" -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A res
for i in $(seq "$RUNS"); do
    res[nginx]+="$(rate "http://127.0.0.1:$ng_port/resp.der") "
    res[healthz]+="$(rate "http://127.0.0.1:$tg_port/healthz") "
    res[ocsp]+="$(rate "http://127.0.0.1:$tg_port/ocsp/$b64") "
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "wrk -t1 -c$CONNS -d${SECS}s, $WORKERS workers each, median of $RUNS alternated runs"
n=$(echo "${res[nginx]}" | tr ' ' '\n' | grep . | median)
for k in nginx healthz ocsp; do
    m=$(echo "${res[$k]}" | tr ' ' '\n' | grep . | median)
    printf '%-8s %10.0f req/s  (%.2f x nginx)   runs: %s\n' "$k" "$m" \
        "$(awk -v m="$m" -v n="$n" 'BEGIN {print m / n}')" "${res[$k]}"
done
