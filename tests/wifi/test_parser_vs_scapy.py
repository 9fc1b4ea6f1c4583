"""Differential test: our parser against scapy's dissector and tshark, frame by frame.

Every capture under ../shared/data/wifi/ (all folders) is read record by record. For each record
scapy decides independently whether the scanner should use it (probe request, or data/null/QoS
frame with ToDS=1 FromDS=0, intact header, FCS not flagged bad), and for the frames we keep,
every field is compared with scapy's (RadioTap/Dot11/Dot11Elt) and with tshark's ``-T fields``.
Synthetic frames with fuzzed lengths and truncations must never raise and must agree with scapy
where scapy parses them. The Brno lab CSVs (exported by their authors from the same pcaps) give
a third opinion on rssi, seq_num, ch_freq and src.
"""

from __future__ import annotations

import csv
import random
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from scanner.errors import RecordingError
from scanner.sources.wifi import build
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.pcapfile import read_records

scapy_dot11 = pytest.importorskip("scapy.layers.dot11")
RadioTap = scapy_dot11.RadioTap
Dot11 = scapy_dot11.Dot11
Dot11Elt = scapy_dot11.Dot11Elt

DATA_SUBTYPES = {0: "data", 4: "null", 8: "qos_data", 12: "qos_null"}
TSHARK_FIELDS = [
    "frame.number",
    "wlan.ta",
    "wlan.sa",
    "wlan.seq",
    "radiotap.dbm_antsignal",
    "radiotap.channel.freq",
    "wlan.ssid",
]
FUZZ_SEED = 20251125
_SEED_SHOWN: list[int] = []


def _captures(root: Path) -> list[Path]:
    return sorted(p for p in (root / "wifi").rglob("*") if p.suffix in (".pcap", ".cap", ".pcapng"))


def _scapy_expect(data: bytes, linktype: int) -> dict[str, object] | None:
    """What scapy says the scanner should take from this record (None: not used)."""
    if linktype == 127:
        pkt = RadioTap(data)
        flags = int(pkt.Flags) if pkt.Flags is not None else 0
        if flags & 0x40:  # bad FCS
            return None
        if len(data) - pkt.len - (4 if flags & 0x10 else 0) < 24:
            return None
        rssi = pkt.dBm_AntSignal
        freq = pkt.ChannelFrequency or None
    else:
        pkt = Dot11(data)
        if len(data) < 24:
            return None
        rssi = freq = None
    d = pkt[Dot11]
    if d.proto != 0:
        return None
    if d.type == 0 and d.subtype == 4:
        subtype = "probe_req"
    elif d.type == 2 and d.subtype in DATA_SUBTYPES and int(d.FCfield) & 3 == 1:
        subtype = DATA_SUBTYPES[d.subtype]
    else:
        return None
    ssid = None
    if subtype == "probe_req":
        elt = pkt.getlayer(Dot11Elt, ID=0)
        if elt is not None:
            ssid = bytes(elt.info).decode("utf-8", "replace")
    return {
        "subtype": subtype,
        "mac": d.addr2,
        "seq": d.SC >> 4,
        "rssi_dbm": rssi,
        "freq_mhz": freq,
        "ssid": ssid,
    }


def _tshark(path: Path) -> dict[int, list[str]]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed")
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    rows = {}
    for line in out.splitlines():
        cols = line.split("\t")
        rows[int(cols[0])] = cols[1:]
    return rows


def _tshark_ssid(field: str) -> str | None:
    # tshark 4 prints the SSID as hex, "<MISSING>" for the wildcard and nothing when absent.
    if field == "<MISSING>":
        return ""
    return bytes.fromhex(field).decode("utf-8", "replace") if field else None


def _check_capture(path: Path) -> Counter[str]:
    counters: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    tshark = _tshark(path)
    mismatches: list[str] = []
    for number, (ts, linktype, data) in enumerate(read_records(path, counters), start=1):
        ours = parse_frame(data, linktype, ts, ts, counters)
        try:
            want = _scapy_expect(data, linktype)
        except (struct.error, TypeError, IndexError, AttributeError):
            # scapy cannot dissect it (a cut frame): nothing a scanner could use either.
            want = None
            stats["scapy_failed"] += 1
        stats["records"] += 1
        if (ours is None) != (want is None):
            mismatches.append(f"#{number}: ours {ours} scapy {want}")
            continue
        if ours is None or want is None:
            continue
        stats["compared"] += 1
        got = {k: getattr(ours, k) for k in want}
        if got != want:
            mismatches.append(f"#{number}: ours {got} scapy {want}")
        ta, sa, seq, rssi, freq, ssid = tshark[number]
        t_got = {
            "mac": ta or sa,
            "seq": int(seq),
            "rssi_dbm": int(rssi) if rssi else None,
            "freq_mhz": int(freq) if freq else None,
            "ssid": _tshark_ssid(ssid),
        }
        t_ours = {k: getattr(ours, k) for k in t_got}
        if t_got != t_ours:
            mismatches.append(f"#{number}: ours {t_ours} tshark {t_got}")
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    stats["tshark_rows"] = len(tshark)
    return stats


def test_every_capture_matches_scapy_and_tshark(shared_data: Path) -> None:
    paths = _captures(shared_data)
    assert len(paths) >= 16
    totals: Counter[str] = Counter()
    refused = []
    for path in paths:
        try:
            stats = _check_capture(path)
        except RecordingError as exc:
            refused.append(path.name)
            assert "unsupported link type 119" in str(exc)
            continue
        assert stats["tshark_rows"] == stats["records"], path
        totals += stats
    assert refused == ["wpa.cap"]
    # 54,297 records in all; the frames the scanner keeps are compared field by field.
    assert totals["records"] > 50_000
    assert totals["compared"] > 30_000
    print(f"differential: {dict(totals)}")


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wifi"


@pytest.mark.parametrize("name", ["mixed.pcap", "plain80211.pcap"])
def test_fixture_captures_match_scapy_and_tshark(name: str) -> None:
    # Small generated captures (tests/fixtures/wifi/generate.py) covering FCS, bad FCS, several
    # antennas, data frames, a cut frame and a cut file; these run without ../shared too.
    stats = _check_capture(FIXTURES / name)
    assert stats["records"] == stats["tshark_rows"] == 11
    assert stats["compared"] == (7 if name == "mixed.pcap" else 8)


# -- synthetic frames with fuzzed lengths ----------------------------------------------------


@st.composite
def _frames(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """A whole radiotap frame, and the dBm signal scapy cannot see (see below) or None."""
    kind = draw(st.sampled_from(["probe", "probe", "data", "null"]))
    rssi = draw(st.one_of(st.none(), st.integers(-128, 127)))
    antennas = draw(st.lists(st.integers(-100, -20), max_size=3))
    fcs = draw(st.booleans())
    rt = build.radiotap(
        rssi_dbm=rssi,
        freq_mhz=draw(st.one_of(st.none(), st.sampled_from([2412, 2437, 5180, 5955]))),
        fcs=fcs,
        tsft=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        antennas=antennas,
    )
    mac = ":".join(f"{b:02x}" for b in draw(st.binary(min_size=6, max_size=6)))
    seq = draw(st.integers(0, 4095))
    if kind == "probe":
        body = build.probe_request_body(
            draw(st.one_of(st.none(), st.binary(max_size=32))),
            rates=draw(st.binary(min_size=1, max_size=8)),
            ext_rates=draw(st.binary(max_size=12)),
            ht_caps=draw(st.one_of(st.none(), st.binary(min_size=26, max_size=26))),
            vendor=draw(st.lists(st.binary(min_size=0, max_size=40), max_size=3)),
        )
        frame = build.probe_request(mac, seq, body)
    else:
        frame = build.data_frame(mac, "00:11:22:33:44:55", seq, subtype=0 if kind == "data" else 4)
    # Known difference: scapy decodes only the first radiotap namespace, so when the combined
    # signal is absent and only per-antenna signals are present it reports None; we (and
    # tshark) report the first antenna's signal.
    hidden = antennas[0] if rssi is None and antennas else None
    return rt + (build.with_fcs(frame) if fcs else frame), hidden


def _scapy_view(data: bytes, hidden: int | None) -> dict[str, object] | None:
    """scapy's reading, or None where scapy itself cannot dissect the cut frame."""
    try:
        want = _scapy_expect(data, 127)
    except (struct.error, TypeError, IndexError, AttributeError):
        return None
    if want is not None and hidden is not None:
        want["rssi_dbm"] = hidden
    return want


@seed(FUZZ_SEED)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=_frames(), cut=st.integers(0, 400))
def test_fuzzed_lengths_never_raise_and_agree(parts: tuple[bytes, int | None], cut: int) -> None:
    if not _SEED_SHOWN:
        _SEED_SHOWN.append(FUZZ_SEED)
        print(f"hypothesis seed {FUZZ_SEED}")
    whole, hidden = parts
    data = whole[: len(whole) - cut] if cut < len(whole) else whole[: cut % 40]
    counters: Counter[str] = Counter()
    ours = parse_frame(data, 127, 1.0, 1.0, counters)
    want = _scapy_view(data, hidden)
    if data == whole:
        assert want is not None
        assert ours is not None
        assert {k: getattr(ours, k) for k in want} == want
        return
    if ours is None:
        assert sum(counters.values()) >= 1
        return
    # A cut frame we keep: the header fields must still be scapy's.
    if want is not None:
        for key in ("mac", "seq", "subtype", "rssi_dbm", "freq_mhz"):
            assert getattr(ours, key) == want[key], key
        if not (counters["ie_truncated"] or counters["ie_trailing_byte"]):
            assert ours.ssid == want["ssid"]


def test_random_bytes_never_raise() -> None:
    rng = random.Random(FUZZ_SEED)
    print(f"random bytes seed {FUZZ_SEED}")
    base = build.radiotap(tsft=5, antennas=(-40,)) + build.probe_request(
        "02:11:22:33:44:55", 7, build.probe_request_body("x")
    )
    counters: Counter[str] = Counter()
    kept = 0
    for _ in range(20_000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randint(0, len(data))]
        for linktype in (127, 105):
            if parse_frame(bytes(data), linktype, 0.0, 0.0, counters) is not None:
                kept += 1
    assert kept > 0
    assert sum(counters.values()) > 0


# -- the Brno lab CSVs -------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["2024-03-21", "2024-03-30"])
def test_brno_csv_columns(shared_data: Path, day: str) -> None:
    base = shared_data / "wifi" / "brno-lab" / f"sc6-61_{day}_pos2"
    counters: Counter[str] = Counter()
    frames = [
        parse_frame(data, lt, ts, ts, counters) for ts, lt, data in read_records(f"{base}.pcap")
    ]
    with open(f"{base}.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert len(rows) == len(frames) > 1000
    for i, (row, frame) in enumerate(zip(rows, frames, strict=True)):
        assert frame is not None, i
        assert frame.mac == row["src"], i
        assert frame.rssi_dbm == int(row["rssi"]), i
        assert frame.seq == int(row["seq_num"]), i
        assert frame.freq_mhz == int(row["ch_freq"]), i
        assert frame.random_mac == (row["randomized"] == "1"), i
