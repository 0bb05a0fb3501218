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
import sys
import time
import uuid

from faults_load import Conn  # one HTTP/1.1 client for both load tools

PASSWORD = "correct horse battery staple"


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
        status, answer, _ = await c.call(method, path, body, token)
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
        status, _, _ = await c.call("POST", "/login", {"email": email, "password": PASSWORD})
        lost_users += status != 200
    lost_tokens = 0
    for token in last.values():
        status, _, _ = await c.call("POST", "/refresh", {"refresh_token": token})
        lost_tokens += status != 200
    print(f"acknowledged registrations: {len(acked)}, lost: {lost_users}")
    print(f"last acknowledged refresh tokens: {len(last)}, no longer working: {lost_tokens}")


if __name__ == "__main__":
    asyncio.run(main())
