"""The core and API daemons start, notify and serve inside their units' seccomp restrictions.

systemd is not PID 1 here, so ``sandbox.py`` applies the two restrictions of each unit that a
daemon's own code could trip over: ``RestrictAddressFamilies=`` (read from the unit file) and
``MemoryDenyWriteExecute=yes``. The rest of the sandbox (mount namespaces, capabilities) is
checked by systemd-analyze in test_units.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.appliance.notify_listener import NotifyListener
from tests.appliance.sandbox import SYSCALLS
from tests.appliance.units import UNIT_DIR, parse_unit, words
from tests.helpers.daemons import Logged, get_healthz

SANDBOX = Path(__file__).with_name("sandbox.py")


@pytest.fixture
def workdir() -> Iterator[Path]:
    if sys.platform != "linux" or platform.machine() not in SYSCALLS:
        pytest.skip(f"no seccomp syscall table for {platform.machine()}")
    d = Path(tempfile.mkdtemp(prefix="cps-", dir="/tmp"))  # short: it holds Unix sockets
    yield d
    shutil.rmtree(d, ignore_errors=True)


def sandboxed(unit: str, *argv: str) -> list[str]:
    families = " ".join(
        sorted(words(parse_unit(UNIT_DIR / unit), "Service", "RestrictAddressFamilies"))
    )
    return [
        sys.executable,
        str(SANDBOX),
        "--families",
        families,
        "--",
        sys.executable,
        "-m",
        "scanner.cli.main",
        *argv,
    ]


def stop(proc: subprocess.Popen[str], sd: NotifyListener) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert "STOPPING" in sd.wait_for("STOPPING", 5)


def test_core_runs_with_unix_sockets_only(workdir: Path) -> None:
    cfg = workdir / "c.toml"
    sock = workdir / "core.sock"
    cfg.write_text(f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{sock}"\n')
    with (
        NotifyListener() as sd,
        Logged(
            sandboxed("checkpoint-core.service", "core", "--config", str(cfg)),
            env=sd.env(watchdog_s=1.0),
            stdout=False,
        ) as core,
    ):
        sd.wait_for("READY", 60)
        assert sd.wait_for("WATCHDOG", 5)
        assert sock.exists()
        stop(core.proc, sd)
    assert "Traceback" not in core.err()


def test_the_sandbox_is_real(workdir: Path) -> None:
    """The same launcher refuses what the unit forbids: the core cannot open an IP socket."""
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)"
    families = "AF_UNIX"
    result = subprocess.run(
        [sys.executable, str(SANDBOX), "--families", families, "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Address family not supported" in result.stderr


def test_api_serves_tls_with_its_families(workdir: Path) -> None:

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)  # fmt: skip
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n[api]\nhost = "127.0.0.1"\nport = 0\n'
        f'certfile = "{cert}"\nkeyfile = "{key}"\n'
    )
    with (
        NotifyListener() as sd,
        Logged(
            sandboxed("checkpoint-api.service", "api", "--config", str(cfg)),
            env=sd.env(watchdog_s=2.0),
            stdout=False,
        ) as api,
    ):
        ready = sd.wait_for("READY", 60)
        url = ready.get("STATUS", "").removeprefix("serving ")
        assert url.startswith("https://127.0.0.1:"), (ready, api.err()[-2000:])
        resp = get_healthz(url, verify=False)
        assert resp.status_code == 200
        stop(api.proc, sd)


@pytest.mark.parametrize("radio", ["wifi", "ble"])
def test_capture_daemon_feeds_the_core_from_inside_its_sandbox(workdir: Path, radio: str) -> None:
    """A capture daemon replaying a simulated scenario (no radio here) under its unit's families
    reaches the sandboxed core over the Unix socket: its health lands in the core's store."""
    scenario = workdir / "scenario"
    made = subprocess.run([sys.executable, "-m", "scanner.cli.main", "simulate", "--seed", "3",
                           "--minutes", "0.5", "--out", str(scenario)],
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    if made.returncode != 0 or not any(scenario.glob("*")):
        pytest.skip(f"no simulated scenario: {made.stderr.strip()[-200:]}")
    cfg = workdir / "c.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{workdir}"\n[transport]\nsocket = "{workdir}/core.sock"\n'
        f"[{radio}]\nenabled = true\n"
    )
    unit = f"checkpoint-capture-{radio}.service"
    with NotifyListener() as core_sd, NotifyListener() as capture_sd:
        core = Logged(
            sandboxed("checkpoint-core.service", "core", "--config", str(cfg)),
            env=core_sd.env(watchdog_s=2.0),
            stdout=False,
        )
        capture = None
        try:
            core_sd.wait_for("READY", 60)
            capture = Logged(
                sandboxed(unit, "capture", radio, "--config", str(cfg), "--replay", str(scenario),
                          "--speed", "10"),
                env=capture_sd.env(watchdog_s=2.0), stdout=False,
            )  # fmt: skip
            capture_sd.wait_for("READY", 60)
            assert capture_sd.wait_for("WATCHDOG", 10)
            deadline = time.monotonic() + 30
            sensors: list[str] = []
            while time.monotonic() < deadline and radio not in " ".join(sensors):
                with sqlite3.connect(workdir / "checkpoint.db") as db:
                    sensors = [r[0] for r in db.execute("SELECT sensor FROM sensor_health")]
                time.sleep(0.2)
            assert any(radio in s for s in sensors), (sensors, core.err()[-2000:])
            stop(capture.proc, capture_sd)
            stop(core.proc, core_sd)
        finally:
            for daemon in (capture, core):
                if daemon is not None:
                    daemon.close()


def test_wifi_capture_socket_opens_within_the_units_families(workdir: Path) -> None:
    """Our capture socket (scapy's interface list re-read, its BPF-filtered listen socket) and
    the `ip link` step of monitor setup need no IP socket: run both on the loopback interface
    under the Wi-Fi unit's families."""
    if os.geteuid() != 0:
        pytest.skip("an AF_PACKET socket needs CAP_NET_RAW")
    families = " ".join(
        sorted(words(parse_unit(UNIT_DIR / "checkpoint-capture-wifi.service"), "Service",
                     "RestrictAddressFamilies"))
    )  # fmt: skip
    code = (
        "import subprocess\n"
        "from scanner.sources.wifi.live import ScapyListenSocket\n"
        "ScapyListenSocket('lo', 'udp').close()\n"
        "subprocess.run(['ip', 'link', 'set', 'dev', 'lo', 'up'], check=True)\n"
        "print('capture socket ok')\n"
    )
    result = subprocess.run(
        [sys.executable, str(SANDBOX), "--families", families, "--", sys.executable, "-c", code],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "capture socket ok" in result.stdout


def _libusb() -> str | None:
    import ctypes.util
    import importlib.util

    spec = importlib.util.find_spec("pyrtlsdrlib")
    if spec is not None and spec.origin is not None:
        bundled = sorted(Path(spec.origin).parents[1].glob("pyrtlsdrlib.libs/libusb-1*.so*"))
        if bundled:
            return str(bundled[0])  # the libusb librtlsdr really loads
    return ctypes.util.find_library("usb-1.0")


def test_libusb_initialises_within_the_sdr_units_families(workdir: Path) -> None:
    """libusb watches hot-plug over a netlink socket and fails to initialise without one: the
    SDR unit must allow AF_NETLINK, and with its families libusb_init succeeds."""
    lib = _libusb()
    if lib is None:
        pytest.skip("no libusb on this machine")
    families = words(parse_unit(UNIT_DIR / "checkpoint-capture-sdr.service"), "Service",
                     "RestrictAddressFamilies")  # fmt: skip
    code = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({lib!r})\n"
        "ctx = ctypes.c_void_p()\n"
        "sys.exit(-lib.libusb_init(ctypes.byref(ctx)))\n"
    )

    def init_status(allowed: set[str]) -> int:
        argv = [sys.executable, str(SANDBOX), "--families", " ".join(sorted(allowed)), "--",
                sys.executable, "-c", code]  # fmt: skip
        return subprocess.run(argv, capture_output=True, check=False, timeout=60).returncode

    assert init_status(families) == 0
    assert init_status(families - {"AF_NETLINK"}) != 0  # why AF_NETLINK is in the unit
