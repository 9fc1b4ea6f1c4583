"""Apple Continuity: the TLV messages inside Apple's manufacturer data (company id 0x004C).

Apple packs one or more messages into one advertisement as ``type (1 byte) | length (1 byte) |
value``. The message formats below come from published reverse engineering:

* Martin et al., "Handoff All Your Privacy: A Review of Apple's Bluetooth Low Energy
  Continuity Protocol", PETS 2019, and the furiousMAC/continuity dissector documentation that
  grew out of it (message types, Nearby Info action codes and flags, Handoff sequence number).
* Celosia and Cunche, "Discontinued Privacy: Personal Data Leaks in Apple Bluetooth-Low-Energy
  Continuity Protocols", PETS 2020 (remaining message types, Nearby Action types, Hey Siri
  device class).
* Heinrich et al., "Who Can Find My Devices?", PETS 2021 (OpenHaystack) for Offline Finding, and
  the AirGuard tracking-detection work (Heinrich et al. 2022) for the device-type bits of the
  Find My status byte.

Every decoder is a pure function over bytes with hand-written bounds checks: a short or odd
payload gives ``None`` (or a partial record), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLE_COMPANY_ID = 0x004C

# Message types (furiousMAC/continuity README; Celosia & Cunche 2020, table 1).
AIRPRINT = 0x03
AIRDROP = 0x05
HOMEKIT = 0x06
PROXIMITY_PAIRING = 0x07
HEY_SIRI = 0x08
AIRPLAY_TARGET = 0x09
AIRPLAY_SOURCE = 0x0A
MAGIC_SWITCH = 0x0B
HANDOFF = 0x0C
TETHERING_TARGET = 0x0D
TETHERING_SOURCE = 0x0E
NEARBY_ACTION = 0x0F
NEARBY_INFO = 0x10
FIND_MY = 0x12
IBEACON = 0x02
# Type 0x01 is the iOS "overflow area": a 16-byte bitmap of hashed service UUIDs with no length
# byte, used by apps advertising in the background.
OVERFLOW_AREA = 0x01
_OVERFLOW_LEN = 16

MESSAGE_NAMES: dict[int, str] = {
    OVERFLOW_AREA: "Overflow Area",
    IBEACON: "iBeacon",
    AIRPRINT: "AirPrint",
    AIRDROP: "AirDrop",
    HOMEKIT: "HomeKit",
    PROXIMITY_PAIRING: "Proximity Pairing",
    HEY_SIRI: "Hey Siri",
    AIRPLAY_TARGET: "AirPlay Target",
    AIRPLAY_SOURCE: "AirPlay Source",
    MAGIC_SWITCH: "Magic Switch",
    HANDOFF: "Handoff",
    TETHERING_TARGET: "Tethering Target",
    TETHERING_SOURCE: "Tethering Source",
    NEARBY_ACTION: "Nearby Action",
    NEARBY_INFO: "Nearby Info",
    FIND_MY: "Find My",
}

# Nearby Info action codes, the low nibble of the first byte (furiousMAC nearby_info.md; the
# meanings were established by Martin et al. 2019, section 5.3, by driving real devices).
ACTION_CODES: dict[int, str] = {
    0x00: "activity unknown",
    0x01: "activity reporting disabled",
    0x03: "idle (locked)",
    0x05: "audio playing, screen locked",
    0x07: "screen on",
    0x09: "screen on, video playing",
    0x0A: "watch on wrist and unlocked",
    0x0B: "recent user interaction",
    0x0D: "driving (CarPlay)",
    0x0E: "phone or FaceTime call",
}
WATCH_ACTION_CODE = 0x0A

# Nearby Action types (Celosia & Cunche 2020, table 3; furiousMAC nearby_action.md).
NEARBY_ACTION_TYPES: dict[int, str] = {
    0x01: "Apple TV setup",
    0x04: "mobile backup",
    0x05: "watch setup",
    0x06: "Apple TV pair",
    0x07: "internet relay",
    0x08: "Wi-Fi password request",
    0x09: "iOS setup",
    0x0A: "repair",
    0x0B: "speaker setup",
    0x0C: "Apple Pay",
    0x0D: "whole home audio setup",
    0x0E: "developer tools pairing request",
    0x0F: "answered call",
    0x10: "ended call",
    0x11: "DD ping",
    0x12: "DD pong",
    0x13: "remote auto fill",
    0x14: "companion link proximity",
    0x15: "remote management",
    0x16: "remote auto fill pong",
    0x17: "remote display",
}

# Hey Siri device class, 2 bytes (furiousMAC hey_siri.md, after Celosia & Cunche 2020).
SIRI_DEVICE_CLASSES: dict[int, str] = {
    0x0002: "iPhone",
    0x0003: "iPad",
    0x0007: "HomePod",
    0x0009: "MacBook",
    0x000A: "Apple Watch",
}

# Proximity Pairing device models, bytes 1-2 big-endian (values published by AirPods battery
# readers and by furiousMAC proximity_pairing.md).
PAIRING_MODELS: dict[int, str] = {
    0x0220: "AirPods",
    0x0F20: "AirPods (2nd gen)",
    0x1320: "AirPods (3rd gen)",
    0x1920: "AirPods (4th gen)",
    0x1B20: "AirPods (4th gen, ANC)",
    0x0E20: "AirPods Pro",
    0x1420: "AirPods Pro (2nd gen)",
    0x2420: "AirPods Pro (2nd gen, USB-C)",
    0x0A20: "AirPods Max",
    0x1F20: "AirPods Max (USB-C)",
    0x0320: "Powerbeats3",
    0x0B20: "Powerbeats Pro",
    0x0C20: "Beats Solo Pro",
    0x1120: "Beats Studio Buds",
    0x1020: "Beats Flex",
    0x0520: "BeatsX",
    0x0620: "Beats Solo3",
    0x0920: "Beats Studio3",
    0x1720: "Beats Studio Pro",
    0x1220: "Beats Fit Pro",
    0x1620: "Beats Studio Buds+",
}

# Find My status byte, bits 4-5: the kind of device (AirGuard, Heinrich et al. 2022; an AirTag
# shows 0x10 with the battery level in bits 6-7: 0x10, 0x50, 0x90, 0xD0).
FINDMY_OWNER_DEVICE = 0
FINDMY_AIRTAG = 1
FINDMY_ACCESSORY = 2
FINDMY_AIRPODS = 3
FINDMY_DEVICE_TYPES: dict[int, str] = {
    FINDMY_OWNER_DEVICE: "no accessory type",
    FINDMY_AIRTAG: "AirTag",
    FINDMY_ACCESSORY: "Find My network accessory",
    FINDMY_AIRPODS: "AirPods",
}


@dataclass(frozen=True, slots=True)
class ContinuityMessage:
    """One TLV from Apple manufacturer data."""

    type: int
    data: bytes

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.type, f"type 0x{self.type:02x}")


@dataclass(frozen=True, slots=True)
class NearbyInfo:
    """Nearby Info (0x10): the device's usage state, sent continuously by iOS."""

    status_flags: int  # high nibble of byte 0
    action_code: int  # low nibble of byte 0
    data_flags: int | None  # byte 1
    auth_tag: bytes  # bytes 2.., rotates with the address

    @property
    def action(self) -> str:
        return ACTION_CODES.get(self.action_code, "unknown action")


@dataclass(frozen=True, slots=True)
class Handoff:
    """Handoff (0x0C): clipboard flag, a sequence number that increases per activity."""

    clipboard: int
    sequence: int
    auth_tag: int | None


@dataclass(frozen=True, slots=True)
class ProximityPairing:
    """Proximity Pairing (0x07): AirPods/Beats status; the model id says which product."""

    model_id: int
    status: int | None
    colour: int | None

    @property
    def model(self) -> str | None:
        return PAIRING_MODELS.get(self.model_id)


@dataclass(frozen=True, slots=True)
class FindMy:
    """Find My / Offline Finding (0x12): a rotating public key and a status byte."""

    status: int
    device_type: int  # status bits 4-5
    battery: int  # status bits 6-7: 0 full .. 3 critical
    key_part: bytes  # 22 bytes of the public key in the long form, empty in the short form
    key_bits: int | None
    hint: int | None

    @property
    def long_form(self) -> bool:
        """True for the separated ("wild") form carrying the key; False near the owner."""
        return bool(self.key_part)


def split_messages(payload: bytes) -> tuple[list[ContinuityMessage], bool]:
    """The TLV messages of Apple manufacturer data (company id already removed).

    Returns the messages and whether the payload was malformed (a length running past the end);
    the messages before the fault are still returned.
    """
    out: list[ContinuityMessage] = []
    i = 0
    n = len(payload)
    while i < n:
        mtype = payload[i]
        if mtype == OVERFLOW_AREA:
            # No length byte: a fixed 16-byte bitmap follows.
            end = i + 1 + _OVERFLOW_LEN
            if end > n:
                return out, True
            out.append(ContinuityMessage(mtype, payload[i + 1 : end]))
            i = end
            continue
        if i + 1 >= n:
            return out, True
        end = i + 2 + payload[i + 1]
        if end > n:
            return out, True
        out.append(ContinuityMessage(mtype, payload[i + 2 : end]))
        i = end
    return out, False


def nearby_info(data: bytes) -> NearbyInfo | None:
    """Decode a Nearby Info value; None when it is empty."""
    if not data:
        return None
    return NearbyInfo(
        status_flags=data[0] >> 4,
        action_code=data[0] & 0x0F,
        data_flags=data[1] if len(data) > 1 else None,
        auth_tag=bytes(data[2:]),
    )


def handoff(data: bytes) -> Handoff | None:
    """Decode a Handoff value; None when too short for the sequence number."""
    if len(data) < 3:
        return None
    return Handoff(
        clipboard=data[0],
        sequence=(data[1] << 8) | data[2],
        auth_tag=data[3] if len(data) > 3 else None,
    )


def proximity_pairing(data: bytes) -> ProximityPairing | None:
    """Decode a Proximity Pairing value: prefix byte, 2-byte model id, status, ..., colour."""
    if len(data) < 3:
        return None
    return ProximityPairing(
        model_id=(data[1] << 8) | data[2],
        status=data[3] if len(data) > 3 else None,
        colour=data[8] if len(data) > 8 else None,
    )


def find_my(data: bytes) -> FindMy | None:
    """Decode a Find My value: the long (25-byte) separated form or the short near-owner form."""
    if not data:
        return None
    status = data[0]
    long_form = len(data) >= 25
    return FindMy(
        status=status,
        device_type=(status >> 4) & 0x03,
        battery=(status >> 6) & 0x03,
        key_part=bytes(data[1:23]) if long_form else b"",
        key_bits=data[23] if long_form else (data[1] if len(data) > 1 else None),
        hint=data[24] if long_form else None,
    )


def nearby_action_type(data: bytes) -> int | None:
    """The action type of a Nearby Action value (byte 1, after the flags byte)."""
    if len(data) < 2:
        return None
    return data[1]


def hey_siri_class(data: bytes) -> int | None:
    """The 2-byte device class of a Hey Siri value (bytes 4-5), or None when too short."""
    if len(data) < 6:
        return None
    return (data[4] << 8) | data[5]
