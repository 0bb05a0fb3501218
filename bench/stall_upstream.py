#!/usr/bin/env python3
"""An HTTP/1.1 upstream that answers 200, except while FLAG_FILE exists: then it
accepts connections, reads requests and never answers (a stalled backend).

usage: stall_upstream.py PORT FLAG_FILE
"""
import asyncio
import os
import sys

PORT, FLAG = int(sys.argv[1]), sys.argv[2]
BODY = b'{"stalled":false}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY), BODY)


async def serve(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if length:
                await r.readexactly(length)
            if os.path.exists(FLAG):
                await r.read()  # hold the connection until the gateway gives up
                break
            w.write(ANSWER)
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    w.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", PORT, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
