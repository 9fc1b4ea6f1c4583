"""The API server's connection limits, on real sockets.

Hosts that open connections and trickle header bytes used to take the API down (no connection
cap, no header timeout, the 1,024 open files systemd gives a service by default). Here: a
trickled head, a silent connection and a trickled body are each cut at their deadline; one
address cannot hold more than its share; a full server makes room for a new client; and, the
whole attack, 1,100 trickling sockets against ``checkpoint api`` started under ``prlimit
--nofile=1024`` leave the guard's tablet answered.

All traffic stays on loopback: the attackers use addresses of 127.0.1.0/24 (Linux routes all of
127.0.0.0/8 to lo), the guard 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.server import ConnectionGuard, build_server
from api.settings import ApiSettings
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.api.api_helpers import GUARD_PIN, PASSWORDS, free_port
from tests.helpers.daemons import Logged

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@contextlib.contextmanager
def guarded(
    store: Store, certfile: str | None = None, keyfile: str | None = None, **limits: object
) -> Iterator[tuple[str, ConnectionGuard]]:
    settings = ApiSettings(
        store_path=store.path,
        trusted_clients=("127.0.0.1/32",),
        # Each test names ApiSettings' own limit fields with values of their type.
        **limits,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    port = free_port()
    server, guard = build_server(
        app,
        settings,
        certfile=certfile,
        keyfile=keyfile,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}", guard
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed_by_server(s: socket.socket, within_s: float) -> float | None:
    """Seconds until the server closed ``s`` (EOF or reset), or None if it stayed open."""
    start = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - start < within_s:
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - start
    return None


def _trickle_until_closed(s: socket.socket, data: bytes, every_s: float, within_s: float) -> float:
    start = time.monotonic()
    s.settimeout(every_s)
    for i in range(len(data) * 100):
        try:
            s.send(data[i % len(data) : i % len(data) + 1])
            if s.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except (ConnectionError, BrokenPipeError):
            return time.monotonic() - start
        if time.monotonic() - start > within_s:
            break
    raise AssertionError(f"the server kept a trickling connection for {within_s} s")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_trickled_head_silent_connection_and_trickled_body_are_cut(store: Store) -> None:
    with guarded(store, head_timeout_s=1.0, body_timeout_s=1.5) as (url, _guard):
        port = _port(url)
        # One byte of header every 0.2 s: uvicorn alone reset its timer on every byte.
        s = _connect(port, "127.0.1.1")
        took = _trickle_until_closed(s, HEAD, 0.2, within_s=8)
        assert 0.9 <= took <= 2.5, took
        s.close()
        # Connected, then nothing at all.
        s = _connect(port, "127.0.1.1")
        took_silent = _closed_by_server(s, within_s=8)
        s.close()
        assert took_silent is not None and took_silent <= 2.5, took_silent
        # A complete head, then a body trickled a byte at a time.
        s = _connect(port, "127.0.1.1")
        s.sendall(
            b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        )
        took_body = _trickle_until_closed(s, b'{"pin": "1', 0.2, within_s=8)
        s.close()
        assert 1.4 <= took_body <= 3.0, took_body
        # The server still answers at once.
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200


def test_a_tls_handshake_that_never_finishes_is_cut_at_the_head_deadline(
    store: Store, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*request, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with guarded(store, str(cert), str(key), head_timeout_s=1.0) as (url, _guard):
        port = _port(url)
        # The first bytes of a ClientHello, then a byte now and then.
        s = _connect(port, "127.0.1.3")
        took = _trickle_until_closed(s, b"\x16\x03\x01\x02\x00\x01", 0.2, within_s=8)
        s.close()
        assert took <= 2.5, took
        # A real client gets its answer over TLS, right after the handshake.
        r = httpx.get(url + "/healthz", verify=False, timeout=5)
        assert r.status_code == 200 and r.url.scheme == "https"


def test_one_address_holds_at_most_its_share(store: Store) -> None:
    with guarded(store, max_connections=64, max_connections_per_client=8) as (url, guard):
        port = _port(url)
        socks = [_connect(port, "127.0.1.2") for _ in range(30)]
        try:
            for s in socks:
                s.send(b"G")
            time.sleep(0.5)
            assert guard.connections_of("127.0.1.2") == 8
            open_ = sum(1 for s in socks if _closed_by_server(s, 0.05) is None)
            assert open_ == 8, open_
        finally:
            for s in socks:
                s.close()


def test_a_full_server_makes_room_for_a_new_client(store: Store) -> None:
    with guarded(store, max_connections=16, max_connections_per_client=4) as (url, guard):
        port = _port(url)
        socks = [_connect(port, f"127.0.1.{10 + i // 4}") for i in range(16)]
        try:
            for s in socks:
                s.send(b"GE")
            time.sleep(0.3)
            assert guard.open_connections == 16
            started = time.monotonic()
            r = httpx.get(url + "/healthz", timeout=5)
            assert r.status_code == 200
            assert time.monotonic() - started < 2
        finally:
            for s in socks:
                s.close()


# -- the whole attack, against the real daemon under the default open-file limit -------------

ATTACK_SOCKETS = 1100


class Trickler:
    """Keeps ``count`` connections open from many loopback addresses, a header byte each
    per round, reconnecting every one the server drops: an attacker with a few dozen hosts."""

    def __init__(self, port: int, count: int, hosts: int) -> None:
        self.port = port
        self.sources = [f"127.0.1.{1 + i % hosts}" for i in range(count)]
        self.socks: list[socket.socket | None] = [None] * count
        self.stop = threading.Event()
        self.reconnects = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> None:
        s = socket.socket()
        s.setblocking(False)
        s.bind((self.sources[i], 0))
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", self.port))
        self.socks[i] = s

    def _run(self) -> None:
        while not self.stop.is_set():
            for i, s in enumerate(self.socks):
                if self.stop.is_set():
                    break
                if s is None:
                    self._open(i)
                    continue
                try:
                    s.send(b"G")
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    self.reconnects += 1
                    self._open(i)
            self.stop.wait(0.5)

    def open_count(self) -> int:
        return sum(1 for s in self.socks if s is not None)

    def __enter__(self) -> Trickler:
        for i in range(len(self.socks)):
            self._open(i)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for s in self.socks:
            if s is not None:
                s.close()


def _raise_own_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(target, need), max(hard, need)))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        pytest.skip(f"this test process may open only {soft} files; the attack needs {need}")


@pytest.mark.parametrize("hosts", [1, 40], ids=["one host", "forty hosts"])
def test_1100_trickling_sockets_under_1024_files_leave_the_guard_answered(
    tmp_path: Path, hosts: int
) -> None:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    _raise_own_fd_limit(ATTACK_SOCKETS + 200)
    db = tmp_path / "checkpoint.db"
    store = Store(db)
    user_store.add_user(
        store, "guard", "guard", 1.0, "test", password=PASSWORDS["guard"], pin=GUARD_PIN
    )
    store.close()
    port = free_port()
    cfg = tmp_path / "checkpoint.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{tmp_path}"\n[store]\npath = "{db}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\ntrusted_clients = ["127.0.0.1/32"]\n'
    )
    command = [prlimit, "--nofile=1024", sys.executable, "-m", "scanner.cli.main", "api"]
    # Read all along: a pipe nobody reads stops the daemon at its first full 64 KiB of log.
    daemon = Logged([*command, "--config", str(cfg)], stdout=False)
    proc = daemon.proc
    log = daemon.stderr
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    # A failed request is kept, not raised at once: the daemon's own account (its guard totals,
    # logged at stop) belongs in the failure's message.
    failed: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "\n".join(log)
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.2)
        with Trickler(port, ATTACK_SOCKETS, hosts) as attack:
            time.sleep(2.0)  # every attacking socket has connected and sent a byte or more
            for i in range(5):
                started = time.monotonic()
                # A fresh client each time: the tablet after a Wi-Fi roam, new connections.
                try:
                    with httpx.Client(base_url=url, timeout=10) as tablet:
                        r = tablet.post("/api/v1/session", json={"pin": GUARD_PIN})
                        assert r.status_code == 200, r.text
                        assert tablet.get("/api/v1/alerts").status_code == 200
                except httpx.TransportError as exc:
                    failed.append(f"request {i} after {time.monotonic() - started:.1f} s: {exc!r}")
                latencies.append(time.monotonic() - started)
                time.sleep(0.3)
            assert attack.open_count() == ATTACK_SOCKETS
        print(f"guard sign-in + alerts under attack ({hosts} hosts): {latencies}")
        assert proc.poll() is None
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        daemon.close()
    text = "\n".join(log)
    assert not failed, f"{failed}; the daemon's log ends: {text[-3000:]}"
    # Every answer came (before the guard, every request ran into the 10 s timeout). The time
    # itself depends on the machine's load: about 1 s on an idle two-core machine, a few seconds
    # when it is shared; half the timeout leaves room for that and no more.
    assert max(latencies) < 5.0, latencies
    # The attack was seen and refused, and every refusal happened in the guard: the daemon never
    # ran out of descriptors (accept bursts sized to the limit), so asyncio never paused its
    # listener for a second at a time.
    totals = [line for line in log if "connection guard totals at stop" in line]
    assert totals, text[-3000:]
    assert "refused" in totals[0] or "evicted" in totals[0], totals
    assert "accept_out_of_files" not in text and "Too many open files" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
