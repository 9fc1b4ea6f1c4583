"""A damaged or full store is never silent: quick_check finds flipped bytes in a real database
file, health turns degraded naming the damage, and a full disk says "disk full"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.health import _disk_problem
from api.schemas import DiskHealth
from api.settings import ApiSettings
from scanner.runtime.components.retention import RetentionSchedule, RetentionTask
from scanner.store.db import Store, StoreFullError
from scanner.store.health import list_sensors
from scanner.store.integrity import quick_check, read_state, state_path
from tests.helpers.damage import damage_table

from .conftest import populate_day

LOCAL = "http://127.0.0.1"


@pytest.fixture
def day_db(tmp_path: Path) -> Path:
    store = Store(tmp_path / "checkpoint.db")
    populate_day(store, tmp_path)
    store.close()
    return tmp_path / "checkpoint.db"


def _task(db: Path, **store_section: float) -> RetentionTask:
    return RetentionTask("retention", str(db), RetentionSchedule.from_mapping(store_section))


def test_quick_check_passes_an_intact_store_and_names_the_damaged_table(day_db: Path) -> None:
    assert quick_check(day_db).ok
    damage_table(day_db, "sightings", pages=2)
    result = quick_check(day_db)
    assert not result.ok
    assert result.problems[0] == "unreadable rows in sightings"
    assert "database damaged: unreadable rows in sightings" in result.message()


def test_damage_turns_the_store_sensor_degraded_and_health_says_why(day_db: Path) -> None:
    damage_table(day_db, "sightings", pages=2)
    task = _task(day_db)
    # The check runs first; the retention run after it may trip on the same pages (expiring
    # old sightings reads them) and is counted as failed: either way the row says why.
    task.run_once()
    assert task.integrity is not None and not task.integrity.ok
    assert task.health()["integrity"]["ok"] is False
    kept = read_state(day_db)
    assert kept is not None and not kept.ok and kept.problems == task.integrity.problems
    store = Store(day_db)
    try:
        row = next(s for s in list_sensors(store) if s["sensor"] == "store")
    finally:
        store.close()
    assert row["state"] == "degraded"
    assert row["message"].startswith("database damaged: unreadable rows in sightings")
    # The API keeps answering, and says it: /healthz status only, the details behind sign-in.
    app = create_app(ApiSettings(store_path=str(day_db)))
    client = TestClient(app, base_url=LOCAL)
    public = client.get("/healthz")
    assert public.status_code == 200
    assert public.json()["status"] == "degraded"
    assert public.json()["sensors"]["store"]["status"] == "degraded"
    task._close_store()


def test_the_verdict_file_alone_makes_health_degraded(tmp_path: Path, day_db: Path) -> None:
    # The damaged database may refuse the sensor row's update; the file beside it still tells.
    damage_table(day_db, "sightings")
    task = _task(day_db)
    task.check_integrity()
    app = create_app(ApiSettings(store_path=str(day_db)))
    client = TestClient(app, base_url=LOCAL)
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["sensors"]["store"]["status"] == "degraded"
    # Once the file is intact again (restored from a backup), the next check clears it.
    state_path(day_db).unlink()
    assert client.get("/healthz").json()["sensors"].get("store", {}).get("status") != "degraded"


def test_a_read_that_hits_damage_starts_a_check_on_the_next_run(day_db: Path) -> None:
    task = _task(day_db, integrity_every_s=86400)
    assert task.run_once() is True
    assert task.integrity is not None and task.integrity.ok
    assert not task.check_due()
    # The store row is read by every retention run: damage there fails the run at once.
    damage_table(day_db, "sensor_health")
    assert task.run_once() is False
    assert "database damaged" in task.last_error
    assert task.check_due()
    task.run_once()
    assert task.integrity is not None and not task.integrity.ok
    assert "sensor_health" in task.integrity.problems[0]
    # The API cannot read the sensors at all now: a fault, in words.
    app = create_app(ApiSettings(store_path=str(day_db)))
    client = TestClient(app, base_url=LOCAL)
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "fault"


def test_integrity_interval_is_validated() -> None:
    assert RetentionSchedule.from_mapping({}).integrity_every_s == 6 * 3600
    for bad in (0, 30, "hourly", True, 10 * 86400):
        with pytest.raises(Exception, match="integrity_every_s"):
            RetentionSchedule.from_mapping({"integrity_every_s": bad})


def test_a_full_store_says_disk_full_not_cannot_rollback(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoint.db")
    try:
        pages = int(store.query("PRAGMA page_count")[0][0])
        # SQLite's own size limit gives the very SQLITE_FULL a full file system gives.
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreFullError, match=r"^disk full") as caught, store.write() as conn:
            for i in range(200):
                conn.execute(
                    "INSERT INTO events (ts, type, data) VALUES (?, ?, ?)", (i, "x", "y" * 4000)
                )
        assert "cannot rollback" not in str(caught.value)
        assert isinstance(caught.value, sqlite3.OperationalError)
        assert not store.conn.in_transaction
        # Nothing half-written stays, and the store works again once there is room.
        assert store.query("SELECT COUNT(*) FROM events")[0][0] == 0
        store.conn.execute("PRAGMA max_page_count = 1073741823")
        with store.write() as conn:
            conn.execute("INSERT INTO events (ts, type, data) VALUES (1, 'x', 'y')")
        assert store.query("SELECT COUNT(*) FROM events")[0][0] == 1
    finally:
        store.close()


def test_health_says_disk_full_when_the_disk_is() -> None:
    full = DiskHealth(path="/var", total_bytes=16 * 2**30, free_bytes=4096, used_fraction=1.0)
    low = DiskHealth(path="/var", total_bytes=16 * 2**30, free_bytes=40 * 2**20, used_fraction=0.99)
    assert (_disk_problem(full) or "").startswith("disk full")
    assert (_disk_problem(low) or "").startswith("disk almost full")
