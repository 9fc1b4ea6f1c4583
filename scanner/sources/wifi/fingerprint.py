"""Information elements of a probe request: the SSID and a fingerprint of the sender.

A phone that randomises its MAC keeps sending the same capabilities: which elements, in which
order, its supported rates and HT/VHT/HE/extended capabilities, and its vendor elements. Hashing
those gives a short id that survives MAC changes. Left out on purpose, because they change while
the handset stays the same: the SSID (directed probes name different networks), the DS parameter
channel (it follows the channel being scanned), the MAC and the sequence number.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

EID_SSID = 0
EID_SUPPORTED_RATES = 1
EID_DS_PARAMETER = 3
EID_HT_CAPABILITIES = 45
EID_EXTENDED_RATES = 50
EID_EXTENDED_CAPABILITIES = 127
EID_VHT_CAPABILITIES = 191
EID_VENDOR = 221
EID_EXTENSION = 255
EXT_HE_CAPABILITIES = 35

# Elements whose whole body is a property of the hardware and driver, not of the moment.
_CAPS_ELEMENTS = frozenset({EID_HT_CAPABILITIES, EID_VHT_CAPABILITIES})
_RATE_ELEMENTS = frozenset({EID_SUPPORTED_RATES, EID_EXTENDED_RATES})
_CONTENT_EXTENSIONS = frozenset({EXT_HE_CAPABILITIES})

FINGERPRINT_HEX_CHARS = 16
SEGMENT_HEX_CHARS = 4
SEGMENTS = ("base", "caps", "extcaps", "order")
"""The fingerprint is four 4-hex segments, so the tracker can tell a near match (a phone that
varies one part of its element list between scans) from a different phone:

* base: supported and extended rates, and the set of element ids (vendor elements aside);
* caps: HT, VHT and HE capabilities;
* extcaps: extended capabilities (the part phones vary most between scan types);
* order: element ids in order, extension ids, vendor OUIs and types.
"""
NO_FINGERPRINT = ""
"""The fingerprint of frames without information elements (data and null frames)."""

IeSummary = tuple[str | None, str, str | None]
"""(ssid, fingerprint, malformed reason or None)."""


RangeWalk = Callable[[bytes, int, int], IeSummary]
"""``walk(data, start, end)``: ``summarise_elements(data[start:end])`` without the slice."""


def compiled_walk() -> RangeWalk | None:
    """The compiled element walk (``_ewalk.c``) when it was built for this Python, else None.

    It returns exactly what ``summarise_elements`` returns; the pure-Python function stays the
    reference (the tests compare the two) and the fallback where no compiler was at hand.
    """
    try:
        from scanner.sources.wifi._ewalk import summarise
    except ImportError:
        return None
    return summarise


def _segment(material: bytes) -> str:
    # CRC-32 folded to 16 bits: stable across versions and platforms (it is a fixed
    # polynomial), ten times cheaper than a cryptographic hash, and nothing here is secret.
    crc = zlib.crc32(material)
    return f"{(crc ^ (crc >> 16)) & 0xFFFF:04x}"


def segments(fingerprint: str) -> tuple[str, ...]:
    """Split a fingerprint into its four segments (empty tuple for ``NO_FINGERPRINT``)."""
    if len(fingerprint) != FINGERPRINT_HEX_CHARS:
        return ()
    step = SEGMENT_HEX_CHARS
    return tuple(fingerprint[i : i + step] for i in range(0, FINGERPRINT_HEX_CHARS, step))


def summarise_elements(body: bytes) -> IeSummary:
    """Walk the element list of a probe request body and return its SSID and fingerprint.

    Hand-written bounds checks: an element whose length runs past the body ends the walk; the
    elements before it still count, and the reason is returned for the caller to count.
    """
    rates: list[bytes] = []
    ids: set[int] = set()
    caps: list[bytes] = []
    extcaps = b""
    order = bytearray()
    ssid: str | None = None
    reason: str | None = None
    caps_ids = _CAPS_ELEMENTS
    rate_ids = _RATE_ELEMENTS
    n = len(body)
    i = 0
    while i < n:
        if i + 2 > n:
            reason = "ie_trailing_byte"
            break
        eid = body[i]
        end = i + 2 + body[i + 1]
        if end > n:
            reason = "ie_truncated"
            break
        order.append(eid)
        if eid == EID_SSID:
            ids.add(eid)
            if ssid is None:
                ssid = body[i + 2 : end].decode("utf-8", "replace")
        elif eid == EID_VENDOR:
            # The OUI and vendor type say which vendor features the driver announces; the rest
            # of a vendor element can carry per-probe data (WPS UUIDs, nonces).
            order += body[i + 2 : min(end, i + 6)]
            order.append(0xFF)
        else:
            ids.add(eid)
            if eid in rate_ids:
                rates.append(body[i:end])
            elif eid in caps_ids:
                caps.append(body[i:end])
            elif eid == EID_EXTENDED_CAPABILITIES:
                extcaps = body[i + 1 : end]
            elif eid == EID_EXTENSION and end > i + 2:
                ext = body[i + 2]
                order.append(ext)
                if ext in _CONTENT_EXTENSIONS:
                    caps.append(body[i:end])
        i = end
    base = b"".join(rates) + bytes(sorted(ids))
    fingerprint = (
        _segment(base) + _segment(b"".join(caps)) + _segment(extcaps) + _segment(bytes(order))
    )
    return ssid, fingerprint, reason
