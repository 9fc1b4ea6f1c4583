"""The SDR chain with a real-protocol double: our rtl_tcp server streaming a synthesised GSM
handset -> `checkpoint capture sdr` -> Unix socket -> `checkpoint core` -> store."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.rtl_tcp_server import FakeRtlTcpServer, synth_uplink
from tests.helpers.daemons import query_tuples as query
from tests.helpers.daemons import tail_logs as logs
from tests.helpers.daemons import wait_for

# E-GSM-900 uplink, as strong as a phone a metre from the antenna (above the zone threshold).
HANDSET_HZ = 890.2e6


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cps-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_sdr_capture_daemon_over_rtl_tcp_feeds_the_core(workdir: Path) -> None:
    server = FakeRtlTcpServer(synth_uplink([HANDSET_HZ], snr_db=40.0), speed=1.0).start()
    db = workdir / "checkpoint.db"
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{workdir}/core.sock"\n'
        f'[sdr]\ntransport = "rtl_tcp"\nhost = "127.0.0.1"\nport = {server.port}\n'
        "rate = 1000000.0\ncentres_mhz = [890.0]\ndwell_s = 0.2\nstatus_every_s = 0.5\n"
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = (workdir / f"{args[0]}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "scanner.cli.main", "-v", *args, "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def sdr_health() -> dict[str, Any]:
        rows = query(db, "SELECT state, counters FROM sensor_health WHERE sensor = 'sdr'")
        return {"state": rows[0][0], **json.loads(rows[0][1])} if rows else {}

    try:
        procs["core"] = start("core")
        assert wait_for((workdir / "core.sock").exists, 30), logs(workdir)
        procs["sdr"] = start("capture", "sdr")
        assert wait_for(lambda: sdr_health().get("state") == "ok", 30), logs(workdir)
        # Bursts from the handset cross the socket and the core opens an alert on uplink
        # energy alone (nothing on Wi-Fi or BLE names the transmitter).
        assert wait_for(lambda: bool(query(db, "SELECT id FROM alerts")), 30), (
            sdr_health(),
            logs(workdir),
        )
        kinds = {r[0] for r in query(db, "SELECT kind FROM alerts")}
        assert kinds == {"unidentified_transmitter"}, kinds
        # The transport's counters travel with the sensor's health.
        assert sdr_health().get("transport_sent", 0) > 0, sdr_health()
    finally:
        for name in ("sdr", "core"):
            proc = procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=20) for name, proc in procs.items()}
        server.stop()
    assert codes == {"core": 0, "sdr": 0}, logs(workdir)
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
