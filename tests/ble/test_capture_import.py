"""Importers of other tools' captures: btsnoop (H1/H4, legacy and extended reports), pcap and
pcapng with link types 272 (nRF Sniffer), 256 and 251, checked against our writers and against
tshark; bad-CRC packets counted and dropped."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from scanner.errors import RecordingError
from scanner.sources.ble.capture_import import parse_hci_event, parse_ll, read_capture
from scanner.sources.ble.inspect import inspect_file
from scanner.sources.ble.link_layer import crc24, parse_adv_pdu, parse_nordic
from tests.ble.capture_writers import (
    Adv,
    ble_crc,
    btsnoop,
    hci_extended_report,
    hci_legacy_report,
    ll_packet,
    nordic,
    pcap,
    pcapng,
    phdr,
)

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
    "nordic.pcapng": lambda: pcapng(ADVERTS, 272),
    "nordic.pcap": lambda: pcap(ADVERTS, 272),
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
        assert b.rssi_dbm == (None if name == "ll.pcap" else a.rssi)  # 251 carries no RSSI
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
                "nordic_ble.rssi" if name.startswith("nordic") else "btle_rf.signal_dbm",
                "btcommon.eir_ad.entry.company_id",
            ],
        )
    assert len(rows) == len(ours)
    for row, adv in zip(rows, ours, strict=True):
        ts, addr, rssi, company = row
        assert float(ts) == pytest.approx(adv.ts, abs=1e-6)
        assert addr.upper() == adv.address
        assert (int(rssi) if rssi else None) == adv.rssi_dbm
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


def test_crc_matches_the_spec_lfsr_and_a_real_nrf_sniffer_packet() -> None:
    # An iPhone's ADV_IND from an nRF Sniffer capture (header with ChSel set, as sent on air):
    # tshark shows its CRC as 0x8ee825, the LFSR state; on air it is the bytes 71 17 a4.
    pdu = bytes.fromhex("60172bb5a5d9344f02011a020a110aff4c0010050118d54c36")
    assert crc24(pdu).to_bytes(3, "little") == bytes.fromhex("7117a4")
    assert ble_crc(pdu) == bytes.fromhex("7117a4")
    for payload in (b"", b"\x00", bytes(range(40)), b"\xff" * 37):
        assert crc24(payload).to_bytes(3, "little") == ble_crc(payload)


A = ADVERTS[0]


def test_nordic_header_fields() -> None:
    counters: Counter[str] = Counter()
    split = parse_nordic(nordic(A, channel=39), counters)
    assert split is not None
    header, pkt = split
    assert (header.board, header.protocol, header.packet_counter) == (9, 3, 7)
    assert (header.channel, header.rssi_dbm, header.crc_ok, header.phy) == (39, -52, True, 0)
    assert pkt == ll_packet(A)
    assert parse_nordic(nordic(A, protocol=1), counters) is None
    assert counters["skipped_nordic_protocol"] == 1
    assert parse_nordic(nordic(A)[:16], counters) is None
    assert counters["malformed_nordic"] == 1


@pytest.mark.parametrize("linktype", [272, 256, 251])
def test_bad_crc_packets_are_counted_drops_never_adverts(linktype: int, tmp_path: Path) -> None:
    good = Adv(1764000000.5, "4C:11:22:33:44:55", True, -52, mfr={76: b"\x10\x05\x03\x1c"})
    # A one-bit error in the address: the phantom a sniffer without a CRC check would report.
    phantom = Adv(1764000000.6, "4C:11:22:33:44:54", True, -52, mfr={76: b"\x10\x05\x03\x1c"})
    if linktype == 272:
        frames = [nordic(good), nordic(phantom, crc_ok=False)]
        dropped = "crc_bad"
    elif linktype == 256:
        unchecked = 0x0001 | 0x0002 | 0x0010  # CRC not checked: we check it
        checked_bad = unchecked | 0x0400  # checked, CRC-valid clear
        frames = [
            phdr(good) + ll_packet(good),
            phdr(phantom, flags=checked_bad) + ll_packet(phantom),
            phdr(phantom, flags=unchecked) + ll_packet(phantom, bad_crc=True),
        ]
        dropped = ""
    else:
        frames = [ll_packet(good), ll_packet(phantom, bad_crc=True)]
        dropped = "crc_failed"
    body = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for i, f in enumerate(frames):
        body += struct.pack("<IIII", 1764000000 + i, 0, len(f), len(f)) + f
    path = tmp_path / "crc.pcap"
    path.write_bytes(bytes(body))
    counters: Counter[str] = Counter()
    got = list(read_capture(path, counters))
    assert [a.address for a in got] == [good.address]
    if dropped:
        assert counters[dropped] == 1
    else:
        assert (counters["crc_bad"], counters["crc_failed"]) == (1, 1)


def test_sniffer_verdict_is_trusted_over_a_rewritten_header() -> None:
    # Some nRF Sniffer firmware clears ChSel in the ADV_IND header it reports: the CRC no
    # longer matches the bytes, yet the sniffer verified it on air.
    pkt = bytearray(ll_packet(A, pdu_type=0x0))
    pkt[4] |= 0x20  # as sent: ChSel set
    pdu = bytes(pkt[4:-3])
    pkt[-3:] = ble_crc(pdu)
    pkt[4] &= ~0x20 & 0xFF  # as reported
    counters: Counter[str] = Counter()
    assert parse_ll(0.0, bytes(pkt), -40, counters, "ll", crc_verdict=True) is not None
    assert parse_ll(0.0, bytes(pkt), -40, counters, "ll", crc_verdict=None) is None
    assert counters["crc_failed"] == 1


def _ext_packet(flags: int, fields: bytes, adv_data: bytes) -> bytes:
    ext_header = bytes([flags]) + fields
    payload = bytes([len(ext_header)]) + ext_header + adv_data
    pdu = bytes([0x47, len(payload)]) + payload  # ADV_EXT_IND / AUX_ADV_IND, TxAdd random
    return struct.pack("<I", 0x8E89BED6) + pdu + ble_crc(pdu)


def test_extended_adverts_with_and_without_an_address() -> None:
    counters: Counter[str] = Counter()
    adva = bytes.fromhex("0504030201c4")
    aux_ptr = b"\x01\x02\x03"
    ad = bytes.fromhex("0aff4c0010050118d54c36")
    # AdvA, AuxPtr, TxPower -7 dBm, then AdvData.
    pdu = parse_adv_pdu(_ext_packet(0x01 | 0x10 | 0x40, adva + aux_ptr + b"\xf9", ad), counters)
    assert pdu is not None
    assert (pdu.address, pdu.random, pdu.data, pdu.tx_power) == (adva, True, ad, -7)
    adv = parse_ll(1.0, _ext_packet(0x01, adva, ad), -60, counters, "ll")
    assert adv is not None
    assert adv.address == "C4:01:02:03:04:05"
    assert adv.manufacturer_data == {76: bytes.fromhex("10050118d54c36")}
    # A primary-channel ADV_EXT_IND with only ADI and AuxPtr names nobody.
    assert parse_adv_pdu(_ext_packet(0x08 | 0x10, b"\x00\x10" + aux_ptr, b""), counters) is None
    assert counters["skipped_ext_no_adva"] == 1
    # An extended header announcing more fields than it holds.
    assert parse_adv_pdu(_ext_packet(0x01 | 0x20, adva, b""), counters) is None
    assert counters["malformed_ll"] == 1


@pytest.mark.parametrize(("raw", "want"), [(127, None), (-127, None), (-128, None), (-60, -60)])
def test_hci_report_rssi_not_available_is_unknown(raw: int, want: int | None) -> None:
    a = Adv(1764000000.5, "4C:11:22:33:44:55", True, raw, name="x")
    counters: Counter[str] = Counter()
    (legacy,) = parse_hci_event(a.ts, hci_legacy_report(a), counters)
    (extended,) = parse_hci_event(a.ts, hci_extended_report(a), counters)
    assert legacy.rssi_dbm == extended.rssi_dbm == want
