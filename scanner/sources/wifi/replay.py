"""Replay of a Wi-Fi recording (pcap/pcapng) through the same parser live capture uses.

The recording's own timeline is the monotonic clock (``mono == ts``), as in every replay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from scanner.observations import WifiFrame
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.pcapfile import CaptureFile


def read_frames(path: str | Path, counters: Counter[str] | None = None) -> Iterator[WifiFrame]:
    """Every frame of ``path`` the scanner uses, in file order.

    Raises ``RecordingError`` at once when the file cannot be read (missing, not a capture,
    unsupported link type); malformed frames and a cut-short end are counted in ``counters``.
    """
    counts: Counter[str] = counters if counters is not None else Counter()
    capture = CaptureFile(path, counts)

    def _frames() -> Iterator[WifiFrame]:
        try:
            yield from capture.parsed(parse_frame, counts)
        finally:
            capture.close()

    return _frames()
