#!/usr/bin/env bash
# Start a local Redis, the echo upstream and the gateway, for trying authgate out.
#   gateway   http://127.0.0.1:8080   (AUTHGATE_LISTEN to change)
#   upstream  http://127.0.0.1:9000   (echo: answers with what it received)
#   redis     127.0.0.1:6379          (DEV_REDIS_PORT to change; reused if already running)
# A dev JWT secret is generated in .run/jwt_secret unless AUTHGATE_JWT_SECRET(_FILE) is set.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_rust
need_pkgs cmake:cmake redis-server:redis-server redis-cli:redis-tools

RUN=.run; mkdir -p "$RUN"
REDIS_PORT=${DEV_REDIS_PORT:-6379}
ECHO_ADDR=${DEV_ECHO_ADDR:-127.0.0.1:9000}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [[ -z "${AUTHGATE_JWT_SECRET:-}" && -z "${AUTHGATE_JWT_SECRET_FILE:-}" ]]; then
  if [[ ! -s $RUN/jwt_secret ]]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n' > "$RUN/jwt_secret")
    echo "generated a dev JWT secret in $RUN/jwt_secret"
  fi
  export AUTHGATE_JWT_SECRET_FILE=$RUN/jwt_secret
fi

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the redis already running on port $REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN" --appendonly yes >"$RUN/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "redis on 127.0.0.1:$REDIS_PORT (data in $RUN/)"
fi

cargo build --release --bin authgate --example echo
BIN=${CARGO_TARGET_DIR:-target}/release
"$BIN/examples/echo" "$ECHO_ADDR" &
PIDS+=($!)

export AUTHGATE_REDIS_URL=${AUTHGATE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
export AUTHGATE_UPSTREAM=${AUTHGATE_UPSTREAM:-http://$ECHO_ADDR}
echo "authgate on http://${AUTHGATE_LISTEN:-127.0.0.1:8080} -> $AUTHGATE_UPSTREAM"
"$BIN/authgate" -c conf/gateway.yaml &
PIDS+=($!)
wait "${PIDS[-1]}"
