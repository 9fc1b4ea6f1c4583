"""The simulator's behaviours the detection core does not assume, and the seed split."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from scanner.sim import suites
from scanner.sim.emit import uplink_emissions
from scanner.sim.population import PROFILES, Person, populate
from scanner.sim.scenario import ScenarioError, simulate


def _people(profile: str, seed: int = 1, minutes: float = 30.0) -> list[Person]:
    return populate(PROFILES[profile], random.Random(f"t:{profile}:{seed}"), minutes * 60.0)


def test_same_model_crowd_is_mostly_one_model() -> None:
    handsets = [p for p in _people("same-model") if p.kind == "handset" and p.role != "allowlisted"]
    models = Counter((p.platform, p.model) for p in handsets)
    assert len(handsets) >= 20
    assert models[("ios", 0)] >= 0.6 * len(handsets)


def test_pockets_cost_six_to_twelve_db() -> None:
    losses = [p.pocket_db for p in _people("pocket") if p.kind == "handset"]
    pocketed = [x for x in losses if x]
    assert len(pocketed) >= 0.5 * len(losses)
    assert all(6.0 <= x <= 12.0 for x in pocketed)
    # The other profiles carry phones in hand, as before.
    assert not any(p.pocket_db for p in _people("mixed"))


def test_power_control_spreads_the_uplink() -> None:
    site = PROFILES["screen-off"].site
    phones = [p for p in _people("screen-off") if p.kind == "handset" and p.cell]
    spreads = []
    for p in phones[:10]:
        snrs = [u.snr_db for u in uplink_emissions(random.Random(p.id), site, p)]
        if len(snrs) > 20:
            spreads.append(max(snrs) - min(snrs))
    assert spreads and max(spreads) >= 15.0


def test_desks_with_global_macs_stand_inside_and_outside(tmp_path: Path) -> None:
    simulate(2, 10, tmp_path, "desk")
    truth = json.loads((tmp_path / "truth.json").read_text())
    desks = [d for d in truth["devices"] if d["platform"] in ("desk", "desktv")]
    assert len(desks) == 6
    inside = [d for d in desks if d["zone_intervals"]]
    assert len(inside) == 2 and {d["kind"] for d in desks} == {"computer", "other"}
    macs = [m for d in desks for m in d["addresses"]["wifi"]]
    assert all(not int(m[1], 16) & 0x2 for m in macs)  # global, not randomised


def test_loiterers_stand_just_outside() -> None:
    prof = PROFILES["loiter"]
    loiterers = [p for p in _people("loiter") if p.role == "boundary" and p.kind == "handset"]
    assert loiterers
    for p in loiterers:
        assert not p.track.zone_intervals(prof.site.zone_radius_m)
    assert any(p.active for p in loiterers)


def test_seed_sets_are_disjoint_and_cover_every_kind() -> None:
    dev = {c.seed for c in suites.cases("dev")}
    held = set(suites.HELD_BACK_SEEDS)
    assert not dev & held
    assert not set(suites.SPENT_SEEDS) & (dev | held)
    assert set(suites.SCENARIO_KINDS) <= set(PROFILES)
    for which in ("dev", "held-back"):
        kinds = {c.kind for c in suites.cases(which)}
        assert kinds == set(suites.SCENARIO_KINDS)
    with pytest.raises(ScenarioError):
        suites.cases("everything")
