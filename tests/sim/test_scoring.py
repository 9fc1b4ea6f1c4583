"""The FORMATS.md scoring rules on hand-made truth and alert lines."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.sim.scoring import percentile, pooled, score

START = 1_764_000_000.0


def _truth() -> dict[str, Any]:
    return {
        "start": START,
        "duration_s": 1800,
        "devices": [
            {
                "id": "h1",
                "kind": "handset",
                "allowlisted": False,
                "radios": ["wifi"],
                "zone_intervals": [[100.0, 200.0], [600.0, 650.0]],
            },
            {
                "id": "h2",
                "kind": "handset",
                "allowlisted": False,
                "radios": ["ble"],
                "zone_intervals": [[1000.0, 1010.0]],
            },
            {
                "id": "g1",
                "kind": "handset",
                "allowlisted": True,
                "radios": ["wifi"],
                "zone_intervals": [[0.0, 1800.0]],
            },
            {
                "id": "ap",
                "kind": "access_point",
                "allowlisted": False,
                "radios": ["wifi"],
                "zone_intervals": [[0.0, 1800.0]],
            },
        ],
    }


def _line(t: float, event: str = "raised", alarm: bool | None = None) -> dict[str, Any]:
    return {
        "ts": START + t,
        "alert_id": "a",
        "event": event,
        "alarm": event == "raised" if alarm is None else alarm,
        "handsets": 1,
        "sensors": ["wifi"],
    }


def test_visits_detection_window_and_false_alarms() -> None:
    lines = [
        _line(95.2),  # up to five seconds early is allowed: detects h1's first visit at 0 s
        _line(150.0, "updated", alarm=True),  # inside the same visit: no new detection
        _line(654.9),  # within t1 + 5 of the second visit: detected, 54.9 s after t0
        _line(900.0),  # outside every visit: a false alarm (the allowlisted g1 does not count)
        _line(1015.5),  # 5.5 s after h2 left: too late, a false alarm, and h2 is missed
    ]
    s = score(_truth(), lines)
    assert (s.visits, s.detected, s.false_alarms) == (3, 2, 2)
    assert s.recall == pytest.approx(2 / 3, abs=1e-4)
    assert s.median_time_to_alert_s == pytest.approx(27.45)
    assert s.false_alarms_per_hour == pytest.approx(4.0)
    assert s.handsets_truth == 2


def test_only_alarm_lines_count() -> None:
    """An update of an acknowledged handset, an acknowledgement or a resolution is no alarm:
    the guard is not alarmed by it, so it neither detects a visit nor is a false alarm."""
    lines = [
        _line(120.0, "updated", alarm=False),
        _line(130.0, "acknowledged"),
        _line(900.0, "updated", alarm=False),
        _line(1001.0, "resolved"),
    ]
    s = score(_truth(), lines)
    assert (s.detected, s.false_alarms) == (0, 0)
    assert s.recall == 0.0


def test_early_line_is_false_and_floors_at_zero() -> None:
    s = score(_truth(), [_line(94.9), _line(95.5)])
    assert s.false_alarms == 1
    assert s.detected == 1
    assert s.median_time_to_alert_s == 0.0


def test_no_visits_means_recall_null() -> None:
    truth = {"start": START, "duration_s": 3600, "devices": []}
    s = score(truth, [_line(10.0, "resolved")])
    assert (s.visits, s.recall, s.false_alarms, s.median_time_to_alert_s) == (0, None, 0, None)
    assert pooled([(truth, [], None)]).recall is None


def test_p95_interpolates_between_closest_ranks() -> None:
    # Twenty visits of h-n, each alarmed n seconds after it starts: p95 sits between the
    # 19th and 20th smallest (18 and 19 s), 95 % of the way: 18.05 s.
    devices = [
        {"id": f"h{n}", "kind": "handset", "zone_intervals": [[100.0 * n, 100.0 * n + 50.0]]}
        for n in range(20)
    ]
    truth = {"start": START, "duration_s": 3600, "devices": devices}
    s = score(truth, [_line(100.0 * n + n) for n in range(20)])
    assert s.detected == 20
    assert s.p95_time_to_alert_s == pytest.approx(18.05)
    assert s.median_time_to_alert_s == pytest.approx(9.5)


def test_percentile_and_pooled_counts() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([], 0.5) is None
    truth = _truth()
    both = pooled([(truth, [_line(101.0)], 2), (truth, [_line(1000.0), _line(1200.0)], 3)])
    assert (both.visits, both.detected, both.false_alarms) == (6, 2, 1)
    assert both.handsets_truth == 4
    assert both.handset_count_error == pytest.approx(0.25)
    assert both.false_alarms_per_hour == pytest.approx(1.0)
