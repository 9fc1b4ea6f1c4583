"""The tiny base every radio source builds on.

A source owns one receiver. Its blocking capture loop runs in a thread (or an asyncio task for
bleak) and hands records to the core through a bounded queue: a full queue is a counted drop,
never a crash and never an unbounded buffer. A silence watchdog notices a receiver that has
stopped delivering and reports it as a health state the guard can see.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import Radio, SensorState, SensorStatus, SourceEvent

_LOGGER = logging.getLogger(__name__)

Sink = Callable[[SourceEvent], None]


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Options every source takes; each radio extends this with its own dataclass."""

    sensor: str
    # A receiver that reports nothing for this long is shown as degraded. Phones are rare at
    # night, so the watchdog looks at frames of any kind the radio delivers, not only handsets.
    silence_after_s: float = 90.0


class BoundedHandoff:
    """A bounded queue between a capture thread and the consumer; overflow is counted."""

    def __init__(self, maxsize: int, counters: Counter[str]) -> None:
        self._queue: queue.Queue[SourceEvent] = queue.Queue(maxsize=maxsize)
        self._counters = counters

    def put(self, event: SourceEvent) -> bool:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._counters["dropped_queue_full"] += 1
            return False
        return True

    def get(self, timeout: float | None = None) -> SourceEvent | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()


class Source:
    """Base class: start, stop, a sink callback, counters and a silence watchdog."""

    radio: Radio

    def __init__(self, options: SourceOptions, sink: Sink, clock: Clock = SYSTEM_CLOCK) -> None:
        self.options = options
        self._sink = sink
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.state = SensorState.STOPPED
        self.message = ""
        self._last_delivery_mono: float | None = None
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Begin capture; returns once the capture loop is running."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop capture and release the receiver."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- delivery ---------------------------------------------------------------------------
    def deliver(self, event: SourceEvent) -> None:
        """Hand one record to the sink and note the time for the watchdog."""
        self._last_delivery_mono = self.clock.monotonic()
        self.counters["delivered"] += 1
        self._sink(event)

    def set_state(self, state: SensorState, message: str = "") -> None:
        """Change the health state; the sink hears of every change."""
        if state == self.state and message == self.message:
            return
        if state in (SensorState.FAULT, SensorState.DEGRADED) and message:
            _LOGGER.warning("%s: %s", self.options.sensor, message)
        self.state = state
        self.message = message
        self._sink(self.status())

    def status(self) -> SensorStatus:
        """The current health of this source as a record."""
        return SensorStatus(
            ts=self.clock.wall(),
            mono=self.clock.monotonic(),
            sensor=self.options.sensor,
            radio=self.radio,
            state=self.state,
            message=self.message,
            counters=dict(self.counters),
            detail=self.health_detail(),
        )

    def health_detail(self) -> dict[str, object]:
        """Radio-specific health (noise floor, gain, channel); subclasses add to it."""
        last = self._last_delivery_mono
        silent = None if last is None else round(self.clock.monotonic() - last, 1)
        return {"silent_s": silent}

    def check_silence(self) -> bool:
        """Watchdog tick: True if the receiver is silent beyond its limit (and says so)."""
        now = self.clock.monotonic()
        last = self._last_delivery_mono
        if self.state not in (SensorState.OK, SensorState.DEGRADED):
            return False
        if last is not None and now - last > self.options.silence_after_s:
            self.set_state(SensorState.DEGRADED, f"no frames for {now - last:.0f} s")
            return True
        if self.state == SensorState.DEGRADED and self.message.startswith("no frames"):
            self.set_state(SensorState.OK)
        return False
