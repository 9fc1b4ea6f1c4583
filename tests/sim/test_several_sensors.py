"""`checkpoint simulate --sensors`: each sensor's recordings from where it stands, on its own
clock, in the FORMATS.md several-sensor layout that replay and eval read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.config import load_config
from scanner.sim.run import replay_fast
from scanner.sim.scenario import ScenarioError, parse_sensors, simulate


@pytest.fixture(scope="module")
def fence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fence") / "f"
    simulate(
        3,
        6.0,
        out,
        "fence",
        sensors=[("inside", "inside"), ("gate", "gate")],
        clock_offsets_s={"gate": 2.0},
    )
    return out


def _ble(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_simulate_writes_the_several_sensor_layout(fence: Path) -> None:
    config = load_config(fence / "site.toml")
    assert [(s.name, s.placement, s.clock_offset_s) for s in config.sensors] == [
        ("inside", "inside", 0.0),
        ("gate", "gate", 2.0),
    ]
    for name in ("inside", "gate"):
        where = fence / "sensors" / name
        assert (where / "wifi.pcap").stat().st_size > 1000
        assert (where / "ble.jsonl").stat().st_size > 1000
        assert list((where / "sdr").glob("*.sigmf-meta"))
    assert not (fence / "wifi.pcap").exists()
    truth = json.loads((fence / "truth.json").read_text())
    assert truth["profile"] == "fence" and truth["devices"]


def test_each_sensor_hears_the_same_transmission_at_its_own_level_and_clock(fence: Path) -> None:
    inside = {
        (a["address"], round(float(str(a["ts"])), 3)): a
        for a in _ble(fence / "sensors" / "inside" / "ble.jsonl")
    }
    gate = _ble(fence / "sensors" / "gate" / "ble.jsonl")
    # The gate's clock reads 2 s early: its copy of an advertisement is stamped 2 s before.
    same = [
        (inside[key], g)
        for g in gate
        if (key := (g["address"], round(float(str(g["ts"])) + 2.0, 3))) in inside
    ]
    assert len(same) > 200
    assert all(i["manufacturer_data"] == g["manufacturer_data"] for i, g in same)
    differences = {int(str(i["rssi"])) - int(str(g["rssi"])) for i, g in same}
    assert len(differences) > 10  # each from its own position, with its own fading
    assert all("levels" not in a for a in gate)


def test_eval_scores_the_layout_and_the_clock_offset_is_applied(
    fence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(fence), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["visits"] >= 1 and report["recall"] is not None
    assert "false_alarms_per_hour" in report
    applied = replay_fast(fence)
    assert applied.stats.counters["placed_pairs"] > 500
    # The same recordings with the offset left out of site.toml: the copies of one
    # transmission are 2 s apart, and most find nothing to compare with (a phone on a call
    # bursts every half second, so some land near another of its own bursts).
    unset = tmp_path / "unset.toml"
    unset.write_text(
        '[[sensors]]\nname = "inside"\nplacement = "inside"\n\n'
        '[[sensors]]\nname = "gate"\nplacement = "gate"\n',
        encoding="utf-8",
    )
    ignored = replay_fast(fence, config=unset)
    assert (
        ignored.stats.counters.get("placed_pairs", 0) < applied.stats.counters["placed_pairs"] / 2
    )


def test_only_sensors_replays_one_sensor_of_the_layout(fence: Path) -> None:
    gate = replay_fast(fence, only_sensors=frozenset({"gate"}))
    assert "placed_pairs" not in gate.stats.counters
    both = replay_fast(fence)
    assert gate.records < both.records


def test_sensor_lists_are_read_and_checked(tmp_path: Path) -> None:
    assert parse_sensors("inside,gate") == [("inside", "inside"), ("gate", "gate")]
    assert parse_sensors("hall:inside, pillar:gate") == [("hall", "inside"), ("pillar", "gate")]
    with pytest.raises(ScenarioError, match="placement"):
        parse_sensors("inside,roof")
    with pytest.raises(ScenarioError, match="named twice"):
        simulate(1, 1.0, tmp_path / "x", "fence", sensors=[("a", "inside"), ("a", "gate")])
    with pytest.raises(ScenarioError, match="unknown sensor"):
        simulate(
            1, 1.0, tmp_path / "y", "fence", sensors=[("a", "inside")], clock_offsets_s={"b": 1.0}
        )
    assert (
        main(
            [
                "simulate",
                "--seed",
                "1",
                "--minutes",
                "1",
                "--out",
                str(tmp_path / "z"),
                "--sensors",
                "inside,gate",
                "--clock-offset",
                "gate=x",
            ]
        )
        == 2
    )


def test_a_walk_recorded_by_every_sensor_calibrates_the_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scanner.core.options import CoreOptions
    from scanner.core.pipeline import Core
    from scanner.core.presence import calibrations_from_setting
    from scanner.store.db import Store

    walks = {}
    for phase in ("boundary", "inside"):
        walks[phase] = tmp_path / phase
        simulate(
            1,
            2.0,
            walks[phase],
            f"calibrate-{phase}",
            sensors=[("inside", "inside"), ("gate", "gate")],
            clock_offsets_s={"gate": -1.0},
        )
    db = tmp_path / "c.db"
    assert main(["calibrate", "phones", "--recording", str(walks["inside"]), "--db", str(db)]) == 0
    listed = capsys.readouterr().out.splitlines()
    mine = [ln.split(".")[0] for ln in listed if "Wi-Fi handset" in ln or "Apple iPhone BLE" in ln]
    for phase, rec in walks.items():
        args = ["calibrate", phase, "--recording", str(rec), "--db", str(db)]
        assert main([*args, "--phone", ",".join(mine), "--carry", "hand"]) == 0
        assert f"{phase} (hand): difference (" in capsys.readouterr().out
    assert main(["calibrate", "apply", "--db", str(db)]) == 0
    assert "difference: set enter" in capsys.readouterr().out
    store = Store(db)
    stored = store.get_setting("zone_calibration", {})
    store.close()
    measured = stored["difference"]
    # Just inside, the inside sensor hears the phone without the wall and the gate sensor
    # through it; just outside the other way round: twice the wall between the two.
    assert measured["inside_dbm"] - measured["boundary_dbm"] >= 15
    core = Core(CoreOptions(), placements={"inside": "inside", "gate": "gate"})
    core.zone.set_calibrations(calibrations_from_setting(stored))
    th = core.zone.difference_thresholds()
    assert measured["boundary_dbm"] < th.exit_dbm < th.enter_dbm < measured["inside_dbm"]
