"""Issue 9, clock jumps: a Pi has no RTC, so its wall clock leaps by hours when NTP syncs.

The real core and store run a day's timeline three times: once with a steady clock, then with
the wall clock stepping forward by hours (the usual case: boot from the last saved time, then
NTP) and backward (a saved time that was ahead). The monotonic clock never jumps. The same
phones walk in at the same monotonic times each run, one of them while the clock steps.

Whatever the wall clock does, the core must raise the same alerts in the same way, with the same
durations (``duration_s`` comes from the monotonic clock); after a forward step the alerts still
sort by raise time in the order they were raised; and the sensor strip's "last heard" follows the
new wall clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from scanner.clock import ManualClock
from scanner.observations import Radio, SensorState, SensorStatus, WifiFrame
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.core.helpers import Harness

HOUR = 3600.0
STEP_S = 0.5  # the runtime ticks the core twice a second


@dataclass(frozen=True)
class Visit:
    mac: str
    fingerprint: str
    inside_from: float  # seconds into the run (monotonic)
    inside_until: float


VISITS = (
    Visit("02:00:00:00:00:0a", "fp-phone-a", 100.0, 160.0),
    Visit("02:00:00:00:00:0b", "fp-phone-b", 300.0, 360.0),
    # In the zone while the clock steps at 500 s.
    Visit("02:00:00:00:00:0c", "fp-phone-c", 450.0, 560.0),
)
JUMPS_AT = (220.0, 500.0)
END_S = 720.0


def _run(jumps: tuple[float, float]) -> tuple[Store, ManualClock, list[str]]:
    """The timeline through the real core; ``jumps`` are the wall steps at ``JUMPS_AT``."""
    clock = ManualClock()
    store = Store(":memory:")
    core = Harness(store, clock=clock)
    t0 = clock.monotonic()
    pending = list(zip(JUMPS_AT, jumps, strict=True))
    seq = 0
    while (t := clock.monotonic() - t0) < END_S:
        if pending and t >= pending[0][0]:
            clock.jump_wall(pending.pop(0)[1])
        if t % 5 == 0:
            core.handle(
                SensorStatus(
                    clock.wall(), clock.monotonic(), "wifi", Radio.WIFI, SensorState.OK, "hopping"
                )
            )
        for v in VISITS:
            # Heard from 40 s before until 40 s after, inside in between.
            if v.inside_from - 40 <= t < v.inside_until + 40 and t % 1 == 0:
                seq += 1
                rssi = -45 if v.inside_from <= t < v.inside_until else -82
                core.handle(_probe(clock, v, rssi, seq))
        core.tick(clock.monotonic())
        clock.advance(STEP_S)
    raised = [str(line["alert_id"]) for line in core.lines if line["event"] == "raised"]
    return store, clock, raised


def _probe(clock: ManualClock, v: Visit, rssi: int, seq: int) -> WifiFrame:
    return WifiFrame(
        ts=clock.wall(),
        mono=clock.monotonic(),
        subtype="probe_req",
        mac=v.mac,
        random_mac=True,
        rssi_dbm=rssi,
        freq_mhz=2437,
        ssid="",
        seq=seq % 4096,
        fingerprint=hashlib.sha256(v.fingerprint.encode()).hexdigest()[:16],
    )


def _in_raise_order(store: Store, raised: list[str]) -> list[alert_store.AlertRecord]:
    return [alert_store.get_alert(store, alert_id) for alert_id in raised]


def _shape(alerts: list[alert_store.AlertRecord]) -> list[tuple[object, ...]]:
    return [(a.kind, a.state, a.resolution, a.handsets, a.duration_s) for a in alerts]


@pytest.fixture(scope="module")
def steady() -> list[alert_store.AlertRecord]:
    store, _clock, raised = _run((0.0, 0.0))
    alerts = _in_raise_order(store, raised)
    # The steady run is the reference: one alert per visit, each resolved after the phone left.
    assert len(alerts) == len(VISITS), [a.to_dict() for a in alerts]
    for alert, visit in zip(alerts, VISITS, strict=True):
        assert alert.state == "resolved" and alert.resolution == "left_zone"
        assert visit.inside_until - visit.inside_from <= alert.duration_s
        assert alert.duration_s <= visit.inside_until - visit.inside_from + 90
    return alerts


@pytest.mark.parametrize(
    "jumps",
    [(3 * HOUR, 5 * HOUR), (9 * HOUR, 0.0), (0.0, 30 * 24 * HOUR)],
    ids=["forward-3h-then-5h", "forward-9h", "forward-30d-mid-visit"],
)
def test_forward_steps_keep_order_and_durations(
    steady: list[alert_store.AlertRecord], jumps: tuple[float, float]
) -> None:
    store, _clock, raised = _run(jumps)
    alerts = _in_raise_order(store, raised)
    assert _shape(alerts) == _shape(steady)
    # The list the guard and the export see (newest first, by raise time) is the raise order.
    listed = [a.id for a in alert_store.list_alerts(store)]
    assert listed == list(reversed(raised))
    for alert in alerts:
        assert alert.resolved_ts is not None and alert.resolved_ts >= alert.raised_ts
    # The history rows of each alert are in time order too.
    for alert in alerts:
        history = alert_store.alert_history(store, alert.id)
        stamps = [h["ts"] for h in history]
        assert stamps == sorted(stamps), history


def test_backward_step_keeps_durations_and_raises_nothing_extra(
    steady: list[alert_store.AlertRecord],
) -> None:
    store, _clock, raised = _run((-2 * HOUR, -1 * HOUR))
    alerts = _in_raise_order(store, raised)
    assert _shape(alerts) == _shape(steady)
    for alert in alerts:
        assert alert.duration_s >= 0


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(-2 * HOUR, id="backward-2h"),
        pytest.param(3 * HOUR, id="forward-3h"),
    ],
)
def test_last_heard_follows_the_new_wall_clock(step: float) -> None:
    store, clock, _raised = _run((step, 0.0))
    (row,) = store.query("SELECT last_obs_ts, updated_ts FROM sensor_health WHERE sensor = 'wifi'")
    # Phone C was heard until 600 s, i.e. 120 s before the end of the run.
    assert row["updated_ts"] == pytest.approx(clock.wall(), abs=6.0)
    assert clock.wall() - 125.0 <= row["last_obs_ts"] <= clock.wall() - 115.0, (
        row["last_obs_ts"] - clock.wall()
    )
