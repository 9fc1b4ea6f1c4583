"""`checkpoint demo` as a user runs it: a subprocess on a free port, driven over HTTP and in
headless Chromium (issue 2: within a minute the page shows an alert from the bundled scenario,
and acknowledging it works)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.runtime.demo_plan import BUNDLED_SCENARIO
from tests.helpers.daemons import Logged

URL_RE = re.compile(r"^\s+open\s+(http://\S+)$")
LOGIN_RE = re.compile(r"^\s+login\s+(\S+) / (\S+)\s+\((\w+)(?:, tablet PIN (\d+))?")
CHROMIUM = os.environ.get("CHECKPOINT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# The scenario's first visitor walks in about 22 s after the start; the alert must follow
# well within the minute issue 2 allows.
ALERT_WITHIN_S = 60.0


@dataclass
class Demo:
    run: Logged
    started: float
    url: str = ""
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    pin: str = ""

    @property
    def proc(self) -> subprocess.Popen[str]:
        return self.run.proc

    @property
    def stdout(self) -> list[str]:
        return self.run.stdout

    @property
    def stderr(self) -> list[str]:
        return self.run.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not BUNDLED_SCENARIO.is_dir():
        pytest.fail(f"the bundled demo scenario is missing: {BUNDLED_SCENARIO}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    data = tmp_path_factory.mktemp("demo") / "data"
    run = Logged(
        [sys.executable, "-m", "scanner.cli.main", "demo", "--port", "0", "--data-dir", str(data)],
        env=env,
    )
    proc = run.proc
    d = Demo(run, time.monotonic())
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
            d.pin = d.pin or (m.group(4) or "")
    try:
        yield d
    finally:
        run.close()


def test_demo_serves_health_and_an_alert_from_the_bundled_scenario(demo: Demo) -> None:
    assert demo.url, f"no URL printed; stdout={demo.stdout} stderr={demo.stderr[-20:]}"
    assert "guard" in demo.logins, demo.stdout
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["store"]["ok"] is True
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get("/api/v1/alerts").status_code == 401

        user, password = demo.logins["guard"]
        login = client.post("/api/v1/session", json={"username": user, "password": password})
        assert login.status_code == 200, login.text
        items: list[dict[str, Any]] = []
        while time.monotonic() - demo.started < ALERT_WITHIN_S and not items:
            resp = client.get("/api/v1/alerts")
            assert resp.status_code == 200
            items = resp.json()["items"]
            if not items:
                time.sleep(0.5)
        assert items, f"no alert within {ALERT_WITHIN_S} s; stderr={demo.stderr[-20:]}"
        print(f"first demo alert {time.monotonic() - demo.started:.1f} s after start")
        alert = items[-1]
        assert alert["kind"] in ("handset", "unidentified_transmitter")
        assert alert["sensors"]
        # The replayed radios report their health like live ones, with when each last heard
        # something; the replay driver itself is runtime health, not a sensor.
        health = client.get("/api/v1/health").json()
        sensors = health["sensors"]
        assert {"wifi", "ble"} <= set(sensors) <= {"wifi", "ble", "sdr", "store"}, sensors
        for name in ("wifi", "ble"):
            assert sensors[name]["radio"] == name
            assert sensors[name]["last_obs_ts"] is not None, sensors[name]
            assert sensors[name]["dropped"] == 0
        demo_runtime = health["runtime"]["demo"]
        assert demo_runtime["stale"] is False
        assert demo_runtime["components"]["replay"]["state"] == "running"
        assert demo_runtime["components"]["retention"]["state"] == "running"
        assert demo_runtime["queue"]["size"] > 0


@pytest.mark.browser
def test_demo_alarm_shows_on_the_tablet_and_acknowledges(demo: Demo) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    assert demo.pin, demo.stdout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(demo.url)
            page.wait_for_selector("#login:not([hidden])")
            for digit in demo.pin:
                page.click(f".pinpad button[data-digit='{digit}']")
            page.click("#login-submit")
            remaining_ms = max(5.0, ALERT_WITHIN_S - (time.monotonic() - demo.started)) * 1000
            page.wait_for_function(
                "() => document.body.dataset.state === 'alarm'", timeout=remaining_ms
            )
            page.screenshot(path=str(ARTIFACTS / "demo-alarm.png"))
            # The strip says when each radio last heard something, and shows no replay chip.
            page.wait_for_function(
                "() => document.querySelector(\".sensor[data-sensor='wifi'] .s-detail\")"
                "?.textContent.startsWith('heard')",
                timeout=10_000,
            )
            assert page.locator(".sensor[data-sensor='replay']").count() == 0
            page.click("#alarm-ack")
            page.wait_for_function("() => document.body.dataset.state !== 'alarm'", timeout=10_000)
            assert page.is_hidden("#alarm")
            page.screenshot(path=str(ARTIFACTS / "demo-acknowledged.png"))
        finally:
            browser.close()


def test_demo_stops_cleanly_on_ctrl_c(demo: Demo) -> None:
    assert demo.proc.poll() is None, demo.stderr[-20:]
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=20) == 0
    demo.run.close()  # every line read
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
