#!/usr/bin/env bash
# What browser mode costs on the proxy path: the same route requested with a
# Bearer token and with the session cookie (a fresh access part: verified
# without Redis, roles from the per-instance cache, the cookie stripped before
# forwarding), measured as bench/gateway-only.sh measures (gateway on CPU 0,
# upstream and wrk on CPU 1, CPU microseconds of the gateway per request).
# Usage: bench/browser.sh   (after cargo build --release)
#   DUR=10 CONN=64 GATEWAY_BIN=target/release/authgate
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx wrk redis-server curl python3 taskset
DUR=${DUR:-10}; CONN=${CONN:-64}
PUBLIC="http://127.0.0.1:$GW"
# The shipped config plus browser mode (public_url is this loopback address).
cp conf/gateway.yaml "$T/browser.yaml"
printf 'public_url: "%s"\nbrowser:\n  enabled: true\n' "$PUBLIC" >> "$T/browser.yaml"
GATEWAY_CONF=$T/browser.yaml
start_upstream; start_redis; start_gateway "${GW_CPUS:-0}"
email="bench-browser-$$@example.com"
register_login "$email" > "$T/login.json"
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$T/login.json")
form="email=${email/@/%40}&password=correct+horse+battery+staple&return_to=%2F"
COOKIE=$(curl -s -o /dev/null -D - -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'Sec-Fetch-Mode: navigate' -H "Origin: $PUBLIC" --data "$form" "$PUBLIC/login" \
  | awk -F': ' 'tolower($1)=="set-cookie" { split($2, a, ";"); print a[1] }' | tr -d '\r')
[[ $COOKIE == __Host-authgate=* ]] || { echo "no session cookie from the form login" >&2; tail "$T/gw.log"; exit 1; }
for h in "Authorization: Bearer $TOKEN" "Cookie: $COOKIE"; do
  [[ $(curl -s -o /dev/null -w '%{http_code}' -H "$h" "$PUBLIC/api/x") == 200 ]] || { echo "not 200 with ${h%%:*}" >&2; tail "$T/gw.log"; exit 1; }
done
wrk_line "bearer token" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "$PUBLIC/api/x"
wrk_line "session cookie" "$GW_PID" -t1 -c"$CONN" -d"${DUR}s" -H "Cookie: theme=dark; $COOKIE" "$PUBLIC/api/x"
echo "rss $(rss_kb "$GW_PID") kB"
