"""The capture reader: pcap in both byte orders and resolutions, pcapng, damage, refusals."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest

from scanner.errors import RecordingError
from scanner.sources.wifi import build
from scanner.sources.wifi.pcapfile import CaptureFile, read_records
from scanner.sources.wifi.recorder import PcapWriter

FRAMES = [
    build.radiotap(rssi_dbm=-40 - i) + build.probe_request(f"02:00:00:00:00:{i:02x}", i, b"")
    for i in range(5)
]
TIMES = [1_764_000_000.25 + i * 0.5 for i in range(5)]


def _pcap(order: str, nanoseconds: bool, linktype: int = 127) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    scale = 1_000_000_000 if nanoseconds else 1_000_000
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for ts, frame in zip(TIMES, FRAMES, strict=True):
        sec = int(ts)
        out += struct.pack(order + "IIII", sec, round((ts - sec) * scale), len(frame), len(frame))
        out += frame
    return out


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def _option(order: str, code: int, value: bytes) -> bytes:
    pad = b"\x00" * (-len(value) % 4)
    return struct.pack(order + "HH", code, len(value)) + value + pad


def _pcapng(order: str, tsresol: int | None, linktypes: tuple[int, ...] = (127,)) -> bytes:
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out = shb
    for lt in linktypes:
        opts = b""
        if tsresol is not None:
            opts = _option(order, 9, bytes([tsresol])) + _option(order, 0, b"")
        out += _block(order, 1, struct.pack(order + "HHI", lt, 0, 0) + opts)
    tick = (
        1e-6
        if tsresol is None
        else (2.0 ** -(tsresol & 0x7F) if tsresol & 0x80 else 10.0**-tsresol)
    )
    iface = len(linktypes) - 1
    for ts, frame in zip(TIMES, FRAMES, strict=True):
        ticks = round(ts / tick)
        out += _block(
            order,
            6,
            struct.pack(
                order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
            )
            + frame,
        )
    # An unknown block type (name resolution) in the middle is skipped by its length.
    out += _block(order, 4, b"\x00" * 8)
    # A simple packet block: no timestamp, inherits the previous one.
    out += _block(order, 3, struct.pack(order + "I", len(FRAMES[0])) + FRAMES[0])
    return out


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_both_orders_and_resolutions(tmp_path: Path, order: str, nanoseconds: bool) -> None:
    path = _write(tmp_path, "x.pcap", _pcap(order, nanoseconds))
    counters: Counter[str] = Counter()
    records = list(read_records(path, counters))
    assert [r[2] for r in records] == FRAMES
    assert [r[1] for r in records] == [127] * 5
    for (ts, _lt, _d), want in zip(records, TIMES, strict=True):
        assert ts == pytest.approx(want, abs=1e-6)
    assert counters["records"] == 5
    assert counters["truncated"] == 0


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("tsresol", [None, 9, 3, 0x80 | 20])
def test_pcapng_blocks_and_resolution(tmp_path: Path, order: str, tsresol: int | None) -> None:
    path = _write(tmp_path, "x.pcapng", _pcapng(order, tsresol))
    counters: Counter[str] = Counter()
    records = list(read_records(path, counters))
    assert [r[2] for r in records] == [*FRAMES, FRAMES[0]]
    tol = 1e-3 if tsresol == 3 else 1e-5
    for (ts, _lt, _d), want in zip(records, [*TIMES, TIMES[-1]], strict=True):
        assert ts == pytest.approx(want, abs=tol)
    assert counters["spb_without_timestamp"] == 1


def test_pcapng_interface_link_types(tmp_path: Path) -> None:
    # Only Ethernet: refused, naming the link type.
    path = _write(tmp_path, "eth.pcapng", _pcapng("<", None, linktypes=(1,)))
    with pytest.raises(RecordingError, match=r"unsupported link type 1 \(Ethernet\)"):
        list(read_records(path))
    # Radiotap on interface 0, Ethernet on 1 carrying the enhanced blocks: those are skipped
    # and counted; the simple packet block belongs to interface 0 and is read.
    path = _write(tmp_path, "mixed.pcapng", _pcapng("<", None, linktypes=(127, 1)))
    counters: Counter[str] = Counter()
    assert [r[1] for r in read_records(path, counters)] == [127]
    assert counters["skipped_linktype_1"] == 5
    # Interface 0 Ethernet, interface 1 plain 802.11: frames come with link type 105.
    path = _write(tmp_path, "mixed2.pcapng", _pcapng("<", None, linktypes=(1, 105)))
    assert [r[1] for r in list(read_records(path))[:5]] == [105] * 5


def test_truncated_pcap_read_to_last_whole_frame(tmp_path: Path) -> None:
    data = _pcap("<", False)
    path = _write(tmp_path, "cut.pcap", data[:-7])
    counters: Counter[str] = Counter()
    records = list(read_records(path, counters))
    assert [r[2] for r in records] == FRAMES[:4]
    assert counters["truncated"] == 1


def test_truncated_pcapng(tmp_path: Path) -> None:
    data = _pcapng("<", None)
    path = _write(tmp_path, "cut.pcapng", data[:-30])
    counters: Counter[str] = Counter()
    assert len(list(read_records(path, counters))) == 5
    assert counters["truncated"] == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world, this is not a capture at all" * 3, b"\xd4\xc3\xb2\xa1\x02"],
)
def test_garbage_refused(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, "junk.pcap", content)
    with pytest.raises(RecordingError, match="not a pcap/pcapng file"):
        CaptureFile(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        read_records(tmp_path / "absent.pcap")


def test_corrupt_record_length_stops_cleanly(tmp_path: Path) -> None:
    data = bytearray(_pcap("<", False))
    second = 24 + 16 + len(FRAMES[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    path = _write(tmp_path, "corrupt.pcap", bytes(data))
    counters: Counter[str] = Counter()
    assert [r[2] for r in read_records(path, counters)] == FRAMES[:1]
    assert counters["corrupt_record"] == 1


def test_unsupported_linktype_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "eth.pcap", _pcap("<", False, linktype=1))
    with pytest.raises(RecordingError, match=r"unsupported link type 1 \(Ethernet\)"):
        read_records(path)


def test_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    with PcapWriter(path, nanoseconds=True) as writer:
        for ts, frame in zip(TIMES, FRAMES, strict=True):
            writer.write(ts, frame)
    records = list(read_records(path))
    assert [r[2] for r in records] == FRAMES
    assert [r[0] for r in records] == pytest.approx(TIMES, abs=1e-8)


def test_prism_capture_refused(shared_data: Path) -> None:
    with pytest.raises(RecordingError, match=r"unsupported link type 119 \(802.11 with Prism"):
        read_records(shared_data / "wifi" / "aircrack" / "wpa.cap")


def test_real_truncated_capture(shared_data: Path) -> None:
    counters: Counter[str] = Counter()
    path = shared_data / "wifi" / "aircrack" / "pmkid-not-recognized.cap"
    n = sum(1 for _ in read_records(path, counters))
    # capinfos reports 20056 whole packets before the cut.
    assert n == 20056
    assert counters["truncated"] == 1


def _wireshark_tool(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (Wireshark) not installed")
    return path


def test_pcapng_written_by_wireshark_tools(tmp_path: Path, shared_data: Path) -> None:
    # editcap's pcapng (SHB, IDB with options, EPBs) reads back as the same frames; mergecap
    # of a plain 802.11 and a radiotap capture gives two interfaces with their own link types.
    import subprocess

    plain = shared_data / "wifi" / "aircrack" / "n-02.cap"
    radio = shared_data / "wifi" / "probing-patterns" / "iPhoneXR-A_anonymized.pcap"
    converted = tmp_path / "xr.pcapng"
    subprocess.run(
        [_wireshark_tool("editcap"), "-F", "pcapng", str(radio), str(converted)],
        check=True,
        capture_output=True,
    )
    want = list(read_records(radio))
    got = list(read_records(converted))
    assert [r[2] for r in got] == [r[2] for r in want]
    assert [r[0] for r in got] == pytest.approx([r[0] for r in want], abs=1e-6)
    merged = tmp_path / "merged.pcapng"
    subprocess.run(
        [_wireshark_tool("mergecap"), "-F", "pcapng", "-w", str(merged), str(plain), str(radio)],
        check=True,
        capture_output=True,
    )
    counters: Counter[str] = Counter()
    records = list(read_records(merged, counters))
    linktypes = Counter(r[1] for r in records)
    assert linktypes == {105: 218, 127: len(want)}
    # Each interface's frames come out in their own file's order, with their own link type.
    assert [r[2] for r in records if r[1] == 105] == [r[2] for r in read_records(plain)]
    assert [r[2] for r in records if r[1] == 127] == [r[2] for r in want]
