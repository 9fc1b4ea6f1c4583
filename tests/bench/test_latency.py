"""The frame-to-tablet latency benchmark: real daemons, real Chromium, a few visits each phase."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from bench import latency


def test_percentile_interpolates_and_handles_no_values() -> None:
    assert latency.percentile([30.0, 10.0, 20.0], 0.5) == 20.0
    assert latency.percentile([10.0, 20.0], 0.99) == pytest.approx(19.9)
    assert latency.percentile([7.0], 0.99) == 7.0
    assert math.isnan(latency.percentile([], 0.5))


def test_cpu_seconds_counts_this_process_and_not_a_gone_one() -> None:
    before = latency.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert latency.cpu_seconds(os.getpid()) - before >= 0.1
    assert math.isnan(latency.cpu_seconds(2**22 + 12345))


class _Socket:
    """The far end of a generator's connection: what it was given, nothing sent anywhere."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def sink(self, record: object) -> None:
        self.records.append(record)


def test_a_stalled_generator_sends_late_only_what_a_capture_buffer_holds() -> None:
    rate = 1000.0
    stall_s = 0.6
    calls: list[int] = []

    def make(i: int, wall: float, mono: float) -> object:
        calls.append(i)
        if len(calls) == 1:
            time.sleep(stall_s)  # held off the CPU right after its first record
        return i

    socket = _Socket()
    crowd = latency._Crowd(socket, rate, make)  # type: ignore[arg-type]
    crowd.start()
    time.sleep(stall_s + 0.3)
    crowd.halt.set()
    crowd.join(timeout=5)
    # What fell due during the stall beyond CATCH_UP_S was skipped and counted, not sent late.
    assert crowd.skipped >= rate * (stall_s - latency.CATCH_UP_S) * 0.8
    assert crowd.sent == len(socket.records)
    # Each record index is made once, in order, with the skipped ones left out.
    assert calls == sorted(set(calls))


@pytest.mark.browser
def test_visits_raise_alarms_drawn_in_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path(latency.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {latency.CHROMIUM}")
    monkeypatch.setattr(latency, "SAMPLES_QUICK", 2)
    result = latency.run(quick=True)
    for phase in ("idle", "loaded"):
        figures = result[phase]
        # A visit whose alarm was not drawn within 15 s is counted, never silently dropped.
        assert figures["samples"] + figures["missed"] == 2
        assert figures["samples"] >= 1
        # Every alarm was raised by one of the visitor's frames, not by a later tick: the
        # latency starts at a frame entering the capture source.
        assert figures["raised_by_frame"] == figures["samples"]
        # Drawn after the frame, and after the alert reached the page's live feed.
        assert 0 < figures["to_feed_p50_ms"] <= figures["p50_ms"]
        assert figures["page_p50_ms"] >= 0
    # The crowd was offered at the stated rates (the pacing loop keeps up).
    sent = result["loaded_sent_per_s"]
    assert sent["wifi"] > 0.8 * latency.WIFI_RATE
    assert sent["ble"] > 0.8 * latency.BLE_RATE
    assert sent["sdr"] > 0.8 * latency.SDR_RATE
    assert result["loaded_cpu_share"]["core"] > 0
