"""Sign-in, sessions, PIN, lockout, API tokens, demo accounts and the audit trail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings, SettingsError
from scanner.store import alerts as alert_store
from scanner.store import users as user_store
from scanner.store.chain import AUDIT_KEYS, verify_rows
from scanner.store.db import Store
from tests.api.api_helpers import GUARD_PIN, LOCAL, PASSWORDS, FakeClock, make_alert

PROBLEM = "application/problem+json"


def _login(client: TestClient, **body: str) -> object:
    return client.post("/api/v1/session", json=body)


def test_password_login_sets_a_strict_httponly_cookie(anon: TestClient) -> None:
    r = anon.post("/api/v1/session", json={"username": "sup", "password": PASSWORDS["sup"]})
    assert r.status_code == 200
    assert r.json()["role"] == "supervisor"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert anon.get("/api/v1/session").json()["username"] == "sup"


def test_cookie_is_secure_under_tls(store: Store) -> None:
    client = TestClient(create_app(ApiSettings(store_path=store.path, tls=True)), base_url=LOCAL)
    r = client.post("/api/v1/session", json={"username": "sup", "password": PASSWORDS["sup"]})
    assert "secure" in r.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    "body",
    [
        {"username": "sup", "password": "wrong-password"},
        {"username": "nobody", "password": "whatever-1"},
        {"pin": "9999"},
    ],
)
def test_wrong_credentials_are_401_problems(anon: TestClient, body: dict[str, str]) -> None:
    r = anon.post("/api/v1/session", json=body)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 401
    assert "set-cookie" not in r.headers


def test_pin_login_for_the_shared_tablet(anon: TestClient) -> None:
    r = anon.post("/api/v1/session", json={"pin": GUARD_PIN})
    assert r.status_code == 200
    assert (r.json()["username"], r.json()["role"]) == ("guard", "guard")


def test_logout_ends_the_server_side_session(
    login: Callable[[str], TestClient], app: FastAPI
) -> None:
    client = login("guard")
    token = client.cookies.get("checkpoint_session")
    assert client.delete("/api/v1/session").status_code == 204
    # The old cookie value no longer works even if a client kept it.
    stale = TestClient(app, base_url=LOCAL, cookies={"checkpoint_session": token or ""})
    assert stale.get("/api/v1/alerts").status_code == 401


def test_session_expires(
    login: Callable[[str], TestClient], clock: FakeClock, settings: ApiSettings
) -> None:
    client = login("guard")
    clock.now += settings.session_ttl_s + 1
    r = client.get("/api/v1/alerts")
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_disabling_a_user_ends_their_sessions(
    login: Callable[[str], TestClient], anon: TestClient
) -> None:
    guard = login("guard")
    admin = login("admin")
    assert admin.patch("/api/v1/users/guard", json={"disabled": True}).json()["disabled"] is True
    assert guard.get("/api/v1/alerts").status_code == 401
    r = anon.post("/api/v1/session", json={"username": "guard", "password": PASSWORDS["guard"]})
    assert r.status_code == 403


def test_api_tokens_for_scripts(login: Callable[[str], TestClient], app: FastAPI) -> None:
    sup = login("supervisor")
    created = sup.post("/api/v1/tokens", json={"label": "nightly pull"})
    assert created.status_code == 201
    token = created.json()["token"]
    script = TestClient(app, base_url=LOCAL, headers={"Authorization": f"Bearer {token}"})
    assert script.get("/api/v1/audit").status_code == 200
    assert script.get("/api/v1/session").json()["via"] == "token"
    assert [t["label"] for t in sup.get("/api/v1/tokens").json()] == ["nightly pull"]
    # A guard cannot make tokens; a supervisor cannot make them for someone else.
    assert login("guard").post("/api/v1/tokens", json={"label": "x"}).status_code == 403
    assert sup.post("/api/v1/tokens", json={"label": "x", "username": "admin"}).status_code == 403
    assert sup.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
    assert script.get("/api/v1/audit").status_code == 401
    bogus = TestClient(app, base_url=LOCAL, headers={"Authorization": "Bearer cpk_not-a-token"})
    assert bogus.get("/api/v1/alerts").status_code == 401


def test_demo_accounts_are_refused_outside_the_demo(store: Store) -> None:
    creds = user_store.ensure_demo_users(store)
    assert creds["guard"]["pin"] and creds["supervisor"]["role"] == "supervisor"
    demo = TestClient(create_app(ApiSettings(store_path=store.path, demo=True)), base_url=LOCAL)
    r = demo.post(
        "/api/v1/session", json={"username": "guard", "password": creds["guard"]["password"]}
    )
    assert r.status_code == 200 and r.json()["demo"] is True
    with pytest.raises(SettingsError, match="demo accounts"):
        create_app(ApiSettings(store_path=store.path))
    for name in creds:
        if name != "admin":
            user_store.remove_user(store, name, 2.0, "test")
    # The admin demo account gets a password of its own: no longer a public one.
    user_store.update_user(store, "admin", 3.0, "test", password="a-private-one")
    create_app(ApiSettings(store_path=store.path))


def test_audit_records_logins_acks_and_changes(
    login: Callable[[str], TestClient], store: Store, anon: TestClient
) -> None:
    anon.post("/api/v1/session", json={"username": "sup", "password": "wrong-password"})
    alert_store.raise_alert(store, make_alert("a1", 100.0))
    guard = login("guard")
    guard.post("/api/v1/alerts/a1/ack", json={"note": "bag checked"})
    sup = login("supervisor")
    sup.post(
        "/api/v1/allowlist",
        json={"entry": {"match": "mac", "value": "AA:BB:CC:DD:EE:FF", "label": "tablet"}},
    )
    sup.put("/api/v1/zone", json={"name": "north gate"})
    page = sup.get("/api/v1/audit?limit=100").json()
    actions = [(i["actor"], i["action"]) for i in page["items"]]
    for expected in [
        ("sup", "login.failed"),
        ("guard", "login"),
        ("guard", "alert.ack"),
        ("sup", "allowlist.replace"),
        ("sup", "zone.update"),
    ]:
        assert expected in actions
    rows = [dict(r) for r in store.query("SELECT * FROM audit ORDER BY seq")]
    assert verify_rows(rows, AUDIT_KEYS) == []
    # Secrets never reach the audit log.
    assert not any(PASSWORDS[u] in r["detail"] for r in rows for u in PASSWORDS)
