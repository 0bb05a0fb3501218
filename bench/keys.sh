#!/usr/bin/env bash
# CPU per proxied request by signing algorithm, measured like gateway-only.sh
# (gateway pinned to CPU 0, upstream and wrk to CPU 1, the gateway's CPU time
# divided by requests): HS256 and EdDSA for a client that reuses its token (the
# verified-token cache answers after the first request), and both again with the
# cache off (AUTHGATE_VERIFY_CACHE_ENTRIES=0: every request checks the signature).
# Tokens come from the gateway's own /login, so they carry kid, iss, aud and sid.
# Usage: bench/keys.sh   (after cargo build --release)   DUR=10 CONN=64 ROUNDS=2
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset ss
DUR=${DUR:-10}; CONN=${CONN:-64}; ROUNDS=${ROUNDS:-2}
start_upstream; start_redis
"$GATEWAY_BIN" keygen --alg EdDSA --kid bench-ed --out "$T/keys" >/dev/null
# Both rings on the same file otherwise: every other key at its default (= conf/gateway.yaml).
: > "$T/HS256.yaml"
printf 'tokens:\n  keys:\n    - {kid: bench-ed, alg: EdDSA, private_key_file: %s, active: true}\n' \
  "$T/keys/bench-ed.pem" > "$T/EdDSA.yaml"

stop_gateway() {
  kill -INT "$GW_PID"   # SIGINT: exit at once, no grace period
  while [[ -n $(pid_of $GW) ]]; do sleep 0.1; done
}

# run ALG CACHE_ENTRIES LABEL
run() {
  GATEWAY_CONF=$T/$1.yaml AUTHGATE_VERIFY_CACHE_ENTRIES=$2 start_gateway 0
  local token
  token=$(register_login bench@example.com | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$GW/api/x") == 200 ]] || { tail "$T/gw.log"; exit 1; }
  wrk_line "$3" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $token" "http://127.0.0.1:$GW/api/x"
  stop_gateway
}

for _ in $(seq "$ROUNDS"); do
  run HS256 10000 "HS256, token reused (cached)"
  run EdDSA 10000 "EdDSA, token reused (cached)"
  run HS256 0 "HS256, cache off"
  run EdDSA 0 "EdDSA, cache off"
done
