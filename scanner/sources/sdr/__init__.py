"""SDR: cellular uplink energy from an RTL-SDR (USB or rtl_tcp) or a SigMF/cu8 recording.

Shaped like the other radio packages: ``options`` (the ``[sdr]`` section, typed and checked,
no numpy), ``live`` (the source: sweeps a dongle; ``usb`` and ``rtltcp`` are its front ends),
``replay`` (recordings through the same DSP), ``recorder`` (SigMF out), ``errors`` (capture
errors with their failure class from ``constants``). Around them: ``bands`` holds the uplink
band plans per region, ``dsp`` finds bursts in IQ, ``sweep`` picks the next tuning,
``sigmf_io`` reads and writes recordings, ``inspect`` prints their bursts. Importing this
package loads neither numpy-heavy DSP nor librtlsdr: they are imported when live capture is
built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from scanner.sources.base import Sink
    from scanner.sources.sdr.live import SdrSource


def build_source(section: Mapping[str, Any], sink: Sink, clock: Clock = SYSTEM_CLOCK) -> SdrSource:
    """The live SDR source for an ``[sdr]`` config section (ValueError on a bad value)."""
    from scanner.sources.sdr.live import build_source as build

    return build(dict(section), sink, clock)
