"""The simulator writes the FORMATS.md scenario layout, readable by our own readers, repeatably."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.sim.scenario import ScenarioError, simulate
from scanner.sources.ble.replay import read_jsonl
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.wifi.replay import read_frames

KINDS = {"handset", "wearable", "audio", "tag", "computer", "access_point", "beacon", "other"}


def _digest(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    simulate(11, 3, tmp_path / "a", "mixed")
    simulate(11, 3, tmp_path / "b", "mixed")
    simulate(12, 3, tmp_path / "c", "mixed")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["wifi.pcap"] != _digest(tmp_path / "c")["wifi.pcap"]


def test_layout_truth_and_recordings_read_back(
    scenario: Callable[[int, str, float], Path],
) -> None:
    d = scenario(2, "mixed", 30)
    truth = json.loads((d / "truth.json").read_text())
    assert set(truth) >= {"start", "duration_s", "zone", "devices"}
    assert truth["duration_s"] == 1800
    for dev in truth["devices"]:
        assert dev["kind"] in KINDS
        assert set(dev["radios"]) <= {"wifi", "ble", "cell"}
        for t0, t1 in dev["zone_intervals"]:
            assert 0 <= t0 < t1 <= truth["duration_s"]
    roles = Counter(dev["role"] for dev in truth["devices"])
    assert roles["walk_in"] > 0 and roles["passer"] > 0 and roles["ambient"] > 0
    assert any(dev["allowlisted"] for dev in truth["devices"])
    counters: Counter[str] = Counter()
    frames = list(read_frames(d / "wifi.pcap", counters))
    adverts = list(read_jsonl(d / "ble.jsonl", counters))
    bursts = list(read_bursts(d / "sdr" / "uplink.sigmf-meta", counters))
    assert frames and adverts and bursts
    end = truth["start"] + truth["duration_s"]
    for records in (frames, adverts, bursts):
        assert all(truth["start"] <= r.ts <= end for r in records)
    assert {f.subtype for f in frames} >= {"probe_req"}
    assert any(f.random_mac for f in frames) and any(not f.random_mac for f in frames)
    assert counters.get("malformed", 0) == 0
    allow = json.loads((d / "allowlist.json").read_text())["entries"]
    assert {e["match"] for e in allow} == {"mac", "ble_identity"}


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown profile"):
        simulate(1, 1, tmp_path, "nonsense")
    with pytest.raises(ScenarioError, match="minutes"):
        simulate(1, 0, tmp_path, "mixed")


def test_demo_profile_first_visit_soon(tmp_path: Path) -> None:
    simulate(5, 2, tmp_path, "demo")
    truth = json.loads((tmp_path / "truth.json").read_text())
    starts = [
        iv[0]
        for d in truth["devices"]
        if d["kind"] == "handset" and not d["allowlisted"]
        for iv in d["zone_intervals"]
    ]
    assert min(starts) <= 30.0
