"""Tell systemd how a daemon is doing: the ``sd_notify`` datagram protocol in a few lines.

A ``Type=notify`` unit gets ``$NOTIFY_SOCKET``; the daemon sends newline-separated ``KEY=VALUE``
datagrams to it: ``READY=1`` once it serves, ``STATUS=...`` for ``systemctl status``,
``STOPPING=1`` on the way out and ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC``. Without the
variable (a shell, a test, ``checkpoint run``) every call is a silent no-op.

Use from a daemon's main loop::

    notify.ready("capturing on wlan1mon")
    dog = Watchdog()            # interval from $WATCHDOG_USEC; disabled when unset
    while running:
        handle(queue.get(timeout=1.0))
        dog.progress()          # cheap: records that the loop went round
        dog.tick()              # sends WATCHDOG=1 when one is due and progress is recent
    notify.stopping()

or ``dog.start()`` once for a thread that ticks by itself (for loops that block elsewhere, such as
asyncio servers); either way a loop that stops calling ``progress()`` stops the pings, and systemd
restarts the unit after ``WatchdogSec``. We write the protocol ourselves because it is one
``sendto`` and a dependency (python-systemd) needs libsystemd headers to build.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

from scanner.clock import SYSTEM_CLOCK, Clock

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "Notifier",
    "Watchdog",
    "ready",
    "status",
    "stopping",
    "watchdog_interval_s",
    "watchdog_ping",
]


def _socket_address(raw: str) -> str | None:
    """``$NOTIFY_SOCKET`` as an AF_UNIX address, or None for a form we do not speak.

    ``@name`` is an abstract socket (a leading NUL byte on the wire); an absolute path is a socket
    file. systemd 254 also hands containers ``vsock:CID:PORT``, which an appliance never sees.
    """
    if raw.startswith("@") and len(raw) > 1:
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


def _parse_watchdog_usec(env: Mapping[str, str]) -> float | None:
    """The watchdog interval in seconds, if systemd set one for this very process."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    # WATCHDOG_PID names the process the watchdog is for; a child that inherited the variables
    # (a helper we spawned) must not ping on the daemon's behalf.
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        _LOGGER.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    if value <= 0:
        return None
    return value / 1_000_000


class Notifier:
    """Sends notification datagrams to one socket; never raises (systemd must not crash us)."""

    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self._address = _socket_address(address) if address else None
        if address and self._address is None:
            _LOGGER.warning("NOTIFY_SOCKET=%r is not a form we support; not notifying", address)
        self.watchdog_s = watchdog_s if self._address else None
        self._warned = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``."""
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET") or None, _parse_watchdog_usec(env))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; True if it left, False if off or failed."""
        if self._address is None or not fields:
            return False
        # One field per line: a newline inside STATUS= text would start a bogus field.
        payload = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            self._log_send_failure(exc)
            return False
        return True

    def _log_send_failure(self, exc: OSError) -> None:
        # Warn once: a vanished socket means systemd went away, and a warning per ping would
        # flood the journal that is also gone.
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        _LOGGER.log(level, "cannot notify systemd: %s", exc.strerror or exc)


def _environment_notifier() -> Notifier:
    # Read each time: cheap, and tests (or a supervisor) may change the environment.
    return Notifier.from_environment()


def ready(status_text: str | None = None) -> bool:
    """The daemon is serving: systemd finishes ``start`` and starts the watchdog clock."""
    fields = ["READY=1"]
    if status_text:
        fields.append(f"STATUS={status_text}")
    return _environment_notifier().send(*fields)


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return _environment_notifier().send(f"STATUS={text}")


def stopping(status_text: str | None = None) -> bool:
    """The daemon is shutting down on purpose (so a slow exit is not a hang)."""
    fields = ["STOPPING=1"]
    if status_text:
        fields.append(f"STATUS={status_text}")
    return _environment_notifier().send(*fields)


def watchdog_ping() -> bool:
    """One unconditional ``WATCHDOG=1``; prefer ``Watchdog``, which pings only on progress."""
    return _environment_notifier().send("WATCHDOG=1")


def watchdog_interval_s() -> float | None:
    """``WatchdogSec`` of this unit in seconds, or None when there is no watchdog."""
    return _parse_watchdog_usec(os.environ)


class Watchdog:
    """Pings systemd's watchdog while, and only while, the main loop reports progress.

    ``progress()`` marks that the loop went round; ``tick()`` sends ``WATCHDOG=1`` when half the
    interval has passed since the last ping (systemd's advice) and progress was seen within
    ``stall_s``. A loop that hangs stops calling ``progress()``, the pings stop, and systemd kills
    and restarts the unit: a thread that pings on a timer alone would keep a dead daemon "alive".
    """

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        notifier: Notifier | None = None,
        interval_s: float | None = None,
        stall_s: float | None = None,
    ) -> None:
        self._clock = clock
        self._notifier = notifier if notifier is not None else Notifier.from_environment()
        self.interval_s = interval_s if interval_s is not None else self._notifier.watchdog_s
        # Ping at half the interval so one late ping is not fatal.
        self.ping_every_s = self.interval_s / 2 if self.interval_s else 0.0
        self.stall_s = stall_s if stall_s is not None else self.ping_every_s
        self._last_progress: float | None = None
        self._last_ping: float | None = None
        self._stalled = False
        self.pings = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """True when systemd expects pings (a socket and an interval)."""
        return self._notifier.enabled and bool(self.interval_s)

    def progress(self) -> None:
        """The main loop went round; call it every iteration (it makes no system call)."""
        self._last_progress = self._clock.monotonic()

    def tick(self) -> bool:
        """Send ``WATCHDOG=1`` if one is due and the loop is not stalled; True if sent."""
        if not self.enabled:
            return False
        now = self._clock.monotonic()
        if self._last_progress is None or now - self._last_progress > self.stall_s:
            self._note_stall(now)
            return False
        if self._stalled:
            self._stalled = False
            _LOGGER.info("main loop is making progress again; watchdog pings resume")
        if self._last_ping is not None and now - self._last_ping < self.ping_every_s:
            return False
        if self._notifier.send("WATCHDOG=1"):
            self._last_ping = now
            self.pings += 1
            return True
        return False

    def _note_stall(self, now: float) -> None:
        if self._stalled or self._last_progress is None:
            return
        self._stalled = True
        _LOGGER.warning(
            "main loop made no progress for %.1f s; no longer pinging the systemd watchdog, "
            "which will restart the service",
            now - self._last_progress,
        )

    def start(self) -> None:
        """Tick from a background thread, for loops that cannot call ``tick()`` themselves.

        The thread only sends; whether it may is still decided by ``progress()`` calls from the
        loop being watched. A no-op when the watchdog is disabled.
        """
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="systemd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread, if any."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        # Wake four times per ping period so a ping is never more than a quarter period late.
        period = max(self.ping_every_s / 4, 0.01)
        while not self._stop.wait(period):
            self.tick()

    def __enter__(self) -> Watchdog:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
