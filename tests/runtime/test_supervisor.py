"""The supervisor restarts a component whose thread dies, with backoff, and reports it."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from scanner.clock import ManualClock
from scanner.errors import HardwareError
from scanner.runtime.build import SourceHealthReporter
from scanner.runtime.components import SourceComponent
from scanner.runtime.supervisor import Supervisor, install_thread_excepthook
from scanner.sources.base import Sink
from tests.helpers.daemons import wait_for as poll
from tests.helpers.sinks import Collector
from tests.runtime.runtime_support import CountingSource


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    return poll(cond, timeout, every=0.005)


def test_crashing_source_is_restarted_with_backoff_and_reported() -> None:
    install_thread_excepthook()
    clock = ManualClock()
    sink = Collector()
    reporter = SourceHealthReporter(sink, clock)
    reporter.register("wifi", "wifi:test", CountingSource.radio)
    reports: list[tuple[str, str, str]] = []

    def report(name: str, state: str, message: str) -> None:
        reports.append((name, state, message))
        reporter(name, state, message)

    built: list[CountingSource] = []

    def build(s: Sink) -> CountingSource:
        # The first two instances crash (the NIC vanished), the third keeps running.
        src = CountingSource(s, clock, crash_after=20 if len(built) < 2 else None)
        built.append(src)
        return src

    sup = Supervisor(clock, report)
    sup.add("wifi", lambda: SourceComponent("wifi", build, sink), critical=False)
    sup.start_all()
    try:
        assert wait_for(lambda: len(sink.frames()) >= 20)
        # The source's thread is None only before start(), and every source here was started.
        assert wait_for(lambda: not built[0]._thread.is_alive())  # type: ignore[union-attr]
        sup.check()
        item = sup.items[0]
        assert item.state == "restarting"
        assert "wlan1 vanished" in item.last_error
        # The guard hears of it at once, as a fault of the sensor.
        faults = [s for s in sink.statuses() if s.state == "fault"]
        assert faults and faults[-1].sensor == "wifi:test"
        assert "restarting in 1 s" in faults[-1].message

        clock.advance(0.5)
        sup.check()
        assert len(built) == 1  # still within the backoff
        clock.advance(0.6)
        sup.check()
        assert len(built) == 2 and item.restarts == 1 and item.state == "running"

        # The second instance crashes too: the backoff has doubled to 2 s.
        # The source's thread is None only before start(), and every source here was started.
        assert wait_for(lambda: not built[1]._thread.is_alive())  # type: ignore[union-attr]
        sup.check()
        assert "restarting in 2 s" in reports[-1][2]
        clock.advance(1.5)
        sup.check()
        assert len(built) == 2
        clock.advance(0.6)
        sup.check()
        assert len(built) == 3 and item.restarts == 2
        before = len(sink.frames())
        assert wait_for(lambda: len(sink.frames()) > before + 50)
        sup.check()
        assert item.state == "running"
        assert sup.health()["wifi"]["restarts"] == 2
    finally:
        sup.stop_all()
    # The source's thread is None only before start(), and every source here was started.
    assert all(not s._thread.is_alive() for s in built)  # type: ignore[union-attr]
    assert built[-1].state == "stopped"


def test_failed_start_is_retried_with_growing_backoff() -> None:
    clock = ManualClock()
    attempts: list[float] = []

    def build(s: Sink) -> CountingSource:
        attempts.append(clock.monotonic())
        if len(attempts) <= 3:
            raise HardwareError("no RTL-SDR found: plug the dongle in")
        return CountingSource(s, clock)

    sink = Collector()
    sup = Supervisor(clock)
    sup.add("sdr", lambda: SourceComponent("sdr", build, sink), critical=False)
    sup.start_all()
    try:
        for _ in range(200):
            clock.advance(0.25)
            sup.check()
            if len(attempts) == 4:
                break
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts)]
        assert gaps == [1.0, 2.0, 4.0]
        assert sup.items[0].state == "running"
        assert "plug the dongle in" in sup.items[0].last_error
    finally:
        sup.stop_all()


def test_backoff_resets_after_a_stable_minute() -> None:
    clock = ManualClock()
    built: list[CountingSource] = []

    def build(s: Sink) -> CountingSource:
        src = CountingSource(s, clock, crash_after=5 if len(built) == 0 else None)
        built.append(src)
        return src

    sup = Supervisor(clock)
    sup.add("wifi", lambda: SourceComponent("wifi", build, Collector()), critical=False)
    sup.start_all()
    try:
        # The source's thread is None only before start(), and every source here was started.
        assert wait_for(lambda: not built[0]._thread.is_alive())  # type: ignore[union-attr]
        sup.check()
        clock.advance(1.1)
        sup.check()
        assert sup.items[0].backoff_s == 2.0
        clock.advance(61)
        sup.check()
        assert sup.items[0].backoff_s == 1.0
    finally:
        sup.stop_all()


def test_progressing_is_false_for_a_hung_critical_loop() -> None:
    clock = ManualClock()

    class Hung:
        name = "core"

        def __init__(self) -> None:
            self.last = clock.monotonic()

        def start(self) -> None: ...

        def alive(self) -> bool:
            return True

        def stop(self, timeout: float) -> None: ...

        def poll(self, now_mono: float) -> None: ...

        def progress_mono(self) -> float | None:
            return self.last

    sup = Supervisor(clock)
    sup.add("core", Hung)
    sup.start_all()
    assert sup.progressing(20.0)
    clock.advance(25)
    assert not sup.progressing(20.0)
