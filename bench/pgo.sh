#!/usr/bin/env bash
# A profile-guided (PGO) release build of the gateway, trained on loopback.
#   1. builds an instrumented binary (target/pgo-gen, its own target dir),
#   2. runs it under a training load: proxied GETs with a token (most of it),
#      /login, /refresh and /me, so the auth endpoints are not treated as cold,
#   3. merges the profile with llvm-profdata (rustup's llvm-tools, installed
#      here if missing),
#   4. builds the optimised binary: target/pgo/release/authgate.
# Two full release builds: ~20-25 min on the 2-core VM. Compare it with the
# plain build: OLD_BIN=target/release/authgate GATEWAY_BIN=target/pgo/release/authgate bench/compare.sh plain 5
# Usage: bench/pgo.sh    (TRAIN=20 seconds of proxied load)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset
TRAIN=${TRAIN:-20}
sysroot=$(rustc --print sysroot)
profdata=$(find "$sysroot" -name llvm-profdata -type f 2>/dev/null | head -1)
if [[ -z $profdata ]]; then
  rustup component add llvm-tools || { echo "error: llvm-profdata not found; run: rustup component add llvm-tools" >&2; exit 2; }
  profdata=$(find "$sysroot" -name llvm-profdata -type f | head -1)
fi
DATA=$PWD/target/pgo-data
rm -rf "$DATA"; mkdir -p "$DATA"

echo "== instrumented build (target/pgo-gen)" >&2
CARGO_TARGET_DIR=target/pgo-gen RUSTFLAGS="-Cprofile-generate=$DATA" cargo build --release --quiet --bin authgate
GATEWAY_BIN=target/pgo-gen/release/authgate
conf=$T/gateway.yaml; no_throttle_conf "$conf"
start_upstream; start_redis; GATEWAY_CONF=$conf start_gateway 0
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x") == 200 ]] || { tail "$T/gw.log" >&2; exit 1; }

echo "== training: proxied GETs, then the auth endpoints" >&2
wrk_line "proxied GET" "$GW_PID" -t1 -c64 -d"${TRAIN}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x"
refresh_pool 200 "$T/pool"; refresh_lua "$T/refresh.lua"
wrk_line "POST /refresh" "$GW_PID" -t1 -c16 -d5s -s "$T/refresh.lua" "http://127.0.0.1:$GW/refresh" -- "$T/pool"
access=$(register_login "pgo-$$@example.com" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
wrk_line "GET /me" "$GW_PID" -t1 -c16 -d5s -H "Authorization: Bearer $access" "http://127.0.0.1:$GW/me"

# The profile is written when the process exits normally: stop it with SIGTERM and wait.
kill -TERM "$GW_PID"
for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
ls "$DATA"/*.profraw >/dev/null 2>&1 || { echo "error: no profile written to $DATA" >&2; exit 1; }
"$profdata" merge -o "$DATA/merged.profdata" "$DATA"/*.profraw

echo "== optimised build (target/pgo)" >&2
CARGO_TARGET_DIR=target/pgo RUSTFLAGS="-Cprofile-use=$DATA/merged.profdata" cargo build --release --quiet --bin authgate
echo "PGO binary: target/pgo/release/authgate"
