"""Every /api/v1 route, enumerated from the OpenAPI document, is closed without sign-in, and
the roles are enforced: a guard gets 403 on supervisor routes, a supervisor on admin routes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers.fresh import probe_json

PROBLEM = "application/problem+json"
LOGIN = ("post", "/api/v1/session")
# Routes whose role the product design fixes; the document must agree (and not drift).
EXPECTED_ROLES = {
    ("get", "/api/v1/alerts"): "guard",
    ("post", "/api/v1/alerts/{alert_id}/ack"): "guard",
    ("get", "/api/v1/events"): "guard",
    ("get", "/api/v1/sensors"): "guard",
    ("get", "/api/v1/health"): "guard",
    ("post", "/api/v1/alarm/silence"): "guard",
    ("post", "/api/v1/kiosk"): "supervisor",
    ("delete", "/api/v1/kiosk/{kiosk_id}"): "supervisor",
    ("get", "/api/v1/allowlist"): "supervisor",
    ("put", "/api/v1/allowlist"): "supervisor",
    ("post", "/api/v1/allowlist"): "supervisor",
    ("put", "/api/v1/zone"): "supervisor",
    ("get", "/api/v1/audit"): "supervisor",
    ("get", "/api/v1/users"): "admin",
    ("post", "/api/v1/users"): "admin",
}
_SAMPLE = {"token_id": "0123456789ab", "kiosk_id": "0123456789ab"}


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/openapi.json").json()
    ops = [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/api/v1/")
    ]
    assert len(ops) >= 20, "the document lost routes"
    return ops


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE.get(m.group(1), "x1"), path)


def test_document_declares_roles_and_security(anon: TestClient) -> None:
    ops = {(m, p): op for m, p, op in _operations(anon)}
    for key, role in EXPECTED_ROLES.items():
        assert ops[key]["x-required-role"] == role, key
    for key, op in ops.items():
        if key == LOGIN:
            assert "security" not in op
            continue
        schemes = {name for req in op["security"] for name in req}
        # A wall tablet's kiosk credential signs in as a guard wherever a session does.
        assert schemes == {"session", "token", "kiosk"}, key
        assert "401" in op["responses"], key
        assert PROBLEM in op["responses"]["401"]["content"], key


def test_every_route_but_login_needs_a_session(anon: TestClient) -> None:
    checked = 0
    for method, path, _op in _operations(anon):
        if (method, path) == LOGIN:
            continue
        r = anon.request(method.upper(), _url(path))
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"] == PROBLEM
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    ("role", "denied"), [("guard", {"supervisor", "admin"}), ("supervisor", {"admin"})]
)
def test_roles_are_enforced(
    login: Callable[[str], TestClient], role: str, denied: set[str]
) -> None:
    client = login(role)
    forbidden = allowed = 0
    for method, path, op in _operations(client):
        if (method, path) in (LOGIN, ("delete", "/api/v1/session"), ("get", "/api/v1/events")):
            continue  # signing out would end this client's session; the stream never ends
        r = client.request(
            method.upper(), _url(path), json={} if method in ("post", "put", "patch") else None
        )
        if op.get("x-required-role") in denied:
            assert r.status_code == 403, (role, method, path, r.status_code)
            assert r.json()["type"].endswith("forbidden")
            forbidden += 1
        else:
            assert r.status_code not in (401, 403), (role, method, path, r.status_code)
            allowed += 1
    assert forbidden >= 3 and allowed >= 5


def test_the_tablet_page_and_health_are_public(anon: TestClient) -> None:
    page = anon.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert anon.get("/static/app.js").status_code == 200
    assert anon.get("/manifest.webmanifest").json()["display"] == "fullscreen"
    assert anon.get("/healthz").status_code == 200


def test_the_api_makes_its_routes_without_loading_pydantic_v1() -> None:
    # FastAPI would load pydantic's v1 copy (25 modules, 1.7 MB) only to check that no route
    # uses a v1 model: the API's package marks it missing, and every route is still made.
    code = (
        "import json, sys\n"
        "from fastapi.routing import APIRoute\n"
        "from api.routers import alerts, users\n"
        "print(json.dumps({\n"
        "    'routes': sum(isinstance(r, APIRoute) for m in (alerts, users)\n"
        "                  for r in m.router.routes),\n"
        "    'v1': sorted(m for m, v in sys.modules.items()\n"
        "                 if m.startswith('pydantic.v1') and v is not None)}))\n"
    )
    result = probe_json(code)
    assert result["routes"] >= 4
    assert result["v1"] == []
