#!/usr/bin/env bash
# The framework floor: Pingora's proxy loop with nothing in it (examples/bare_proxy.rs)
# against authgate, one after the other, measured as ../shared/bench/peers.sh does
# (proxy pinned to CPU 0; upstream and wrk on CPU 1; CPU microseconds per request).
# Usage: bench/floor.sh   (builds both; DUR=10 CONN=64 ROUNDS=2, any AUTHGATE_* is passed on)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}; ROUNDS=${ROUNDS:-2}
cargo build --release --bin authgate --example bare_proxy
BARE=19206
start_upstream; start_redis; start_gateway 0
taskset -c 0 target/release/examples/bare_proxy 127.0.0.1:$BARE 127.0.0.1:$UP >"$T/bare.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$BARE/" && break; sleep 0.05; done
BARE_PID=$(ss -ltnpH "sport = :$BARE" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
TOKEN=$(python3 ../shared/bench/mkjwt.py "$SECRET" 1 3600)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x") == 200 ]] || { tail "$T/gw.log"; exit 1; }
for r in $(seq "$ROUNDS"); do
  wrk_line "bare Pingora proxy (round $r)" "$BARE_PID" -t1 -c"$CONN" -d"${DUR}s" "http://127.0.0.1:$BARE/api/x"
  wrk_line "authgate + JWT (round $r)" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x"
done
