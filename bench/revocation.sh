#!/usr/bin/env bash
# A logout on one instance ending the session's open streams on another (#27
# item 6: "within 1 s, p99 over 50 open streams, on the instance that did not
# serve the logout"). Two gateways on one Redis; each round a fresh session
# opens STREAMS server-sent-event streams and STREAMS WebSockets through A,
# then logs out on B; each stream's latency runs from the logout request being
# sent to the client seeing the stream's end (bench/revocation_probe.py).
# Usage: cargo build --release --bin authgate
#        bench/revocation.sh            ROUNDS=20 STREAMS=50
# (GATEWAY_BIN=target/debug/authgate works too: the latency is the revocation
# feed's, not CPU.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need redis-server curl python3 taskset
ROUNDS=${ROUNDS:-20}; STREAMS=${STREAMS:-50}; GW_B=19213; OPS_B=19215
[[ -x $GATEWAY_BIN ]] || { echo "missing $GATEWAY_BIN: cargo build --release --bin authgate" >&2; exit 2; }
taskset -c 1 python3 bench/revocation_probe.py upstream "$UP" & PIDS+=($!)
start_redis
start_gateway 0
start_gateway 0 "$GATEWAY_BIN" "$GW_B" "$OPS_B" gw-b
echo "authgate $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $GATEWAY_BIN, $ROUNDS rounds x $STREAMS streams of each kind, logout on the other instance"
taskset -c 1 python3 bench/revocation_probe.py run "$GW" "$GW_B" "$ROUNDS" "$STREAMS"
echo "streams closed, instance A (authgate_streams_closed_total):"
curl -s "http://127.0.0.1:$OPS/metrics" | grep '^authgate_streams_closed_total' || echo "  (none counted)"
