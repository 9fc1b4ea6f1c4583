"""Wi-Fi: probe requests and station data frames from a monitor-mode interface or a pcap.

Where things are: ``pcapfile`` reads captures, ``radiotap`` + ``dot11`` + ``fingerprint`` parse
frames (``dot11.parse_frame`` is the hot path), ``replay`` and ``inspect`` read recordings,
``live`` captures from an interface (``monitor`` sets it up, ``hopper`` hops the ``channels``
plan), ``build`` and ``pcapwriter`` make frames and files. Importing this package loads none of
them: scapy is imported only when live capture starts.
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
