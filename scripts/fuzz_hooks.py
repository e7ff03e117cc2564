"""Schemathesis hooks for scripts/fuzz: sign in as an admin of the run's own.

The fuzzer locks out whatever it signs in as: wrong `oldPassword`s and logins throttle the
account and the address (127.0.0.1), and logout, token revocation or a disable end the
session. So each sign-in (the first, and again after a 401) creates a fresh admin with
`api create-admin` and logs it in from 127.0.0.2, an address only these hooks use.
"""

import http.client
import itertools
import json
import os
import subprocess
from urllib.parse import urlsplit

import schemathesis

BASE = urlsplit(os.environ["FUZZ_BASE_URL"])
PASSWORD = "fuzz-admin-password"
SIGN_INS = itertools.count(1)


def connect() -> http.client.HTTPConnection:
    return http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=30, source_address=("127.0.0.2", 0))


def still_works(token: str) -> bool:
    connection = connect()
    connection.request("GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
    return connection.getresponse().status != 401


def sign_in() -> str:
    email = f"fuzz-{os.getpid()}-{next(SIGN_INS)}@example.com"
    subprocess.run(
        ["target/debug/api", "create-admin", "--email", email, "--name", "Fuzz", "--password", PASSWORD],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    connection = connect()
    body = json.dumps({"email": email, "password": PASSWORD})
    connection.request("POST", "/v1/users/login", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"login answered {response.status}: {response.read()!r}")
    return json.load(response)["token"]


# Schemathesis asks again after every 401, most of them for credentials it left out on purpose.
@schemathesis.auth(refresh_interval=None)
class AdminToken:
    token = None

    def get(self, case, context):
        if self.token is None or not still_works(self.token):
            self.token = sign_in()
        return self.token

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
