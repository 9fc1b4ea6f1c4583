"""`checkpoint demo --sensors 2`: two nodes publish through the Mosquitto the demo starts, and the
core raises the scenario's alarms from what the broker delivers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.daemons import Logged
from tests.mqtt.mqtt_support import MOSQUITTO


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


@pytest.mark.parametrize("layout", ["bundled", "several-sensor"])
def test_demo_with_two_sensor_nodes_alarms_through_the_broker(tmp_path: Path, layout: str) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (.ci/setup installs it)")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    data = tmp_path / "data"
    scenario: list[str] = []
    if layout == "several-sensor":
        # A sensor inside and one at the gate, each with its own recordings (sensors/NAME/).
        where = tmp_path / "scenario"
        cmd = [sys.executable, "-m", "scanner.cli.main", "simulate", "--seed", "3"]
        cmd += ["--minutes", "3", "--sensors", "inside,gate", "--out", str(where)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=env)
        scenario = ["--scenario", str(where)]
    # Four times real time: the first visitor's alarm (22 s into the bundled scenario, 71 s
    # into the simulated one) within seconds.
    cmd = [sys.executable, "-m", "scanner.cli.main", "demo", "--sensors", "2", "--port", "0"]
    cmd += ["--data-dir", str(data), "--speed", "4", *scenario]
    demo = Logged(cmd, env=env)
    proc = demo.proc
    db = data / "checkpoint.db"
    try:
        deadline = time.monotonic() + 90
        alerts: list[tuple[object, ...]] = []
        sensors: set[object] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            alerts = _rows(db, "SELECT id FROM alerts")
            sensors = {r[0] for r in _rows(db, "SELECT sensor FROM sensor_health")}
            if alerts and {"inside", "gate"} <= sensors:
                break
            time.sleep(0.5)
        assert proc.poll() is None, demo.err()[-2000:]
        assert alerts, "no alert reached the store through the broker"
        assert {"inside", "gate"} <= sensors, f"sensor health rows: {sensors}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            demo.close()
    assert "publishing through Mosquitto" in demo.out()
    assert proc.returncode == 0, demo.err()[-2000:]
