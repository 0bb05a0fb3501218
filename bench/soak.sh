#!/usr/bin/env bash
# Memory over time: find peak proxied req/s (10 s closed loop), then run
# SOAK_SECONDS (default 300) paced at about 80% of it, sampling the gateway's
# RSS every 10 s. Flat after warm-up means no leak on the request path.
# Usage: bench/soak.sh   (after cargo build --release)   SOAK_SECONDS=300 CONN=64
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset
SOAK=${SOAK_SECONDS:-300}; CONN=${CONN:-64}
start_upstream; start_redis; start_gateway 0
TOKEN=$(python3 ../shared/bench/mkjwt.py "$SECRET" 1 3600)
peak=$(taskset -c 1 wrk -t1 -c"$CONN" -d10s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" | awk '/Requests\/sec/ {print $2}')
# Each connection waits `delay` ms after every response; at 80% load a response
# takes about 0.3 ms here, so interval = CONN / (0.8 * peak) s.
delay=$(awk -v c="$CONN" -v p="$peak" 'BEGIN{d=c/(0.8*p)*1000-0.3; if (d<0) d=0; printf "%.2f", d}')
echo "peak: $peak req/s; pacing each of $CONN connections with ${delay} ms between requests"
echo "function delay() return $delay end" > "$T/pace.lua"
taskset -c 1 wrk -t1 -c"$CONN" -d"${SOAK}s" -s "$T/pace.lua" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" > "$T/soak.txt" &
W=$!
echo "t(s)  RSS(kB)"
for t in $(seq 0 10 "$SOAK"); do
  echo "$t $(rss_kb "$GW_PID")"
  [[ $t -lt $SOAK ]] && sleep 10
done
wait $W
echo "soak: $(awk '/Requests\/sec/ {print $2}' "$T/soak.txt") req/s over ${SOAK}s; $(grep -E 'Non-2xx|Socket errors' "$T/soak.txt" || echo 'no errors')"
