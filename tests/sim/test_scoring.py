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


def _line(t: float, event: str = "raised") -> dict[str, Any]:
    return {"ts": START + t, "alert_id": "a", "event": event, "handsets": 1, "sensors": ["wifi"]}


def test_visits_detection_window_and_false_alarms() -> None:
    lines = [
        _line(99.2),  # one second early is allowed: detects h1's first visit at 0 s
        _line(150.0, "updated"),  # inside the same visit: neither a new detection nor false
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


def test_early_line_is_false_and_floors_at_zero() -> None:
    s = score(_truth(), [_line(98.9), _line(99.5)])
    assert s.false_alarms == 1
    assert s.detected == 1
    assert s.median_time_to_alert_s == 0.0


def test_resolved_lines_are_ignored_and_no_visits_means_full_recall() -> None:
    truth = {"start": START, "duration_s": 3600, "devices": []}
    s = score(truth, [_line(10.0, "resolved")])
    assert (s.visits, s.recall, s.false_alarms, s.median_time_to_alert_s) == (0, 1.0, 0, None)


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
