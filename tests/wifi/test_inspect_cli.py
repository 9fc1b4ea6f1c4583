"""`checkpoint inspect wifi FILE`: contract fields, file order, exit status, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.sources.wifi.pcapfile import read_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wifi"
CONTRACT = {
    "ts",
    "subtype",
    "mac",
    "random_mac",
    "rssi_dbm",
    "freq_mhz",
    "ssid",
    "seq",
    "fingerprint",
}


def _inspect(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "inspect", "wifi", str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_fixture_lines_in_file_order_with_contract_fields() -> None:
    result = _inspect(FIXTURES / "mixed.pcap", "--stats")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 7
    for line in lines:
        assert set(line) >= CONTRACT
        assert isinstance(line["ts"], float) and isinstance(line["seq"], int)
        assert isinstance(line["fingerprint"], str)
    # File order: the timestamps of the records kept, as the file has them.
    all_ts = [ts for ts, _lt, _d in read_records(FIXTURES / "mixed.pcap")]
    kept = [line["ts"] for line in lines]
    assert kept == sorted(kept, key=all_ts.index)
    assert [line["subtype"] for line in lines] == ["probe_req"] * 4 + [
        "qos_data",
        "qos_null",
        "probe_req",
    ]
    assert lines[2]["ssid"] == "Café Wi-Fi" and lines[0]["ssid"] == "" and lines[3]["ssid"] is None
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["bad_fcs"] == 1 and stats["truncated"] == 1 and stats["dot11_short"] == 1


def test_plain_80211_has_null_radio_fields() -> None:
    result = _inspect(FIXTURES / "plain80211.pcap")
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and all(x["rssi_dbm"] is None and x["freq_mhz"] is None for x in lines)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"GIF89a not a capture" * 10, "not a pcap/pcapng file"),
        (b"", "not a pcap/pcapng file"),
        (
            b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(8) + b"\xff\xff\x00\x00\x01\x00\x00\x00",
            "unsupported link type 1 (Ethernet)",
        ),
    ],
)
def test_unreadable_files_exit_non_zero_with_one_line(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    result = _inspect(path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert needle in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = _inspect(tmp_path / "nope.pcap")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot read" in result.stderr


def test_corrupted_middle_is_counted_not_fatal(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "mixed.pcap").read_bytes())
    # Scribble over the body of the fourth record (radiotap and 802.11 header bytes).
    offset = 24
    for _ in range(3):
        offset += 16 + int.from_bytes(data[offset + 8 : offset + 12], "little")
    data[offset + 16 : offset + 40] = b"\xfe" * 24
    path = tmp_path / "scribbled.pcap"
    path.write_bytes(bytes(data))
    result = _inspect(path, "--stats")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 6
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["records"] == 11 and stats["radiotap_bad_version"] == 1


def test_prism_capture_refused(shared_data: Path) -> None:
    result = _inspect(shared_data / "wifi" / "aircrack" / "wpa.cap")
    assert result.returncode == 1
    assert "unsupported link type 119 (802.11 with Prism header)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_truncated_real_capture_reads_to_last_frame(shared_data: Path) -> None:
    result = _inspect(shared_data / "wifi" / "aircrack" / "pmkid-not-recognized.cap", "--stats")
    assert result.returncode == 0
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["records"] == 20056 and stats["truncated"] == 1
    assert stats["frames"] == len(result.stdout.splitlines()) > 0
