#!/usr/bin/env python3
"""A steady mix of auth traffic with a per-second timeline, for fault runs.

Each of WORKERS keep-alive connections loops: register a new user, log in,
refresh a few times, GET /me. Every second it prints answers by status, p99 and
the slowest answer. At the end it checks what was acknowledged: every user
whose registration got 201 must still log in, and every worker's last refresh
token (from a 200) must still refresh. Standard library only.

usage: load_mix.py HOST:PORT SECONDS [WORKERS]
"""
import asyncio
import collections
import json
import sys
import time
import uuid

PASSWORD = "correct horse battery staple"


class Conn:
    """One HTTP/1.1 keep-alive connection; reconnects after an error."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def call(self, method, path, body=None, token=None, timeout=5.0):
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        try:
            return await asyncio.wait_for(self._call(head.encode() + b"\r\n" + data), timeout)
        except Exception:
            self.close()
            return 0, {}

    async def _call(self, raw):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        self.w.write(raw)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("closed")
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
            return status, json.loads(body) if body else {}
        except ValueError:
            return status, {}

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


class Stats:
    def __init__(self):
        self.start = time.monotonic()
        self.by_second = collections.defaultdict(lambda: (collections.Counter(), []))

    def record(self, status, error, took):
        sec = int(time.monotonic() - self.start)
        counts, lat = self.by_second[sec]
        counts[f"{status}" + (f" {error}" if error and status >= 500 else "")] += 1
        lat.append(took)


async def worker(host, port, until, stats, acked_users, last_tokens, wid):
    c = Conn(host, port)

    async def call(method, path, body=None, token=None):
        t0 = time.monotonic()
        status, answer = await c.call(method, path, body, token)
        stats.record(status, answer.get("error") if isinstance(answer, dict) else None,
                     time.monotonic() - t0)
        return status, answer

    while time.monotonic() < until:
        email = f"mix-{uuid.uuid4().hex[:12]}@example.com"
        creds = {"email": email, "password": PASSWORD}
        status, _ = await call("POST", "/register", creds)
        if status != 201:
            await asyncio.sleep(0.05)
            continue
        acked_users.append(email)
        status, answer = await call("POST", "/login", creds)
        if status != 200:
            await asyncio.sleep(0.05)
            continue
        refresh, access = answer["refresh_token"], answer["access_token"]
        for _ in range(4):
            status, answer = await call("POST", "/refresh", {"refresh_token": refresh})
            if status == 200:
                refresh, access = answer["refresh_token"], answer["access_token"]
                last_tokens[wid] = refresh
            else:
                # Unknown outcome (503): the old token may or may not be spent.
                last_tokens.pop(wid, None)
                break
            await call("GET", "/me", token=access)
    c.close()


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    seconds = float(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    stats, acked, last = Stats(), [], {}
    until = time.monotonic() + seconds
    await asyncio.gather(*(worker(host, int(port), until, stats, acked, last, i)
                           for i in range(workers)))
    print("second  answers by status                               p99 ms   max ms")
    for sec in sorted(stats.by_second):
        counts, lat = stats.by_second[sec]
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        shown = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))
        print(f"{sec:6d}  {shown:<50} {p99:7.0f}  {lat[-1] * 1000:7.0f}")
    # Everything acknowledged must still be there.
    c = Conn(host, int(port))
    lost_users = 0
    for email in acked:
        status, _ = await c.call("POST", "/login", {"email": email, "password": PASSWORD})
        lost_users += status != 200
    lost_tokens = 0
    for token in last.values():
        status, _ = await c.call("POST", "/refresh", {"refresh_token": token})
        lost_tokens += status != 200
    print(f"acknowledged registrations: {len(acked)}, lost: {lost_users}")
    print(f"last acknowledged refresh tokens: {len(last)}, no longer working: {lost_tokens}")


asyncio.run(main())
