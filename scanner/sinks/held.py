"""Batches the store refused, held in order and written first once it takes writes again.

Both sinks that write to the store (the store sink's events, the evidence keeper's rows) keep
what a failed write would lose here: a write the store refuses (locked by another writer beyond
the busy timeout, an I/O error, a full disk) leaves its batch first in line, and the next flush
writes every held batch, oldest first, before anything newer. While failing, a flush is tried at
most every ``retry_every_s`` and waits only ``RETRY_BUSY_MS`` for the lock. Held items are
bounded by a budget (a weight per item: one an event, a row's bytes): past it the oldest items
are dropped and counted, except those the owner says to keep (alert transitions, digests).
A batch the store rejects for what it holds (writing it again would fail the same way) is
dropped and counted, and the batches after it are written.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from scanner.store.db import Store
from scanner.store.integrity import DISK_FULL, is_disk_full, is_locked

_LOGGER = logging.getLogger(__name__)

# While failing, a write is tried again at most this often (on the next batch or tick after
# it): a locked or full store is not cleared in milliseconds, and each attempt costs the core
# thread up to RETRY_BUSY_MS.
RETRY_EVERY_S = 1.0
# The busy wait of a retry. The first failure waited the full busy timeout, so the store is
# known to be held; a retry only needs to outlast a normal write of the API's (milliseconds),
# and the core thread must not sit out the full 5 s on every attempt while records queue up.
RETRY_BUSY_MS = 100

# Errors about the batch itself rather than the store: writing it again fails the same way.
_BATCH_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
)

_T = TypeVar("_T")


def failure_words(exc: BaseException) -> str:
    """Why a write failed, for the guard's health strip: "disk full", "database locked", or
    SQLite's own message.

    A failed COMMIT is followed by a ROLLBACK that can fail in its turn ("no transaction is
    active" when SQLite already rolled back): the first SQLite error in the chain is the cause.
    """
    chain = _sqlite_chain(exc)
    for err in reversed(chain):
        if is_disk_full(err):
            return DISK_FULL
        if is_locked(err):
            return "database locked"
    return str(chain[-1] if chain else exc) or type(exc).__name__


def _sqlite_chain(exc: BaseException) -> list[sqlite3.Error]:
    """The SQLite errors behind ``exc``, latest first (``exc`` itself when it is one)."""
    chain: list[sqlite3.Error] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        if isinstance(seen, sqlite3.Error):
            chain.append(seen)
        seen = seen.__context__
    return chain


def _cause(exc: BaseException) -> str:
    """SQLite's message for what went wrong first (not a ROLLBACK that failed after it)."""
    chain = _sqlite_chain(exc)
    return str(chain[-1] if chain else exc)


def _one(_item: object) -> int:
    return 1


def _never(_item: object) -> bool:
    return False


class HeldBatches(Generic[_T]):
    """The batches a writer could not write yet, in order (see the module's docstring).

    ``write`` writes one batch in one transaction. ``counters`` is the owner's: this adds
    ``write_failures``, ``dropped_<noun>`` and ``rejected_<noun>`` to it. ``on_failure`` is
    told of each failed attempt (the batch first in line, and whether the outage just began);
    ``on_recovered`` once everything held is written after an outage.
    """

    def __init__(
        self,
        store: Store,
        write: Callable[[Sequence[_T]], None],
        max_held: int,
        *,
        noun: str,
        counters: Counter[str],
        weight: Callable[[_T], int] = _one,
        keep: Callable[[_T], bool] = _never,
        retry_every_s: float = RETRY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[Sequence[_T], bool], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.max_held = max_held
        self.noun = noun
        self.counters = counters
        self.retry_every_s = retry_every_s
        self.clock = clock
        self._write = write
        self._weight = weight
        self._keep = keep
        self._on_failure = on_failure
        self._on_recovered = on_recovered
        self._batches: deque[list[_T]] = deque()
        self.held = 0  # the held items' weight
        self._next_try = float("-inf")
        # Why writes fail ("disk full", "database locked", SQLite's message); None: well.
        self.failure: str | None = None
        self._drop_logged = False

    def __bool__(self) -> bool:
        return bool(self._batches)

    def hold(self, batch: Sequence[_T]) -> None:
        """A batch to write after those already held (the next ``flush`` writes it)."""
        if not batch:
            return
        self._batches.append(list(batch))
        self.held += sum(self._weight(item) for item in batch)
        self._bound()

    def flush(self, force: bool = False) -> bool:
        """Write what is held, oldest first; False while the store refuses (all stays held).

        While failing, an attempt is made only once ``retry_every_s`` has passed (or ``force``).
        """
        if not self._batches:
            return True
        now = self.clock()
        if self.failure is not None and not force and now < self._next_try:
            return False
        store = self.store
        with store.lock:
            if store.conn.in_transaction:
                # A failed COMMIT whose ROLLBACK failed too would refuse every BEGIN after it.
                try:
                    store.conn.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    self._failed(exc, now)
                    return False
            short = self.failure is not None
            if short:
                busy_ms = int(store.conn.execute("PRAGMA busy_timeout").fetchone()[0])
                store.conn.execute(f"PRAGMA busy_timeout = {min(busy_ms, RETRY_BUSY_MS)}")
            try:
                while self._batches:
                    batch = self._batches[0]
                    try:
                        self._write(batch)
                    except _BATCH_ERRORS:
                        # Writing it again would fail the same way: dropped, counted, logged.
                        self._written()
                        self.counters[f"rejected_{self.noun}"] += len(batch)
                        _LOGGER.exception(
                            "the store rejected %d %s; dropped", len(batch), self.noun
                        )
                        continue
                    except sqlite3.Error as exc:
                        self._failed(exc, now)
                        return False
                    self._written()
            finally:
                if short:
                    store.conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if self.failure is not None:
                self._recovered()
        return True

    def _written(self) -> None:
        batch = self._batches.popleft()
        self.held -= sum(self._weight(item) for item in batch)

    def _failed(self, exc: sqlite3.Error, now: float) -> None:
        words = failure_words(exc)
        self.counters["write_failures"] += 1
        self._next_try = now + self.retry_every_s
        first = self.failure is None
        if first:
            _LOGGER.warning(
                "store write failed (%s: %s); holding %d %s and retrying",
                words,
                _cause(exc),
                sum(len(b) for b in self._batches),
                self.noun,
            )
        elif words != self.failure:
            _LOGGER.warning("store write still failing, now: %s (%s)", words, _cause(exc))
        self.failure = words
        if self._on_failure is not None:
            self._on_failure(self._batches[0], first)

    def _recovered(self) -> None:
        _LOGGER.warning(
            "store writes resumed after %s; every held batch of %s written, %d dropped",
            self.failure,
            self.noun,
            self.counters[f"dropped_{self.noun}"],
        )
        if self._on_recovered is not None:
            self._on_recovered()
        self.failure = None

    def _bound(self) -> None:
        """Past the budget the oldest items go, counted; those the owner keeps stay."""
        excess = self.held - self.max_held
        if excess <= 0:
            return
        for batch in self._batches:
            if excess <= 0:
                break
            kept: list[_T] = []
            for item in batch:
                if excess > 0 and not self._keep(item):
                    weight = self._weight(item)
                    excess -= weight
                    self.held -= weight
                    self.counters[f"dropped_{self.noun}"] += 1
                else:
                    kept.append(item)
            batch[:] = kept
        self._batches = deque(b for b in self._batches if b)
        if not self._drop_logged:
            self._drop_logged = True
            _LOGGER.error(
                "store still failing past the bound of %d held: dropping the oldest %s",
                self.max_held,
                self.noun,
            )
