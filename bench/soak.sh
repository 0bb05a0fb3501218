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
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
peak=$(taskset -c 1 wrk -t1 -c"$CONN" -d10s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" | awk '/Requests\/sec/ {print $2}')
# Each connection waits `delay` ms after every response. wrk truncates delay() to
# whole milliseconds, so pace() returns floor or ceil at random to average `d`.
# The rate falls as the delay grows, steeply and not linearly, so the delay is
# found by bisection: 7 steps of 4 s each between 0 and CONN/target.
pace() { awk -v d="$1" 'BEGIN{f=int(d); printf "local f, p = %d, %.3f\nfunction delay() if math.random() < p then return f + 1 end return f end\n", f, d-f}' > "$T/pace.lua"; }
target=$(awk -v p="$peak" 'BEGIN{printf "%.0f", 0.8*p}')
lo=0; hi=$(awk -v c="$CONN" -v t="$target" 'BEGIN{printf "%.3f", c/t*1000}')
for _ in 1 2 3 4 5 6 7; do
  delay=$(awk -v a="$lo" -v b="$hi" 'BEGIN{printf "%.3f", (a+b)/2}')
  pace "$delay"
  got=$(taskset -c 1 wrk -t1 -c"$CONN" -d4s -s "$T/pace.lua" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" | awk '/Requests\/sec/ {print $2}')
  if awk -v g="$got" -v t="$target" 'BEGIN{exit !(g > t)}'; then lo=$delay; else hi=$delay; fi
done
delay=$(awk -v a="$lo" -v b="$hi" 'BEGIN{printf "%.3f", (a+b)/2}')
pace "$delay"
echo "peak: $peak req/s; target $target; last bisection step gave $got req/s; pacing each of $CONN connections with ${delay} ms between requests"
taskset -c 1 wrk -t1 -c"$CONN" -d"${SOAK}s" -s "$T/pace.lua" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" > "$T/soak.txt" &
W=$!
echo "t(s)  RSS(kB)"
for t in $(seq 0 10 "$SOAK"); do
  echo "$t $(rss_kb "$GW_PID")"
  [[ $t -lt $SOAK ]] && sleep 10
done
wait $W
rate=$(awk '/Requests\/sec/ {print $2}' "$T/soak.txt")
echo "soak: $rate req/s over ${SOAK}s ($(awk -v r="$rate" -v p="$peak" 'BEGIN{printf "%.0f", r/p*100}')% of peak); $(grep -E 'Non-2xx|Socket errors' "$T/soak.txt" || echo 'no errors')"
