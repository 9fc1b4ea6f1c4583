"""Replaying BLE recordings: ``ble.jsonl`` (FORMATS.md) and other tools' captures.

``read_jsonl`` turns each line of a ``ble.jsonl`` into a ``BleAdvert`` (``mono == ts``: a
recording's own timeline is monotonic by construction); a line that does not fit is counted and
skipped, never fatal. ``read_recording`` also takes btsnoop, pcap and pcapng captures (see
``capture_import``), chosen by the file's first bytes. The recorder (``recorder.py``) writes
what ``read_jsonl`` reads, so a recording replays through the same code as live capture after
bleak.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from scanner import safe_json
from scanner.errors import RecordingError
from scanner.observations import BleAdvert
from scanner.sources.ble.address import normalise_address
from scanner.sources.ble.constants import rssi_dbm_or_none

_LOGGER = logging.getLogger(__name__)

_NO_MFR: dict[int, bytes] = {}
_NO_SVC: dict[str, bytes] = {}
_ADDRESS_TYPES = frozenset({"public", "random"})
# Advertising data is at most 1650 bytes even with extended advertising (Core 5.x); a longer
# value is corrupt input, not an advertisement.
_MAX_VALUE_BYTES = 1650
# RSSI and TX power are signed bytes in HCI (dBm); anything wider is not a radio reading and
# would overflow the store's integer columns downstream.
_DBM_RANGE = range(-128, 128)
# Company ids are 16-bit, written in ASCII decimal ("76"); int() would also take " 76", "7_6"
# and other scripts' digits, which no recorder writes.
_COMPANY_ID = re.compile(r"[0-9]{1,5}")


class LineError(ValueError):
    """A line is not an advertisement record; the message says which field is wrong."""


def _dbm_or_none(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError(f"{key} must be an integer or null")
    if value not in _DBM_RANGE:
        raise LineError(f"{key} must be a dBm value from -128 to 127")
    return value


def _mapping(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineError(f"{key} must be an object or null")
    return value


def _hex_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise LineError(f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise LineError(f"{what} is not hex") from exc
    if len(raw) > _MAX_VALUE_BYTES:
        raise LineError(f"{what} is longer than any advertisement")
    return raw


def advert_from_json(obj: object) -> BleAdvert:
    """Build a record from one decoded JSON object; raises ``LineError`` when it does not fit."""
    if not isinstance(obj, dict):
        raise LineError("line is not a JSON object")
    ts = obj.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise LineError("ts must be a finite number")
    try:
        ts_f = float(ts)
    except OverflowError:  # an integer too large for a float
        raise LineError("ts must be a finite number") from None
    if not math.isfinite(ts_f):
        raise LineError("ts must be a finite number")
    raw_address = obj.get("address")
    address = normalise_address(raw_address) if isinstance(raw_address, str) else None
    if address is None:
        raise LineError("address must be a BLE address (AA:BB:CC:DD:EE:FF)")
    address_type = obj.get("address_type", "public")
    # Checked as a string first: a list or object is unhashable and would raise TypeError.
    if not isinstance(address_type, str) or address_type not in _ADDRESS_TYPES:
        raise LineError("address_type must be 'public' or 'random'")
    local_name = obj.get("local_name")
    if local_name is not None and not isinstance(local_name, str):
        raise LineError("local_name must be a string or null")
    manufacturer: dict[int, bytes] = {}
    for key, value in _mapping(obj, "manufacturer_data").items():
        if _COMPANY_ID.fullmatch(key) is None:
            raise LineError("manufacturer_data keys must be decimal company ids")
        company = int(key)
        if not 0 <= company <= 0xFFFF:
            raise LineError("company id out of range")
        manufacturer[company] = _hex_bytes(value, f"manufacturer_data[{key}]")
    service = {
        k.lower(): _hex_bytes(v, f"service_data[{k}]")
        for k, v in _mapping(obj, "service_data").items()
    }
    uuids_raw = obj.get("service_uuids")
    if uuids_raw is None:
        uuids_raw = []
    if not isinstance(uuids_raw, list) or not all(isinstance(u, str) for u in uuids_raw):
        raise LineError("service_uuids must be a list of strings or null")
    adapter = obj.get("adapter", "hci0")
    if not isinstance(adapter, str):
        raise LineError("adapter must be a string")
    return BleAdvert(
        ts=ts_f,
        mono=ts_f,
        address=address,
        address_type=address_type,
        rssi_dbm=rssi_dbm_or_none(_dbm_or_none(obj, "rssi")),
        tx_power=_dbm_or_none(obj, "tx_power"),
        local_name=local_name,
        manufacturer_data=manufacturer or _NO_MFR,
        service_data=service or _NO_SVC,
        service_uuids=tuple(u.lower() for u in uuids_raw),
        adapter=adapter,
    )


def parse_line(line: str, counters: Counter[str] | None = None) -> BleAdvert | None:
    """One line to a record, or None (counted as ``malformed``/``blank``) when it is not one."""
    text = line.strip()
    if not text:
        if counters is not None:
            counters["blank"] += 1
        return None
    try:
        return advert_from_json(safe_json.loads(text, safe_json.LINE_MAX_BYTES))
    except (ValueError, RecursionError) as exc:
        # json.JSONDecodeError and LineError are both ValueErrors.
        if counters is not None:
            counters["malformed"] += 1
        _LOGGER.debug("skipping malformed ble.jsonl line: %s", exc)
        return None


def iter_jsonl(stream: IO[str], counters: Counter[str]) -> Iterator[BleAdvert]:
    """Records from an open text stream; malformed lines counted and skipped."""
    for line in stream:
        advert = parse_line(line, counters)
        if advert is not None:
            counters["records"] += 1
            yield advert


def _lines(stream: IO[str], counters: Counter[str]) -> Iterator[BleAdvert]:
    with stream:
        yield from iter_jsonl(stream, counters)


def read_jsonl(path: str | Path, counters: Counter[str] | None = None) -> Iterator[BleAdvert]:
    """Records from a ``ble.jsonl`` file; raises ``RecordingError`` at once if it cannot be
    opened (the file is opened here, not on first iteration)."""
    counts = counters if counters is not None else Counter()
    try:
        stream = Path(path).open(encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by _lines
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return _lines(stream, counts)


def read_recording(path: str | Path, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from any supported recording, chosen by the file's first bytes: btsnoop, pcap
    or pcapng captures (``counters["format_<name>"]`` says which), else ``ble.jsonl``."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise RecordingError(f"cannot read {p}: {exc.strerror or exc}") from exc
    from scanner.sources.ble import capture_import

    fmt = capture_import.sniff(head)
    if fmt is not None:
        counters[f"format_{fmt}"] = 1
        return capture_import.read_capture(p, counters)
    counters["format_jsonl"] = 1
    return read_jsonl(p, counters)
