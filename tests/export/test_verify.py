"""`checkpoint verify` names every alteration, removal and reordering, in the bundle or in the
store before the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.pseudonym import Pseudonymiser
from scanner.export.verify import verify_bundle
from scanner.store.db import Store

from .bundle_tools import rehash, repack, unpack
from .conftest import Day, populate_day


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bundle")
    store = Store(folder / "checkpoint.db")
    day = populate_day(store, folder)
    out = folder / "day.tar.gz"
    build_bundle(store, Period(day.since, day.until), out, now=day.until + 60)
    store.close()
    return out, folder / "checkpoint.db"


def _export(day: Day, out: Path) -> Path:
    build_bundle(day.store, Period(day.since, day.until), out, now=day.until + 60)
    return out


def test_intact_bundle_verifies(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, db = built
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert main(["verify", str(bundle), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(": OK") and "seal: made by this unit" in out


def test_one_byte_changed_in_any_file_is_named(built: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = built
    top, files = unpack(bundle)
    assert len(files) > 40
    missed: list[str] = []
    for name, data in files.items():
        at = len(data) // 2
        changed = dict(files)
        changed[name] = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
        report = verify_bundle(repack(top, changed, tmp_path / "x.tar.gz"))
        if report.ok or not any(name in p for p in report.problems):
            missed.append(f"{name}: {report.problems}")
    assert missed == []


def test_corrupt_archive_missing_and_extra_files(built: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = built
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(bytes(raw))
    report = verify_bundle(broken)
    assert not report.ok and report.problems[0].startswith("UNREADABLE")
    top, files = unpack(bundle)
    gone = dict(files)
    del gone["evidence/alert-003/wifi.pcap"]
    gone["notes.txt"] = b"added later"
    problems = verify_bundle(repack(top, gone, tmp_path / "y.tar.gz")).problems
    assert "MISSING: evidence/alert-003/wifi.pcap is listed in MANIFEST.json but absent" in problems
    assert "EXTRA: notes.txt is not listed in MANIFEST.json" in problems


def test_alert_deleted_from_store_before_export_is_detected(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = "alert-005"
    seqs = [
        r["seq"]
        for r in day.store.query(
            "SELECT seq FROM alert_history WHERE alert_id = ? ORDER BY seq", (victim,)
        )
    ]
    with day.store.write() as conn:
        conn.execute("DELETE FROM alert_history WHERE alert_id = ?", (victim,))
        conn.execute("DELETE FROM alerts WHERE id = ?", (victim,))
        conn.execute("DELETE FROM evidence WHERE alert_id = ?", (victim,))
    bundle = _export(day, tmp_path / "b.tar.gz")
    assert main(["verify", str(bundle)]) == 1
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"CHAIN alert_history: record seq {seqs[-1] + 1} ")
    assert "REMOVED" in first and f"seq {seqs[0]}..{seqs[-1]} absent" in first
    assert "NOT intact" in out


def test_alert_row_deleted_but_history_kept_is_detected(day: Day, tmp_path: Path) -> None:
    with day.store.write() as conn:
        conn.execute("DELETE FROM alerts WHERE id = 'alert-009'")
    problems = verify_bundle(_export(day, tmp_path / "b.tar.gz")).problems
    assert any(
        p.startswith("ALERTS: alert alert-009") and "missing from alerts.ndjson" in p
        for p in problems
    ), problems


def test_history_altered_in_store_is_detected(day: Day, tmp_path: Path) -> None:
    with day.store.write() as conn:
        row = conn.execute(
            "SELECT seq FROM alert_history WHERE alert_id = 'alert-002' AND event = 'acknowledged'"
        ).fetchone()
        conn.execute("UPDATE alert_history SET actor = 'guard9' WHERE seq = ?", (row["seq"],))
        conn.execute("UPDATE alerts SET acked_by = 'guard9' WHERE id = 'alert-002'")
    problems = verify_bundle(_export(day, tmp_path / "b.tar.gz")).problems
    assert problems[0] == (
        f"CHAIN alert_history: record seq {row['seq']} "
        f"({_iso_of(day, row['seq'])}): ALTERED, its content does not match its hash"
    )


def _iso_of(day: Day, seq: int) -> str:
    from scanner.export.timefmt import iso

    ts = day.store.query("SELECT ts FROM alert_history WHERE seq = ?", (seq,))[0]["ts"]
    return str(iso(ts))


def test_records_reordered_in_store_are_detected(day: Day, tmp_path: Path) -> None:
    # Swap the raise of alert-004 with the raise of alert-006, keeping every row intact.
    a, b = (
        day.store.query(
            "SELECT seq FROM alert_history WHERE alert_id = ? AND event = 'raised'", (i,)
        )[0]["seq"]
        for i in ("alert-004", "alert-006")
    )
    with day.store.write() as conn:
        conn.execute("UPDATE alert_history SET seq = -1 WHERE seq = ?", (a,))
        conn.execute("UPDATE alert_history SET seq = ? WHERE seq = ?", (a, b))
        conn.execute("UPDATE alert_history SET seq = ? WHERE seq = -1", (b,))
    problems = verify_bundle(_export(day, tmp_path / "b.tar.gz")).problems
    assert problems, "reordering went unnoticed"
    assert problems[0].startswith(f"CHAIN alert_history: record seq {a} ")
    assert "REORDERED" in problems[0]


def test_records_reordered_in_bundle_and_rehashed_are_detected(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, db = built
    top, files = unpack(bundle)
    lines = files["chain/alert_history.ndjson"].splitlines(keepends=True)
    lines[10], lines[11] = lines[11], lines[10]
    files["chain/alert_history.ndjson"] = b"".join(lines)
    rehash(files)  # every file hash and the manifest digest now match again
    forged = repack(top, files, tmp_path / "forged.tar.gz")
    problems = verify_bundle(forged).problems
    seq = json.loads(lines[10])["seq"]
    assert problems[0].startswith(f"CHAIN alert_history: record seq {seq} ")
    assert "REORDERED" in problems[0]
    # On the unit, the seal shows the manifest was rewritten by someone without the site key.
    assert main(["verify", str(forged), "--db", str(db)]) == 1
    assert "SEAL: MANIFEST.json was not sealed with this site's key" in capsys.readouterr().out


def test_alert_lines_reordered_or_edited_in_bundle(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, _ = built
    top, files = unpack(bundle)
    rows = files["alerts.csv"].splitlines(keepends=True)
    rows[1], rows[2] = rows[2], rows[1]
    swapped = dict(files, **{"alerts.csv": b"".join(rows)})
    problems = verify_bundle(repack(top, swapped, tmp_path / "s.tar.gz")).problems
    assert problems == ["ALTERED: alerts.csv (its sha256 differs from the one in MANIFEST.json)"]
    # A forger who edits an acknowledgement in alerts.ndjson and re-hashes is caught by the chain.
    alerts = [json.loads(x) for x in files["alerts.ndjson"].splitlines()]
    alerts[0]["acked_by"] = "nobody"
    files["alerts.ndjson"] = b"".join(json.dumps(a).encode() + b"\n" for a in alerts)
    rehash(files)
    problems = verify_bundle(repack(top, files, tmp_path / "e.tar.gz")).problems
    assert problems == [
        "ALERTS: alert alert-001 field acked_by is 'nobody' in alerts.ndjson but 'guard1' in "
        "its chained history"
    ]


def test_history_cut_back_after_an_earlier_export_is_detected(day: Day, tmp_path: Path) -> None:
    _export(day, tmp_path / "first.tar.gz")
    # Remove the newest alert entirely: the chain alone still links, since its tail is gone.
    with day.store.write() as conn:
        conn.execute("DELETE FROM alert_history WHERE alert_id = 'alert-014'")
        conn.execute("DELETE FROM alerts WHERE id = 'alert-014'")
    problems = verify_bundle(_export(day, tmp_path / "second.tar.gz")).problems
    assert len(problems) == 1
    assert problems[0].startswith("CHAIN alert_history: an export at ")
    assert "removed or rewritten since" in problems[0]


def test_pseudonymised_bundle_verifies_and_links(day: Day, tmp_path: Path) -> None:
    out = tmp_path / "p.tar.gz"
    build_bundle(
        day.store, Period(day.since, day.until), out, pseudonymise=True, now=day.until + 60
    )
    report = verify_bundle(out)
    assert report.ok, report.problems
    assert any("checked by their links only" in n for n in report.notes)
    top, files = unpack(out)
    lines = files["chain/alert_history.ndjson"].splitlines(keepends=True)
    del lines[7]
    files["chain/alert_history.ndjson"] = b"".join(lines)
    rehash(files)
    problems = verify_bundle(repack(top, files, tmp_path / "q.tar.gz")).problems
    assert "REMOVED" in problems[0]
    assert isinstance(Pseudonymiser(b"k").mac("aa:bb:cc:dd:ee:ff"), str)


def test_pseudonymised_flag_cannot_hide_an_edit(built: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = built
    top, files = unpack(bundle)
    rows = [json.loads(x) for x in files["chain/audit.ndjson"].splitlines()]
    rows[0]["actor"] = "someone else"
    rows[0]["pseudonymised"] = True
    files["chain/audit.ndjson"] = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    rehash(files)
    problems = verify_bundle(repack(top, files, tmp_path / "f.tar.gz")).problems
    assert problems == [
        "CHAIN audit: record seq 1 is marked pseudonymised in a bundle that is not, which would "
        "exempt it from the content check: ALTERED"
    ]


def test_exports_taken_while_the_core_writes_verify(day: Day, tmp_path: Path) -> None:
    """Another process keeps raising and acknowledging alerts during the exports: each bundle
    is one consistent snapshot, so none of them disagrees with its own chain."""
    import threading

    from scanner.store import alerts as alert_store

    stop = threading.Event()
    writer = Store(day.store.path)  # its own connection, as the core's process has

    def core() -> None:
        n = 0
        while not stop.is_set():
            ts = day.since + 100 + n
            alert_store.raise_alert(
                writer,
                alert_store.AlertRecord(
                    id=f"live-{n}",
                    kind="handset",
                    state="open",
                    title="Handset in zone",
                    raised_ts=ts,
                    updated_ts=ts,
                    confidence=0.9,
                    handsets=1,
                    sensors=["wifi"],
                    reasons=[],
                    device_ids=[],
                ),
            )
            stop.wait(0.002)
            alert_store.acknowledge_alert(writer, f"live-{n}", ts + 1, "guard1")
            n += 1
            stop.wait(0.002)

    thread = threading.Thread(target=core)
    thread.start()
    try:
        bundles = [_export(day, tmp_path / f"live{i}.tar.gz") for i in range(6)]
    finally:
        stop.set()
        thread.join()
        writer.close()
    counts = []
    for bundle in bundles:
        report = verify_bundle(bundle)
        assert report.ok, report.problems
        counts.append(json.loads(unpack(bundle)[1]["MANIFEST.json"])["counts"]["alerts"])
    assert counts[-1] > counts[0]  # the writer really was writing during the exports


def test_earlier_bundle_exposes_a_cut_back_of_both_chains(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _export(day, tmp_path / "first.tar.gz")
    # A careful forger removes the newest alert AND the audit record of the first export, so
    # the second bundle alone is self-consistent.
    with day.store.write() as conn:
        conn.execute("DELETE FROM alert_history WHERE alert_id = 'alert-014'")
        conn.execute("DELETE FROM alerts WHERE id = 'alert-014'")
        conn.execute("DELETE FROM audit WHERE action = 'export'")
    second = _export(day, tmp_path / "second.tar.gz")
    assert verify_bundle(second).ok
    assert main(["verify", str(second), "--previous", str(first)]) == 1
    out = capsys.readouterr().out
    assert "CHAIN alert_history: the earlier bundle first.tar.gz ended at seq" in out
    assert "records were removed or rewritten since" in out
    # An untouched store passes the same comparison.
    third = _export(day, tmp_path / "third.tar.gz")
    assert main(["verify", str(third), "--previous", str(second)]) == 0
