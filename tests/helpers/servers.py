"""Serving the API app with uvicorn on a thread for tests that talk to it over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass(frozen=True, slots=True)
class Served:
    """A running server: its thread and the port it bound (the chosen one when asked for 0)."""

    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(
    app: Any, *, port: int = 0, start_within_s: float = 10.0, **config: Any
) -> Iterator[Served]:
    """Serve ``app`` on 127.0.0.1 until the block ends; ``config`` goes to ``uvicorn.Config``.

    Waits until uvicorn has started (failing when it has not within ``start_within_s`` or its
    thread died), and on leaving asks it to exit and joins its thread.
    """
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_within_s
    while not server.started:
        if time.monotonic() >= deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(server, thread, int(server.servers[0].sockets[0].getsockname()[1]))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
