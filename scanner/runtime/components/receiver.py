"""The core's listening Unix socket as a supervised component (restarted if its thread dies)."""

from __future__ import annotations

import threading
from pathlib import Path

from scanner.runtime.components.base import ThreadComponent, one
from scanner.runtime.transport import EventQueue, FeedBell, SocketReceiver


class ReceiverComponent(ThreadComponent):
    """The core's listening socket as a component; its counters are read by the daemon's
    status line, so nothing is periodic."""

    part = "socket receiver"
    ended = "socket receiver ended"

    def __init__(
        self, name: str, path: Path, events: EventQueue, mode: int, bell: FeedBell | None = None
    ) -> None:
        super().__init__(name)
        self.receiver = SocketReceiver(path, events, mode, bell)

    def threads(self) -> list[threading.Thread]:
        return one(self.receiver.thread)

    def start(self) -> None:
        self.receiver.start()

    def stop(self, timeout: float) -> None:
        self.receiver.close()
