"""Identity Resolving Keys: recognising one device behind its rotating private addresses.

A phone advertises from a resolvable private address (RPA) that changes about every 15 minutes:
24 random bits ``prand`` (top two bits 0b01) and a 24-bit ``hash = ah(IRK, prand)``. Whoever holds
the device's IRK (exchanged when it paired, e.g. with the installer's laptop) recomputes the
hash and knows the device, passively and whatever the rotation; nobody else can link the
addresses. Core Specification Vol 3 Part H 2.2.2 (``ah``) and 2.2.1 (``e`` = AES-128), Vol 6
Part B 1.3.2.2 (the RPA layout).

Pure functions over bytes; keys are 16 bytes, most significant octet first as the spec writes
them. BlueZ stores a paired device's IRK in ``/var/lib/bluetooth/<adapter>/<device>/info`` as
32 hex digits least significant octet first (the byte order of its management interface):
``read_bluez_irk`` turns it around.
"""

from __future__ import annotations

import configparser
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from scanner.errors import RecordingError

_LOGGER = logging.getLogger(__name__)

IRK_LEN = 16
_PADDING = bytes(13)  # r' = 13 zero octets || r (Vol 3 Part H 2.2.2)
_RPA_MARK = 0b01  # the two most significant bits of prand in a resolvable private address
_HEX_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{32})")


def e(key: bytes, plaintext: bytes) -> bytes:
    """The security function ``e``: AES-128 of one block, octets most significant first."""
    if len(key) != IRK_LEN or len(plaintext) != 16:
        raise ValueError("e() takes a 16-byte key and a 16-byte block")
    # Imported on first use: the core and the API import this module with the allowlist, and
    # cryptography's OpenSSL costs each of them 9 MB of RSS on a site that lists no IRK.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 one block, as the spec's e()
    return encryptor.update(plaintext) + encryptor.finalize()


def ah(irk: bytes, prand: bytes) -> bytes:
    """The random address hash function: the 3 low octets of ``e(irk, padding || prand)``."""
    if len(prand) != 3:
        raise ValueError("prand is 3 bytes")
    return e(irk, _PADDING + prand)[-3:]


def address_bytes(address: str) -> bytes | None:
    """``AA:BB:CC:DD:EE:FF`` as 6 bytes, most significant first; None when it is not one."""
    parts = address.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return None
    try:
        return bytes.fromhex("".join(parts))
    except ValueError:
        return None


def is_resolvable(address: str) -> bool:
    """Whether a random address is a resolvable private address (top two bits 0b01)."""
    raw = address_bytes(address)
    return raw is not None and raw[0] >> 6 == _RPA_MARK


def make_rpa(irk: bytes, prand: bytes) -> str:
    """The resolvable private address a device with ``irk`` derives from ``prand`` (whose top
    two bits are forced to 0b01), in the colon form BlueZ reports."""
    if len(prand) != 3:
        raise ValueError("prand is 3 bytes")
    prand = bytes([(prand[0] & 0x3F) | (_RPA_MARK << 6)]) + prand[1:]
    return ":".join(f"{b:02X}" for b in prand + ah(irk, prand))


def resolves(address: str, irk: bytes) -> bool:
    """Whether ``address`` is a resolvable private address generated from ``irk``."""
    raw = address_bytes(address)
    if raw is None or raw[0] >> 6 != _RPA_MARK:
        return False
    return ah(irk, raw[:3]) == raw[3:]


def resolve(address: str, irks: Iterable[bytes]) -> bytes | None:
    """The key among ``irks`` that generated ``address``, or None (also for addresses that are
    not resolvable private ones: public, static, non-resolvable)."""
    raw = address_bytes(address)
    if raw is None or raw[0] >> 6 != _RPA_MARK:
        return None
    prand, hash_ = raw[:3], raw[3:]
    for irk in irks:
        if ah(irk, prand) == hash_:
            return irk
    return None


def parse_irk(text: str) -> bytes:
    """An IRK written as 32 hex digits (optionally ``0x``-prefixed), most significant first."""
    match = _HEX_KEY.fullmatch(text.strip())
    if match is None:
        raise ValueError("an IRK is 32 hex digits")
    return bytes.fromhex(match.group(1))


def read_bluez_irk(path: str | Path) -> bytes | None:
    """The IRK of a paired device from BlueZ's ``info`` file, most significant octet first;
    None when the device gave none (a public-address device, or an old pairing).

    Raises ``RecordingError`` when the file cannot be read or its key is not 32 hex digits.
    """
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with Path(path).open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except configparser.Error as exc:
        raise RecordingError(f"{path} is not a BlueZ info file: {exc}") from exc
    value = parser.get("IdentityResolvingKey", "Key", fallback=None)
    if value is None:
        return None
    try:
        stored = parse_irk(value)
    except ValueError as exc:
        raise RecordingError(f"{path}: [IdentityResolvingKey] Key is not 32 hex digits") from exc
    # BlueZ writes the key octets in the order its management interface carries them, least
    # significant first (src/adapter.c store_irk / get_irk_info).
    return stored[::-1]
