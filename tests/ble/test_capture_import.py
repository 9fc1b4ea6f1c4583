"""Importers of other tools' captures: btsnoop (H1/H4, legacy and extended reports), pcap and
pcapng with link types 256 and 251, checked against our writers and against tshark."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ble.capture_writers import Adv, btsnoop, hci_extended_report, pcap, pcapng
from scanner.errors import RecordingError
from scanner.sources.ble.capture_import import parse_hci_event, read_capture
from scanner.sources.ble.inspect import inspect_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ble"

ADVERTS = [
    Adv(1764000000.5, "4C:11:22:33:44:55", True, -52, mfr={76: bytes.fromhex("1005031c5a0b2e")}),
    Adv(
        1764000001.25,
        "00:1A:7D:DA:71:13",
        False,
        -70,
        svc16={0xFE2C: bytes.fromhex("2c3f9c")},
        uuids16=[0xFE2C],
        name="Pixel Buds",
        tx_power=-8,
    ),
    Adv(
        1764000002.0,
        "C7:00:11:22:33:44",
        True,
        -81,
        mfr={76: bytes.fromhex("121910" + "57364dc7fb77866c40c91076603cb37c1f59f923ab3a" + "0300")},
    ),
    Adv(
        1764000003.75,
        "5D:01:02:03:04:05",
        True,
        -64,
        mfr={6: bytes.fromhex("0109200214a1b2c3" + "00" * 16)},
    ),
]

FORMATS = {
    "h4.btsnoop": lambda: btsnoop(ADVERTS),
    "h4_extended.btsnoop": lambda: btsnoop(ADVERTS, extended=True),
    "h1.btsnoop": lambda: btsnoop(ADVERTS, h1=True),
    "ll_phdr.pcap": lambda: pcap(ADVERTS, 256),
    "ll.pcap": lambda: pcap(ADVERTS, 251),
    "ll_phdr.pcapng": lambda: pcapng(ADVERTS, 256),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_importer_reads_what_was_written(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(FORMATS[name]())
    counters: Counter[str] = Counter()
    got = list(read_capture(path, counters))
    assert len(got) == len(ADVERTS)
    for a, b in zip(ADVERTS, got, strict=True):
        assert b.ts == pytest.approx(a.ts, abs=1e-6)
        assert b.mono == b.ts
        assert b.address == a.address
        assert b.address_type == ("random" if a.random else "public")
        assert b.rssi == (None if name == "ll.pcap" else a.rssi)  # 251 carries no RSSI
        assert b.manufacturer_data == a.mfr
        assert b.service_data == {
            f"0000{u:04x}-0000-1000-8000-00805f9b34fb": d for u, d in a.svc16.items()
        }
        assert b.local_name == a.name
        assert b.tx_power == a.tx_power
    assert counters["records"] == len(ADVERTS)


def _tshark(path: Path, fields: list[str]) -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed")
    cmd = [exe, "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.parametrize("name", list(FORMATS))
def test_importer_agrees_with_tshark(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(FORMATS[name]())
    ours = list(read_capture(path, Counter()))
    if name.endswith("btsnoop"):
        rows = _tshark(
            path,
            [
                "frame.time_epoch",
                "bthci_evt.bd_addr",
                "bthci_evt.rssi",
                "btcommon.eir_ad.entry.company_id",
            ],
        )
    else:
        rows = _tshark(
            path,
            [
                "frame.time_epoch",
                "btle.advertising_address",
                "btle_rf.signal_dbm",
                "btcommon.eir_ad.entry.company_id",
            ],
        )
    assert len(rows) == len(ours)
    for row, adv in zip(rows, ours, strict=True):
        ts, addr, rssi, company = row
        assert float(ts) == pytest.approx(adv.ts, abs=1e-6)
        assert addr.upper() == adv.address
        assert (int(rssi) if rssi else None) == adv.rssi
        expected = next(iter(adv.manufacturer_data), None)
        assert (int(company, 16) if company else None) == expected


def test_truncated_file_reads_to_its_last_whole_record(tmp_path: Path) -> None:
    data = btsnoop(ADVERTS)
    path = tmp_path / "cut.btsnoop"
    path.write_bytes(data[:-5])
    counters: Counter[str] = Counter()
    got = list(read_capture(path, counters))
    assert len(got) == len(ADVERTS) - 1
    assert counters["truncated"] == 1


def test_broken_ad_structure_and_other_events_are_counted(tmp_path: Path) -> None:
    bad = Adv(1764000009.0, "4C:00:00:00:00:09", True, -40, mfr={76: b"\x10\x05\x03"})
    data = bytearray(
        btsnoop(
            [bad],
            extra=[
                # Command Complete event (not an advert) and an LE meta event of another subevent
                (1764000010.0, bytes([0x0E, 0x04, 0x01, 0x0C, 0x20, 0x00])),
                (1764000011.0, bytes([0x3E, 0x02, 0x01, 0x00])),
            ],
        )
    )
    # Corrupt the AD length of the manufacturer structure so it runs past the report.
    idx = data.index(bytes([6, 0xFF, 0x4C, 0x00]))
    data[idx] = 0x30
    path = tmp_path / "bad.btsnoop"
    path.write_bytes(bytes(data))
    counters: Counter[str] = Counter()
    assert list(read_capture(path, counters)) == []
    assert counters["malformed_ad"] == 1
    assert counters["skipped_hci"] == 2


def test_unsupported_link_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wifi.pcap"
    path.write_bytes(pcap([], linktype=127))
    with pytest.raises(RecordingError, match="link type 127"):
        list(read_capture(path, Counter()))


def test_golden_btsnoop_fixture_through_inspect() -> None:
    """tests/fixtures/ble/sample_h4.btsnoop: written once by capture_writers from ADVERTS."""
    path = FIXTURES / "sample_h4.btsnoop"
    assert path.read_bytes() == btsnoop(ADVERTS), "fixture differs from its generator"
    out = io.StringIO()
    counters = inspect_file(path, out)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["kind"] for r in rows] == ["handset", "audio", "tag", "computer"]
    assert [r["rssi_dbm"] for r in rows] == [-52, -70, -81, -64]
    assert counters["format_btsnoop"] == 1


@pytest.mark.parametrize(
    ("ad_tx", "header_tx", "want"), [(None, -4, -4), (-8, -4, -8), (None, None, None)]
)
def test_extended_report_tx_power_from_header_unless_the_data_names_one(
    ad_tx: int | None, header_tx: int | None, want: int | None
) -> None:
    a = Adv(1764000000.5, "4C:11:22:33:44:55", True, -52, name="x", tx_power=ad_tx)
    event = bytearray(hci_extended_report(a))
    # TX_Power sits after Event_Type(2), Address_Type, Address(6), the two PHYs and the SID;
    # 127 means the controller did not give one.
    event[2 + 2 + 12] = 127 if header_tx is None else header_tx & 0xFF
    counters: Counter[str] = Counter()
    (got,) = parse_hci_event(a.ts, bytes(event), counters)
    assert got.tx_power == want
