"""BLE device address kinds (Core spec Vol 6 Part B 1.3).

A random address says what it is in its two most significant bits:
``11`` static (fixed until power cycle), ``01`` resolvable private (rotates, usually every
~15 minutes, resolvable with the owner's IRK), ``00`` non-resolvable private (rotates, never
resolvable). ``10`` is reserved. Phones use resolvable private addresses, which is why the core
links adverts by payload and timing, not by address.
"""

from __future__ import annotations

PUBLIC = "public"
RANDOM_STATIC = "random_static"
RESOLVABLE_PRIVATE = "resolvable_private"
NON_RESOLVABLE_PRIVATE = "non_resolvable_private"
RESERVED = "random_reserved"
UNKNOWN = "unknown"

ROTATING = frozenset({RESOLVABLE_PRIVATE, NON_RESOLVABLE_PRIVATE})


def address_kind(address: str, address_type: str) -> str:
    """Classify an address given BlueZ's ``public``/``random`` type."""
    if address_type == "public":
        return PUBLIC
    if address_type != "random":
        return UNKNOWN
    # Hand-written bounds check: the first octet is the two hex digits before the first colon.
    if len(address) < 2:
        return UNKNOWN
    try:
        top = int(address[:2], 16) >> 6
    except ValueError:
        return UNKNOWN
    if top == 0b11:
        return RANDOM_STATIC
    if top == 0b01:
        return RESOLVABLE_PRIVATE
    if top == 0b00:
        return NON_RESOLVABLE_PRIVATE
    return RESERVED


def normalise_address(address: str) -> str | None:
    """Upper-case colon form (``AA:BB:CC:DD:EE:FF``) or None if it is not an address."""
    text = address.strip().replace("-", ":").upper()
    parts = text.split(":")
    if len(parts) != 6:
        return None
    for part in parts:
        if len(part) != 2:
            return None
        try:
            int(part, 16)
        except ValueError:
            return None
    return text
