#!/usr/bin/env bash
# Where the HTTP/2 path's CPU goes: the load of ../shared/bench/peers-h2.sh
# (h2load over TLS with ALPN h2, a verified token, a proxied GET to an nginx
# upstream over HTTP/1.1) with `perf record` on the gateway, then the top
# functions by self time and, with GROUP=1, the time grouped by crate.
# PROTO=h1 profiles the same over TLS with HTTP/1.1, to tell TLS from h2.
# Usage: bench/profile-h2.sh   (after cargo build --release)
#   DUR=10 CONN=16 STREAMS=8 TOP=40 PROTO=h2|h1 GROUP=1 KEEP=/tmp/h2.perf
#   CALLGRAPH="--call-graph dwarf" records call stacks (for perf report -G) at more cost
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx h2load redis-server curl python3 taskset perf openssl
DUR=${DUR:-10}; CONN=${CONN:-16}; STREAMS=${STREAMS:-8}; TOP=${TOP:-40}; PROTO=${PROTO:-h2}
TLS=19206
if [[ $PROTO == h1 ]]; then LOAD=(--h1 -c$((CONN * STREAMS)) -m1); else LOAD=(-c"$CONN" -m"$STREAMS"); fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
chmod 600 "$T/key.pem"
cp "${GATEWAY_CONF:-conf/gateway.yaml}" "$T/gw.yaml"
printf '\ntls:\n  listen: ["127.0.0.1:%s"]\n  cert_file: %s\n  key_file: %s\n' "$TLS" "$T/cert.pem" "$T/key.pem" >> "$T/gw.yaml"
start_upstream; start_redis; GATEWAY_CONF=$T/gw.yaml start_gateway 0
# A token of a real session, as peers-h2.sh uses (session-bound checks included).
EMAIL="bench-$RANDOM$RANDOM@example.com"; BODY="{\"email\":\"$EMAIL\",\"password\":\"correct horse battery staple\"}"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$GW/register"
TOKEN=$(curl -s -X POST -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$GW/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
code=$(curl -sk --http2 -o /dev/null -w '%{http_version}/%{http_code}' -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$TLS/api/x")
echo "sanity (http version/status): $code"
perf record -F 2999 ${CALLGRAPH:--g} -o "$T/perf.data" -p "$GW_PID" -- sleep "$DUR" >/dev/null 2>&1 &
rec=$!
c0=$(cpu_ticks "$GW_PID")
out=$(taskset -c 1 h2load "${LOAD[@]}" -D "$DUR" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$TLS/api/x" 2>&1 || true)
c1=$(cpu_ticks "$GW_PID")
wait "$rec" || true
# KEEP=path keeps the recording for `perf report -i path` (e.g. -G on one symbol).
[[ -n ${KEEP:-} ]] && cp "$T/perf.data" "$KEEP"
done_n=$(awk '/^requests:/ {print $8}' <<<"$out")
awk -v a="$c0" -v b="$c1" -v n="$done_n" -v hz="$(getconf CLK_TCK)" -v p="$PROTO" \
  'BEGIN{printf "authgate %s: %d requests, %.2f us CPU/req\n", p, n, (b-a)/hz*1e6/n}'
perf report -i "$T/perf.data" --no-children -g none --sort symbol --stdio 2>/dev/null \
  | grep -E '^ +[0-9]' | head -"$TOP" || true   # head closes the pipe early
if [[ -n ${GROUP:-} ]]; then
  echo "--- self time by crate (symbol prefix) ---"
  perf report -i "$T/perf.data" --no-children -g none --sort symbol --stdio 2>/dev/null \
    | awk '/^ +[0-9]/ { pct=$1; sub("%","",pct); kern=($2=="[k]"); s=$0; sub(/^ *[0-9.]+% +\[.\] +/,"",s); sub(/ +-.*$/,"",s);
        sub(/^<+/,"",s); n=split(s, parts, "::");
        k=kern? "kernel" : (n>1? parts[1] : "libc, allocator, unnamed"); t[k]+=pct }
        END { for (k in t) printf "%6.2f%%  %s\n", t[k], k }' | sort -rn | head -25
fi
