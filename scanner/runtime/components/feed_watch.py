"""The API daemon's watch on the core's live feed (``FeedWatcher``) as a supervised component."""

from __future__ import annotations

import threading

from scanner.runtime.components.base import ThreadComponent, one
from scanner.runtime.transport import FeedWatcher


class FeedWatchComponent(ThreadComponent):
    """The watcher thread; it reconnects by itself, so nothing is periodic."""

    part = "live feed watcher"
    ended = "live feed watcher ended"

    def __init__(self, name: str, watcher: FeedWatcher) -> None:
        super().__init__(name)
        self.watcher = watcher

    def threads(self) -> list[threading.Thread]:
        return one(self.watcher.thread)

    def start(self) -> None:
        self.watcher.start()

    def stop(self, timeout: float) -> None:
        self.watcher.close()
