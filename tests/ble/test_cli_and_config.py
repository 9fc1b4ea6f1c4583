"""`checkpoint inspect ble`, the [ble] options, the error table, and the real captures."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from scanner.config import ConfigError
from scanner.sources.backoff import Backoff
from scanner.sources.ble.capture_import import parse_ad, parse_hci_event, parse_ll, sniff
from scanner.sources.ble.classify import KINDS
from scanner.sources.ble.constants import ERROR_POLICIES, BleErrorClass, classify_text
from scanner.sources.ble.inspect import inspect_file
from scanner.sources.ble.link_layer import parse_nordic
from scanner.sources.ble.options import DEFAULT_OR_PATTERNS, BleOptions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ble"


def _checkpoint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_inspect_cli_on_the_golden_capture() -> None:
    result = _checkpoint("inspect", "ble", str(FIXTURES / "sample_h4.btsnoop"), "--stats")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert rows[0]["reason"].startswith("Apple Nearby Info, iPhone action code 0x03")
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["records"] == 4


def test_inspect_cli_skips_bad_lines_and_fails_on_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "ble.jsonl"
    path.write_text(
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "address_type": "random", '
        '"rssi": -50, "manufacturer_data": {"76": "1005031c5a0b2e"}}\n{broken\n',
        encoding="utf-8",
    )
    ok = _checkpoint("inspect", "ble", str(path))
    assert ok.returncode == 0
    assert len(ok.stdout.splitlines()) == 1
    missing = _checkpoint("inspect", "ble", str(tmp_path / "nope.jsonl"))
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1


def test_options_from_mapping() -> None:
    opts = BleOptions.from_mapping(
        {
            "adapter": "hci1",
            "scanning_mode": "passive",
            "or_patterns": [[0, 255, "4c00"]],
            "queue_size": 100,
        }
    )
    assert opts.adapter == "hci1"
    assert opts.scanning_mode == "passive"
    assert opts.or_patterns == ((0, 255, b"\x4c\x00"),)
    assert opts.duplicate_data is True
    assert BleOptions.from_mapping({}).or_patterns == DEFAULT_OR_PATTERNS
    for bad in (
        {"scanning_mode": "loud"},
        {"adapter": ""},
        {"queue_size": "big"},
        {"queue_size": True},
        {"or_patterns": [[0, 255, "zz"]]},
        {"colour": "red"},
    ):
        with pytest.raises(ConfigError):
            BleOptions.from_mapping(bad)


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("org.bluez.Error.InProgress: Operation already in progress", BleErrorClass.IN_PROGRESS),
        ("org.bluez.Error.NotReady: Resource Not Ready", BleErrorClass.NOT_READY),
        ("org.bluez.Error.Failed: Blocked through rfkill", BleErrorClass.BLOCKED),
        ("No powered Bluetooth adapters found. Turn on Bluetooth", BleErrorClass.POWERED_OFF),
        (
            "org.freedesktop.DBus.Error.ServiceUnknown: The name org.bluez was not provided",
            BleErrorClass.BLUEZ_GONE,
        ),
        ("BleakError: adapter 'hci1' not found", BleErrorClass.ADAPTER_MISSING),
        (
            "org.freedesktop.DBus.Error.AccessDenied: Rejected send message",
            BleErrorClass.PERMISSION,
        ),
        ("passive scanning on Linux requires BlueZ >= 5.56", BleErrorClass.PASSIVE_UNSUPPORTED),
        ("something new", BleErrorClass.UNKNOWN),
    ],
)
def test_error_table(text: str, cls: BleErrorClass) -> None:
    assert classify_text(text) is cls


def test_backoff_grows_to_its_class_limit() -> None:
    backoff = Backoff({cls: policy.retry for cls, policy in ERROR_POLICIES.items()})
    delays = [backoff.failed(BleErrorClass.POWERED_OFF) for _ in range(8)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0]
    assert backoff.failed(BleErrorClass.BLUEZ_GONE) == 0.5  # bluetoothd restarts are quick


@seed(2026)
@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300))
def test_capture_parsers_never_raise(data: bytes) -> None:
    counters: Counter[str] = Counter()
    parse_ad(data, counters)
    for adv in parse_hci_event(0.0, data, counters):
        assert adv.address.count(":") == 5
    parse_hci_event(0.0, b"\x3e" + data, counters)
    parse_ll(0.0, b"\xd6\xbe\x89\x8e" + data, None, counters, "ll")
    parse_ll(0.0, b"\xd6\xbe\x89\x8e" + data, -50, counters, "ll", crc_verdict=True)
    parse_ll(0.0, b"\xd6\xbe\x89\x8e\x47" + data, -50, counters, "ll", crc_verdict=True)
    # An nRF Sniffer frame: protocol 3 header with CRC ok, then anything.
    split = parse_nordic(b"\x01\x00\x00\x03\x00\x00\x02\x0a" + data, counters)
    if split is not None:
        parse_ll(0.0, split[1], split[0].rssi_dbm, counters, "ll", crc_verdict=split[0].crc_ok)


def test_real_ble_captures_are_all_labelled(shared_data: Path) -> None:
    """Every advertisement in ../shared/data/ble/ (when present) gets a label and a reason."""
    folder = shared_data / "ble"
    if not folder.is_dir():
        pytest.skip(f"no BLE captures in {shared_data} yet")
    # Captures by their magic bytes (Android names its btsnoop logs btsnoop_hci.log.<n>),
    # recordings by their suffix.
    files = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (sniff(p.read_bytes()[:16]) is not None or p.suffix == ".jsonl")
    ]
    if not files:
        pytest.skip("no BLE capture files")
    total = 0
    for path in files:
        out = io.StringIO()
        inspect_file(path, out)
        for line in out.getvalue().splitlines():
            row = json.loads(line)
            assert row["kind"] in KINDS
            assert row["reason"]
            total += 1
    assert total > 0
