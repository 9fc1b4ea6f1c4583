"""Simulated scenarios shared by the simulator and evaluation tests (made once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.sim.scenario import simulate

# The evaluation set: ten 30-minute scenarios of varied difficulty, fixed seeds.
EVAL_SET: tuple[tuple[int, str], ...] = (
    (1, "easy"),
    (2, "mixed"),
    (3, "mixed"),
    (4, "crowded"),
    (5, "crowded"),
    (6, "boundary"),
    (7, "boundary"),
    (8, "quiet"),
    (9, "quiet"),
    (10, "mixed"),
)


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, str, float], Path]:
    """Make (or reuse, within the session) the scenario of a seed, profile and length."""
    made: dict[tuple[int, str, float], Path] = {}
    root = tmp_path_factory.mktemp("scenarios")

    def make(seed: int, profile: str, minutes: float) -> Path:
        key = (seed, profile, minutes)
        if key not in made:
            out = root / f"{profile}-{seed}-{minutes:g}"
            simulate(seed, minutes, out, profile)
            made[key] = out
        return made[key]

    return make
