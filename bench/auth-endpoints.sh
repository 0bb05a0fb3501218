#!/usr/bin/env bash
# Auth endpoints under load: req/s and p99 of POST /refresh and GET /me at 64
# connections, and Redis round trips per refresh (from Redis' own command stats:
# a refresh is a GET, then one pipeline of SET + the rotate EVAL; the DEL of the
# token two generations back is sent after the answer, off its latency).
# Usage: bench/auth-endpoints.sh   (after cargo build --release)   DUR=10 CONN=64
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server redis-cli curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}; TOKENS=${TOKENS:-160}
# Throttles off: the token pool registers far more users than one client IP may.
no_throttle_conf "$T/gateway.yaml"; export GATEWAY_CONF=${GATEWAY_CONF:-$T/gateway.yaml}
start_upstream; start_redis; start_gateway 0

# A pool of refresh tokens larger than the connection count: each in-flight
# refresh holds one, each answer returns its successor (a token works once).
# Spread over users: a user keeps at most max_sessions_per_user (50) sessions.
EMAIL="bench-$RANDOM@example.com"
register_login "$EMAIL" > "$T/first.json"
ACCESS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$T/first.json")
refresh_pool "$TOKENS" "$T/tokens.txt"
refresh_lua "$T/refresh.lua"
redis-cli -p $RDS config resetstat >/dev/null
before=$(curl -s "http://127.0.0.1:$OPS/metrics" | awk '/auth_requests_total\{endpoint="refresh",outcome="ok"\}/ {print $2}'); before=${before:-0}
wrk_line "POST /refresh (c=$CONN)" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -s "$T/refresh.lua" "http://127.0.0.1:$GW/refresh" -- "$T/tokens.txt"
after=$(curl -s "http://127.0.0.1:$OPS/metrics" | awk '/auth_requests_total\{endpoint="refresh",outcome="ok"\}/ {print $2}')
# Commands run inside the script count in commandstats too, so round trips are
# counted from the commands that start one: GET (lookup) and EVAL (one per pipeline).
stats=$(redis-cli -p $RDS info commandstats)
calls() { awk -F'[:=,]' -v c="cmdstat_$1" '$1==c {print $3}' <<<"$stats"; }
awk -v g="$(calls get)" -v e="$(calls eval)" -v d="$(calls del)" -v a="$after" -v b="$before" \
  'BEGIN{n=a-b; printf "refreshes ok: %d   round trips per refresh (GET + SET/EVAL pipeline): %.2f   background DELs per refresh: %.2f\n", n, (g+e)/n, d/n}'
rejected=$(curl -s "http://127.0.0.1:$OPS/metrics" | awk '/auth_requests_total\{endpoint="refresh",outcome="invalid_refresh_token"\}/ {print $2}')
echo "refreshes rejected: ${rejected:-0} (must be 0: the token pool never runs dry)"

redis-cli -p $RDS config resetstat >/dev/null
wrk_line "GET /me (c=$CONN)" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $ACCESS" "http://127.0.0.1:$GW/me"
