"""The restartable parts a process is made of: a capture source, the core loop, the API server,
and the two ends of the Unix-socket transport. Each is built fresh by a factory on every
(re)start, so a restart never inherits the broken state of the instance that died.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import SensorStatus, SourceEvent
from scanner.runtime.supervisor import thread_error
from scanner.runtime.transport import EventQueue, Message, SocketReceiver, SocketSender
from scanner.sources.base import Sink, Source

_LOGGER = logging.getLogger(__name__)

# Sources report their health this often besides every state change, so the tablet's sensor
# strip shows counters moving and a daemon that died silently goes stale.
STATUS_EVERY_S = 5.0
# The core's periodic tick: alerts resolve and presence decays on this beat even when no radio
# reports anything (a phone that leaves goes quiet).
TICK_EVERY_S = 0.5
# The core handles at most this many records between ticks, so a flood cannot starve the tick.
MAX_BATCH = 2000


class CoreLike(Protocol):
    """What the runtime needs of the detection core (a record, or word of a change in the
    store: ``InputsChanged``)."""

    def handle(self, event: Message) -> object: ...

    def tick(self, now_mono: float) -> object: ...


def _threads_of(obj: object) -> list[threading.Thread]:
    """The threads an object holds in its attributes (a source's capture loop)."""
    found: list[threading.Thread] = []
    for value in vars(obj).values():
        if isinstance(value, threading.Thread):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, threading.Thread))
    return found


class SourceComponent:
    """One capture source. Alive while its capture thread runs and it has not faulted for good."""

    def __init__(
        self,
        name: str,
        build: Callable[[Sink], Source],
        sink: Sink,
        counters_extra: Callable[[], dict[str, int]] | None = None,
        periodic_status: bool = True,
        sensor: str | None = None,
    ) -> None:
        self.name = name
        self._build = build
        # The configured sensor name: parsers tag records with the radio's default name, and
        # the core matches records to their sensor's health row and calibration by this name.
        self._sensor = sensor
        # A replay reports each recorded radio's health itself; a live source relies on us.
        self._periodic_status = periodic_status
        self._sink = sink
        self._counters_extra = counters_extra
        self.source: Source | None = None
        self._threads: list[threading.Thread] = []
        self._next_status = 0.0

    def start(self) -> None:
        source = self._build(self._send)
        self.source = source
        source.start()
        self._threads = _threads_of(source)

    def _send(self, event: SourceEvent) -> None:
        if isinstance(event, SensorStatus):
            if self._counters_extra is not None:
                event = self._with_extra(event)
        elif self._sensor is not None and event.sensor != self._sensor:
            event = replace(event, sensor=self._sensor)
        self._sink(event)

    def _with_extra(self, status: SensorStatus) -> SensorStatus:
        # The transport's own counters (drops while the core was down) travel with the
        # source's health, so the guard's sensor strip shows them.
        extra = self._counters_extra() if self._counters_extra else {}
        if not extra:
            return status
        merged = dict(status.counters)
        merged.update({f"transport_{k}": v for k, v in extra.items()})
        return replace(status, counters=merged)

    def alive(self) -> bool:
        source = self.source
        if source is None:
            return False
        if self._threads:
            return any(t.is_alive() for t in self._threads)
        # A source without a thread of its own (callbacks from a library's loop) is alive
        # until it says it has stopped.
        return source.state != "stopped" or source.stopping

    def death_reason(self) -> str:
        for thread in self._threads:
            why = thread_error(thread)
            if why:
                return f"capture thread died: {why}"
        source = self.source
        if source is not None and source.message:
            return f"capture stopped: {source.message}"
        return "capture thread ended unexpectedly"

    def stop(self, timeout: float) -> None:
        source = self.source
        if source is None:
            return
        try:
            source.stop()
        except Exception:
            _LOGGER.exception("%s: error while stopping the source", self.name)
        for thread in self._threads:
            thread.join(timeout=timeout)

    def poll(self, now_mono: float) -> None:
        source = self.source
        if source is None:
            return
        source.check_silence()
        if self._periodic_status and now_mono >= self._next_status:
            self._next_status = now_mono + STATUS_EVERY_S
            self._send(source.status())

    def progress_mono(self) -> float | None:
        # A quiet radio is not a hung one; the silence watchdog reports it instead.
        return None

    def last_status(self) -> SensorStatus | None:
        return self.source.status() if self.source is not None else None


class CoreLoop:
    """The detection core's thread: records from the queue into ``handle``, ``tick`` on a beat.

    A record the core cannot handle is counted and dropped (bad input must not stop
    detection). A store error ends the thread: the supervisor restarts the core with a fresh
    connection, and records wait in the bounded queue meanwhile.
    """

    def __init__(
        self,
        name: str,
        make_core: Callable[[], CoreLike],
        events: EventQueue,
        clock: Clock = SYSTEM_CLOCK,
        tick_every_s: float = TICK_EVERY_S,
        tick_clock: Callable[[], float] | None = None,
        on_close: Callable[[CoreLike], None] | None = None,
    ) -> None:
        self.name = name
        self._make_core = make_core
        self.events = events
        self.clock = clock
        self.tick_every_s = tick_every_s
        # Replay feeds the core the recording's timeline; its clock says where that timeline is.
        self._tick_clock = tick_clock or clock.monotonic
        self._on_close = on_close
        self.counters: Counter[str] = Counter()
        self.core: CoreLike | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: float | None = None
        self._logged_error = False

    def start(self) -> None:
        self.core = self._make_core()
        self._progress = self.clock.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        core = self.core
        if core is None:
            return
        next_tick = self.clock.monotonic()
        while not self._stop.is_set():
            now = self.clock.monotonic()
            event = self.events.get(timeout=max(0.0, min(next_tick - now, 0.25)))
            handled = 0
            while event is not None:
                self._handle(core, event)
                handled += 1
                if handled >= MAX_BATCH:
                    break
                event = self.events.get_nowait()
            now = self.clock.monotonic()
            if now >= next_tick:
                core.tick(self._tick_clock())
                self.counters["ticks"] += 1
                next_tick = now + self.tick_every_s
            self._progress = now

    def _handle(self, core: CoreLike, event: Message) -> None:
        try:
            core.handle(event)
        except sqlite3.Error:
            # The store is the core's memory: without it nothing may be dropped silently, so
            # let the supervisor restart the core with a fresh connection.
            raise
        except Exception:
            self.counters["handle_errors"] += 1
            if not self._logged_error:
                _LOGGER.exception("core could not handle a %s record; dropping it", type(event))
                self._logged_error = True
            return
        self.counters["handled"] += 1

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def death_reason(self) -> str:
        why = thread_error(self._thread)
        return f"core loop died: {why}" if why else "core loop ended unexpectedly"

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        core, self.core = self.core, None
        if core is not None and self._on_close is not None:
            try:
                self._on_close(core)
            except Exception:
                _LOGGER.exception("closing the core failed")

    def poll(self, now_mono: float) -> None:
        """Nothing periodic beyond the loop's own tick."""

    def progress_mono(self) -> float | None:
        return self._progress


class ReceiverComponent:
    """The core's listening socket as a component (restarted if its thread dies)."""

    def __init__(self, name: str, path: Path, events: EventQueue, mode: int) -> None:
        self.name = name
        self.receiver = SocketReceiver(path, events, mode)

    def start(self) -> None:
        self.receiver.start()

    def alive(self) -> bool:
        thread = self.receiver._thread
        return thread is not None and thread.is_alive()

    def death_reason(self) -> str:
        why = thread_error(self.receiver._thread)
        return f"socket receiver died: {why}" if why else "socket receiver ended"

    def stop(self, timeout: float) -> None:
        self.receiver.close()

    def poll(self, now_mono: float) -> None:
        """Counters are read by the daemon's status line."""

    def progress_mono(self) -> float | None:
        return None


class SenderComponent:
    """A capture daemon's connection to the core as a component."""

    def __init__(self, name: str, sender: SocketSender) -> None:
        self.name = name
        self.sender = sender

    def start(self) -> None:
        self.sender.start()

    def alive(self) -> bool:
        thread = self.sender._thread
        return thread is not None and thread.is_alive()

    def death_reason(self) -> str:
        why = thread_error(self.sender._thread)
        return f"socket sender died: {why}" if why else "socket sender ended"

    def stop(self, timeout: float) -> None:
        self.sender.close(flush_s=min(timeout, 1.0))

    def poll(self, now_mono: float) -> None:
        """The sender reconnects by itself; nothing periodic."""

    def progress_mono(self) -> float | None:
        return None


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


class ApiServer:
    """uvicorn serving the API app in a thread, on a socket bound before start."""

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
        self.name = name
        self._make_app = make_app
        self.host = host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        # The first start uses the socket the CLI bound (to report a busy port as an error);
        # a restart binds again.
        self._first_socket = first_socket
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        from api.server import build_server

        sock, self._first_socket = self._first_socket, None
        self._sock = sock if sock is not None else bind_tcp(self.host, self.port)
        app = self._make_app()
        # The connection cap, header and body deadlines and TLS come from the app's settings.
        server, _guard = build_server(
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

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def death_reason(self) -> str:
        why = thread_error(self._thread)
        return f"API server died: {why}" if why else "API server stopped unexpectedly"

    def stop(self, timeout: float) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def poll(self, now_mono: float) -> None:
        """uvicorn keeps itself going; nothing periodic."""

    def progress_mono(self) -> float | None:
        return None
