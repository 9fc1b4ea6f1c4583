"""The alert history is keyed by a key derived from the sealing key: someone who can write the
store but not read the key cannot re-link the chain so that the next bundle verifies, whether
they re-link with plain SHA-256 or with a key of their own. A chain from before the key is
named as legacy, never passed as keyed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.main import main
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.seal_key import attach_chain_key, write_keys
from scanner.store import alerts as alert_store
from scanner.store.alerts import AlertRecord
from scanner.store.chain import (
    ALERT_HISTORY_KEYS,
    GENESIS,
    derive_chain_key,
    link,
    verify_rows,
)
from scanner.store.db import Store

from .conftest import DAY_START, Day, populate_day

SEAL_KEY = bytes(range(32))


@pytest.fixture
def keyed_day(tmp_path: Path) -> Iterator[Day]:
    # The unit was provisioned (its chain keyed) a day before the recorded day.
    write_keys(tmp_path / "seal.key", [SEAL_KEY], DAY_START - 86_400)
    store = Store(tmp_path / "checkpoint.db")
    attach_chain_key(store)
    yield populate_day(store, tmp_path)
    store.close()


def _export(day: Day, out: Path) -> Path:
    build_bundle(day.store, Period(day.since, day.until), out, now=day.until + 60)
    return out


def _history(store: Store) -> list[dict[str, Any]]:
    return [dict(r) for r in store.query("SELECT * FROM alert_history ORDER BY seq")]


def _relink(store: Store, from_seq: int, key: bytes | None) -> None:
    """What a forger with write access does: recompute every link from ``from_seq`` on."""
    rows = _history(store)
    prev = GENESIS
    with store.write() as conn:
        for row in rows:
            if row["seq"] >= from_seq:
                digest = link(prev, {k: row[k] for k in ALERT_HISTORY_KEYS}, key)
                conn.execute(
                    "UPDATE alert_history SET prev_hash = ?, hash = ? WHERE seq = ?",
                    (prev, digest, row["seq"]),
                )
                prev = digest
            else:
                prev = row["hash"]


def _forge_ack(store: Store) -> int:
    """Change who acknowledged an alert, in its row and its history; returns the history seq."""
    row = store.query(
        "SELECT seq, alert_id FROM alert_history WHERE event = 'acknowledged' ORDER BY seq LIMIT 1"
    )[0]
    with store.write() as conn:
        conn.execute("UPDATE alert_history SET actor = 'nobody' WHERE seq = ?", (row["seq"],))
        conn.execute("UPDATE alerts SET acked_by = 'nobody' WHERE id = ?", (row["alert_id"],))
    return int(row["seq"])


def _verify(bundle: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["verify", str(bundle), "--db", str(db)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_every_link_the_store_writes_is_keyed(
    keyed_day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _history(keyed_day.store)
    key = derive_chain_key(SEAL_KEY)
    assert key != SEAL_KEY
    assert verify_rows(rows, ALERT_HISTORY_KEYS, key) == []
    # Not one of them is a plain hash.
    assert verify_rows(rows, ALERT_HISTORY_KEYS)
    status, out = _verify(
        _export(keyed_day, tmp_path / "b.tar.gz"), tmp_path / "checkpoint.db", capsys
    )
    assert status == 0, out
    assert f"alert_history: {len(rows)} link(s) keyed by this unit's key" in out
    assert "LEGACY" not in out


def test_a_row_rewritten_and_relinked_with_plain_sha256_fails_naming_it(
    keyed_day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seq = _forge_ack(keyed_day.store)
    _relink(keyed_day.store, seq, None)
    status, out = _verify(
        _export(keyed_day, tmp_path / "b.tar.gz"), tmp_path / "checkpoint.db", capsys
    )
    assert status == 1
    first = out.splitlines()[0]
    assert first.startswith(f"CHAIN alert_history: record seq {seq} "), out
    assert "plain SHA-256 link after a keyed link" in first


def test_the_whole_chain_relinked_with_plain_sha256_fails_at_its_first_record(
    keyed_day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No keyed link left to follow: the key file's date of keying still exposes the forgery.
    _forge_ack(keyed_day.store)
    _relink(keyed_day.store, 1, None)
    status, out = _verify(
        _export(keyed_day, tmp_path / "b.tar.gz"), tmp_path / "checkpoint.db", capsys
    )
    assert status == 1
    first = out.splitlines()[0]
    assert first.startswith("CHAIN alert_history: record seq 1 "), out
    assert "stamped after the chain was keyed" in first


def test_a_chain_relinked_with_another_key_fails_naming_the_first_bad_link(
    keyed_day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seq = _forge_ack(keyed_day.store)
    _relink(keyed_day.store, seq, derive_chain_key(secrets.token_bytes(32)))
    status, out = _verify(
        _export(keyed_day, tmp_path / "b.tar.gz"), tmp_path / "checkpoint.db", capsys
    )
    assert status == 1
    first = out.splitlines()[0]
    assert first.startswith(f"CHAIN alert_history: record seq {seq} "), out
    assert "ALTERED, its content does not match its hash" in first


def test_off_the_unit_keyed_links_are_counted_not_passed_as_checked(
    keyed_day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _export(keyed_day, tmp_path / "b.tar.gz")
    assert main(["verify", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "keyed link(s) not checked" in out
    assert "pass --db or --seal-key" in out


def _raise(store: Store, n: int, ts: float) -> None:
    alert_store.raise_alert(
        store,
        AlertRecord(
            id=f"a{n}",
            kind="handset",
            state="open",
            title=f"Phone {n}",
            raised_ts=ts,
            updated_ts=ts,
            confidence=0.9,
            handsets=1,
            sensors=["wifi"],
            reasons=["probe requests"],
            device_ids=[f"d{n}"],
        ),
    )


def test_a_chain_from_before_the_key_is_named_legacy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "checkpoint.db"
    store = Store(db)
    try:
        # Three links made before the unit had a key (plain), then the key, then three more.
        for n in range(3):
            _raise(store, n, DAY_START + n)
        write_keys(tmp_path / "seal.key", [SEAL_KEY], DAY_START + 100)
        attach_chain_key(store)
        for n in range(3, 6):
            _raise(store, n, DAY_START + 200 + n)
        out = tmp_path / "b.tar.gz"
        build_bundle(store, Period(DAY_START - 60, DAY_START + 600), out, now=DAY_START + 700)
        status, text = _verify(out, db, capsys)
        assert status == 0, text
        assert "alert_history: 3 LEGACY link(s), seq 1..3, made before the chain was keyed" in text
        assert "alert_history: 3 link(s) keyed by this unit's key" in text
        # A plain link written after the key existed is not legacy.
        store.chain_key = None
        _raise(store, 6, DAY_START + 300)
        build_bundle(store, Period(DAY_START - 60, DAY_START + 600), out, now=DAY_START + 700)
        status, text = _verify(out, db, capsys)
        assert status == 1
        assert text.splitlines()[0].startswith("CHAIN alert_history: record seq 7 ")
        assert "plain SHA-256 link after a keyed link" in text.splitlines()[0]
    finally:
        store.close()
