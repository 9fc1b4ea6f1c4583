"""Recording what the BLE source hears: ``ble.jsonl``, one advertisement per line (FORMATS.md).

``JsonlRecorder`` is what ``--record`` writes; ``advert_to_json`` is one line's object. The
file replays through ``replay.read_jsonl``, the same record the live source produced.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import IO, Any

from scanner.errors import RecordingError
from scanner.observations import BleAdvert

_LOGGER = logging.getLogger(__name__)


def advert_to_json(advert: BleAdvert) -> dict[str, Any]:
    """The ``ble.jsonl`` object of one record (the recorder's format)."""
    return {
        "ts": round(advert.ts, 6),
        "address": advert.address,
        "address_type": advert.address_type,
        "rssi": advert.rssi_dbm,
        "tx_power": advert.tx_power,
        "local_name": advert.local_name,
        "manufacturer_data": {str(k): v.hex() for k, v in advert.manufacturer_data.items()},
        "service_data": {k: v.hex() for k, v in advert.service_data.items()},
        "service_uuids": list(advert.service_uuids),
        "adapter": advert.adapter,
    }


class JsonlRecorder:
    """Appends adverts to a ``ble.jsonl`` file, one line each; flushes every ``flush_every``
    adverts, and lines older than ``flush_after_s`` (at the next write or ``flush_due``): a
    quiet passive scan reports each device every few seconds only, and its lines must not
    wait minutes in the buffer for a crash to lose."""

    def __init__(self, path: str | Path, flush_every: int = 64, flush_after_s: float = 1.0) -> None:
        self.path = Path(path)
        try:
            self._stream: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise RecordingError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._flush_every = max(1, flush_every)
        self._flush_after_s = flush_after_s
        self._flushed_mono = time.monotonic()
        self._pending = 0
        self.written = 0

    def write(self, advert: BleAdvert) -> None:
        if self._stream is None:
            return
        self._stream.write(json.dumps(advert_to_json(advert), separators=(",", ":")) + "\n")
        self.written += 1
        self._pending += 1
        now = time.monotonic()
        if self._pending >= self._flush_every or now - self._flushed_mono >= self._flush_after_s:
            self._stream.flush()
            self._pending = 0
            self._flushed_mono = now

    def flush_due(self) -> None:
        """Flush lines written more than ``flush_after_s`` ago (the source's watchdog calls
        this, so the last adverts before a quiet spell reach the disk too)."""
        if self._stream is None or self._pending == 0:
            return
        now = time.monotonic()
        if now - self._flushed_mono >= self._flush_after_s:
            self._stream.flush()
            self._pending = 0
            self._flushed_mono = now

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
