"""Schemathesis hooks for tests/api/contract.rs (loaded with SCHEMATHESIS_HOOKS).

Bearer auth for the generated requests: a fresh user, registered and logged in
against the gateway under test (AUTHGATE_CONTRACT_URL). Generated calls to
/logout/all and /password end the sessions of the user they run as; on the
next 401, and at least every second, Schemathesis fetches a new token here, so the
Bearer operations keep being exercised past their 401 answers.
"""

import json
import os
import urllib.request
import uuid

import schemathesis

BASE = os.environ["AUTHGATE_CONTRACT_URL"].rstrip("/")
PASSWORD = "correct horse battery"


def _post(path, body):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


@schemathesis.auth(refresh_interval=1)
class FreshUser:
    def get(self, case, context):
        email = f"contract-{uuid.uuid4().hex}@example.com"
        _post("/register", {"email": email, "password": PASSWORD})
        return _post("/login", {"email": email, "password": PASSWORD})["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
