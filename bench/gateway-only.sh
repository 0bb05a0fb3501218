#!/usr/bin/env bash
# Quick loop for tuning: authgate alone on the proxy path, measured the same way
# as ../shared/bench/peers.sh (gateway pinned to CPU 0, upstream and wrk to CPU 1,
# CPU microseconds of the gateway process per request).
# Usage: bench/gateway-only.sh   (after cargo build --release)
#   DUR=10 CONN=64 GATEWAY_BIN=target/release/authgate GW_CPUS=0 (taskset list for the
#   gateway) and any AUTHGATE_* variable
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}
start_upstream; start_redis; start_gateway "${GW_CPUS:-0}"
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x") == 200 ]] || { tail "$T/gw.log"; exit 1; }
line=$(wrk_line authgate "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x")
echo "$line  rss $(rss_kb "$GW_PID") kB"
