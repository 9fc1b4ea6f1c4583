"""Times at the edges of the export: parse what a person types, print ISO 8601 UTC.

What a person may type for a time: ISO 8601 (``2026-11-25T08:00:00Z``; no zone means UTC),
unix seconds, ``now``, ``today`` and ``yesterday`` (midnight UTC starting that day), or a
time back from now: ``-8h``, ``-30m``, ``-2d``, ``-90s``, ``-1w``.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta

# The last second of year 9999: every time up to it prints as ISO 8601.
MAX_TS = 253_402_300_799


# Seconds per unit of a relative time.
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_RELATIVE = re.compile(r"^-\s*(\d+(?:\.\d+)?)\s*([smhdw])$", re.IGNORECASE)
HELP = (
    "ISO 8601 such as 2026-11-25T08:00:00Z (UTC when no zone is given), unix seconds, "
    "now, today, yesterday, or back from now such as -8h, -30m, -2d"
)


class TimeFormatError(ValueError):
    """The text is not a time this program understands, or the period makes no sense."""


def _midnight(now: float, days_back: int) -> float:
    day = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - timedelta(days=days_back)).timestamp()


def parse_time(text: str, now: float | None = None) -> float:
    """A time as a person types it (see the module) -> unix seconds; ``now`` anchors the
    words and relative times (the current time when not given)."""
    value = text.strip()
    if now is None:
        now = time.time()
    word = value.lower()
    if word == "now":
        return now
    if word == "today":
        return _midnight(now, 0)
    if word == "yesterday":
        return _midnight(now, 1)
    relative = _RELATIVE.match(value)
    if relative is not None:
        back = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
        if back > now:
            raise TimeFormatError(f"not a time: {text!r} reaches back before 1970")
        return now - back
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or not 0 <= number <= MAX_TS:
            raise TimeFormatError(f"not a time: {text!r} (unix seconds from 0 to {MAX_TS})")
        return number
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise TimeFormatError(f"not a time: {text!r} (use {HELP})") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ts = parsed.timestamp()
    if not 0 <= ts <= MAX_TS:
        raise TimeFormatError(f"not a time: {text!r} (before 1970 or after 9999)")
    return ts


def parse_period(since: str, until: str, now: float | None = None) -> tuple[float, float]:
    """``--since`` and ``--until`` as a person typed them -> (since, until), refusing an end
    in the future (what has not happened cannot be exported, and a bundle claiming a period
    it could not contain would mislead) and a start not before the end."""
    if now is None:
        now = time.time()
    start, end = parse_time(since, now), parse_time(until, now)
    if end > now:
        raise TimeFormatError(
            f"the end of the period ({iso(end)}) is in the future; use 'now' or an earlier time"
        )
    if start >= end:
        raise TimeFormatError(
            f"the start of the period ({iso(start)}) must be before its end ({iso(end)})"
        )
    return start, end


def iso(ts: float | None) -> str | None:
    """Unix seconds -> ``2026-11-25T08:00:00.125Z`` (milliseconds only when present)."""
    if ts is None or not math.isfinite(ts) or not 0 <= ts <= MAX_TS:
        # A corrupt time in the store is shown as absent, never allowed to stop an export.
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
