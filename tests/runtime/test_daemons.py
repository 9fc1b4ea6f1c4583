"""The systemd daemons as real subprocesses: `checkpoint core` with a $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.observations import Radio, SensorState, SensorStatus
from scanner.runtime.transport import SocketSender
from tests.helpers.daemons import Logged, get_healthz


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cpd-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def collect(sock: socket.socket, until: float, want: set[str]) -> list[str]:
    seen: list[str] = []
    while time.monotonic() < until:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        seen.extend(data.decode().splitlines())
        if want <= set(seen):
            break
    return seen


def test_core_daemon_notifies_systemd_and_accepts_capture_daemons(workdir: Path) -> None:
    cfg = workdir / "c.toml"
    sock_path = workdir / "core.sock"
    cfg.write_text(f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{sock_path}"\n')
    notify = notify_socket(workdir / "notify")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(workdir / "notify"),
        # A 1 s watchdog: the daemon must ping every half second while its loop progresses.
        "WATCHDOG_USEC": "1000000",
    }
    env.pop("WATCHDOG_PID", None)
    daemon = Logged(
        [sys.executable, "-m", "scanner.cli.main", "core", "--config", str(cfg)], env=env
    )
    proc = daemon.proc
    try:
        seen = collect(notify, time.monotonic() + 30, {"READY=1"})
        assert "READY=1" in seen, daemon.err() if proc.poll() is not None else seen
        t0 = time.monotonic()
        seen += collect(notify, t0 + 5, {"WATCHDOG=1"})
        more = collect(notify, time.monotonic() + 1.6, {"never"})
        assert "WATCHDOG=1" in seen
        assert more.count("WATCHDOG=1") >= 2  # keeps pinging, at about 2 Hz

        # A capture daemon's health report reaches the store through the socket.
        sender = SocketSender(sock_path, 100)
        sender.start()
        try:
            sender.sink(
                SensorStatus(
                    ts=time.time(),
                    mono=time.monotonic(),
                    sensor="wifi:wlan1",
                    radio=Radio.WIFI,
                    state=SensorState.OK,
                    message="capturing",
                    counters={"delivered": 3},
                )
            )
            assert sender.flush(5)
            deadline = time.monotonic() + 10
            rows: list[tuple[str, str]] = []
            while time.monotonic() < deadline and not rows:
                with sqlite3.connect(workdir / "checkpoint.db") as db:
                    rows = db.execute("SELECT sensor, state FROM sensor_health").fetchall()
                time.sleep(0.1)
            assert rows == [("wifi:wlan1", "ok")]
        finally:
            sender.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        tail = collect(notify, time.monotonic() + 2, {"STOPPING=1"})
        assert "STOPPING=1" in tail
        assert not sock_path.exists()  # the socket file is removed on a clean stop
    finally:
        daemon.close()
        notify.close()


def test_api_daemon_serves_tls_when_the_config_has_a_certificate(workdir: Path) -> None:
    import httpx

    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = 0\ncertfile = "{cert}"\nkeyfile = "{key}"\n'
    )
    notify = notify_socket(workdir / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(workdir / "notify")}
    daemon = Logged(
        [sys.executable, "-m", "scanner.cli.main", "api", "--config", str(cfg)],
        env=env,
        stdout=False,
    )
    proc = daemon.proc
    try:
        seen = collect(notify, time.monotonic() + 30, {"READY=1"})
        assert "READY=1" in seen, daemon.err()
        status = next(s for s in seen if s.startswith("STATUS=serving "))
        url = status.removeprefix("STATUS=serving ")
        assert url.startswith("https://127.0.0.1:")
        resp = get_healthz(url, verify=False)
        assert resp.status_code == 200
        assert "store" in resp.json()
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https", "http") + "healthz", timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        daemon.close()
        notify.close()


def test_api_daemon_refuses_a_store_with_the_demo_accounts(workdir: Path) -> None:
    from scanner.store.db import Store
    from scanner.store.users import ensure_demo_users

    store = Store(workdir / "checkpoint.db")
    ensure_demo_users(store)
    store.close()
    cfg = workdir / "c.toml"
    cfg.write_text(f'[site]\nstate_dir = "{workdir}"\n[api]\nhost = "127.0.0.1"\nport = 0\n')
    result = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "api", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "demo accounts" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_all_in_one_serves_and_stops_cleanly_on_sigterm(workdir: Path) -> None:

    cfg = workdir / "c.toml"
    cfg.write_text(f'[site]\nstate_dir = "{workdir}"\n[api]\nhost = "127.0.0.1"\nport = 0\n')
    notify = notify_socket(workdir / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(workdir / "notify"), "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    daemon = Logged(
        [sys.executable, "-m", "scanner.cli.main", "run", "--config", str(cfg)],
        env=env,
        stdout=False,
    )
    proc = daemon.proc
    try:
        seen = collect(notify, time.monotonic() + 30, {"READY=1"})
        status = next(s for s in seen if s.startswith("STATUS=running core"))
        url = status.split(" api on ", 1)[1]
        resp = get_healthz(url)
        assert resp.status_code == 200
        assert "WATCHDOG=1" in collect(notify, time.monotonic() + 5, {"WATCHDOG=1"})
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
        assert "STOPPING=1" in collect(notify, time.monotonic() + 2, {"STOPPING=1"})
    finally:
        daemon.close()
        notify.close()
    assert "Traceback" not in daemon.err()
