"""Store retention run by the process that owns the core: on a timer, off the core's loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.config import ConfigError, parse_config
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.runtime.components.retention import RetentionSchedule, RetentionTask
from scanner.runtime.plans import plan_core
from scanner.runtime.serve import RUNTIME_HEALTH_KEY, serve
from scanner.runtime.transport import SocketSender
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from scanner.store.health import list_sensors
from scanner.store.retention import store_bytes
from tests.helpers.daemons import wait_for as poll

MB = 1024 * 1024


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    return poll(cond, timeout, every=0.05)


def _fill(store: Store, now: float) -> None:
    """Yesterday's sightings of a busy gate (about 2 MB) and one alert behind a device."""
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
            "rssi_min, rssi_max, rssi_mean, identifier) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    f"dev-{k}",
                    "wifi",
                    "wifi",
                    now - 86400 + k,
                    now - 86400 + k + 50,
                    3,
                    -80.0,
                    -60.0,
                    -70.0,
                    f"da:00:00:{k >> 16 & 255:02x}:{k >> 8 & 255:02x}:{k & 255:02x}" + "x" * 200,
                )
                for k in range(8000)
            ],
        )
    alert_store.raise_alert(
        store,
        alert_store.AlertRecord(
            id="kept-1",
            kind="handset",
            state="open",
            title="Handset in zone",
            raised_ts=now - 3600,
            updated_ts=now - 3600,
            confidence=0.9,
            handsets=1,
            sensors=["wifi"],
            reasons=["probe requests"],
            device_ids=["dev-7"],
        ),
    )


def test_core_daemon_with_a_tiny_budget_sheds_and_reports_the_store_degraded(
    tmp_path: Path,
) -> None:
    db = tmp_path / "checkpoint.db"
    sock = tmp_path / "core.sock"
    store = Store(db)
    _fill(store, time.time())
    assert store_bytes(store) > 1 * MB  # twice the budget
    store.close()
    config = parse_config(
        f'[site]\nstate_dir = "{tmp_path}"\n'
        f'[store]\npath = "{db}"\nbudget_mb = 0.5\nretention_every_s = 0.5\n'
        f'[transport]\nsocket = "{sock}"\n',
        tmp_path / "checkpoint.toml",
    )
    plan = plan_core(config)
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(
            serve(plan.supervisor, ready_text="test", stop=stop, health=plan.health)
        )
    )
    runner.start()
    store = Store(db)
    sender = SocketSender(sock, 100)
    try:

        def store_row() -> dict[str, object]:
            return next((s for s in list_sensors(store) if s["sensor"] == "store"), {})

        assert wait_for(lambda: store_row().get("state") == "degraded"), store_row()
        row = store_row()
        counters = row["counters"]
        assert isinstance(counters, dict)
        assert counters.get("shed_sightings_unlinked", 0) > 0, counters
        assert "disk budget" in str(row["message"])
        # Detail went; the alert and the sightings of its device did not.
        assert store.query("SELECT id FROM alerts")[0]["id"] == "kept-1"
        remaining = store.query("SELECT count(*) FROM sightings")[0][0]
        assert remaining < 8000

        def retention() -> dict[str, object]:
            health = store.get_setting(RUNTIME_HEALTH_KEY, {}).get("core", {})
            return dict(health.get("retention", {}))

        assert wait_for(lambda: int(str(retention().get("runs", 0))) >= 2), retention()
        assert retention()["errors"] == 0
        assert retention()["state"] == "ok"
        assert int(str(retention()["shed_rows"])) > 0
        components = store.get_setting(RUNTIME_HEALTH_KEY)["core"]["components"]
        assert components["retention"]["state"] == "running"

        # The core keeps handling records while retention runs beside it.
        sender.start()
        sender.sink(
            SensorStatus(
                time.time(), time.monotonic(), "ble", Radio.BLE, SensorState.OK, "scanning"
            )
        )
        assert sender.flush(5)
        assert wait_for(lambda: any(s["sensor"] == "ble" for s in list_sensors(store)))
    finally:
        sender.close()
        stop.set()
        runner.join(timeout=20)
        store.close()
    assert result == [0]


def test_a_failing_retention_run_is_counted_and_the_task_carries_on(tmp_path: Path) -> None:
    blocked = tmp_path / "checkpoint.db"
    blocked.mkdir()  # a directory where the database should be: every open fails
    schedule = RetentionSchedule.from_mapping({"retention_every_s": 0.05})
    task = RetentionTask("retention", str(blocked), schedule)
    assert task.run_once() is False
    assert task.errors == 1 and task.health()["state"] == "error"
    assert "OperationalError" in task.last_error or "StoreError" in task.last_error
    task.start()
    try:
        assert wait_for(lambda: task.errors >= 3, 10)
        assert task.alive()
    finally:
        task.stop(2)
    assert not task.alive()
    # Once the store can be opened again, the next run succeeds and health says so.
    blocked.rmdir()
    assert task.run_once() is True
    health = task.health()
    assert health["state"] == "ok" and health["runs"] == 1 and health["errors"] >= 3
    store = Store(blocked)
    try:
        row = next(s for s in list_sensors(store) if s["sensor"] == "store")
        assert row["state"] == "ok" and row["detail"]["budget_bytes"] > 0
    finally:
        store.close()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"retention_every_s": 0}, "retention_every_s"),
        ({"retention_every_s": "often"}, "retention_every_s"),
        ({"budget_mb": "lots"}, "[store]"),
        ({"high_water": 0.5, "low_water": 0.6}, "low_water"),
    ],
)
def test_bad_retention_settings_are_config_errors(
    section: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        RetentionSchedule.from_mapping(section)


def test_retention_reads_its_schedule_from_the_store_section() -> None:
    schedule = RetentionSchedule.from_mapping(
        {"path": "/var/lib/checkpoint/checkpoint.db", "budget_mb": 50, "retention_every_s": 120}
    )
    assert schedule.every_s == 120.0
    assert schedule.policy.budget_bytes == 50 * MB
    assert RetentionSchedule.from_mapping({}).every_s == 60.0
