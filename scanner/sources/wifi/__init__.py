"""Wi-Fi: probe requests and station data frames from a monitor-mode interface or a pcap.

Shaped like the other radios: ``options`` (the ``[wifi]`` section), ``live`` (capture from an
interface; ``monitor`` sets it up, ``hopper`` hops the ``channels`` plan), ``replay`` (a
recording through the same parser), ``recorder`` (writing pcap files), ``errors``. Beside them:
``pcapfile`` reads captures, ``radiotap`` + ``dot11`` + ``fingerprint`` parse frames
(``dot11.parse_frame`` is the hot path; ``_ewalk.c`` is its compiled element walk), ``inspect``
prints a recording, ``build`` makes frames. Importing this package loads none of them: scapy is
imported only when live capture starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from scanner.sources.base import Sink
    from scanner.sources.wifi.live import WifiSource


def build_source(
    section: Mapping[str, Any],
    sink: Sink,
    clock: Clock = SYSTEM_CLOCK,
    record_path: str | None = None,
) -> WifiSource:
    """The live Wi-Fi source for a ``[wifi]`` config section (see ``options.WifiOptions``)."""
    from scanner.sources.wifi.live import build_source as build

    return build(section, sink, clock, record_path=record_path)
