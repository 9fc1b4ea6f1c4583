"""Errors are problem+json everywhere; malformed and oversized requests are refused cleanly."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import httpx2
from fastapi.testclient import TestClient

from tests.api.api_helpers import LiveServer, live_login

PROBLEM = "application/problem+json"


def _is_problem(r: httpx.Response | httpx2.Response, status: int) -> None:
    # A TestClient's answer (httpx2, as Starlette runs it) or a live server's (httpx).
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"]


def test_unknown_path_and_wrong_method(login: Callable[[str], TestClient]) -> None:
    client = login("guard")
    _is_problem(client.get("/api/v1/nothing-here"), 404)
    _is_problem(client.delete("/api/v1/alerts"), 405)


def test_validation_errors(login: Callable[[str], TestClient]) -> None:
    client = login("supervisor")
    bad_json = client.post(
        "/api/v1/alerts/a1/ack", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _is_problem(bad_json, 422)
    assert bad_json.json()["errors"]
    _is_problem(client.get("/api/v1/alerts?limit=0"), 422)
    _is_problem(client.get("/api/v1/alerts?state=burning"), 422)
    _is_problem(client.post("/api/v1/alerts/a1/ack", json={"note": "x", "extra": 1}), 422)
    _is_problem(client.post("/api/v1/alerts/a1/ack", json={"note": "x" * 501}), 422)
    _is_problem(client.put("/api/v1/allowlist", json={"entries": "all"}), 422)
    _is_problem(client.post("/api/v1/session", json={"username": "x"}), 422)
    _is_problem(client.get("/api/v1/events", headers={"Last-Event-ID": "abc"}), 422)


def test_oversized_bodies(login: Callable[[str], TestClient]) -> None:
    client = login("supervisor")
    huge = b'{"note": "' + b"x" * 300_000 + b'"}'
    _is_problem(
        client.post(
            "/api/v1/alerts/a1/ack", content=huge, headers={"Content-Type": "application/json"}
        ),
        413,
    )


def test_oversized_chunked_body_on_a_real_server(live: LiveServer) -> None:
    client = live_login(live.url, "sup")

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 10_000

    r = client.post(
        "/api/v1/allowlist", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _is_problem(r, 413)
    # The server is fine afterwards.
    assert client.get("/api/v1/allowlist").status_code == 200
