"""A capture daemon's connection to the core as a supervised component."""

from __future__ import annotations

import threading

from scanner.runtime.components.base import ThreadComponent, one
from scanner.runtime.transport import SocketSender


class SenderComponent(ThreadComponent):
    """The sender thread; it reconnects by itself, so nothing is periodic."""

    part = "socket sender"
    ended = "socket sender ended"

    def __init__(self, name: str, sender: SocketSender) -> None:
        super().__init__(name)
        self.sender = sender

    def threads(self) -> list[threading.Thread]:
        return one(self.sender.thread)

    def start(self) -> None:
        self.sender.start()

    def stop(self, timeout: float) -> None:
        self.sender.close(flush_s=min(timeout, 1.0))
