#!/usr/bin/env bash
# What a throttled login costs the gateway: exhaust the per-(account, IP)
# throttle with wrong passwords, then send N more logins (the right password
# included) that are all answered 429 before any hashing, and divide the
# gateway's CPU time over them (utime + stime from /proc/<pid>/stat) by N.
# For scale: one argon2id hash at the default parameters is tens of ms of CPU.
# Loopback only; bounded by N. Usage: bench/throttle-cost.sh   (after cargo build --release)   N=20000
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need redis-server redis-cli curl python3 taskset ss
N=${N:-20000}
# No upstream is needed: nothing is proxied.
start_redis; start_gateway 0
EMAIL="throttle-$RANDOM@example.com"
register_login "$EMAIL" >/dev/null

taskset -c 1 python3 - "$GW" "$EMAIL" "$N" "$GW_PID" <<'PY'
import http.client, json, os, sys
port, email, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
def login(password):
    body = json.dumps({"email": email, "password": password})
    conn.request("POST", "/login", body, {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    return r.status
def ticks():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
# Wrong passwords until the throttle answers.
for tries in range(1, 1000):
    if login("wrong password %d" % tries) == 429:
        break
else:
    sys.exit("the throttle never answered 429: is throttle.enabled off?")
print(f"throttled after {tries - 1} failures")
t0 = ticks()
statuses = {}
for i in range(n):
    s = login("correct horse battery staple" if i % 2 else "wrong password")
    statuses[s] = statuses.get(s, 0) + 1
t1 = ticks()
if statuses != {429: n}:
    sys.exit(f"expected {n} x 429, got {statuses}")
hz = os.sysconf("SC_CLK_TCK")
us = (t1 - t0) / hz * 1e6 / n
print(f"{n} throttled logins (429, right and wrong passwords): gateway CPU {us:.1f} us/request")
PY
