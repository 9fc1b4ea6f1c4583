"""/api/v1/health carries the processes' runtime health, every sensor's dropped records and the
reasons the status is not ok; /healthz says only the status, to anyone."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from api.routers.health import RUNTIME_STALE_S
from api.settings import ApiSettings
from scanner.observations import BleAdvert, Radio, SensorState, SensorStatus
from scanner.runtime.plans import queue_health
from scanner.runtime.serve import HealthWriter
from scanner.runtime.transport import EventQueue
from scanner.store.db import Store
from scanner.store.health import record_status
from tests.api.api_helpers import FakeClock


def _advert(i: int) -> BleAdvert:
    return BleAdvert(
        ts=time.time(),
        mono=float(i),
        address=f"4C:00:00:00:00:{i:02X}",
        address_type="random",
        rssi_dbm=-60,
    )


def _write(
    store: Store, components: dict[str, dict[str, object]], extra: dict[str, object]
) -> None:
    writer = HealthWriter(store.path, "run", extra=lambda: extra)
    try:
        writer.write(components, float("inf"))
    finally:
        writer.close()
    assert writer.failures == 0


RUNNING = {"state": "running", "restarts": 0, "last_error": ""}


def test_healthz_shows_runtime_health_and_drops_per_sensor(
    store: Store,
    anon: TestClient,
    login: Callable[[str], TestClient],
    clock: FakeClock,
    settings: ApiSettings,
) -> None:
    now = time.time()
    record_status(
        store,
        SensorStatus(
            now,
            0.0,
            "ble",
            Radio.BLE,
            SensorState.OK,
            "scanning",
            counters={
                "delivered": 900,
                "dropped_queue_full": 3,
                "dropped_unparsable": 1,
                "transport_dropped_buffer_full": 4,
                "transport_dropped_core_down": 4,  # part of the 4 above, not 4 more
            },
        ),
    )
    record_status(store, SensorStatus(now, 0.0, "wifi", Radio.WIFI, SensorState.OK, "hopping"))
    events = EventQueue(1)  # the core's queue, full after one record: two BLE drops
    assert [events.put(_advert(i)) for i in range(3)] == [True, False, False]
    _write(
        store,
        {"core": RUNNING, "wifi": {"state": "restarting", "restarts": 2, "last_error": "gone"}},
        {"queue": queue_health(events), "retention": {"state": "ok", "runs": 3, "errors": 0}},
    )
    clock.now = time.time()
    guard = login("guard")

    health = guard.get("/api/v1/health").json()
    run = health["runtime"]["run"]
    assert run["stale"] is False and run["age_s"] < 60
    assert run["components"]["wifi"] == {"state": "restarting", "restarts": 2, "last_error": "gone"}
    assert run["queue"]["dropped_by_sensor"] == {"ble": 2}
    assert run["retention"]["runs"] == 3
    ble = health["sensors"]["ble"]
    assert ble["counters"]["core_dropped_queue_full"] == 2
    assert ble["dropped"] == 3 + 1 + 4 + 2
    assert health["sensors"]["wifi"]["dropped"] == 0
    # Every sensor is ok, but a component of a running process is down.
    assert health["status"] == "degraded"
    assert health["problems"] == ["run: wifi is restarting"]
    # Anyone sees that much, and nothing of the details.
    public = anon.get("/healthz").json()
    assert public["status"] == "degraded"
    assert public["sensors"]["ble"] == {"radio": "ble", "state": "ok", "status": "ok"}
    assert not {"runtime", "disk", "version", "problems"} & set(public)
    # The signed-in sensor list counts the same drops.
    by_name = {s["sensor"]: s for s in guard.get("/api/v1/sensors").json()}
    assert by_name["ble"]["dropped"] == 10

    _write(
        store,
        {"core": RUNNING, "wifi": RUNNING},
        {"queue": queue_health(events), "retention": {"state": "ok", "runs": 4, "errors": 0}},
    )
    assert anon.get("/healthz").json()["status"] == "ok"
    assert guard.get("/api/v1/health").json()["problems"] == []

    _write(
        store,
        {"core": RUNNING, "wifi": RUNNING},
        {"retention": {"state": "error", "errors": 1, "last_error": "OperationalError: full"}},
    )
    health = guard.get("/api/v1/health").json()
    assert health["status"] == "degraded"
    assert health["problems"] == ["store retention is failing"]
    assert health["runtime"]["run"]["retention"]["last_error"] == "OperationalError: full"

    # A process that stopped writing is gone, and the core with it: trouble as soon as it has
    # missed three writes, long before its sensors' reports go stale.
    _write(
        store,
        {"core": {"state": "running", "restarts": 1, "last_error": "x"}},
        {"queue": queue_health(events)},
    )
    clock.now = time.time() + RUNTIME_STALE_S + 1
    health = guard.get("/api/v1/health").json()
    assert health["runtime"]["run"]["stale"] is True
    assert "core_dropped_queue_full" not in health["sensors"]["ble"]["counters"]
    assert {s["status"] for s in health["sensors"].values()} == {"ok"}
    assert health["status"] == "degraded"
    assert health["problems"][0] == "the detection core is not running"
    assert health["problems"][1].startswith("process run stopped reporting (last ")
    assert anon.get("/healthz").json()["status"] == "degraded"

    # Stopped cleanly (every component stopped on the way out) and replaced by a core daemon
    # that runs: no trouble from the old entry.
    _write(store, {"core": {"state": "stopped", "restarts": 0, "last_error": ""}}, {})
    clock.now = time.time() + RUNTIME_STALE_S + 1
    fresh = HealthWriter(store.path, "core")
    try:
        fresh.write({"core": RUNNING}, float("inf"))
    finally:
        fresh.close()
    clock.now = time.time()
    answer = guard.get("/api/v1/health")
    assert answer.json().get("problems") == [], answer.text

    # Later the sensors stop reporting too: each one says for how long.
    clock.now = time.time() + settings.sensor_stale_s + 1
    health = guard.get("/api/v1/health").json()
    assert {s["status"] for s in health["sensors"].values()} == {"silent"}
    assert any(p.startswith("Bluetooth: not reporting for ") for p in health["problems"])


def test_healthz_without_runtime_health_or_with_a_mangled_one(
    store: Store, login: Callable[[str], TestClient], clock: FakeClock
) -> None:
    anon = login("guard")
    record_status(store, SensorStatus(clock.now, 0.0, "sdr", Radio.SDR, SensorState.OK, "sweeping"))
    health = anon.get("/api/v1/health").json()
    assert health["runtime"] == {} and health["status"] == "ok"
    with store.write() as conn:
        store.set_setting(conn, "runtime_health", {"run": "not an object", "core": {"x": 1}})
    health = anon.get("/api/v1/health")
    assert health.status_code == 200
    body = health.json()
    assert set(body["runtime"]) == {"core"} and body["runtime"]["core"]["stale"] is True
    assert body["status"] == "ok"
