"""Retry delays by error class, one engine for the three live sources' ladders.

Each radio names its failure classes and gives each a ``Schedule`` (or None: retrying will not
help, a person must act). ``Backoff`` counts the failures of each class apart: the first retry
of a class waits its ``first_s``, each further failure of the same class doubles the wait up
to its ``max_s``, and a class that starts failing after another one begins at its own first
delay (an unplugged dongle that comes back busy is a new problem, not the old one worse). A
success (``reset``) starts every class over.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

# Past 2**16 times the first delay every schedule is long at its cap; the exponent stops here
# so that a class failing for weeks never overflows a float.
_MAX_DOUBLINGS = 16

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One class's waits: ``first_s``, doubling per further failure, at most ``max_s``."""

    first_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError(f"a schedule needs 0 < first_s <= max_s, not {self}")

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (0-based) of this class."""
        return float(min(self.max_s, self.first_s * 2 ** min(max(attempt, 0), _MAX_DOUBLINGS)))


class Backoff(Generic[K]):
    """Failure counts by class and the wait each failure earns.

    ``scale`` multiplies every wait (tests shorten them); ``jitter`` spreads each wait by up to
    that fraction either way, so that sensors that failed together do not retry in lock-step.
    """

    def __init__(
        self,
        schedules: Mapping[K, Schedule | None],
        *,
        scale: float = 1.0,
        jitter: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if scale <= 0 or not 0 <= jitter < 1:
            raise ValueError("Backoff needs scale > 0 and 0 <= jitter < 1")
        self._schedules = dict(schedules)
        self._scale = scale
        self._jitter = jitter
        self._rand = rand
        self._failures: Counter[K] = Counter()

    def failed(self, cls: K) -> float | None:
        """Count one failure of ``cls``; seconds to wait before the next attempt, or None
        when the class is not worth retrying. A class without a schedule is a KeyError: every
        class a ladder can raise must be in its table."""
        schedule = self._schedules[cls]
        attempt = self._failures[cls]
        self._failures[cls] += 1
        if schedule is None:
            return None
        wait = schedule.delay(attempt) * self._scale
        if self._jitter:
            wait *= 1.0 + self._jitter * (2.0 * self._rand() - 1.0)
        return wait

    def failures(self, cls: K) -> int:
        """Failures of ``cls`` since the last ``reset``."""
        return self._failures[cls]

    @property
    def failing(self) -> bool:
        """Whether any class has failed since the last ``reset``."""
        return bool(self._failures)

    def reset(self) -> None:
        """A success: every class starts again at its first delay."""
        self._failures.clear()
