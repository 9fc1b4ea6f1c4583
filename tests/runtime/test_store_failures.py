"""A store that refuses writes (another writer holding the lock, a full disk) while the core
raises alerts: the core carries on, the events wait in the store sink, and once the store takes
writes again every alert and its history are there, in order, as if nothing had happened.

The failures are SQLite's own: a second connection holding the write lock past the busy
timeout, ``PRAGMA max_page_count`` capping the database (SQLITE_FULL, what a full disk gives),
an authorizer refusing a read.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from scanner.core.events import AlertRaised
from scanner.sinks.held import failure_words
from scanner.sinks.store import StoreSink
from scanner.store import alerts as alert_store
from scanner.store.allowlist import AllowlistEntry, replace_entries
from scanner.store.db import Store
from scanner.store.retention import STORE_SENSOR
from tests.core.helpers import Harness
from tests.runtime.store_visits import MACS, harness, store_and_holder, store_sink, visits


def _harness(store: Store, retry_every_s: float = 0.0) -> tuple[Harness, StoreSink]:
    core = harness(store, retry_every_s)
    return core, store_sink(core)


def _what_is_stored(store: Store) -> dict[str, Any]:
    history = store.query("SELECT alert_id, ts, event, detail FROM alert_history ORDER BY seq")
    return {
        "alerts": [
            (a.id, a.state, a.raised_ts, a.resolved_ts, a.device_ids)
            for a in alert_store.list_alerts(store, limit=100)
        ],
        "history": [tuple(r) for r in history],
        "alert_events": [
            tuple(r)
            for r in store.query(
                "SELECT ts, type, data FROM events WHERE type != 'health' ORDER BY id"
            )
        ],
        "devices": [tuple(r) for r in store.query("SELECT * FROM devices ORDER BY id")],
        "sightings": [tuple(r) for r in store.query("SELECT * FROM sightings ORDER BY rowid")],
    }


def _reference(tmp_path: Path) -> dict[str, Any]:
    """The same visits into a store that never fails."""
    store = Store(tmp_path / "reference.db")
    try:
        core, _sink = _harness(store)
        visits(core, 0, 3)
        return _what_is_stored(store)
    finally:
        store.close()


def _store_states(store: Store) -> list[tuple[str, str]]:
    rows = store.query(
        "SELECT state, message FROM health_log WHERE sensor = ? ORDER BY id", (STORE_SENSOR,)
    )
    return [(r["state"], r["message"]) for r in rows]


def test_a_full_database_holds_the_alerts_and_writes_them_in_order_once_it_has_room(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "checkpoint.db")
    try:
        core, sink = _harness(store)
        visits(core, 0, 1)
        assert len(alert_store.list_alerts(store)) == 1 and sink.failure is None
        # The database may not grow by a page more: every insert that needs one fails with
        # SQLITE_FULL, as on a full disk.
        pages = int(store.query("PRAGMA page_count")[0][0])
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        visits(core, 1, 3)
        raised = [e for e in core.events if isinstance(e, AlertRaised)]
        assert len(raised) == 3  # the core carried on and raised both alerts
        assert sink.failure == "disk full"
        assert sink.health()["state"] == "degraded"
        assert "disk full" in sink.health()["message"]
        assert sink.pending_events > 0
        assert len(alert_store.list_alerts(store)) < 3  # not in the store yet

        store.conn.execute("PRAGMA max_page_count = 1073741823")
        core.tick(900.0)
        assert sink.failure is None and sink.pending_events == 0
        assert sink.counters["dropped_events"] == 0 and sink.counters["rejected_events"] == 0
        assert _what_is_stored(store) == _reference(tmp_path)
        # The outage is in the store sensor's history: degraded for the disk, then well again.
        states = _store_states(store)
        assert states[0][0] == "degraded" and states[0][1].startswith("disk full")
        assert states[-1][0] == "ok"
    finally:
        store.close()


def test_a_write_lock_held_past_the_busy_timeout_delays_the_alerts_without_losing_them(
    tmp_path: Path,
) -> None:
    # The core's connection waits 200 ms for the lock (5 s in the appliance): the same
    # failure, sooner.
    with store_and_holder(tmp_path / "checkpoint.db", busy_ms=200) as (store, holder):
        core, sink = _harness(store, retry_every_s=30.0)
        visits(core, 0, 1)
        holder.execute("BEGIN IMMEDIATE")  # another writer, stuck mid-transaction
        holder.execute("INSERT INTO settings (key, value) VALUES ('other', '1')")
        visits(core, 1, 3)
        assert sink.failure == "database locked"
        assert sink.counters["write_failures"] > 0
        # A retry waits less than the busy timeout, and the timeout is put back after it.
        assert int(store.query("PRAGMA busy_timeout")[0][0]) == 200
        holder.execute("ROLLBACK")

        core.tick(2000.0)
        assert sink.failure is None and sink.pending_events == 0
        assert _what_is_stored(store) == _reference(tmp_path)
        states = _store_states(store)
        assert [s for s, _m in states] == ["degraded", "ok"]
        assert states[0][1].startswith("database locked")


def test_past_the_bound_the_oldest_non_alert_events_are_dropped_and_counted_never_alerts(
    tmp_path: Path,
) -> None:
    with store_and_holder(tmp_path / "checkpoint.db", busy_ms=50) as (store, holder):
        core, sink = _harness(store, retry_every_s=30.0)
        sink.held.max_held = 20
        holder.execute("BEGIN EXCLUSIVE")
        visits(core, 0, 3)
        assert sink.counters["dropped_events"] > 0
        # What is held: the bound's worth, plus alert events that are never dropped.
        alert_events = 3 * 2  # raised and resolved for each visitor
        assert sink.pending_events <= sink.held.max_held + alert_events
        assert "oldest non-alert events dropped" in sink.health()["message"]
        holder.execute("ROLLBACK")

        core.tick(2000.0)
        assert sink.pending_events == 0
        reference = _reference(tmp_path)
        stored = _what_is_stored(store)
        assert stored["alerts"] == reference["alerts"]
        assert stored["history"] == reference["history"]
        counters = store.query(
            "SELECT counters FROM sensor_health WHERE sensor = ?", (STORE_SENSOR,)
        )[0]["counters"]
        assert f'"sink_dropped_events": {sink.counters["dropped_events"]}' in counters


def test_a_failed_read_of_the_inputs_is_counted_and_read_again_on_the_next_poll(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.db"
    store = Store(path)
    supervisor = Store(path)  # the API's connection
    try:
        core, sink = _harness(store)
        refuse = {"allowlist"}

        def authorizer(action: int, table: str | None, *_rest: object) -> int:
            if action == sqlite3.SQLITE_READ and table in refuse:
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        store.conn.set_authorizer(authorizer)
        # The second visitor is allowlisted while the core cannot read the list.
        replace_entries(supervisor, [AllowlistEntry("mac", MACS[1], "duty officer")], "sv", 0.0)
        visits(core, 0, 1)
        assert core.runner.read_errors > 0
        assert len(alert_store.list_alerts(store)) == 1  # the first visitor: alerted
        refuse.clear()
        # Read again on a later poll: the allowlisted phone walks in unalerted.
        visits(core, 1, 2)
        assert len(alert_store.list_alerts(store)) == 1
        assert sink.failure is None and sink.counters["write_failures"] == 0
    finally:
        supervisor.close()
        store.close()


def test_failure_words_name_the_disk_and_the_lock() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 2")
    try:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.Error as exc:
        assert failure_words(exc) == "disk full"
    else:
        raise AssertionError("the capped database took a blob larger than its pages")
    try:
        conn.execute("SELECT * FROM nowhere")
    except sqlite3.Error as exc:
        assert failure_words(exc) == "no such table: nowhere"
    conn.close()
