"""What the sensor strip is made of: the radios (never the replay driver), when each last heard
something, and the sensor names records carry, in one process and across the Unix socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from scanner.clock import SYSTEM_CLOCK
from scanner.config import parse_config
from scanner.core.options import CoreOptions
from scanner.observations import Radio, SensorStatus, SourceEvent, WifiFrame
from scanner.runtime.build import SourceHealthReporter, check_store, core_loop_factory
from scanner.runtime.components import SourceComponent
from scanner.runtime.components.replay import ReplayComponent, add_replay, build_replay
from scanner.runtime.demo_plan import BUNDLED_SCENARIO
from scanner.runtime.plans import Plan, plan_capture, plan_core
from scanner.runtime.serve import RUNTIME_HEALTH_KEY, HealthWriter, serve
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, InProcessTransport
from scanner.store.db import Store
from scanner.store.health import list_sensors
from tests.helpers.daemons import wait_for as poll
from tests.runtime.runtime_support import CountingSource


def wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    return poll(cond, timeout, every=0.05)


@contextmanager
def serving(plan: Plan) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(plan.supervisor,),
        kwargs={"ready_text": "t", "stop": stop, "health": plan.health},
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        for step in plan.cleanup:
            step()
    assert not thread.is_alive()


def sensors(store: Store) -> dict[str, dict[str, object]]:
    return {s["sensor"]: s for s in list_sensors(store)}


def test_replay_in_one_process_shows_the_recorded_radios_with_their_last_observation(
    tmp_path: Path,
) -> None:
    db = tmp_path / "checkpoint.db"
    check_store(db)
    events = EventQueue(20_000)
    transport = InProcessTransport(events)
    reporter = SourceHealthReporter(transport.sink)
    sup = Supervisor(report=reporter)
    sup.add("core", core_loop_factory(str(db), CoreOptions(), events, SYSTEM_CLOCK))
    add_replay(sup, reporter, BUNDLED_SCENARIO, transport.sink, SYSTEM_CLOCK, speed=60.0)
    plan = Plan(sup, "t", HealthWriter(str(db), "demo"))
    store = Store(db)
    try:
        with serving(plan):

            def heard() -> bool:
                rows = sensors(store)
                return all(rows.get(r, {}).get("last_obs_ts") for r in ("wifi", "ble"))

            assert wait_for(heard), sensors(store)
            rows = sensors(store)
            # The radios the scenario recorded, under their own names; no "replay" sensor.
            assert set(rows) <= {"wifi", "ble", "sdr"}, rows
            assert {"wifi", "ble"} <= set(rows)
            for name in ("wifi", "ble"):
                row = rows[name]
                assert row["radio"] == name and row["state"] == "ok"
                last_obs = float(str(row["last_obs_ts"]))
                assert abs(last_obs - time.time()) < 120
            # The driver's own state is runtime health.
            assert wait_for(
                lambda: bool(
                    store.get_setting(RUNTIME_HEALTH_KEY, {})
                    .get("demo", {})
                    .get("components", {})
                    .get("replay", {})
                    .get("detail")
                )
            )
            replay = store.get_setting(RUNTIME_HEALTH_KEY)["demo"]["components"]["replay"]
            assert replay["state"] == "running" and replay["detail"]["state"] == "ok"
    finally:
        store.close()


def test_a_replay_that_fails_faults_the_radios_it_feeds(tmp_path: Path) -> None:
    scenario = tmp_path / "broken"
    scenario.mkdir()
    (scenario / "wifi.pcap").write_bytes(b"this is not a capture file at all" * 4)
    (scenario / "ble.jsonl").write_text("")
    got: list[SourceEvent] = []
    component = ReplayComponent(
        lambda s: build_replay(scenario, s, SYSTEM_CLOCK, 1.0),
        got.append,
        (Radio.WIFI, Radio.BLE),
    )
    component.start()
    try:
        assert wait_for(lambda: not component.alive(), 10)
    finally:
        component.stop(2)
    statuses = [e for e in got if isinstance(e, SensorStatus)]
    assert statuses, got
    assert all(s.sensor in ("wifi", "ble") for s in statuses), statuses
    faults = {s.sensor: s for s in statuses if s.state == "fault"}
    assert set(faults) == {"wifi", "ble"}, statuses
    assert all("cannot replay" in s.message for s in faults.values())
    assert faults["wifi"].radio == Radio.WIFI and faults["ble"].radio == Radio.BLE
    assert component.runtime_detail()["state"] == "fault"

    # A replay whose thread dies is reported by the supervisor under the radios' names too.
    out: list[SourceEvent] = []
    reporter = SourceHealthReporter(out.append)
    sup = Supervisor(report=reporter)
    add_replay(sup, reporter, BUNDLED_SCENARIO, out.append, SYSTEM_CLOCK, 1.0)
    reporter("replay", "fault", "replay thread died")
    assert sorted((s.sensor, s.state) for s in out if isinstance(s, SensorStatus)) == [
        ("ble", "fault"),
        ("sdr", "fault"),
        ("wifi", "fault"),
    ]


def test_a_source_with_a_configured_sensor_name_tags_its_records(tmp_path: Path) -> None:
    got: list[SourceEvent] = []

    class DefaultNamed(CountingSource):
        """Delivers frames under the radio's default name, as the parsers do."""

        def deliver(self, event: SourceEvent) -> None:
            assert isinstance(event, WifiFrame)
            super().deliver(replace(event, sensor="wifi"))

    component = SourceComponent("wifi", DefaultNamed, got.append, sensor="wifi:test")
    component.start()
    try:
        assert wait_for(lambda: sum(isinstance(e, WifiFrame) for e in got) >= 5, 10)
    finally:
        component.stop(2)
    frames = [e for e in got if isinstance(e, WifiFrame)]
    assert {f.sensor for f in frames} == {"wifi:test"}
    assert {e.sensor for e in got if isinstance(e, SensorStatus)} == {"wifi:test"}


def test_capture_daemon_over_the_socket_gives_the_core_its_last_observation(
    tmp_path: Path,
) -> None:
    db = tmp_path / "checkpoint.db"
    sock = tmp_path / "core.sock"
    config = parse_config(
        f'[site]\nstate_dir = "{tmp_path}"\n[store]\npath = "{db}"\n'
        f'[transport]\nsocket = "{sock}"\n',
        tmp_path / "checkpoint.toml",
    )
    core = plan_core(config)
    capture = plan_capture(config, "ble", replay=BUNDLED_SCENARIO, speed=60.0)
    store = Store(db)
    try:
        with serving(core), serving(capture):
            assert wait_for(lambda: bool(sensors(store).get("ble", {}).get("last_obs_ts")))
            rows = sensors(store)
            assert set(rows) <= {"ble", "store"}, rows
            assert rows["ble"]["state"] == "ok" and rows["ble"]["radio"] == "ble"
    finally:
        store.close()
