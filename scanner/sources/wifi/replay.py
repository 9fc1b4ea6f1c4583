"""Replay of a Wi-Fi recording (pcap/pcapng) through the same parser live capture uses.

The recording's own timeline is the monotonic clock (``mono == ts``), as in every replay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from scanner.observations import WifiFrame
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.pcapfile import read_records


def read_frames(path: str | Path, counters: Counter[str] | None = None) -> Iterator[WifiFrame]:
    """Every frame of ``path`` the scanner uses, in file order.

    Raises ``RecordingError`` at once when the file cannot be read (missing, not a capture,
    unsupported link type); malformed frames and a cut-short end are counted in ``counters``.
    """
    counts: Counter[str] = counters if counters is not None else Counter()
    records = read_records(path, counts)

    def _frames() -> Iterator[WifiFrame]:
        for ts, linktype, data in records:
            frame = parse_frame(data, linktype, ts, ts, counts)
            if frame is not None:
                yield frame
        counts["frames"] += 0  # present even when a recording holds nothing we use

    return _frames()
