"""API tokens: they expire, carry a scope, mint only when an admin's token may, and revoking
one revokes what it minted. Reproduces the findings: tokens never expired, a token minted
tokens, revoking the parent left the children working."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from scanner.store import sessions
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.api.api_helpers import LOCAL, FakeClock


def _bearer(app: FastAPI, token: str) -> TestClient:
    return TestClient(app, base_url=LOCAL, headers={"Authorization": f"Bearer {token}"})


def _mint(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    r = client.post("/api/v1/tokens", json={"label": "t", **body})
    return r.status_code, r.json()


def test_tokens_expire_by_default_and_at_most_after_the_maximum(
    login: Callable[[str], TestClient], app: FastAPI, clock: FakeClock, settings: ApiSettings
) -> None:
    sup = login("supervisor")
    status, made = _mint(sup)
    assert status == 201
    assert made["expires_ts"] == pytest.approx(clock.now + settings.token_ttl_s)
    script = _bearer(app, str(made["token"]))
    assert script.get("/api/v1/alerts").status_code == 200
    clock.now += settings.token_ttl_s + 1
    r = script.get("/api/v1/alerts")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # A short one on request; none longer than the maximum.
    sup = login("supervisor")  # the session of an hour ago has expired too
    status, short = _mint(sup, ttl_s=60)
    assert status == 201 and short["expires_ts"] == pytest.approx(clock.now + 60)
    assert _mint(sup, ttl_s=settings.token_max_ttl_s + 1)[0] == 422


def test_a_token_acts_with_its_scope_not_its_owners_role(
    login: Callable[[str], TestClient], app: FastAPI
) -> None:
    admin = login("admin")
    status, made = _mint(admin, role="guard")
    assert status == 201 and made["role"] == "guard"
    reader = _bearer(app, str(made["token"]))
    assert reader.get("/api/v1/alerts").status_code == 200
    assert reader.get("/api/v1/session").json()["role"] == "guard"
    assert reader.get("/api/v1/users").status_code == 403
    assert reader.get("/api/v1/audit").status_code == 403
    # A supervisor cannot make a token above its own role, nor one that mints.
    sup = login("supervisor")
    assert _mint(sup, role="admin")[0] == 422
    assert _mint(sup, can_mint=True)[0] == 422


def test_a_token_cannot_mint_unless_an_admins_token_allowed_to(
    login: Callable[[str], TestClient], app: FastAPI
) -> None:
    sup_token = _bearer(app, str(_mint(login("supervisor"))[1]["token"]))
    status, body = _mint(sup_token)
    assert status == 403 and "token" in str(body["detail"])
    admin = login("admin")
    plain = _bearer(app, str(_mint(admin)[1]["token"]))
    assert _mint(plain)[0] == 403
    minter = _bearer(app, str(_mint(admin, can_mint=True)[1]["token"]))
    status, child = _mint(minter, role="supervisor")
    assert status == 201 and child["parent_id"] is not None


def test_a_minted_token_lives_no_longer_and_does_no_more_than_its_parent(
    login: Callable[[str], TestClient], app: FastAPI, clock: FakeClock
) -> None:
    admin = login("admin")
    status, parent = _mint(admin, can_mint=True, ttl_s=3600)
    minter = _bearer(app, str(parent["token"]))
    status, child = _mint(minter, ttl_s=30 * 86400)
    assert status == 201 and child["expires_ts"] == parent["expires_ts"]
    clock.now += 3601
    assert _bearer(app, str(child["token"])).get("/api/v1/alerts").status_code == 401


def test_revoking_a_token_revokes_every_token_minted_from_it(
    login: Callable[[str], TestClient], app: FastAPI
) -> None:
    admin = login("admin")
    _, parent = _mint(admin, can_mint=True)
    minter = _bearer(app, str(parent["token"]))
    _, child = _mint(minter, can_mint=True)
    _, grandchild = _mint(_bearer(app, str(child["token"])), role="guard")
    _, sibling = _mint(admin)
    clients = [_bearer(app, str(t["token"])) for t in (parent, child, grandchild, sibling)]
    assert [c.get("/api/v1/alerts").status_code for c in clients] == [200] * 4
    assert admin.delete(f"/api/v1/tokens/{parent['id']}").status_code == 204
    assert [c.get("/api/v1/alerts").status_code for c in clients] == [401, 401, 401, 200]
    listed = {t["id"] for t in admin.get("/api/v1/tokens").json()}
    assert listed == {sibling["id"]}


def test_removing_a_user_revokes_tokens_their_tokens_minted_for_others(store: Store) -> None:
    user_store.add_user(store, "ops", "admin", 2.0, "t", password="gate-north-7731")
    ops = sessions.token_grant(
        store, sessions.create_token(store, "ops", "ops", 3.0, "t", can_mint=True), 4.0
    )
    assert ops is not None
    minted = sessions.create_token(store, "sup", "for sup", 5.0, "ops", parent=ops)
    assert sessions.token_user(store, minted, 6.0) is not None
    user_store.remove_user(store, "ops", 7.0, "admin")
    assert sessions.token_user(store, minted, 8.0) is None


def test_a_token_follows_its_owners_demotion(store: Store) -> None:
    token = sessions.create_token(store, "admin", "x", 2.0, "t")
    user_store.add_user(store, "admin2", "admin", 2.0, "t", password="gate-north-7731")
    user_store.update_user(store, "admin", 3.0, "admin2", role="guard")
    grant = sessions.token_grant(store, token, 4.0)
    assert grant is not None and grant.user.role == "guard" and not grant.can_mint
