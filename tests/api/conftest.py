"""Fixtures for the API tests: a temp store with real users, the app, clients per role, and the
app served by uvicorn on a free port (for the SSE and schemathesis tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.api.api_helpers import (
    GUARD_PIN,
    LOCAL,
    PASSWORDS,
    ROLE_USER,
    FakeClock,
    LiveServer,
    serve,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "checkpoint.db")
    user_store.add_user(s, "admin", "admin", 1.0, "test", password=PASSWORDS["admin"])
    user_store.add_user(s, "sup", "supervisor", 1.0, "test", password=PASSWORDS["sup"])
    user_store.add_user(
        s, "guard", "guard", 1.0, "test", password=PASSWORDS["guard"], pin=GUARD_PIN
    )
    return s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(store: Store) -> ApiSettings:
    return ApiSettings(store_path=store.path, event_poll_s=0.05, heartbeat_s=0.5, sse_retry_ms=500)


@pytest.fixture
def app(settings: ApiSettings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def anon(app: FastAPI) -> TestClient:
    return TestClient(app, base_url=LOCAL)


@pytest.fixture
def login(app: FastAPI) -> Callable[[str], TestClient]:
    """A client signed in with the given role's account."""

    def make(role: str) -> TestClient:
        client = TestClient(app, base_url=LOCAL)
        user = ROLE_USER[role]
        r = client.post("/api/v1/session", json={"username": user, "password": PASSWORDS[user]})
        assert r.status_code == 200, r.text
        return client

    return make


@pytest.fixture
def live(store: Store) -> Iterator[LiveServer]:
    # The real clock here: the server runs in its own thread for real.
    settings = ApiSettings(
        store_path=store.path, event_poll_s=0.05, heartbeat_s=0.3, sse_retry_ms=500
    )
    yield from serve(create_app(settings))
