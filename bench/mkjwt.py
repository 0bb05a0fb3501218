#!/usr/bin/env python3
"""Print an HS256 access token for the bench scripts: mkjwt.py SECRET USER_ID TTL_SECONDS.

The claims are the ones authgate issues (user_id, sub, iat, exp), without a
session id: such a token is verified and cached like any other.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    secret, user, ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"user_id": user, "sub": str(user), "iat": now, "exp": now + ttl}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    print(f"{header}.{payload}.{b64url(signature)}")


if __name__ == "__main__":
    main()
