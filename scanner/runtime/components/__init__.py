"""The restartable parts a process is made of, one file each on one base (``base.py``): a
capture source (``source.py``), the core loop (``core_loop.py``), the two ends of the
Unix-socket transport (``receiver.py``, ``sender.py``), the API server (``api_server.py``),
the store's retention (``retention.py``), the API's watch on the core's live feed
(``feed_watch.py``) and a recording replayed as a source
(``replay.py``). Each is built fresh by a factory on every (re)start, so a restart never
inherits the broken state of the instance that died.
"""

from __future__ import annotations

from scanner.runtime.components.api_server import ApiServer, bind_tcp
from scanner.runtime.components.base import ThreadComponent
from scanner.runtime.components.core_loop import MAX_BATCH, TICK_EVERY_S, CoreLike, CoreLoop
from scanner.runtime.components.feed_watch import FeedWatchComponent
from scanner.runtime.components.receiver import ReceiverComponent
from scanner.runtime.components.sender import SenderComponent
from scanner.runtime.components.source import STATUS_EVERY_S, SourceComponent

__all__ = [
    "MAX_BATCH",
    "STATUS_EVERY_S",
    "TICK_EVERY_S",
    "ApiServer",
    "CoreLike",
    "CoreLoop",
    "FeedWatchComponent",
    "ReceiverComponent",
    "SenderComponent",
    "SourceComponent",
    "ThreadComponent",
    "bind_tcp",
]
