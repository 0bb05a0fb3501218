#!/usr/bin/env bash
# WebSockets through the proxy, beside nginx (#27 item 8): echo messages per
# CPU-second of the proxy (CONNS connections, closed loop, 64-byte text
# messages, DUR seconds), and memory per idle open WebSocket (N of them: the
# proxy's RSS with them open, minus its RSS before, over N). The upstream is
# an echo server (bench/tools ws_load server) on CPU 1 with the load; each
# proxy on CPU 0, one worker/thread. authgate's connections carry a real
# session's token, so their open-stream registration (revocation) is counted.
# Usage: cargo build --release --bin authgate -p authgate-bench --bin ws_load
#        bench/websocket.sh            DUR=10 CONNS=64 N=6000
# N is at most ~6,500 here: the container's hard limit is 20,000 open files per
# process; nginx holds two sockets per WebSocket, authgate three (the third is
# the dup of the upstream socket that lets a revocation end it).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx redis-server curl python3 taskset
DUR=${DUR:-10}; CONNS=${CONNS:-64}; N=${N:-6000}; NGX=19207; WS=19208
WS_LOAD=${WS_LOAD:-target/release/ws_load}
[[ -x $WS_LOAD ]] || { echo "missing $WS_LOAD: cargo build --release -p authgate-bench --bin ws_load" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
taskset -c 1 "$WS_LOAD" server "127.0.0.1:$WS" & PIDS+=($!)
cat > "$T/ngx.conf" <<C
worker_processes 1; master_process off; daemon off; pid $T/ngx.pid; error_log $T/ngx.err;
worker_rlimit_nofile $(ulimit -Hn);
events { worker_connections 19900; }
http { access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://127.0.0.1:$WS; proxy_http_version 1.1;
    proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
    proxy_read_timeout 1h; } } }
C
taskset -c 0 nginx -c "$T/ngx.conf" -p "$T" & PIDS+=($!)
# The upstream read timeout (30 s in conf/gateway.yaml) also ends an upgraded
# connection whose upstream stays silent that long: an hour here, so the idle
# ones are still open when the RSS is read.
sed 's/read_timeout_ms: 30000/read_timeout_ms: 3600000/' "${GATEWAY_CONF:-conf/gateway.yaml}" > "$T/gw.yaml"
UP=$WS; start_redis
GATEWAY_CONF=$T/gw.yaml start_gateway 0
EMAIL="bench-$RANDOM$RANDOM@example.com"; BODY="{\"email\":\"$EMAIL\",\"password\":\"correct horse battery staple\"}"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$GW/register"
TOKEN=$(curl -s -X POST -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$GW/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
sleep 0.5
NGX_PID=$(pid_of "$NGX")

# echo LABEL PID PORT [TOKEN]: messages/s, messages per CPU-second and µs CPU per message of PID.
echo_line() {
  local c0 c1 out
  c0=$(cpu_ticks "$2")
  out=$(taskset -c 1 "$WS_LOAD" echo "ws://127.0.0.1:$3/ws" "$CONNS" "$DUR" ${4:+"$4"})
  c1=$(cpu_ticks "$2")
  awk -v l="$1" -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" '{ n=$2; s=$4; cpu=(b-a)/hz;
    printf "%-26s %9.0f msg/s  %9.0f msg/CPU-s  %6.2f us CPU/msg\n", l, n/s, n/cpu, cpu*1e6/n }' <<<"$out"
}
# idle LABEL PID PORT [TOKEN]: kB of RSS per open WebSocket of PID.
idle_line() {
  local before after fifo=$T/hold-$3 out=$T/idle-$3.out
  mkfifo "$fifo"
  before=$(rss_kb "$2")
  taskset -c 1 "$WS_LOAD" idle "ws://127.0.0.1:$3/ws" "$N" ${4:+"$4"} <"$fifo" >"$out" &
  local holder=$!
  exec 7>"$fifo"
  for _ in $(seq 600); do grep -q '^open' "$out" 2>/dev/null && break; sleep 0.2; done
  sleep 2
  after=$(rss_kb "$2")
  local open; open=$(awk '/^open/ {print $2}' "$out")
  awk -v l="$1" -v a="$before" -v b="$after" -v n="${open:-0}" \
    'BEGIN { printf "%-26s %6d open  RSS %7.1f MB -> %7.1f MB  %6.2f kB per WebSocket\n", l, n, a/1024, b/1024, (n ? (b-a)/n : 0) }'
  exec 7>&-
  wait "$holder" || true
}
echo "sanity: a plain GET (no upgrade): nginx=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$NGX/ws") (the echo server drops it)" \
  "authgate_noauth=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW/ws")"
echo_line "nginx (no auth)" "$NGX_PID" "$NGX"
echo_line "authgate + JWT" "$GW_PID" "$GW" "$TOKEN"
idle_line "nginx (no auth)" "$NGX_PID" "$NGX"
idle_line "authgate + JWT" "$GW_PID" "$GW" "$TOKEN"
# Why any handshake failed: the gateway's error lines (never a token), counted.
grep -v '^{"time"' "$T/gw.log" | grep -iE 'error|fail' | sed -E 's/^[^ ]+ [^ ]+ //' | cut -c1-240 | sort | uniq -c | sort -rn | head -3 || true
