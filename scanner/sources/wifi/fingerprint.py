"""Information elements of a probe request: the SSID and a fingerprint of the sender.

A phone that randomises its MAC keeps sending the same capabilities: which elements, in which
order, its supported rates and HT/VHT/HE/extended capabilities, and its vendor elements. Hashing
those gives a short id that survives MAC changes. Left out on purpose, because they change while
the handset stays the same: the SSID (directed probes name different networks), the DS parameter
channel (it follows the channel being scanned), the MAC and the sequence number.
"""

from __future__ import annotations

import hashlib

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


def _segment(material: bytes) -> str:
    return hashlib.blake2b(material, digest_size=SEGMENT_HEX_CHARS // 2).hexdigest()


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
    rates = bytearray()
    ids: set[int] = set()
    caps = bytearray()
    extcaps = b""
    order = bytearray()
    ssid: str | None = None
    reason: str | None = None
    n = len(body)
    i = 0
    while i < n:
        if i + 2 > n:
            reason = "ie_trailing_byte"
            break
        eid = body[i]
        length = body[i + 1]
        start = i + 2
        end = start + length
        if end > n:
            reason = "ie_truncated"
            break
        order.append(eid)
        if eid != EID_VENDOR:
            ids.add(eid)
        if eid == EID_SSID:
            if ssid is None:
                ssid = body[start:end].decode("utf-8", "replace")
        elif eid in (EID_SUPPORTED_RATES, EID_EXTENDED_RATES):
            rates.append(eid)
            rates.append(length)
            rates += body[start:end]
        elif eid in _CAPS_ELEMENTS:
            caps.append(eid)
            caps.append(length)
            caps += body[start:end]
        elif eid == EID_EXTENDED_CAPABILITIES:
            extcaps = bytes((length,)) + body[start:end]
        elif eid == EID_VENDOR:
            # The OUI and vendor type say which vendor features the driver announces; the rest
            # of a vendor element can carry per-probe data (WPS UUIDs, nonces).
            order += body[start : min(end, start + 4)]
            order.append(0xFF)
        elif eid == EID_EXTENSION and length >= 1:
            ext = body[start]
            order.append(ext)
            if ext in _CONTENT_EXTENSIONS:
                caps.append(eid)
                caps.append(length)
                caps += body[start:end]
        i = end
    base = bytes(rates) + bytes(sorted(ids))
    fingerprint = (
        _segment(base) + _segment(bytes(caps)) + _segment(extcaps) + _segment(bytes(order))
    )
    return ssid, fingerprint, reason
