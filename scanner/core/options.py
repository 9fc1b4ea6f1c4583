"""The core's options, parsed from the ``[core]`` section of the config file.

Every threshold carries its unit in its name. The defaults suit a sensor mounted at the zone's
entrance with the zone about five metres deep; ``checkpoint calibrate`` replaces the RSSI and SNR
thresholds per sensor with values measured on site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from scanner.config import ConfigError


@dataclass(frozen=True, slots=True)
class ZoneThresholds:
    """When one radio's smoothed signal means "inside the zone", with hysteresis."""

    enter_dbm: float  # RSSI (Wi-Fi, BLE) or SNR in dB (SDR) at which a device is inside
    exit_dbm: float  # below this it has left; the gap stops a boundary phone from flapping

    def to_dict(self) -> dict[str, float]:
        return {"enter_dbm": self.enter_dbm, "exit_dbm": self.exit_dbm}


# Defaults measured against the simulator's indoor path-loss model (2.7 exponent, an 8-14 dB wall
# between the zone and the corridor); a site overrides them with `checkpoint calibrate`.
DEFAULT_ZONE: dict[str, ZoneThresholds] = {
    "wifi": ZoneThresholds(enter_dbm=-55.0, exit_dbm=-59.0),
    "ble": ZoneThresholds(enter_dbm=-69.0, exit_dbm=-73.0),
    # SDR uses burst SNR. The network's power control spreads a phone's uplink over 15 dB
    # whatever its distance to us, so only a strong, sustained uplink counts as in the zone.
    "sdr": ZoneThresholds(enter_dbm=31.0, exit_dbm=26.0),
}


@dataclass(frozen=True, slots=True)
class CoreOptions:
    """Tunable behaviour of the detection core (``[core]`` in the TOML config)."""

    zone: dict[str, ZoneThresholds] = field(default_factory=lambda: dict(DEFAULT_ZONE))
    # Samples older than this no longer count towards a device's smoothed level.
    window_s: float = 8.0
    # A device unheard for this long is out of the zone whatever its last level.
    absent_s: float = 25.0
    # A device is inside when the median of its latest ``enter_samples`` samples (at least
    # ``min_samples`` of them) reaches the enter threshold: one lucky reflection is not enough.
    min_samples: int = 2
    enter_samples: int = 3
    # Just above the threshold is where a loiterer's lucky samples land: there the median of
    # the whole window (at least ``confirm_samples`` samples) must agree. A phone clearly
    # inside needs no more than the above.
    confirm_margin_db: float = 5.0
    confirm_samples: int = 5
    confirm_window_s: float = 16.0
    # A handset presence ends when all its devices have been out this long.
    leave_hold_s: float = 10.0
    # An alert closes once no handset has been present for this long.
    resolve_after_s: float = 20.0
    # An alert a restarted core finds open waits this long for its handsets to be heard again
    # before it is resolved: the capture daemons reconnect, and a phone's Wi-Fi may probe only
    # once a minute with the screen off (BLE is heard within seconds).
    adopt_grace_s: float = 60.0
    # Devices of different radios that enter the zone this close together are one handset.
    link_window_s: float = 6.0
    # ... or this close, when no other phone in the zone could be the one (Wi-Fi probes come
    # every 15 s to 3 minutes, BLE every second: a phone's two radios enter far apart).
    link_alone_window_s: float = 90.0
    # A tracker's join of two transmitters counts for the handset count only when both were
    # in the zone within this time of each other (an address rotating during a visit).
    identity_gap_s: float = 120.0
    # Uplink energy alone: bursts needed within the window, and how long Wi-Fi and BLE get to
    # name the transmitter before an "unidentified transmitter" alert is raised.
    sdr_min_bursts: int = 2
    sdr_enter_bursts: int = 2  # the level is the median of the latest this many bursts
    sdr_confirm_bursts: int = 4
    sdr_window_s: float = 6.0
    sdr_alone_after_s: float = 2.0
    sdr_absent_s: float = 15.0
    # (38 since the DSP's floor leaves bursts out of the noise estimate: measured SNR rose by
    # about a decibel, and a phone outside at full power reached 37 now and then.)
    sdr_alone_min_snr_db: float = 38.0
    # Ambient baseline: devices present from start-up through this period are learned as
    # ambient; afterwards, devices heard persistently outside the zone for this long are too.
    ambient_learning_s: float = 600.0
    ambient_min_fraction: float = 0.7  # of the minutes in the period in which it was heard
    ambient_first_seen_s: float = 90.0  # start-up: must be heard this early in the period
    ambient_margin_db: float = 8.0  # an ambient device this far above its usual level alerts
    allowlist: tuple[dict[str, str], ...] = ()
    allowlist_poll_s: float = 5.0
    store_devices_every_s: float = 30.0
    sensor_offsets_db: dict[str, float] = field(default_factory=dict)
    # Keys prefixed ``wifi_`` and ``ble_`` belong to the radio trackers (their own options).
    trackers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> CoreOptions:
        """Build options from the ``[core]`` table; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)} - {"trackers"}
        trackers = {k: v for k, v in section.items() if k.startswith(("wifi_", "ble_"))}
        section = {k: v for k, v in section.items() if k not in trackers}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"[core]: unknown key(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, raw in section.items():
            if key == "zone":
                values["zone"] = _parse_zone(raw)
            elif key == "allowlist":
                values["allowlist"] = _parse_allowlist(raw)
            elif key == "sensor_offsets_db":
                if not isinstance(raw, Mapping):
                    raise ConfigError("[core].sensor_offsets_db must be a table")
                values[key] = {str(k): float(v) for k, v in raw.items()}
            elif key in (
                "min_samples",
                "enter_samples",
                "confirm_samples",
                "sdr_min_bursts",
                "sdr_confirm_bursts",
            ):
                values[key] = _number(key, raw, int)
            else:
                values[key] = _number(key, raw, float)
        return cls(**values, trackers=trackers)


def _number(key: str, raw: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"[core].{key} must be a number, not {raw!r}")
    if raw < 0:
        raise ConfigError(f"[core].{key} must not be negative")
    return kind(raw)


def _parse_zone(raw: Any) -> dict[str, ZoneThresholds]:
    if not isinstance(raw, Mapping):
        raise ConfigError("[core.zone] must be a table of radios")
    zone = dict(DEFAULT_ZONE)
    for radio, spec in raw.items():
        if radio not in DEFAULT_ZONE or not isinstance(spec, Mapping):
            raise ConfigError(f"[core.zone.{radio}]: expected wifi, ble or sdr with a table")
        try:
            enter = float(spec["enter_dbm"])
            exit_ = float(spec.get("exit_dbm", enter - 4.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"[core.zone.{radio}]: needs a numeric enter_dbm") from exc
        if exit_ > enter:
            raise ConfigError(f"[core.zone.{radio}]: exit_dbm must not exceed enter_dbm")
        zone[str(radio)] = ZoneThresholds(enter, exit_)
    return zone


def _parse_allowlist(raw: Any) -> tuple[dict[str, str], ...]:
    from scanner.core.allowlist import FINGERPRINT, IDENTITY_KINDS, entry_of

    if not isinstance(raw, list):
        raise ConfigError("[core].allowlist must be an array of tables")
    entries: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, Mapping) or "match" not in item or "value" not in item:
            raise ConfigError("[core].allowlist entries need match and value")
        if item["match"] == FINGERPRINT:
            raise ConfigError(
                "[core].allowlist: a fingerprint is shared by every phone of one model and OS "
                f"version, it names no device ({item['value']!r}); use the device's MAC, BLE "
                "address or IRK (hardware.md)"
            )
        if item["match"] not in IDENTITY_KINDS:
            raise ConfigError(f"[core].allowlist: unknown match {item['match']!r}")
        if entry_of(item, "config") is None:
            raise ConfigError(f"[core].allowlist: {item['value']!r} is not a valid {item['match']}")
        entry = {
            "match": str(item["match"]),
            "value": str(item["value"]),
            "label": str(item.get("label", "")),
        }
        for extra in ("expires_ts", "fingerprint"):
            if extra in item:
                entry[extra] = str(item[extra])
        entries.append(entry)
    return tuple(entries)
