"""An injectable clock, so a 90-second watchdog test takes milliseconds."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Both clocks a component needs: monotonic for logic, wall for records."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock the test moves by hand; wall and monotonic can be made to disagree."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self._mono = 1000.0
        self._wall = start

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds

    def jump_wall(self, seconds: float) -> None:
        """Leap the wall clock only, as NTP does on a Pi without an RTC."""
        self._wall += seconds


SYSTEM_CLOCK = SystemClock()
