"""The wire form of source records between a capture daemon and the core: one JSON object each.

Every object carries ``v`` (the wire version) and ``t`` (the record type). Bytes travel as hex,
dict keys as strings, except a burst's IQ window (about 22 KB): hex doubled it and cost the
JSON encoder and decoder twelve times a burst without it, so a burst with IQ is one binary
message of its own (``encode_message``): ``BINARY_MARK``, the header's length (4 bytes, big
endian), the JSON header (``iq_meta_len`` and ``iq_len`` in place of the hex fields), then the
SigMF metadata and the samples as raw bytes. A JSON line never starts with ``BINARY_MARK``.

Decoding checks every field's type, because the socket is a trust boundary
(a capture daemon runs with other privileges than the core): a record that does not fit raises
``FrameError``, which the receiver counts and drops.

Decoding is most of the core process's cost per record that is not detection (some 5,000 Wi-Fi
frames a second at a busy gate), so the core reads a record's line with orjson, several times
faster than the standard library's decoder, and checks the fields of a Wi-Fi frame or a BLE
advert as a capture daemon writes them in one expression (exact types, as a JSON decoder gives
them). A line that either refuses (JSON orjson does not take, such as a ``NaN`` literal; a field
of another type; see ``_decode_fast``) is read again field by field through the standard decoder,
so what is accepted and refused, and the reason given, are exactly as before. The wire is
unchanged.

One message is not a record: ``InputsChanged`` (``t`` = ``inputs``), which the API sends when a
person changed something the core must act on (an acknowledgement, the allowlist). It carries no
data, only "read the store now": whoever sends it can at most make the core read the store
again, never tell it what was changed.

Nor is ``WatchFeed`` (``t`` = ``watch``): the API asks, on a connection it keeps open, to hear
when the core's store sink has committed rows to the store's live feed. The core then sends
``FEED_WORD`` on that connection after each such commit. The word carries no data either: the
API reads the rows from the store, which stays the record; the word only spares it the wait for
its next poll.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson

from scanner import safe_json
from scanner.makers import maker
from scanner.observations import (
    BleAdvert,
    Radio,
    SdrBurst,
    SensorState,
    SensorStatus,
    SourceEvent,
    WifiFrame,
)

WIRE_VERSION = 1

# The decoders' fast paths give every field: made without ``__init__``'s lookups (``makers``).
_make_wifi = maker(WifiFrame)
_make_ble = maker(BleAdvert)

_TYPE_WIFI = "wifi"
_TYPE_BLE = "ble"
_TYPE_SDR = "sdr"
_TYPE_STATUS = "status"
_TYPE_INPUTS = "inputs"
_TYPE_WATCH = "watch"
_TYPE_FEED = "feed"
# What an ``InputsChanged`` may say changed (for the logs and counters only).
INPUT_KINDS = frozenset({"ack", "allowlist"})


@dataclass(frozen=True, slots=True)
class InputsChanged:
    """The store holds inputs for the core that it has not read yet: read them now."""

    what: str  # one of ``INPUT_KINDS``


@dataclass(frozen=True, slots=True)
class WatchFeed:
    """A peer on the core's socket asks to hear when the store's live feed has new rows."""


# What the core sends a watcher after each commit that added rows to the live feed.
FEED_WORD = json.dumps({"v": WIRE_VERSION, "t": _TYPE_FEED}, separators=(",", ":")).encode()
WATCH_WORD = json.dumps({"v": WIRE_VERSION, "t": _TYPE_WATCH}, separators=(",", ":")).encode()


# First byte of a binary message; JSON text never starts with a NUL.
BINARY_MARK = b"\x00"
_HEADER_LEN = struct.Struct(">I")


class FrameError(ValueError):
    """A frame from the socket is not a record we understand; the reason is the message."""


def encode_event(event: SourceEvent) -> dict[str, Any]:
    """The JSON-ready form of one record."""
    if isinstance(event, WifiFrame):
        return {
            "v": WIRE_VERSION,
            "t": _TYPE_WIFI,
            "ts": event.ts,
            "mono": event.mono,
            "subtype": event.subtype,
            "mac": event.mac,
            "random_mac": event.random_mac,
            "rssi_dbm": event.rssi_dbm,
            "freq_mhz": event.freq_mhz,
            "ssid": event.ssid,
            "seq": event.seq,
            "fingerprint": event.fingerprint,
            "bssid": event.bssid,
            "dst": event.dst,
            "sensor": event.sensor,
            # The frame's bytes, for the evidence behind an alert (see ``WifiFrame.raw``).
            "raw": event.raw.hex(),
        }
    if isinstance(event, BleAdvert):
        return {
            "v": WIRE_VERSION,
            "t": _TYPE_BLE,
            "ts": event.ts,
            "mono": event.mono,
            "address": event.address,
            "address_type": event.address_type,
            "rssi_dbm": event.rssi_dbm,
            "tx_power": event.tx_power,
            "local_name": event.local_name,
            "manufacturer_data": {str(k): v.hex() for k, v in event.manufacturer_data.items()},
            "service_data": {k: v.hex() for k, v in event.service_data.items()},
            "service_uuids": list(event.service_uuids),
            "adapter": event.adapter,
            "sensor": event.sensor,
        }
    if isinstance(event, SdrBurst):
        return {
            "v": WIRE_VERSION,
            "t": _TYPE_SDR,
            "ts": event.ts,
            "mono": event.mono,
            "t_end": event.t_end,
            "freq_mhz": event.freq_mhz,
            "bandwidth_khz": event.bandwidth_khz,
            "power_dbfs": event.power_dbfs,
            "snr_db": event.snr_db,
            "band": event.band,
            "gain_db": event.gain_db,
            "sensor": event.sensor,
            # The IQ around the burst, for the evidence behind an alert (``SdrBurst.iq``).
            "iq_meta": event.iq_meta.hex(),
            "iq": event.iq.hex(),
        }
    return {
        "v": WIRE_VERSION,
        "t": _TYPE_STATUS,
        "ts": event.ts,
        "mono": event.mono,
        "sensor": event.sensor,
        "radio": str(event.radio),
        "state": event.state,
        "message": event.message,
        "counters": dict(event.counters),
        "detail": dict(event.detail),
    }


def encode_inputs_changed(message: InputsChanged) -> bytes:
    """The notification as a JSON line (no trailing newline)."""
    return json.dumps(
        {"v": WIRE_VERSION, "t": _TYPE_INPUTS, "what": message.what}, separators=(",", ":")
    ).encode()


def encode_line(event: SourceEvent) -> bytes:
    """One record as a compact JSON line (no trailing newline)."""
    # default=str: health details may hold a Path or an enum; they are informative only.
    return json.dumps(
        encode_event(event), separators=(",", ":"), allow_nan=False, default=str
    ).encode()


# -- decoding: each helper checks one field's type and raises FrameError with its name ---------


def _num(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FrameError(f"field {key!r} must be a finite number")
    return float(value)


def _opt_num(obj: dict[str, Any], key: str) -> float | None:
    return None if obj.get(key) is None else _num(obj, key)


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"field {key!r} must be an integer")
    return value


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise FrameError(f"field {key!r} must be a string")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key)


def _name(obj: dict[str, Any], key: str) -> str:
    """A string that names something many records share (a sensor, a frame's subtype, a
    transmitter's address, a probe body's fingerprint): interned, so the records of one
    transmitter, and the tables that keep its address as it came, hold one copy rather than
    one per record. The JSON decoder makes a new string for each field of each record: 20,000
    queued Wi-Fi records (the core's queue full under a crowd) took 11.5 MB, 7-8 MB interned
    (tracemalloc, CPython 3.11). An interned string is freed with its last reference
    (CPython's interning is not immortal), so names that stop arriving do not accumulate."""
    return sys.intern(_str(obj, key))


def _opt_name(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _name(obj, key)


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise FrameError(f"field {key!r} must be true or false")
    return value


def _hex_map(obj: dict[str, Any], key: str) -> dict[str, bytes]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise FrameError(f"field {key!r} must be an object")
    out: dict[str, bytes] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise FrameError(f"field {key!r} values must be hex strings")
        try:
            out[k] = bytes.fromhex(v)
        except ValueError as exc:
            raise FrameError(f"field {key!r} has a value that is not hex") from exc
    return out


def _opt_hex(obj: dict[str, Any], key: str) -> bytes:
    """Bytes sent as hex; absent (a sender before the field existed) is no bytes."""
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise FrameError(f"field {key!r} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise FrameError(f"field {key!r} is not hex") from exc


def _decode_wifi(obj: dict[str, Any]) -> WifiFrame:
    get = obj.get
    ts = get("ts")
    mono = get("mono")
    subtype = get("subtype")
    mac = get("mac")
    random_mac = get("random_mac")
    rssi_dbm = get("rssi_dbm")
    freq_mhz = get("freq_mhz")
    ssid = get("ssid")
    seq = get("seq")
    fingerprint = get("fingerprint")
    bssid = get("bssid")
    dst = get("dst")
    sensor = get("sensor")
    raw = get("raw")
    # Exactly the types the checks below take, as a sender writes them (a time as a float, the
    # frame's bytes present): the same record without a call a field.
    if (
        type(ts) is float
        and isfinite(ts)
        and type(mono) is float
        and isfinite(mono)
        and type(subtype) is str
        and type(mac) is str
        and type(random_mac) is bool
        and (rssi_dbm is None or type(rssi_dbm) is int)
        and (freq_mhz is None or type(freq_mhz) is int)
        and (ssid is None or type(ssid) is str)
        and type(seq) is int
        and type(fingerprint) is str
        and (bssid is None or type(bssid) is str)
        and (dst is None or type(dst) is str)
        and type(sensor) is str
        and type(raw) is str
    ):
        try:
            raw_bytes = bytes.fromhex(raw)
        except ValueError as exc:
            raise FrameError("field 'raw' is not hex") from exc
        intern = sys.intern  # the names records repeat, as ``_name`` says why
        return _make_wifi(
            ts,
            mono,
            intern(subtype),
            intern(mac),
            random_mac,
            rssi_dbm,
            freq_mhz,
            None if ssid is None else intern(ssid),
            seq,
            intern(fingerprint),
            None if bssid is None else intern(bssid),
            None if dst is None else intern(dst),
            intern(sensor),
            raw_bytes,
        )
    return _decode_wifi_checked(obj)


def _decode_wifi_checked(obj: dict[str, Any]) -> WifiFrame:
    return WifiFrame(
        ts=_num(obj, "ts"),
        mono=_num(obj, "mono"),
        subtype=_name(obj, "subtype"),
        mac=_name(obj, "mac"),
        random_mac=_bool(obj, "random_mac"),
        rssi_dbm=_opt_int(obj, "rssi_dbm"),
        freq_mhz=_opt_int(obj, "freq_mhz"),
        ssid=_opt_name(obj, "ssid"),
        seq=_int(obj, "seq"),
        fingerprint=_name(obj, "fingerprint"),
        bssid=_opt_name(obj, "bssid"),
        dst=_opt_name(obj, "dst"),
        sensor=_name(obj, "sensor"),
        raw=_opt_hex(obj, "raw"),
    )


def _manufacturer(obj: dict[str, Any]) -> dict[int, bytes]:
    manufacturer: dict[int, bytes] = {}
    for key, value in _hex_map(obj, "manufacturer_data").items():
        try:
            manufacturer[int(key)] = value
        except ValueError as exc:
            raise FrameError("manufacturer_data keys must be decimal company ids") from exc
    return manufacturer


def _decode_ble(obj: dict[str, Any]) -> BleAdvert:
    get = obj.get
    ts = get("ts")
    mono = get("mono")
    address = get("address")
    address_type = get("address_type")
    rssi_dbm = get("rssi_dbm")
    tx_power = get("tx_power")
    local_name = get("local_name")
    uuids = get("service_uuids")
    adapter = get("adapter")
    sensor = get("sensor")
    # As ``_decode_wifi``: the types a sender writes, checked at once; the maps as below (with
    # every other field right, the first thing wrong is theirs there too).
    if (
        type(ts) is float
        and isfinite(ts)
        and type(mono) is float
        and isfinite(mono)
        and type(address) is str
        and type(address_type) is str
        and (rssi_dbm is None or type(rssi_dbm) is int)
        and (tx_power is None or type(tx_power) is int)
        and (local_name is None or type(local_name) is str)
        and type(uuids) is list
        and all(type(u) is str for u in uuids)
        and type(adapter) is str
        and type(sensor) is str
    ):
        intern = sys.intern  # the names records repeat, as ``_name`` says why
        return _make_ble(
            ts,
            mono,
            intern(address),
            intern(address_type),
            rssi_dbm,
            tx_power,
            None if local_name is None else intern(local_name),
            _manufacturer(obj),
            _hex_map(obj, "service_data"),
            tuple(uuids),
            intern(adapter),
            intern(sensor),
        )
    return _decode_ble_checked(obj)


def _decode_ble_checked(obj: dict[str, Any]) -> BleAdvert:
    manufacturer = _manufacturer(obj)
    uuids = obj.get("service_uuids", [])
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise FrameError("field 'service_uuids' must be a list of strings")
    return BleAdvert(
        ts=_num(obj, "ts"),
        mono=_num(obj, "mono"),
        address=_name(obj, "address"),
        address_type=_name(obj, "address_type"),
        rssi_dbm=_opt_int(obj, "rssi_dbm"),
        tx_power=_opt_int(obj, "tx_power"),
        local_name=_opt_name(obj, "local_name"),
        manufacturer_data=manufacturer,
        service_data=_hex_map(obj, "service_data"),
        service_uuids=tuple(uuids),
        adapter=_name(obj, "adapter"),
        sensor=_name(obj, "sensor"),
    )


def _decode_sdr(obj: dict[str, Any]) -> SdrBurst:
    return SdrBurst(
        ts=_num(obj, "ts"),
        mono=_num(obj, "mono"),
        t_end=_num(obj, "t_end"),
        freq_mhz=_num(obj, "freq_mhz"),
        bandwidth_khz=_num(obj, "bandwidth_khz"),
        power_dbfs=_num(obj, "power_dbfs"),
        snr_db=_num(obj, "snr_db"),
        band=_opt_name(obj, "band"),
        gain_db=_opt_num(obj, "gain_db"),
        sensor=_name(obj, "sensor"),
        iq_meta=_opt_hex(obj, "iq_meta"),
        iq=_opt_hex(obj, "iq"),
    )


def _decode_status(obj: dict[str, Any]) -> SensorStatus:
    try:
        radio = Radio(_str(obj, "radio"))
    except ValueError as exc:
        raise FrameError("field 'radio' is not a known radio") from exc
    try:
        state = SensorState(_str(obj, "state"))
    except ValueError as exc:
        raise FrameError("field 'state' is not a sensor state") from exc
    counters = obj.get("counters", {})
    if not isinstance(counters, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counters.values()
    ):
        raise FrameError("field 'counters' must map names to integers")
    detail = obj.get("detail", {})
    if not isinstance(detail, dict):
        raise FrameError("field 'detail' must be an object")
    return SensorStatus(
        ts=_num(obj, "ts"),
        mono=_num(obj, "mono"),
        sensor=_name(obj, "sensor"),
        radio=radio,
        state=state,
        message=_str(obj, "message"),
        counters=counters,
        detail=detail,
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], SourceEvent]] = {
    _TYPE_WIFI: _decode_wifi,
    _TYPE_BLE: _decode_ble,
    _TYPE_SDR: _decode_sdr,
    _TYPE_STATUS: _decode_status,
}


def decode_event(obj: object) -> SourceEvent:
    """The record a decoded JSON object stands for; ``FrameError`` when it is not one."""
    if not isinstance(obj, dict):
        raise FrameError("frame is not a JSON object")
    version = obj.get("v")
    if version != WIRE_VERSION:
        raise FrameError(f"unsupported wire version {version!r} (this core speaks {WIRE_VERSION})")
    decoder = _DECODERS.get(obj.get("t"))  # type: ignore[arg-type]
    if decoder is None:
        raise FrameError(f"unknown record type {obj.get('t')!r}")
    return decoder(obj)


def encode_message(event: SourceEvent) -> bytes:
    """One record as the sender puts it on the socket: a burst with IQ as a binary message,
    anything else as its JSON line."""
    if not isinstance(event, SdrBurst) or not (event.iq or event.iq_meta):
        return encode_line(event)
    header = encode_event(event)
    del header["iq_meta"], header["iq"]
    header["iq_meta_len"] = len(event.iq_meta)
    header["iq_len"] = len(event.iq)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return b"".join((BINARY_MARK, _HEADER_LEN.pack(len(text)), text, event.iq_meta, event.iq))


def is_binary(message: bytes) -> bool:
    return message[:1] == BINARY_MARK


def decode_binary(message: bytes) -> SdrBurst:
    """A binary message back into its burst; ``FrameError`` when its lengths do not add up."""
    start = len(BINARY_MARK) + _HEADER_LEN.size
    if not is_binary(message) or len(message) < start:
        raise FrameError("binary message shorter than its header")
    (length,) = _HEADER_LEN.unpack_from(message, len(BINARY_MARK))
    if start + length > len(message):
        raise FrameError("binary message shorter than its header says")
    try:
        obj = safe_json.loads(message[start : start + length])
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"binary header not JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("t") != _TYPE_SDR:
        raise FrameError("a binary message must be an SDR burst")
    meta_len = _int(obj, "iq_meta_len")
    iq_len = _int(obj, "iq_len")
    body = memoryview(message)[start + length :]
    if meta_len < 0 or iq_len < 0 or meta_len + iq_len != len(body):
        raise FrameError(
            f"binary message holds {len(body)} bytes after its header, not "
            f"iq_meta_len + iq_len = {meta_len + iq_len}"
        )
    if obj.get("v") != WIRE_VERSION:
        raise FrameError(
            f"unsupported wire version {obj.get('v')!r} (this core speaks {WIRE_VERSION})"
        )
    event = _decode_sdr(obj)
    return dataclasses.replace(event, iq_meta=bytes(body[:meta_len]), iq=bytes(body[meta_len:]))


def _loads(line: bytes) -> object:
    try:
        return safe_json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"not JSON: {exc}") from exc


# Records read with orjson: it reads every value of these as the standard decoder does but an
# integer beyond 64 bits, which it makes a float: the same value in a float field, a refusal in
# an integer field (then judged again as below). A health report's free-form detail would keep
# such a float, so it and the rest are read as they always were.
_FAST_DECODERS: dict[object, Callable[[dict[str, Any]], SourceEvent]] = {
    _TYPE_WIFI: _decode_wifi,
    _TYPE_BLE: _decode_ble,
    _TYPE_SDR: _decode_sdr,
}


def _decode_fast(line: bytes) -> SourceEvent | None:
    """The record of a line read with orjson; None: read it the standard way instead."""
    # No more brackets than the depth bound cannot nest deeper than it (``safe_json``).
    if line.count(b"[") + line.count(b"{") > safe_json.MAX_DEPTH:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or obj.get("v") != WIRE_VERSION:
        return None
    decoder = _FAST_DECODERS.get(obj.get("t"))
    if decoder is None:
        return None
    try:
        return decoder(obj)
    except FrameError:
        return None  # refused: judged again as the standard decoder reads it, for its reason


def decode_line(line: bytes) -> SourceEvent:
    """One JSON line back into its record; ``FrameError`` for anything else."""
    return _decode_fast(line) or decode_event(_loads(line))


def decode_message(line: bytes) -> SourceEvent | InputsChanged | WatchFeed:
    """What the core's socket receives: a record, the API's ``InputsChanged``, or its
    ``WatchFeed``."""
    event = _decode_fast(line)
    if event is not None:
        return event
    obj = _loads(line)
    if isinstance(obj, dict) and obj.get("v") == WIRE_VERSION:
        kind = obj.get("t")
        if kind == _TYPE_INPUTS:
            what = obj.get("what")
            if what not in INPUT_KINDS:
                raise FrameError(f"unknown input change {what!r}")
            return InputsChanged(str(what))
        if kind == _TYPE_WATCH:
            return WatchFeed()
    return decode_event(obj)
