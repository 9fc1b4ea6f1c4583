"""What every running part of a process repeats: alive while its thread runs, why it died,
nothing to do on the supervisor's poll, no loop progress to watch.

Each component (``source.py``, ``core_loop.py``, ``receiver.py``, ``sender.py``,
``api_server.py``, ``retention.py``) says which threads are its own and how it starts and
stops; the supervisor (``runtime/supervisor.py``) sees them all through this one shape.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from scanner.runtime.supervisor import thread_error


class ThreadComponent(ABC):
    """A restartable part whose life is its thread(s).

    ``part`` names it in the supervisor's restart messages ("core loop died: ..."); ``ended``
    is the message when its thread ended without an exception.
    """

    part = "component"
    ended = "component ended unexpectedly"

    def __init__(self, name: str) -> None:
        self.name = name

    def threads(self) -> list[threading.Thread]:
        """The threads that make this component alive (none before it starts)."""
        return []

    @abstractmethod
    def start(self) -> None:
        """Start the thread(s); raise if the part cannot start."""

    @abstractmethod
    def stop(self, timeout: float) -> None:
        """Stop and wait up to ``timeout`` seconds."""

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads())

    def death_reason(self) -> str:
        for thread in self.threads():
            why = thread_error(thread)
            if why:
                return f"{self.part} died: {why}"
        return self.ended

    def poll(self, now_mono: float) -> None:  # noqa: B027 - a default, not an abstract step
        """Periodic housekeeping from the supervisor's loop; most parts need none."""

    def progress_mono(self) -> float | None:
        """When the part's loop last made progress; None: no loop the watchdog waits on."""
        return None


def one(thread: threading.Thread | None) -> list[threading.Thread]:
    """A component's single thread as ``threads()`` gives it."""
    return [] if thread is None else [thread]
