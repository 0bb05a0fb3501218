#!/usr/bin/env bash
# A logout on one instance ending the session's open streams on another (#27
# item 6: "within 1 s, p99 over 50 open streams, on the instance that did not
# serve the logout"). Two gateways on one Redis; each round a fresh session
# opens STREAMS server-sent-event streams, STREAMS WebSockets and (with
# grpcio) STREAMS gRPC server streams through A, then logs out on B; each
# stream's latency runs from the logout request being sent to the client
# seeing the stream's end (bench/revocation_probe.py). The gRPC client speaks
# h2c to A (`h2c: true`) and A speaks h2c to a grpcio server; an h2 cluster
# turns the fast path off, so every stream goes through pingora-proxy.
# grpcio: python3's, or target/test-venv's (scripts/test.sh makes it);
# without it the gRPC kind is left out, and the run says so.
# Usage: cargo build --release --bin authgate
#        bench/revocation.sh            ROUNDS=20 STREAMS=50
# (GATEWAY_BIN=target/debug/authgate works too: the latency is the revocation
# feed's, not CPU.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need redis-server curl python3 taskset
ROUNDS=${ROUNDS:-20}; STREAMS=${STREAMS:-50}; GW_B=19213; OPS_B=19215; GRPC_UP=19216
[[ -x $GATEWAY_BIN ]] || { echo "missing $GATEWAY_BIN: cargo build --release --bin authgate" >&2; exit 2; }
PY=python3; [[ -x target/test-venv/bin/python3 ]] && PY=target/test-venv/bin/python3
taskset -c 1 python3 bench/revocation_probe.py upstream "$UP" & PIDS+=($!)
GRPC=()
if "$PY" -c 'import grpc' 2>/dev/null; then
  GRPC=(grpc)
  taskset -c 1 "$PY" bench/revocation_probe.py grpc-upstream "$GRPC_UP" & PIDS+=($!)
  cat > "$T/gateway.yaml" <<C
h2c: true
upstreams:
  default: { peers: ['127.0.0.1:$UP'] }
  grpc: { peers: ['127.0.0.1:$GRPC_UP'], protocol: h2 }
routes:
  - { prefix: /test.Echo/, upstream: grpc }
  - { prefix: /, upstream: default }
C
  export GATEWAY_CONF=$T/gateway.yaml
else
  echo "no grpcio for $PY: the gRPC kind is left out (pip install grpcio, or run scripts/test.sh once)"
fi
start_redis
start_gateway 0
start_gateway 0 "$GATEWAY_BIN" "$GW_B" "$OPS_B" gw-b
echo "authgate $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $GATEWAY_BIN, $ROUNDS rounds x $STREAMS streams of each kind, logout on the other instance"
taskset -c 1 "$PY" bench/revocation_probe.py run "$GW" "$GW_B" "$ROUNDS" "$STREAMS" "${GRPC[@]}"
echo "streams closed, instance A (authgate_streams_closed_total):"
curl -s "http://127.0.0.1:$OPS/metrics" | grep '^authgate_streams_closed_total' || echo "  (none counted)"
