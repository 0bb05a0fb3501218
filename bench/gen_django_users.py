#!/usr/bin/env python3
"""Write N users as `manage.py dumpdata auth.User --format json` does (one line), or as CSV.

Usage: bench/gen_django_users.py N json|csv > FILE

The password hashes are pbkdf2_sha256 strings of Django's shape with a salt of
their own each, around one digest computed once (1000 iterations): the import
stores hashes, it never verifies them, so what it costs does not depend on them.
Every 1000th user is inactive.
"""

import base64
import csv
import hashlib
import json
import sys

n, fmt = int(sys.argv[1]), sys.argv[2]
digest = base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"bench password", b"salt", 1000)).decode()


def user(pk):
    salt = f"{pk:022d}"[-22:]
    return {
        "model": "auth.user",
        "pk": pk,
        "fields": {
            "password": f"pbkdf2_sha256$1000${salt}${digest}",
            "last_login": None,
            "is_superuser": False,
            "username": f"user{pk}",
            "first_name": "",
            "last_name": "",
            "email": f"User.{pk}@Example.com",
            "is_staff": False,
            "is_active": pk % 1000 != 0,
            "date_joined": "2021-06-01T12:00:00.123Z",
            "groups": [],
            "user_permissions": [],
        },
    }


out = sys.stdout
if fmt == "json":
    out.write("[")
    for pk in range(1, n + 1):
        if pk > 1:
            out.write(", ")
        out.write(json.dumps(user(pk)))
    out.write("]\n")
else:
    w = csv.writer(out)
    w.writerow(["id", "email", "username", "password"])
    for pk in range(1, n + 1):
        f = user(pk)["fields"]
        w.writerow([pk, f["email"], f["username"], f["password"]])
