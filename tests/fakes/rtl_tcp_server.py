"""An rtl_tcp server for tests: the far end of the wire, speaking the real protocol.

It sends the 12-byte ``RTL0`` header, obeys 5-byte commands (frequency, rate, gain, ...) and
streams cu8 IQ that depends on the tuned frequency: recorded bytes looped, or a synthesised
uplink. It can misbehave on demand: stall (keep the socket, send nothing), drop (close the
connection), refuse (stop listening: connection refused), or accept-and-hang-up, and then
behave again on the same port.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from scanner.sources.sdr import synth

IqFor = Callable[[float, float], np.ndarray]  # (centre_hz, rate) -> cu8 bytes to loop


def synth_uplink(
    burst_freqs_hz: list[float],
    noise_dbfs: float = -35.0,
    snr_db: float = 20.0,
    seconds: float = 0.5,
    seed: int = 1,
) -> IqFor:
    """IQ with a GSM handset on each of ``burst_freqs_hz`` that falls inside the tuned span."""
    cache: dict[tuple[float, float], np.ndarray] = {}

    def make(centre_hz: float, rate: float) -> np.ndarray:
        key = (centre_hz, rate)
        if key not in cache:
            rng = np.random.default_rng(seed)
            bursts = []
            for f in burst_freqs_hz:
                off = f - centre_hz
                if abs(off) < 0.4 * rate:
                    p = synth.power_dbfs_for(snr_db, noise_dbfs, synth.GSM_BANDWIDTH_HZ, rate)
                    bursts += synth.gsm_schedule(0.0, seconds, off, p)
            cache[key] = synth.synth_cu8(rng, rate, int(seconds * rate), noise_dbfs, bursts)
        return cache[key]

    return make


def looped(raw_cu8: np.ndarray) -> IqFor:
    """The same recorded cu8 bytes whatever the tuning."""
    return lambda _centre, _rate: raw_cu8


class FakeRtlTcpServer:
    """A threaded rtl_tcp server on 127.0.0.1 (one client at a time, like the real one)."""

    def __init__(
        self,
        iq: IqFor | None = None,
        speed: float = 1.0,
        chunk: int = 16384,
        tuner: int = 5,
        gains: int = 29,
        port: int = 0,
    ) -> None:
        self.iq = iq or synth_uplink([])
        self.speed = speed  # pace as a multiple of real time (0 = as fast as possible)
        self.chunk = chunk
        self.tuner = tuner
        self.gains = gains
        self.centre_hz = 100e6
        self.rate = 2.048e6
        self.gain_mode = 0
        self.gain_tenths = 0
        self.commands: list[tuple[int, int]] = []
        self.connections = 0
        self.hangups = 0  # connections accepted and closed at once (hang_up mode)
        self.connect_times: list[float] = []
        self._port = port
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._stalled = threading.Event()
        self._hang_up = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- control ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    def start(self) -> FakeRtlTcpServer:
        self._closing.clear()
        self._listen()
        return self

    def stop(self) -> None:
        """Kill the server: no listener, no client (as when rtl_tcp is killed)."""
        self._closing.set()
        self.refuse()
        self.drop()
        for t in self._threads:
            t.join(timeout=3)
        self._threads = []

    def stall(self) -> None:
        self._stalled.set()

    def resume(self) -> None:
        self._stalled.clear()

    def drop(self) -> None:
        """Close the current client connection."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def refuse(self) -> None:
        """Stop listening: new connections are refused by the OS."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def accept_again(self) -> None:
        """Listen again on the same port."""
        self._closing.clear()
        self._listen()

    def hang_up(self, on: bool = True) -> None:
        """Accept connections but close them before the header (a broken server)."""
        if on:
            self._hang_up.set()
        else:
            self._hang_up.clear()

    # -- internals -------------------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(4)
        sock.settimeout(0.1)
        self._port = sock.getsockname()[1]
        with self._lock:
            self._listener = sock
        t = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                conn, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connect_times.append(time.monotonic())
            if self._hang_up.is_set():
                self.hangups += 1
                conn.close()
                continue
            self.drop()  # one client at a time, the newest wins
            with self._lock:
                self._client = conn
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.sendall(struct.pack(">4sII", b"RTL0", self.tuner, self.gains))
            pos = 0
            sent = 0
            t0 = time.monotonic()
            pending = b""
            while not self._closing.is_set():
                with self._lock:
                    if self._client is not conn:
                        return
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:
                    data = conn.recv(4096)
                    if not data:
                        return
                    pending += data
                    while len(pending) >= 5:
                        cmd, value = struct.unpack(">BI", pending[:5])
                        pending = pending[5:]
                        self._apply(cmd, value)
                if self._stalled.is_set():
                    time.sleep(0.01)
                    t0 = time.monotonic() - sent / 2 / self.rate / max(self.speed, 1e-9)
                    continue
                buf = self.iq(self.centre_hz, self.rate)
                if pos >= buf.size:
                    pos = 0
                piece = buf[pos : pos + self.chunk]
                pos += piece.size
                conn.sendall(piece.tobytes())
                sent += piece.size
                if self.speed > 0:
                    ahead = sent / 2 / self.rate / self.speed - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _apply(self, cmd: int, value: int) -> None:
        self.commands.append((cmd, value))
        if cmd == 0x01:
            self.centre_hz = float(value)
        elif cmd == 0x02:
            self.rate = float(value)
        elif cmd == 0x03:
            self.gain_mode = value
        elif cmd == 0x04:
            self.gain_tenths = value
