"""A transmitter's sample window reads as the bounded deque of (mono, level) tuples it replaced."""

from __future__ import annotations

import random
import statistics
from collections import deque

import pytest

from scanner.core.sample_window import SampleWindow


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_window_reads_as_a_bounded_deque_through_random_use(seed: int) -> None:
    rng = random.Random(seed)
    print(f"seed {seed}")
    window = SampleWindow(40)
    reference: deque[tuple[float, float]] = deque(maxlen=40)
    mono = 1000.0
    for _ in range(5000):
        op = rng.random()
        if op < 0.75:
            # Mostly forward in time; now and then a second sensor's sample a little older.
            mono += rng.choice((0.0, 0.05, 0.3, 2.0, -0.1))
            sample = (mono, float(rng.randint(-95, -30)) + rng.random())
            window.append(sample)
            reference.append(sample)
        elif op < 0.85:
            now, window_s = mono + rng.random() * 5.0, rng.choice((1.0, 5.0, 10.0))
            window.drop_older(now, window_s)
            while reference and now - reference[0][0] > window_s:
                reference.popleft()
        elif op < 0.87:
            window.clear()
            reference.clear()
        now, window_s = mono + rng.random() * 3.0, rng.choice((1.0, 3.0, 8.0))
        assert list(window) == list(reference)
        assert len(window) == len(reference)
        assert window.levels() == [v for _, v in reference]
        assert window.levels_within(now, window_s) == [
            v for t, v in reference if now - t <= window_s
        ]
        threshold = float(rng.randint(-90, -40))
        below = next((t for t, v in reversed(reference) if v < threshold), None)
        assert window.last_below(threshold) == below
        if reference:
            assert window[0] == reference[0] and window[-1] == reference[-1]
            assert statistics.median(window.levels()) == statistics.median(v for _, v in reference)


def test_an_empty_window_holds_nothing() -> None:
    window = SampleWindow(3)
    assert not window and window.levels() == [] and window.last_below(0.0) is None
    with pytest.raises(IndexError):
        window[0]
