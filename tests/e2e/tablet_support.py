"""Support for the browser tests: Chromium settings, a writer thread standing in for the
detection core (it writes through the store's own functions, on its own connection)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scanner.observations import Radio, SensorState, SensorStatus
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

    def drop(self, sensor: str) -> None:
        """The sensor stops reporting, as when its capture daemon hangs or its radio is gone."""
        with self.lock:
            self.states.pop(sensor, None)

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
                SensorState(state),
                message,
                {"frames": 1200, "dropped": 0},
                # The SDR says which region's band plan it sweeps, as the live source does.
                {"region": "ua-ru"} if sensor == "sdr" else {},
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


class FreezingProxy(threading.Thread):
    """A TCP proxy on loopback in front of the API that can freeze: it then stops forwarding in
    both directions without closing anything, as a stalled Wi-Fi link or a hung middlebox does.
    The browser sees an open connection that simply goes quiet."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(daemon=True)
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.frozen = threading.Event()
        self.stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # A connection opened while frozen hangs too: nothing reaches the server.
        while self.frozen.is_set() and not self.stop.is_set():
            time.sleep(0.05)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        while not self.stop.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)  # hold everything, close nothing
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
        self.join(timeout=5)
