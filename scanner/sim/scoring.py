"""Scoring alerts against ground truth, exactly by the FORMATS.md rules.

* A **visit** is one zone interval ``[t0, t1]`` of a handset that is not allowlisted.
* A visit is **detected** when an alert line with ``alarm: true`` has ``ts - start`` in
  ``[t0 - 5, t1 + 5]`` (an alarm a few seconds before the phone crosses is a warning in time);
  its time to alert is the first such time minus ``t0``, floored at 0.
* An ``alarm: true`` line outside every visit's ``[t0 - 5, t1 + 5]`` is a **false alarm**.
* ``recall`` is detected / visits, null when there are no visits; the 95th percentile is linear
  interpolation between closest ranks.

Added: the handsets the core counted against the handsets that visited the zone, and how many
alarm lines there were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# FORMATS.md: the window around a visit in which an alarm counts for it.
EARLY_S = 5.0
LATE_S = 5.0


@dataclass(frozen=True, slots=True)
class Score:
    """The numbers `checkpoint eval` reports for one scenario (or several pooled)."""

    visits: int
    detected: int
    recall: float | None
    false_alarms: int
    false_alarms_per_hour: float
    median_time_to_alert_s: float | None
    p95_time_to_alert_s: float | None
    duration_s: float
    alert_lines: int
    handsets_truth: int | None = None
    handsets_counted: int | None = None
    handset_count_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def visits_of(truth: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """(device id, t0, t1) of every visit in the truth."""
    out: list[tuple[str, float, float]] = []
    for dev in truth.get("devices", []):
        if dev.get("kind") != "handset" or dev.get("allowlisted"):
            continue
        for t0, t1 in dev.get("zone_intervals", []):
            out.append((str(dev.get("id")), float(t0), float(t1)))
    return out


def handsets_in_truth(truth: Mapping[str, Any]) -> int:
    """Distinct non-allowlisted handsets that entered the zone."""
    return sum(
        1
        for dev in truth.get("devices", [])
        if dev.get("kind") == "handset" and not dev.get("allowlisted") and dev.get("zone_intervals")
    )


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..1), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def score(
    truth: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]],
    handsets_counted: int | None = None,
) -> Score:
    """Score alert lines (with ``ts`` and ``alarm``) against one scenario's truth."""
    start = float(truth["start"])
    duration = float(truth["duration_s"])
    visits = visits_of(truth)
    times = _alarm_times(start, lines)
    tta: list[float] = []
    for _dev, t0, t1 in visits:
        hit = next((t for t in times if t0 - EARLY_S <= t <= t1 + LATE_S), None)
        if hit is not None:
            tta.append(max(0.0, hit - t0))
    false_alarms = sum(
        1 for t in times if not any(t0 - EARLY_S <= t <= t1 + LATE_S for _d, t0, t1 in visits)
    )
    truth_count = handsets_in_truth(truth)
    count_error = None
    if handsets_counted is not None and truth_count:
        count_error = round(abs(handsets_counted - truth_count) / truth_count, 3)
    return Score(
        visits=len(visits),
        detected=len(tta),
        recall=round(len(tta) / len(visits), 4) if visits else None,
        false_alarms=false_alarms,
        false_alarms_per_hour=round(false_alarms / (duration / 3600.0), 3) if duration else 0.0,
        median_time_to_alert_s=_round(percentile(tta, 0.5)),
        p95_time_to_alert_s=_round(percentile(tta, 0.95)),
        duration_s=duration,
        alert_lines=len(times),
        handsets_truth=truth_count,
        handsets_counted=handsets_counted,
        handset_count_error=count_error,
    )


def pooled(
    parts: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]], int | None]],
) -> Score:
    """One score over several scenarios: visits and times pooled, false alarms summed."""
    visits = detected = fa = lines_n = 0
    duration = 0.0
    tta: list[float] = []
    truth_n = counted_n = 0
    have_counts = True
    for truth, lines, counted in parts:
        s = score(truth, lines, counted)
        visits += s.visits
        detected += s.detected
        fa += s.false_alarms
        lines_n += s.alert_lines
        duration += s.duration_s
        tta.extend(_times(truth, lines))
        truth_n += s.handsets_truth or 0
        if counted is None:
            have_counts = False
        else:
            counted_n += counted
    return Score(
        visits=visits,
        detected=detected,
        recall=round(detected / visits, 4) if visits else None,
        false_alarms=fa,
        false_alarms_per_hour=round(fa / (duration / 3600.0), 3) if duration else 0.0,
        median_time_to_alert_s=_round(percentile(tta, 0.5)),
        p95_time_to_alert_s=_round(percentile(tta, 0.95)),
        duration_s=duration,
        alert_lines=lines_n,
        handsets_truth=truth_n,
        handsets_counted=counted_n if have_counts else None,
        handset_count_error=(
            round(abs(counted_n - truth_n) / truth_n, 3) if have_counts and truth_n else None
        ),
    )


def _times(truth: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> list[float]:
    times = _alarm_times(float(truth["start"]), lines)
    out: list[float] = []
    for _dev, t0, t1 in visits_of(truth):
        hit = next((t for t in times if t0 - EARLY_S <= t <= t1 + LATE_S), None)
        if hit is not None:
            out.append(max(0.0, hit - t0))
    return out


def _alarm_times(start: float, lines: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds after ``start`` of the lines the guard is alarmed by, in order."""
    return sorted(float(ln["ts"]) - start for ln in lines if ln.get("alarm") is True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
