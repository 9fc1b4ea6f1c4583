"""Which simulated scenarios the detection core is developed on, and which are held back.

A core tuned while watching its own simulator learns the simulator. So the seeds are split:

* ``DEV_SEEDS``: scenarios anyone may generate, replay and look at while changing the core.
* ``HELD_BACK_SEEDS``: generated and scored only when a change is finished, once, to report how it
  does on behaviour nobody looked at while writing it. Nothing is tuned after seeing them; a
  result there that disappoints is reported, not fixed by moving a threshold.

Every scenario kind (a ``population.PROFILES`` name) is in both sets. ``ambient`` is scored over
hours because its number is false alarms per eight-hour shift.

    python -m scanner.sim.suites dev OUT_DIR        # writes OUT_DIR/KIND-SEED/ for every pair
    checkpoint eval --json OUT_DIR/mixed-*          # score one kind, pooled

``fence`` scenarios are recorded by two sensors (inside the zone and at the gate);
``python -m scanner.sim.compare`` scores them with both sensors and with each alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from scanner.sim.scenario import ScenarioError, simulate

_LOGGER = logging.getLogger(__name__)

# The scenario kinds scored, each a population profile.
SCENARIO_KINDS: tuple[str, ...] = (
    "easy",
    "mixed",
    "crowded",
    "boundary",
    "quiet",
    "ambient",
    "same-model",
    "pocket",
    "screen-off",
    "loiter",
    "desk",
    "fence",
)
# Kinds recorded by several sensors (``(name, placement)``): the fence is what they are for.
SENSORS: dict[str, tuple[tuple[str, str], ...]] = {
    "fence": (("inside", "inside"), ("gate", "gate"))
}

DEV_SEEDS: tuple[int, ...] = (1, 2, 3, 4)
# The hard kinds miss one visit in tens: four seeds of them show too few misses to see why,
# so their development set has twenty more.
EXTRA_DEV_SEEDS: dict[str, tuple[int, ...]] = {
    kind: tuple(range(5, 25)) for kind in ("crowded", "boundary", "quiet")
}
# Never generated while the core is being changed (see the module docstring). Chosen before
# the work on same-model phones' stations and on the per-record cost began.
HELD_BACK_SEEDS: tuple[int, ...] = (9613, 9721, 9859, 9973)
# Held back once, then scored and looked at: spent, in no set, never held back again.
SPENT_SEEDS: tuple[int, ...] = (
    7101,
    7219,
    7333,
    7457,
    8209,
    8317,
    8443,
    8581,
    9127,
    9239,
    9341,
    9467,
)

# Minutes per scenario: long enough for several visits; ambient-only runs a long stretch of a
# shift so a false alarm rate of one per eight hours is measurable at all.
MINUTES: dict[str, float] = {"ambient": 240.0, "desk": 60.0, "fence": 60.0}
DEFAULT_MINUTES = 20.0


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    seed: int
    minutes: float
    sensors: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.seed}"


def cases(which: str) -> list[Case]:
    """The (kind, seed) pairs of the ``dev`` or ``held-back`` set."""
    if which == "dev":
        seeds = DEV_SEEDS
    elif which == "held-back":
        seeds = HELD_BACK_SEEDS
    else:
        raise ScenarioError(f"unknown set {which!r}: dev or held-back")
    # One long ambient run per seed pair keeps the set's run time reasonable.
    out: list[Case] = []
    for kind in SCENARIO_KINDS:
        minutes = MINUTES.get(kind, DEFAULT_MINUTES)
        chosen = seeds[:2] if kind == "ambient" else seeds
        if which == "dev":
            chosen = (*chosen, *EXTRA_DEV_SEEDS.get(kind, ()))
        sensors = SENSORS.get(kind, ())
        out.extend(Case(kind, seed, minutes, sensors) for seed in chosen)
    return out


def write(which: str, out: Path, kinds: tuple[str, ...] = ()) -> list[Path]:
    """Generate every scenario of the set under ``out``; returns the directories."""
    dirs: list[Path] = []
    for case in cases(which):
        if kinds and case.kind not in kinds:
            continue
        d = out / case.name
        simulate(case.seed, case.minutes, d, case.kind, sensors=list(case.sensors) or None)
        dirs.append(d)
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.sim.suites")
    parser.add_argument("set", choices=("dev", "held-back"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", action="append", default=[], help="only these kinds")
    args = parser.parse_args(argv)
    try:
        dirs = write(args.set, args.out, tuple(args.kind))
    except (ScenarioError, OSError) as exc:
        sys.stderr.write(f"suites: {exc}\n")
        return 2
    sys.stdout.write("".join(f"{d}\n" for d in dirs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
