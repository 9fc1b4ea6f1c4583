"""Pseudonymising MAC addresses for bundles shared outside the unit.

Each MAC or BLE address becomes ``HMAC-SHA256(site key, address)`` shaped as a MAC with the
locally administered bit set, so the same device keeps the same pseudonym across every file of
every bundle from this site, tools still parse it as an address, and nobody without the site key
can reverse it or link it to another site's bundles. The site key is the sealing key, kept in
its own file apart from the store (``scanner.export.seal_key``); it never leaves the unit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import zlib
from typing import Any

# Colon or dash separated 6-octet addresses; word boundaries keep longer hex runs intact.
MAC_RE = re.compile(
    r"(?<![0-9A-Fa-f:-])(?:[0-9A-Fa-f]{2}([:-]))(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])"
)
_BROADCAST = "ff:ff:ff:ff:ff:ff"


class Pseudonymiser:
    """Maps addresses to stable keyed pseudonyms; everything else passes through unchanged."""

    changes_addresses = True

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}

    def mac(self, address: str) -> str:
        norm = address.strip().lower().replace("-", ":")
        if norm == _BROADCAST:
            return address
        found = self._cache.get(norm)
        if found is None:
            digest = hmac.new(self._key, norm.encode(), hashlib.sha256).digest()
            # Locally administered, unicast: recognisably not a vendor's real address.
            octets = [(digest[0] & 0xFC) | 0x02, *digest[1:6]]
            found = ":".join(f"{o:02x}" for o in octets)
            self._cache[norm] = found
        return found.upper() if address.isupper() else found

    def text(self, value: str) -> str:
        """Every address inside free text (reasons, identifiers, device ids)."""
        return MAC_RE.sub(lambda m: self.mac(m.group(0).replace("-", ":")), value)

    def value(self, value: Any) -> Any:
        """Every address anywhere in a JSON-like value (dict keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value

    def mac_bytes(self, raw: bytes) -> bytes:
        return bytes.fromhex(self.mac(raw.hex(":")).replace(":", ""))

    def wifi_frame(self, frame: bytes) -> bytes:
        """A radiotap + 802.11 frame with its addresses replaced and its FCS recomputed.

        Bounds are checked by hand: a frame too short for its header is returned unchanged
        (it carried no address to hide).
        """
        if len(frame) < 8:
            return frame
        rt_len = _U16.unpack_from(frame, 2)[0]
        present = _U32.unpack_from(frame, 4)[0]
        has_fcs = False
        # Flags is the first radiotap field after TSFT (8 bytes, 8-aligned) when present.
        if present & 0x2 and not present & 0x80000000:
            flags_at = 8 + (8 if present & 0x1 else 0)
            if flags_at < rt_len <= len(frame):
                has_fcs = bool(frame[flags_at] & 0x10)
        body = bytearray(frame[rt_len:])
        if rt_len > len(frame) or len(body) < 10:
            return frame
        fc = body[0] | (body[1] << 8)
        ftype = (fc >> 2) & 0x3
        offsets = [4]  # addr1 is in every frame
        if not (ftype == 1 and len(body) < 16):
            offsets.append(10)
        if ftype != 1:
            offsets.append(16)
        if ftype == 2 and (fc >> 8) & 0x3 == 0x3:
            offsets.append(24)
        for at in offsets:
            if at + 6 <= len(body) - (4 if has_fcs else 0):
                body[at : at + 6] = self.mac_bytes(bytes(body[at : at + 6]))
        if has_fcs and len(body) >= 4:
            body[-4:] = _U32.pack(zlib.crc32(bytes(body[:-4])) & 0xFFFFFFFF)
        return frame[:rt_len] + bytes(body)


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class Identity:
    """The no-op pseudonymiser used when a bundle stays inside the unit."""

    changes_addresses = False

    def mac(self, address: str) -> str:
        return address

    def text(self, value: str) -> str:
        return value

    def value(self, value: Any) -> Any:
        return value

    def wifi_frame(self, frame: bytes) -> bytes:
        return frame
