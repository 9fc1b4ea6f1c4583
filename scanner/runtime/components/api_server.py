"""The API server (uvicorn in a thread) as a supervised component, and the TCP socket it is
started on."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scanner.runtime.components.base import ThreadComponent, one

if TYPE_CHECKING:
    from api.server import ConnectionGuard


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound before the server starts so a busy port fails loudly."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    family, kind, proto, _canon, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        # Room for a burst of connections (a host opening hundreds at once) without the kernel
        # dropping the tablet's handshake while the server refuses them one by one.
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ApiServer(ThreadComponent):
    """uvicorn serving the API app in a thread, on a socket bound before start; uvicorn keeps
    itself going, so nothing is periodic."""

    part = "API server"
    ended = "API server stopped unexpectedly"

    def __init__(
        self,
        name: str,
        make_app: Callable[[], Any],
        host: str,
        port: int,
        certfile: str | None = None,
        keyfile: str | None = None,
        first_socket: socket.socket | None = None,
    ) -> None:
        super().__init__(name)
        self._make_app = make_app
        self.host = host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        # The first start uses the socket the CLI bound (to report a busy port as an error);
        # a restart binds again.
        self._first_socket = first_socket
        self._server: Any = None
        self._guard: ConnectionGuard | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        from api.server import build_server

        sock, self._first_socket = self._first_socket, None
        self._sock = sock if sock is not None else bind_tcp(self.host, self.port)
        app = self._make_app()
        # The connection cap, header and body deadlines and TLS come from the app's settings.
        server, self._guard = build_server(
            app,
            app.state.settings,
            certfile=self.certfile,
            keyfile=self.keyfile,
            log_level="warning",
            access_log=False,
            lifespan="auto",
            timeout_graceful_shutdown=2,
        )
        self._server = server
        sockets = [self._sock]
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=sockets), name=self.name, daemon=True
        )
        self._thread.start()

    @property
    def started(self) -> bool:
        return bool(self._server is not None and self._server.started)

    def threads(self) -> list[threading.Thread]:
        return one(self._thread)

    def stop(self, timeout: float) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._guard is not None:
            # What an attack cost, in the journal once, also when it ended in under a minute.
            self._guard.log_counts("connection guard totals at stop")
        if self._sock is not None:
            self._sock.close()
            self._sock = None
