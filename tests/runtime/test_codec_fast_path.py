"""The core's quick decode of a Wi-Fi frame or BLE advert accepts and refuses exactly what the
field-by-field checks do, with the same reason, whatever one field holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scanner.observations import BleAdvert, WifiFrame
from scanner.runtime.transport.codec import (
    FrameError,
    _decode_ble,
    _decode_ble_checked,
    _decode_wifi,
    _decode_wifi_checked,
    decode_line,
    encode_event,
    encode_line,
)

WIFI = WifiFrame(
    ts=1_764_000_000.25,
    mono=812.5,
    subtype="probe_req",
    mac="da:00:00:01:00:01",
    random_mac=True,
    rssi_dbm=-71,
    freq_mhz=2437,
    ssid="",
    seq=17,
    fingerprint="abc123",
    bssid=None,
    dst="ff:ff:ff:ff:ff:ff",
    sensor="wifi",
    raw=bytes.fromhex("000008000000000040"),
)
BLE = BleAdvert(
    ts=1_764_000_000.5,
    mono=813.0,
    address="4A:00:00:01:00:01",
    address_type="random",
    rssi_dbm=-80,
    tx_power=None,
    local_name="dev-1",
    manufacturer_data={76: bytes.fromhex("1005031c5a0b2e")},
    service_data={"0000fe9f-0000-1000-8000-00805f9b34fb": b"\x01"},
    service_uuids=("0000180f-0000-1000-8000-00805f9b34fb",),
)
# What a peer on the socket could put in any one field.
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -71,
    2**70,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "zz",
    "0a1b",
    "4A:00:00:01:00:01",
    [],
    ["x"],
    [1],
    {},
    {"76": "00"},
    {"x": "00"},
    {"76": 1},
]


def _outcome(decode: Callable[[dict[str, Any]], object], obj: dict[str, Any]) -> tuple[Any, ...]:
    try:
        record = decode(obj)
    except FrameError as exc:
        return ("refused", str(exc))
    # ``raw`` is not part of a record's equality: compare it as well.
    return ("record", record, getattr(record, "raw", None))


@pytest.mark.parametrize(
    ("record", "quick", "checked"),
    [(WIFI, _decode_wifi, _decode_wifi_checked), (BLE, _decode_ble, _decode_ble_checked)],
)
def test_quick_decode_matches_the_checks_whatever_a_field_holds(
    record: WifiFrame | BleAdvert,
    quick: Callable[[dict[str, Any]], object],
    checked: Callable[[dict[str, Any]], object],
) -> None:
    base = encode_event(record)
    assert _outcome(quick, dict(base)) == _outcome(checked, dict(base))
    assert _outcome(quick, dict(base))[0] == "record"
    for key in base:
        absent = {k: v for k, v in base.items() if k != key}
        assert _outcome(quick, absent) == _outcome(checked, absent), key
        for value in VALUES:
            obj = {**base, key: value}
            assert _outcome(quick, obj) == _outcome(checked, obj), (key, value)


def test_a_line_the_fast_decoder_refuses_is_judged_as_before() -> None:
    line = encode_line(WIFI)
    assert decode_line(line) == WIFI
    # A NaN literal (the standard decoder reads it; the field check refuses it).
    nan = line.replace(b'"ts":1764000000.25', b'"ts":NaN')
    with pytest.raises(FrameError, match="'ts' must be a finite number"):
        decode_line(nan)
    # An integer beyond 64 bits for the sequence number is an integer: accepted as before.
    big = line.replace(b'"seq":17', b'"seq":' + str(2**70).encode())
    assert decode_line(big).seq == 2**70  # type: ignore[union-attr]
    # Nesting beyond the bound is refused, in a detail map that is otherwise free-form.
    deep = json.dumps({"v": 1, "t": "status", "detail": [[[[]]]] * 1}).replace(
        "[[[[]]]]", "[" * 100 + "]" * 100
    )
    with pytest.raises(FrameError, match="nested deeper"):
        decode_line(deep.encode())
    with pytest.raises(FrameError, match="not JSON"):
        decode_line(line[:-1])
