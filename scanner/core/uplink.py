"""Uplink transmitters: one band's bursts split into the phones that sent them.

The SDR labels a burst by its band group (``bands.BandPlan.band_for``), which names no phone: two
handsets on B20 at once send bursts under one label. Keyed by the label alone, the core saw one
"transmitter" per band: a phone inside with only cellular emissions was averaged with a phone
outside on the same band (its level median dragged below the zone), or taken for a handset
another radio already names inside. Here each band's bursts are split into **transmitters** by
what physically separates two phones, and the core keys uplink presence by transmitter.

A burst joins the oldest transmitter of its band it can belong to; one it cannot belong to starts
another. A burst cannot belong to a transmitter when:

* **carrier**: it would spread that transmitter's bursts over more spectrum than one phone's
  uplink occupies (``CARRIER_SPAN_HZ``). Within that span bursts at different frequencies stay
  together: an LTE phone's PUCCH alternates between the two edges of its carrier, and its PUSCH
  grants and hops land anywhere inside it, so a frequency offset alone is never two phones;
* **timing**: it overlaps in time the transmitter's latest burst at another frequency. A phone
  sends one burst at a time (SC-FDMA is one contiguous block per slot, a GSM handset one
  timeslot burst), so two bursts on the air at once on different channels are two phones;
* **level**: it is much louder or much quieter than the transmitter's recent bursts
  (``LEVEL_RISE_DB``, ``LEVEL_FALL_DB``): fading spreads one phone's bursts by a few dB about
  its median, not by tens.

The oldest transmitter wins a burst several could take, so a phone's own bursts keep going to
its transmitter; a rare fading peak that started one of its own (a transmitter more) takes only
bursts the first cannot, and starves.

A band's first transmitter keeps the band's key (``sdr:LTE B20 UL``); others are numbered
(``sdr:LTE B20 UL #2``). A transmitter silent for ``hold_s`` is gone, and only then is its
number given to another, so the core has let go of the presence under that key by then.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from statistics import median

from scanner.observations import SdrBurst

_LOGGER = logging.getLogger(__name__)

# One phone's uplink stays within one carrier at a time: an LTE carrier is at most 20 MHz wide
# (3GPP TS 36.101 Table 5.6-1), its PUCCH at both edges; NR in these bands reaches 30 MHz
# (n28, TS 38.101-1 Table 5.3.5-1); a hopping GSM handset's mobile allocation stays within its
# operator's share of the band, and E-GSM-900 is 35 MHz in all. Bursts of one transmitter
# spread over more than the widest of these are two phones.
CARRIER_SPAN_HZ = 35e6
# A burst this far above a transmitter's median level is another, louder transmitter: fading
# (Rayleigh, the worst case: no line of sight) puts one burst 10 dB above its median once in a
# thousand (P = exp(-ln 2 * 10)), and the network's power control raises a phone's power in
# 1 dB steps as its path to the cell worsens, not by 10 dB from one burst to the next.
LEVEL_RISE_DB = 10.0
# A burst this far below a transmitter's median is another, quieter one, or that phone in a deep
# fade (Rayleigh: 7 % of bursts fall 10 dB below the median). A fade that starts a transmitter
# of its own costs nothing: the weaker transmitter is further from the zone, and the phone's own
# transmitter, older, keeps every burst within reach of its level.
LEVEL_FALL_DB = 10.0
# A transmitter's level is the median of its latest bursts: enough that one fading burst does
# not move it, few enough that it follows a phone walking towards the sensor (a burst or two a
# second on a call, one every few seconds idle).
TRACK_LEVELS = 5
# Transmitters held per band at most: more phones than this sending on one band within the hold
# time, all within range of the sensor, is far beyond a gate's crowd; the burst of one more goes
# to the transmitter nearest in level (counted in ``overflow``), as all of them did before.
MAX_PER_BAND = 32


@dataclass(slots=True)
class _Transmitter:
    number: int
    first_mono: float
    last_mono: float
    last_end_mono: float  # when its latest burst ended
    last_freq_hz: float
    last_half_bw_hz: float
    low_hz: float
    high_hz: float
    levels: deque[float] = field(default_factory=lambda: deque(maxlen=TRACK_LEVELS))

    def level(self) -> float:
        return median(self.levels)

    def takes(
        self, freq_hz: float, half_bw_hz: float, mono: float, end: float, level: float
    ) -> bool:
        """Whether a burst can be this transmitter's (module docstring: carrier, timing, level)."""
        if max(self.high_hz, freq_hz) - min(self.low_hz, freq_hz) > CARRIER_SPAN_HZ:
            return False
        overlaps = mono < self.last_end_mono and end > self.last_mono
        if overlaps and abs(freq_hz - self.last_freq_hz) > half_bw_hz + self.last_half_bw_hz:
            return False
        return -LEVEL_FALL_DB <= level - self.level() <= LEVEL_RISE_DB

    def add(self, freq_hz: float, half_bw_hz: float, mono: float, end: float, level: float) -> None:
        self.last_mono = mono
        self.last_end_mono = max(self.last_end_mono, end)
        self.last_freq_hz = freq_hz
        self.last_half_bw_hz = half_bw_hz
        self.low_hz = min(self.low_hz, freq_hz)
        self.high_hz = max(self.high_hz, freq_hz)
        self.levels.append(level)


def transmitter_key(band: str, number: int) -> str:
    """The core's key of a band's ``number``-th transmitter (the first keeps the band's key)."""
    return f"sdr:{band}" if number == 1 else f"sdr:{band} #{number}"


def band_of(key: str) -> str:
    """The band part of a transmitter key (``transmitter_key``'s inverse, less the number)."""
    band, _sep, _number = key.partition(" #")
    return band


class UplinkTransmitters:
    """Splits each band's bursts into transmitters (module docstring)."""

    def __init__(self, hold_s: float) -> None:
        self._hold_s = hold_s
        self._bands: dict[str, list[_Transmitter]] = {}
        self.overflow = 0  # bursts that found every transmitter of their band taken
        self.started = 0  # transmitters started

    def key(self, band: str, burst: SdrBurst, level: float) -> str:
        """The key of the transmitter that sent ``burst`` (its level as the zone judges it)."""
        mono = burst.mono
        # The record carries wall-clock start and end; the burst's length is the same on the
        # monotonic clock.
        end = mono + max(burst.t_end - burst.ts, 0.0)
        freq = burst.freq_mhz * 1e6
        half_bw = burst.bandwidth_khz * 500.0
        live = [t for t in self._bands.get(band, ()) if mono - t.last_mono <= self._hold_s]
        chosen = next((t for t in live if t.takes(freq, half_bw, mono, end, level)), None)
        if chosen is None and len(live) >= MAX_PER_BAND:
            self.overflow += 1
            chosen = min(live, key=lambda t: abs(level - t.level()))
        if chosen is None:
            used = {t.number for t in live}
            number = next(n for n in range(1, len(live) + 2) if n not in used)
            chosen = _Transmitter(number, mono, mono, end, freq, half_bw, freq, freq)
            live.append(chosen)
            self.started += 1
            if number > 1:
                _LOGGER.debug("uplink: %s transmitter #%d at %.1f dB", band, number, level)
        chosen.add(freq, half_bw, mono, end, level)
        self._bands[band] = live
        return transmitter_key(band, chosen.number)

    def prune(self, mono: float) -> None:
        """Forget transmitters silent for the hold time, and bands with none left."""
        for band in list(self._bands):
            live = [t for t in self._bands[band] if mono - t.last_mono <= self._hold_s]
            if live:
                self._bands[band] = live
            else:
                del self._bands[band]

    def __len__(self) -> int:
        return sum(len(v) for v in self._bands.values())
