"""The store's retention, run on a timer in the process that owns the core.

``scanner.store.retention.enforce`` keeps the store inside its age limits and disk budget; this
component calls it every ``every_s`` seconds from a thread of its own, with its own store
connection, so a shedding pass (seconds of batched deletes on a full SD card) never stalls the
core's loop. A failed run is counted and shown in runtime health and on the ``store`` sensor;
it never ends the thread, and the next run tries again with a fresh connection.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import ConfigError
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.runtime.components.base import ThreadComponent, one
from scanner.runtime.supervisor import Supervisor
from scanner.store.db import Store
from scanner.store.integrity import (
    IntegrityResult,
    describe,
    is_corrupt,
    quick_check,
    write_state,
)
from scanner.store.retention import STORE_SENSOR, RetentionPolicy, enforce

_LOGGER = logging.getLogger(__name__)

# Every minute: the store's growth between two runs is what the budget must leave room for,
# and at a busy gate a minute of frames is a few megabytes.
DEFAULT_EVERY_S = 60.0
# The first run comes soon after start (a Pi that rebooted with a full card needs room now),
# but after the core has opened the store and started consuming.
FIRST_RUN_AFTER_S = 5.0
# The ``[store]`` key for the interval.
EVERY_KEY = "retention_every_s"
# quick_check reads every page of the file. On a Pi's SD card (20-40 MB/s of reads) a store at
# its default 2 GiB budget takes one to two minutes of the card, during which the core's writes
# wait longer; every six hours keeps that under 1 % of the card's time. Damage in between is not
# left for six hours either: the first query that hits it fails with SQLITE_CORRUPT, and that
# failure starts a check on the next run (within ``every_s``).
DEFAULT_INTEGRITY_EVERY_S = 6 * 3600.0
INTEGRITY_KEY = "integrity_every_s"


@dataclass(frozen=True, slots=True)
class RetentionSchedule:
    """The retention policy and how often to apply it, from the ``[store]`` section."""

    policy: RetentionPolicy
    every_s: float = DEFAULT_EVERY_S
    integrity_every_s: float = DEFAULT_INTEGRITY_EVERY_S

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> RetentionSchedule:
        """Parse ``[store]``; a bad value is a ``ConfigError`` naming it."""
        raw = section.get(EVERY_KEY, DEFAULT_EVERY_S)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 86400:
            raise ConfigError(f"[store] {EVERY_KEY} must be a number of seconds from 0 to 86400")
        check = section.get(INTEGRITY_KEY, DEFAULT_INTEGRITY_EVERY_S)
        if (
            isinstance(check, bool)
            or not isinstance(check, int | float)
            or not 60 <= check <= 7 * 86400
        ):
            raise ConfigError(
                f"[store] {INTEGRITY_KEY} must be a number of seconds from 60 to 604800"
            )
        try:
            policy = RetentionPolicy.from_mapping(
                {k: v for k, v in section.items() if k not in (EVERY_KEY, INTEGRITY_KEY)}
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[store]: {exc}") from exc
        return cls(policy, float(raw), float(check))


class RetentionTask(ThreadComponent):
    """A supervised component: ``enforce`` on a timer, failures counted, never fatal; and the
    store's ``quick_check`` at start, every ``integrity_every_s``, and after any read that
    found a damaged page."""

    part = "retention thread"
    ended = "retention thread ended"

    def __init__(
        self,
        name: str,
        store_path: str,
        schedule: RetentionSchedule,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        self.store_path = store_path
        self.schedule = schedule
        self.clock = clock
        self.runs = 0
        self.errors = 0
        self.last_error = ""
        self.last_error_ts: float | None = None
        self.last_run_ts: float | None = None
        self.last_duration_s: float | None = None
        self.shed_rows = 0
        self.expired_rows = 0
        self.size_bytes: int | None = None
        self._ok = True
        self.integrity: IntegrityResult | None = None
        self._next_check_mono: float | None = None  # None: check on the next run
        self._store: Store | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    # -- component ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = min(self.schedule.every_s, FIRST_RUN_AFTER_S)
        while not self._stop.wait(delay):
            self.run_once()
            delay = self.schedule.every_s
        self._close_store()

    def check_due(self) -> bool:
        due = self._next_check_mono
        return self.store_path != ":memory:" and (due is None or self.clock.monotonic() >= due)

    def check_integrity(self) -> IntegrityResult:
        """quick_check the file now; the verdict goes beside the database at once, and into
        the ``store`` sensor row with the next retention report."""
        try:
            result = quick_check(self.store_path, self.clock.wall())
        except sqlite3.Error as exc:
            # Busy or locked for longer than the timeout is not damage: try again next run.
            _LOGGER.warning("store quick_check could not run: %s", exc)
            return self.integrity or IntegrityResult(self.clock.wall(), True)
        self.integrity = result
        self._next_check_mono = self.clock.monotonic() + self.schedule.integrity_every_s
        write_state(self.store_path, result)
        return result

    def run_once(self) -> bool:
        """One retention run (with a quick_check when one is due); True when it succeeded."""
        if self.check_due():
            self.check_integrity()
        started = self.clock.monotonic()
        now = self.clock.wall()
        try:
            store = self._store or Store(self.store_path)
            self._store = store
            report = enforce(store, self.schedule.policy, now, self.integrity)
        except Exception as exc:
            self._failed(exc, now)
            return False
        self.runs += 1
        self._ok = True
        self.last_run_ts = now
        self.last_duration_s = round(self.clock.monotonic() - started, 3)
        self.shed_rows += report.shed_rows
        self.expired_rows += sum(report.expired.values())
        self.size_bytes = report.size_after
        _LOGGER.debug(
            "retention: %d -> %d bytes in %.2f s, expired %s, shed %s",
            report.size_before,
            report.size_after,
            self.last_duration_s,
            report.expired or "nothing",
            report.shed or "nothing",
        )
        return True

    def _failed(self, exc: Exception, now: float) -> None:
        self.errors += 1
        self._ok = False
        self.last_error = describe(exc)
        if is_corrupt(exc) and (self.integrity is None or self.integrity.ok):
            # A read hit a damaged page: check the whole file on the next run, not in hours.
            self._next_check_mono = None
        self.last_error_ts = now
        # The same trouble every minute is one warning; the count and health show the rest.
        level = logging.DEBUG if self._warned else logging.WARNING
        _LOGGER.log(level, "store retention failed (%d so far): %s", self.errors, self.last_error)
        self._warned = True
        # A broken connection is not reused; the next run opens a fresh one.
        self._close_store()
        self._report_failure(now)

    def _report_failure(self, now: float) -> None:
        """Best effort: the guard's strip shows the store degraded while retention fails."""
        with contextlib.suppress(Exception):
            from scanner.store.health import record_status

            store = Store(self.store_path)
            try:
                damaged = self.integrity is not None and not self.integrity.ok
                record_status(
                    store,
                    SensorStatus(
                        ts=now,
                        mono=self.clock.monotonic(),
                        sensor=STORE_SENSOR,
                        radio=cast(Radio, STORE_SENSOR),
                        state=SensorState.DEGRADED,
                        message=(
                            self.integrity.message()
                            if damaged and self.integrity is not None
                            else f"retention failed: {self.last_error}"
                        ),
                        counters={"retention_errors": self.errors},
                        detail=(
                            {"integrity": self.integrity.as_dict()}
                            if self.integrity is not None
                            else {}
                        ),
                    ),
                )
            finally:
                store.close()

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    def threads(self) -> list[threading.Thread]:
        return one(self._thread)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def progress_mono(self) -> float | None:
        # A long shedding pass is not a hung core; the watchdog does not wait on it.
        return None

    def health(self) -> dict[str, Any]:
        """For runtime health (``/healthz`` ``runtime``): runs, failures and what was freed."""
        return {
            "state": "ok" if self._ok else "error",
            "every_s": self.schedule.every_s,
            "budget_bytes": self.schedule.policy.budget_bytes,
            "runs": self.runs,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_ts": self.last_error_ts,
            "last_run_ts": self.last_run_ts,
            "last_duration_s": self.last_duration_s,
            "shed_rows": self.shed_rows,
            "expired_rows": self.expired_rows,
            "size_bytes": self.size_bytes,
            "integrity": self.integrity.as_dict() if self.integrity is not None else None,
            "integrity_every_s": self.schedule.integrity_every_s,
        }


def add_retention(
    supervisor: Supervisor,
    store_path: str,
    schedule: RetentionSchedule,
    clock: Clock = SYSTEM_CLOCK,
) -> list[RetentionTask]:
    """Add the retention component; returns a one-item list holding the running instance
    (replaced on restart), for the process's health report."""
    current: list[RetentionTask] = []

    def factory() -> RetentionTask:
        task = RetentionTask("retention", store_path, schedule, clock)
        current[:] = [task]
        return task

    supervisor.add("retention", factory, critical=False)
    return current


def retention_health(current: list[RetentionTask]) -> dict[str, Any]:
    """The running task's health, or an empty dict before it first starts."""
    return current[0].health() if current else {}
