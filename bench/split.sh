#!/usr/bin/env bash
# Where the proxy CPU goes: user vs kernel microseconds per request, authgate
# beside HAProxy (jwt_verify HS256) and beside the floor that only forwards:
# pingora-proxy with nothing in it (bench/tools/src/bin/bare_proxy.rs).
# (The own-HTTP/1-loop experiment that was measured here too was removed once
# its figures were in bench/RESULTS.md; it is examples/h1_loop.rs at 580d593.)
# Same pinning as ../shared/bench/peers.sh; ROUNDS rounds of all three.
# Usage: bench/split.sh   (builds both; DUR=10 CONN=64 ROUNDS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx haproxy wrk redis-server curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}; ROUNDS=${ROUNDS:-1}; HAP=19202; BARE=19206
cargo build --release --bin authgate
cargo build --release -p authgate-bench --bin bare_proxy
start_upstream; start_redis; start_gateway 0
cat > "$T/hap.cfg" <<C
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAP
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request return status 401 unless { var(txn.alg) -m str HS256 }
  http-request return status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$SECRET") -m int 1 }
  http-request del-header X-User-Id
  http-request set-header X-User-Id %[var(txn.bearer),jwt_payload_query('\$.user_id')]
  default_backend be
backend be
  server s1 127.0.0.1:$UP
C
taskset -c 0 haproxy -f "$T/hap.cfg" -db >"$T/hap.log" 2>&1 & PIDS+=($!)
taskset -c 0 target/release/bare_proxy 127.0.0.1:$BARE 127.0.0.1:$UP >"$T/bare.log" 2>&1 & PIDS+=($!)
sleep 1
BARE_PID=$(pid_of $BARE)
[[ $(curl -s "http://127.0.0.1:$BARE/api/x") == "hello from upstream" ]] || { echo "port $BARE does not forward"; exit 1; }
HAP_PID=$(pid_of $HAP)
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
split() { # label pid port
  local u0 s0 u1 s1 out n hz
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$2/stat")
  out=$(taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$3/api/x")
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$2/stat")
  n=$(awk '/requests in/ {print $1}' <<<"$out"); hz=$(getconf CLK_TCK)
  awk -v l="$1" -v u="$((u1-u0))" -v s="$((s1-s0))" -v n="$n" -v hz="$hz" -v r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    'BEGIN{printf "%-13s %9s req/s  user %6.2f us/req  kernel %6.2f us/req  total %6.2f\n", l, r, u/hz*1e6/n, s/hz*1e6/n, (u+s)/hz*1e6/n}'
}
for _ in $(seq "$ROUNDS"); do
  split haproxy "$HAP_PID" $HAP
  split bare-pingora "$BARE_PID" $BARE
  split authgate "$GW_PID" $GW
done
