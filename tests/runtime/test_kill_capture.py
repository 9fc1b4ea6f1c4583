"""Issue 9: kill -9 a capture daemon during a busy replay; the system carries on intact.

Real processes, as systemd runs them: one `checkpoint core` and one `checkpoint capture` per
radio replaying a simulated scenario over the Unix socket. The test plays systemd's part
(Restart=on-failure) for the daemon it kills.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.export.seal_key import read_keys
from scanner.store.chain import ALERT_HISTORY_KEYS, derive_chain_key, verify_rows
from tests.helpers.daemons import stop_in_order, wait_for

SPEED = 3.0


class Daemons:
    def __init__(self, workdir: Path, scenario: Path) -> None:
        self.workdir = workdir
        self.scenario = scenario
        self.config = workdir / "checkpoint.toml"
        self.db = workdir / "checkpoint.db"
        self.socket = workdir / "core.sock"
        self.config.write_text(
            f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{self.socket}"\n'
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, scenario: Path | None = None) -> None:
        if name == "core":
            args = ["core", "--config", str(self.config)]
        else:
            args = [
                "capture",
                name.split("-", maxsplit=1)[0],
                "--config",
                str(self.config),
                "--replay",
                str(scenario or self.scenario),
                "--speed",
                str(SPEED),
            ]
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "scanner.cli.main", "-v", *args],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )

    def start_busy_site(self) -> None:
        """The core, then the three radios replaying the scenario and the busy Wi-Fi flood."""
        self.start("core")
        assert wait_for(self.socket.exists, 30), self.logs["core"].read_text()
        for radio in ("wifi", "ble", "sdr"):
            self.start(radio)
        self.start("wifi-busy", self.workdir / "busy")

    def stop_all(self) -> dict[str, int | None]:
        # Captures first, then the core, as systemd stops the target.
        return stop_in_order(self.procs, sorted(self.procs, key=lambda n: n == "core"))

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with sqlite3.connect(self.db, timeout=10) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params))


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    from scanner.sim.scenario import simulate

    workdir = Path(tempfile.mkdtemp(prefix="cpk-", dir="/tmp"))
    scenario = workdir / "scenario"
    # The demo profile: the first visitor walks in after about 22 s, a second one follows.
    simulate(3, 4, scenario, profile="demo")
    write_busy_wifi(workdir / "busy")
    d = Daemons(workdir, scenario)
    try:
        yield d
    finally:
        for proc in d.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def write_busy_wifi(out: Path, seconds: float = 60.0, rate_hz: float = 500.0) -> None:
    """A crowded corridor: probe requests from thousands of randomised MACs, all far outside
    the zone (they must not alert), at ``rate_hz``; replayed at SPEED it is a busy radio."""
    from scanner.sources.wifi.build import probe_request, probe_request_body, radiotap
    from scanner.sources.wifi.recorder import PcapWriter

    out.mkdir()
    start = 1_764_000_000.0
    body = probe_request_body("")
    with PcapWriter(out / "wifi.pcap") as pcap:
        for i in range(int(seconds * rate_hz)):
            n = i % 3000
            mac = f"da:{n >> 8:02x}:{n & 0xFF:02x}:00:00:01"
            frame = radiotap(rssi_dbm=-88, freq_mhz=2437) + probe_request(mac, i, body)
            pcap.write(start + i / rate_hz, frame)
    (out / "truth.json").write_text(
        json.dumps({"start": start, "duration_s": seconds, "zone": {}, "devices": []})
    )


def core_socket(d: Daemons) -> dict[str, int]:
    rows = d.query("SELECT value FROM settings WHERE key = 'runtime_health'")
    if not rows:
        return {}
    counters: dict[str, int] = json.loads(rows[0]["value"])["core"]["socket"]
    return counters


def wait_for_first_alert(d: Daemons) -> None:
    # The first visit (about 22 s into the scenario) raises an alert.
    raised = wait_for(lambda: d.db.exists() and bool(d.query("SELECT id FROM alerts")), 45)
    assert raised, d.logs["core"].read_text()[-3000:]


def snapshot(d: Daemons) -> dict[str, dict[str, Any]]:
    rows = d.query("SELECT id, kind, raised_ts FROM alerts")
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        history = d.query(
            "SELECT seq, event, hash FROM alert_history WHERE alert_id = ? ORDER BY seq", (r["id"],)
        )
        out[r["id"]] = {
            "kind": r["kind"],
            "raised_ts": r["raised_ts"],
            "history": [(h["seq"], h["event"], h["hash"]) for h in history],
        }
    return out


def test_kill_9_of_a_capture_daemon_loses_and_duplicates_no_alert(daemons: Daemons) -> None:
    d = daemons
    d.start_busy_site()
    try:
        wait_for_first_alert(d)
        before = snapshot(d)
        # The health row is written every 2 s; wait until it shows all four daemons connected
        # and records flowing, so the count read at the kill is a real one.
        assert wait_for(
            lambda: core_socket(d).get("connections") == 4 and "records" in core_socket(d), 10
        ), core_socket(d)
        busy = d.procs["wifi-busy"]
        assert busy.poll() is None
        busy.kill()  # SIGKILL mid-stream: its buffer and socket die with it
        assert busy.wait(timeout=10) == -signal.SIGKILL
        records_at_kill = core_socket(d)["records"]
        time.sleep(0.5)  # systemd's RestartSec, shortened
        d.start("wifi-busy", d.workdir / "busy")

        # The core saw the disconnect, took the new connection, and the flood resumed.
        assert wait_for(
            lambda: (
                core_socket(d).get("connections") == 5
                and core_socket(d)["records"] > records_at_kill + 5000
            ),
            45,
        ), (core_socket(d), d.logs["wifi-busy"].read_text()[-2000:])
        time.sleep(6)  # more of the replay, across the second visit
    finally:
        codes = d.stop_all()
    assert codes == {"wifi": 0, "ble": 0, "sdr": 0, "wifi-busy": 0, "core": 0}, codes

    # Nothing stored before the kill was lost or altered: each alert keeps its raise and its
    # history is only ever extended.
    after = snapshot(d)
    for alert_id, old in before.items():
        assert alert_id in after
        assert after[alert_id]["raised_ts"] == old["raised_ts"]
        assert after[alert_id]["history"][: len(old["history"])] == old["history"]

    # Nothing is duplicated: one 'raised' row and one 'raised' event per alert, and at most one
    # handset alert open at any moment.
    for alert_id, alert in after.items():
        assert [e for _s, e, _h in alert["history"]].count("raised") == 1, alert_id
    events = d.query("SELECT data FROM events WHERE type = 'alert'")
    raised = [
        json.loads(e["data"])["alert"]["id"]
        for e in events
        if json.loads(e["data"])["event"] == "raised"
    ]
    assert sorted(raised) == sorted(after)
    spans = sorted(
        (r["raised_ts"], r["resolved_ts"] or float("inf"))
        for r in d.query("SELECT raised_ts, resolved_ts FROM alerts WHERE kind = 'handset'")
    )
    for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
        assert b0 >= a1, f"overlapping handset alerts: {spans}"

    health = json.loads(
        d.query("SELECT value FROM settings WHERE key = 'runtime_health'")[0]["value"]
    )["core"]
    print(f"alerts {len(after)} (before the kill {len(before)}); core {health}")
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"
    rows = [dict(r) for r in d.query("SELECT * FROM alert_history ORDER BY seq")]
    assert verify_rows(rows, ALERT_HISTORY_KEYS, _chain_key(d.db)) == []
    assert not d.socket.exists()


def test_kill_9_of_the_core_during_a_busy_replay(daemons: Daemons) -> None:
    d = daemons
    d.start_busy_site()
    try:
        wait_for_first_alert(d)
        before = snapshot(d)
        core = d.procs["core"]
        core.kill()  # mid-write, with four daemons sending
        assert core.wait(timeout=10) == -signal.SIGKILL
        assert d.socket.exists()  # left behind, as after a power cut
        time.sleep(1.0)
        d.start("core")
        # The new core replaces the stale socket; every capture daemon reconnects by itself.
        assert wait_for(lambda: core_socket(d).get("connections", 0) >= 4, 30), d.logs[
            "core"
        ].read_text()[-3000:]
        time.sleep(6)
    finally:
        codes = d.stop_all()
    assert codes == {"wifi": 0, "ble": 0, "sdr": 0, "wifi-busy": 0, "core": 0}, codes
    after = snapshot(d)
    for alert_id, old in before.items():
        assert alert_id in after
        assert after[alert_id]["history"][: len(old["history"])] == old["history"]
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"
    rows = [dict(r) for r in d.query("SELECT * FROM alert_history ORDER BY seq")]
    assert verify_rows(rows, ALERT_HISTORY_KEYS, _chain_key(d.db)) == []
    spans = sorted(
        (r["raised_ts"], r["resolved_ts"] or float("inf"), r["id"])
        for r in d.query("SELECT id, raised_ts, resolved_ts FROM alerts WHERE kind = 'handset'")
    )
    print("handset alerts:", spans)
    for (_a0, a1, _ia), (b0, _b1, _ib) in itertools.pairwise(spans):
        assert b0 >= a1, f"overlapping handset alerts after the core restarted: {spans}"


def _chain_key(db: Path) -> bytes:
    """The core keys the alert history with the development key it made beside the store."""
    return derive_chain_key(read_keys(db.parent / "seal.key").current)
