"""Support for the browser tests: Chromium settings, a writer thread standing in for the
detection core (it writes through the store's own functions, on its own connection)."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scanner.observations import Radio, SensorStatus
from scanner.store.db import Store
from scanner.store.health import record_status

CHROMIUM = os.environ.get("CHECKPOINT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class CoreWriter(threading.Thread):
    """Reports sensor health every half second, as the sources do, on its own connection."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.store = Store(path)
        self.states: dict[str, tuple[str, str]] = {
            "wifi": ("ok", "hopping 1/6/11"),
            "ble": ("ok", "scanning"),
            "sdr": ("ok", "sweeping 700-960 MHz"),
        }
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def set_state(self, sensor: str, state: str, message: str) -> None:
        with self.lock:
            self.states[sensor] = (state, message)
        self.report()

    def report(self) -> None:
        now = time.time()
        with self.lock:
            states = dict(self.states)
        for sensor, (state, message) in states.items():
            status = SensorStatus(
                now,
                time.monotonic(),
                sensor,
                Radio(sensor),
                state,
                message,
                {"frames": 1200, "dropped": 0},
            )
            record_status(self.store, status, now if state == "ok" else None)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.report()


@dataclass
class Site:
    url: str
    store: Store
    writer: CoreWriter
    creds: dict[str, dict[str, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
