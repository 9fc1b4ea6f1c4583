"""ble.jsonl: every field given the wrong JSON type is a counted malformed line, never a crash.

One row per (field, value); each line is otherwise the FORMATS.md example, which parses.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from scanner.sources.ble.replay import parse_line

GOOD: dict[str, Any] = {
    "ts": 1764000000.125,
    "address": "4C:11:22:33:44:55",
    "address_type": "random",
    "rssi": -52,
    "tx_power": None,
    "local_name": None,
    "manufacturer_data": {"76": "1005031c5a0b2e"},
    "service_data": {"0000fd6f-0000-1000-8000-00805f9b34fb": "00ff"},
    "service_uuids": [],
    "adapter": "hci0",
}

BAD: list[tuple[str, Any]] = [
    ("ts", "1764000000"),
    ("ts", True),
    ("ts", None),
    ("ts", [1.0]),
    ("ts", {"s": 1}),
    ("ts", 10**400),  # an integer JSON allows and a float cannot hold
    ("address", 42),
    ("address", ["4C:11:22:33:44:55"]),
    ("address_type", {}),
    ("address_type", []),
    ("address_type", ["random"]),
    ("address_type", 1),
    ("address_type", None),
    ("address_type", "RANDOM!"),
    ("rssi", "-52"),
    ("rssi", -52.5),
    ("rssi", True),
    ("rssi", 2**70),
    ("rssi", -(2**63) - 1),
    ("rssi", 128),
    ("rssi", -129),
    ("rssi", 1e300),
    ("rssi", [-52]),
    ("rssi", {"dbm": -52}),
    ("tx_power", "8"),
    ("tx_power", 8.5),
    ("tx_power", False),
    ("tx_power", 10**20),
    ("local_name", 7),
    ("local_name", ["Buds"]),
    ("manufacturer_data", []),
    ("manufacturer_data", ""),
    ("manufacturer_data", 0),
    ("manufacturer_data", "1005031c5a0b2e"),
    ("manufacturer_data", {"apple": "00"}),
    ("manufacturer_data", {"-1": "00"}),
    ("manufacturer_data", {"65536": "00"}),
    ("manufacturer_data", {"1" * 40: "00"}),
    ("manufacturer_data", {" 76": "00"}),
    ("manufacturer_data", {"7_6": "00"}),
    ("manufacturer_data", {"\u0667\u0666": "00"}),  # Arabic-Indic digits: int() takes them
    ("manufacturer_data", {"76": "zz"}),
    ("manufacturer_data", {"76": "abc"}),  # odd number of hex digits
    ("manufacturer_data", {"76": 1005}),
    ("manufacturer_data", {"76": None}),
    ("manufacturer_data", {"76": ["10"]}),
    ("manufacturer_data", {"76": "00" * 2000}),  # longer than any advertisement
    ("service_data", []),
    ("service_data", "00ff"),
    ("service_data", {"fd6f": "xyz"}),
    ("service_data", {"fd6f": 255}),
    ("service_uuids", "0000fd6f-0000-1000-8000-00805f9b34fb"),
    ("service_uuids", {"a": "b"}),
    ("service_uuids", [1]),
    ("service_uuids", [None]),
    ("service_uuids", 0),
    ("adapter", 0),
    ("adapter", None),
    ("adapter", ["hci0"]),
]


def test_the_base_line_parses() -> None:
    counters: Counter[str] = Counter()
    advert = parse_line(json.dumps(GOOD), counters)
    assert advert is not None
    assert advert.rssi_dbm == -52
    assert counters["malformed"] == 0


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}"[:60] for f, v in BAD])
def test_wrong_type_or_range_is_a_counted_malformed_line(field: str, value: Any) -> None:
    counters: Counter[str] = Counter()
    line = json.dumps({**GOOD, field: value})
    assert parse_line(line, counters) is None
    assert counters["malformed"] == 1


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_finite_ts_as_python_json_writes_it_is_counted(text: str) -> None:
    line = json.dumps(GOOD).replace('"ts": 1764000000.125', f'"ts": {text}')
    assert text in line
    counters: Counter[str] = Counter()
    assert parse_line(line, counters) is None
    assert counters["malformed"] == 1


GOOD_VARIANTS: list[tuple[str, Any, Any]] = [
    # (field, value in the line, the record's attribute value)
    ("rssi", -52.0, -52),  # a whole float from a JSON writer that has no integers
    ("rssi", None, None),
    # HCI's "not available" (127), bleak's missing value (-127) and values outside the HCI range
    # -127..+20 (int8 -128, reserved 21..126) are no reading: unknown, never a level.
    ("rssi", -128, None),
    ("rssi", -127, None),
    ("rssi", 127, None),
    ("rssi", 21, None),
    ("rssi", -126, -126),
    ("rssi", 20, 20),
    ("tx_power", 8, 8),
    ("manufacturer_data", None, {}),
    ("manufacturer_data", {}, {}),
    ("manufacturer_data", {"0": ""}, {0: b""}),
    ("manufacturer_data", {"65535": "ff"}, {0xFFFF: b"\xff"}),
    ("service_data", None, {}),
    ("service_uuids", None, ()),
    (
        "service_uuids",
        ["0000FE2C-0000-1000-8000-00805F9B34FB"],
        ("0000fe2c-0000-1000-8000-00805f9b34fb",),
    ),
    ("ts", 1764000000, 1764000000.0),
]


@pytest.mark.parametrize(("field", "value", "expected"), GOOD_VARIANTS)
def test_valid_edge_values_still_parse(field: str, value: Any, expected: Any) -> None:
    counters: Counter[str] = Counter()
    advert = parse_line(json.dumps({**GOOD, field: value}), counters)
    assert advert is not None, field
    # The line's field is ``rssi`` (FORMATS.md); the record's is ``rssi_dbm``.
    assert getattr(advert, "rssi_dbm" if field == "rssi" else field) == expected
    assert counters["malformed"] == 0
