"""The command-line contracts: simulate, replay --fast --alerts, eval --json, calibrate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.core.options import CoreOptions
from scanner.store.db import Store
from tests.core.helpers import Harness


def test_simulate_replay_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert (
        main(["simulate", "--seed", "4", "--minutes", "3", "--out", str(out), "--profile", "demo"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["visits"] >= 1 and (out / "truth.json").is_file()

    alerts = tmp_path / "alerts.ndjson"
    db = tmp_path / "c.db"
    assert main(["replay", str(out), "--fast", "--alerts", str(alerts), "--db", str(db)]) == 0
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert lines and lines[0]["event"] == "raised"
    for line in lines:
        assert {"ts", "alert_id", "event", "alarm", "handsets", "sensors"} <= set(line)
        assert line["event"] in ("raised", "updated", "acknowledged", "resolved")
        # FORMATS.md: a raise always alarms; acknowledging or resolving never does.
        assert line["alarm"] is (line["event"] == "raised" or line["alarm"] is True)
        if line["event"] in ("acknowledged", "resolved"):
            assert line["alarm"] is False
        assert isinstance(line["ts"], float) and line["handsets"] >= 1
        assert set(line["sensors"]) <= {"wifi", "ble", "sdr"}
    # The simulated guard acknowledged the raise 20 s after it (--ack-after defaults to 20).
    raised = next(ln for ln in lines if ln["event"] == "raised")
    acked = next(ln for ln in lines if ln["event"] == "acknowledged")
    assert acked["alert_id"] == raised["alert_id"]
    assert acked["ts"] == pytest.approx(raised["ts"] + 20.0, abs=0.01)
    store = Store(db)
    stored = {r["id"] for r in store.query("SELECT id FROM alerts")}
    assert {line["alert_id"] for line in lines} <= stored
    row = store.query("SELECT acked_by FROM alerts WHERE id = ?", (raised["alert_id"],))
    assert row[0]["acked_by"] == "guard (simulated)"
    devices = store.query("SELECT identifiers FROM devices")
    assert devices and all(
        set(json.loads(d["identifiers"])) >= {"macs", "fingerprints", "ble"} for d in devices
    )
    assert store.query("SELECT COUNT(*) AS n FROM sightings")[0]["n"] > 0
    sensors = {r["sensor"] for r in store.query("SELECT sensor FROM sensor_health")}
    assert sensors >= {"wifi", "ble", "sdr"}
    store.close()
    capsys.readouterr()

    assert main(["eval", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in (
        "visits",
        "recall",
        "false_alarms",
        "false_alarms_per_hour",
        "median_time_to_alert_s",
        "p95_time_to_alert_s",
    ):
        assert key in report
    assert report["visits"] == summary["visits"]


def test_replay_of_a_missing_dir_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope"), "--fast", "--alerts", "-"]) == 1
    assert "not a scenario" in capsys.readouterr().err


def test_calibrate_walk_sets_the_thresholds_the_core_uses(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scenario: Callable[[int, str, float], Path],
) -> None:
    db = tmp_path / "c.db"
    assert main(["calibrate", "apply", "--db", str(db)]) == 1
    assert "measure boundary and inside first" in capsys.readouterr().err
    inside = scenario(1, "calibrate-inside", 3)
    # A phase before the reference phone is named is refused.
    assert main(["calibrate", "boundary", "--recording", str(inside), "--db", str(db)]) == 1
    assert "name the reference phone" in capsys.readouterr().err
    # The list names phones in words; the reference is picked by number, never by MAC.
    assert main(["calibrate", "phones", "--recording", str(inside), "--db", str(db)]) == 0
    listed = capsys.readouterr().out.splitlines()
    mine = [
        line.split(".")[0]
        for line in listed
        if "Wi-Fi handset" in line or "Apple iPhone BLE" in line
    ]
    assert len(mine) >= 2 and not any(":" in n for n in mine)
    phone = ",".join(mine)
    for phase in ("boundary", "inside"):
        rec = scenario(1, f"calibrate-{phase}", 3)
        for carry in ("hand", "pocket"):
            args = ["calibrate", phase, "--recording", str(rec), "--db", str(db)]
            assert main([*args, "--phone", phone, "--carry", carry]) == 0
    assert main(["calibrate", "apply", "--db", str(db)]) == 0
    applied = capsys.readouterr().out
    assert all(f"{radio}: set enter" in applied for radio in ("wifi", "ble", "sdr"))
    assert main(["calibrate", "show", "--db", str(db)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown["zone_calibration"]) == {"wifi", "ble", "sdr"}
    wifi = shown["zone_calibration"]["wifi"]
    assert wifi["inside_dbm"] - wifi["boundary_dbm"] >= 8  # the wall between the two spots
    store = Store(db)
    core = Harness(store, CoreOptions())
    enter = core.zone.thresholds("wifi", "wifi").enter_dbm
    assert enter == shown["thresholds"]["wifi"]["enter_dbm"]
    assert wifi["boundary_dbm"] < enter < wifi["inside_dbm"]
    store.close()


def test_calibrate_refuses_a_walk_that_measured_something_else(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scenario: Callable[[int, str, float], Path],
) -> None:
    db = tmp_path / "c.db"
    inside = scenario(1, "calibrate-inside", 3)
    assert main(["calibrate", "phones", "--recording", str(inside), "--db", str(db)]) == 0
    capsys.readouterr()
    # The reference phone stayed home: the site's own devices are all that was heard.
    empty = scenario(2, "ambient", 3)
    args = ["calibrate", "boundary", "--recording", str(empty), "--db", str(db), "--phone", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "reference phone was not heard" in err and "not the phone being walked" in err


def test_calibrate_apply_says_what_it_could_not_set(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scenario: Callable[[int, str, float], Path],
) -> None:
    db = tmp_path / "c.db"
    inside = scenario(1, "calibrate-inside", 3)
    assert main(["calibrate", "phones", "--recording", str(inside), "--db", str(db)]) == 0
    capsys.readouterr()
    # Both phases walked in the same spot: nothing separates inside from the boundary.
    for phase in ("boundary", "inside"):
        args = ["calibrate", phase, "--recording", str(inside), "--db", str(db), "--phone", "1"]
        assert main(args) == 0
    assert main(["calibrate", "apply", "--db", str(db)]) == 1
    captured = capsys.readouterr()
    assert "sdr: NOT SET" in captured.out and "wifi: NOT SET" in captured.out
    assert "nothing was applied" in captured.err
