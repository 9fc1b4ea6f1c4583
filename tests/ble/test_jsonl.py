"""ble.jsonl: reading, counting malformed lines, and the recorder's round trip."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from scanner.errors import RecordingError
from scanner.observations import BleAdvert
from scanner.sources.ble.inspect import inspect_file
from scanner.sources.ble.recorder import JsonlRecorder, advert_to_json
from scanner.sources.ble.replay import advert_from_json, parse_line, read_jsonl

FORMATS_EXAMPLE = {
    "ts": 1764000000.125,
    "address": "4C:11:22:33:44:55",
    "address_type": "random",
    "rssi": -52,
    "tx_power": None,
    "local_name": None,
    "manufacturer_data": {"76": "1005031c5a0b2e"},
    "service_data": {"0000fd6f-0000-1000-8000-00805f9b34fb": "00112233"},
    "service_uuids": [],
    "adapter": "hci0",
}


def test_formats_example_parses_with_mono_equal_to_ts() -> None:
    advert = advert_from_json(FORMATS_EXAMPLE)
    assert advert.ts == advert.mono == 1764000000.125
    assert advert.address == "4C:11:22:33:44:55"
    assert advert.manufacturer_data == {76: bytes.fromhex("1005031c5a0b2e")}
    assert advert.service_data["0000fd6f-0000-1000-8000-00805f9b34fb"] == bytes.fromhex("00112233")
    assert advert.rssi_dbm == -52


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"address": "4C:11:22:33:44:55"}',
        '{"ts": "soon", "address": "4C:11:22:33:44:55"}',
        '{"ts": 1.0, "address": "4C:11:22:33:44"}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "address_type": "weird"}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "manufacturer_data": {"apple": "00"}}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "manufacturer_data": {"76": "zz"}}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "manufacturer_data": {"70000": "00"}}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "rssi": "loud"}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "rssi": true}',
        '{"ts": NaN, "address": "4C:11:22:33:44:55"}',
        '{"ts": 1.0, "address": "4C:11:22:33:44:55", "service_uuids": [1]}',
    ],
)
def test_malformed_line_is_counted_and_skipped(line: str) -> None:
    counters: Counter[str] = Counter()
    assert parse_line(line, counters) is None
    assert counters["malformed"] == 1


def test_reader_counts_and_keeps_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "ble.jsonl"
    good = json.dumps(FORMATS_EXAMPLE)
    path.write_text(f"{good}\n\nbroken{{\n{good}\n", encoding="utf-8")
    counters: Counter[str] = Counter()
    adverts = list(read_jsonl(path, counters))
    assert len(adverts) == 2
    assert counters["records"] == 2
    assert counters["malformed"] == 1
    assert counters["blank"] == 1


def test_missing_file_raises_recording_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError):
        read_jsonl(tmp_path / "absent.jsonl")


def test_recorder_round_trip(tmp_path: Path) -> None:
    advert = BleAdvert(
        ts=1764000123.5,
        mono=55.0,
        address="C0:FF:EE:00:11:22",
        address_type="random",
        rssi_dbm=-71,
        tx_power=8,
        local_name="Galaxy Buds2 (1A2B)",
        manufacturer_data={117: b"\x42\x09", 6: b"\x01\x09"},
        service_data={"0000fe2c-0000-1000-8000-00805f9b34fb": b"\x2c\x3f\x9c"},
        service_uuids=("0000fe2c-0000-1000-8000-00805f9b34fb",),
        adapter="hci1",
    )
    rec = JsonlRecorder(tmp_path / "rec.jsonl", flush_every=1)
    rec.write(advert)
    rec.close()
    (back,) = read_jsonl(tmp_path / "rec.jsonl")
    # mono is the recording's own timeline on replay
    assert back.mono == back.ts == advert.ts
    for name in (
        "address",
        "address_type",
        "rssi_dbm",
        "tx_power",
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "adapter",
    ):
        assert getattr(back, name) == getattr(advert, name), name
    assert advert_to_json(back) == advert_to_json(advert)


def test_inspect_writes_contract_fields(tmp_path: Path) -> None:
    path = tmp_path / "ble.jsonl"
    path.write_text(json.dumps(FORMATS_EXAMPLE) + "\nnope\n", encoding="utf-8")
    out = io.StringIO()
    counters = inspect_file(path, out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 1
    rec = lines[0]
    for field in ("ts", "address", "address_type", "rssi_dbm", "kind", "vendor", "reason"):
        assert field in rec
    assert rec["kind"] == "handset"
    assert rec["rssi_dbm"] == -52
    assert counters["malformed"] == 1
