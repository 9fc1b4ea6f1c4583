"""The evidence keeper over a store that refuses writes (another writer holding the lock, a
database that may not grow, as on a full disk): the core carries on, the keeper holds its rows
and digests, and once the store takes writes again they are all there, in order, each once,
as in a run whose store never failed.

The failures are SQLite's own, as in ``tests/runtime/test_store_failures.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.sinks.evidence import EvidenceOptions
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.runtime.store_visits import MACS, frame, harness, keeper, store_and_holder, visits

# Small batches, so rows are written (and refused) while an alert is still open.
OPTIONS = EvidenceOptions(flush_rows=8)
# Retries every 30 s of the records' timeline.
RETRY_EVERY_S = 30.0


def _evidence(store: Store) -> dict[str, Any]:
    rows = store.query(
        "SELECT alert_id, device_id, radio, ts, format, payload FROM evidence ORDER BY id"
    )
    history = store.query(
        "SELECT alert_id, ts, event, actor, detail FROM alert_history ORDER BY seq"
    )
    # The history's links join both sinks' writes in the order they reached the store: each
    # alert's own transitions keep theirs.
    by_alert: dict[str, list[tuple[Any, ...]]] = {}
    for r in history:
        by_alert.setdefault(str(r["alert_id"]), []).append(tuple(r))
    return {"rows": [tuple(r) for r in rows], "history": by_alert}


def _reference(tmp_path: Path) -> dict[str, Any]:
    store = Store(tmp_path / "reference.db")
    try:
        core = harness(store, RETRY_EVERY_S, OPTIONS)
        visits(core, 0, 3)
        core.tick(2000.0)
        return _evidence(store)
    finally:
        store.close()


@pytest.mark.parametrize("failure", ["database locked", "disk full"])
def test_evidence_refused_by_the_store_is_written_in_order_once_it_recovers(
    tmp_path: Path, failure: str
) -> None:
    # The core's connection waits 100 ms for the lock (5 s in the appliance): the same
    # failure, sooner.
    with store_and_holder(tmp_path / "checkpoint.db", busy_ms=100) as (store, holder):
        core = harness(store, RETRY_EVERY_S, OPTIONS)
        kept = keeper(core)
        visits(core, 0, 1)
        before = _evidence(store)
        assert before["rows"] and kept.held.held == 0
        if failure == "database locked":
            holder.execute("BEGIN EXCLUSIVE")  # another writer, stuck mid-transaction
        else:
            # The database may not grow by a page more: SQLITE_FULL, as on a full disk.
            pages = int(store.query("PRAGMA page_count")[0][0])
            store.conn.execute(f"PRAGMA max_page_count = {pages}")
        visits(core, 1, 3)
        assert kept.held.failure == failure
        assert kept.counters["write_failures"] > 0
        assert kept.held.held > 0  # the two visits' frames, held
        assert not core.runner.sink_errors  # nothing lost on the way
        if failure == "database locked":
            holder.execute("ROLLBACK")
        else:
            store.conn.execute("PRAGMA max_page_count = 1073741823")

        core.tick(2000.0)
        assert kept.held.failure is None and kept.held.held == 0 and not kept.held
        assert kept.counters["dropped_rows"] == 0 and kept.counters["rejected_rows"] == 0
        assert len(alert_store.list_alerts(store)) == 3
        # Every row once, in the order kept, and each alert's digest after its rows.
        assert _evidence(store) == _reference(tmp_path)


def test_past_its_bound_the_keeper_drops_the_oldest_rows_counted_never_a_digest(
    tmp_path: Path,
) -> None:
    with store_and_holder(tmp_path / "checkpoint.db", busy_ms=50) as (store, holder):
        core = harness(store, RETRY_EVERY_S, OPTIONS)
        kept = keeper(core)
        one = len(frame(100.0, MACS[0], -45).raw)
        kept.held.max_held = 10 * one  # ten frames' bytes
        holder.execute("BEGIN EXCLUSIVE")
        visits(core, 0, 3)
        dropped = kept.counters["dropped_rows"]
        assert dropped > 0 and kept.held.held <= 10 * one
        holder.execute("ROLLBACK")
        core.tick(2000.0)
        assert not kept.held
        reference = _reference(tmp_path)
        stored = _evidence(store)
        # The newest rows of the last visit survive, in order; every alert's digest is there.
        assert len(stored["rows"]) == len(reference["rows"]) - dropped
        assert stored["rows"] == reference["rows"][dropped:]
        assert stored["history"] == reference["history"]
