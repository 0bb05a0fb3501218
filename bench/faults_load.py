#!/usr/bin/env python3
"""A steady mixed load with a per-second timeline and fault windows, for bench/faults.sh.

Workers, each on its own keep-alive connection (reconnecting after an error or
`Connection: close`):
  auth   register a new user, log in, then 4 x (refresh, GET /me)
  proxy  GET /api/items and POST /api/orders with a ~1 KiB JSON body, as a
         logged-in user (routed to a cluster of two peers)
  stall  GET /stall/x, a cluster of one peer that the fault schedule makes
         accept and never answer

Every request has a client deadline (DEADLINE, longer than any timeout the
gateway is configured with): a request without an answer by then is a hang.
The fault schedule (bench/faults.sh) appends "<unix time> start|end <name>"
lines to EVENTS; at the end the timeline marks them and the checks run:
  - no 500, no hang, no answer slower than DEADLINE;
  - 502/503/504 and connection errors only inside a fault window (+ SLACK s);
  - recovery: seconds from each window's end to the first clean second;
  - every registration that got 201 still logs in, and every worker's last
    refresh token from a 200 still refreshes (acknowledged writes survive).
Standard library only.

usage: faults_load.py HOST:PORT SECONDS EVENTS [AUTH_WORKERS] [PROXY_WORKERS]
"""
import asyncio
import collections
import json
import os
import sys
import time
import uuid

PASSWORD = "correct horse battery staple"
DEADLINE = 8.0  # s; the gateway's longest configured wait is 2 s (upstream read)
SLACK = 3  # s after a window in which its errors still count as its own
BODY = {"items": [{"sku": f"sku-{i}", "qty": i, "note": "x" * 40} for i in range(14)]}


class Conn:
    """One HTTP/1.1 keep-alive connection; reconnects after an error."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def call(self, method, path, body=None, token=None, request_id=None):
        """(status, JSON answer or {}, error or None); status 0 for no answer."""
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(data)}\r\n"
        if request_id:
            head += f"X-Request-Id: {request_id}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        reused = self.w is not None
        try:
            return await asyncio.wait_for(self._call(head.encode() + b"\r\n" + data), DEADLINE)
        except asyncio.TimeoutError:
            self.close()
            return 0, {}, "hang"
        except ConnectionRefusedError:
            self.close()
            return 0, {}, "refused"
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
            self.close()
            kind = "closed-reused" if reused else type(e).__name__
            return 0, {}, kind

    async def _call(self, raw):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        self.w.write(raw)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionResetError("closed before an answer")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            if k.lower() == "connection" and "close" in v.lower():
                close = True
        body = await self.r.readexactly(length) if length else b""
        if close:
            self.close()
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        return status, answer if isinstance(answer, dict) else {}, None

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


class Stats:
    def __init__(self):
        self.t0 = time.time()
        self.by_second = collections.defaultdict(lambda: (collections.Counter(), []))
        self.bad = []  # (time, what) for every 5xx or error
        self.lost_refresh = []  # (time, error) for a 401 to an acknowledged refresh token
        self.sent = 0
        self.answered = set()  # request ids that got an answer

    def record(self, kind, status, answer, error, took):
        now = time.time()
        sec = int(now - self.t0)
        counts, lat = self.by_second[sec]
        if error:
            key = f"ERR {error}"
        elif status >= 500:
            key = f"{status} {answer.get('error', '')}".strip()
        else:
            key = f"{status // 100}xx"
        counts[key] += 1
        counts["_n"] += 1
        lat.append(took)
        if error or status >= 500:
            self.bad.append((now - self.t0, key, kind))


async def timed(stats, kind, conn, method, path, body=None, token=None):
    stats.sent += 1
    rid = f"flt-{stats.sent}"
    t = time.monotonic()
    status, answer, error = await conn.call(method, path, body, token, rid)
    stats.record(kind, status, answer, error, time.monotonic() - t)
    if status:
        stats.answered.add(rid)
    return status, answer


async def auth_worker(host, port, until, stats, acked, last, wid):
    c = Conn(host, port)
    while time.monotonic() < until:
        email = f"flt-{uuid.uuid4().hex[:12]}@example.com"
        creds = {"email": email, "password": PASSWORD}
        status, _ = await timed(stats, "auth", c, "POST", "/register", creds)
        if status != 201:
            await asyncio.sleep(0.05)
            continue
        acked.append(email)
        status, answer = await timed(stats, "auth", c, "POST", "/login", creds)
        if status != 200:
            await asyncio.sleep(0.05)
            continue
        refresh, access = answer["refresh_token"], answer["access_token"]
        last[wid] = refresh
        for _ in range(4):
            status, answer = await timed(stats, "auth", c, "POST", "/refresh",
                                         {"refresh_token": refresh})
            if status == 200:
                refresh, access = answer["refresh_token"], answer["access_token"]
                last[wid] = refresh
            elif status == 401:
                # A token from an acknowledged login or refresh no longer works.
                stats.lost_refresh.append((round(time.time() - stats.t0, 1), answer.get("error")))
                last.pop(wid, None)
                break
            else:
                # No answer or a 503: the token may or may not be spent.
                last.pop(wid, None)
                await asyncio.sleep(0.05)
                break
            await timed(stats, "auth", c, "GET", "/me", token=access)
    c.close()


async def proxy_worker(host, port, until, stats, token, wid):
    c = Conn(host, port)
    i = 0
    while time.monotonic() < until:
        i += 1
        if i % 2:
            status, _ = await timed(stats, "proxy", c, "GET", f"/api/items?w={wid}&i={i}",
                                    token=token)
        else:
            status, _ = await timed(stats, "proxy", c, "POST", "/api/orders", BODY, token)
        if status == 0 or status >= 500:
            await asyncio.sleep(0.02)
    c.close()


async def stall_worker(host, port, until, stats, token):
    c = Conn(host, port)
    while time.monotonic() < until:
        await timed(stats, "stall", c, "GET", "/stall/x", token=token)
        await asyncio.sleep(0.05)
    c.close()


def read_events(path, t0):
    """[(name, start, end)] in seconds since t0."""
    opened, windows = {}, []
    try:
        lines = open(path).read().split("\n")
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        at, what, name = float(parts[0]) - t0, parts[1], parts[2]
        if what == "start":
            opened[name] = at
        elif what == "end" and name in opened:
            windows.append((name, opened.pop(name), at))
    for name, start in opened.items():
        windows.append((name, start, float("inf")))
    return sorted(windows, key=lambda w: w[1])


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    port = int(port)
    seconds = float(sys.argv[2])
    events = sys.argv[3]
    n_auth = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    n_proxy = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    # One user for the proxied traffic (access tokens live an hour in this run).
    c = Conn(host, port)
    email = f"flt-proxy-{uuid.uuid4().hex[:8]}@example.com"
    await c.call("POST", "/register", {"email": email, "password": PASSWORD})
    _, answer, _ = await c.call("POST", "/login", {"email": email, "password": PASSWORD})
    token = answer["access_token"]
    c.close()
    stats, acked, last = Stats(), [], {}
    print(f"load start {stats.t0:.3f}", flush=True)
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(auth_worker(host, port, until, stats, acked, last, i) for i in range(n_auth)),
        *(proxy_worker(host, port, until, stats, token, i) for i in range(n_proxy)),
        stall_worker(host, port, until, stats, token),
    )
    windows = read_events(events, stats.t0)

    def window_of(t):
        """The latest-started window that t (an answer's time) falls in, with SLACK after it."""
        found = None
        for name, start, end in windows:
            if start <= t <= end + SLACK:
                found = name
        return found

    def marks(sec):
        out = []
        for name, start, end in windows:
            if int(start) <= sec <= (end if end != float("inf") else 1e9):
                out.append(name)
        return ",".join(out)

    print()
    print("fault windows (s since load start):")
    for name, start, end in windows:
        print(f"  {name:<14} {start:6.1f} .. {end:6.1f}")
    print()
    print(f"{'sec':>4} {'fault':<14} {'answers':>7} {'p99 ms':>7} {'max ms':>7}  by status / error")
    worst = 0.0
    for sec in sorted(stats.by_second):
        counts, lat = stats.by_second[sec]
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        worst = max(worst, lat[-1])
        shown = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()) if k != "_n")
        print(f"{sec:4d} {marks(sec):<14} {counts['_n']:7d} {p99:7.0f} {lat[-1] * 1000:7.0f}  {shown}")

    # Checks.
    failures = []
    total = sum(c["_n"] for c, _ in stats.by_second.values())
    n500 = sum(v for c, _ in stats.by_second.values() for k, v in c.items() if k.startswith("500"))
    hangs = sum(v for c, _ in stats.by_second.values() for k, v in c.items() if k == "ERR hang")
    if n500:
        failures.append(f"{n500} answers 500")
    if hangs:
        failures.append(f"{hangs} requests without an answer within {DEADLINE:.0f} s")
    outside = [(round(t, 1), k, kind) for t, k, kind in stats.bad if window_of(t) is None]
    if outside:
        failures.append(f"{len(outside)} errors outside fault windows, first: {outside[:5]}")
    print()
    print(f"answers: {total}; slowest {worst * 1000:.0f} ms; 5xx/errors by window:")
    per_window = collections.defaultdict(collections.Counter)
    for t, k, kind in stats.bad:
        per_window[window_of(t) or "(none)"][f"{kind} {k}"] += 1
    for name, start, end in windows:
        bad = per_window.get(name, {})
        # Recovery: first whole second after the window's end without a 5xx or error.
        rec = None
        for sec in range(int(end), int(end) + 30):
            counts, _ = stats.by_second.get(sec, (collections.Counter(), []))
            if counts["_n"] and not any(k.startswith(("5", "ERR")) for k in counts):
                rec = sec - end
                break
        rec_s = f"{max(rec, 0):.1f} s" if rec is not None else "not within 30 s"
        if rec is None or rec > 5:
            failures.append(f"{name}: recovery {rec_s}")
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "none"
        print(f"  {name:<14} recovered {rec_s:<8} {shown}")
    if per_window.get("(none)"):
        print(f"  outside any window: {dict(per_window['(none)'])}")

    # Everything acknowledged must still be there.
    c = Conn(host, port)
    lost_users = []
    for email in acked:
        status, _, _ = await c.call("POST", "/login", {"email": email, "password": PASSWORD})
        if status != 200:
            lost_users.append((email, status))
    lost_tokens = []
    for wid, tok in last.items():
        status, _, _ = await c.call("POST", "/refresh", {"refresh_token": tok})
        if status != 200:
            lost_tokens.append((wid, status))
    c.close()
    print()
    print(f"acknowledged registrations: {len(acked)}, lost: {len(lost_users)} {lost_users[:5]}")
    print(f"last acknowledged refresh tokens: {len(last)}, no longer working: "
          f"{len(lost_tokens)} {lost_tokens[:5]}")
    print(f"acknowledged refresh tokens refused during the run: {len(stats.lost_refresh)} "
          f"{stats.lost_refresh[:5]}")
    fours = collections.Counter()
    for counts, _ in stats.by_second.values():
        fours["4xx"] += counts.get("4xx", 0)
    print(f"4xx answers during the run: {fours['4xx']}")
    if lost_users or lost_tokens or stats.lost_refresh:
        failures.append(f"lost acknowledged writes: {len(lost_users)} registrations, "
                        f"{len(lost_tokens) + len(stats.lost_refresh)} refresh tokens")
    # Every answer is in the access log (ACCESS_LOG: the gateways' stdout, old and new).
    log_path = os.environ.get("ACCESS_LOG")
    if log_path:
        await asyncio.sleep(0.5)
        logged = set()
        with open(log_path, errors="replace") as f:
            for line in f:
                if line.startswith('{"time"') and '"request_id":"flt-' in line:
                    try:
                        logged.add(json.loads(line)["request_id"])
                    except ValueError:
                        pass
        missing = stats.answered - logged
        print(f"answers: {len(stats.answered)}; access-log lines for them: "
              f"{len(stats.answered & logged)}; missing: {len(missing)} {sorted(missing)[:5]}")
        if missing:
            failures.append(f"{len(missing)} answered requests missing from the access log")
    print()
    if failures:
        print("FAIL: " + "; ".join(failures))
    else:
        print("PASS")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    asyncio.run(main())
