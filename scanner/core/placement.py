"""Several sensors at one zone: inside or outside from the difference between placements.

One sensor judges a transmitter by its absolute level, which mixes the distance with what the
level cannot know: the phone's transmit power (a few dB between models, 30 dB under uplink power
control) and the body it is carried in (6-12 dB from hand to pocket). A sensor inside the zone
and one at or beyond its boundary (``[[sensors]] placement``) hear the *same transmission*
with the same power and the same pocket: the difference of the two levels (inside minus the
reference) depends on the path alone. Crossing the fence moves the wall from the reference
sensor's path onto the inside sensor's, so the difference jumps by twice the wall's loss within
a step, whatever the phone and however it is carried.

This module pairs the copies of one transmission heard on the two sides (the same transmitter
key, within ``pair_window_s`` of each other once each sensor's clock offset is applied: a Wi-Fi
scan, a BLE advertising event, an uplink burst) and keeps track of which sensors are alive. The
core decides presence on the differences (``scanner.core.presence``, the same windowed decision
with hysteresis as absolute levels, on the difference thresholds) while an inside sensor and a
reference sensor both hear the site; when one goes silent it falls back to the absolute level of
the sensors left, and says so (``SensorHealth`` events, and in every reason).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from scanner.core.options import CoreOptions

_LOGGER = logging.getLogger(__name__)

INSIDE = "inside"
REFERENCE = "reference"
# Placements whose level is the reference the inside level is compared with.
REFERENCE_PLACEMENTS = ("gate", "outside")


@dataclass(frozen=True, slots=True)
class Pair:
    """One transmission heard on both sides: the difference and the levels it came from."""

    mono: float
    difference_db: float  # inside minus reference
    inside_sensor: str
    inside_dbm: float
    reference_sensor: str
    reference_dbm: float


@dataclass(frozen=True, slots=True)
class Change:
    """A sensor fell silent or was heard again: whether differences can be taken changed."""

    sensor: str
    silent: bool
    fused: bool  # differences are taken (an inside and a reference sensor are alive)
    message: str


@dataclass(slots=True)
class _Pending:
    mono: float
    level: float


@dataclass(slots=True)
class SensorSites:
    """The placed sensors of a zone, their liveness, and the pairing of their levels."""

    placements: dict[str, str]
    pair_window_s: float
    silent_after_s: float
    _last: dict[str, float] = field(default_factory=dict)
    _silent: set[str] = field(default_factory=set)
    _faulty: set[str] = field(default_factory=set)
    _pending: dict[str, dict[str, _Pending]] = field(default_factory=dict)
    _start: float | None = None

    @classmethod
    def from_options(cls, placements: Mapping[str, str], options: CoreOptions) -> SensorSites:
        return cls(dict(placements), options.pair_window_s, options.sensor_silent_s)

    @property
    def enabled(self) -> bool:
        """True when the site has a sensor on each side: differences can be taken at all."""
        sides = {self.side(s) for s in self.placements}
        return INSIDE in sides and REFERENCE in sides

    def side(self, sensor: str) -> str | None:
        placement = self.placements.get(sensor)
        if placement == INSIDE:
            return INSIDE
        if placement in REFERENCE_PLACEMENTS:
            return REFERENCE
        return None

    # -- liveness ----------------------------------------------------------------------------
    def heard(self, sensor: str, mono: float) -> Change | None:
        """A record from ``sensor`` arrived; a Change when it had been silent."""
        if self._start is None:
            self._start = mono
        self._last[sensor] = mono
        if sensor in self._silent and sensor not in self._faulty:
            self._silent.discard(sensor)
            return self._change(sensor, False, "heard again")
        return None

    def status(self, sensor: str, healthy: bool, mono: float) -> Change | None:
        """A health report: a sensor reporting a fault is silent until it reports healthy."""
        if sensor not in self.placements:
            return None
        if not healthy:
            self._faulty.add(sensor)
            if sensor not in self._silent:
                self._silent.add(sensor)
                return self._change(sensor, True, "reports a fault")
            return None
        self._faulty.discard(sensor)
        if sensor in self._silent and mono - self._last.get(sensor, -1e18) <= self.silent_after_s:
            self._silent.discard(sensor)
            return self._change(sensor, False, "reports healthy")
        return None

    def check(self, mono: float) -> list[Change]:
        """Sensors that have just gone silent (nothing heard for ``silent_after_s``)."""
        if self._start is None:
            return []
        out: list[Change] = []
        for sensor in self.placements:
            if sensor in self._silent:
                continue
            last = self._last.get(sensor, self._start)
            if mono - last > self.silent_after_s:
                self._silent.add(sensor)
                self._pending_drop(sensor)
                out.append(self._change(sensor, True, f"silent for {mono - last:.0f} s"))
        return out

    def alive(self, sensor: str) -> bool:
        return sensor in self.placements and sensor not in self._silent

    @property
    def fused(self) -> bool:
        """True while an inside sensor and a reference sensor are both alive."""
        sides = {self.side(s) for s in self.placements if self.alive(s)}
        return INSIDE in sides and REFERENCE in sides

    @property
    def silent(self) -> list[str]:
        return sorted(self._silent)

    def _change(self, sensor: str, silent: bool, why: str) -> Change:
        fused = self.fused
        if fused:
            how = "zone decided by the level difference between sensors"
        else:
            alive = [s for s in sorted(self.placements) if self.alive(s)]
            how = (
                f"zone decided by the absolute level of {', '.join(alive)} alone"
                if alive
                else "no placed sensor is heard"
            )
        message = f"sensor {sensor} {why}: {how}"
        if silent:
            _LOGGER.warning("%s", message)
        else:
            _LOGGER.info("%s", message)
        return Change(sensor, silent, fused, message)

    # -- pairing -----------------------------------------------------------------------------
    def pair(self, key: str, sensor: str, mono: float, level: float) -> Pair | None:
        """Pair this copy of a transmission with the other side's copy, if heard in time.

        The other side's loudest copy within ``pair_window_s`` (the sensor nearest the phone on
        that side) is taken and used up; with none, this copy waits for the other side's.
        """
        side = self.side(sensor)
        if side is None:
            return None
        pending = self._pending.setdefault(key, {})
        best: tuple[str, _Pending] | None = None
        for other, p in list(pending.items()):
            if mono - p.mono > self.pair_window_s or p.mono - mono > self.pair_window_s:
                del pending[other]
                continue
            if self.side(other) != side and (best is None or p.level > best[1].level):
                best = (other, p)
        if best is None:
            pending[sensor] = _Pending(mono, level)
            return None
        other, p = best
        del pending[other]
        if not pending:
            del self._pending[key]
        if side == INSIDE:
            return Pair(mono, level - p.level, sensor, level, other, p.level)
        return Pair(mono, p.level - level, other, p.level, sensor, level)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def prune(self, mono: float) -> int:
        """Drop copies that waited longer than the window for their pair; returns how many."""
        dropped = 0
        for key in list(self._pending):
            pending = self._pending[key]
            for sensor in [s for s, p in pending.items() if mono - p.mono > self.pair_window_s]:
                del pending[sensor]
                dropped += 1
            if not pending:
                del self._pending[key]
        return dropped

    def _pending_drop(self, sensor: str) -> None:
        for key in list(self._pending):
            self._pending[key].pop(sensor, None)
            if not self._pending[key]:
                del self._pending[key]


def evidence(pair: Pair) -> str:
    """How the decision reads in an alert's reasons."""
    return (
        f"{pair.inside_sensor} {pair.difference_db:+.0f} dB vs {pair.reference_sensor} "
        "(same transmission)"
    )
