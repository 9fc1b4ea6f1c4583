"""A source sink for tests that keeps every record it is given, safe across threads."""

from __future__ import annotations

import threading

from scanner.observations import SensorStatus, SourceEvent, WifiFrame


class Collector:
    """A thread-safe sink: a source's capture thread calls it while the test reads it."""

    def __init__(self) -> None:
        self.events: list[SourceEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: SourceEvent) -> None:
        with self.lock:
            self.events.append(event)

    def frames(self) -> list[WifiFrame]:
        """The Wi-Fi frames so far, in arrival order."""
        with self.lock:
            return [e for e in self.events if isinstance(e, WifiFrame)]

    def statuses(self) -> list[SensorStatus]:
        """The health reports so far, in arrival order."""
        with self.lock:
            return [e for e in self.events if isinstance(e, SensorStatus)]

    def states(self) -> list[str]:
        """The state of each health report so far, in arrival order."""
        return [s.state for s in self.statuses()]
