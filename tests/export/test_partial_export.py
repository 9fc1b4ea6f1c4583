"""Export from a damaged store: every readable row is exported, what is not is listed in the
manifest, the README and the report, the bundle is sealed and verifies, and tampering outside
the declared gaps is still caught."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.salvage import SalvageReader
from scanner.export.seal_key import seal_keys
from scanner.export.verify import verify_bundle
from scanner.store.chain import append_audit
from scanner.store.db import Store, StoreFullError
from tests.helpers.damage import damage_table

from .bundle_tools import rehash, repack, unpack
from .conftest import Day, populate_day


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Day, Path, Path]:
    """A populated day, an intact copy of it, and the original with damaged pages in the
    sightings and alert-history tables."""
    db = tmp_path / "checkpoint.db"
    store = Store(db)
    day = populate_day(store, tmp_path)
    seal_keys(store)  # the unit's key exists before the card fails, as on a unit in service
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    intact = tmp_path / "intact.db"
    shutil.copy(db, intact)
    damage_table(db, "sightings", pages=2)
    damage_table(db, "alert_history")
    return day, db, intact


def _all(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_salvage_returns_every_intact_row_and_names_exactly_the_lost_ones(
    damaged: tuple[Day, Path, Path],
) -> None:
    _, db, intact = damaged
    store = Store(db)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            store.query("SELECT * FROM sightings WHERE rssi_max > ? ORDER BY id", (-80,))
        reader = SalvageReader(store)
        got = reader.select("sightings", "rssi_max > ?", (-80,), ("id",), "test")
    finally:
        store.close()
    truth = _all(intact, "SELECT * FROM sightings WHERE rssi_max > ? ORDER BY id", (-80,))
    lost = [(u.first_rowid, u.last_rowid) for u in reader.unreadable]
    assert lost and all(u.table == "sightings" for u in reader.unreadable)
    assert all(isinstance(a, int) and isinstance(b, int) for a, b in lost)

    def in_lost(rowid: int) -> bool:
        return any(a is not None and b is not None and a <= rowid <= b for a, b in lost)

    # Exactly the intact rows come back, in order, with their true values; nothing invented.
    assert got == [r for r in truth if not in_lost(int(str(r["id"])))]
    # And the lost ranges are real rows (about two pages of them), not the whole table.
    lost_rows = sum(b - a + 1 for a, b in lost if a is not None and b is not None)
    total = len(_all(intact, "SELECT id FROM sightings"))
    assert 10 < lost_rows < total // 4


def test_export_of_a_damaged_store_completes_says_what_is_missing_and_verifies(
    damaged: tuple[Day, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day, db, intact = damaged
    out = tmp_path / "bundle.tar.gz"
    rc = main(
        [
            "export",
            "--db",
            str(db),
            "--since",
            str(day.since),
            "--until",
            str(day.until),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0
    assert "the store is damaged" in err and "alert_history: rows" in err
    _, files = unpack(out)
    manifest = json.loads(files["MANIFEST.json"])
    tables = {u["table"] for u in manifest["unreadable"]}
    assert {"sightings", "alert_history"} <= tables
    assert manifest["counts"]["unreadable"] == len(manifest["unreadable"])
    listed = [json.loads(line) for line in files["unreadable.ndjson"].splitlines()]
    assert [u["words"] for u in listed] == [u["words"] for u in manifest["unreadable"]]
    assert "THE STORE WAS DAMAGED" in files["README.txt"].decode()
    report = files["report.html"].decode()
    assert "Store damaged: part of the period is missing" in report
    # Every exported sighting is the intact store's row, unchanged.
    truth = {r["id"]: r for r in _all(intact, "SELECT id, device_id, count FROM sightings")}
    exported = [json.loads(line) for line in files["sightings.ndjson"].splitlines()]
    assert exported
    for row in exported:
        assert truth[row["id"]]["device_id"] == row["device_id"]
        assert truth[row["id"]]["count"] == row["count"]
    # Verified with the unit's key: intact, sealed, and saying it is incomplete.
    store = Store(intact)
    try:
        keys = seal_keys(store, create=False).all
    finally:
        store.close()
    result = verify_bundle(out, keys)
    assert result.ok, result.problems
    assert "seal: made by this unit (site key matches)" in result.notes
    assert any(n.startswith("INCOMPLETE") for n in result.notes)
    assert any("seq" in n and "could not be read" in n for n in result.notes)
    assert main(["verify", str(out)]) == 0
    assert "OK (incomplete" in capsys.readouterr().out


def test_a_record_removed_outside_the_declared_gap_still_fails(
    damaged: tuple[Day, Path, Path], tmp_path: Path
) -> None:
    day, db, _ = damaged
    store = Store(db)
    try:
        summary = build_bundle(store, Period(day.since, day.until), tmp_path / "b.tar.gz")
    finally:
        store.close()
    assert summary.unreadable
    top, files = unpack(tmp_path / "b.tar.gz")
    chain = files["chain/alert_history.ndjson"].splitlines()
    # Drop the second record: not in any range the export declared unreadable; the forger
    # rehashes the manifest as well.
    files["chain/alert_history.ndjson"] = b"\n".join([chain[0], *chain[2:]]) + b"\n"
    rehash(files)
    result = verify_bundle(repack(top, files, tmp_path / "tampered.tar.gz"))
    assert not result.ok
    assert any("REMOVED" in p and "seq 2" in p for p in result.problems), result.problems


def test_an_export_the_full_store_cannot_audit_is_still_written(
    damaged: tuple[Day, Path, Path], tmp_path: Path
) -> None:
    day, _, intact = damaged
    store = Store(intact)
    try:
        pages = int(store.query("PRAGMA page_count")[0][0])
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        # Fill what room is left, as the card filled up before the export: audited sign-ins
        # until not one more fits (the chain stays whole).
        with pytest.raises(StoreFullError):
            for i in range(100 * pages):
                with store.write() as conn:
                    append_audit(conn, day.until + i, "guard", "session.login", {"n": i})
        summary = build_bundle(store, Period(day.since, day.until), tmp_path / "b.tar.gz")
    finally:
        store.close()
    assert summary.unaudited.startswith("disk full")
    assert summary.alerts == len(day.alert_ids) and not summary.unreadable
    _, files = unpack(tmp_path / "b.tar.gz")
    assert json.loads(files["MANIFEST.json"])["audited"] is False
    assert "could not be recorded in the audit log: disk full" in files["README.txt"].decode()
