"""One way to run a core: records in, events out to the sinks, inputs from outside.

``CoreRunner`` is what every caller of the core uses: ``checkpoint replay --fast`` and ``eval``
(a scenario's records as fast as they go), ``checkpoint replay`` at real-time pace, and the
core process of the appliance (records from the capture daemons). It feeds the core each record,
hands each step's events to every sink in order, reads the store for what people changed
(allowlist, calibration, acknowledgements) when there is a store, and, in a replay, plays the
guard who acknowledges each alarm a fixed time after it starts.

The API says when a person changed something (``inputs_changed``): the store is read at once, so
an acknowledgement reaches the core within its queue's delay rather than a poll period, and the
next handset alarms as a new alert instead of joining the one just acknowledged. The periodic
poll stays as the fallback for a word that was lost (the core restarting, a full queue) and for
what no API call announces (a calibration applied from the command line).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scanner.core.events import Acknowledge, AlertRaised, AlertUpdated, CoreEvent, CoreInput
from scanner.core.pipeline import Core
from scanner.observations import SourceEvent
from scanner.sinks import RetryingSink, Sink
from scanner.sinks.store import StoreInputs, StoreSink

_LOGGER = logging.getLogger(__name__)

# Reading the store on the API's word happens at most this often: a burst of words (a guard
# acknowledging a stack of latched alarms, or a peer flooding the core's socket with them) costs
# one read per interval, and 50 ms is a fifth of the alarm path's 250 ms budget.
INPUTS_MIN_GAP_S = 0.05

# Who a simulated guard's acknowledgements are by, in the store and the alert lines.
SIMULATED_GUARD = "guard (simulated)"


@dataclass(slots=True)
class SimulatedGuard:
    """Acknowledges every alarm ``ack_after_s`` seconds after it starts (FORMATS.md).

    An alert is acknowledged once: a handset that enters after that opens a new alert (see
    ``scanner.core.alerting``), whose alarm this guard acknowledges in its turn.
    """

    ack_after_s: float
    _due: dict[str, float] = field(default_factory=dict)  # alert id -> wall time of the ack

    def saw(self, events: Sequence[CoreEvent]) -> None:
        for event in events:
            if isinstance(event, AlertRaised | AlertUpdated) and event.alarm:
                alert_id = event.alert.id
                if alert_id not in self._due:
                    self._due[alert_id] = event.ts + self.ack_after_s

    def due(self, now_ts: float) -> list[Acknowledge]:
        """The acknowledgements whose time has come, oldest first."""
        ready = sorted((ts, a) for a, ts in self._due.items() if ts is not None and ts <= now_ts)
        for _ts, alert_id in ready:
            del self._due[alert_id]
        return [Acknowledge(alert_id, ts, SIMULATED_GUARD) for ts, alert_id in ready]

    def pending(self) -> list[float]:
        return sorted(self._due.values())


class RecordTap(Protocol):
    """Sees every record before the core does (the evidence rings); closed after the core."""

    def observe(self, record: SourceEvent) -> None: ...

    def close(self) -> None: ...


class CoreRunner:
    """A core, its sinks, and where its outside inputs come from.

    ``taps`` see each record before the core handles it; a tap that is also a sink is listed
    in ``sinks`` as well.
    """

    def __init__(
        self,
        core: Core,
        sinks: Sequence[Sink],
        inputs: StoreInputs | None = None,
        guard: SimulatedGuard | None = None,
        poll_every_s: float | None = None,
        taps: Sequence[RecordTap] = (),
    ) -> None:
        self.core = core
        self.sinks = list(sinks)
        self.taps = list(taps)
        self.inputs = inputs
        self.guard = guard
        self.poll_every_s = core.options.allowlist_poll_s if poll_every_s is None else poll_every_s
        self._last_poll = float("-inf")
        self._changed = False  # the API said something changed since the last read
        self._last_word = float("-inf")  # time.monotonic() of the last read on its word
        self.read_errors = 0  # polls of the store that failed (tried again on the next one)
        self.sink_errors: Counter[str] = Counter()  # batches a sink failed to write, by sink
        if inputs is not None:
            for item in inputs.at_start():
                self._apply(item)

    def _dispatch(self, events: list[CoreEvent]) -> None:
        if not events:
            return
        if self.guard is not None:
            self.guard.saw(events)
        for sink in self.sinks:
            try:
                sink.handle(events)
            except sqlite3.Error as exc:
                # The sinks that write to the store hold what it refuses; a sink that fails
                # otherwise loses this batch, counted, rather than the core restarting and
                # every sink losing what it held.
                name = type(sink).__name__
                self.sink_errors[name] += 1
                level = logging.DEBUG if self.sink_errors[name] > 1 else logging.WARNING
                _LOGGER.log(level, "%s could not write a batch (%s): %s", name, len(events), exc)

    def _apply(self, item: CoreInput) -> None:
        self._dispatch(self.core.handle(item))

    def _guard_until(self, ts: float) -> None:
        guard = self.guard
        if guard is None:
            return
        for ack in guard.due(ts):
            self._apply(ack)

    def handle(self, record: SourceEvent) -> None:
        """One record from a source."""
        # Every record passes here: the calls that would return at once are not made.
        if self.guard is not None:
            self._guard_until(record.ts)
        for tap in self.taps:
            tap.observe(record)
        events = self.core.handle(record)
        if events:
            self._dispatch(events)
        self._poll(record.mono)

    def tick(self, now_mono: float) -> None:
        """Time moves on without a record (and what a failing store holds is tried again)."""
        self._guard_until(self.core.ts_at(now_mono))
        self._dispatch(self.core.tick(now_mono))
        for sink in self.sinks:
            if isinstance(sink, RetryingSink):
                sink.retry()
        self._poll(now_mono)

    def store_health(self) -> dict[str, object] | None:
        """The store sink's: writing, or why not and what it holds (None: no store)."""
        for sink in self.sinks:
            if isinstance(sink, StoreSink):
                return sink.health()
        return None

    def inputs_changed(self, what: str) -> None:
        """The API's word that a person changed something the core must act on: read now."""
        _LOGGER.debug("inputs changed (%s): reading the store", what)
        self._changed = True
        self._read_if_changed()

    def _read_if_changed(self) -> None:
        # Throttled on the process's own clock: it bounds the cost of reading, whatever the
        # timeline being fed (a replay's may stand still or run fast).
        now = time.monotonic()
        if self._changed and now - self._last_word >= INPUTS_MIN_GAP_S:
            self._last_word = now
            self._changed = False
            self._read(self.core.now())

    def _poll(self, now_mono: float) -> None:
        """Outside inputs, on their beat of the timeline (records or ticks move it), and at
        once when the API said something changed."""
        since = now_mono - self._last_poll
        # (A timeline that went back, a replay looping, polls at once rather than never.)
        if since >= self.poll_every_s or since < 0:
            self._read(now_mono)
        elif self._changed:
            self._read_if_changed()

    def _read(self, now_mono: float) -> None:
        if self.inputs is None:
            return
        self._last_poll = now_mono
        try:
            items = self.inputs.poll(self.core.unacknowledged_alerts())
        except sqlite3.Error as exc:
            # The record that moved the timeline is handled already; what people changed is
            # read again on the next poll (and at once if the API said so).
            self.read_errors += 1
            level = logging.DEBUG if self.read_errors > 1 else logging.WARNING
            _LOGGER.log(level, "reading the store failed (%d so far): %s", self.read_errors, exc)
            return
        for item in items:
            self._apply(item)

    def run_out(self, last_mono: float, tail_s: float) -> None:
        """After the last record: a second at a time for ``tail_s``, so silence resolves
        what is open and the guard acknowledges what is still alarming."""
        t = last_mono
        while t < last_mono + tail_s:
            t += 1.0
            self.tick(t)
        if self.guard is not None:
            # Alarms still waiting for the guard at the end of the recording: acknowledged at
            # their time, as the guard would (FORMATS.md: every alarm is acknowledged).
            for due in self.guard.pending():
                self._guard_until(due)

    def close(self, now_mono: float | None = None) -> None:
        self._dispatch(self.core.close(now_mono))
        for sink in self.sinks:
            if isinstance(sink, StoreSink) and not sink.flush(force=True):
                _LOGGER.error(
                    "closing with %d events the store would not take (%s)",
                    sink.pending_events,
                    sink.failure,
                )
        for tap in self.taps:
            tap.close()
