"""The detection core's thread as a supervised component: records from the queue into
``handle``, ``tick`` on a beat."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.runtime.components.base import ThreadComponent, one
from scanner.runtime.transport import EventQueue, Message

_LOGGER = logging.getLogger(__name__)

# The core's periodic tick: alerts resolve and presence decays on this beat even when no radio
# reports anything (a phone that leaves goes quiet).
TICK_EVERY_S = 0.5
# The core handles at most this many records between ticks, so a flood cannot starve the tick.
MAX_BATCH = 2000
# Records taken from the queue at a time: taken, they no longer count against its bound or in
# its depth in the health while the core works through them, so a few at once: a hundredth of
# the default queue, and a lock per 256 records costs nothing beside handling them.
BATCH_TAKE = 256


class CoreLike(Protocol):
    """What the runtime needs of the detection core (a record, or word of a change in the
    store: ``InputsChanged``)."""

    def handle(self, event: Message) -> object: ...

    def tick(self, now_mono: float) -> object: ...


class CoreLoop(ThreadComponent):
    """The detection core's thread: records from the queue into ``handle``, ``tick`` on a beat.

    A record the core cannot handle is counted and dropped (bad input must not stop
    detection). A store that refuses writes does not reach here: the store sink holds the
    events and writes them when it can (``scanner.sinks.store``), and the core carries on. A
    store error that does (the connection itself broken) is counted with its record and ends
    the thread: the supervisor restarts the core with a fresh connection, and records wait in
    the bounded queue meanwhile.
    """

    part = "core loop"
    ended = "core loop ended unexpectedly"

    def __init__(
        self,
        name: str,
        make_core: Callable[[], CoreLike],
        events: EventQueue,
        clock: Clock = SYSTEM_CLOCK,
        tick_every_s: float = TICK_EVERY_S,
        tick_clock: Callable[[], float] | None = None,
        on_close: Callable[[CoreLike], None] | None = None,
    ) -> None:
        super().__init__(name)
        self._make_core = make_core
        self.events = events
        self.clock = clock
        self.tick_every_s = tick_every_s
        # Replay feeds the core the recording's timeline; its clock says where that timeline is.
        self._tick_clock = tick_clock or clock.monotonic
        self._on_close = on_close
        self.counters: Counter[str] = Counter()
        self.core: CoreLike | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: float | None = None
        self._logged_error = False

    def start(self) -> None:
        self.core = self._make_core()
        self._progress = self.clock.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        core = self.core
        if core is None:
            return
        next_tick = self.clock.monotonic()
        while not self._stop.is_set():
            now = self.clock.monotonic()
            event = self.events.get(timeout=max(0.0, min(next_tick - now, 0.25)))
            if event is not None:
                self._handle(core, event)
                handled = 1
                # What waits behind it, taken at once (one lock, not one a record).
                while handled < MAX_BATCH:
                    batch = self.events.get_many(min(BATCH_TAKE, MAX_BATCH - handled))
                    if not batch:
                        break
                    for event in batch:
                        self._handle(core, event)
                    handled += len(batch)
            now = self.clock.monotonic()
            if now >= next_tick:
                core.tick(self._tick_clock())
                self.counters["ticks"] += 1
                next_tick = now + self.tick_every_s
            self._progress = now

    def _handle(self, core: CoreLike, event: Message) -> None:
        try:
            core.handle(event)
        except sqlite3.Error:
            # The store is the core's memory: without it nothing may be dropped silently, so
            # the record is counted and the supervisor restarts the core with a fresh
            # connection.
            self.counters["store_errors"] += 1
            raise
        except Exception:
            self.counters["handle_errors"] += 1
            if not self._logged_error:
                _LOGGER.exception("core could not handle a %s record; dropping it", type(event))
                self._logged_error = True
            return
        self.counters["handled"] += 1

    def threads(self) -> list[threading.Thread]:
        return one(self._thread)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        core, self.core = self.core, None
        if core is not None and self._on_close is not None:
            try:
                self._on_close(core)
            except Exception:
                _LOGGER.exception("closing the core failed")

    def progress_mono(self) -> float | None:
        return self._progress
