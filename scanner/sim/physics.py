"""Where people are and how strong their radios arrive: mobility, path loss, shadowing.

The site is a restricted room (the zone, a disc of ``zone_radius_m`` around the sensor) behind
walls; a corridor and open space lie outside. A signal from outside crosses a wall of
``wall_db``. Received level is the log-distance model with exponent ``exponent``, plus slow
shadowing (body, orientation: a first-order autoregressive process with a few seconds of memory)
and fast fading per packet. Numbers are typical published indoor figures at 2.4 GHz and 900 MHz.

One sensor stands at the zone's centre. Several sensors (``Site.receivers``) each hear every
transmission from their own position: the transmitter's power, its carrier's body and the
shadowing around the phone are shared, the path (distance, which side of the wall) and the fast
fading are each receiver's own, and so is part of the slow shadowing (the body shadows one
direction more than another).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Site:
    """The physical layout and propagation of one scenario."""

    zone_radius_m: float = 5.0
    wall_db: float = 12.0
    exponent: float = 2.7
    slow_sigma_db: float = 2.5
    fast_sigma_db: float = 2.5
    slow_tau_s: float = 6.0
    # Several sensors: each one's name and position (none: the one sensor at the centre).
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True, slots=True)
class Receiver:
    """One sensor of a several-sensor site: its name, placement and where it stands."""

    name: str
    placement: str  # inside | gate | outside (FORMATS.md)
    x: float
    y: float


# Where each placement stands, for a zone of radius R whose gate faces +x: ``inside`` at the
# zone's centre (where the one sensor stands), ``gate`` on the gate pillar's outer face half a
# metre beyond the fence line (it watches the approach), ``outside`` three metres beyond it.
# More sensors of one placement stand around the zone at a third of a turn from each other.
def receivers_for(site: Site, sensors: list[tuple[str, str]]) -> tuple[Receiver, ...]:
    """Positions for ``(name, placement)`` pairs, in order."""
    radius = site.zone_radius_m
    out: list[Receiver] = []
    seen: dict[str, int] = {}
    for name, placement in sensors:
        k = seen.get(placement, 0)
        seen[placement] = k + 1
        r = {"inside": 0.0 if k == 0 else radius / 2, "gate": radius + 0.5}.get(
            placement, radius + 3.0
        )
        a = k * 2.0 * math.pi / 3.0
        out.append(Receiver(name, placement, r * math.cos(a), r * math.sin(a)))
    return tuple(out)


def distance(x: float, y: float) -> float:
    return math.hypot(x, y)


def wall_loss(site: Site, r: float) -> float:
    """The wall's loss, ramped over half a metre (the doorway's thickness)."""
    if r <= site.zone_radius_m:
        return 0.0
    return site.wall_db * min(1.0, (r - site.zone_radius_m) / 0.5)


def _outside_share(site: Site, r: float) -> float:
    """0 inside the zone, 1 beyond the wall, ramped over its half-metre thickness."""
    return min(1.0, max(0.0, (r - site.zone_radius_m) / 0.5))


def receiver_loss(site: Site, rx: Receiver, x: float, y: float, pl1m_db: float) -> float:
    """Path loss from ``(x, y)`` to a receiver: log-distance, plus the wall when the two stand
    on opposite sides of it."""
    d = math.hypot(x - rx.x, y - rx.y)
    rx_out = _outside_share(site, math.hypot(rx.x, rx.y))
    tx_out = _outside_share(site, math.hypot(x, y))
    wall = site.wall_db * abs(tx_out - rx_out)
    return pl1m_db + 10.0 * site.exponent * math.log10(max(d, 0.5)) + wall


def path_loss(site: Site, r: float, pl1m_db: float) -> float:
    """Log-distance path loss plus the wall, at distance ``r`` metres (at least 0.5 m)."""
    return pl1m_db + 10.0 * site.exponent * math.log10(max(r, 0.5)) + wall_loss(site, r)


@dataclass(slots=True)
class Track:
    """A piecewise-linear path: waypoints (t, x, y); the device exists from first to last."""

    points: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, t: float, x: float, y: float) -> None:
        self.points.append((t, x, y))

    @property
    def start(self) -> float:
        return self.points[0][0]

    @property
    def end(self) -> float:
        return self.points[-1][0]

    def position(self, t: float) -> tuple[float, float]:
        pts = self.points
        if t <= pts[0][0]:
            return pts[0][1], pts[0][2]
        if t >= pts[-1][0]:
            return pts[-1][1], pts[-1][2]
        i = bisect.bisect_right([p[0] for p in pts], t)
        t0, x0, y0 = pts[i - 1]
        t1, x1, y1 = pts[i]
        f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return x0 + f * (x1 - x0), y0 + f * (y1 - y0)

    def zone_intervals(self, radius: float, step: float = 0.05) -> list[tuple[float, float]]:
        """Times inside the zone, found by stepping finely along the path."""
        out: list[tuple[float, float]] = []
        t = self.start
        inside_since: float | None = None
        while t <= self.end + 1e-9:
            x, y = self.position(t)
            inside = distance(x, y) <= radius
            if inside and inside_since is None:
                inside_since = t
            elif not inside and inside_since is not None:
                out.append((inside_since, t))
                inside_since = None
            t += step
        if inside_since is not None:
            out.append((inside_since, self.end))
        return out


class Shadowing:
    """Slow shadowing on a one-second grid (AR(1)), shared by all packets of one radio."""

    def __init__(self, rng: random.Random, sigma_db: float, tau_s: float) -> None:
        self._rng = rng
        self._sigma = sigma_db
        self._a = math.exp(-1.0 / max(tau_s, 0.1))
        self._values: dict[int, float] = {}
        self._last_k: int | None = None
        self._last_v = rng.gauss(0.0, sigma_db)

    def at(self, t: float) -> float:
        k = int(t)
        if k in self._values:
            return self._values[k]
        if self._last_k is None or k < self._last_k:
            v = self._rng.gauss(0.0, self._sigma)
        else:
            v = self._last_v
            for _ in range(min(k - self._last_k, 60)):
                v = self._a * v + math.sqrt(1 - self._a**2) * self._rng.gauss(0.0, self._sigma)
        self._values[k] = v
        self._last_k, self._last_v = k, v
        return v


class Link:
    """One transmitter's radio as heard by the sensor: level at a time from the track."""

    def __init__(
        self,
        site: Site,
        track: Track,
        rng: random.Random,
        tx_dbm: float,
        pl1m_db: float,
        sensitivity_dbm: float,
    ) -> None:
        self.site = site
        self.track = track
        self.rng = rng
        self.tx_dbm = tx_dbm
        self.pl1m_db = pl1m_db
        self.sensitivity_dbm = sensitivity_dbm
        self.shadow = Shadowing(rng, site.slow_sigma_db, site.slow_tau_s)
        # Per receiver, the level of the latest transmission (None: that one did not hear it).
        self.last: tuple[float | None, ...] = ()

    def mean_level(self, t: float) -> float:
        x, y = self.track.position(t)
        return self.tx_dbm - path_loss(self.site, distance(x, y), self.pl1m_db)

    def level(self, t: float) -> float | None:
        """One packet's received level, or None when it is below the receiver's sensitivity."""
        value = (
            self.mean_level(t) + self.shadow.at(t) + self.rng.gauss(0.0, self.site.fast_sigma_db)
        )
        return value if value >= self.sensitivity_dbm else None


# Of the slow shadowing's variance, the share that is each receiver's own (the body shadows
# the direction of one sensor more than another's); the rest is around the phone and shared.
OWN_SHADOW_SHARE = 0.5


class MultiLink(Link):
    """One transmitter heard by several receivers at once (``Site.receivers``).

    ``level`` returns the strongest receiver's level (None when no receiver hears it) so the
    emitters' timing is as for one sensor; ``last`` holds every receiver's level of it.
    """

    def __init__(
        self,
        site: Site,
        track: Track,
        rng: random.Random,
        tx_dbm: float,
        pl1m_db: float,
        sensitivity_dbm: float,
    ) -> None:
        own = site.slow_sigma_db * math.sqrt(OWN_SHADOW_SHARE)
        shared = site.slow_sigma_db * math.sqrt(1.0 - OWN_SHADOW_SHARE)
        super().__init__(site, track, rng, tx_dbm, pl1m_db, sensitivity_dbm)
        self.shadow = Shadowing(rng, shared, site.slow_tau_s)
        self._own = [
            Shadowing(random.Random(f"{rng.random()}:{rx.name}"), own, site.slow_tau_s)
            for rx in site.receivers
        ]
        self._fading = [random.Random(f"{rng.random()}:{rx.name}:fast") for rx in site.receivers]

    def level(self, t: float) -> float | None:
        x, y = self.track.position(t)
        common = self.tx_dbm + self.shadow.at(t)
        heard: list[float | None] = []
        for rx, own, fading in zip(self.site.receivers, self._own, self._fading, strict=True):
            value = (
                common
                - receiver_loss(self.site, rx, x, y, self.pl1m_db)
                + own.at(t)
                + fading.gauss(0.0, self.site.fast_sigma_db)
            )
            heard.append(value if value >= self.sensitivity_dbm else None)
        self.last = tuple(heard)
        levels = [v for v in heard if v is not None]
        return max(levels) if levels else None


def make_link(
    site: Site,
    track: Track,
    rng: random.Random,
    tx_dbm: float,
    pl1m_db: float,
    sensitivity_dbm: float,
) -> Link:
    """A link to the one sensor, or to every receiver of a several-sensor site."""
    cls = MultiLink if site.receivers else Link
    return cls(site, track, rng, tx_dbm, pl1m_db, sensitivity_dbm)
