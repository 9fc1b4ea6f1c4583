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


# Defaults for a sensor at the zone's entrance with the zone about five metres deep; a site
# replaces them with `checkpoint calibrate` (a walk with a known phone). The reasons:
DEFAULT_ZONE: dict[str, ZoneThresholds] = {
    # A phone (about 15 dBm EIRP at 2.4 GHz, 40-46 dB loss at 1 m with the body) at 5 m with an
    # indoor exponent of 2.7 arrives near -50 dBm; -55 leaves 5 dB for a hand or a bag, and the
    # wall (8-14 dB) puts a phone just outside it below -59.
    "wifi": ZoneThresholds(enter_dbm=-55.0, exit_dbm=-59.0),
    # BLE advertises about 10-15 dB weaker than Wi-Fi probes (0 dBm or less), hence 14 dB lower.
    # The 4 dB gaps are hysteresis: about one standard deviation of slow shadowing, so a
    # phone standing at the edge does not flap in and out.
    "ble": ZoneThresholds(enter_dbm=-69.0, exit_dbm=-73.0),
    # SDR uses burst SNR over the receiver's floor (about -80 dBm in a burst's bandwidth at
    # the gain that keeps a phone at 1 m from clipping the 8-bit converter). Under power control
    # a phone in the zone transmits at 0-23 dBm: 31 dB is a phone at a few metres at about
    # 10 dBm. Power control spreads a phone's level by 15 dB whatever its distance, so level
    # alone cannot separate inside from just outside; see ``uplink_energy_in_zone``.
    "sdr": ZoneThresholds(enter_dbm=31.0, exit_dbm=26.0),
}


@dataclass(frozen=True, slots=True)
class CoreOptions:
    """Tunable behaviour of the detection core (``[core]`` in the TOML config)."""

    zone: dict[str, ZoneThresholds] = field(default_factory=lambda: dict(DEFAULT_ZONE))
    # Samples older than this no longer count towards a device's smoothed level: slow
    # shadowing decorrelates over a few seconds, and a walker crosses the zone in about 8.
    window_s: float = 8.0
    # A device unheard for this long is out of the zone whatever its last level: BLE phones
    # advertise every 0.2-2 s and a screen-on phone probes every 15-35 s, so 25 s of silence
    # from every address of a device means it has gone (or gone quiet, which it can't hide).
    absent_s: float = 25.0
    # A device is inside when the median of its latest ``enter_samples`` samples (at least
    # ``min_samples`` of them) reaches the enter threshold: fast fading is independent from
    # packet to packet, so the median of three rejects one lucky reflection (+2 sigma, 6-8 dB)
    # while a phone walking in is still seen within its first burst.
    min_samples: int = 2
    enter_samples: int = 3
    # Just above the threshold is where a loiterer's lucky samples land: there the median of
    # the whole window (at least ``confirm_samples`` samples) must agree. 5 dB is about two
    # standard deviations of slow shadowing, beyond which luck is implausible; 16 s is a few
    # shadowing time constants (the body turning, a door) so luck has averaged out.
    confirm_margin_db: float = 5.0
    confirm_samples: int = 5
    confirm_window_s: float = 16.0
    # A transmitter heard this long has an established level: its samples averaged with this
    # time constant, so several slow-shadowing excursions (a few seconds each: the body
    # turning) have averaged out in it, yet learned while a loiterer waits (minutes).
    history_s: float = 30.0
    # Such a transmitter whose established level is outside (below the enter level) enters
    # at a marginal level only after holding it this long. Crossing into the zone is a step
    # that lasts the visit: the wall's loss (8-14 dB) is gone for as long as the person stays
    # inside. A loiterer's fade up to the inside level lasts as long as one shadowing
    # excursion, a few seconds. This is the time a walker takes to cross the zone (the same 8
    # s as ``window_s``): a person who came in is still inside by then, a fade has ended. A
    # clear level (``confirm_margin_db`` above the enter level) enters at once, as does a
    # transmitter with no history (first heard inside).
    loiter_dwell_s: float = 8.0
    # A handset presence ends when all its devices have been out this long: a phone's Wi-Fi and
    # BLE fall silent for several seconds at a time, and a person at the edge steps in and out.
    leave_hold_s: float = 10.0
    # An alert closes once no handset has been present for this long (a phone between two
    # probe bursts is silent for 15-35 s on Wi-Fi, but BLE speaks every second or two).
    resolve_after_s: float = 20.0
    # An alert a restarted core finds open waits this long for its handsets to be heard again
    # before it is resolved: the capture daemons reconnect, and a phone's Wi-Fi may probe only
    # once a minute with the screen off (BLE is heard within seconds).
    adopt_grace_s: float = 60.0
    # Devices of different radios that enter the zone this close together are one handset: a
    # phone's BLE is heard within a second or two of its Wi-Fi burst as it crosses the edge.
    link_window_s: float = 6.0
    # ... or this close, when no other phone in the zone could be the one (Wi-Fi probes come
    # every 15 s to 3 minutes, BLE every second: a phone's two radios enter far apart).
    link_alone_window_s: float = 90.0
    # A tracker's join of two transmitters counts for the handset count only when both were
    # in the zone within this time of each other (an address rotating during a visit: the
    # longest phone rotation interval that can fall inside one visit is about 2 minutes).
    identity_gap_s: float = 120.0
    # Uplink energy: bursts needed within the window before it counts at all (a single burst
    # may be a neighbour's keep-alive), how many the level is the median of, and how many a
    # sustained uplink has (an idle phone with data sends a keep-alive of a few bursts every
    # 4-15 s; one in use, several a second; a passer-by's uplink rises and falls within the
    # window). The window is two keep-alive intervals.
    sdr_min_bursts: int = 2
    sdr_enter_bursts: int = 2  # the level is the median of the latest this many bursts
    sdr_confirm_bursts: int = 4
    sdr_window_s: float = 6.0
    # How long Wi-Fi and BLE get to name the transmitter before uplink energy alone alerts: a
    # phone in the zone advertising BLE (every 0.2-2 s) is named within this.
    sdr_alone_after_s: float = 2.0
    # Uplink silent this long has gone: three keep-alive intervals of an idle phone.
    sdr_absent_s: float = 15.0
    # An idle phone never sends the ``sdr_confirm_bursts`` of one in use within the window: its
    # keep-alives come a few bursts every 4-15 s. Its uplink is sustained instead when it has
    # held the transmitter in the zone this long (the window's level at the enter level at each
    # keep-alive, never silent for ``sdr_absent_s``): two of its longest keep-alive intervals.
    # A passer-by's uplink is at the zone's level for the few seconds of walking past the
    # gate (40 m at walking pace in this time); a phone that stays at the zone's level has
    # stayed where the level puts it. Someone waiting just outside is still explained by their
    # Wi-Fi or BLE heard there (``nearby_margin_db``).
    sdr_idle_hold_s: float = 30.0
    # A handset heard on Wi-Fi or BLE at most this far below the zone's exit level is "just
    # outside": close enough that its uplink at full power (23 dBm) reaches the SDR's enter
    # level. On one path, a phone's 2.4 GHz radios (15 dBm Wi-Fi, 8 dB more loss at 1 m) read
    # about 6 dB below the exit level where its uplink reads at the enter level; shadowing on
    # the two bands is independent (2.5 dB each, about 7 dB for two sigma of the difference).
    # Uplink energy heard while such a phone is there is most likely that phone.
    nearby_margin_db: float = 12.0
    # Ambient baseline: devices present from start-up through this period are learned as
    # ambient; afterwards, devices heard persistently outside the zone for this long are too.
    # Ten minutes: longer than any visit at a gate, short enough to be learned before a shift.
    ambient_learning_s: float = 600.0
    # ... heard in at least this share of the period's minutes: a fixed device misses a minute
    # now and then (channel hopping, fades), a person's phone comes and goes.
    ambient_min_fraction: float = 0.7
    # Start-up: must be heard this early in the period (a phone slower than a fixed device's
    # first beacon or probe is someone arriving, not the site).
    ambient_first_seen_s: float = 90.0
    # An ambient device this far above its usual (90th percentile) level alerts: beyond slow
    # shadowing's two standard deviations plus a wall, it has been carried towards the zone.
    ambient_margin_db: float = 8.0
    # Several sensors (``[[sensors]]``, ``scanner.core.placement``): a transmitter heard by a
    # sensor inside the zone and one at or beyond its boundary is judged on the difference of
    # the two levels of the same transmission (inside minus reference), which cancels its power
    # and its carrier's body. Crossing the fence moves the wall (8-14 dB) from the reference
    # sensor's path onto the inside one's: the difference jumps by twice the wall within a
    # step. Where it jumps depends on where the phone crosses, through the distances: for a
    # zone about five metres deep with the reference sensor at the gate, from about -31 to -7
    # dB at the gate (the reference sensor a metre away), from about -4 to +20 dB on the far
    # side of the zone. Far from the zone it tends to minus the wall (both distances alike).
    # So a phone outside is below -4 dB anywhere and a phone inside above -7 dB; entering at
    # -2 dB keeps one standard deviation of the difference's slow shadowing (about 2 dB: the
    # body shadows each sensor's direction differently) above the far side's outside phones,
    # and a phone more than a metre inside the gate is above it. Leaving at -6 dB is the
    # usual two sigma of hysteresis. ``checkpoint calibrate`` measures both on site.
    difference_enter_db: float = -2.0
    difference_exit_db: float = -6.0
    # Copies of one transmission heard by two sensors arrive within the sensors' clock
    # agreement once their offsets are applied (NTP on the site's LAN: tens of ms) plus the
    # transmission's own spread (a Wi-Fi scan visits its channels within about 120 ms, a BLE
    # advertising event within 10 ms): 0.3 s pairs them and never pairs a phone's positions
    # more than half a metre apart (walking speed).
    pair_window_s: float = 0.3
    # A receiver hears nothing below its sensitivity, so of the copies of a far phone's
    # transmissions it hears only those a fade lifted above it: near the sensitivity the copies
    # heard read high by that fade, and their difference from the reference sensor's copy (heard
    # well above its own sensitivity) is biased towards "inside" (a passer-by 15 m away reads
    # -1 dB where its true difference is -8). Fast fading spreads one phone's copies by about two
    # standard deviations (6-8 dB) either way, so a copy this far above the sensitivity would
    # have been heard on an ordinary fade too: its level is not selected by the receiver. A copy
    # closer to the sensitivity does not put a transmitter inside (it still keeps one inside:
    # leaving is decided as before). A phone in the zone is never that weak at the inside sensor:
    # BLE at 0 dBm, 12 dB of body, at the zone's far edge (8 m, exponent 2.7) arrives near -76.
    selection_margin_db: float = 8.0
    # The sensitivities: a BLE receiver (the Pi's on-board controller, an RTL8761B adapter)
    # demodulates 1 Mb/s GFSK down to about -97 dBm; a Wi-Fi monitor adapter (hardware.md) its
    # 1 Mb/s DSSS probes down to about -95 dBm at the driver's reported RSSI.
    sensitivity_wifi_dbm: float = -95.0
    sensitivity_ble_dbm: float = -97.0
    # A placed sensor that delivers nothing for this long has gone (unplugged, crashed, its link
    # down): a site's access points and stations are heard every few seconds by any working
    # sensor. Its zone decisions fall back to the other sensors' absolute levels.
    sensor_silent_s: float = 60.0
    # A sensor in fault (its daemon died, its node lost the broker) hears nothing, so the
    # phones only it heard are held in the zone instead of timing out as gone. Holding is right
    # for the outages that end by themselves (a daemon restarted by systemd within seconds, a
    # broker or access point back within minutes, the node's spool replaying what it heard);
    # beyond ten minutes the sensor needs a person, and a phone at a gate (a visit of minutes)
    # has more likely left than stayed, so the held alerts close as ``sensor_lost``, which a
    # guard does not read as a departure seen.
    sensor_hold_s: float = 600.0
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
            elif key in ("difference_enter_db", "difference_exit_db"):
                values[key] = _signed(key, raw, DIFFERENCE_LIMIT_DB)
            elif key in ("sensitivity_wifi_dbm", "sensitivity_ble_dbm"):
                values[key] = _sensitivity(key, raw)
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
        out = cls(**values, trackers=trackers)
        if out.difference_exit_db > out.difference_enter_db:
            raise ConfigError("[core].difference_exit_db must not exceed difference_enter_db")
        return out


# Ranges outside which a value would switch off the check it belongs to (a margin of 400 dB,
# a window of a day) or make it meaningless; the physical reasons are at the fields above.
_LIMITS: dict[str, tuple[float, float]] = {
    "window_s": (1.0, 120.0),
    "absent_s": (2.0, 600.0),
    "min_samples": (1, 20),
    "enter_samples": (1, 20),
    "confirm_margin_db": (0.0, 20.0),
    "confirm_samples": (1, 60),
    "confirm_window_s": (1.0, 300.0),
    "history_s": (1.0, 3600.0),
    "loiter_dwell_s": (0.0, 120.0),
    "link_window_s": (0.5, 60.0),
    "link_alone_window_s": (1.0, 600.0),
    "sdr_min_bursts": (1, 50),
    "sdr_enter_bursts": (1, 50),
    "sdr_confirm_bursts": (1, 100),
    "sdr_window_s": (0.5, 120.0),
    "sdr_alone_after_s": (0.0, 120.0),
    "sdr_idle_hold_s": (5.0, 600.0),
    "nearby_margin_db": (0.0, 30.0),
    "ambient_min_fraction": (0.1, 1.0),
    "ambient_margin_db": (1.0, 30.0),
    "pair_window_s": (0.01, 5.0),
    "selection_margin_db": (0.0, 30.0),
    "sensor_silent_s": (5.0, 3600.0),
    "sensor_hold_s": (0.0, 3600.0),
}
# Beyond this the difference would say a phone in front of a sensor is on the other side.
DIFFERENCE_LIMIT_DB = 40.0


def _signed(key: str, raw: Any, limit: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"[core].{key} must be a number, not {raw!r}")
    if not -limit <= raw <= limit:
        raise ConfigError(f"[core].{key} = {raw} is outside -{limit:g}..{limit:g} dB")
    return float(raw)


# A receiver's sensitivity: none hears below -110 dBm (thermal noise in 1-2 MHz), and one deaf
# above -70 would miss the phones it is there for.
SENSITIVITY_LIMITS_DBM = (-110.0, -70.0)


def _sensitivity(key: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"[core].{key} must be a number, not {raw!r}")
    lo, hi = SENSITIVITY_LIMITS_DBM
    if not lo <= raw <= hi:
        raise ConfigError(f"[core].{key} = {raw} is outside {lo:g}..{hi:g} dBm")
    return float(raw)


def _number(key: str, raw: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"[core].{key} must be a number, not {raw!r}")
    if raw < 0:
        raise ConfigError(f"[core].{key} must not be negative")
    limits = _LIMITS.get(key)
    if limits is not None and not limits[0] <= raw <= limits[1]:
        raise ConfigError(
            f"[core].{key} = {raw} is outside {limits[0]:g}..{limits[1]:g}: "
            "a value there would switch the check off"
        )
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
