"""What the tablet relies on: a data heartbeat it can see, a live feed that ends within seconds
of its session (while events keep flowing), a clean 400 for an absurd Last-Event-ID, the kiosk
credential of a wall screen, Silence in the audit log, and acknowledging an alarm whose phone
already left."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.deps import KIOSK_COOKIE
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from scanner.store.health import record_status
from scanner.store.kiosk import issue_kiosk
from tests.api.api_helpers import LiveServer, live_login, make_alert


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if current:
                yield current
            current = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            current[name] = value[1:] if value.startswith(" ") else value


def _flood(store: Store, stop: threading.Event) -> None:
    # Events keep flowing, as at a busy gate: the feed is never idle.
    n = 0
    while not stop.wait(0.05):
        with store.write() as conn:
            store.add_event(conn, time.time(), "health", {"n": n})
        n += 1


def test_heartbeat_is_an_event_without_an_id(live: LiveServer) -> None:
    client = live_login(live.url, "guard")
    with client.stream("GET", "/api/v1/events") as stream:
        events = _events(stream.iter_lines())
        hello = next(e for e in events if e.get("event") == "hello")
        beat = next(e for e in events if e.get("event") == "heartbeat")
    assert json.loads(hello["data"])["data"]["heartbeat_s"] == 0.3
    assert "id" not in beat  # it must not move the browser's Last-Event-ID
    data = json.loads(beat["data"])
    assert data["type"] == "heartbeat" and abs(data["ts"] - time.time()) < 5
    assert data["last_event_id"] == int(hello["id"])


def _ends_within(client: httpx.Client, end: Callable[[], object], within_s: float) -> float:
    """Open the feed, call ``end`` once it runs, return how long the feed outlived it."""
    with client.stream("GET", "/api/v1/events") as stream:
        events = _events(stream.iter_lines())
        next(e for e in events if e.get("event") == "hello")
        end()
        t0 = time.monotonic()
        for e in events:
            assert time.monotonic() - t0 < within_s, f"the feed outlived its credential: {e}"
    took = time.monotonic() - t0
    print(f"feed ended {took:.2f} s after its credential did")
    return took


def test_feed_ends_on_sign_out_disable_and_revoke_while_events_flow(
    live: LiveServer, store: Store
) -> None:
    stop = threading.Event()
    flood = threading.Thread(target=_flood, args=(store, stop), daemon=True)
    flood.start()
    try:
        guard = live_login(live.url, "guard")
        other = httpx.Client(base_url=live.url, cookies=guard.cookies)
        assert _ends_within(guard, lambda: other.delete("/api/v1/session"), 3.0) < 3.0

        admin = live_login(live.url, "admin")
        guard = live_login(live.url, "guard")

        def disable() -> None:
            r = admin.patch("/api/v1/users/guard", json={"disabled": True})
            assert r.status_code == 200, r.text

        assert _ends_within(guard, disable, 3.0) < 3.0

        info, secret = issue_kiosk(store, "Gate wall", time.time(), "sup")
        kiosk = httpx.Client(base_url=live.url, cookies={KIOSK_COOKIE: secret}, timeout=10)
        assert kiosk.get("/api/v1/alerts").status_code == 200
        sup = live_login(live.url, "sup")
        revoke = lambda: sup.delete(f"/api/v1/kiosk/{info.id}")  # noqa: E731
        assert _ends_within(kiosk, revoke, 3.0) < 3.0
        assert kiosk.get("/api/v1/alerts").status_code == 401
    finally:
        stop.set()
        flood.join(timeout=5)


def test_oversized_last_event_id_is_a_400_before_the_stream(
    login: Callable[[str], TestClient],
) -> None:
    guard = login("guard")
    for value in ("9" * 400, "9" * 21, str(2**63)):
        r = guard.get("/api/v1/events", headers={"Last-Event-ID": value})
        assert r.status_code == 400, (value, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert guard.get("/api/v1/events", headers={"Last-Event-ID": "abc"}).status_code == 422


def test_kiosk_is_issued_to_this_tablet_with_the_guard_role_and_revoked(
    login: Callable[[str], TestClient], anon: TestClient, store: Store
) -> None:
    sup = login("supervisor")
    r = sup.post("/api/v1/kiosk", json={"label": "North gate wall"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["actor"] == "kiosk:North gate wall" and made["token"].startswith("cpkiosk_")
    # This browser is the kiosk now: the supervisor's own session ended here.
    assert sup.cookies.get(KIOSK_COOKIE) == made["token"]
    me = sup.get("/api/v1/session").json()
    assert (me["username"], me["role"]) == ("kiosk:North gate wall", "guard")
    assert sup.get("/api/v1/kiosk/current").json()["kiosk"]["id"] == made["id"]
    assert sup.get("/api/v1/allowlist").status_code == 403
    # It acknowledges under its own name.
    alert_store.raise_alert(store, make_alert("k1", time.time()))
    acked = sup.post("/api/v1/alerts/k1/ack", json={"note": "seen"}).json()
    assert acked["acked_by"] == "kiosk:North gate wall"
    # A second tablet with the same label is refused; labels are checked.
    other = login("supervisor")
    dup = {"label": "North gate wall", "this_device": False}
    assert other.post("/api/v1/kiosk", json=dup).status_code == 409
    assert other.post("/api/v1/kiosk", json={"label": "<b>"}).status_code == 409
    assert [k["id"] for k in other.get("/api/v1/kiosk").json()] == [made["id"]]
    # A guard may not issue or list kiosks.
    guard = login("guard")
    assert guard.post("/api/v1/kiosk", json={"label": "x"}).status_code == 403
    assert guard.get("/api/v1/kiosk/current").json() == {"kiosk": None}
    # Revoked: the tablet is signed out at once, and the audit log says who did what.
    assert other.delete(f"/api/v1/kiosk/{made['id']}").status_code == 204
    assert sup.get("/api/v1/alerts").status_code == 401
    assert other.delete(f"/api/v1/kiosk/{made['id']}").status_code == 404
    actions = [(a["actor"], a["action"]) for a in other.get("/api/v1/audit").json()["items"]]
    assert ("sup", "kiosk.issue") in actions and ("sup", "kiosk.revoke") in actions
    # As a bearer token, a kiosk secret works the same way.
    info, secret = issue_kiosk(store, "Side door", time.time(), "sup")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert anon.get("/api/v1/kiosk/current", headers=bearer).json()["kiosk"]["id"] == info.id
    # The tablet can give its credential up itself (its Sign out).
    assert anon.delete("/api/v1/kiosk/current", headers=bearer).status_code == 204
    assert anon.get("/api/v1/alerts", headers=bearer).status_code == 401


def test_silence_and_siren_test_are_logged(login: Callable[[str], TestClient]) -> None:
    guard = login("guard")
    r = guard.post("/api/v1/alarm/silence", json={"minutes": 5, "alert_ids": ["a1"]})
    assert r.status_code == 200, r.text
    assert r.json()["by"] == "guard"
    assert guard.post("/api/v1/alarm/silence", json={"minutes": 60}).status_code == 422
    assert guard.post("/api/v1/alarm/test").status_code == 200
    sup = login("supervisor")
    rows = sup.get("/api/v1/audit").json()["items"]
    silence = next(a for a in rows if a["action"] == "alarm.silence")
    assert silence["actor"] == "guard"
    assert silence["detail"]["minutes"] == 5 and silence["detail"]["alert_ids"] == ["a1"]
    assert any(a["action"] == "alarm.test" for a in rows)


def test_an_alarm_whose_phone_left_can_still_be_acknowledged(
    login: Callable[[str], TestClient], store: Store
) -> None:
    now = time.time()
    alert_store.raise_alert(store, make_alert("gone", now))
    alert_store.resolve_alert(store, "gone", now + 20, "left_zone", 20.0)
    guard = login("guard")
    unacked = guard.get("/api/v1/alerts?acknowledged=false").json()["items"]
    assert [a["id"] for a in unacked] == ["gone"]
    r = guard.post("/api/v1/alerts/gone/ack", json={"note": "left before I looked"})
    assert r.status_code == 200
    body = r.json()
    assert (body["state"], body["acknowledged"], body["acked_by"]) == ("resolved", True, "guard")
    assert guard.get("/api/v1/alerts?acknowledged=false").json()["items"] == []


def test_a_nearly_full_disk_is_degraded_with_its_reason(
    login: Callable[[str], TestClient], anon: TestClient, store: Store, monkeypatch: Any
) -> None:
    import shutil
    from collections import namedtuple

    now = time.time()
    for radio in (Radio.WIFI, Radio.BLE):
        record_status(store, SensorStatus(now, 0.0, str(radio), radio, SensorState.OK, "fine"), now)
    guard = login("guard")
    assert guard.get("/api/v1/health").json()["problems"] == []
    usage = namedtuple("usage", "total used free")
    # The card as the OS reports it: 16 GB, 200 MB left.
    total, free = 16_000_000_000, 200_000_000
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(total, total - free, free))
    health = guard.get("/api/v1/health").json()
    assert health["status"] == "degraded"
    assert health["problems"] == ["disk almost full: 190 MiB free"]
    assert anon.get("/healthz").json()["status"] == "degraded"
