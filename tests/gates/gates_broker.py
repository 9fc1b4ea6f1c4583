"""A real Mosquitto on loopback, started and stopped by the gate tests."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return bool(cond())


class Broker:
    """One mosquitto process; ``restart`` keeps its port and its persisted sessions."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        # Persistence is what carries the subscribers' sessions (and the QoS 1 messages held
        # for them) over a broker restart, as on the appliance. Mosquitto started as root
        # switches to the user named here; ours can write the test's directory.
        self.conf.write_text(
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "autosave_interval 1\n"
            "log_dest stderr\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        if not wait_for(self._listening, timeout=10.0):
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.terminate()  # SIGTERM: mosquitto saves its sessions, as under systemd
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
