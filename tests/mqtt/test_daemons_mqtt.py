"""The daemons over the broker: `checkpoint core` with [mqtt] and two sensor nodes' capture
daemons (`checkpoint capture RADIO --replay` with [mqtt] node) on the bundled scenario, with TLS
and a certificate each. The core's store gets the scenario's alert and both nodes' health."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scanner.runtime.demo_plan import BUNDLED_SCENARIO
from tests.helpers.daemons import query_tuples, stop_in_order, wait_for
from tests.mqtt.mqtt_support import GATE, SITE, Broker


def _config(tmp: Path, broker: Broker, name: str, node: str | None) -> Path:
    state = tmp / name
    state.mkdir()
    cert, key = broker.certs[node or "core"]
    lines = [
        "[site]",
        f'state_dir = "{state}"',
        "[store]",
        f'path = "{tmp / "core" / "checkpoint.db"}"',
        "[transport]",
        f'socket = "{tmp / "core.sock"}"',
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {broker.port}",
        f'site = "{SITE}"',
        f'gate = "{GATE}"',
        f'ca_file = "{broker.ca}"',
        f'cert_file = "{cert}"',
        f'key_file = "{key}"',
        "keepalive_s = 5",
        "batch_linger_s = 0.05",
    ]
    if node is not None:
        lines.append(f'node = "{node}"')
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_core_daemon_receives_two_nodes_capture_daemons_through_the_broker(
    broker: Broker, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    core_conf = _config(tmp_path, broker, "core", None)
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (logs / f"{name}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "scanner.cli.main", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    procs = {"core": start("core", "core", "--config", str(core_conf))}
    db = tmp_path / "core" / "checkpoint.db"
    assert wait_for(db.exists, 30)
    # Node "inside" captures Wi-Fi and BLE (one daemon each), node "gate" the SDR, all replaying
    # the bundled scenario four times faster than real time.
    for node, radio in (("inside", "wifi"), ("inside", "ble"), ("gate", "sdr")):
        conf = _config(tmp_path, broker, f"{node}-{radio}", node)
        procs[f"{node}-{radio}"] = start(
            f"{node}-{radio}",
            "capture",
            radio,
            "--config",
            str(conf),
            "--replay",
            str(BUNDLED_SCENARIO),
            "--speed",
            "4",
        )

    def done() -> bool:
        alerts = query_tuples(db, "SELECT id FROM alerts")
        sensors = {r[0] for r in query_tuples(db, "SELECT sensor FROM sensor_health")}
        return bool(alerts) and {"inside", "gate"} <= sensors

    try:
        ok = wait_for(done, 90, ignore=(Exception,))
        health = query_tuples(db, "SELECT value FROM settings WHERE key = 'runtime_health'")
    finally:
        codes = stop_in_order(procs, ["inside-wifi", "inside-ble", "gate-sdr", "core"])
    text = "\n".join((logs / f"{n}.log").read_text(errors="replace")[-1500:] for n in procs)
    assert ok, text
    assert all(code == 0 for code in codes.values()), (codes, text)
    runtime = json.loads(health[0][0])["core"]
    nodes = runtime["mqtt"]["nodes"]
    assert {"inside", "gate"} <= set(nodes), runtime["mqtt"]
    # Each capture daemon is its own stream with its own sequence numbers.
    assert {"wifi", "ble"} <= set(nodes["inside"]["streams"]), nodes["inside"]
    assert nodes["inside"]["streams"]["wifi"]["records"] > 0
