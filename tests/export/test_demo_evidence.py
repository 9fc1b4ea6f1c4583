"""`checkpoint demo` replays its bundled scenario at today's time, so the core's evidence keeper
cannot find a burst in the recording by its time: the paced replay cuts each burst's IQ window
from the bundled SigMF recording and sends it with the burst, as the live SDR capture does. A
demo alert the SDR supports then has SigMF evidence in its bundle, dated as the alert is."""

from __future__ import annotations

import json
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.seal_key import attach_chain_key, read_keys
from scanner.export.verify import verify_bundle
from scanner.observations import SdrBurst, SensorStatus, SourceEvent
from scanner.runtime.build import CoreWithStore
from scanner.runtime.demo_plan import options_for
from scanner.sources.replay import ScenarioReplay, iter_scenario
from scanner.sources.sdr.iq_window import RecordingIq
from scanner.store.db import Store

SCENARIO = Path(__file__).resolve().parents[2] / "scanner" / "demo" / "scenario"
# Today, as the demo replays it: far from the recording's own dates.
WALL = 1_796_400_000.0  # 2026-12-04T16:00:00Z
# Silence after the last record long enough for the core to resolve what is open (its
# presence timeout is well under two minutes).
TAIL_S = 180.0


class _NoWaitClock:
    """The demo's paced replay without the waiting: each monotonic reading is far past the
    last, so every record is due at once, still stamped at its paced time from ``WALL``."""

    def __init__(self) -> None:
        self._mono = 0.0

    def monotonic(self) -> float:
        self._mono += 1e6
        return self._mono

    def wall(self) -> float:
        return WALL


class _FollowClock:
    """The core's clock, kept at the time of the record it is handling."""

    def __init__(self) -> None:
        self.ts = WALL
        self.mono = 0.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.ts


def _paced(scenario: Path) -> list[SourceEvent]:
    got: list[SourceEvent] = []
    replay = ScenarioReplay(scenario, got.append, _NoWaitClock(), realtime=True, loop=False)
    replay.start()
    deadline = time.monotonic() + 60
    # The replay says "stopped" at the end of the recording (it does not loop).
    while not (replay.state == "stopped" and replay.message) and time.monotonic() < deadline:
        time.sleep(0.02)
    replay.stop()
    assert replay.message == "end of recording", replay.message
    # The replay driver's own state reports are stamped by the (skipping) clock, not the
    # recording; the demo shows them as runtime health, never to the core as a sensor.
    return [e for e in got if not (isinstance(e, SensorStatus) and e.sensor == "replay")]


@pytest.fixture(scope="module")
def paced() -> list[SourceEvent]:
    return _paced(SCENARIO)


def test_each_paced_burst_carries_its_iq_window_at_the_paced_time(
    paced: list[SourceEvent],
) -> None:
    recorded = [e for e in iter_scenario(SCENARIO) if isinstance(e, SdrBurst)]
    bursts = [e for e in paced if isinstance(e, SdrBurst)]
    assert recorded and len(bursts) == len(recorded)
    windows = RecordingIq(sorted((SCENARIO / "sdr").glob("*.sigmf-meta")))
    for was, now in zip(recorded, bursts, strict=True):
        assert now.ts > WALL - 1 and was.ts < WALL - 86_400  # moved to today
        assert now.iq and now.iq_meta, f"burst at {now.ts} has no IQ"
        # The same samples the recording holds around the burst...
        pair = windows.window(was)
        assert pair is not None
        assert now.iq == pair[1]
        # ...dated at the paced time, the burst inside them.
        meta = json.loads(now.iq_meta)
        start = windows_start(now.iq_meta)
        rate = meta["global"]["core:sample_rate"]
        assert start <= now.ts
        assert now.ts - start == pytest.approx(was.ts - windows_start(pair[0]), abs=2 / rate)
        assert now.ts - start <= meta["annotations"][0]["core:sample_start"] / rate + 2 / rate


def windows_start(meta: bytes) -> float:
    return datetime.fromisoformat(json.loads(meta)["captures"][0]["core:datetime"]).timestamp()


def test_a_demo_alerts_bundle_has_sigmf_evidence(paced: list[SourceEvent], tmp_path: Path) -> None:
    db = tmp_path / "checkpoint.db"
    clock = _FollowClock()
    core = CoreWithStore(str(db), options_for(SCENARIO), clock)
    last_tick = None
    for event in paced:
        clock.ts, clock.mono = event.ts, event.mono
        core.handle(event)
        if not isinstance(event, SensorStatus) and (
            last_tick is None or event.mono - last_tick >= 1
        ):
            core.tick(event.mono)
            last_tick = event.mono
    end = paced[-1]
    t = 0.0
    while t < TAIL_S:
        t += 1.0
        clock.ts, clock.mono = end.ts + t, end.mono + t
        core.tick(clock.mono)
    core.close()

    store = Store(db)
    try:
        attach_chain_key(store, create=False)
        rows = store.query("SELECT id, sensors FROM alerts ORDER BY raised_ts")
        sdr_alerts = [r["id"] for r in rows if "sdr" in json.loads(r["sensors"])]
        assert sdr_alerts, "no demo alert is supported by the SDR"
        bundle = tmp_path / "demo.tar.gz"
        build_bundle(store, Period(WALL - 600, clock.ts + 600), bundle, now=clock.ts + 700)
    finally:
        store.close()
    report = verify_bundle(bundle, read_keys(tmp_path / "seal.key").all)
    assert report.ok, report.problems
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        for alert_id in sdr_alerts:
            metas = [
                n for n in names if f"/evidence/{alert_id}/sdr-" in n and n.endswith(".sigmf-meta")
            ]
            assert metas, f"alert {alert_id} has no SigMF evidence"
            handle = tar.extractfile(metas[0])
            assert handle is not None
            dated = windows_start(handle.read())
            assert WALL - 1 < dated < clock.ts  # dated as the demo's alert, not the recording
