"""Schemathesis hooks for scripts/fuzz: sign in as the fuzzing admin.

The token is fetched again every few seconds, so an operation that revokes it (logout, a
password change) costs the run a moment, not the rest of its coverage.
"""

import json
import os
import urllib.request

import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]


@schemathesis.auth(refresh_interval=2)
class AdminToken:
    def get(self, case, context):
        body = json.dumps(
            {"email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]}
        ).encode()
        request = urllib.request.Request(
            f"{BASE_URL}/v1/users/login",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
