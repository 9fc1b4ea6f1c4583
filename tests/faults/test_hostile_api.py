"""Issue 9, hostile input at the API: requests built to break the parser, and sign-in guessing.

What tests/api already covers is not repeated here (one oversized body, one malformed JSON body,
sequential lockout with a fake clock, schemathesis on the schema). Here: bodies nested a hundred
thousand deep, wrong and missing content types, bytes that are not UTF-8, JSON constants Python
accepts but JSON does not, huge numbers; every one answered with a 4xx problem document, never a
5xx, and the server still answering afterwards. Then password and PIN guessing on a real server
in parallel, as a script would: the lockout must hold however the guesses are interleaved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.helpers.servers import serving

PROBLEM = "application/problem+json"
PASSWORD = "super-pass-1"
PIN = "2468"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    store = Store(tmp_path / "checkpoint.db")
    user_store.add_user(store, "sup", "supervisor", 1.0, "test", password=PASSWORD)
    user_store.add_user(store, "guard", "guard", 1.0, "test", password="guard-pass-1", pin=PIN)
    store.close()
    # Only 127.0.0.1 is the trusted kiosk here: the guessers below come from 127.0.0.5.
    app = create_app(
        ApiSettings(store_path=str(tmp_path / "checkpoint.db"), trusted_clients=("127.0.0.1/32",))
    )
    with serving(app, start_within_s=15, lifespan="off") as served:
        yield served.url


def _login(client: httpx.Client) -> None:
    r = client.post("/api/v1/session", json={"username": "sup", "password": PASSWORD})
    assert r.status_code == 200, r.text


def _problem_4xx(r: httpx.Response, what: str) -> None:
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"] == PROBLEM, f"{what}: {r.headers['content-type']}"
    assert r.json()["status"] == r.status_code


DEPTH = 100_000
HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "deeply nested arrays": (b"[" * DEPTH + b"]" * DEPTH, "application/json"),
    "deeply nested objects": (b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, "application/json"),
    "nested just under the body limit": (b"[" * 120_000 + b"]" * 120_000, "application/json"),
    "not UTF-8": (b'{"note": "\xff\xfe\xc0\xaf"}', "application/json"),
    "UTF-16 with BOM": ('{"note": "x"}'.encode("utf-16"), "application/json"),
    "NaN and Infinity": (b'{"note": NaN, "x": Infinity}', "application/json"),
    "huge integer": (b'{"note": ' + b"9" * 5000 + b"}", "application/json"),
    "lone surrogate escape": (b'{"note": "\\ud800"}', "application/json"),
    "NUL bytes": (b'{"note": "a\x00b"}', "application/json"),
    "truncated": (b'{"note": "x', "application/json"),
    "empty": (b"", "application/json"),
    "array instead of object": (b'["note"]', "application/json"),
    "text/plain JSON": (b'{"note": "x"}', "text/plain"),
    "form encoded": (b"note=x", "application/x-www-form-urlencoded"),
    "multipart": (
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    "XML": (b"<note>x</note>", "application/xml"),
    "no content type": (b'{"note": "x"}', ""),
    "garbage content type": (b'{"note": "x"}', "\x01;;;=="),
}

TARGETS = [
    ("POST", "/api/v1/alerts/al-none/ack"),
    ("PUT", "/api/v1/allowlist"),
    ("PUT", "/api/v1/zone"),
    ("POST", "/api/v1/session"),
]


def test_hostile_bodies_are_4xx_problems_never_5xx(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        _login(client)
        statuses: Counter[int] = Counter()
        for method, path in TARGETS:
            for what, (body, ctype) in HOSTILE_BODIES.items():
                headers = {"Content-Type": ctype} if ctype else {}
                r = client.request(method, path, content=body, headers=headers)
                _problem_4xx(r, f"{method} {path} with {what}")
                statuses[r.status_code] += 1
        # Still serving, and the session still works.
        assert client.get("/api/v1/alerts").status_code == 200
    print(dict(statuses))


def test_hostile_query_strings_headers_and_paths(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        _login(client)
        cases: list[tuple[str, dict[str, Any]]] = [
            ("/api/v1/alerts?limit=" + "9" * 400, {}),
            ("/api/v1/alerts?since=nan&until=inf", {}),
            ("/api/v1/alerts?since=-1e309", {}),
            ("/api/v1/alerts?state=%00", {}),
            ("/api/v1/alerts?offset=-1", {}),
            ("/api/v1/alerts/" + "a" * 5000, {}),
            ("/api/v1/alerts/%ff%fe", {}),
            ("/api/v1/events", {"headers": {"Last-Event-ID": "9" * 400}}),
            ("/api/v1/events", {"headers": {"Last-Event-ID": "-5"}}),
        ]
        for url, kw in cases:
            r = client.get(url, **kw)
            assert r.status_code < 500, f"{url}: {r.status_code} {r.text[:300]}"
            if r.status_code >= 400:
                _problem_4xx(r, url)
        bearer = client.get("/api/v1/alerts", headers={"Authorization": "Bearer " + "x" * 4000})
        assert bearer.status_code < 500
        assert client.get("/api/v1/alerts").status_code == 200


def _guesser(server: str) -> httpx.Client:
    # A host on the site network, not the kiosk: bound to another loopback address.
    transport = httpx.HTTPTransport(local_address="127.0.0.5")
    return httpx.Client(base_url=server, timeout=60, transport=transport)


ALLOWED = ApiSettings(store_path="").login_client_failures


def test_parallel_password_guessing_hits_the_lockout(server: str) -> None:
    """A script firing guesses concurrently must not get more than the allowed failures."""
    guesses = 40

    def guess(i: int) -> int:
        with _guesser(server) as c:
            r = c.post("/api/v1/session", json={"username": "sup", "password": f"guess-{i}"})
            return r.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = Counter(pool.map(guess, range(guesses)))
    assert set(codes) <= {401, 429}, codes
    # At most the allowed number of wrong guesses were checked as such; the rest were refused.
    assert codes[401] <= ALLOWED, codes
    with _guesser(server) as c:
        right = c.post("/api/v1/session", json={"username": "sup", "password": PASSWORD})
    assert right.status_code == 429, f"not locked after {guesses} parallel guesses: {codes}"
    assert int(right.headers["retry-after"]) > 0


def test_parallel_pin_guessing_hits_the_lockout(server: str) -> None:
    guesses = 40

    def guess(i: int) -> int:
        with _guesser(server) as c:
            return c.post("/api/v1/session", json={"pin": f"{1000 + i:04d}"}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = Counter(pool.map(guess, [i for i in range(guesses) if f"{1000 + i:04d}" != PIN]))
    assert set(codes) <= {401, 429}, codes
    assert codes[401] <= ALLOWED, codes
    with _guesser(server) as c:
        right = c.post("/api/v1/session", json={"pin": PIN})
    assert right.status_code == 429, f"PIN not locked after {guesses} parallel guesses: {codes}"
