"""A capture source as a supervised component: built fresh on every (re)start, its health
reported on a beat, its records tagged with the configured sensor name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from scanner.observations import SensorState, SensorStatus, SourceEvent
from scanner.runtime.components.base import ThreadComponent
from scanner.sources.base import Sink, Source

_LOGGER = logging.getLogger(__name__)

# Sources report their health this often besides every state change, so the tablet's sensor
# strip shows counters moving and a daemon that died silently goes stale.
STATUS_EVERY_S = 5.0


def _threads_of(obj: object) -> list[threading.Thread]:
    """The threads an object holds in its attributes (a source's capture loop)."""
    found: list[threading.Thread] = []
    for value in vars(obj).values():
        if isinstance(value, threading.Thread):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, threading.Thread))
    return found


class SourceComponent(ThreadComponent):
    """One capture source. Alive while its capture thread runs and it has not faulted for good."""

    part = "capture thread"
    ended = "capture thread ended unexpectedly"

    def __init__(
        self,
        name: str,
        build: Callable[[Sink], Source],
        sink: Sink,
        counters_extra: Callable[[], dict[str, int]] | None = None,
        periodic_status: bool = True,
        sensor: str | None = None,
    ) -> None:
        super().__init__(name)
        self._build = build
        # The configured sensor name: parsers tag records with the radio's default name, and
        # the core matches records to their sensor's health row and calibration by this name.
        self._sensor = sensor
        # A replay reports each recorded radio's health itself; a live source relies on us.
        self._periodic_status = periodic_status
        self._sink = sink
        self._counters_extra = counters_extra
        self.source: Source | None = None
        self._threads: list[threading.Thread] = []
        self._next_status = 0.0

    def threads(self) -> list[threading.Thread]:
        return self._threads

    def start(self) -> None:
        source = self._build(self._send)
        self.source = source
        source.start()
        self._threads = _threads_of(source)

    def _send(self, event: SourceEvent) -> None:
        if isinstance(event, SensorStatus):
            if self._counters_extra is not None:
                event = self._with_extra(event)
        elif self._sensor is not None and event.sensor != self._sensor:
            event = replace(event, sensor=self._sensor)
        self._sink(event)

    def _with_extra(self, status: SensorStatus) -> SensorStatus:
        # The transport's own counters (drops while the core was down) travel with the
        # source's health, so the guard's sensor strip shows them.
        extra = self._counters_extra() if self._counters_extra else {}
        if not extra:
            return status
        merged = dict(status.counters)
        merged.update({f"transport_{k}": v for k, v in extra.items()})
        return replace(status, counters=merged)

    def alive(self) -> bool:
        source = self.source
        if source is None:
            return False
        if self._threads:
            return super().alive()
        # A source without a thread of its own (callbacks from a library's loop) is alive
        # until it says it has stopped.
        return source.state != SensorState.STOPPED or source.stopping

    def death_reason(self) -> str:
        reason = super().death_reason()
        source = self.source
        if reason == self.ended and source is not None and source.message:
            return f"capture stopped: {source.message}"
        return reason

    def stop(self, timeout: float) -> None:
        source = self.source
        if source is None:
            return
        try:
            source.stop()
        except Exception:
            _LOGGER.exception("%s: error while stopping the source", self.name)
        for thread in self._threads:
            thread.join(timeout=timeout)

    def poll(self, now_mono: float) -> None:
        source = self.source
        if source is None:
            return
        source.check_silence()
        if self._periodic_status and now_mono >= self._next_status:
            self._next_status = now_mono + STATUS_EVERY_S
            self._send(source.status())

    def last_status(self) -> SensorStatus | None:
        return self.source.status() if self.source is not None else None
