"""What the bundle carries: typed tables, evidence in other tools' formats, pseudonyms."""

from __future__ import annotations

import csv
import io
import json
import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from scanner.cli.main import main
from scanner.export import tables
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.timefmt import TimeFormatError, iso, parse_time

from .bundle_tools import unpack
from .conftest import DAY_START, HOUR, Day


def _bundle(day: Day, tmp_path: Path, **kw: object) -> dict[str, bytes]:
    out = tmp_path / "b.tar.gz"
    # The tests pass build_bundle's own keyword options through, each of its type.
    build_bundle(day.store, Period(day.since, day.until), out, now=day.until + 60, **kw)  # type: ignore[arg-type]
    return unpack(out)[1]


def _check_cell(kind: str, cell: str) -> object:
    if cell == "":
        return None
    if kind == "int":
        return int(cell)
    if kind in ("float", "time"):
        return float(cell)
    if kind == "bool":
        assert cell in ("true", "false"), cell
        return cell == "true"
    if kind == "json":
        return json.loads(cell)
    return cell


def test_every_csv_parses_with_its_declared_types(day: Day, tmp_path: Path) -> None:
    files = _bundle(day, tmp_path)
    for table in tables.ALL_TABLES:
        text = files[f"{table.name}.csv"].decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == table.header(), table.name
        ndjson = [json.loads(x) for x in files[f"{table.name}.ndjson"].splitlines()]
        assert len(rows) - 1 == len(ndjson), table.name
        header = rows[0]
        for raw, obj in zip(rows[1:], ndjson, strict=True):
            cells = dict(zip(header, raw, strict=True))
            for col in table.columns:
                value = _check_cell(col.kind, cells[col.name])
                if col.kind in ("int", "float", "time") and value is not None:
                    assert value == obj[col.name], (table.name, col.name)
                    # Numbers are bare in the CSV text, so a spreadsheet types them as numbers.
                    assert f'"{cells[col.name]}"' not in text
                if col.kind == "time" and value is not None:
                    parsed = datetime.fromisoformat(cells[f"{col.name}_iso"].replace("Z", "+00:00"))
                    # A time column's checked cell is a number, which _check_cell types object.
                    assert abs(parsed.timestamp() - float(value)) < 0.001  # type: ignore[arg-type]
    alerts = list(csv.DictReader(io.StringIO(files["alerts.csv"].decode())))
    assert [a["id"] for a in alerts] == day.alert_ids
    assert all(int(a["handsets"]) in (1, 2) for a in alerts)
    assert alerts[0]["sensors"] == "wifi;ble;sdr"
    assert sum(1 for a in alerts if a["acked_by"]) == 13
    assert sum(1 for a in alerts if a["state"] == "open") == 2


def test_bundle_answers_the_review_questions(day: Day, tmp_path: Path) -> None:
    files = _bundle(day, tmp_path)
    history = [json.loads(x) for x in files["alert_history.ndjson"].splitlines()]
    assert {h["event"] for h in history} == {"raised", "updated", "acknowledged", "resolved"}
    acks = [json.loads(x) for x in files["acknowledgements.ndjson"].splitlines()]
    assert len(acks) == 13 and all(0 < a["time_to_ack_s"] < 120 for a in acks)
    sightings = [json.loads(x) for x in files["sightings.ndjson"].splitlines()]
    # Only the handsets behind alerts, each linked to its alert; no passer-by.
    assert sightings and all(
        s["device_id"].startswith("dev-") and s["alert_ids"] for s in sightings
    )
    outages = [json.loads(x) for x in files["outages.ndjson"].splitlines()]
    assert [(o["sensor"], o["state"], round(o["duration_s"] / 60)) for o in outages] == [
        ("ble", "fault", 30),
        ("sdr", "degraded", 24),
        ("wifi", "stopped", 6),
    ]
    allow = [json.loads(x) for x in files["allowlist.ndjson"].splitlines()]
    assert [a["label"] for a in allow] == ["duty officer phone", "guard radio"]
    config = json.loads(files["config.json"])
    assert "site_key" not in json.dumps(config) and config["settings"]["allowlist_version"] == 1
    manifest = json.loads(files["MANIFEST.json"])
    assert set(manifest["files"]) == set(files) - {"MANIFEST.json"}
    assert manifest["chains"]["alert_history"]["rows"] == len(
        files["chain/alert_history.ndjson"].splitlines()
    )
    html = files["report.html"].decode()
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_evidence_opens_in_other_tools(day: Day, tmp_path: Path) -> None:
    files = _bundle(day, tmp_path)
    pcap = files["evidence/alert-001/wifi.pcap"]
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", pcap)
    assert (magic, linktype) == (0xA1B2C3D4, 127)
    scapy_all = pytest.importorskip("scapy.all")
    path = tmp_path / "ev.pcap"
    path.write_bytes(pcap)
    packets = scapy_all.rdpcap(str(path))
    assert len(packets) == 6
    assert {p[scapy_all.Dot11].addr2 for p in packets} == {day.macs[0]}
    assert [p[scapy_all.RadioTap].dBm_AntSignal for p in packets] == [-45, -46, -47, -48, -49, -50]
    adverts = [json.loads(x) for x in files["evidence/alert-001/ble.jsonl"].splitlines()]
    assert len(adverts) == 6 and {a["address"] for a in adverts} == {day.ble_addresses[0]}
    # alert-001 kept its IQ as a path, alert-002... as an archive: both come out as SigMF pairs.
    metas = sorted(n for n in files if n.endswith(".sigmf-meta"))
    assert len(metas) == 5
    for meta_name in metas:
        meta = json.loads(files[meta_name])
        assert meta["global"]["core:datatype"] == "cf32_le"
        iq = np.frombuffer(files[meta_name.replace("-meta", "-data")], dtype=np.complex64)
        assert iq.size == 4096 and float(np.abs(iq[1000:1600]).mean()) > 0.4


def test_pseudonymised_bundle_hides_addresses_consistently(day: Day, tmp_path: Path) -> None:
    files = _bundle(day, tmp_path, pseudonymise=True)
    blob = b"".join(files.values()).lower()
    for mac in day.macs + day.ble_addresses:
        assert mac.lower().encode() not in blob
        assert bytes.fromhex(mac.replace(":", "")) not in blob  # not even in the pcap frames
    alerts = [json.loads(x) for x in files["alerts.ndjson"].splitlines()]
    pseudo = alerts[0]["reasons"][0].split()[3]
    assert pseudo != day.macs[0] and int(pseudo.split(":")[0], 16) & 0x02
    sightings = [json.loads(x) for x in files["sightings.ndjson"].splitlines()]
    assert pseudo in {s["identifier"] for s in sightings}
    scapy_all = pytest.importorskip("scapy.all")
    path = tmp_path / "ev.pcap"
    path.write_bytes(files["evidence/alert-001/wifi.pcap"])
    assert {p[scapy_all.Dot11].addr2 for p in scapy_all.rdpcap(str(path))} == {pseudo}
    # The site key is made once: a second export uses the same pseudonyms.
    again = _bundle(day, tmp_path, pseudonymise=True)
    assert json.loads(again["alerts.ndjson"].splitlines()[0])["reasons"][0].split()[3] == pseudo


def test_cli_export_verify_and_report(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = day.store.path
    out = tmp_path / "cli.tar.gz"
    assert (
        main(
            [
                "export",
                "--db",
                db,
                "--since",
                "2025-11-25T08:00:00Z",
                "--until",
                str(day.until),
                "--out",
                str(out),
                "--config",
                "/nonexistent",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "14 alerts" in said and "alert_history chain head: seq" in said
    assert main(["verify", str(out), "--db", db]) == 0
    html = tmp_path / "r.html"
    assert (
        main(
            [
                "report",
                "--db",
                db,
                "--since",
                "2025-11-25 12:00",
                "--until",
                str(DAY_START + 16 * HOUR),
                "--out",
                str(html),
                "--config",
                "/x",
            ]
        )
        == 0
    )
    text = html.read_text()
    assert "alert-006" in text and "alert-004" not in text  # only alerts from 12:00 on
    assert (
        main(["export", "--db", db, "--since", "tomorrow", "--until", "1", "--out", str(out)]) == 2
    )
    assert "not a time" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                "--db",
                str(tmp_path / "none.db"),
                "--since",
                "0",
                "--until",
                "1",
                "--out",
                str(html),
            ]
        )
        == 2
    )


def test_time_parsing() -> None:
    assert parse_time("1764057600") == DAY_START
    assert parse_time("2025-11-25T08:00:00Z") == DAY_START
    assert parse_time("2025-11-25T09:00:00+01:00") == DAY_START
    assert parse_time("2025-11-25 08:00") == DAY_START
    assert iso(DAY_START + 0.25) == "2025-11-25T08:00:00.250Z"
    for bad in ("", "nan", "the day before", "2025-13-01", "1e300", "-5", "1969-12-31T00:00Z"):
        with pytest.raises(TimeFormatError):
            parse_time(bad)


def test_bad_evidence_is_listed_not_fatal_and_empty_period_exports(
    day: Day, tmp_path: Path
) -> None:
    with day.store.write() as conn:
        for fmt, payload in (
            ("ble_advert", b"\xff not json"),
            ("sigmf", b"/nowhere/iq"),
            ("mystery", b"?"),
        ):
            conn.execute(
                "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
                "VALUES ('alert-002', 'dev-1', 'ble', ?, ?, ?)",
                (day.since + 7200, fmt, payload),
            )
    files = _bundle(day, tmp_path)
    index = [json.loads(x) for x in files["evidence_index.ndjson"].splitlines()]
    notes = [e["note"] for e in index if e["alert_id"] == "alert-002" and not e["file"]]
    assert len(notes) == 3
    assert any("not JSON" in n for n in notes) and any("unreadable" in n for n in notes)
    assert any("unknown format 'mystery'" in n for n in notes)
    empty = tmp_path / "empty.tar.gz"
    build_bundle(day.store, Period(day.since - 2 * 86400, day.since - 86400), empty)
    _top, quiet = unpack(empty)
    assert quiet["alerts.ndjson"] == b"" and quiet["alerts.csv"].count(b"\r\n") == 1
    from scanner.export.verify import verify_bundle

    assert verify_bundle(empty).ok


def test_real_sigmf_capture_travels_as_evidence(
    day: Day, tmp_path: Path, shared_data: Path
) -> None:
    base = shared_data / "sdr" / "gsm-uplink" / "gsm-uplink-4bursts"
    with day.store.write() as conn:
        conn.execute(
            "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
            "VALUES ('alert-003', 'dev-2', 'sdr', ?, 'sigmf', ?)",
            (day.since + 3 * HOUR, str(base) + ".sigmf-meta"),
        )
    files = _bundle(day, tmp_path)
    name = next(n for n in files if n.startswith("evidence/alert-003/") and n.endswith("-meta"))
    assert files[name] == base.with_suffix(".sigmf-meta").read_bytes()
    assert files[name.replace("-meta", "-data")] == base.with_suffix(".sigmf-data").read_bytes()
    sigmffile = pytest.importorskip("sigmf.sigmffile")
    (tmp_path / "x.sigmf-meta").write_bytes(files[name])
    (tmp_path / "x.sigmf-data").write_bytes(files[name.replace("-meta", "-data")])
    recording = sigmffile.fromfile(str(tmp_path / "x.sigmf-meta"))
    assert recording.read_samples().size > 0


def test_export_from_config_carries_it_with_secrets_redacted(day: Day, tmp_path: Path) -> None:
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        f'[site]\nname = "north gate"\n[store]\npath = "{day.store.path}"\nbudget_mb = 50\n'
        '[api]\nsecret_key = "do-not-leak"\nport = 8080\n'
    )
    out = tmp_path / "c.tar.gz"
    assert (
        main(
            [
                "export",
                "--config",
                str(config),
                "--since",
                str(day.since),
                "--until",
                str(day.until),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    files = unpack(out)[1]
    doc = json.loads(files["config.json"])
    assert doc["config"]["api"] == {"secret_key": "<redacted>", "port": 8080}
    assert doc["config"]["store"]["budget_mb"] == 50
    assert b"do-not-leak" not in b"".join(files.values())
    assert "north gate" in files["report.html"].decode()
    assert (
        main(
            [
                "export",
                "--config",
                str(tmp_path / "missing.toml"),
                "--since",
                "0",
                "--until",
                "1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
