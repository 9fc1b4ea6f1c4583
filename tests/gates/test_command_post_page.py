"""The command post's page in real headless Chromium: two gate cores and a command post on a
real broker; both gates' alarms sound at the command post, an acknowledgement there reaches
the gate it belongs to, and a gate that stops shows OFFLINE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.settings import ApiSettings
from scanner.mqtt.link import BrokerSettings
from scanner.sim.scenario import simulate
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from scanner.store.users import ensure_demo_users
from tests.gates.gates_broker import Broker
from tests.gates.gates_support import Gate, gate_settings, records
from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.servers import serving

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"command-post-{name}.png"), full_page=True)


def _state(page: Any, value: str, timeout_ms: int = 15000) -> None:
    page.wait_for_function("s => document.body.dataset.state === s", arg=value, timeout=timeout_ms)


def test_command_post_page_alarms_for_every_gate_and_acks_reach_the_gate(
    broker: Broker, tmp_path: Path, chromium: Any
) -> None:
    scenario = tmp_path / "scenario"
    simulate(3, 3, scenario, profile="demo", sdr=False)
    recs = records(scenario)
    post_db = str(tmp_path / "post.db")
    store = Store(post_db)
    creds = ensure_demo_users(store)
    settings = ApiSettings(
        store_path=post_db,
        demo=True,
        event_poll_s=0.1,
        mode="command-post",
        broker=BrokerSettings(port=broker.port, client_id="cp-main", keepalive_s=5),
    )
    a = Gate(tmp_path / "a", gate_settings(broker.port, "north", "gate-a"))
    b = Gate(tmp_path / "b", gate_settings(broker.port, "north", "gate-b"))
    browser = chromium.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        with serving(create_app(settings), timeout_graceful_shutdown=2) as served:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served.url)
            page.wait_for_selector("#login:not([hidden])")
            for digit in creds["guard"]["pin"]:
                page.click(f"#login .pinpad button[data-digit='{digit}']")
            page.click("#login-submit")
            page.wait_for_selector("#gates-panel:not([hidden])")
            assert page.evaluate("document.body.dataset.mode") == "command-post"
            _shot(page, "1-waiting")

            half = recs[: len(recs) // 2]
            a.feed(half)
            b.feed(half)
            _state(page, "alarm")
            page.wait_for_selector("#gates .gate-card[data-gate='north/gate-a'][data-look='alarm']")
            page.wait_for_selector("#gates .gate-card[data-gate='north/gate-b'][data-look='alarm']")
            title = page.text_content("#alarm-title") or ""
            assert "north / gate-" in title, title
            assert page.is_hidden("#alarm-allow")
            _shot(page, "2-alarm-two-gates")

            # Acknowledge every latched alarm from the command post, with a note on the first.
            page.fill("#alarm-note", "patrol on its way")
            shown = str(page.get_attribute("#alarm", "data-id"))
            page.click("#alarm-ack")
            page.wait_for_function(
                "id => document.getElementById('alarm').dataset.id !== id"
                " || document.getElementById('alarm').hidden",
                arg=shown,
            )
            while page.is_visible("#alarm"):
                current = str(page.get_attribute("#alarm", "data-id"))
                page.click("#alarm-ack")
                page.wait_for_function(
                    "id => document.getElementById('alarm').dataset.id !== id"
                    " || document.getElementById('alarm').hidden",
                    arg=current,
                )
            _state(page, "acked")
            site, gate, alert_id = shown.split("/")
            first = a if gate == "gate-a" else b
            gate_store = Store(first.db)
            try:
                record = alert_store.get_alert(gate_store, alert_id)
                for _ in range(100):
                    if record.acknowledged:
                        break
                    page.wait_for_timeout(100)
                    record = alert_store.get_alert(gate_store, alert_id)
                assert record.acked_by == "guard@cp-main", record
                assert record.ack_note == "patrol on its way"
            finally:
                gate_store.close()
            page.wait_for_selector(
                f"#gates .gate-card[data-gate='{site}/{gate}'] [data-ack='confirmed']"
            )
            _shot(page, "3-acknowledged")

            a.close()
            page.wait_for_selector(
                "#gates .gate-card[data-gate='north/gate-a'][data-status='offline']"
            )
            page.wait_for_selector("#degraded:not([hidden])")
            assert "north / gate-a OFFLINE" in (page.text_content("#degraded-text") or "")
            _shot(page, "4-gate-offline")
            assert not errors, errors
    finally:
        browser.close()
        a.close()
        b.close()
        store.close()
