"""Writing captures: classic pcap (what ``capture --record`` and the simulator produce).

pcap rather than pcapng because every tool reads it and one link type per file is all we need.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from scanner.sources.wifi.pcapfile import LINKTYPE_IEEE802_11_RADIOTAP

_GLOBAL_US = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
SNAPLEN = 65535


class PcapWriter:
    """Append frames to a little-endian pcap file (microsecond or nanosecond timestamps)."""

    def __init__(
        self,
        path: str | Path,
        linktype: int = LINKTYPE_IEEE802_11_RADIOTAP,
        *,
        nanoseconds: bool = False,
    ) -> None:
        self.path = Path(path)
        self._scale = 1_000_000_000 if nanoseconds else 1_000_000
        self._fh: BinaryIO = self.path.open("wb")
        magic = MAGIC_NS if nanoseconds else MAGIC_US
        self._fh.write(_GLOBAL_US.pack(magic, 2, 4, 0, 0, SNAPLEN, linktype))

    def write(self, ts: float, frame: bytes) -> None:
        """One record; ``ts`` in unix seconds."""
        sec = int(ts)
        frac = round((ts - sec) * self._scale)
        if frac >= self._scale:
            sec, frac = sec + 1, frac - self._scale
        self._fh.write(_RECORD.pack(sec, frac, len(frame), len(frame)))
        self._fh.write(frame)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
