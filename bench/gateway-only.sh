#!/usr/bin/env bash
# Quick loop for tuning: authgate alone on the proxy path, measured the same way
# as ../shared/bench/peers.sh (gateway pinned to CPU 0, upstream and wrk to CPU 1,
# CPU microseconds of the gateway process per request).
# Usage: bench/gateway-only.sh   (after cargo build --release)
#   DUR=10 CONN=64 GATEWAY_BIN=target/release/authgate GW_CPUS=0 (taskset list for the
#   gateway) and any AUTHGATE_* variable
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}; CONN=${CONN:-64}
GATEWAY_BIN=${GATEWAY_BIN:-target/release/authgate}
SECRET=bench-secret-0123456789abcdef0123456789abcdef
UP=19100; GW=19103; RDS=19104; OPS=19105
for t in nginx wrk redis-server curl python3 taskset; do command -v $t >/dev/null || { echo "missing: $t (apt-get install nginx wrk redis-server curl)" >&2; exit 2; }; done
T=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT
cat > "$T/up.conf" <<C
worker_processes 1; daemon off; pid $T/up.pid; error_log $T/up.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "hello from upstream\n"; } } }
C
taskset -c 1 nginx -c "$T/up.conf" -p "$T" & PIDS+=($!)
taskset -c 1 redis-server --port $RDS --bind 127.0.0.1 --save "" --appendonly no >"$T/redis.log" 2>&1 & PIDS+=($!)
AUTHGATE_LISTEN=127.0.0.1:$GW AUTHGATE_OPS_LISTEN=127.0.0.1:$OPS AUTHGATE_UPSTREAM=http://127.0.0.1:$UP \
AUTHGATE_REDIS_URL=redis://127.0.0.1:$RDS/0 AUTHGATE_JWT_SECRET=$SECRET AUTHGATE_ACCESS_TTL=3600 \
AUTHGATE_THREADS=${AUTHGATE_THREADS:-1} AUTHGATE_UPGRADE_SOCK=$T/up.sock AUTHGATE_PID_FILE=$T/gw.pid \
  taskset -c "${GW_CPUS:-0}" "$GATEWAY_BIN" -c conf/gateway.yaml >"$T/gw.log" 2>&1 & PIDS+=($!)
sleep 1.5
TOKEN=$(python3 ../shared/bench/mkjwt.py "$SECRET" 1 3600)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$GW/api/x) == 200 ]] || { tail "$T/gw.log"; exit 1; }
pid=$(ss -ltnpH "sport = :$GW" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
c0=$(awk '{print $14+$15}' /proc/$pid/stat)
out=$(taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x")
c1=$(awk '{print $14+$15}' /proc/$pid/stat)
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz*1e6/n}')
printf "authgate: %s req/s  p99 %s  %s us CPU/req  rss %s kB\n" "$rps" "$p99" "$us" "$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
grep -E "Non-2xx|Socket errors" <<<"$out" || true
