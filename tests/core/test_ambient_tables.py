"""The ambient baseline's compact tables against the plain ones they replaced: the minutes heard
(bits of an int, against a set) and the samples per dBm (one array, against a dict)."""

from __future__ import annotations

import random
from array import array

from scanner.core.ambient import (
    MAX_MINUTES,
    _add_minute,
    _count_level,
    _minutes_in,
    _percentile,
    _Stats,
)


def _reference_add(minutes: set[int], minute: int) -> None:
    """What the baseline kept as a set: the latest ``MAX_MINUTES`` distinct minutes."""
    if len(minutes) < MAX_MINUTES or minute in minutes:
        minutes.add(minute)
    else:
        minutes.discard(min(minutes))
        minutes.add(minute)


def test_bits_hold_the_same_minutes_as_a_set() -> None:
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(200):
        st, ref = _Stats(first_mono=0.0), set[int]()
        minute = rng.randrange(-5, 400)
        for _ in range(rng.randrange(1, 400)):
            # Mostly forward in time, now and then a minute back (two sensors' records).
            minute += rng.choice((0, 0, 1, 1, 2, 7, -1, -3))
            _add_minute(st, minute)
            _reference_add(ref, minute)
            first, last = sorted(rng.randrange(minute - 200, minute + 5) for _ in range(2))
            assert _minutes_in(st, first, last) == sum(1 for m in ref if first <= m < last)
        held = {st.minute0 + i for i in range(st.minutes.bit_length()) if st.minutes >> i & 1}
        assert held == ref
        assert min(ref) == st.minute0 and len(ref) <= MAX_MINUTES


def test_a_full_window_forgets_its_earliest_minute() -> None:
    st = _Stats(first_mono=0.0)
    for minute in range(MAX_MINUTES):
        _add_minute(st, 2 * minute)
    _add_minute(st, 1000)
    assert st.minute0 == 2
    assert _minutes_in(st, 0, 1001) == MAX_MINUTES
    assert _minutes_in(st, 0, 4) == 1


def _reference_percentile(levels: dict[int, int], q: float) -> float | None:
    total = sum(levels.values())
    if total == 0:
        return None
    running = 0
    for value in sorted(levels):
        running += levels[value]
        if running >= q * total:
            return float(value)
    return float(max(levels))


def test_levels_count_and_percentile_as_a_dict_did() -> None:
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    assert _percentile(array("q"), 0.9) is None
    for _ in range(200):
        levels, ref = array("q"), dict[int, int]()
        centre = rng.randrange(-100, -30)
        for _ in range(rng.randrange(1, 300)):
            level = round(centre + rng.gauss(0.0, 4.0))
            _count_level(levels, level)
            ref[level] = ref.get(level, 0) + 1
        n = len(levels) // 2
        assert dict(zip(levels[:n], levels[n:], strict=True)) == ref
        for q in (0.0, 0.5, 0.9, 1.0):
            assert _percentile(levels, q) == _reference_percentile(ref, q)
