"""Uplink band plans inside the RTL-SDR tuner's range (about 24-1766 MHz), by region.

Uplink (handset -> tower) frequencies carry only handset transmissions, so energy there near the
gate is a handset near the gate. Each band also names its paired downlink, where the towers'
carriers show which uplink channels are in use locally (the sweep can survey them).

Duplex spacing (downlink minus uplink) is in each row; "reverse duplex" bands (B13, B14, B20,
B71) have the downlink *below* the uplink. B3's uplink is 1710-1785 MHz but the tuner stops near
1766 MHz, so only its lower part is listed. The table is parsed once at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# name | uplink MHz | downlink MHz | duplex MHz (DL - UL) | air interfaces | regions
_TABLE = """
E-GSM-900 UL  | 880.0-915.0   | 925.0-960.0   |  +45 | gsm      | eu ua-ru
LTE B8 UL     | 880.0-915.0   | 925.0-960.0   |  +45 | lte      | eu ua-ru
LTE B20 UL    | 832.0-862.0   | 791.0-821.0   |  -41 | lte      | eu ua-ru
LTE B28 UL    | 703.0-748.0   | 758.0-803.0   |  +55 | lte      | eu
DCS-1800 UL   | 1710.0-1766.0 | 1805.0-1861.0 |  +95 | gsm      | eu ua-ru
LTE B3 UL     | 1710.0-1766.0 | 1805.0-1861.0 |  +95 | lte      | eu ua-ru
LTE B31 UL    | 452.5-457.5   | 462.5-467.5   |  +10 | lte      | ua-ru
LTE B5 UL     | 824.0-849.0   | 869.0-894.0   |  +45 | lte gsm  | us
LTE B12 UL    | 699.0-716.0   | 729.0-746.0   |  +30 | lte      | us
LTE B13 UL    | 777.0-787.0   | 746.0-756.0   |  -31 | lte      | us
LTE B14 UL    | 788.0-798.0   | 758.0-768.0   |  -30 | lte      | us
LTE B17 UL    | 704.0-716.0   | 734.0-746.0   |  +30 | lte      | us
LTE B71 UL    | 663.0-698.0   | 617.0-652.0   |  -46 | lte      | us
"""

REGIONS = ("eu", "us", "ua-ru")
DEFAULT_REGION = "eu"  # the ``[sdr] region`` a site gets when its config names none
TUNER_MIN_HZ = 24e6
TUNER_MAX_HZ = 1766e6


@dataclass(frozen=True, slots=True)
class Band:
    """One uplink band and its paired downlink."""

    name: str
    ul_low_hz: float
    ul_high_hz: float
    dl_low_hz: float
    dl_high_hz: float
    duplex_hz: float
    interfaces: tuple[str, ...]
    regions: tuple[str, ...]

    def contains(self, freq_hz: float) -> bool:
        return self.ul_low_hz <= freq_hz <= self.ul_high_hz

    def downlink_of(self, ul_hz: float) -> float:
        """The paired downlink frequency of an uplink channel."""
        return ul_hz + self.duplex_hz

    def uplink_of(self, dl_hz: float) -> float:
        """The paired uplink frequency of a downlink carrier."""
        return dl_hz - self.duplex_hz


def _range(text: str) -> tuple[float, float]:
    lo, hi = text.split("-")
    return float(lo) * 1e6, float(hi) * 1e6


def _parse(table: str) -> tuple[Band, ...]:
    bands = []
    for line in table.strip().splitlines():
        name, ul, dl, duplex, ifaces, regions = (c.strip() for c in line.split("|"))
        ul_lo, ul_hi = _range(ul)
        dl_lo, dl_hi = _range(dl)
        bands.append(
            Band(name, ul_lo, ul_hi, dl_lo, dl_hi, float(duplex) * 1e6,
                 tuple(ifaces.split()), tuple(regions.split()))
        )  # fmt: skip
    return tuple(bands)


ALL_BANDS = _parse(_TABLE)


@dataclass(frozen=True, slots=True)
class BandPlan:
    """The bands a checkpoint watches."""

    bands: tuple[Band, ...]
    region: str | None = None  # the preset it came from; None for a hand-picked list

    @classmethod
    def for_region(cls, region: str) -> BandPlan:
        """The preset of ``eu``, ``us`` or ``ua-ru`` (ValueError otherwise)."""
        key = region.strip().lower()
        if key not in REGIONS:
            raise ValueError(f"unknown region {region!r}; expected one of {', '.join(REGIONS)}")
        return cls(tuple(b for b in ALL_BANDS if key in b.regions), key)

    @classmethod
    def named(cls, names: list[str]) -> BandPlan:
        """A plan of the listed band names (ValueError on an unknown name)."""
        by_name = {b.name.lower(): b for b in ALL_BANDS}
        missing = [n for n in names if n.lower() not in by_name]
        if missing:
            raise ValueError(f"unknown band(s): {', '.join(missing)}")
        return cls(tuple(by_name[n.lower()] for n in names))

    def band_for(self, freq_hz: float, shape: str | None = None) -> str | None:
        """The name of the band holding ``freq_hz``; the burst's shape picks GSM vs LTE."""
        hits = [b for b in self.bands if b.contains(freq_hz)]
        if not hits:
            return None
        if shape is not None:
            for b in hits:
                if shape in b.interfaces:
                    return b.name
        return hits[0].name

    def tunings(self, rate: float, usable_fraction: float = 0.8) -> list[tuple[str, float]]:
        """Centre frequencies covering every band's uplink, deduplicated across shared ranges.

        Only the middle ``usable_fraction`` of the sampled span is used: the tuner's
        anti-alias filter rolls off at the edges.
        """
        span = rate * usable_fraction
        out: list[tuple[str, float]] = []
        seen: set[tuple[float, float]] = set()
        for b in self.bands:
            key = (b.ul_low_hz, b.ul_high_hz)
            if key in seen:
                continue
            seen.add(key)
            width = b.ul_high_hz - b.ul_low_hz
            n = max(1, math.ceil(width / span))
            step = width / n
            for i in range(n):
                centre = b.ul_low_hz + step * (i + 0.5)
                if TUNER_MIN_HZ <= centre <= TUNER_MAX_HZ:
                    out.append((b.name, centre))
        return out


ALL = BandPlan(ALL_BANDS)
