#!/usr/bin/env bash
# Memory: gateway RSS with N idle keep-alive client connections (default 10,000),
# each having made one proxied request first (FIRST_REQUEST=0: connected, never sent one).
# Usage: bench/idle-connections.sh   (after cargo build --release)   N=10000 FIRST_REQUEST=1
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx redis-server curl python3 taskset
N=${N:-10000}
FIRST_REQUEST=${FIRST_REQUEST:-1}
want=$((N + 1024)); hard=$(ulimit -Hn); [[ $hard != unlimited && $hard -lt $want ]] && want=$hard; ulimit -n "$want"
start_upstream; start_redis; start_gateway 0
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
echo "RSS at start: $(rss_kb "$GW_PID") kB"
python3 - "$GW" "$N" "$TOKEN" "$GW_PID" "$FIRST_REQUEST" <<'PY'
import asyncio, resource, sys
gw, n, token, pid, first = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n * 2 + 1024)), hard))
req = f"GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
async def one(sem, conns):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", gw)
        if not first:
            conns.append(w)
            return
        w.write(req); await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        await r.readexactly(length)
        conns.append(w)
async def main():
    conns, sem = [], asyncio.Semaphore(200)
    await asyncio.gather(*(one(sem, conns) for _ in range(n)))
    await asyncio.sleep(3)
    kind = "idle keep-alive" if first else "connected, silent"
    print(f"RSS with {len(conns)} {kind} connections: {rss()} kB")
    for w in conns: w.close()
    await asyncio.sleep(2)
    print(f"RSS after closing them: {rss()} kB")
asyncio.run(main())
PY
