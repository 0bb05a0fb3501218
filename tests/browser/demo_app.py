#!/usr/bin/env python3
"""The demo upstream of the browser test (tests/api/chromium.rs): an app with no
auth code of its own, behind the gateway's browser mode. It trusts X-User-Id as
the gateway sets it, and shows what it received.

  GET /app/             HTML: "Hello, user <X-User-Id>", a "Log out" form
                        (POST /logout, answered by the gateway) and the raw
                        Cookie header it got in <pre id=cookies> (the gateway
                        must have stripped its own session cookie).
  GET /app/api/whoami   JSON {"user_id": <X-User-Id or null>}

Standard library only. Prints "listening" once bound (the test waits for it).
"""

import argparse
import html
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-app"
    protocol_version = "HTTP/1.1"

    def _send(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        user = self.headers.get("X-User-Id")
        if path == "/app/api/whoami":
            self._send(200, "application/json", json.dumps({"user_id": user}))
        elif path in ("/app/", "/app"):
            cookies = self.headers.get("Cookie", "")
            page = (
                "<!doctype html>\n<html><head><meta charset=utf-8>"
                "<title>Demo app</title></head><body>\n"
                f"<h1>Hello, user {html.escape(user or '')}</h1>\n"
                '<form method="post" action="/logout"><button>Log out</button></form>\n'
                f"<pre id=cookies>{html.escape(cookies)}</pre>\n"
                "</body></html>\n"
            )
            self._send(200, "text/html; charset=utf-8", page)
        else:
            self._send(404, "text/plain", "not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write("demo_app: " + (fmt % args) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
