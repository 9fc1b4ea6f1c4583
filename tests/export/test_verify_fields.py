"""Editing any field the alert history chains, or the history's order, in the store makes the
next bundle fail ``verify``, and the failure names what was edited. The sealing key is not in
the store, so writing the store cannot seal a bundle as this unit."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.seal_key import LEGACY_SETTING, SealKeyError, read_keys
from scanner.export.verify import verify_bundle
from scanner.sim.run import replay_fast
from scanner.store.db import Store

SCENARIO = Path(__file__).resolve().parents[2] / "scanner" / "demo" / "scenario"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("verify-fields") / "source.db"
    store = Store(db)
    try:
        replay_fast(SCENARIO, store=store)
    finally:
        store.close()
    return db


def _copy(demo_db: Path, tmp_path: Path) -> Path:
    db = tmp_path / "checkpoint.db"
    shutil.copy(demo_db, db)
    return db


def _export(db: Path, out: Path) -> Path:
    store = Store(db)
    try:
        first = float(store.query("SELECT MIN(raised_ts) AS a FROM alerts")[0]["a"])
        build_bundle(store, Period(first - 600, first + 3600), out, now=first + 3700)
    finally:
        store.close()
    return out


def _edit(db: Path, sql: str, params: tuple[object, ...] = ()) -> str:
    """Run one edit on the first acknowledged alert; returns its id."""
    conn = sqlite3.connect(db)
    try:
        alert_id = conn.execute(
            "SELECT id FROM alerts WHERE acked_ts IS NOT NULL ORDER BY raised_ts LIMIT 1"
        ).fetchone()[0]
        with conn:
            conn.execute(sql, (*params, alert_id))
        return str(alert_id)
    finally:
        conn.close()


EDITS: dict[str, tuple[str, tuple[object, ...]]] = {
    "title": ("UPDATE alerts SET title = ? WHERE id = ?", ("Nothing to see",)),
    "kind": ("UPDATE alerts SET kind = ? WHERE id = ?", ("unidentified_transmitter",)),
    "confidence": ("UPDATE alerts SET confidence = ? WHERE id = ?", (0.12,)),
    "reasons": ("UPDATE alerts SET reasons = ? WHERE id = ?", (json.dumps(["a tablet"]),)),
    "ack_note": ("UPDATE alerts SET ack_note = ? WHERE id = ?", ("visitor's own tablet",)),
    "acked_by": ("UPDATE alerts SET acked_by = ? WHERE id = ?", ("someone else",)),
    "acked_ts": ("UPDATE alerts SET acked_ts = acked_ts - 30 WHERE id = ?", ()),
    "handsets": ("UPDATE alerts SET handsets = handsets + 1 WHERE id = ?", ()),
    "sensors": ("UPDATE alerts SET sensors = ? WHERE id = ?", (json.dumps(["wifi"]),)),
    "device_ids": ("UPDATE alerts SET device_ids = ? WHERE id = ?", (json.dumps([]),)),
    "raised_ts": ("UPDATE alerts SET raised_ts = raised_ts + 5 WHERE id = ?", ()),
    "resolved_ts": ("UPDATE alerts SET resolved_ts = resolved_ts + 60 WHERE id = ?", ()),
    "resolution": ("UPDATE alerts SET resolution = ? WHERE id = ?", ("allowlisted",)),
    "state": ("UPDATE alerts SET state = 'open', resolved_ts = NULL WHERE id = ?", ()),
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edited_alert_field_is_named(demo_db: Path, tmp_path: Path, field: str) -> None:
    db = _copy(demo_db, tmp_path)
    sql, params = EDITS[field]
    alert_id = _edit(db, sql, params)
    report = verify_bundle(_export(db, tmp_path / "b.tar.gz"))
    assert not report.ok
    assert any(p.startswith(f"ALERTS: alert {alert_id} field {field} ") for p in report.problems), (
        report.problems
    )


def test_an_untouched_store_verifies(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    report = verify_bundle(_export(db, tmp_path / "b.tar.gz"))
    assert report.ok, report.problems


def _history(db: Path, alert_id: str) -> list[tuple[int, str, float]]:
    conn = sqlite3.connect(db)
    try:
        return [
            (int(r[0]), str(r[1]), float(r[2]))
            for r in conn.execute(
                "SELECT seq, event, ts FROM alert_history WHERE alert_id = ? ORDER BY seq",
                (alert_id,),
            )
        ]
    finally:
        conn.close()


def test_a_note_edited_in_the_history_breaks_its_record(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    alert_id = _edit(
        db,
        "UPDATE alert_history SET detail = ? WHERE event = 'acknowledged' AND alert_id = ?",
        (json.dumps({"note": "all fine"}),),
    )
    seq = next(s for s, e, _ in _history(db, alert_id) if e == "acknowledged")
    report = verify_bundle(_export(db, tmp_path / "b.tar.gz"))
    assert any(f"record seq {seq} " in p and "ALTERED" in p for p in report.problems)
    # ...and the alert's row, which kept the guard's real note, says which field differs.
    assert any(f"alert {alert_id} field ack_note" in p for p in report.problems)


def test_history_moved_before_its_raise_is_named(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    alert_id = _edit(
        db,
        "UPDATE alert_history SET ts = ts - 3600 WHERE event = 'acknowledged' AND alert_id = ?",
    )
    report = verify_bundle(_export(db, tmp_path / "b.tar.gz"))
    assert any(
        p.startswith(f"HISTORY: alert {alert_id} ") and "field ts" in p and "before the alert" in p
        for p in report.problems
    ), report.problems


def test_history_reordered_is_named(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    conn = sqlite3.connect(db)
    alert_id = conn.execute("SELECT id FROM alerts ORDER BY raised_ts LIMIT 1").fetchone()[0]
    conn.close()
    (raised, _, _), (second, _, _) = _history(db, alert_id)[:2]
    conn = sqlite3.connect(db)
    with conn:
        # The raise and the next record swap places in the history's order.
        conn.execute("UPDATE alert_history SET seq = -1 WHERE seq = ?", (raised,))
        conn.execute("UPDATE alert_history SET seq = ? WHERE seq = ?", (raised, second))
        conn.execute("UPDATE alert_history SET seq = ? WHERE seq = -1", (second,))
    conn.close()
    report = verify_bundle(_export(db, tmp_path / "b.tar.gz"))
    assert any("REORDERED" in p for p in report.problems), report.problems
    assert any(
        p.startswith(f"HISTORY: alert {alert_id} ") and "before the alert was raised" in p
        for p in report.problems
    ), report.problems


def test_the_sealing_key_is_a_file_apart_from_the_store(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    bundle = _export(db, tmp_path / "b.tar.gz")
    key_file = tmp_path / "seal.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM settings WHERE key LIKE '%key%'").fetchone()[0] == 0
    # Someone who writes the store plants a key of their own: it is removed, never used.
    with conn:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)",
            (LEGACY_SETTING, json.dumps("ab" * 32)),
        )
    conn.close()
    again = _export(db, tmp_path / "again.tar.gz")
    keys = read_keys(key_file)
    assert bytes.fromhex("ab" * 32) not in keys.all
    for path in (bundle, again):
        assert main(["verify", str(path), "--db", str(db)]) == 0
    # A bundle sealed with another key is refused on the unit.
    other = tmp_path / "other.key"
    other.write_text("cd" * 32 + "\n")
    other.chmod(0o600)
    assert verify_bundle(bundle, read_keys(other).all).problems[0].startswith("SEAL:")


def test_a_key_kept_in_an_older_store_moves_to_the_file(demo_db: Path, tmp_path: Path) -> None:
    db = _copy(demo_db, tmp_path)
    old = "5e" * 32
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
            (LEGACY_SETTING, json.dumps(old)),
        )
    conn.close()
    bundle = _export(db, tmp_path / "b.tar.gz")
    assert read_keys(tmp_path / "seal.key").current == bytes.fromhex(old)
    conn = sqlite3.connect(db)
    assert (
        conn.execute("SELECT COUNT(*) FROM settings WHERE key = ?", (LEGACY_SETTING,)).fetchone()[0]
        == 0
    )
    conn.close()
    assert verify_bundle(bundle, bytes.fromhex(old)).ok


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "seal.key"
    key.write_text("12" * 32 + "\n")
    key.chmod(0o644)
    with pytest.raises(SealKeyError, match="chmod 600"):
        read_keys(key)
