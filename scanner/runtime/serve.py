"""The main loop every checkpoint process runs, whatever components it holds, and the shared
tail of every long-running command (``launch``: build the plan, report errors, serve).

``serve`` starts the supervisor's components, tells systemd READY, then a few times a second
restarts what died, feeds the watchdog only while every critical loop progresses, and writes the
components' health to the store. SIGTERM or SIGINT ends it cleanly: STOPPING, then components
stop last-started first (the API before the core, the core after its sources have drained).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from scanner import notify
from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import Config, ConfigError, load_config
from scanner.errors import CheckpointError
from scanner.runtime.heap import HeapTrimmer
from scanner.runtime.supervisor import Supervisor, install_thread_excepthook
from scanner.store.db import Store

if TYPE_CHECKING:
    from scanner.runtime.plans import Plan  # plans builds on this module

_LOGGER = logging.getLogger(__name__)

# How often the main loop wakes: restarts and watchdog decisions are at most this late.
LOOP_EVERY_S = 0.25
# A critical loop that has not gone round for this long is hung: stop feeding the watchdog.
STALE_AFTER_S = 20.0
# Component health is written to the store on every change and at least this often: it is how
# /healthz tells a running core from a dead one, which it flags after three missed writes.
HEALTH_EVERY_S = 5.0
# Counters that move all the time (queue depth, retention runs) are written at most this often,
# so a busy gate does not cost the SD card a settings write four times a second.
HEALTH_COUNTERS_EVERY_S = 2.0
# The settings key holding the runtime's component health (read by /healthz).
RUNTIME_HEALTH_KEY = "runtime_health"


@dataclass(slots=True)
class HealthWriter:
    """Writes the process's component health to the store when it changes."""

    store_path: str
    process: str
    extra: Callable[[], dict[str, Any]] | None = None
    _last: str = ""
    _last_components: str = ""
    _next_mono: float = 0.0
    _next_counters_mono: float = 0.0
    _store: Store | None = None
    failures: int = 0
    _warned: bool = field(default=False)

    def write(self, health: dict[str, Any], now_mono: float) -> None:
        payload: dict[str, Any] = {"components": health}
        if self.extra is not None:
            payload.update(self.extra())
        text = json.dumps(payload, sort_keys=True, default=str)
        components = json.dumps(health, sort_keys=True, default=str)
        if now_mono < self._next_mono:
            if text == self._last:
                return
            # A component's state change goes out at once; moving counters wait their turn.
            if components == self._last_components and now_mono < self._next_counters_mono:
                return
        try:
            store = self._store or Store(self.store_path)
            self._store = store
            with store.write() as conn:
                current = store.get_setting(RUNTIME_HEALTH_KEY, {})
                if not isinstance(current, dict):
                    current = {}
                current[self.process] = {**payload, "updated_ts": time.time()}
                store.set_setting(conn, RUNTIME_HEALTH_KEY, current)
        except Exception as exc:
            self.failures += 1
            if not self._warned:
                _LOGGER.warning("cannot write runtime health to %s: %s", self.store_path, exc)
                self._warned = True
            return
        self._last = text
        self._last_components = components
        self._next_mono = now_mono + HEALTH_EVERY_S
        self._next_counters_mono = now_mono + HEALTH_COUNTERS_EVERY_S

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(
    supervisor: Supervisor,
    *,
    ready_text: str,
    stop: threading.Event | None = None,
    health: HealthWriter | None = None,
    status_text: Callable[[], str] | None = None,
    on_ready: Callable[[], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Run the components until a signal (or ``stop``); returns the process exit status."""
    stop = stop or threading.Event()
    install_thread_excepthook()
    dog = notify.Watchdog(clock)
    heap = HeapTrimmer()
    with stop_on_signals(stop):
        supervisor.start_all()
        notify.ready(ready_text)
        if on_ready is not None:
            on_ready()
        _LOGGER.info("%s", ready_text)
        next_status = 0.0
        try:
            while not stop.wait(LOOP_EVERY_S):
                supervisor.check()
                now = clock.monotonic()
                if supervisor.progressing(STALE_AFTER_S):
                    dog.progress()
                dog.tick()
                heap.maybe(now)
                if health is not None:
                    health.write(supervisor.health(), now)
                if status_text is not None and now >= next_status:
                    next_status = now + 10.0
                    notify.status(status_text())
        finally:
            notify.stopping("shutting down")
            supervisor.stop_all()
            if health is not None:
                health.write(supervisor.health(), float("inf"))
                health.close()
    return 0


# Exit statuses: 2 for a configuration the operator must fix (systemd retries a few times, up to
# the units' StartLimitBurst, then shows the one-line reason), 1 for a failure at run time.
EXIT_CONFIG = 2
EXIT_FAILURE = 1


def fail(command: str, message: str, status: int) -> int:
    """One line on stderr, no traceback."""
    print(f"checkpoint {command}: {message}", file=sys.stderr)
    return status


def load(command: str, path: str) -> Config | int:
    """The config, or the exit status after saying what is wrong with it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        return fail(command, str(exc), EXIT_CONFIG)


def launch(
    command: str,
    build: Callable[[], Plan],
    on_ready: Callable[[Plan], None] | None = None,
) -> int:
    """Build the process's plan and serve it until SIGTERM/SIGINT."""
    try:
        plan = build()
    except ConfigError as exc:
        return fail(command, str(exc), EXIT_CONFIG)
    except CheckpointError as exc:
        return fail(command, str(exc), EXIT_FAILURE)
    try:
        return serve(
            plan.supervisor,
            ready_text=plan.ready_text,
            health=plan.health,
            status_text=plan.status_text,
            on_ready=(lambda: on_ready(plan)) if on_ready is not None else None,
        )
    finally:
        for cleanup in reversed(plan.cleanup):
            try:
                cleanup()
            except Exception:
                _LOGGER.exception("cleanup failed")
