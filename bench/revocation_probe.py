#!/usr/bin/env python3
"""How long a logout on one instance takes to end the session's open streams on another.

Three modes (bench/revocation.sh runs them); the gRPC parts need grpcio,
the rest is stdlib:

  revocation_probe.py upstream PORT
      An upstream that answers a WebSocket upgrade with 101 and then sends a
      text frame every 200 ms, and any other request with a chunked
      text/event-stream that sends an event every 200 ms (for a minute).

  revocation_probe.py grpc-upstream PORT
      A grpcio server whose /test.Echo/Forever streams a message every 200 ms.

  revocation_probe.py run A_PORT B_PORT ROUNDS STREAMS [grpc]
      Each round: a fresh user logs in on instance A, opens STREAMS
      server-sent-event streams and STREAMS WebSockets (and, with `grpc`,
      STREAMS gRPC server streams over h2c) through A with that session's
      token, waits for the first bytes on each, then logs out on instance B.
      Each stream's latency is from the moment the logout request is sent to
      the moment the client sees its end (the chunked terminator, the 1008
      close frame, or the call's UNAUTHENTICATED status; a bare connection
      close or any other status counts, and is reported as not clean).
      Prints p50/p99/max per kind over all rounds.
"""

import asyncio
import base64
import hashlib
import json
import statistics
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 5.0


async def serve(reader, writer):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            writer.close()
            return
        head += chunk
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    try:
        if headers.get(b"upgrade", b"").lower() == b"websocket":
            accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + GUID).digest())
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            for i in range(300):
                payload = b"tick %d" % i
                writer.write(bytes([0x81, len(payload)]) + payload)
                await writer.drain()
                await asyncio.sleep(0.2)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(300):
                event = b"data: tick %d\n\n" % i
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


async def upstream(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


async def post(port, path, body, token=None):
    """A JSON POST over a fresh connection: (status, parsed body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\n" + auth +
                 b"Content-Length: %d\r\n\r\n" % len(data) + data)
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(rest) if rest.strip() else None


def grpc_upstream(port):
    from concurrent import futures
    import grpc

    def forever(req, ctx):
        for i in range(300):
            yield b"tick %d" % i
            time.sleep(0.2)

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Forever": grpc.unary_stream_rpc_method_handler(forever)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256),
                         options=[("grpc.max_concurrent_streams", 1000)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


class Stream:
    """One open stream through instance A: its kind, and when and how it ended."""

    def __init__(self, kind):
        self.kind, self.ended_at, self.how = kind, None, None
        self.started = asyncio.get_running_loop().create_future()

    async def run(self, port, token):
        if self.kind == "grpc":
            return await self.run_grpc(port, token)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if self.kind == "websocket":
            key = base64.b64encode(b"0123456789abcdef")
            writer.write(b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
                         b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
            end_mark = b"\x88\x11\x03\xf0session revoked"
        else:
            writer.write(b"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
                         b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
            end_mark = b"\r\n0\r\n\r\n"
        seen = b""
        while True:
            chunk = await reader.read(65536)
            now = time.monotonic()
            if not chunk:
                self.ended_at, self.how = now, "closed"
                break
            seen = (seen + chunk)[-64:]
            if not self.started.done() and b"tick" in seen:
                self.started.set_result(None)
            if end_mark in seen:
                self.ended_at, self.how = now, "clean"
                break
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.kind} ended before its first event: {seen!r}"))
        writer.close()

    async def run_grpc(self, port, token):
        import grpc
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_stream("/test.Echo/Forever")(
                b"", metadata=(("authorization", "Bearer " + token),))
            code = None
            try:
                async for _ in call:
                    if not self.started.done():
                        self.started.set_result(None)
            except grpc.aio.AioRpcError as e:
                code = e.code()
            now = time.monotonic()
            if code is None:
                code = await call.code()
            self.ended_at = now
            self.how = "clean" if code == grpc.StatusCode.UNAUTHENTICATED else f"status {code}"
            if not self.started.done():
                self.started.set_exception(RuntimeError(f"grpc ended before its first message: {code}"))


async def one_round(a, b, n, i, kinds):
    creds = {"email": f"revocation-{time.time_ns()}-{i}@example.com", "password": "correct horse battery staple"}
    status, _ = await post(a, "/register", creds)
    assert status in (200, 201), status
    status, tokens = await post(a, "/login", creds)
    assert status == 200, (status, tokens)
    streams = [Stream(kind) for kind in kinds for _ in range(n)]
    tasks = [asyncio.create_task(s.run(a, tokens["access_token"])) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.started for s in streams)), TIMEOUT)
    t0 = time.monotonic()
    status, _ = await post(b, "/logout", {"refresh_token": tokens["refresh_token"]})
    assert status == 200, status
    done, pending = await asyncio.wait(tasks, timeout=TIMEOUT)
    for t in pending:
        t.cancel()
    return [(s.kind, s.how, None if s.ended_at is None else s.ended_at - t0) for s in streams]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def run(a, b, rounds, n, kinds):
    results = []
    for i in range(rounds):
        results += await one_round(a, b, n, i, kinds)
    for kind in kinds:
        mine = [r for r in results if r[0] == kind]
        ended = [r[2] * 1000 for r in mine if r[2] is not None]
        clean = sum(1 for r in mine if r[1] == "clean")
        if not ended:
            print(f"{kind:9}  none of {len(mine)} streams ended within {TIMEOUT:.0f} s")
            continue
        print(f"{kind:9}  {len(mine)} streams ({rounds} rounds x {n}): "
              f"p50 {statistics.median(ended):6.1f} ms  p99 {pct(ended, 0.99):6.1f} ms  "
              f"max {max(ended):6.1f} ms  clean end {clean}/{len(mine)}  "
              f"not ended within {TIMEOUT:.0f} s: {len(mine) - len(ended)}")


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        asyncio.run(upstream(int(sys.argv[2])))
    elif sys.argv[1] == "grpc-upstream":
        grpc_upstream(int(sys.argv[2]))
    else:
        kinds = ("sse", "websocket") + (("grpc",) if sys.argv[6:] == ["grpc"] else ())
        asyncio.run(run(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), kinds))
