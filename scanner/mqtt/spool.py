"""A sensor node's disk buffer while it cannot reach the broker: append-only, in order, bounded.

Batches go into segment files under the node's state directory, each entry a fixed header
(payload length, CRC-32 of the payload, number of records) and the payload. The publisher reads
from the oldest entry on, and ``commit`` records (in a small ``cursor`` file, replaced
atomically) how far the broker has acknowledged, so a node restarted mid-replay starts again
from there; a segment wholly behind the cursor is deleted.

The spool holds at most ``budget_bytes``. When a new batch would exceed it, the oldest segment
not being replayed is deleted and its batches and records are counted as dropped (the newest
records say most about who is at the gate now, and a count in the node's health says what the
outage cost). Entries are written without fsync: the spool outlasts a broker or network outage,
and an SD card written on every batch would wear out; a torn last entry after a power cut is
found by its length or CRC, counted and cut off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_HEADER = struct.Struct("<III")  # payload length, CRC-32, records in the batch
_SUFFIX = ".seg"
_CURSOR = "cursor"
# The budget is cut into this many segments: dropping one (the oldest) frees an eighth of it,
# and a node never rewrites a file to remove a single batch.
SEGMENTS_PER_BUDGET = 8
# A segment is never smaller than this, so a small budget does not make a file per batch.
MIN_SEGMENT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One batch read back: its payload, record count, and where the entry after it starts."""

    payload: bytes
    records: int
    segment: int
    next_offset: int


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int = 0
    batches: int = 0
    records: int = 0


class Spool:
    """The node's append-only disk buffer. Thread-safe: the publisher and closers share it."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise ValueError("the spool budget must be positive")
        self.directory = directory
        self.budget_bytes = budget_bytes
        self.segment_bytes = max(MIN_SEGMENT_BYTES, budget_bytes // SEGMENTS_PER_BUDGET)
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        # The read position (entries before it are published, maybe not yet acknowledged) and
        # the committed position (acknowledged by the broker; a restart reads from here).
        self._read: tuple[int, int] = (0, 0)
        self._committed: tuple[int, int] = (0, 0)
        self._pending_batches = 0
        self._pending_records = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- state --------------------------------------------------------------------------------
    @property
    def pending_batches(self) -> int:
        """Batches not yet acknowledged by the broker (read or not)."""
        with self._lock:
            return self._pending_batches

    def has_unread(self) -> bool:
        with self._lock:
            return self._unread_locked()

    def _unread_locked(self) -> bool:
        if not self._segments:
            return False
        last = self._segments[-1]
        return self._read < (last.number, last.size)

    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def health(self) -> dict[str, int]:
        with self._lock:
            return {
                "bytes": sum(s.size for s in self._segments),
                "budget_bytes": self.budget_bytes,
                "pending_batches": self._pending_batches,
                "pending_records": self._pending_records,
                "dropped_batches": self.counters["dropped_batches"],
                "dropped_records": self.counters["dropped_records"],
                "torn_entries": self.counters["torn_entries"],
            }

    # -- writing ------------------------------------------------------------------------------
    def append(self, payload: bytes, records: int) -> bool:
        """Add one batch at the end; False (counted) when it cannot be kept at all."""
        size = _HEADER.size + len(payload)
        with self._lock:
            if size > self.budget_bytes:
                self._count_drop(1, records)
                _LOGGER.warning("a %d-byte batch is larger than the whole spool; dropped", size)
                return False
            while sum(s.size for s in self._segments) + size > self.budget_bytes:
                if not self._drop_oldest_locked():
                    # Only the segment being replayed is left: the new batch cannot be kept.
                    self._count_drop(1, records)
                    return False
            segment = self._segments[-1] if self._segments else None
            if segment is None or segment.size + size > self.segment_bytes:
                segment = self._new_segment_locked()
            try:
                with segment.path.open("ab") as fh:
                    fh.write(_HEADER.pack(len(payload), zlib.crc32(payload), records) + payload)
            except OSError as exc:
                self._count_drop(1, records)
                self.counters["write_errors"] += 1
                _LOGGER.warning("cannot write the spool %s: %s", segment.path, exc)
                return False
            segment.size += size
            segment.batches += 1
            segment.records += records
            self._pending_batches += 1
            self._pending_records += records
            self.counters["spooled_batches"] += 1
            return True

    def _new_segment_locked(self) -> _Segment:
        number = self._segments[-1].number + 1 if self._segments else max(1, self._read[0])
        segment = _Segment(number, self.directory / f"{number:012d}{_SUFFIX}")
        segment.path.touch()
        self._segments.append(segment)
        return segment

    def _drop_oldest_locked(self) -> bool:
        """Delete the oldest segment nobody is reading; False when there is none."""
        victim: _Segment | None = None
        for segment in self._segments:
            if segment.number < self._read[0]:
                continue  # published, waiting for the broker's acknowledgement
            if segment.number == self._read[0] and self._read[1] > 0:
                continue  # being replayed: some of its entries may be in flight
            victim = segment
            break
        if victim is None:
            return False
        self._segments.remove(victim)
        with contextlib.suppress(FileNotFoundError):
            victim.path.unlink()
        self._pending_batches -= victim.batches
        self._pending_records -= victim.records
        self._count_drop(victim.batches, victim.records)
        if self._read[0] == victim.number:
            self._read = self._start_of_next_locked(victim.number)
        _LOGGER.warning(
            "spool over its %d-byte budget: dropped %d batches (%d records), oldest first",
            self.budget_bytes,
            victim.batches,
            victim.records,
        )
        return True

    def _start_of_next_locked(self, number: int) -> tuple[int, int]:
        for segment in self._segments:
            if segment.number > number:
                return (segment.number, 0)
        return (number + 1, 0)

    def _count_drop(self, batches: int, records: int) -> None:
        self.counters["dropped_batches"] += batches
        self.counters["dropped_records"] += records

    # -- reading ------------------------------------------------------------------------------
    def read_next(self) -> SpoolEntry | None:
        """The next entry not yet read, moving the read position past it; None when none."""
        with self._lock:
            while self._segments:
                segment = self._segment_at(self._read[0])
                if segment is None:
                    # The read position is before the first kept segment (dropped): go on.
                    self._read = self._start_of_next_locked(self._read[0])
                    if self._read[0] > self._segments[-1].number:
                        return None
                    continue
                if self._read[1] < segment.size:
                    entry = next(self._entries(segment, self._read[1], limit=1), None)
                    if entry is not None:
                        self._read = (segment.number, entry.next_offset)
                        return entry
                    # A torn or corrupt tail: _entries has cut it off; the segment is shorter.
                    continue
                if segment is self._segments[-1]:
                    return None
                self._read = self._start_of_next_locked(segment.number)
            return None

    def rewind(self) -> None:
        """Read again from the committed position (entries in flight when the link dropped)."""
        with self._lock:
            self._read = self._committed

    def commit(self, entry: SpoolEntry) -> None:
        """The broker acknowledged ``entry`` and everything before it: forget them."""
        with self._lock:
            position = (entry.segment, entry.next_offset)
            if position <= self._committed:
                return
            self._pending_batches = max(0, self._pending_batches - 1)
            self._pending_records = max(0, self._pending_records - entry.records)
            self._committed = position
            for segment in list(self._segments):
                done = segment.number < entry.segment or (
                    segment.number == entry.segment
                    and entry.next_offset >= segment.size
                    and segment is not self._segments[-1]
                )
                if done:
                    self._segments.remove(segment)
                    with contextlib.suppress(FileNotFoundError):
                        segment.path.unlink()
            if not self._unread_locked() and self._read == self._committed and self._segments:
                # Everything is acknowledged: start afresh with an empty spool.
                for segment in self._segments:
                    with contextlib.suppress(FileNotFoundError):
                        segment.path.unlink()
                next_number = self._segments[-1].number + 1
                self._segments.clear()
                self._read = self._committed = (next_number, 0)
                self._pending_batches = self._pending_records = 0
            self._write_cursor_locked()

    def _segment_at(self, number: int) -> _Segment | None:
        for segment in self._segments:
            if segment.number == number:
                return segment
        return None

    def _entries(
        self, segment: _Segment, offset: int, limit: int | None = None
    ) -> Iterator[SpoolEntry]:
        """Entries of a segment from ``offset``; a torn tail is cut off and counted."""
        try:
            fh = segment.path.open("rb")
        except OSError as exc:
            _LOGGER.warning("cannot read the spool %s: %s", segment.path, exc)
            return
        with fh:
            fh.seek(offset)
            count = 0
            while offset < segment.size and (limit is None or count < limit):
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    self._cut_locked(segment, offset)
                    return
                length, crc, records = _HEADER.unpack(header)
                payload = fh.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    self._cut_locked(segment, offset)
                    return
                offset += _HEADER.size + length
                count += 1
                yield SpoolEntry(payload, records, segment.number, offset)

    def _cut_locked(self, segment: _Segment, offset: int) -> None:
        self.counters["torn_entries"] += 1
        _LOGGER.warning("spool %s is torn at byte %d; cutting it there", segment.path, offset)
        try:
            os.truncate(segment.path, offset)
        except OSError as exc:
            _LOGGER.warning("cannot cut the spool %s: %s", segment.path, exc)
        segment.size = offset

    # -- persistence --------------------------------------------------------------------------
    def _write_cursor_locked(self) -> None:
        path = self.directory / _CURSOR
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(f"{self._committed[0]} {self._committed[1]}\n", encoding="ascii")
            tmp.replace(path)
        except OSError as exc:
            self.counters["write_errors"] += 1
            _LOGGER.warning("cannot write the spool cursor %s: %s", path, exc)

    def _load(self) -> None:
        """Find the segments and the committed position a previous run left behind."""
        committed = (0, 0)
        try:
            text = (self.directory / _CURSOR).read_text(encoding="ascii").split()
            committed = (int(text[0]), int(text[1]))
        except (OSError, ValueError, IndexError):
            pass
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                number = int(path.stem)
            except ValueError:
                continue
            if number < committed[0]:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            segment = _Segment(number, path, path.stat().st_size)
            start = committed[1] if number == committed[0] else 0
            for entry in self._entries(segment, 0):
                segment.batches += 1
                segment.records += entry.records
                if entry.next_offset > start:
                    self._pending_batches += 1
                    self._pending_records += entry.records
            self._segments.append(segment)
        if self._segments and committed[0] < self._segments[0].number:
            committed = (self._segments[0].number, 0)
        self._committed = self._read = committed
        if self._pending_batches:
            _LOGGER.info(
                "spool %s holds %d batches (%d records) from before; replaying them first",
                self.directory,
                self._pending_batches,
                self._pending_records,
            )
