"""The API's HTTP server: uvicorn behind a connection guard that holds on a Pi.

uvicorn alone keeps a connection for as long as its client trickles bytes: a few hundred idle
sockets sending a header byte now and then exhaust the file descriptors and every guard request
times out. The guard sits between the listening socket and uvicorn's HTTP protocol and enforces:

- at most ``max_connections`` open connections, and ``max_connections_per_client`` per address;
  when the server is full a new connection takes the slot of the oldest connection that is not
  in the middle of a request (still sending its head, or idle between requests), so a few
  hosts holding sockets open cannot keep the tablet out;
- a request head (TLS handshake included) complete within ``head_timeout_s`` of its first byte
  (of the connection's opening for the first request), and a body within ``body_timeout_s`` of
  its head; idle keep-alive connections are closed by uvicorn after ``keep_alive_s``.

TLS is done here (``loop.start_tls`` with the head deadline as its handshake timeout) rather
than by the listening socket, so a handshake that never finishes counts against the same limits.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.settings import ApiSettings

_LOGGER = logging.getLogger(__name__)

# File descriptors the API process needs besides client connections: the store's database, WAL
# and shared-memory files, the listening socket, the journal, Python's own imports and the SSE
# pollers' store handles. The connection cap is lowered to fit under the process's open-file
# limit with this much left over.
RESERVED_FDS = 64
# Refusals and timeouts are summed and logged at most this often: an attack must not flood the
# journal (which is on the same SD card as the store).
_LOG_EVERY_S = 60.0
# Accept bursts whose descriptors can be open at one time (accepted, refused or evicted but not
# yet closed); see ``build_server``. One more than the three loop turns a connection takes, for
# the burst taken on the turn the oldest is closed.
_BURSTS_IN_FLIGHT = 4


class ConnectionGuard:
    """Counts the server's connections and decides who gets one; shared by all of them."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_per_client: int,
        head_timeout_s: float,
        body_timeout_s: float,
        max_head_bytes: int = 16 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_head_bytes = max_head_bytes
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.head_timeout_s = head_timeout_s
        self.body_timeout_s = body_timeout_s
        self.ssl_context = ssl_context
        # Each client's connections, oldest first (dicts keep insertion order).
        self._by_client: dict[str, dict[GuardedConnection, None]] = {}
        self._open = 0
        self.counts: Counter[str] = Counter()
        self._logged_mono = time.monotonic()

    @property
    def open_connections(self) -> int:
        return self._open

    def connections_of(self, client: str) -> int:
        return len(self._by_client.get(client, ()))

    def admit(self, conn: GuardedConnection) -> bool:
        """Register ``conn``, or return False when it must be closed at once.

        A full server takes the slot from the client holding the most connections (its oldest
        idle one), unless the newcomer's client already holds as many: slots are shared out
        fairly between addresses, so a guard with one connection always gets one while the
        hosts attacking hold several each, however fast they reconnect.
        """
        mine = self._by_client.get(conn.client, {})
        if len(mine) >= self.max_per_client:
            self._note("refused_per_client")
            return False
        if self._open >= self.max_connections:
            victim = self._victim(len(mine))
            if victim is None:
                self._note("refused_full")
                return False
            victim.close("evicted")
        self._by_client.setdefault(conn.client, {})[conn] = None
        self._open += 1
        return True

    def _victim(self, newcomer_holds: int) -> GuardedConnection | None:
        for conns in sorted(self._by_client.values(), key=len, reverse=True):
            if len(conns) <= newcomer_holds + 1:
                return None  # nobody holds more than the newcomer would: no fairer to evict
            victim = next((c for c in conns if c.idle()), None)
            if victim is not None:
                return victim
        return None

    def release(self, conn: GuardedConnection) -> None:
        conns = self._by_client.get(conn.client)
        if conns is not None and conn in conns:
            del conns[conn]
            self._open -= 1
            if not conns:
                del self._by_client[conn.client]

    def _note(self, what: str) -> None:
        self.counts[what] += 1
        now = time.monotonic()
        if now - self._logged_mono >= _LOG_EVERY_S:
            self._logged_mono = now
            self.log_counts("connection guard")

    def log_counts(self, heading: str) -> None:
        """Log the refusals and timeouts so far, if there were any."""
        if self.counts:
            _LOGGER.warning(
                "%s: %s (open %d of %d)",
                heading,
                ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())),
                self._open,
                self.max_connections,
            )

    def closed(self, why: str) -> None:
        self._note(why)


class _AcceptErrorCounter(logging.Filter):
    """Turns asyncio's log of a failed ``accept()`` into a count on the guards.

    asyncio logs every accept that fails for want of descriptors with a full traceback and
    pauses the listener for a second; in a flood that is a hundred tracebacks a second into the
    journal on the store's SD card. The pause stays; the record becomes a counted refusal in the
    guard's once-a-minute summary.
    """

    def __init__(self) -> None:
        super().__init__()
        self.guards: weakref.WeakSet[ConnectionGuard] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        for guard in self.guards:
            guard.closed("accept_out_of_files")
        return False


_ACCEPT_ERRORS = _AcceptErrorCounter()
logging.getLogger("asyncio").addFilter(_ACCEPT_ERRORS)


class GuardedConnection(asyncio.Protocol):
    """One client connection: deadlines and TLS around uvicorn's HTTP/1.1 protocol."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], H11Protocol]) -> None:
        self.guard = guard
        # uvicorn's protocol is built only for an admitted connection: refusing one costs little.
        self._make_inner = make_inner
        self.inner: H11Protocol = cast(H11Protocol, None)
        self.loop = asyncio.get_running_loop()
        self.client = ""
        self.transport: asyncio.BaseTransport | None = None
        self._inner_made = False
        self._early: list[bytes] = []
        self._lost = False
        self._timer: asyncio.TimerHandle | None = None
        self._tls_task: asyncio.Task[None] | None = None
        # Loop times: the current request head's first byte (or the connection's opening), and
        # the moment its head completed while its body is still coming.
        self._head_started: float | None = None
        self._body_started: float | None = None

    # -- the phases, read from uvicorn's protocol ------------------------------------------------
    def _awaiting_head(self) -> bool:
        if not self._inner_made:
            return True
        cycle = self.inner.cycle
        return cycle is None or bool(cycle.response_complete)

    def _receiving_body(self) -> bool:
        if not self._inner_made:
            return False
        cycle = self.inner.cycle
        return cycle is not None and not cycle.response_complete and bool(cycle.more_body)

    def idle(self) -> bool:
        """Not in the middle of a request: safe to close to make room for another client."""
        return self._awaiting_head()

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(self):
            self._lost = True
            transport.abort()  # type: ignore[attr-defined]
            return
        self._head_started = self.loop.time()
        self._arm()
        context = self.guard.ssl_context
        if context is None:
            self._connect_inner(cast(asyncio.Transport, transport))
            return
        # No bytes reach us before the TLS layer takes the socket over.
        cast(asyncio.Transport, transport).pause_reading()
        # Held here: the loop keeps only a weak reference to a task.
        self._tls_task = self.loop.create_task(
            self._start_tls(cast(asyncio.Transport, transport), context)
        )

    async def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            tls = await self.loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.guard.head_timeout_s,
            )
        except (OSError, ssl.SSLError, TimeoutError, RuntimeError):
            # A failed or too slow handshake: the client gets nothing more.
            transport.abort()
            self._gone()
            return
        except asyncio.CancelledError:
            transport.abort()  # the server is shutting down
            self._gone()
            raise
        if tls is None or self._lost:
            if tls is not None:
                tls.abort()
            return
        self.transport = tls
        self._connect_inner(tls)

    def _connect_inner(self, transport: asyncio.Transport) -> None:
        self.inner = self._make_inner()
        self._inner_made = True
        self.inner.connection_made(transport)
        if self._early:
            early, self._early = b"".join(self._early), []
            self.data_received(early)

    def data_received(self, data: bytes) -> None:
        if not self._inner_made:
            # Decrypted bytes can arrive before the handshake's waiter wakes us (the request
            # right behind the handshake): keep them for uvicorn's protocol, within the head
            # limit it would enforce itself.
            self._early.append(data)
            if sum(map(len, self._early)) > self.guard.max_head_bytes:
                self.close("head_too_large")
            return
        before = self._awaiting_head()
        self.inner.data_received(data)
        now = self.loop.time()
        if before and self._head_started is None:
            self._head_started = now
        if before and not self._awaiting_head():
            self._head_started = None
            self._body_started = now
        self._arm()

    def eof_received(self) -> bool | None:
        if self._inner_made:
            self.inner.eof_received()
        return None  # close the transport: HTTP/1.1 has no half-closed requests

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self._inner_made:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner_made:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner_made:
            self.inner.resume_writing()

    # -- deadlines -------------------------------------------------------------------------------
    def _deadline(self) -> float | None:
        if self._awaiting_head():
            if self._head_started is None:
                return None  # idle between requests: uvicorn's keep-alive timeout applies
            return self._head_started + self.guard.head_timeout_s
        if self._receiving_body() and self._body_started is not None:
            return self._body_started + self.guard.body_timeout_s
        return None  # the app is answering (an event stream can last a shift)

    def _arm(self) -> None:
        if self._timer is not None or self._lost:
            return
        deadline = self._deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        deadline = self._deadline()
        if deadline is None:
            return
        if self.loop.time() >= deadline:
            self.close("head_timeout" if self._awaiting_head() else "body_timeout")
            return
        self._timer = self.loop.call_at(deadline, self._check)

    def close(self, why: str) -> None:
        """Drop the connection now (an RST: the descriptor is free at once)."""
        if self._lost:
            return
        self.guard.closed(why)
        self._gone()
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _gone(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lost:
            self._lost = True
            self.guard.release(self)


def fd_budget() -> int | None:
    """Connections this process can hold under its open-file limit, or None when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(8, int(soft) - RESERVED_FDS)


def tls_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    return context


def build_server(
    app: Any,
    settings: ApiSettings,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    **config: Any,
) -> tuple[uvicorn.Server, ConnectionGuard]:
    """A uvicorn server for ``app`` behind a ``ConnectionGuard`` built from ``settings``."""
    max_connections = settings.max_connections
    budget = fd_budget()
    if budget is not None and max_connections > budget:
        _LOGGER.warning(
            "[api] max_connections %d does not fit the open-file limit; using %d "
            "(raise LimitNOFILE to serve more)",
            max_connections,
            budget,
        )
        max_connections = budget
    guard = ConnectionGuard(
        max_connections=max_connections,
        max_per_client=min(settings.max_connections_per_client, max_connections),
        head_timeout_s=settings.head_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_head_bytes=settings.max_head_bytes,
        ssl_context=tls_context(certfile, keyfile) if certfile else None,
    )

    _ACCEPT_ERRORS.guards.add(guard)

    def protocol(
        *,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> asyncio.Protocol:
        return GuardedConnection(
            guard,
            lambda: H11Protocol(
                config=config, server_state=server_state, app_state=app_state, _loop=_loop
            ),
        )

    # asyncio accepts up to ``backlog`` connections in one go before any is looked at (and
    # sizes the kernel's queue with it). A connection is looked at (admitted or refused) two
    # loop turns after its accept and its descriptor freed one turn after that, while the
    # listening socket, readable on every turn of a flood, takes a new burst each time: up to
    # ``_BURSTS_IN_FLIGHT`` bursts hold descriptors at once besides the admitted connections.
    backlog = (
        1024
        if budget is None
        else max(8, min(1024, (budget - max_connections) // _BURSTS_IN_FLIGHT))
    )
    uv_config = uvicorn.Config(
        app,
        http=cast(Any, protocol),
        ws="none",
        timeout_keep_alive=int(settings.keep_alive_s),
        h11_max_incomplete_event_size=settings.max_head_bytes,
        server_header=False,
        backlog=backlog,
        **config,
    )
    return uvicorn.Server(uv_config), guard
