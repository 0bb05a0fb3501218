#!/usr/bin/env bash
# Where the proxy path's CPU goes: bench/gateway-only.sh's load (verified token,
# proxied GET) with `perf record` on the gateway, then the top functions by
# self time. Needs linux-perf (apt-get install linux-perf); works with the
# software cpu-clock event, so also in VMs without hardware counters.
# Usage: bench/profile.sh   (after cargo build --release)   DUR=10 CONN=64 TOP=40
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset perf
DUR=${DUR:-10}; CONN=${CONN:-64}; TOP=${TOP:-40}
start_upstream; start_redis; start_gateway 0
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
perf record -F 2999 -g -o "$T/perf.data" -p "$GW_PID" -- sleep "$DUR" >/dev/null 2>&1 &
rec=$!
wrk_line authgate "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x"
wait "$rec" || true
perf report -i "$T/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
  | grep -E '^ +[0-9]' | head -"$TOP"
