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
_CONTENT_ELEMENTS = frozenset(
    {
        EID_SUPPORTED_RATES,
        EID_EXTENDED_RATES,
        EID_HT_CAPABILITIES,
        EID_VHT_CAPABILITIES,
        EID_EXTENDED_CAPABILITIES,
    }
)
_CONTENT_EXTENSIONS = frozenset({EXT_HE_CAPABILITIES})

FINGERPRINT_HEX_CHARS = 16
NO_FINGERPRINT = ""
"""The fingerprint of frames without information elements (data and null frames)."""

IeSummary = tuple[str | None, str, str | None]
"""(ssid, fingerprint, malformed reason or None)."""


def digest(material: bytes) -> str:
    """Short stable hex of the fingerprint material (blake2b, 8 bytes)."""
    return hashlib.blake2b(material, digest_size=FINGERPRINT_HEX_CHARS // 2).hexdigest()


def summarise_elements(body: bytes) -> IeSummary:
    """Walk the element list of a probe request body and return its SSID and fingerprint.

    Hand-written bounds checks: an element whose length runs past the body ends the walk; the
    elements before it still count, and the reason is returned for the caller to count.
    """
    material = bytearray()
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
        if eid == EID_SSID:
            if ssid is None:
                ssid = body[start:end].decode("utf-8", "replace")
            material.append(EID_SSID)
        elif eid in _CONTENT_ELEMENTS:
            material.append(eid)
            material.append(length)
            material += body[start:end]
        elif eid == EID_VENDOR:
            # The OUI and vendor type say which vendor features the driver announces; the rest
            # of a vendor element can carry per-probe data (WPS UUIDs, nonces).
            material.append(eid)
            material += body[start : min(end, start + 4)]
        elif eid == EID_EXTENSION and length >= 1:
            ext = body[start]
            material.append(eid)
            material.append(ext)
            if ext in _CONTENT_EXTENSIONS:
                material.append(length)
                material += body[start + 1 : end]
        else:
            material.append(eid)
        i = end
    return ssid, digest(bytes(material)), reason
