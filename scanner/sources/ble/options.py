"""``[ble]`` configuration: the typed options of the BLE capture source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.config import ConfigError
from scanner.sources.base import SourceOptions

# The or-patterns used for passive scanning when none are configured: BlueZ's advertisement
# monitor only reports adverts that match one (bleak OrPattern: start position, AD type, bytes).
# They select the payloads the classifier can place: manufacturer data of Apple (0x004C),
# Microsoft (0x0006) and Samsung (0x0075), and 16-bit service data (AD type 0x16) of Fast Pair
# (0xFE2C), Exposure Notification (0xFD6F) and Google Nearby (0xFEF3), little-endian on air.
DEFAULT_OR_PATTERNS: tuple[tuple[int, int, bytes], ...] = (
    (0, 0xFF, b"\x4c\x00"),
    (0, 0xFF, b"\x06\x00"),
    (0, 0xFF, b"\x75\x00"),
    (0, 0x16, b"\x2c\xfe"),
    (0, 0x16, b"\x6f\xfd"),
    (0, 0x16, b"\xf3\xfe"),
)


@dataclass(frozen=True, slots=True)
class BleOptions(SourceOptions):
    """Options of the BLE source, from the ``[ble]`` section."""

    sensor: str = "ble"
    adapter: str | None = "hci0"  # None ("auto" in the config): the first adapter BlueZ lists
    scanning_mode: str = "active"  # "passive" needs BlueZ advertisement monitors (or-patterns)
    or_patterns: tuple[tuple[int, int, bytes], ...] = DEFAULT_OR_PATTERNS
    # BlueZ's DuplicateData filter: True reports every advert, so RSSI keeps flowing.
    duplicate_data: bool = True
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
            "power_on",
            "queue_size",
            "status_interval_s",
            "record",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"[ble]: unknown key(s) {', '.join(unknown)}")
        mode = section.get("scanning_mode", "active")
        if mode not in ("active", "passive"):
            raise ConfigError("[ble] scanning_mode must be 'active' or 'passive'")
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
