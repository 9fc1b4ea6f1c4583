"""A replayed scenario's alerts carry their evidence into the bundle, readable by other tools,
and the bundle's evidence is exactly what each alert's history chained."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.verify import verify_bundle
from scanner.sim.run import replay_fast
from scanner.sources.wifi.replay import read_frames
from scanner.store.db import Store

SCENARIO = Path(__file__).resolve().parents[2] / "scanner" / "demo" / "scenario"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The demo scenario replayed into a store, and its bundle unpacked: (db, bundle, dir)."""
    root = tmp_path_factory.mktemp("replayed")
    db = root / "checkpoint.db"
    store = Store(db)
    try:
        replay_fast(SCENARIO, store=store)
        first, last = store.query("SELECT MIN(raised_ts) AS a, MAX(resolved_ts) AS b FROM alerts")[
            0
        ]
        bundle = root / "bundle.tar.gz"
        build_bundle(store, Period(first - 600, last + 600), bundle, now=last + 700)
    finally:
        store.close()
    out = root / "unpacked"
    with tarfile.open(bundle) as tar:
        tar.extractall(out, filter="data")
    (top,) = list(out.iterdir())
    return db, bundle, top


def _alerts(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY raised_ts")]
    finally:
        conn.close()


def _device_macs(db: Path, device_ids: list[str]) -> tuple[set[str], set[str]]:
    conn = sqlite3.connect(db)
    try:
        macs: set[str] = set()
        ble: set[str] = set()
        for device_id in device_ids:
            row = conn.execute(
                "SELECT identifiers FROM devices WHERE id = ?", (device_id,)
            ).fetchone()
            if row is not None:
                ids = json.loads(row[0])
                macs.update(m.lower() for m in ids.get("macs", []))
                ble.update(a.upper() for a in ids.get("ble", []))
        return macs, ble
    finally:
        conn.close()


def test_every_alert_has_its_devices_evidence(replayed: tuple[Path, Path, Path]) -> None:
    db, _bundle, top = replayed
    alerts = _alerts(db)
    assert len(alerts) >= 3
    index = [json.loads(line) for line in (top / "evidence_index.ndjson").read_text().splitlines()]
    for alert in alerts:
        folder = top / "evidence" / str(alert["id"])
        assert folder.is_dir(), f"no evidence for {alert['id']}"
        device_ids = json.loads(str(alert["device_ids"]))
        macs, addresses = _device_macs(db, device_ids)
        sensors = json.loads(str(alert["sensors"]))
        pcap = folder / "wifi.pcap"
        if macs:
            frames = list(read_frames(pcap))
            assert frames and {f.mac for f in frames} <= macs
        jsonl = folder / "ble.jsonl"
        if addresses:
            lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
            assert lines and {x["address"].upper() for x in lines} <= addresses
        if "sdr" in sensors:
            assert list(folder.glob("sdr-*.sigmf-meta"))
        # The evidence starts before the alert was raised (the pre-roll) and ends by its end.
        mine = [e for e in index if e["alert_id"] == alert["id"] and e["file"]]
        assert mine
        assert min(e["first_ts"] for e in mine) < float(alert["raised_ts"])  # type: ignore[arg-type]
        assert max(e["last_ts"] for e in mine) <= float(alert["resolved_ts"]) + 1.0  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_pcap_and_its_senders_are_the_alerts_devices(
    replayed: tuple[Path, Path, Path],
) -> None:
    db, _bundle, top = replayed
    checked = 0
    for alert in _alerts(db):
        pcap = top / "evidence" / str(alert["id"]) / "wifi.pcap"
        if not pcap.exists():
            continue
        out = subprocess.run(
            [
                "tshark",
                "-r",
                str(pcap),
                "-T",
                "fields",
                "-e",
                "wlan.sa",
                "-e",
                "radiotap.dbm_antsignal",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split("\n")
        senders = {line.split("\t")[0] for line in out if line}
        macs, _ = _device_macs(db, json.loads(str(alert["device_ids"])))
        assert senders and senders <= macs
        checked += 1
    assert checked >= 2


def test_inspect_reads_the_ble_and_iq_evidence(
    replayed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _bundle, top = replayed
    alert = next(a for a in _alerts(db) if "sdr" in json.loads(str(a["sensors"])))
    folder = top / "evidence" / str(alert["id"])
    ble = folder / "ble.jsonl"
    if ble.exists():
        assert main(["inspect", "ble", str(ble)]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert len(lines) == len(ble.read_text().splitlines())
        assert all(x["kind"] == "handset" for x in lines)
    meta = sorted(folder.glob("sdr-*.sigmf-meta"))[0]
    assert main(["inspect", "sdr", str(meta)]) == 0
    bursts = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(bursts) >= 1 and all(b["band"] for b in bursts)


def test_the_bundle_verifies_and_names_altered_evidence(
    replayed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    db, bundle, _top = replayed
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert any("items match the digests" in n for n in report.notes)
    # One evidence frame altered in the store: the next bundle no longer matches the digest
    # the alert's history chained when its capture ended.
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    conn = sqlite3.connect(copy)
    with conn:
        row = conn.execute(
            "SELECT id, alert_id, payload FROM evidence WHERE radio = 'wifi' ORDER BY id LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE evidence SET payload = ? WHERE id = ?", (row[2] + b"\x00", row[0]))
    conn.close()
    store = Store(copy)
    try:
        first = float(store.query("SELECT MIN(raised_ts) AS a FROM alerts")[0]["a"])
        out = tmp_path / "altered.tar.gz"
        build_bundle(store, Period(first - 600, first + 3600), out, now=first + 3700)
    finally:
        store.close()
    report = verify_bundle(out)
    assert not report.ok
    assert any(p.startswith(f"EVIDENCE: alert {row[1]} wifi") for p in report.problems)
