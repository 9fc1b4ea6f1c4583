"""``[ble]`` configuration: the typed options of the BLE capture source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.config import ConfigError
from scanner.sources.base import SourceOptions
from scanner.sources.ble import vendors
from scanner.sources.ble.constants import REREPORT_S
from scanner.sources.ble.continuity import APPLE_COMPANY_ID

# BLE scanning modes. Passive only listens; active sends a SCAN_REQ to every advertiser it hears,
# so the radio transmits and the appliance is no longer receive-only: it must be asked for.
PASSIVE = "passive"
ACTIVE = "active"
SCANNING_MODES = (PASSIVE, ACTIVE)

# AD types an or-pattern can select (Bluetooth Core Supplement, Part A, 1.1 and 1.4).
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_SERVICE_DATA16 = 0x16
AD_MANUFACTURER_DATA = 0xFF

# Manufacturer data the classifier decodes: Apple Continuity, Microsoft CDP / Swift Pair, Samsung
# EasySetup (company ids, little-endian on air), and the vendors whose id alone names a kind
# (wearables and audio: reported so they are known not to be phones).
_PATTERN_COMPANIES = (
    APPLE_COMPANY_ID,
    vendors.MICROSOFT_COMPANY_ID,
    vendors.SAMSUNG_COMPANY_ID,
    *vendors.COMPANY_KINDS,
)
# 16-bit services the classifier places: Fast Pair, Exposure Notification, Google Nearby,
# Eddystone (beacons and Find My Device network tags), SmartTag, Tile, Apple's and DULT's
# unwanted-tracking services.
_PATTERN_SERVICES = (
    vendors.UUID_FAST_PAIR,
    vendors.UUID_EXPOSURE_NOTIFICATION,
    vendors.UUID_GOOGLE_NEARBY,
    vendors.UUID_EDDYSTONE,
    vendors.UUID_SAMSUNG_SMARTTAG,
    *vendors.UUID_TILE,
    vendors.UUID_APPLE_FINDMY_UT,
    vendors.UUID_DULT,
    *vendors.MEMBER_UUID_KINDS,
)


def _default_or_patterns() -> tuple[tuple[int, int, bytes], ...]:
    out = [(0, AD_MANUFACTURER_DATA, c.to_bytes(2, "little")) for c in _PATTERN_COMPANIES]
    for uuid in _PATTERN_SERVICES:
        le = uuid.to_bytes(2, "little")
        out.append((0, AD_SERVICE_DATA16, le))
        # A service advertised without data (a tracker's UUID list) is placed too; a pattern
        # matches at a fixed offset, so only when the service is first in the list.
        out.append((0, AD_UUID16_COMPLETE, le))
        out.append((0, AD_UUID16_INCOMPLETE, le))
    return tuple(out)


# The or-patterns used for passive scanning when none are configured: BlueZ's advertisement
# monitor only reports adverts that match one (bleak OrPattern: start position, AD type, bytes).
# They select every payload the classifier can place; anything else (a local name alone, an
# unknown vendor) is not evidence of a phone and is not reported.
DEFAULT_OR_PATTERNS: tuple[tuple[int, int, bytes], ...] = _default_or_patterns()


@dataclass(frozen=True, slots=True)
class BleOptions(SourceOptions):
    """Options of the BLE source, from the ``[ble]`` section."""

    sensor: str = "ble"
    adapter: str | None = "hci0"  # None ("auto" in the config): the first adapter BlueZ lists
    # Passive needs BlueZ advertisement monitors (bluetoothd --experimental); "active" transmits
    # scan requests and is an explicit opt-in.
    scanning_mode: str = PASSIVE
    or_patterns: tuple[tuple[int, int, bytes], ...] = DEFAULT_OR_PATTERNS
    # BlueZ's DuplicateData filter of an active discovery: True reports every advert, so RSSI
    # keeps flowing. A passive scan has no discovery filter; see rereport_s.
    duplicate_data: bool = True
    # Passive: how often BlueZ's cached objects of passing devices are dropped so that the
    # devices still in range are reported again (constants.REREPORT_S); 0: only as each scan
    # starts.
    rereport_s: float = REREPORT_S
    # Try to power the adapter on when it is off (bluetoothd may refuse: rfkill).
    power_on: bool = True
    # Bounded handoff between the D-Bus thread and the sink; overflow is a counted drop.
    queue_size: int = 8192
    status_interval_s: float = 30.0
    record_path: str | None = None

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> BleOptions:
        """Parse ``[ble]``; unknown keys and wrong types raise ``ConfigError``."""
        known = {
            "enabled",
            "sensor",
            "silence_after_s",
            "adapter",
            "scanning_mode",
            "or_patterns",
            "duplicate_data",
            "rereport_s",
            "power_on",
            "queue_size",
            "status_interval_s",
            "record",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"[ble]: unknown key(s) {', '.join(unknown)}")
        mode = section.get("scanning_mode", PASSIVE)
        if mode not in SCANNING_MODES:
            raise ConfigError(
                "[ble] scanning_mode must be 'passive' (receive-only) or 'active' "
                "(transmits scan requests)"
            )
        adapter = section.get("adapter", "hci0")
        if not isinstance(adapter, str) or not adapter:
            raise ConfigError("[ble] adapter must be an adapter name such as 'hci0', or 'auto'")
        if adapter == "auto":
            adapter = None  # the first adapter BlueZ lists
        patterns = DEFAULT_OR_PATTERNS
        if "or_patterns" in section:
            patterns = _parse_patterns(section["or_patterns"])
        return cls(
            sensor=_typed(section, "sensor", str, "ble"),
            silence_after_s=float(_typed(section, "silence_after_s", (int, float), 90.0)),
            adapter=adapter,
            scanning_mode=mode,
            or_patterns=patterns,
            duplicate_data=_typed(section, "duplicate_data", bool, True),
            rereport_s=float(_typed(section, "rereport_s", (int, float), REREPORT_S)),
            power_on=_typed(section, "power_on", bool, True),
            queue_size=max(16, _typed(section, "queue_size", int, 8192)),
            status_interval_s=float(_typed(section, "status_interval_s", (int, float), 30.0)),
            record_path=_typed(section, "record", str, None),
        )


def _typed(section: Mapping[str, Any], key: str, kind: Any, default: Any) -> Any:
    if key not in section:
        return default
    value = section[key]
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise ConfigError(f"[ble] {key} has the wrong type")
    if not isinstance(value, kind):
        raise ConfigError(f"[ble] {key} has the wrong type")
    return value


def _parse_patterns(raw: object) -> tuple[tuple[int, int, bytes], ...]:
    """``[[0, 255, "4c00"], ...]`` -> or-patterns."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("[ble] or_patterns must be a non-empty list of [start, ad_type, hex]")
    out: list[tuple[int, int, bytes]] = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], int)
            or not isinstance(item[1], int)
            or not isinstance(item[2], str)
        ):
            raise ConfigError("[ble] each or_pattern is [start, ad_type, hex]")
        try:
            content = bytes.fromhex(item[2])
        except ValueError as exc:
            raise ConfigError(f"[ble] or_pattern content {item[2]!r} is not hex") from exc
        out.append((item[0], item[1], content))
    return tuple(out)
