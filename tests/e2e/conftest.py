"""Browser tests: the app served by uvicorn on a free port over a temp store, a writer thread
standing in for the detection core (it writes through the store's own functions), and real
headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from scanner.observations import Radio, SensorStatus
from scanner.store.db import Store
from scanner.store.health import record_status
from scanner.store.users import ensure_demo_users

CHROMIUM = os.environ.get("CHECKPOINT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    path = str(tmp_path / "checkpoint.db")
    store = Store(path)
    creds = ensure_demo_users(store)
    with store.write() as conn:
        store.set_setting(conn, "zone", {"name": "North gate", "calibration": {}})
    writer = CoreWriter(path)
    writer.report()
    writer.start()
    settings = ApiSettings(store_path=path, demo=True, event_poll_s=0.1, heartbeat_s=5.0)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Site(f"http://127.0.0.1:{port}", store, writer, creds)
    finally:
        writer.stop.set()
        server.should_exit = True
        thread.join(timeout=10)
        writer.join(timeout=5)
