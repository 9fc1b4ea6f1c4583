"""The bundled demo scenario shows what the demo promises: an alert within half a minute."""

from __future__ import annotations

import json
from collections import Counter

from scanner.demo import SCENARIO
from scanner.sim.run import replay_fast
from scanner.sim.scoring import score
from scanner.sources.replay import scenario_files


def test_bundled_scenario_exercises_everything_and_alerts_early() -> None:
    radios = {str(r) for r in scenario_files(SCENARIO)}
    assert radios == {"wifi", "ble", "sdr"}
    size = sum(p.stat().st_size for p in SCENARIO.rglob("*") if p.is_file())
    assert size < 3_000_000
    truth = json.loads((SCENARIO / "truth.json").read_text())
    kinds = Counter(d["kind"] for d in truth["devices"])
    assert kinds["access_point"] >= 1
    assert any(d["allowlisted"] for d in truth["devices"])
    result = replay_fast(SCENARIO)
    s = score(truth, result.lines, result.stats.handsets_counted)
    assert s.recall == 1.0 and s.false_alarms == 0
    first = min(ln["ts"] for ln in result.lines) - truth["start"]
    assert first <= 30.0
    assert any("sdr" in ln["sensors"] for ln in result.lines)
    assert result.stats.counters.get("allowlisted_devices", 0) >= 1
