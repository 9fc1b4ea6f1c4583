"""Times at the edges of the export: parse what a person types, print ISO 8601 UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# The last second of year 9999: every time up to it prints as ISO 8601.
MAX_TS = 253_402_300_799


class TimeFormatError(ValueError):
    """The text is neither an ISO 8601 time nor unix seconds."""


def parse_time(text: str) -> float:
    """ISO 8601 (a missing zone means UTC) or unix seconds -> unix seconds."""
    value = text.strip()
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
        raise TimeFormatError(
            f"not a time: {text!r} (use ISO 8601 such as 2026-11-25T08:00:00Z, or unix seconds)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ts = parsed.timestamp()
    if not 0 <= ts <= MAX_TS:
        raise TimeFormatError(f"not a time: {text!r} (before 1970 or after 9999)")
    return ts


def iso(ts: float | None) -> str | None:
    """Unix seconds -> ``2026-11-25T08:00:00.125Z`` (milliseconds only when present)."""
    if ts is None or not math.isfinite(ts) or not 0 <= ts <= MAX_TS:
        # A corrupt time in the store is shown as absent, never allowed to stop an export.
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
