"""The live feed's wake-up: the core says its store sink committed rows to the store's ``events``
table, and every open event stream reads them at once instead of at its next poll.

``wake()`` may be called from any thread (the feed watcher's, or the core's in one process); it
only schedules the wake-up on the server's event loop. A stream takes ``mark()`` before it reads
the store and passes it to ``wait``, which returns at once if a wake-up came in between, so a
word that arrives while a stream is reading is never slept through. A stream that hears
nothing still reads the store every ``event_poll_s``: the store stays the record, and a lost
word costs one poll period, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

_LOGGER = logging.getLogger(__name__)


class LiveFeed:
    """Wakes the event streams of one app when the store's live feed has new rows."""

    def __init__(self) -> None:
        self.generation = 0
        self.counters: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def wake(self) -> None:
        """New rows are in the store (any thread)."""
        loop = self._loop
        if loop is None:
            return  # no stream has waited yet: each reads the store when it starts
        try:
            loop.call_soon_threadsafe(self._ring)
        except RuntimeError:
            # The server's loop closed (a restart): the new one registers on its first wait.
            self.counters["wake_after_close"] += 1
        else:
            self.counters["wakes"] += 1

    def _ring(self) -> None:
        self.generation += 1
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def mark(self) -> int:
        """Where the feed is, taken before a stream reads the store (on the server's loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The first stream of this server (or of a restarted one): wake-ups go to its loop
            # from now on; an event made on a loop that is gone would never be set.
            self._loop = loop
            self._event = None
        return self.generation

    async def wait(self, seen_generation: int, timeout: float) -> None:
        """Until a wake-up after ``seen_generation`` (from ``mark``), or ``timeout`` seconds
        (the poll)."""
        self.mark()
        if self.generation != seen_generation:
            return
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
