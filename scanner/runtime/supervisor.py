"""Keeps a process's components running: restarts one whose thread died, with backoff.

In production systemd restarts whole daemons; inside one process (``checkpoint run``,
``checkpoint demo``, and each daemon's own threads) this supervisor does the same for a
component. Restart ladder, per component:

1. the thread dies (an exception escaped, or the loop returned while we were not stopping);
2. report it at once (health event, one warning in the log) and wait the backoff;
3. build a fresh component from its factory and start it; a start that raises counts as
   another failure and doubles the backoff (1 s, 2 s, 4 s ... capped at 30 s);
4. a component that then stays up for a minute is healthy again: the backoff resets.

The main loop calls ``check()`` a few times a second; nothing here starts its own thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scanner.clock import SYSTEM_CLOCK, Clock

_LOGGER = logging.getLogger(__name__)

# First restart after 1 s: quick enough that a guard barely notices, slow enough that a
# component failing at start-up does not spin. Doubling to 30 s bounds the log and CPU cost of a
# receiver that is unplugged for hours.
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
# A component that stays up this long after a restart is considered healthy again.
STABLE_AFTER_S = 60.0


class Component(Protocol):
    """One restartable part of a process (a source, the core loop, the API server)."""

    name: str

    def start(self) -> None:
        """Start the component's thread(s); raise if it cannot start."""

    def alive(self) -> bool:
        """False once the component's thread has ended."""

    def stop(self, timeout: float) -> None:
        """Stop and wait up to ``timeout`` seconds."""

    def poll(self, now_mono: float) -> None:
        """Periodic housekeeping from the main loop (health reports, silence checks)."""

    def progress_mono(self) -> float | None:
        """When the component's loop last made progress (None: it has no loop to watch)."""


# Exceptions that escaped a thread, so a restart can say why the thread died.
_THREAD_ERRORS: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
_HOOK_LOCK = threading.Lock()
_HOOK_INSTALLED = False


def install_thread_excepthook() -> None:
    """Remember (and log once) each exception that kills a thread; idempotent."""
    global _HOOK_INSTALLED  # noqa: PLW0603 - one process-wide hook, installed once
    with _HOOK_LOCK:
        if _HOOK_INSTALLED:
            return
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            if args.thread is not None and args.exc_type is not SystemExit:
                _THREAD_ERRORS[args.thread] = f"{args.exc_type.__name__}: {args.exc_value}"
                _LOGGER.error(
                    "thread %s died:\n%s",
                    args.thread.name,
                    "".join(
                        traceback.format_exception(
                            args.exc_type, args.exc_value, args.exc_traceback
                        )
                    ).rstrip(),
                )
                return
            previous(args)

        threading.excepthook = hook
        _HOOK_INSTALLED = True


def thread_error(thread: threading.Thread | None) -> str:
    """Why a thread died, if an exception killed it; empty otherwise."""
    if thread is None:
        return ""
    return _THREAD_ERRORS.get(thread, "")


@dataclass(slots=True)
class Supervised:
    """A component under supervision and its restart bookkeeping."""

    name: str
    factory: Callable[[], Component]
    critical: bool
    component: Component | None = None
    state: str = "stopped"  # "running" | "restarting" | "stopped" | "failed"
    restarts: int = 0
    backoff_s: float = BACKOFF_MIN_S
    restart_at: float | None = None
    started_mono: float | None = None
    last_error: str = ""
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
        # A component may say more about itself (a replay: its own state and loops).
        detail = getattr(self.component, "runtime_detail", None)
        if callable(detail):
            try:
                out["detail"] = detail()
            except Exception:
                _LOGGER.debug("%s: no runtime detail", self.name, exc_info=True)
        return out


Reporter = Callable[[str, str, str], None]


def _no_report(_name: str, _state: str, _message: str) -> None:
    """Default reporter: the log line is enough."""


class Supervisor:
    """Starts components, restarts those that die, stops them in reverse order."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, report: Reporter = _no_report) -> None:
        self.clock = clock
        self._report = report
        self._items: list[Supervised] = []
        self._stopping = False

    def add(self, name: str, factory: Callable[[], Component], critical: bool = True) -> None:
        """Register a component; ``critical`` ones must progress for the watchdog to be fed."""
        self._items.append(Supervised(name=name, factory=factory, critical=critical))

    @property
    def items(self) -> list[Supervised]:
        return list(self._items)

    def start_all(self) -> None:
        """Start every component; one that fails to start is retried by ``check``."""
        for item in self._items:
            self._start(item)

    def _start(self, item: Supervised) -> None:
        now = self.clock.monotonic()
        try:
            component = item.factory()
            component.start()
        except Exception as exc:
            self._failed(item, f"cannot start: {type(exc).__name__}: {exc}", now)
            return
        item.component = component
        item.state = "running"
        item.started_mono = now
        item.restart_at = None
        if item.restarts:
            _LOGGER.warning("%s restarted (restart %d)", item.name, item.restarts)
            self._report(item.name, "running", f"restarted ({item.restarts} so far)")

    def _failed(self, item: Supervised, why: str, now: float) -> None:
        # The same failure again (a receiver still unplugged) is logged at debug: the operator
        # was told once, and the health strip shows it the whole time.
        level = logging.DEBUG if why == item.last_error else logging.WARNING
        item.last_error = why
        item.state = "restarting"
        item.restart_at = now + item.backoff_s
        item.history.append(why)
        del item.history[:-10]
        _LOGGER.log(level, "%s stopped: %s; restarting in %.0f s", item.name, why, item.backoff_s)
        self._report(item.name, "fault", f"{why}; restarting in {item.backoff_s:.0f} s")
        item.backoff_s = min(item.backoff_s * 2, BACKOFF_MAX_S)

    def check(self) -> None:
        """Restart what died, when its backoff has passed; let live components do housekeeping."""
        if self._stopping:
            return
        now = self.clock.monotonic()
        for item in self._items:
            component = item.component
            if item.state == "running" and component is not None:
                if component.alive():
                    if item.started_mono is not None and now - item.started_mono > STABLE_AFTER_S:
                        item.backoff_s = BACKOFF_MIN_S
                    try:
                        component.poll(now)
                    except Exception:
                        _LOGGER.exception("%s: housekeeping failed", item.name)
                    continue
                why = _death_reason(component)
                item.component = None
                component.stop(timeout=1.0)
                self._failed(item, why, now)
            if (
                item.state == "restarting"
                and item.restart_at is not None
                and now >= item.restart_at
            ):
                item.restarts += 1
                self._start(item)

    def progressing(self, stale_after_s: float) -> bool:
        """True when every critical component is running and its loop moved recently.

        The systemd watchdog is fed only while this holds, so a hung loop (alive but stuck)
        gets the whole daemon restarted from outside.
        """
        now = self.clock.monotonic()
        for item in self._items:
            if not item.critical:
                continue
            component = item.component
            if item.state != "running" or component is None:
                # A component waiting for its backoff is being handled; only a long outage of a
                # critical part should starve the watchdog.
                if item.restart_at is not None and now - item.restart_at < BACKOFF_MAX_S * 2:
                    continue
                return False
            last = component.progress_mono()
            if last is not None and now - last > stale_after_s:
                return False
        return True

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop every component, last started first."""
        self._stopping = True
        for item in reversed(self._items):
            component, item.component = item.component, None
            if component is not None:
                try:
                    component.stop(timeout=timeout)
                except Exception:
                    _LOGGER.exception("%s: error while stopping", item.name)
            item.state = "stopped"

    def health(self) -> dict[str, dict[str, Any]]:
        """Per component: state, restarts and the last error, for /healthz and the log."""
        return {item.name: item.to_dict() for item in self._items}


def _death_reason(component: Component) -> str:
    why = getattr(component, "death_reason", None)
    if callable(why):
        text = str(why())
        if text:
            return text
    return "its thread ended unexpectedly"
