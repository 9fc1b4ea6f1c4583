"""`checkpoint demo` as a user runs it: a subprocess on a free port, driven over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scanner.runtime.demo import BUNDLED_SCENARIO

URL_RE = re.compile(r"^\s+open\s+(http://\S+)$")
LOGIN_RE = re.compile(r"^\s+login\s+(\S+) / (\S+)\s+\((\w+)")


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    url: str = ""
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def _pump(stream: object, into: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line.rstrip("\n"))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    if not BUNDLED_SCENARIO.is_dir():
        pytest.fail(f"the bundled demo scenario is missing: {BUNDLED_SCENARIO}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner.cli.main",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    d = Demo(proc)
    threading.Thread(target=_pump, args=(proc.stdout, d.stdout), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, d.stderr), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(line.startswith("Press Ctrl+C") for line in d.stdout):
            break
        time.sleep(0.05)
    for line in d.stdout:
        if m := URL_RE.match(line):
            d.url = m.group(1)
        if m := LOGIN_RE.match(line):
            d.logins[m.group(3)] = (m.group(1), m.group(2))
    try:
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_demo_serves_health_and_an_alert_from_the_bundled_scenario(demo: Demo) -> None:
    assert demo.url, f"no URL printed; stdout={demo.stdout} stderr={demo.stderr[-20:]}"
    assert "guard" in demo.logins, demo.stdout
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert isinstance(health.json(), dict)
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get("/api/v1/alerts").status_code == 401

        user, password = demo.logins["guard"]
        login = client.post("/api/v1/session", json={"username": user, "password": password})
        assert login.status_code == 200, login.text
        started = time.monotonic()
        items: list[dict[str, object]] = []
        while time.monotonic() - started < 60 and not items:
            resp = client.get("/api/v1/alerts")
            assert resp.status_code == 200
            items = resp.json()["items"]
            if not items:
                time.sleep(1)
        assert items, f"no alert within 60 s; stderr={demo.stderr[-20:]}"
        took = time.monotonic() - started
        alert = items[0]
        assert alert["kind"] in ("handset", "unidentified_transmitter")
        assert alert["sensors"]
        print(f"first demo alert after {took:.1f} s: {alert['title']}")
        sensors = client.get("/api/v1/sensors")
        assert sensors.status_code == 200

    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=20) == 0
    assert not any("Traceback" in line for line in demo.stderr), "\n".join(demo.stderr[-40:])


def test_demo_on_a_busy_port_says_so_and_exits_2(tmp_path: Path) -> None:
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "scanner.cli.main",
                "demo",
                "--port",
                str(busy.getsockname()[1]),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        busy.close()
    assert result.returncode == 2, result.stderr
    assert "cannot listen on" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
