"""Uplink band plans inside the RTL-SDR tuner's range (about 24-1766 MHz), by region.

Uplink (handset -> tower) frequencies carry only handset transmissions, so energy there near the
gate is a handset near the gate; anything heard outside them is another emitter. Each band also
names its paired downlink, where the towers' carriers show which uplink channels are in use
locally (the sweep can survey them).

Frequencies are those of 3GPP TS 36.101 Table 5.5-1 (E-UTRA operating bands; the same ranges
are NR bands n5, n8, n12, n14, n20, n26, n28, n66, n71 in TS 38.101-1 Table 5.2-1) and 3GPP
TS 45.005 clause 2 (GSM 850, E-GSM 900, DCS 1800). Which bands a region uses is its
regulator's band plan (CEPT/ECC for Europe, the FCC for the US, MIC for Japan, ACMA for
Australia, DoT for India). One range can hold several bands: 832-849 MHz is B20 uplink in
Europe but B5 (and B26) in the Americas; 880-915 MHz carries GSM and LTE B8 side by side.

Duplex spacing (downlink minus uplink) is in each row; "reverse duplex" bands (B13, B14, B20,
B71) have the downlink *below* the uplink. Bands reaching past 1766 MHz (B3, B9, B66, DCS-1800)
are listed up to where the tuner stops, with the paired downlink cut to match. The table is
parsed once at import.

Labels: overlapping uplink ranges of one region form one **group** with one label naming every
band in it ("E-GSM-900 + LTE B8 UL"). A burst's label depends only on its frequency, never on
its guessed air interface, so one phone stays one transmitter key in the core whatever its
bursts look like: an LTE phone's two PUCCH slots at opposite edges of its carrier, its hops and
its PUSCH grants all fall in one group (the core keys uplink presence by this label).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

# name | uplink MHz | downlink MHz | duplex MHz (DL - UL) | air interfaces | regions
_TABLE = """
E-GSM-900     | 880.0-915.0   | 925.0-960.0   |  +45 | gsm      | eu ua-ru in
LTE B8        | 880.0-915.0   | 925.0-960.0   |  +45 | lte      | eu ua-ru in au jp
LTE B20       | 832.0-862.0   | 791.0-821.0   |  -41 | lte      | eu ua-ru
LTE B28       | 703.0-748.0   | 758.0-803.0   |  +55 | lte      | eu au in jp
DCS-1800      | 1710.0-1766.0 | 1805.0-1861.0 |  +95 | gsm      | eu ua-ru in
LTE B3        | 1710.0-1766.0 | 1805.0-1861.0 |  +95 | lte      | eu ua-ru in au
LTE B31       | 452.5-457.5   | 462.5-467.5   |  +10 | lte      | ua-ru
LTE B5        | 824.0-849.0   | 869.0-894.0   |  +45 | lte      | us au in
GSM-850       | 824.0-849.0   | 869.0-894.0   |  +45 | gsm      | us
LTE B26       | 814.0-849.0   | 859.0-894.0   |  +45 | lte      | us jp
LTE B12       | 699.0-716.0   | 729.0-746.0   |  +30 | lte      | us
LTE B17       | 704.0-716.0   | 734.0-746.0   |  +30 | lte      | us
LTE B13       | 777.0-787.0   | 746.0-756.0   |  -31 | lte      | us
LTE B14       | 788.0-798.0   | 758.0-768.0   |  -30 | lte      | us
LTE B71       | 663.0-698.0   | 617.0-652.0   |  -46 | lte      | us
LTE B66       | 1710.0-1766.0 | 2110.0-2166.0 | +400 | lte      | us
LTE B18       | 815.0-830.0   | 860.0-875.0   |  +45 | lte      | jp
LTE B19       | 830.0-845.0   | 875.0-890.0   |  +45 | lte      | jp
LTE B11       | 1427.9-1447.9 | 1475.9-1495.9 |  +48 | lte      | jp
LTE B21       | 1447.9-1462.9 | 1495.9-1510.9 |  +48 | lte      | jp
LTE B9        | 1749.9-1766.0 | 1844.9-1861.0 |  +95 | lte      | jp
"""

REGIONS = ("eu", "us", "ua-ru", "jp", "au", "in")
DEFAULT_REGION = "eu"  # the ``[sdr] region`` a site gets when its config names none
TUNER_MIN_HZ = 24e6
TUNER_MAX_HZ = 1766e6


@dataclass(frozen=True, slots=True)
class Band:
    """One uplink band and its paired downlink."""

    name: str  # "LTE B20", "E-GSM-900"
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
            Band(f"{name} UL", ul_lo, ul_hi, dl_lo, dl_hi, float(duplex) * 1e6,
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

    def groups(self) -> tuple[BandGroup, ...]:
        """The plan's uplink ranges: overlapping bands merged, each with one label."""
        return _groups(self.bands)

    def band_for(self, freq_hz: float, shape: str | None = None) -> str | None:
        """The label of the uplink group holding ``freq_hz``; None outside every uplink band.

        ``shape`` is accepted for callers that pass it and ignored: a label that followed
        the air-interface guess would split one phone into two transmitters.
        """
        del shape
        for g in self.groups():
            if g.low_hz <= freq_hz <= g.high_hz:
                return g.label
        return None

    def describe(self) -> dict[str, object]:
        """The plan as the sensor's status reports it (region and labelled uplink ranges)."""
        return {
            "region": self.region,
            "uplink": [
                {"label": g.label, "low_mhz": g.low_hz / 1e6, "high_mhz": g.high_hz / 1e6}
                for g in self.groups()
            ],
        }

    def tunings(self, rate: float, usable_fraction: float = 0.8) -> list[tuple[str, float]]:
        """Centres covering every uplink group once (shared ranges are tuned once).

        Only the middle ``usable_fraction`` of the sampled span is used: the tuner's
        anti-alias filter rolls off at the edges.
        """
        span = rate * usable_fraction
        out: list[tuple[str, float]] = []
        for g in self.groups():
            width = g.high_hz - g.low_hz
            n = max(1, math.ceil(width / span))
            step = width / n
            for i in range(n):
                centre = g.low_hz + step * (i + 0.5)
                if TUNER_MIN_HZ <= centre <= TUNER_MAX_HZ:
                    out.append((g.label, centre))
        return out


@dataclass(frozen=True, slots=True)
class BandGroup:
    """Overlapping uplink bands of one plan: one frequency range, one label."""

    label: str
    low_hz: float
    high_hz: float
    bands: tuple[Band, ...]


@functools.lru_cache(maxsize=32)
def _groups(bands: tuple[Band, ...]) -> tuple[BandGroup, ...]:
    members: list[list[Band]] = []
    for b in sorted(bands, key=lambda b: (b.ul_low_hz, b.ul_high_hz)):
        last = members[-1] if members else None
        if last is not None and b.ul_low_hz < max(x.ul_high_hz for x in last):
            last.append(b)
        else:
            members.append([b])
    out = []
    for group in members:
        # Table order (GSM before the LTE band sharing its range) reads naturally.
        named = sorted(group, key=lambda b: ALL_BANDS.index(b) if b in ALL_BANDS else 0)
        label = " + ".join(b.name.removesuffix(" UL") for b in named) + " UL"
        low = min(b.ul_low_hz for b in group)
        high = max(b.ul_high_hz for b in group)
        out.append(BandGroup(label, low, high, tuple(named)))
    return tuple(out)


ALL = BandPlan(ALL_BANDS)
