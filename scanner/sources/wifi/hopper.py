"""The channel hopper: visits the plan's channels in turn, each for its dwell time.

A channel that fails to tune (regulatory domain, band the adapter lacks) is retried a couple of
times and then dropped from the plan with one warning. An interface that vanishes stops the
hopper with the error, for the source to report as a fault and recover.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

from scanner.sources.wifi.channels import PlannedChannel
from scanner.sources.wifi.constants import CHANNEL_MAX_FAILURES, IwErrorClass
from scanner.sources.wifi.errors import MonitorError, NoUsableChannelError

_LOGGER = logging.getLogger(__name__)

Tune = Callable[[str, int], None]

# Failures that are the channel's fault (drop it eventually), as opposed to the interface's.
_CHANNEL_FAULTS = frozenset({IwErrorClass.BAD_CHANNEL, IwErrorClass.UNKNOWN})


class ChannelHopper:
    """Tunes through a channel plan in a thread; ``current`` is the channel now tuned."""

    def __init__(
        self,
        iface: str,
        plan: tuple[PlannedChannel, ...],
        tune: Tune,
        counters: Counter[str],
        on_fatal: Callable[[MonitorError], None],
    ) -> None:
        self.iface = iface
        self.plan: list[PlannedChannel] = list(plan)
        self.dropped: list[int] = []
        self.current: PlannedChannel | None = None
        self._tune = tune
        self._counters = counters
        self._on_fatal = on_fatal
        self._failures: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Tune the first channel now (so errors surface to the caller), then hop in a thread."""
        self._stop.clear()
        self.step()
        if len(self.plan) > 1:
            self._thread = threading.Thread(
                target=self._run, name=f"wifi-hop-{self.iface}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        self._thread = None

    def step(self) -> PlannedChannel:
        """Tune the next usable channel of the plan; raises when none can be tuned."""
        while self.plan:
            index = 0
            if self.current is not None and self.current in self.plan:
                index = (self.plan.index(self.current) + 1) % len(self.plan)
            candidate = self.plan[index]
            try:
                self._tune(self.iface, candidate.channel)
            except MonitorError as exc:
                if exc.cls not in _CHANNEL_FAULTS:
                    raise
                self._channel_failed(candidate, exc)
                continue
            self._failures[candidate.channel] = 0
            self.current = candidate
            self._counters["channel_tunes"] += 1
            return candidate
        raise NoUsableChannelError(
            IwErrorClass.BAD_CHANNEL,
            f"{self.iface}: no channel of the plan could be tuned (dropped {self.dropped}); "
            "check [wifi] channels against the adapter's bands and the regulatory domain",
        )

    def _channel_failed(self, channel: PlannedChannel, exc: MonitorError) -> None:
        self._failures[channel.channel] += 1
        self._counters["channel_tune_failures"] += 1
        _LOGGER.debug("%s: tuning channel %d failed: %s", self.iface, channel.channel, exc)
        if exc.cls == IwErrorClass.BAD_CHANNEL or (
            self._failures[channel.channel] >= CHANNEL_MAX_FAILURES
        ):
            position = self.plan.index(channel)
            self.plan.remove(channel)
            self.dropped.append(channel.channel)
            _LOGGER.warning(
                "%s: dropped channel %d from the plan: %s", self.iface, channel.channel, exc
            )
            # Keep the rotation where it was: the next candidate is the one after the dropped.
            if self.plan:
                self.current = self.plan[(position - 1) % len(self.plan)]
            else:
                self.current = None
        else:
            self.current = channel

    def _run(self) -> None:
        while True:
            current = self.current
            dwell = current.dwell_s if current is not None else 0.1
            if self._stop.wait(dwell):
                return
            try:
                self.step()
            except MonitorError as exc:
                self._on_fatal(exc)
                return
