"""The production chain with a real-protocol double at the far end: fake bluetoothd on a private
system bus -> `checkpoint capture ble` -> Unix socket -> `checkpoint core` -> store.

A phone advertising next to the sensor raises one alert; kill -9 of the capture daemon while it
advertises does not raise a second one (the core still holds the first), and the restarted
daemon's records reach the same alert.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.bluez import FakeBluez, running_fake_bluez
from tests.helpers.daemons import query_tuples as query
from tests.helpers.daemons import tail_logs as logs
from tests.helpers.daemons import wait_for

IPHONE = {76: bytes.fromhex("1005031c5a0b2e")}  # Apple Nearby Info: a handset
# The fake reports an unchanging phone once, as bluetoothd does; the capture daemon has it
# re-reported every half second here (10 s by default) so the chain is exercised in seconds.
BLE_SECTION = "[ble]\nrereport_s = 0.5\n"


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cpb-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_ble_capture_daemon_to_core_daemon_through_kill_9(workdir: Path) -> None:
    db = workdir / "checkpoint.db"
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{workdir}/core.sock"\n'
        + BLE_SECTION
    )
    with running_fake_bluez(workdir) as fake:
        procs: dict[str, subprocess.Popen[bytes]] = {}

        def start(*args: str) -> subprocess.Popen[bytes]:
            log = (workdir / f"{args[0]}.log").open("ab")
            return subprocess.Popen(
                [sys.executable, "-m", "scanner.cli.main", "-v", *args, "--config", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

        def phone(f: FakeBluez = fake) -> None:
            f.advert("4A:11:22:33:44:55", rssi=-42, mfr=IPHONE)

        try:
            procs["core"] = start("core")
            assert wait_for((workdir / "core.sock").exists, 30), logs(workdir)
            procs["ble"] = start("capture", "ble")
            assert wait_for(
                lambda: (
                    query(db, "SELECT state FROM sensor_health WHERE sensor = 'ble'") == [("ok",)]
                ),
                30,
            ), logs(workdir)
            assert wait_for(
                lambda: bool(query(db, "SELECT id FROM alerts WHERE state = 'open'")), 30, phone
            ), logs(workdir)
            first = query(db, "SELECT id, sensors FROM alerts")
            assert len(first) == 1 and "ble" in first[0][1]

            procs["ble"].kill()
            assert procs["ble"].wait(timeout=10) == -signal.SIGKILL
            # This time it also records what it hears (BLE JSONL, FORMATS.md).
            procs["ble"] = start("capture", "ble", "--record", str(workdir / "rec.jsonl"))
            assert wait_for(
                lambda: (
                    query(
                        db, "SELECT COUNT(*) FROM health_log WHERE sensor = 'ble' AND state = 'ok'"
                    )[0][0]
                    >= 2
                ),
                30,
                phone,
            ), logs(workdir)
            for _ in range(30):  # the phone is still there, advertising
                phone()
                time.sleep(0.1)
        finally:
            codes = {}
            for name in ("ble", "core"):
                proc = procs.get(name)
                if proc is not None:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                    codes[name] = proc.wait(timeout=20)
    assert codes == {"ble": 0, "core": 0}, logs(workdir)
    # One alert for one phone, across the capture daemon's death.
    alerts = query(db, "SELECT id, raised_ts, resolved_ts, resolution FROM alerts")
    assert [r[0] for r in alerts] == [first[0][0]], (alerts, logs(workdir))
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    recorded = [json.loads(line) for line in (workdir / "rec.jsonl").read_text().splitlines()]
    assert recorded and {r["address"] for r in recorded} == {"4A:11:22:33:44:55"}
    assert recorded[-1]["manufacturer_data"] == {"76": IPHONE[76].hex()}


def test_run_all_in_one_with_ble_raises_the_alert_and_serves_health(workdir: Path) -> None:
    import httpx

    db = workdir / "checkpoint.db"
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n' + BLE_SECTION + '[api]\nhost = "127.0.0.1"\nport = 0\n'
    )
    with running_fake_bluez(workdir) as fake:
        log = (workdir / "run.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner.cli.main", "-v", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:

            def url() -> str:
                text = (workdir / "run.log").read_text()
                marker = " api on "
                return text.split(marker, 1)[1].split()[0] if marker in text else ""

            assert wait_for(lambda: bool(url()), 30), logs(workdir)
            assert wait_for(
                lambda: bool(query(db, "SELECT id FROM alerts WHERE state = 'open'")),
                30,
                lambda: fake.advert("4A:11:22:33:44:66", rssi=-40, mfr=IPHONE),
            ), logs(workdir)
            health = httpx.get(url() + "healthz", timeout=10).json()
            assert health["sensors"]["ble"]["state"] == "ok"
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
    assert code == 0, logs(workdir)
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
