"""The hot parser on hand-built frames: every field, every skip reason, damage counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from scanner.observations import WifiFrame
from scanner.sources.wifi import build
from scanner.sources.wifi.dot11 import clear_caches, parse_frame
from scanner.sources.wifi.replay import read_frames

MAC = "da:a1:19:00:11:22"
AP = "00:11:22:33:44:55"
BODY = build.probe_request_body("café")


@pytest.fixture(autouse=True)
def _cold_caches() -> None:
    clear_caches()


def _parse(frame: bytes, linktype: int = 127) -> tuple[WifiFrame | None, Counter[str]]:
    counters: Counter[str] = Counter()
    return parse_frame(frame, linktype, 10.5, 3.0, counters), counters


def test_probe_request_fields() -> None:
    frame = build.radiotap(rssi_dbm=-71, freq_mhz=2462) + build.probe_request(MAC, 1234, BODY)
    parsed, counters = _parse(frame)
    assert parsed is not None
    assert (parsed.ts, parsed.mono, parsed.subtype) == (10.5, 3.0, "probe_req")
    assert (parsed.mac, parsed.random_mac, parsed.seq) == (MAC, True, 1234)
    assert (parsed.rssi_dbm, parsed.freq_mhz, parsed.ssid) == (-71, 2462, "café")
    assert len(parsed.fingerprint) == 16
    int(parsed.fingerprint, 16)
    assert parsed.bssid is None
    assert not counters


def test_wildcard_absent_and_invalid_ssid() -> None:
    rt = build.radiotap()
    wildcard, _ = _parse(rt + build.probe_request(MAC, 1, build.probe_request_body("")))
    absent, _ = _parse(rt + build.probe_request(MAC, 1, build.probe_request_body(None)))
    bad, _ = _parse(rt + build.probe_request(MAC, 1, build.probe_request_body(b"ab\xffc")))
    assert wildcard is not None and absent is not None and bad is not None
    assert wildcard.ssid == ""
    assert absent.ssid is None
    assert bad.ssid == "ab\ufffdc"


def test_fingerprint_ignores_ssid_mac_channel_seq_but_not_capabilities() -> None:
    def fp(mac: str, seq: int, body: bytes) -> str:
        parsed, _ = _parse(build.radiotap() + build.probe_request(mac, seq, body))
        assert parsed is not None
        return parsed.fingerprint

    base = fp(MAC, 1, build.probe_request_body("", channel=1))
    assert fp("12:34:56:78:9a:bc", 999, build.probe_request_body("home", channel=11)) == base
    assert fp(MAC, 1, build.probe_request_body("", ht_caps=bytes(26))) != base
    assert fp(MAC, 1, build.probe_request_body("", ext_caps=None)) != base
    assert fp(MAC, 1, build.probe_request_body("", vendor=[b"\x00\x50\xf2\x08\x00"])) != base
    # Vendor payload beyond OUI + type may change per probe; it does not change the fingerprint.
    one = fp(MAC, 1, build.probe_request_body("", vendor=[b"\x00\x50\xf2\x04\x10\x4a"]))
    two = fp(MAC, 1, build.probe_request_body("", vendor=[b"\x00\x50\xf2\x04\x99\x99\x01"]))
    assert one == two


def test_fcs_stripped_and_bad_fcs_dropped() -> None:
    frame = build.probe_request(MAC, 5, build.probe_request_body("x"))
    ok, counters = _parse(build.radiotap(fcs=True) + build.with_fcs(frame))
    assert ok is not None and ok.ssid == "x" and not counters
    bad, counters = _parse(build.radiotap(bad_fcs=True) + build.with_fcs(frame))
    assert bad is None and counters["bad_fcs"] == 1


def test_extended_bitmaps_first_antenna_signal_wins() -> None:
    frame = build.radiotap(rssi_dbm=-50, tsft=123456789, antennas=(-48, -55)) + (
        build.probe_request(MAC, 7, BODY)
    )
    parsed, counters = _parse(frame)
    assert parsed is not None and parsed.rssi_dbm == -50
    assert parsed.freq_mhz == 2437 and not counters


def test_vendor_namespace_skipped() -> None:
    # present: flags, channel, dBm signal, vendor namespace next, ext; then a vendor bitmap.
    present0 = (1 << 1) | (1 << 3) | (1 << 5) | (1 << 30) | (1 << 31)
    present1 = 0x00000001  # vendor-defined bit, unknown to us
    fields = bytes([0x00, 0x00]) + (2412).to_bytes(2, "little") + b"\xa0\x00" + bytes([0xC4])
    fields += b"\x00"  # align 2 for the vendor namespace header
    fields += b"\x00\x11\x22" + b"\x01" + (3).to_bytes(2, "little") + b"\xaa\xbb\xcc"
    header_len = 12 + len(fields)
    header = bytes([0, 0]) + header_len.to_bytes(2, "little")
    header += present0.to_bytes(4, "little") + present1.to_bytes(4, "little")
    parsed, counters = _parse(header + fields + build.probe_request(MAC, 7, BODY))
    assert parsed is not None and not counters
    assert (parsed.rssi_dbm, parsed.freq_mhz) == (-60, 2412)


@pytest.mark.parametrize(
    ("subtype", "name"), [(0, "data"), (4, "null"), (8, "qos_data"), (12, "qos_null")]
)
def test_data_frames_from_stations(subtype: int, name: str) -> None:
    frame = build.radiotap(rssi_dbm=-33) + build.data_frame(MAC, AP, 4095, subtype=subtype)
    parsed, _ = _parse(frame)
    assert parsed is not None
    assert (parsed.subtype, parsed.mac, parsed.bssid, parsed.seq) == (
        name,
        MAC,
        AP,
        4095,
    )
    assert parsed.fingerprint == "" and parsed.ssid is None


def test_frames_not_from_stations_are_counted() -> None:
    from_ap, c1 = _parse(build.radiotap() + build.data_frame(MAC, AP, 1, to_ds=False, from_ds=True))
    wds, c2 = _parse(build.radiotap() + build.data_frame(MAC, AP, 1, from_ds=True))
    beacon = bytearray(build.probe_request(MAC, 1, BODY))
    beacon[0] = 0x80
    bcn, c3 = _parse(build.radiotap() + bytes(beacon))
    ack, c4 = _parse(build.radiotap() + b"\xd4\x00\x00\x00" + bytes(6))
    assert (from_ap, wds, bcn, ack) == (None, None, None, None)
    assert c1["skipped_data_not_to_ds"] == 1
    assert c2["wds"] == 1
    assert c3["skipped_mgmt"] == 1
    assert c4["skipped_ctrl"] == 1


def test_plain_80211_link_type() -> None:
    parsed, counters = _parse(build.probe_request(MAC, 9, BODY), linktype=105)
    assert parsed is not None and not counters
    assert (parsed.rssi_dbm, parsed.freq_mhz, parsed.seq) == (None, None, 9)


def test_unsupported_link_type_counted() -> None:
    parsed, counters = _parse(build.probe_request(MAC, 9, BODY), linktype=119)
    assert parsed is None and counters["unsupported_linktype"] == 1


def test_truncated_frames_counted_never_raised() -> None:
    frame = build.radiotap(tsft=1) + build.probe_request(MAC, 3, BODY)
    counters: Counter[str] = Counter()
    results = [parse_frame(frame[:n], 127, 0.0, 0.0, counters) for n in range(len(frame))]
    header_len = len(build.radiotap(tsft=1))
    assert all(r is None for r in results[: header_len + 24])
    # From the end of the 802.11 header on, the frame is kept and the cut element is counted.
    kept = [r for r in results if r is not None]
    assert kept and all(r.mac == MAC for r in kept)
    assert counters["ie_truncated"] + counters["ie_trailing_byte"] > 0
    assert counters["radiotap_short"] + counters["radiotap_malformed"] > 0
    assert counters["dot11_short"] > 0


def test_radiotap_length_past_frame() -> None:
    frame = bytearray(build.radiotap() + build.probe_request(MAC, 3, BODY))
    frame[2] = 0xF0
    parsed, counters = _parse(bytes(frame))
    assert parsed is None and counters["radiotap_malformed"] == 1


def test_n02_link_type_105_capture(shared_data: Path) -> None:
    counters: Counter[str] = Counter()
    frames = list(read_frames(shared_data / "wifi" / "aircrack" / "n-02.cap", counters))
    probes = [f for f in frames if f.subtype == "probe_req"]
    data = [f for f in frames if f.subtype != "probe_req"]
    assert len(probes) == 9  # the README of the data says 9 probe requests
    assert data and all(f.bssid is not None for f in data)
    assert all(f.rssi_dbm is None and f.freq_mhz is None for f in frames)
    assert counters["records"] == 218


def test_wds_capture_four_address_frames_counted(shared_data: Path) -> None:
    counters: Counter[str] = Counter()
    list(read_frames(shared_data / "wifi" / "aircrack" / "capture_wds-01.cap", counters))
    assert counters["wds"] > 0


def test_records_are_real_frozen_wifi_frames() -> None:
    import dataclasses

    from scanner.observations import WifiFrame
    from scanner.sources.wifi import dot11

    # The hot path builds records without WifiFrame.__init__; if WifiFrame's fields change, the
    # fast path switches itself off. This test says so, so the field list gets updated.
    assert dot11.FAST_CONSTRUCT, "update dot11._FRAME_FIELDS to WifiFrame's fields"
    parsed, _ = _parse(build.radiotap() + build.probe_request(MAC, 1, BODY))
    assert type(parsed) is WifiFrame
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.seq = 2  # type: ignore[misc]  # the frozen record refuses it: what is tested
    assert parsed == WifiFrame(
        10.5, 3.0, "probe_req", MAC, True, -60, 2437, "café", 1, parsed.fingerprint, None, None
    )
    assert hash(parsed) == hash(dataclasses.replace(parsed))


def test_ordinary_constructor_path_gives_the_same_records(monkeypatch: pytest.MonkeyPatch) -> None:
    # The path taken if WifiFrame's fields ever change: slower, same result.
    from scanner.sources.wifi import dot11

    frames = [
        build.radiotap() + build.probe_request(MAC, 1, BODY),
        build.radiotap() + build.data_frame(MAC, AP, 2),
    ]
    fast = [_parse(f)[0] for f in frames]
    monkeypatch.setattr(dot11, "FAST_CONSTRUCT", False)
    slow = [_parse(f)[0] for f in frames]
    assert fast == slow and all(s is not None for s in slow)


def _header(present: int, fields: bytes) -> bytes:
    return (
        bytes([0, 0])
        + (8 + len(fields)).to_bytes(2, "little")
        + present.to_bytes(4, "little")
        + fields
    )


def test_xchannel_stands_in_for_channel() -> None:
    # present: flags (1), dBm signal (5), XChannel (18): u32 flags, u16 freq, u8 chan, u8 power.
    fields = bytes([0x00, 0xC9]) + b"\x00\x00" + (0x140).to_bytes(4, "little")
    fields += (5745).to_bytes(2, "little") + bytes([149, 20])
    parsed, counters = _parse(
        _header((1 << 1) | (1 << 5) | (1 << 18), fields) + build.probe_request(MAC, 3, BODY)
    )
    assert parsed is not None and not counters
    assert (parsed.rssi_dbm, parsed.freq_mhz) == (-55, 5745)


def test_tlv_section_ends_the_walk() -> None:
    # present: flags, dBm signal, TLV (28); TLVs (4-aligned) run to the end of the header.
    fields = bytes([0x00, 0xBA]) + b"\x00\x00" + b"\x11\x00\x04\x00\xde\xad\xbe\xef"
    parsed, counters = _parse(
        _header((1 << 1) | (1 << 5) | (1 << 28), fields) + build.probe_request(MAC, 3, BODY)
    )
    assert parsed is not None and not counters
    assert (parsed.rssi_dbm, parsed.freq_mhz, parsed.seq) == (-70, None, 3)


def test_radiotap_field_past_header_is_malformed() -> None:
    # Says TSFT (8 bytes) is present but the header ends after 4 field bytes.
    parsed, counters = _parse(_header(1 << 0, b"\x00" * 4) + build.probe_request(MAC, 3, BODY))
    assert parsed is None and counters["radiotap_malformed"] == 1
