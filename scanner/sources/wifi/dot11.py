"""The hot Wi-Fi parser: one captured frame (radiotap or plain 802.11) to a ``WifiFrame``.

Live capture and replay both call ``parse_frame`` on the raw bytes the socket or the file gives.
It keeps only what the scanner uses:

* probe requests (management, subtype 4): a scanning phone, with SSID and IE fingerprint;
* data, null, QoS data and QoS null frames sent by a station to its AP (ToDS=1, FromDS=0):
  an associated phone; ``mac`` is the transmitter (addr2), ``bssid`` the AP (addr1).

Four-address (WDS/mesh, ToDS=1 FromDS=1) frames are dropped and counted as ``wds``: their
transmitter is a bridge or mesh point, infrastructure rather than a handset, and a handset's own
frames reach the air as ordinary ToDS frames anyway.

Everything else is counted by reason and skipped, never raised. The function is pure (apart from
the counters and two bounded caches) and written for speed: the most common case first, precompiled
tables, and a cache keyed by the radiotap bitmaps. The element walk of a probe request runs
compiled (``_ewalk.c``) where it was built; otherwise the pure-Python walk runs behind a cache
keyed by the element list, because a phone repeats the same probe body many times.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from scanner.observations import WifiFrame
from scanner.sources.wifi import radiotap
from scanner.sources.wifi.fingerprint import (
    NO_FINGERPRINT,
    IeSummary,
    compiled_walk,
    summarise_elements,
)
from scanner.sources.wifi.pcapfile import LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP

# Frame control byte 0 of a probe request: version 0, type 0 (management), subtype 4.
FC0_PROBE_REQ = 0x40
# Data-type frames (type 2) by subtype number: the ones a station sends to its AP.
DATA_SUBTYPES: dict[int, str] = {0: "data", 4: "null", 8: "qos_data", 12: "qos_null"}
_DATA_BY_FC0: dict[int, str] = {(st << 4) | 0x08: name for st, name in DATA_SUBTYPES.items()}
_TYPE_NAMES = ("mgmt", "ctrl", "data", "ext")

FC1_TO_DS = 0x01
FC1_FROM_DS = 0x02
FC1_ORDER = 0x80  # in a management frame of an HT station: a 4-byte HT Control field follows

HEADER_LEN = 24  # frame control, duration, three addresses, sequence control
FCS_LEN = 4
_BROADCAST = b"\xff\xff\xff\xff\xff\xff"

# Two's complement of a byte, looked up rather than computed (hot path).
_S8 = tuple(b - 256 if b > 127 else b for b in range(256))

# Building the record: a frozen dataclass's __init__ goes through object.__setattr__ once per
# field, which costs as much as parsing the frame. The hot path instead fills an instance of
# _FrameSlots, a plain class with exactly WifiFrame's slots, and then switches its class to
# WifiFrame (allowed because the memory layouts are identical). The result is an ordinary,
# frozen WifiFrame. This is used only while WifiFrame has exactly these fields in this order
# (checked below, and by the tests); otherwise the ordinary constructor is used.
_FRAME_FIELDS = (
    "ts", "mono", "subtype", "mac", "random_mac", "rssi_dbm", "freq_mhz", "ssid", "seq",
    "fingerprint", "bssid", "dst", "sensor", "raw",
)  # fmt: skip


class _FrameSlots:
    __slots__ = _FRAME_FIELDS

    def __init__(
        self,
        ts: float,
        mono: float,
        subtype: str,
        mac: str,
        random_mac: bool,
        rssi_dbm: int | None,
        freq_mhz: int | None,
        ssid: str | None,
        seq: int,
        fingerprint: str,
        bssid: str | None,
        dst: str | None,
        raw: bytes = b"",
    ) -> None:
        self.ts = ts
        self.mono = mono
        self.subtype = subtype
        self.mac = mac
        self.random_mac = random_mac
        self.rssi_dbm = rssi_dbm
        self.freq_mhz = freq_mhz
        self.ssid = ssid
        self.seq = seq
        self.fingerprint = fingerprint
        self.bssid = bssid
        self.dst = dst
        self.sensor = "wifi"
        self.raw = raw


def _fast_construct_works() -> bool:
    if tuple(f.name for f in dataclasses.fields(WifiFrame)) != _FRAME_FIELDS:
        return False
    probe = _FrameSlots(0.0, 0.0, "", "", False, None, None, None, 0, "", None, None)
    try:
        probe.__class__ = WifiFrame  # type: ignore[assignment]
    except TypeError:
        return False
    built: object = probe
    return built == WifiFrame(0.0, 0.0, "", "", False, None, None, None, 0, "", None, None)


FAST_CONSTRUCT = _fast_construct_works()
_FRAME_CLASS = WifiFrame

# Caches. Layouts: one entry per distinct radiotap bitmap chain (a handful per capture). Element
# summaries: one per distinct probe body; cleared when full so memory stays bounded.
_LAYOUTS: dict[bytes, radiotap.Layout] = {}
_MAX_LAYOUTS = 256
_IE_CACHE: dict[bytes, IeSummary] = {}
_MAX_IE_CACHE = 8192


# The compiled walk, or None: then the pure-Python walk behind _IE_CACHE. The compiled walk is
# not cached: it walks a body in less time than hashing the body for a cache look-up takes.
_WALK = compiled_walk()
ELEMENT_WALK = "compiled" if _WALK is not None else "python"
"""Which element walk this process uses (reported by the benchmark)."""


def use_compiled_walk(enabled: bool) -> None:
    """Switch between the compiled and the pure-Python walk (tests, benchmarks of the fallback).

    Enabling is a no-op where the compiled walk was not built.
    """
    global _WALK, ELEMENT_WALK  # noqa: PLW0603 (one process-wide switch, read on the hot path)
    _WALK = compiled_walk() if enabled else None
    ELEMENT_WALK = "compiled" if _WALK is not None else "python"
    _IE_CACHE.clear()


def clear_caches() -> None:
    """Forget cached layouts and element summaries (tests, benchmarks of the cold path)."""
    _LAYOUTS.clear()
    _IE_CACHE.clear()


def _radiotap_layout(data: bytes, counters: Counter[str]) -> radiotap.Layout | None:
    """Slow path: a bitmap chain not seen before (or one crossing a vendor namespace)."""
    if data[0] != 0:
        counters["radiotap_bad_version"] += 1
        return None
    key = radiotap.bitmap_key(data)
    if key is None:
        counters["radiotap_malformed"] += 1
        return None
    layout = _LAYOUTS.get(key[0])
    if layout is not None:
        return layout
    layout, cacheable = radiotap.compute_layout(data)
    if layout is None:
        counters["radiotap_malformed"] += 1
        return None
    if cacheable:
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            _LAYOUTS.clear()
        _LAYOUTS[key[0]] = layout
    return layout


def _elements(body: bytes) -> IeSummary:
    summary = summarise_elements(body)
    if len(_IE_CACHE) >= _MAX_IE_CACHE:
        _IE_CACHE.clear()
    _IE_CACHE[body] = summary
    return summary


def parse_frame(
    data: bytes, linktype: int, ts: float, mono: float, counters: Counter[str]
) -> WifiFrame | None:
    """Parse one captured frame; None (and a counted reason) for anything the scanner skips.

    Hand-written bounds checks throughout: every index is checked against the frame length
    before it is read, so no input raises.
    """
    n = len(data)
    rssi: int | None = None
    freq: int | None = None
    if linktype == LINKTYPE_IEEE802_11_RADIOTAP:
        if n < 8:
            counters["radiotap_short"] += 1
            return None
        # Common case: one bitmap (bit 31 clear), the layout cached under length + bitmap.
        layout = None if data[7] & 0x80 else _LAYOUTS.get(data[2:8])
        if layout is None or data[0]:
            layout = _radiotap_layout(data, counters)
            if layout is None:
                return None
        hl, flags_off, chan_off, sig_off = layout
        if hl > n:
            counters["radiotap_malformed"] += 1
            return None
        end = n
        if flags_off >= 0:
            flags = data[flags_off]
            if flags & 0x50:
                if flags & radiotap.FLAG_BAD_FCS:
                    counters["bad_fcs"] += 1
                    return None
                end = n - FCS_LEN
        if sig_off >= 0:
            rssi = _S8[data[sig_off]]
        if chan_off >= 0:
            freq = data[chan_off] | data[chan_off + 1] << 8
            if not freq:
                freq = None
    elif linktype == LINKTYPE_IEEE802_11:
        hl = 0
        end = n
    else:
        counters["unsupported_linktype"] += 1
        return None

    if end - hl < HEADER_LEN:
        # Control frames (ACK, CTS: 10 bytes) are short by design, not malformed.
        if end > hl and data[hl] & 0x0C == 0x04:
            counters["skipped_ctrl"] += 1
        else:
            counters["dot11_short"] += 1
        return None
    fc0 = data[hl]
    if fc0 == FC0_PROBE_REQ:
        body_at = hl + HEADER_LEN
        if data[hl + 1] & FC1_ORDER:
            body_at += 4
            if body_at > end:
                counters["dot11_short"] += 1
                return None
        if _WALK is not None:
            ssid, fingerprint, reason = _WALK(data, body_at, end)
        else:
            body = data[body_at:end]
            summary = _IE_CACHE.get(body)
            if summary is None:
                summary = _elements(body)
            ssid, fingerprint, reason = summary
        if reason is not None:
            counters[reason] += 1
        a2 = data[hl + 10 : hl + 16]
        a3 = data[hl + 16 : hl + 22]
        frame = (_FrameSlots if FAST_CONSTRUCT else WifiFrame)(
            ts,
            mono,
            "probe_req",
            a2.hex(":"),
            bool(a2[0] & 0x02),
            rssi,
            freq,
            ssid,
            (data[hl + 22] | data[hl + 23] << 8) >> 4,
            fingerprint,
            None if a3 == _BROADCAST else a3.hex(":"),
            None,
            raw=data,
        )
        if FAST_CONSTRUCT:
            frame.__class__ = _FRAME_CLASS
        return frame  # type: ignore[return-value]
    subtype = _DATA_BY_FC0.get(fc0)
    if subtype is None:
        if fc0 & 0x03:
            counters["dot11_bad_version"] += 1
        else:
            counters[f"skipped_{_TYPE_NAMES[(fc0 >> 2) & 3]}"] += 1
        return None
    ds = data[hl + 1] & 0x03
    if ds != FC1_TO_DS:
        counters["wds" if ds == 0x03 else "skipped_data_not_to_ds"] += 1
        return None
    a2 = data[hl + 10 : hl + 16]
    frame = (_FrameSlots if FAST_CONSTRUCT else WifiFrame)(
        ts,
        mono,
        subtype,
        a2.hex(":"),
        bool(a2[0] & 0x02),
        rssi,
        freq,
        None,
        (data[hl + 22] | data[hl + 23] << 8) >> 4,
        NO_FINGERPRINT,
        data[hl + 4 : hl + 10].hex(":"),
        data[hl + 16 : hl + 22].hex(":"),
        raw=data,
    )
    if FAST_CONSTRUCT:
        frame.__class__ = _FRAME_CLASS
    return frame  # type: ignore[return-value]
