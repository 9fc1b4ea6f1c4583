"""Giving the heap's free pages back to the system, once in a while.

Python objects over 512 bytes (the tables' dicts, lists, IQ buffers) come from the C library's
allocator, and glibc keeps what they free in its arenas, one per thread that allocated. After a
burst (a flood of addresses, a minute of sightings handed to the store) those pages stay
resident, though free, for as long as the process runs: the appliance's memory would show its
worst minute, not what it holds. ``malloc_trim`` returns every whole free page of every arena.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

# How often: a flood's freed pages go back within a minute, and the walk over the arenas costs
# about a millisecond of a loop that wakes every second.
TRIM_EVERY_S = 60.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` at most every ``every_s`` seconds from the process's main loop."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self.every_s = every_s
        self._trim = _malloc_trim()
        self._next = 0.0
        self.trims = 0
        if self._trim is None:
            _LOGGER.debug("no malloc_trim in this C library: freed heap stays with the process")

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe(self, now_mono: float) -> None:
        if self._trim is None or now_mono < self._next:
            return
        self._next = now_mono + self.every_s
        self._trim(0)
        self.trims += 1
