"""Helpers shared by the API tests: accounts, a controllable clock, alert records, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from fastapi import FastAPI

from scanner.store import alerts as alert_store
from tests.helpers.servers import serving

PASSWORDS = {"admin": "admin-pass-1", "sup": "super-pass-1", "guard": "guard-pass-1"}
GUARD_PIN = "2468"
ROLE_USER = {"admin": "admin", "supervisor": "sup", "guard": "guard"}
# TestClient's default Host ("testserver") is a foreign name the API answers 421 to.
LOCAL = "http://localhost"


@dataclass
class FakeClock:
    """Wall clock under the test's control (lockout and silence tests jump it)."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


def make_alert(alert_id: str, ts: float, **kw: object) -> alert_store.AlertRecord:
    fields: dict[str, object] = {
        "id": alert_id,
        "kind": "handset",
        "state": "open",
        "title": f"Handset in zone ({alert_id})",
        "raised_ts": ts,
        "updated_ts": ts,
        "confidence": 0.9,
        "handsets": 1,
        "sensors": ["wifi"],
        "reasons": ["probe requests at -42 dBm"],
        "device_ids": [],
    }
    fields.update(kw)
    # Callers override any field by keyword; the record's own types hold them.
    return alert_store.AlertRecord(**fields)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def serve(app: FastAPI) -> Iterator[LiveServer]:
    with serving(app, port=free_port(), lifespan="off", timeout_graceful_shutdown=2) as served:
        yield LiveServer(served.url, served.server, served.thread)


def live_login(base: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    r = client.post("/api/v1/session", json={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 200, r.text
    return client
