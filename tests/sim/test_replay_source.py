"""Scenario replay: radios merged by time, real-time pacing, looping with shifted clocks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.errors import RecordingError
from scanner.observations import BleAdvert, SdrBurst, SensorStatus, SourceEvent, WifiFrame
from scanner.sources.replay import ScenarioReplay, iter_scenario, scenario_files


def test_merge_is_in_time_order_with_every_radio(
    scenario: Callable[[int, str, float], Path],
) -> None:
    d = scenario(21, "demo", 2)
    counters: Counter[str] = Counter()
    events = list(iter_scenario(d, counters))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    kinds = {type(e) for e in events}
    assert kinds == {WifiFrame, BleAdvert, SdrBurst}
    assert all(e.mono == e.ts for e in events)
    assert counters["wifi_records"] + counters["ble_records"] + counters["sdr_records"] == len(
        events
    )


def test_not_a_scenario_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a scenario"):
        scenario_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match=r"no wifi\.pcap"):
        ScenarioReplay(tmp_path / "empty", lambda e: None)


def test_realtime_loop_shifts_each_pass(scenario: Callable[[int, str, float], Path]) -> None:
    d = scenario(22, "demo", 0.5)  # 30 s of scenario, played 60 times faster
    got: list[SourceEvent] = []
    lock = threading.Lock()

    def sink(event: SourceEvent) -> None:
        with lock:
            got.append(event)

    replay = ScenarioReplay(d, sink, realtime=True, loop=True, speed=60.0)
    started = time.monotonic()
    replay.start()
    deadline = started + 20.0
    while replay.loops < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    replay.stop()
    assert replay.loops >= 2
    assert time.monotonic() - started >= 0.9  # paced: two 30 s passes at 60x take about 1 s
    observations = [e for e in got if not isinstance(e, SensorStatus)]
    statuses = [e for e in got if isinstance(e, SensorStatus)]
    monos = [e.mono for e in observations]
    assert monos == sorted(monos)
    assert {s.sensor for s in statuses} >= {"wifi", "ble", "sdr"}
    per_pass = len(list(iter_scenario(d)))
    assert len(observations) >= 2 * per_pass
    first, second = observations[0], observations[per_pass]
    assert second.ts - first.ts == pytest.approx(30.0 / 60.0, abs=0.05)
