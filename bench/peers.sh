#!/usr/bin/env bash
# The README's comparison table, from a fresh clone: the proxy path of authgate
# against nginx and HAProxy, each proxy on one core (CPU 0), the upstream,
# Redis and the load generator on the other (CPU 1). Rows:
#   direct             nginx upstream, no proxy (the ceiling)
#   nginx              plain reverse proxy, no auth
#   haproxy jwt        HAProxy: HS256 signature, alg and exp checked, X-User-Id from the claim
#   haproxy same work  the same plus what authgate also does per request: X-Forwarded-For/
#                      -Proto/-Host, a generated X-Request-Id sent up and echoed down,
#                      one JSON access-log line per request on stdout
#   authgate           conf/gateway.yaml (access log on, 1 proxy thread)
# ROUNDS rounds, the proxies interleaved within each, so a slow minute of the
# VM hits every row; prints every run, then per row the median req/s and CPU
# microseconds per request (utime+stime of the proxy / requests served), and
# authgate's ratios of medians.
# The referee is ../shared/bench/peers.sh (one round); this script is the
# project's own and needs nothing outside the repository.
#
# Usage: bench/peers.sh [ROUNDS]        (default 5; builds the release binary first)
#   closed loop: wrk, CONN=64 connections, DUR=10 seconds per run
#   RATE=15000: fixed offered load with h2load instead, the same req/s for every
#               proxy, so a slower proxy is not also charged for waking idle peers
#   GATEWAY_BIN=... to measure another binary (no build); AUTHGATE_* are passed on.
#   SECOND_BIN=path [SECOND_LABEL=pgo]: one more authgate row in the same rounds,
#               e.g. the profile-guided build of bench/pgo.sh (target/pgo/release/authgate).
# Needs: apt-get install nginx haproxy wrk redis-server curl python3 (+ nghttp2-client for RATE)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx haproxy wrk redis-server curl python3 taskset
[[ -n ${RATE:-} ]] && need h2load
ROUNDS=${1:-5}; DUR=${DUR:-10}; CONN=${CONN:-64}
NGX=19206; HAP=19207; HAP2=19208; GW2=19209; OPS2=19210
SECOND_LABEL=${SECOND_LABEL:-pgo}
if [[ $GATEWAY_BIN == target/release/authgate ]]; then
  cargo build --release --quiet --bin authgate
fi

cat > "$T/ngx.conf" <<C
worker_processes 1; master_process off; daemon off; pid $T/ngx.pid; error_log $T/ngx.err;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$NGX;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://backend; } }
}
C

# haproxy_cfg PORT SAME_WORK : an HAProxy 2.5+ config checking tokens as authgate does.
haproxy_cfg() {
  local port=$1 same=$2 deny="http-request return status 401 content-type application/json string"
  echo "global"
  echo "  nbthread 1"
  [[ $same == 1 ]] && echo "  log stdout format raw local0"
  cat <<C
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 30s
  http-reuse always
C
  [[ $same == 1 ]] && cat <<C
  log global
  option forwardfor
  unique-id-format %{+X}o%ci%cp%fp%Ts%rt%pid
  log-format '{"time":"%tr","request_id":"%ID","client":"%ci","method":"%HM","path":"%HP","status":%ST,"duration_ms":%Ta,"upstream":"%si:%sp"}'
C
  cat <<C
frontend in
  bind 127.0.0.1:$port
  http-request set-var(txn.token) http_auth_bearer
  http-request set-var(txn.alg) var(txn.token),jwt_header_query('\$.alg')
  $deny '{"error":"invalid_token"}' unless { var(txn.alg) -m str HS256 } { var(txn.token),jwt_verify(txn.alg,"$SECRET") -m int 1 }
  http-request set-var(txn.exp) var(txn.token),jwt_payload_query('\$.exp','int')
  $deny '{"error":"token_expired"}' unless { date,neg,add(txn.exp) -m int gt 0 }
  http-request del-header X-User-Id
  http-request set-header X-User-Id %[var(txn.token),jwt_payload_query('\$.user_id','int')]
C
  [[ $same == 1 ]] && cat <<C
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  unique-id-header X-Request-Id
  http-after-response set-header X-Request-Id %[unique-id]
C
  cat <<C
  default_backend up
backend up
  server s1 127.0.0.1:$UP
C
}
haproxy_cfg $HAP 0 > "$T/hap.cfg"
haproxy_cfg $HAP2 1 > "$T/hap2.cfg"

start_upstream; start_redis
taskset -c 0 nginx -c "$T/ngx.conf" -p "$T" & PIDS+=($!)
taskset -c 0 haproxy -f "$T/hap.cfg" -db >"$T/hap.log" 2>&1 & PIDS+=($!)
taskset -c 0 haproxy -f "$T/hap2.cfg" -db >"$T/hap2.log" 2>&1 & PIDS+=($!)
[[ -z ${SECOND_BIN:-} ]] || start_gateway 0 "$SECOND_BIN" $GW2 $OPS2 gw2
start_gateway 0
sleep 1
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)

# Every proxy must answer a good token 200 and a bad one 401 before it is measured.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for p in $HAP $HAP2 $GW ${SECOND_BIN:+$GW2}; do
  ok=$(code -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$p/api/x")
  bad=$(code -H "Authorization: Bearer ${TOKEN%?}A" "http://127.0.0.1:$p/api/x")
  [[ $ok == 200 && $bad == 401 ]] || { echo "port $p: good token $ok, bad token $bad (want 200, 401)" >&2; exit 1; }
done
[[ $(code "http://127.0.0.1:$NGX/api/x") == 200 ]] || { echo "nginx proxy does not answer" >&2; exit 1; }
curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HAP2/api/x" | grep -qi '^x-request-id:' \
  || { echo "same-work HAProxy does not echo X-Request-Id" >&2; exit 1; }

# measure LABEL PORT [auth] : one run; prints "LABEL req/s latency us/req".
measure() {
  local label=$1 port=$2 pid out c0 c1 rps lat reqs us hdr=()
  [[ -n ${3:-} ]] && hdr=(-H "Authorization: Bearer $TOKEN")
  pid=$(pid_of "$port"); c0=$(cpu_ticks "$pid")
  if [[ -n ${RATE:-} ]]; then
    # h2load paces each client at --rps; enough clients that each stays slow.
    local clients=$(( (RATE + 149) / 150 )); (( clients < CONN )) && clients=$CONN
    out=$(taskset -c 1 h2load --h1 -c"$clients" --rps=$(( (RATE + clients - 1) / clients )) -D "$DUR" "${hdr[@]}" "http://127.0.0.1:$port/api/x")
    c1=$(cpu_ticks "$pid")
    rps=$(sed -n 's/.*finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    lat="mean:$(awk '/time for request:/ {print $6}' <<<"$out")"
    reqs=$(sed -n 's/^requests: [0-9]* total, [0-9]* started, \([0-9]*\) done.*/\1/p' <<<"$out")
    grep -q ' 0 4xx, 0 5xx' <<<"$out" || echo "warning: $label answered errors: $(grep '^status codes' <<<"$out")" >&2
  else
    out=$(taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/api/x")
    c1=$(cpu_ticks "$pid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    lat="p99:$(awk '$1=="99%" {print $2}' <<<"$out")"
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    grep -q 'Non-2xx' <<<"$out" && echo "warning: $label answered errors: $(grep 'Non-2xx' <<<"$out")" >&2
  fi
  us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
  printf 'round %s  %-18s %10s req/s  %-14s %7s us CPU/req\n' "$r" "$label" "$rps" "$lat" "$us"
  printf '%s\t%s\t%s\n' "$label" "$rps" "$us" >> "$runs"
}

mode="closed loop, wrk -c$CONN"; [[ -n ${RATE:-} ]] && mode="fixed rate $RATE req/s, h2load"
echo "bench/peers.sh: $ROUNDS rounds of ${DUR}s, $mode; $(haproxy -v | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3)"
runs=$T/runs
for r in $(seq "$ROUNDS"); do
  measure direct $UP
  measure nginx $NGX
  measure "haproxy jwt" $HAP auth
  measure "haproxy same work" $HAP2 auth
  measure authgate $GW auth
  [[ -z ${SECOND_BIN:-} ]] || measure "authgate $SECOND_LABEL" $GW2 auth
done

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A MED
rows=(direct nginx "haproxy jwt" "haproxy same work" authgate)
[[ -z ${SECOND_BIN:-} ]] || rows+=("authgate $SECOND_LABEL")
for row in "${rows[@]}"; do
  rps=$(awk -F'\t' -v row="$row" '$1 == row {print $2}' "$runs" | median)
  us=$(awk -F'\t' -v row="$row" '$1 == row {print $3}' "$runs" | median)
  MED[$row]=$us
  printf 'median %-18s %10s req/s  %7s us CPU/req\n' "$row" "$rps" "$us"
done
for row in "${rows[@]:4}"; do
  awk -v who="$row" -v g="${MED[$row]}" -v h="${MED[haproxy jwt]}" -v s="${MED[haproxy same work]}" -v n="${MED[nginx]}" \
    'BEGIN {printf "ratio of medians, CPU/req: %s/haproxy same work %.2f   /haproxy jwt %.2f   /nginx %.2f\n", who, g / s, g / h, g / n}'
done
