"""How source records reach the core: an in-process queue, or a Unix socket between daemons.

Both transports look the same to the two ends: a source calls ``transport.sink(event)``, which
never blocks and counts a drop when it must, and the core reads an ``EventQueue``.

* ``InProcessTransport`` (``checkpoint run`` and ``checkpoint demo``): the sink puts straight
  into the core's bounded queue.
* ``SocketSender`` -> ``SocketReceiver`` (one systemd unit per daemon): a capture daemon sends
  batches of JSON lines (``codec``) as SOCK_SEQPACKET messages, so the kernel keeps message
  boundaries and a torn frame cannot happen. The sender holds a bounded buffer and reconnects
  with backoff while the core restarts; what overflows the buffer is counted, oldest first,
  because the newest records say most about who is at the gate now. The receiver accepts any
  number of capture daemons and counts and drops frames that do not decode.

The same queue carries ``InputsChanged``: the API's word that a person acknowledged an alert or
changed the allowlist, so the core reads the store at once instead of at its next poll. In one
process the API puts it on the queue (``QueueNotifier``); as separate daemons it arrives over the
core's socket like a record (``SocketNotifier``). It is queued behind the records that arrived
before it, so the core acts on the acknowledgement in the order things happened: a phone heard
after the guard pressed Acknowledge is a new alarm, not part of the alert just acknowledged.

The other way, the core tells the API that its store sink committed rows to the store's live
feed (``FeedBell``): an alert reaches the tablet's stream as soon as it is in the store, not at
the API's next poll of the store. In one process the API listens to the bell directly; as
separate daemons the API keeps a connection to the core's socket (``FeedWatcher``) on which the
receiver sends a word after each such commit. The word carries no rows: the API reads them from
the store, in order, as it does on its poll, which stays as the fallback for a word that was lost
(the core restarting, the API not reading fast enough).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import selectors
import socket
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.config import ConfigError
from scanner.observations import SourceEvent
from scanner.runtime.transport.codec import (
    FEED_WORD,
    WATCH_WORD,
    FrameError,
    InputsChanged,
    WatchFeed,
    decode_binary,
    decode_message,
    encode_inputs_changed,
    encode_message,
    is_binary,
)

_LOGGER = logging.getLogger(__name__)

# One socket message at most; SEQPACKET messages must fit the socket buffer (about 208 KiB by
# default on Linux), and 64 KiB holds a few hundred records, enough to batch a 5 kHz stream.
MAX_PACKET_BYTES = 64 * 1024
# The sender flushes a partly filled batch after this long, so one quiet radio is not delayed.
# The frame that raises an alarm waits up to this long in its capture daemon: 20 ms was the
# largest part of the idle alarm path. At 5 ms a 5,000 frames/s stream still shares a message
# between some 25 records, so the receiver's cost per message stays small beside decoding them.
SEND_LINGER_S = 0.005
# Reconnect backoff while the core is down: quick first retries (a restart takes ~1 s), capped
# so a core that is down for minutes costs one attempt every few seconds.
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 3.0
# A send that cannot complete for this long means the core is stalled; the batch is kept.
SEND_TIMEOUT_S = 2.0
# The receiver waits this long for room in the core's queue before it counts a drop, which pushes
# back on the senders (their buffers then overflow, counted) instead of growing memory here.
RECEIVER_PUT_TIMEOUT_S = 1.0
# recvmsg's truncation flag as a plain int: ``socket.MSG_TRUNC`` is an IntFlag, whose ``&`` is
# Python code run on every message the core receives.
_MSG_TRUNC = int(socket.MSG_TRUNC)
# The API's notification waits at most this long for the core's socket: a core that is down or
# stalled must not hold a guard's Acknowledge; the core's own poll of the store catches up.
NOTIFY_TIMEOUT_S = 0.2

# What the core's queue carries.
Message = SourceEvent | InputsChanged

# Peers on the core's socket that may watch the live feed at once: the API daemon holds one
# connection, and a restarting API can hold a second until the kernel closes the first. The cap
# stops a peer from making the core's thread write to a heap of sockets after every commit.
MAX_FEED_WATCHERS = 4
# The API's watcher reconnects as a capture daemon does (see ``RECONNECT_*``), and waits at most
# this long in ``recv`` before it looks whether it was asked to stop.
WATCH_RECV_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """The ``[transport]`` section: where the core listens and how much each end buffers."""

    socket_path: Path
    queue_size: int = 20_000  # core input queue: a few seconds at full load
    send_buffer: int = 20_000  # per capture daemon, while the core is down or slow
    socket_mode: int = 0o660  # capture daemons run as other users in the checkpoint group

    @classmethod
    def from_mapping(cls, section: dict[str, Any], state_dir: Path) -> TransportOptions:
        """Parse the section; ``ConfigError`` names the key that is wrong."""
        known = {"socket", "queue_size", "send_buffer", "socket_mode"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"[transport]: unknown key(s) {', '.join(unknown)}")
        path = section.get("socket", str(state_dir / "core.sock"))
        if not isinstance(path, str) or not path:
            raise ConfigError("[transport] socket must be a path")
        sizes: dict[str, int] = {}
        for key, default in (("queue_size", 20_000), ("send_buffer", 20_000)):
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**7:
                raise ConfigError(f"[transport] {key} must be an integer from 1 to 10000000")
            sizes[key] = value
        mode = section.get("socket_mode", "0660")
        try:
            mode_int = int(mode, 8) if isinstance(mode, str) else int(mode)
        except ValueError as exc:
            raise ConfigError(
                "[transport] socket_mode must be an octal string like '0660'"
            ) from exc
        return cls(Path(path), sizes["queue_size"], sizes["send_buffer"], mode_int)


class EventQueue:
    """The core's bounded input queue; what does not fit is counted, never buffered.

    Its own deque under one lock rather than ``queue.Queue``: the receiver puts a socket
    message's records at once (``put_many``) and the core takes what is waiting at once
    (``get_many``), one lock a message and a batch instead of two a record, which was some
    1.4 us of the core process's CPU per record under a busy gate's 6,000 records a second.
    """

    def __init__(self, maxsize: int, counters: Counter[str] | None = None) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[Message] = collections.deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        # Drops by the sensor that sent the record, for each sensor's line in /healthz.
        self.dropped_by_sensor: Counter[str] = Counter()
        # The deepest the queue has been when the core came for a batch: how far behind the
        # core fell (a record's wait grows with it), sampled once a batch, not once a record.
        self.deepest = 0

    def put(self, event: Message) -> bool:
        """Enqueue without waiting; a full queue is a counted drop."""
        return self.put_many((event,), 0.0) == 1

    def put_wait(self, event: Message, timeout: float) -> bool:
        """Enqueue, waiting up to ``timeout`` for room; then a counted drop."""
        return self.put_many((event,), timeout) == 1

    def put_many(self, events: Sequence[Message], timeout: float) -> int:
        """Enqueue in order, waiting up to ``timeout`` in all for room; what still finds the
        queue full is a counted drop, and once a wait ran out the rest waits no more (a stalled
        core must not hold the receiver a second a record). Returns how many were queued."""
        put = 0
        deadline: float | None = None
        dropped: list[Message] = []
        with self._not_full:
            items = self._items
            for event in events:
                if len(items) >= self.maxsize and timeout > 0:
                    if deadline is None:
                        deadline = time.monotonic() + timeout
                    while len(items) >= self.maxsize:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            timeout = 0.0
                            break
                        self._not_full.wait(left)
                if len(items) >= self.maxsize:
                    dropped.append(event)
                    continue
                items.append(event)
                put += 1
            if put:
                self._not_empty.notify(put)
        for event in dropped:
            self._dropped(event)
        return put

    def _dropped(self, event: Message) -> None:
        if isinstance(event, InputsChanged):
            # The core's periodic poll of the store still finds the change.
            self.counters["dropped_inputs_changed"] += 1
            return
        self.counters["dropped_queue_full"] += 1
        self.dropped_by_sensor[event.sensor] += 1

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to ``timeout`` (the start of the core's batch)."""
        with self._not_empty:
            items = self._items
            if not items:
                self._not_empty.wait_for(lambda: bool(items), timeout)
                if not items:
                    return None
            # The message taken counts.
            self.deepest = max(self.deepest, min(len(items), self.maxsize))
            message = items.popleft()
            self._not_full.notify()
        return message

    def get_nowait(self) -> Message | None:
        with self._lock:
            if not self._items:
                return None
            message = self._items.popleft()
            self._not_full.notify()
        return message

    def get_many(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages that are waiting, oldest first, without waiting."""
        with self._lock:
            items = self._items
            n = min(limit, len(items))
            if n <= 0:
                return []
            taken = [items.popleft() for _ in range(n)]
            self._not_full.notify_all()
        return taken

    def qsize(self) -> int:
        return len(self._items)


class InProcessTransport:
    """Sources and core in one process: the sink is the core's queue."""

    def __init__(self, events: EventQueue) -> None:
        self.events = events
        self.counters = events.counters

    def sink(self, event: SourceEvent) -> None:
        self.events.put(event)

    def close(self) -> None:
        """Nothing to release; present so both transports stop the same way."""


class QueueNotifier:
    """The API's word to a core in the same process: straight onto the core's queue."""

    def __init__(self, events: EventQueue) -> None:
        self.events = events

    def __call__(self, what: str) -> None:
        self.events.put(InputsChanged(what))


class SocketNotifier:
    """The API's word to the core daemon, over the core's socket (one message per change).

    A connection per notification: people acknowledge and edit the allowlist a few times an
    hour, and a held connection would be one more thing to reconnect after a core restart.
    Failure never reaches the guard's request: it is counted, and the core's periodic poll of
    the store picks the change up a few seconds later.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counters: Counter[str] = Counter()
        self._warned = False

    def __call__(self, what: str) -> None:
        message = encode_inputs_changed(InputsChanged(what))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(NOTIFY_TIMEOUT_S)
        try:
            sock.connect(str(self.path))
            sock.send(message)
        except OSError as exc:
            self.counters["notify_failed"] += 1
            log = _LOGGER.debug if self._warned else _LOGGER.warning
            self._warned = True
            log(
                "could not tell the core at %s about a change (%s); it reads the store on its "
                "own poll",
                self.path,
                exc.strerror or exc,
            )
            return
        finally:
            sock.close()
        self.counters["notified"] += 1


class FeedBell:
    """Rings whoever watches the store's live feed after the store sink committed rows to it.

    Listeners run on the ringing thread (the core's) under the bell's lock and must not block: a
    watcher on the socket sends without waiting, an API in the same process only schedules its
    wake-up. Forgetting a listener waits for a ring in progress, so a socket is never written
    after it was closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.counters: Counter[str] = Counter()
        self._logged = False

    def listen(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._listeners)

    def ring(self) -> None:
        """The live feed has new rows in the store (called after the commit)."""
        with self._lock:
            self.counters["rung"] += 1
            for listener in self._listeners:
                try:
                    listener()
                except Exception:
                    # A listener's failure must not reach the core: the API's poll finds the rows.
                    self.counters["listener_errors"] += 1
                    if not self._logged:
                        self._logged = True
                        _LOGGER.exception("a live-feed listener failed; it polls the store")


class FeedWatcher:
    """The API daemon's ear on the core's socket: ``wake()`` for each word that the core's store
    sink committed rows to the live feed, and once on each (re)connection, since rows may have
    been committed while nobody listened.

    It reconnects with backoff while the core is down; meanwhile the API polls the store.
    """

    def __init__(self, path: Path, wake: Callable[[], None]) -> None:
        self.path = path
        self.wake = wake
        self.counters: Counter[str] = Counter()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._warned = False

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="feed-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            sock = self._sock
            if sock is not None:
                # Wakes the thread out of recv at once.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=WATCH_RECV_TIMEOUT_S + 1)

    def _run(self) -> None:
        backoff = RECONNECT_MIN_S
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            try:
                self.wake()
                self._listen(sock)
            finally:
                with self._lock:
                    self._sock = None
                sock.close()

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(SEND_TIMEOUT_S)
        try:
            sock.connect(str(self.path))
            sock.send(WATCH_WORD)
        except OSError as exc:
            sock.close()
            level = logging.DEBUG if self._warned else logging.INFO
            self._warned = True
            _LOGGER.log(
                level,
                "cannot watch the core's feed at %s (%s); polling the store meanwhile",
                self.path,
                exc.strerror or exc,
            )
            return None
        sock.settimeout(WATCH_RECV_TIMEOUT_S)
        with self._lock:
            self._sock = sock
        self.counters["connects"] += 1
        if self._warned:
            _LOGGER.info("watching the core's feed at %s again", self.path)
        self._warned = False
        return sock

    def _listen(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                word = sock.recv(64)
            except TimeoutError:
                continue
            except OSError as exc:
                _LOGGER.info("the core's feed connection failed: %s", exc.strerror or exc)
                return
            if not word:
                return  # the core went away (a restart): reconnect
            if word != FEED_WORD:
                self.counters["unknown_words"] += 1
                continue
            self.counters["words"] += 1
            self.wake()


# -- Unix socket: capture daemon side ---------------------------------------------------------


class SocketSender:
    """A capture daemon's connection to the core, with a bounded buffer and reconnects."""

    def __init__(self, path: Path, buffer_size: int = 20_000) -> None:
        self.path = path
        self.buffer_size = buffer_size
        self.counters: Counter[str] = Counter()
        self._buffer: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._warned_down = False

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def start(self) -> None:
        """Start (or, after ``close``, restart) the sending thread; the buffer is kept."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="transport-send", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The sending thread (None before start), for its supervisor to watch."""
        return self._thread

    def sink(self, event: SourceEvent) -> None:
        """Queue one record for the core; never blocks (the capture loop calls this)."""
        try:
            line = encode_message(event)
        except (TypeError, ValueError):
            self.counters["dropped_unencodable"] += 1
            return
        if len(line) + 1 > MAX_PACKET_BYTES:
            self.counters["dropped_oversize"] += 1
            return
        with self._cond:
            if len(self._buffer) >= self.buffer_size:
                self._buffer.popleft()
                self._count_drop(1)
            self._buffer.append(line)
            if len(self._buffer) == 1:
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def flush(self, timeout: float) -> bool:
        """Wait until everything buffered is sent (or ``timeout``); True when empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.01)
        return self.pending() == 0

    def close(self, flush_s: float = 1.0) -> None:
        """Send what is buffered (briefly), then disconnect."""
        if self.connected:
            self.flush(flush_s)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=SEND_TIMEOUT_S + 1)
        self._disconnect()

    # -- the sending thread ---------------------------------------------------------------
    def _run(self) -> None:
        backoff = RECONNECT_MIN_S
        while not self._stop.is_set():
            if self._sock is None:
                if not self._connect():
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, RECONNECT_MAX_S)
                    continue
                backoff = RECONNECT_MIN_S
            batch = self._take_batch()
            if not batch:
                continue
            self._send(batch)

    def _connect(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(SEND_TIMEOUT_S)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            self._note_down(exc)
            return False
        self._sock = sock
        self.counters["connects"] += 1
        if self._warned_down:
            _LOGGER.warning("reconnected to the core at %s", self.path)
        self._warned_down = False
        return True

    def _note_down(self, exc: OSError) -> None:
        # Warn once per outage (the operator should look at the core); retries go to debug.
        if not self._warned_down:
            _LOGGER.warning(
                "core not reachable at %s (%s); buffering up to %d records and retrying",
                self.path,
                exc.strerror or exc,
                self.buffer_size,
            )
            self._warned_down = True
        else:
            _LOGGER.debug("core still not reachable at %s: %s", self.path, exc)

    def _take_batch(self) -> list[bytes]:
        with self._cond:
            if not self._buffer:
                self._cond.wait(timeout=0.5)
            if not self._buffer:
                return []
            if len(self._buffer) < 64:
                # Linger briefly so a trickle of records shares one message.
                self._cond.wait(timeout=SEND_LINGER_S)
            if is_binary(self._buffer[0]):
                # A burst with its IQ is a message of its own.
                return [self._buffer.popleft()]
            batch: list[bytes] = []
            size = 0
            while (
                self._buffer
                and not is_binary(self._buffer[0])
                and size + len(self._buffer[0]) + 1 <= MAX_PACKET_BYTES
            ):
                line = self._buffer.popleft()
                batch.append(line)
                size += len(line) + 1
            return batch

    def _send(self, batch: list[bytes]) -> None:
        sock = self._sock
        if sock is None:
            self._requeue(batch)
            return
        try:
            sock.send(b"\n".join(batch))
        except OSError as exc:
            # The core went away (or is stalled): keep the batch for the next connection.
            self.counters["send_errors"] += 1
            self._requeue(batch)
            self._disconnect()
            self._note_down(exc)
            return
        self.counters["sent"] += len(batch)
        self.counters["packets"] += 1

    def _requeue(self, batch: list[bytes]) -> None:
        with self._cond:
            self._buffer.extendleft(reversed(batch))
            excess = len(self._buffer) - self.buffer_size
            for _ in range(max(0, excess)):
                self._buffer.popleft()
            self._count_drop(max(0, excess))

    def _count_drop(self, n: int) -> None:
        # Every overflow is counted once; those during an outage are also counted apart, so
        # the health report can say how much the core's absence cost.
        if n:
            self.counters["dropped_buffer_full"] += n
            if self._sock is None:
                self.counters["dropped_core_down"] += n

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


# -- Unix socket: core side -------------------------------------------------------------------


class SocketReceiver:
    """The core's listening socket: accepts capture daemons, decodes, feeds the core's queue."""

    def __init__(
        self, path: Path, events: EventQueue, mode: int = 0o660, bell: FeedBell | None = None
    ) -> None:
        self.path = path
        self.events = events
        self.mode = mode
        self.bell = bell
        self.counters: Counter[str] = Counter()
        # Watching peers (the API): their socket -> the bell's listener that writes to it.
        self._watchers: dict[socket.socket, Callable[[], None]] = {}
        self._listener: socket.socket | None = None
        self._selector = selectors.DefaultSelector()
        self._clients: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_malformed = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def watchers(self) -> int:
        """Connections that watch the live feed (the API), among ``clients``."""
        return len(self._watchers)

    def start(self) -> None:
        """Bind and listen (replacing a stale socket file), then serve in a thread."""
        self._listener = self._bind()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="transport-recv", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The receiving thread (None before start), for its supervisor to watch."""
        return self._thread

    def _bind(self) -> socket.socket:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(errno.EEXIST, f"{self.path} exists and is not a socket")
            if _socket_answers(self.path):
                raise OSError(errno.EADDRINUSE, f"another core is listening on {self.path}")
            # Left behind by a core that was killed: nobody listens, so it is safe to replace.
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(str(self.path))
            self.path.chmod(self.mode)
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        # The listener first: a peer that sees its connection close and reconnects at once
        # must find nobody listening, not the closing listener's backlog (where its connection
        # would be accepted by the kernel and then reset, a reconnection wasted).
        if self._listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for client in list(self._clients):
            self._drop_client(client)
        self._selector.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _mask in self._selector.select(timeout=0.2):
                sock = key.fileobj
                if not isinstance(sock, socket.socket):
                    continue
                if sock is self._listener:
                    self._accept()
                else:
                    self._read(sock)

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _LOGGER.warning("accepting a capture daemon failed: %s", exc)
            return
        client.setblocking(False)
        self._clients.add(client)
        self._selector.register(client, selectors.EVENT_READ)
        self.counters["connections"] += 1
        _LOGGER.info("capture daemon connected (%d now)", len(self._clients))

    def _read(self, client: socket.socket) -> None:
        try:
            data, _anc, flags, _addr = client.recvmsg(MAX_PACKET_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _LOGGER.info("capture daemon connection failed: %s", exc)
            self._drop_client(client)
            return
        if not data:
            self._drop_client(client)
            return
        self.counters["packets"] += 1
        if flags & _MSG_TRUNC:
            # A message larger than any sender writes: not one of ours; drop it whole.
            self._malformed("oversized message")
            return
        # The message's records go into the core's queue together, waiting for room at most
        # once per message: a stalled core must not hold this thread (and every other capture
        # daemon) for a second per record.
        decoded: list[Message] = []
        for line in [data] if is_binary(data) else data.split(b"\n"):
            if not line:
                continue
            try:
                event = decode_binary(line) if is_binary(line) else decode_message(line)
            except FrameError as exc:
                self._malformed(str(exc))
                continue
            if isinstance(event, WatchFeed):
                self._watch(client)
                continue
            decoded.append(event)
        if decoded:
            self.events.put_many(decoded, RECEIVER_PUT_TIMEOUT_S)
            self.counters["records"] += len(decoded)

    def _watch(self, client: socket.socket) -> None:
        """The peer (the API) hears of each commit to the live feed on this connection."""
        if client in self._watchers:
            return
        if self.bell is None or len(self._watchers) >= MAX_FEED_WATCHERS:
            # Not refused in words: the peer sees no word and polls the store.
            self.counters["feed_watch_refused"] += 1
            return
        counters = self.counters

        def tell() -> None:
            try:
                # The socket is non-blocking: a watcher that is not reading loses the word
                # (counted), and finds the rows on its poll of the store.
                client.send(FEED_WORD)
            except BlockingIOError:
                counters["feed_words_dropped"] += 1
            except OSError:
                # Gone: the receiver's thread sees the hang-up and forgets it.
                counters["feed_words_failed"] += 1
            else:
                counters["feed_words"] += 1

        self._watchers[client] = tell
        self.bell.listen(tell)
        self.counters["feed_watches"] += 1
        _LOGGER.info("a peer watches the live feed (%d now)", len(self._watchers))

    def _malformed(self, why: str) -> None:
        self.counters["malformed_frames"] += 1
        if not self._logged_malformed:
            _LOGGER.warning("dropping malformed frame from a capture daemon: %s", why)
            self._logged_malformed = True
        else:
            _LOGGER.debug("dropping malformed frame: %s", why)

    def _drop_client(self, client: socket.socket) -> None:
        tell = self._watchers.pop(client, None)
        if tell is not None and self.bell is not None:
            self.bell.forget(tell)  # before the close: the bell never writes to a closed socket
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client)
        self._clients.discard(client)
        client.close()
        self.counters["disconnects"] += 1


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def counters_json(counters: Counter[str]) -> str:
    """Counters as one compact JSON object, for logs."""
    return json.dumps(dict(sorted(counters.items())), separators=(",", ":"))
