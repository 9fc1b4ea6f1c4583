"""The all-in-one runner: real core and store, a capture source whose thread crashes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.clock import SYSTEM_CLOCK
from scanner.runtime.build import SourceHealthReporter, check_store, core_loop_factory
from scanner.runtime.components import CoreLoop, SourceComponent
from scanner.runtime.serve import RUNTIME_HEALTH_KEY, HealthWriter, serve
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, InProcessTransport
from scanner.sources.base import Sink
from scanner.store.db import Store
from tests.helpers.daemons import wait_for as poll
from tests.runtime.runtime_support import CountingSource


def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    return poll(cond, timeout, every=0.05)


def test_runner_restarts_a_crashing_source_and_the_store_shows_it(tmp_path: Path) -> None:
    from scanner.core.options import CoreOptions

    db = tmp_path / "checkpoint.db"
    check_store(db)  # as every process plan does before its threads start
    events = EventQueue(10_000)
    transport = InProcessTransport(events)
    reporter = SourceHealthReporter(transport.sink)
    reporter.register("wifi", "wifi:test", CountingSource.radio)
    sup = Supervisor(report=reporter)
    loops: list[CoreLoop] = []
    make_loop = core_loop_factory(str(db), CoreOptions(), events, SYSTEM_CLOCK)

    def core_factory() -> CoreLoop:
        loop = make_loop()
        loops.append(loop)
        return loop

    built: list[CountingSource] = []

    def build(sink: Sink) -> CountingSource:
        src = CountingSource(sink, crash_after=50 if not built else None, interval_s=0.005)
        built.append(src)
        return src

    sup.add("core", core_factory)
    sup.add("wifi", lambda: SourceComponent("wifi", build, transport.sink), critical=False)
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(
            serve(sup, ready_text="test", stop=stop, health=HealthWriter(str(db), "run"))
        )
    )
    runner.start()
    store = Store(db)
    try:

        def states() -> list[str]:
            rows = store.query(
                "SELECT state FROM health_log WHERE sensor = 'wifi:test' ORDER BY id"
            )
            return [r["state"] for r in rows]

        # starting -> ok -> (thread dies) fault -> restarted: starting -> ok
        assert wait_for(lambda: states()[-2:] == ["starting", "ok"] and "fault" in states()), (
            states()
        )
        fault = store.query(
            "SELECT message FROM health_log WHERE sensor = 'wifi:test' AND state = 'fault'"
        )[0]["message"]
        assert "wlan1 vanished" in fault and "restarting in 1 s" in fault
        assert len(built) == 2

        def run_health() -> dict[str, Any]:
            health = store.get_setting(RUNTIME_HEALTH_KEY) or {}
            return dict(health.get("run", {}).get("components", {}))

        # The runtime's health is written by the serving loop on its own turn, which can come
        # after the restarted source has logged itself ok.
        assert wait_for(lambda: run_health().get("wifi", {}).get("restarts") == 1), run_health()
        health = store.get_setting(RUNTIME_HEALTH_KEY)
        assert health["run"]["components"]["core"] == {
            "state": "running",
            "restarts": 0,
            "last_error": "",
        }
        # Frames from both lives of the source reached the core.
        assert len(loops) == 1
        assert wait_for(lambda: loops[0].counters["handled"] > 100)
        assert loops[0].counters["handle_errors"] == 0
    finally:
        stop.set()
        runner.join(timeout=20)
        store.close()
    assert result == [0]
    assert not runner.is_alive()
    # The source's thread is None only before start(), and every source here was started.
    assert all(not s._thread.is_alive() for s in built)  # type: ignore[union-attr]


def test_a_store_locked_past_the_busy_timeout_delays_writes_without_losing_a_record(
    tmp_path: Path,
) -> None:
    """Another process holds the database longer than the busy timeout: the write fails, the
    core carries on (no restart), and what it could not write goes in, in order, once the lock
    is gone; the core loop counts every record handled."""
    import sqlite3

    from scanner.core.options import CoreOptions
    from scanner.observations import Radio, SensorState, SensorStatus

    db = tmp_path / "checkpoint.db"
    check_store(db)
    events = EventQueue(1000)
    sup = Supervisor()
    loops: list[CoreLoop] = []
    make_loop = core_loop_factory(str(db), CoreOptions(), events, SYSTEM_CLOCK)

    def core_factory() -> CoreLoop:
        loops.append(make_loop())
        return loops[-1]

    sup.add("core", core_factory)
    stop = threading.Event()
    runner = threading.Thread(target=lambda: serve(sup, ready_text="test", stop=stop))
    runner.start()

    def status(message: str) -> SensorStatus:
        return SensorStatus(
            time.time(), time.monotonic(), "ble", Radio.BLE, SensorState.OK, message
        )

    def messages() -> list[str]:
        rows = store.query("SELECT message FROM health_log WHERE sensor = 'ble' ORDER BY id")
        return [r["message"] for r in rows]

    store = Store(db)
    try:
        events.put(status("before"))
        assert wait_for(lambda: messages() == ["before"])
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            events.put(status("while locked"))  # waits the 5 s busy timeout, then is held
            events.put(status("still locked"))
            assert wait_for(lambda: loops[0].counters["handled"] == 3, 15)
            assert sup.items[0].state == "running"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        events.put(status("after"))
        assert wait_for(lambda: len(messages()) == 4, 15), messages()
        assert messages() == ["before", "while locked", "still locked", "after"]
        store_states = store.query(
            "SELECT state, message FROM health_log WHERE sensor = 'store' ORDER BY id"
        )
        assert [r["state"] for r in store_states] == ["degraded", "ok"]
        assert store_states[0]["message"].startswith("database locked")
        assert sup.items[0].restarts == 0 and sup.items[0].state == "running"
        assert len(loops) == 1
        assert dict(loops[0].counters) | {"ticks": 0} == {"handled": 4, "ticks": 0}
    finally:
        stop.set()
        runner.join(timeout=20)
        store.close()
    assert not runner.is_alive()
