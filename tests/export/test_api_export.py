"""GET /api/v1/export: supervisors get the same verifiable bundle the command line writes."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from scanner.export.verify import verify_bundle
from scanner.store import users as user_store

from .conftest import Day

PASSWORDS = {"sup": "super-pass-1", "guard": "guard-pass-1"}


@pytest.fixture
def client_for(day: Day) -> Callable[[str | None], TestClient]:
    user_store.add_user(day.store, "sup", "supervisor", 1.0, "test", password=PASSWORDS["sup"])
    user_store.add_user(day.store, "guard", "guard", 1.0, "test", password=PASSWORDS["guard"])
    settings = ApiSettings(store_path=day.store.path)
    app = create_app(settings, store=day.store, clock=lambda: day.until + 60)

    def make(user: str | None) -> TestClient:
        client = TestClient(app, base_url="http://localhost")
        if user is not None:
            r = client.post("/api/v1/session", json={"username": user, "password": PASSWORDS[user]})
            assert r.status_code == 200, r.text
        return client

    return make


def test_supervisor_downloads_a_verifiable_bundle(
    day: Day, client_for: Callable[[str | None], TestClient], tmp_path: Path
) -> None:
    client = client_for("sup")
    r = client.get(
        "/api/v1/export",
        params={"since": "2025-11-25T08:00:00Z", "until": str(day.until), "pseudonymise": "true"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert ".tar.gz" in r.headers["content-disposition"]
    out = tmp_path / "api.tar.gz"
    out.write_bytes(r.content)
    report = verify_bundle(out, None)
    assert report.ok, report.problems
    # The export is audited under the supervisor's name.
    rows = day.store.query("SELECT actor, action FROM audit WHERE action = 'export'")
    assert [(x["actor"], x["action"]) for x in rows] == [("sup", "export")]
    # Pseudonymised: no real address of the day appears in the bundle's tables.
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        text = (
            b"".join(
                # A regular file's member always extracts to a file object.
                tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            )
            .decode("utf-8", "replace")
            .lower()
        )
    assert not [m for m in day.macs + day.ble_addresses if m.lower() in text]


def test_guard_is_refused_and_anonymous_unauthorised(
    client_for: Callable[[str | None], TestClient],
) -> None:
    params = {"since": "0", "until": "10"}
    assert client_for(None).get("/api/v1/export", params=params).status_code == 401
    assert client_for("guard").get("/api/v1/export", params=params).status_code == 403


def test_bad_period_is_a_clear_400(client_for: Callable[[str | None], TestClient]) -> None:
    client = client_for("sup")
    r = client.get("/api/v1/export", params={"since": "soon", "until": "10"})
    assert r.status_code == 400 and "not a time" in r.json()["detail"]
    r = client.get("/api/v1/export", params={"since": "100", "until": "10"})
    assert r.status_code == 400 and "must be before its end" in r.json()["detail"]
    r = client.get("/api/v1/export", params={"since": "-1h", "until": "2999-01-01T00:00:00Z"})
    assert r.status_code == 400 and "in the future" in r.json()["detail"]
