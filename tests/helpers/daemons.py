"""Running the appliance's daemons as real subprocesses: polling, ports, stopping, the store."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx


def wait_for(
    cond: Callable[[], bool],
    timeout: float,
    tick: Callable[[], object] | None = None,
    *,
    ignore: tuple[type[BaseException], ...] = (),
    every: float = 0.1,
) -> bool:
    """Poll ``cond`` every ``every`` s until it holds or ``timeout`` passes; the last try decides.

    ``tick`` runs between polls (e.g. to keep a fake device advertising). ``ignore`` names the
    errors a poll may raise while a daemon is still coming up (a store not yet created, an API
    not yet listening); such a poll counts as not yet. The final try after the deadline is not
    guarded, so a lasting error surfaces in the test.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except ignore:
            pass
        if tick is not None:
            tick()
        time.sleep(every)
    return cond()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_in_order(
    procs: dict[str, subprocess.Popen[bytes]], names: Iterable[str]
) -> dict[str, int | None]:
    """SIGTERM each daemon in ``names`` in turn and wait for it, as systemd stops a target.

    Returns each exit code; None for a daemon that did not stop within 20 s (it is then killed).
    """
    codes: dict[str, int | None] = {}
    for name in names:
        proc = procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            codes[name] = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = None
    return codes


def query_tuples(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the store at ``db`` as tuples; none while the store does not exist."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        return list(conn.execute(sql, params))


def tail_logs(workdir: Path) -> str:
    """The last 1,500 characters of every daemon log in ``workdir``, for a failure message."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(workdir.glob("*.log"))
    )


def get_healthz(url: str, *, verify: bool = True, within_s: float = 20.0) -> httpx.Response:
    """GET ``url``healthz, retrying every 0.2 s while nothing listens yet (up to ``within_s``).

    READY=1 can reach the notify socket a moment before the server accepts connections; any
    error other than a refused connection, or one past the deadline, is raised.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            return httpx.get(url + "healthz", verify=verify, timeout=5)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


class Logged:
    """A process whose stdout and stderr (each unless False: then DEVNULL) are read by a thread
    all along: a pipe nobody reads stops the child at its first full 64 KiB, so a daemon that
    logs freely would stall mid-test. ``stdout`` and ``stderr`` hold its lines so far (without
    their newlines), complete after ``close``, which kills the process if it still runs and
    waits for the readers (5 s at most: a grandchild may hold the pipe open). A context
    manager, closed on leaving the block."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdout: bool = True,
        stderr: bool = True,
    ) -> None:
        pipe, null = subprocess.PIPE, subprocess.DEVNULL
        self.proc = subprocess.Popen(
            list(args),
            stdout=pipe if stdout else null,
            stderr=pipe if stderr else null,
            text=True,
            env=None if env is None else dict(env),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=_drain, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    def out(self) -> str:
        return "\n".join(self.stdout)

    def err(self) -> str:
        return "\n".join(self.stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)

    def __enter__(self) -> Logged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
