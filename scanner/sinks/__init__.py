"""Where the core's events go: the store, the NDJSON alert lines, the live feed.

The core returns what happened (``scanner.core.events``); each sink takes a batch of those
events, in order, and does its one job with them. A sink never feeds anything back into the
core (inputs come through ``Core.handle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from scanner.core.events import CoreEvent


class Sink(Protocol):
    """Takes the events of one core step, in order."""

    def handle(self, events: Sequence[CoreEvent]) -> None: ...


@runtime_checkable
class RetryingSink(Protocol):
    """A sink that holds what the store refused: told when time passes without a batch."""

    def retry(self) -> None: ...
