#!/usr/bin/env bash
# One Redis vs a Redis Cluster (3 masters + 3 replicas, on this machine) behind
# the same gateway (1 thread, CPU 0; Redis and wrk on CPU 1): req/s, p99 and
# gateway CPU per request of POST /refresh and POST /login at 64 connections.
# Logins use cheap argon2 (1 MiB, t=1) so the store's share shows; throttles off.
# Usage: bench/cluster.sh   (after cargo build --release)   DUR=10 CONN=64
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server redis-cli curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}; TOKENS=${TOKENS:-160}
no_throttle_conf "$T/gateway.yaml"
export GATEWAY_CONF="$T/gateway.yaml" AUTHGATE_ARGON2_MEMORY_KIB=1024 AUTHGATE_ARGON2_ITERATIONS=1 AUTHGATE_ARGON2_ALLOW_INSECURE=1
# Room in the hashing queue for every connection: 503 busy answers would measure the queue.
export AUTHGATE_HASH_MAX_QUEUE=${AUTHGATE_HASH_MAX_QUEUE:-128}
start_upstream
refresh_lua "$T/refresh.lua"
cat > "$T/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench-login@example.com","password":"correct horse battery staple"}'
LUA

run() {
  local topo=$1
  start_gateway 0
  refresh_pool "$TOKENS" "$T/tokens-$topo.txt"
  register_login bench-login@example.com >/dev/null
  wrk_line "$topo: POST /refresh (c=$CONN)" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -s "$T/refresh.lua" \
    "http://127.0.0.1:$GW/refresh" -- "$T/tokens-$topo.txt"
  wrk_line "$topo: POST /login (c=$CONN)" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -s "$T/login.lua" \
    "http://127.0.0.1:$GW/login"
  kill "$GW_PID"; sleep 0.5
}

echo "gateway $(git rev-parse --short HEAD), DUR=${DUR}s CONN=$CONN"
start_redis
run single
start_cluster
AUTHGATE_REDIS_CLUSTER_NODES=$CLUSTER_NODES run cluster
