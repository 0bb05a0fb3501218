#!/usr/bin/env bash
# Login storm: p99 of proxied requests with and without clients hammering /login
# at the default argon2id parameters, and /login throughput against
# hash_threads / (time of one hash).
# The gateway gets both cores (as in production). The proxied load is paced
# (16 connections, one request every PACE_MS each, about 16000/PACE_MS req/s)
# so that there is CPU left for hashing: with a closed-loop load that already
# saturates both cores, any hash necessarily takes CPU from proxying.
# With the default passwords.max_queue (8) most of the 32 storm connections get
# an immediate 503 "busy" and retry at once, so the storm is mostly cheap
# refusals; AUTHGATE_HASH_MAX_QUEUE=32 lets every one wait for a hash instead.
# Usage: bench/login-storm.sh   (after cargo build --release)   DUR=10 PACE_MS=2
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server redis-cli curl python3 taskset
DUR=${DUR:-10}; PACE_MS=${PACE_MS:-2}
HASH_THREADS=${AUTHGATE_HASH_THREADS:-1}
export AUTHGATE_HASH_THREADS=$HASH_THREADS AUTHGATE_THREADS=${AUTHGATE_THREADS:-1}
# The storm is one client logging in to one account as fast as it can: with the
# login throttle on it would measure 429s, not hashing, so the throttle is off.
no_throttle_conf "$T/gateway.yaml"
start_upstream; start_redis; GATEWAY_CONF=$T/gateway.yaml start_gateway 0,1
EMAIL="storm-$RANDOM@example.com"
register_login "$EMAIL" >/dev/null
# The proxied token belongs to no session: every storm login starts one, and past
# tokens.max_sessions_per_user the oldest are revoked, a login's token with them.
ACCESS=$(python3 bench/mkjwt.py "$SECRET" 1 3600)

# Time of one hash at the default parameters, median of 20, on one core.
cargo build --release --quiet -p authgate-bench --bin hash_time
one=$(taskset -c 0 target/release/hash_time)
echo "one argon2id hash at the default parameters (median of 20): ${one} ms   hash_threads=$HASH_THREADS"

echo "function delay() return $PACE_MS end" > "$T/pace.lua"
wrk_line "proxied, no storm (paced)" "$GW_PID" -t1 -c16 -d"${DUR}s" -s "$T/pace.lua" -H "Authorization: Bearer $ACCESS" "http://127.0.0.1:$GW/api/x"

cat > "$T/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$EMAIL","password":"correct horse battery staple"}'
LUA
taskset -c 1 wrk -t1 -c32 -d"$((DUR + 4))s" --latency -s "$T/login.lua" "http://127.0.0.1:$GW/login" > "$T/storm.txt" &
STORM=$!
sleep 2
wrk_line "proxied, during /login storm" "$GW_PID" -t1 -c16 -d"${DUR}s" -s "$T/pace.lua" -H "Authorization: Bearer $ACCESS" "http://127.0.0.1:$GW/api/x"
wait $STORM
lps=$(awk '/Requests\/sec/ {print $2}' "$T/storm.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$T/storm.txt")
awk -v l="$lps" -v h="$HASH_THREADS" -v o="$one" 'BEGIN{e=h*1000/o; printf "/login storm (c=32): %.1f logins/s; expected hash_threads/time_of_one_hash = %.1f/s; ratio %.2f\n", l, e, l/e}'
echo "non-2xx logins during the storm: ${non2xx:-0}"
