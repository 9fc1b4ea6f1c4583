"""The systemd end of the notify protocol, for tests: a datagram socket that collects messages.

Daemon tests use it as ``with NotifyListener() as sd: subprocess.Popen(..., env=sd.env(...))``
and then ``sd.wait_for("READY=1")``; each received datagram is parsed into a dict of its fields.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path


class NotifyListener:
    """Binds ``$NOTIFY_SOCKET`` (abstract by default, or a socket file) and reads datagrams."""

    def __init__(self, abstract: bool = True) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir: Path | None = None
        if abstract:
            name = f"checkpoint-test-{os.getpid()}-{secrets.token_hex(4)}"
            self._sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # Short: AF_UNIX paths stop at 108 bytes and pytest's tmp_path can be longer.
            self._dir = Path(tempfile.mkdtemp(prefix="sdn-", dir="/tmp"))
            path = self._dir / "notify"
            self._sock.bind(str(path))
            self.address = str(path)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def env(
        self,
        base: Mapping[str, str] | None = None,
        watchdog_s: float | None = None,
        pid: int | None = None,
    ) -> dict[str, str]:
        """An environment for a child: ``NOTIFY_SOCKET`` and, optionally, the watchdog interval."""
        env = dict(os.environ if base is None else base)
        env["NOTIFY_SOCKET"] = self.address
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        if watchdog_s is not None:
            env["WATCHDOG_USEC"] = str(int(watchdog_s * 1_000_000))
        if pid is not None:
            env["WATCHDOG_PID"] = str(pid)
        return env

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next datagram's fields, or None after ``timeout`` seconds of silence."""
        self._sock.settimeout(max(timeout, 0.001))
        try:
            data = self._sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, timeout: float = 10.0) -> dict[str, str]:
        """Read until a datagram carries ``key`` (``READY``, ``WATCHDOG``...); fail on timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(left)
            if fields is not None and key in fields:
                return fields
        raise TimeoutError(f"no {key} notification within {timeout} s; got {self.messages}")

    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Everything that arrives during the next ``seconds``."""
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(left)
            if fields is not None:
                got.append(fields)
        return got

    def close(self) -> None:
        self._sock.close()
        if self._dir is not None:
            for child in self._dir.iterdir():
                child.unlink()
            self._dir.rmdir()

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
