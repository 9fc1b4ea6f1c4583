"""The alert store: transitions are stored, chained and published as live events."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.store import alerts as alert_store
from scanner.store.chain import ALERT_HISTORY_KEYS, verify_rows
from scanner.store.db import Store, StoreError, connect
from scanner.store.schema import MIGRATIONS


def _alert(alert_id: str = "a1", ts: float = 100.0) -> alert_store.AlertRecord:
    return alert_store.AlertRecord(
        id=alert_id,
        kind="handset",
        state="open",
        title="Handset in zone",
        raised_ts=ts,
        updated_ts=ts,
        confidence=0.8,
        handsets=1,
        sensors=["wifi"],
        reasons=["probe -40 dBm"],
        device_ids=["d1"],
    )


def test_lifecycle_is_stored_chained_and_published(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    first = alert_store.raise_alert(store, _alert())
    alert_store.update_alert(
        store,
        "a1",
        105.0,
        confidence=0.9,
        handsets=2,
        sensors=["wifi", "ble"],
        reasons=["x", "y"],
        device_ids=["d1", "d2"],
        duration_s=5.0,
    )
    acked = alert_store.acknowledge_alert(store, "a1", 106.0, "guard1", "checked bag")
    again = alert_store.acknowledge_alert(store, "a1", 107.0, "guard2")
    alert_store.resolve_alert(store, "a1", 120.0, "left_zone", 20.0)

    assert acked.acked_by == "guard1"
    assert again.acked_by == "guard1"  # the first acknowledgement is kept
    final = alert_store.get_alert(store, "a1")
    assert (final.state, final.handsets, final.resolution) == ("resolved", 2, "left_zone")
    events = [e["data"]["event"] for e in store.events_after(first - 1)]
    assert events == ["raised", "updated", "acknowledged", "resolved"]
    rows = [dict(r) for r in store.query("SELECT * FROM alert_history ORDER BY seq")]
    assert [r["event"] for r in rows] == ["raised", "updated", "acknowledged", "resolved"]
    assert verify_rows(rows, ALERT_HISTORY_KEYS) == []


def test_chain_detects_removed_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    for i in range(3):
        alert_store.raise_alert(store, _alert(f"a{i}", 100.0 + i))
    rows = [dict(r) for r in store.query("SELECT * FROM alert_history ORDER BY seq")]
    del rows[1]
    assert verify_rows(rows, ALERT_HISTORY_KEYS)


def test_unknown_alert_and_newer_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    with pytest.raises(alert_store.AlertNotFoundError):
        alert_store.acknowledge_alert(store, "nope", 1.0, "g")
    store.conn.execute("PRAGMA user_version = 99")
    store.close()
    with pytest.raises(StoreError, match="newer"):
        connect(tmp_path / "c.db")


def test_list_filters_by_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    alert_store.raise_alert(store, _alert("a", 1.0))
    alert_store.raise_alert(store, _alert("b", 2.0))
    alert_store.resolve_alert(store, "a", 3.0, "cleared", 2.0)
    assert [a.id for a in alert_store.list_alerts(store, state="open")] == ["b"]
    assert [a.id for a in alert_store.list_alerts(store)] == ["b", "a"]


def test_concurrent_first_open_applies_migrations_once(tmp_path: Path) -> None:
    # The core and the API open a new database at the same moment on first boot.
    import subprocess
    import sys

    db = tmp_path / "race.db"
    code = (
        "import sys; from scanner.store.db import connect; "
        "c = connect(sys.argv[1]); print(c.execute('PRAGMA user_version').fetchone()[0])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(len(MIGRATIONS))}
