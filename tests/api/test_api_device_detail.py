"""GET /api/v1/devices/{id}: a device's timeline over a period and the alerts it was behind,
for a supervisor only."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from scanner.store import alerts as alert_store
from scanner.store.alerts import AlertRecord
from scanner.store.db import Store
from scanner.store.devices import upsert_devices
from scanner.store.sightings import write_sightings
from tests.api.api_helpers import FakeClock


def _seed(store: Store, now: float) -> None:
    upsert_devices(
        store,
        [
            {
                "id": "dev-1",
                "kind": "handset",
                "vendor": "Apple",
                "first_seen": now - 7200,
                "last_seen": now - 60,
                "radios": ["wifi"],
                "identifiers": {"macs": ["3c:5a:b4:00:00:01"]},
                "evidence": [],
                "last_rssi": -50.0,
                "in_zone": True,
            }
        ],
    )
    write_sightings(
        store,
        [
            {
                "device_id": device,
                "radio": "wifi",
                "sensor": "wifi",
                "first_ts": now - ago,
                "last_ts": now - ago + 40,
                "count": 5,
                "rssi_min": -60.0,
                "rssi_max": -50.0,
                "rssi_mean": -55.0,
                "identifier": "3c:5a:b4:00:00:01",
            }
            # Two in the last hour, one two hours back, and another device's.
            for device, ago in (("dev-1", 600), ("dev-1", 1800), ("dev-1", 7200), ("dev-2", 600))
        ],
    )
    for alert_id, devices in (("a-1", ["dev-1"]), ("a-2", ["dev-2"]), ("a-3", ["dev-2", "dev-1"])):
        alert_store.raise_alert(
            store,
            AlertRecord(
                id=alert_id,
                kind="handset",
                state="open",
                title="Handset",
                raised_ts=now - 900,
                updated_ts=now - 900,
                confidence=0.9,
                handsets=1,
                sensors=["wifi"],
                reasons=["probe requests"],
                device_ids=devices,
            ),
        )


def test_device_timeline_and_alerts(
    store: Store, clock: FakeClock, login: Callable[[str], TestClient]
) -> None:
    now = clock()
    _seed(store, now)
    sup = login("supervisor")
    r = sup.get("/api/v1/devices/dev-1", params={"since": now - 3600, "until": now})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device"]["id"] == "dev-1" and body["device"]["in_zone"] is True
    assert [s["first_ts"] for s in body["sightings"]] == [now - 1800, now - 600]
    assert body["truncated"] is False
    assert sorted(a["id"] for a in body["alerts"]) == ["a-1", "a-3"]
    # The default period is the day before now: the sighting two hours back is in it.
    assert len(sup.get("/api/v1/devices/dev-1").json()["sightings"]) == 3


def test_device_detail_refusals(
    store: Store, clock: FakeClock, login: Callable[[str], TestClient], anon: TestClient
) -> None:
    now = clock()
    _seed(store, now)
    sup = login("supervisor")
    assert sup.get("/api/v1/devices/nobody").status_code == 404
    bad = {"since": now, "until": now - 10}
    assert sup.get("/api/v1/devices/dev-1", params=bad).status_code == 400
    week = {"since": now - 8 * 86400, "until": now}
    assert sup.get("/api/v1/devices/dev-1", params=week).status_code == 400
    assert login("guard").get("/api/v1/devices/dev-1").status_code == 403
    assert anon.get("/api/v1/devices/dev-1").status_code == 401
