"""Zone presence: is a device inside the zone right now, from its recent signal levels.

Each device and radio keeps a short window of samples. Its level is the median of the window,
which shrugs off the single deep fades and reflections of indoor radio. A device enters the zone
when its level reaches the enter threshold over a few samples (or one sample far above it), and
leaves when its level falls below the lower exit threshold or it goes silent: the gap between
the two thresholds is the hysteresis that stops a phone standing at the boundary from flapping.

RSSI (Wi-Fi, BLE) and burst SNR (SDR) go through the same decision, each with its own
thresholds, taken from the site calibration when there is one. With sensors on both sides of
the boundary (``scanner.core.placement``) the same decision runs on the difference between
their levels of one transmission, with the difference thresholds; the transmitter's presence
then follows that decision while showing the inside sensor's level (``follow``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner.core.options import CoreOptions, ZoneThresholds
from scanner.core.sample_window import SampleWindow

# Samples kept per device and radio; more than a window's worth is never needed.
MAX_SAMPLES = 40
# Sensors' thresholds remembered at once: a site has a few sensors of three radios each.
MAX_THRESHOLDS_KEPT = 256
# The calibration entry that holds the level difference between placements (a walk that
# recorded an inside and a reference sensor at once), beside the per-sensor ones.
DIFFERENCE = "difference"


@dataclass(frozen=True, slots=True)
class Calibration:
    """One sensor's measured levels of a known phone: just outside the zone's edge (where it
    must not alert) and just inside it (where it must)."""

    sensor: str
    boundary_dbm: float
    inside_dbm: float

    def thresholds(self) -> ZoneThresholds:
        """Enter halfway between the two levels; leave a fifth of the way above the outside."""
        span = max(self.inside_dbm - self.boundary_dbm, 2.0)
        return ZoneThresholds(
            enter_dbm=round(self.boundary_dbm + 0.5 * span, 1),
            exit_dbm=round(self.boundary_dbm + 0.2 * span, 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "boundary_dbm": self.boundary_dbm,
            "inside_dbm": self.inside_dbm,
        }


def calibrations_from_setting(value: Any) -> dict[str, Calibration]:
    """Parse the ``zone_calibration`` setting; a malformed entry is skipped, never fatal."""
    out: dict[str, Calibration] = {}
    if not isinstance(value, Mapping):
        return out
    for sensor, spec in value.items():
        try:
            out[str(sensor)] = Calibration(
                str(sensor), float(spec["boundary_dbm"]), float(spec["inside_dbm"])
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


@dataclass(slots=True)
class Presence:
    """The zone state of one device on one radio."""

    samples: SampleWindow = field(default_factory=lambda: SampleWindow(MAX_SAMPLES))
    in_zone: bool = False
    level: float | None = None  # median of the recent samples: what a guard is shown
    window_level: float | None = None  # median of the whole window: what leaving is judged on
    last_mono: float = 0.0
    entered_mono: float | None = None
    changed: bool = False
    # The latest packet heard below the enter level when the level (the median of the latest
    # few) was below it too: the device was last judged short of the zone then (None: never).
    below_mono: float | None = None
    # The established level: every sample since ``first_mono`` averaged with the time constant
    # ``history_s``; reset when the transmitter has been silent long enough to have gone.
    first_mono: float | None = None
    history_level: float | None = None
    # When a transmitter with an outside history first read at a marginal inside level, while
    # it keeps doing so (see ``loiter_dwell_s``).
    marginal_mono: float | None = None
    # The sensor judging the transmitter, named by the core (presence reads it not): the one
    # that heard its latest level, or the inside one of the difference. A field here rather
    # than a table beside the presences beside it: a crowd's dict of them cost 75 bytes each.
    sensor: str | None = None


class ZoneModel:
    """Thresholds per sensor: calibration where measured, else the configured defaults."""

    def __init__(self, options: CoreOptions) -> None:
        self._options = options
        self._calibrations: dict[str, Calibration] = {}
        # (sensor, radio) -> its thresholds, worked out once a calibration: the core asks on
        # every record it judges.
        self._thresholds: dict[tuple[str, str], ZoneThresholds] = {}

    def set_calibrations(self, calibrations: Mapping[str, Calibration]) -> None:
        self._calibrations = dict(calibrations)
        self._thresholds = {}

    def thresholds(self, sensor: str, radio: str) -> ZoneThresholds:
        known = self._thresholds.get((sensor, radio))
        if known is not None:
            return known
        cal = self._calibrations.get(sensor) or self._calibrations.get(radio)
        th = cal.thresholds() if cal is not None else self._options.zone[radio]
        if len(self._thresholds) >= MAX_THRESHOLDS_KEPT:
            self._thresholds = {}  # sensor names from the wire: never a table without bound
        self._thresholds[(sensor, radio)] = th
        return th

    def difference_thresholds(self) -> ZoneThresholds:
        """Thresholds on the inside-minus-reference difference: measured, else configured."""
        cal = self._calibrations.get(DIFFERENCE)
        if cal is not None:
            return cal.thresholds()
        return ZoneThresholds(
            enter_dbm=self._options.difference_enter_db, exit_dbm=self._options.difference_exit_db
        )

    def offset(self, sensor: str) -> float:
        return self._options.sensor_offsets_db.get(sensor, 0.0)


@dataclass(frozen=True, slots=True)
class PresenceParams:
    """How one radio's samples are smoothed and judged."""

    window_s: float
    absent_s: float
    min_samples: int
    enter_samples: int
    confirm_margin_db: float = 0.0
    confirm_samples: int = 0
    confirm_window_s: float = 0.0
    history_s: float = 0.0  # 0: no history is kept (uplink energy, under power control)
    dwell_s: float = 0.0

    @classmethod
    def for_radio(cls, options: CoreOptions, radio: str) -> PresenceParams:
        if radio == "sdr":
            return cls(
                options.sdr_window_s,
                options.sdr_absent_s,
                options.sdr_min_bursts,
                options.sdr_enter_bursts,
                options.confirm_margin_db,
                options.sdr_confirm_bursts,
            )
        return cls(
            options.window_s,
            options.absent_s,
            options.min_samples,
            options.enter_samples,
            options.confirm_margin_db,
            options.confirm_samples,
            options.confirm_window_s,
            options.history_s,
            options.loiter_dwell_s,
        )


def update(
    presence: Presence,
    mono: float,
    level: float,
    thresholds: ZoneThresholds,
    options: PresenceParams,
) -> bool:
    """Add one sample and re-decide; returns True when the zone state changed."""
    _remember(presence, mono, level, options)
    presence.samples.append((mono, level))
    presence.last_mono = mono
    _expire(presence, mono, max(options.window_s, options.confirm_window_s))
    return _decide(presence, mono, thresholds, options)


def follow(
    presence: Presence, mono: float, level: float, decided: Presence, options: PresenceParams
) -> bool:
    """Add one sample for display and take the zone state ``decided`` elsewhere (the
    difference between sensors); returns True when the zone state changed."""
    presence.samples.append((mono, level))
    presence.last_mono = mono
    _expire(presence, mono, max(options.window_s, options.confirm_window_s))
    levels = presence.samples.levels()
    presence.level = _median(levels[-options.enter_samples :])
    presence.window_level = _median(levels)
    return adopt(presence, mono, decided)


def adopt(presence: Presence, mono: float, decided: Presence) -> bool:
    """Take the zone state of ``decided``; True when it changed."""
    if presence.in_zone == decided.in_zone:
        return False
    return _set(presence, mono, decided.in_zone)


def expire(
    presence: Presence, mono: float, thresholds: ZoneThresholds, options: PresenceParams
) -> bool:
    """Re-decide without a new sample (silence); returns True when the state changed."""
    if presence.in_zone and mono - presence.last_mono > options.absent_s:
        presence.samples.clear()
        presence.level = presence.window_level = None
        return _set(presence, mono, False)
    _expire(presence, mono, max(options.window_s, options.confirm_window_s))
    if not presence.samples:
        # Silence shorter than absent_s keeps the last decision: phones go quiet for seconds.
        return False
    return _decide(presence, mono, thresholds, options)


def continue_history(presence: Presence, earlier: Presence, options: PresenceParams) -> bool:
    """Carry ``earlier``'s established level into ``presence``, the same transmitter heard under
    a new address since: a phone rotating its address has not moved, so what its level has been
    for the last minutes is still what it is. ``presence``'s own samples are folded in after
    ``earlier``'s, as if they had come from the old address. Nothing is carried when the new
    address appeared after a silence long enough to have gone (``absent_s``), or when
    ``presence`` already has a longer history of its own. True when carried."""
    if options.history_s <= 0.0 or earlier.history_level is None or earlier.first_mono is None:
        return False
    start = presence.samples[0][0] if presence.samples else presence.first_mono
    if start is None or start - earlier.last_mono > options.absent_s:
        return False
    if presence.first_mono is not None and presence.first_mono <= earlier.first_mono:
        return False
    history = earlier.history_level
    last = earlier.last_mono
    for mono, level in presence.samples:
        if mono < last:
            continue
        history += (1.0 - math.exp(-(mono - last) / options.history_s)) * (level - history)
        last = mono
    presence.first_mono = earlier.first_mono
    presence.history_level = history
    return True


def _remember(presence: Presence, mono: float, level: float, options: PresenceParams) -> None:
    """Fold one sample into the transmitter's established level."""
    if options.history_s <= 0.0:
        return
    history = presence.history_level
    if (
        history is None
        or presence.first_mono is None
        or mono - presence.last_mono > options.absent_s
    ):
        # First heard, or back after a silence long enough to have gone: no history yet.
        presence.first_mono = mono
        presence.history_level = level
        return
    gain = 1.0 - math.exp(-max(mono - presence.last_mono, 0.0) / options.history_s)
    presence.history_level = history + gain * (level - history)


def _established_outside(
    presence: Presence, mono: float, thresholds: ZoneThresholds, options: PresenceParams
) -> bool:
    """Heard for ``history_s`` with its established level below the enter level."""
    return (
        options.history_s > 0.0
        and presence.first_mono is not None
        and mono - presence.first_mono >= options.history_s
        and presence.history_level is not None
        and presence.history_level < thresholds.enter_dbm
    )


def _expire(presence: Presence, mono: float, window_s: float) -> None:
    presence.samples.drop_older(mono, window_s)


def _median(values: list[float]) -> float:
    """``statistics.median`` of a list that is never empty (same arithmetic, same result),
    without its generality: it runs a few times on every record the core handles."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    if n % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def _decide(
    presence: Presence, mono: float, thresholds: ZoneThresholds, options: PresenceParams
) -> bool:
    samples = presence.samples
    if not samples:
        return False
    levels = samples.levels_within(mono, options.window_s) or [samples[-1][1]]
    window_level = _median(levels)
    # Entering looks only at the latest few samples so a phone walking in is seen within a
    # couple of samples; leaving looks at the whole window so one strong fade does not end it.
    recent = levels[-options.enter_samples :]
    level = _median(recent)
    presence.level = level
    presence.window_level = window_level
    enter_dbm = thresholds.enter_dbm
    if level < enter_dbm:
        # The packet below, not this one: the latest few may reach back to an earlier burst.
        below = samples.last_below(enter_dbm)
        presence.below_mono = samples[-1][0] if below is None else below
    if presence.in_zone:
        if window_level < thresholds.exit_dbm and level < thresholds.exit_dbm:
            return _set(presence, mono, False)
        return False
    if len(recent) < options.min_samples or level < enter_dbm:
        presence.marginal_mono = None
        return False
    if level >= enter_dbm + options.confirm_margin_db:
        return _set(presence, mono, True)
    # Marginal: the longer confirmation window must agree, so that a loiterer's few seconds
    # of lucky shadowing (which lasts seconds) do not put them inside.
    confirm = samples.levels()
    if len(confirm) < options.confirm_samples or _median(confirm) < enter_dbm:
        presence.marginal_mono = None
        return False
    if _established_outside(presence, mono, thresholds, options):
        # Long heard outside: a marginal reading is a fade until it has lasted as an entry
        # does (``loiter_dwell_s``); a fade ends sooner, a person who came in stays.
        if presence.marginal_mono is None:
            presence.marginal_mono = mono
        if mono - presence.marginal_mono < options.dwell_s:
            return False
    return _set(presence, mono, True)


def _set(presence: Presence, mono: float, in_zone: bool) -> bool:
    presence.in_zone = in_zone
    presence.entered_mono = mono if in_zone else None
    presence.marginal_mono = None
    presence.changed = True
    return True
