"""The alarm a guard can rely on, in real headless Chromium against the real page and API:
a frozen connection shows NO CONNECTION over everything, blocked sound is visible on the alarm,
a session that ends mid-alarm keeps the alarm, a radio that stops reporting shows DEGRADED, a
wall tablet keeps watching as a kiosk, and every alarm latches until acknowledged. The last test
runs the real core on the bundled scenario: four visitors, four alarms."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE
from scanner.runtime.serve import RUNTIME_HEALTH_KEY
from scanner.store import alerts as alert_store
from scanner.store.alerts import AlertRecord
from tests.e2e.tablet_support import ARTIFACTS, CHROMIUM, FreezingProxy, Site
from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.daemons import Logged

pytestmark = pytest.mark.browser

# The autoplay rule of a tablet's browser, for a headless one that does not apply it.
AUTOPLAY_BLOCKED = """
(() => {
  const Real = window.AudioContext;
  // Playwright's evaluate counts as a gesture in navigator.userActivation; only real input
  // (a trusted tap or key) counts here.
  let touched = false;
  for (const type of ["pointerdown", "keydown"]) {
    window.addEventListener(type, (e) => { if (e.isTrusted) touched = true; }, true);
  }
  const allowed = () => touched;
  window.AudioContext = class extends Real {
    constructor(...args) {
      super(...args);
      // Chromium starts a new context running on its own a moment later: hold it suspended.
      const hold = () => {
        if (this.state === "running" && !allowed()) super.suspend();
      };
      this.addEventListener("statechange", hold);
      hold();
    }
    resume() {
      if (allowed()) return super.resume();
      return Promise.reject(new DOMException("no gesture", "NotAllowedError"));
    }
  };
})();
"""
SIZES = {"tablet": (1280, 800), "portrait": (800, 1280), "phone": (390, 844)}


def _alert(alert_id: str, handsets: int = 1, ago_s: float = 0.0) -> AlertRecord:
    now = time.time() - ago_s
    return AlertRecord(
        id=alert_id,
        kind="handset",
        state="open",
        title="Active handset inside the zone",
        raised_ts=now,
        updated_ts=now,
        confidence=0.91,
        handsets=handsets,
        sensors=["wifi", "ble"],
        reasons=[
            'Wi-Fi probe requests for "HomeNet" at -43 dBm (inside threshold -62 dBm)',
            "BLE advertisements from an iPhone at -49 dBm",
        ],
        device_ids=[],
    )


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _launch(p: Any, *extra: str) -> Any:
    return p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra])


def _page(browser: Any, url: str, size: tuple[int, int] = SIZES["tablet"]) -> Any:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    errors: list[str] = []
    # 401s are how the page learns a session ended; failed loads are the frozen link's.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "status of 401" not in m.text and "net::" not in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    return page


def _pin(page: Any, site: Site) -> None:
    page.wait_for_selector("#login:not([hidden])")
    for digit in site.creds["guard"]["pin"]:
        page.click(f"#login .pinpad button[data-digit='{digit}']")
    page.click("#login-submit")


def _state(page: Any, value: str, timeout_ms: int = 5000) -> None:
    page.wait_for_function("s => document.body.dataset.state === s", arg=value, timeout=timeout_ms)


def _top_layer(page: Any) -> str:
    """The id of the overlay (or app) under the middle of the screen: what a guard sees."""
    return str(
        page.evaluate(
            """() => {
            const n = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
            const layer = n && n.closest('#noconn, #login, #alarm, #confirm, #app');
            return layer ? layer.id : '';
        }"""
        )
    )


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"tablet-{name}.png"
    page.screenshot(path=str(path))
    return path


def test_frozen_connection_shows_no_connection_over_the_alarm(site: Site, chromium: Any) -> None:
    proxy = FreezingProxy(int(site.url.rsplit(":", 1)[1]))
    proxy.start()
    browser = _launch(chromium)
    try:
        page = _page(browser, proxy.url)
        _pin(page, site)
        _state(page, "clear")
        alert_store.raise_alert(site.writer.store, _alert("frozen-1"))
        _state(page, "alarm")
        assert _top_layer(page) == "alarm"

        proxy.frozen.set()
        frozen_at = time.monotonic()
        page.wait_for_selector("#noconn:not([hidden])", timeout=10_000)
        shown_after = time.monotonic() - frozen_at
        print(f"NO CONNECTION {shown_after:.1f} s after the link froze")
        assert shown_after < 10.0
        # It wins over the open alarm: nothing under it can be reached or taken for live.
        assert _top_layer(page) == "noconn"
        assert page.evaluate("document.getElementById('alarm').inert") is True
        assert "cannot reach the scanner" in page.inner_text("#noconn")
        _shot(page, "20-no-connection")

        # Something happens while the tablet is cut off; the link comes back: it catches up.
        alert_store.resolve_alert(site.writer.store, "frozen-1", time.time(), "left_zone", 9.0)
        proxy.frozen.clear()
        page.wait_for_selector("#noconn", state="hidden", timeout=15_000)
        page.wait_for_function(
            "() => document.getElementById('alarm').dataset.left === 'true'", timeout=5000
        )
        assert _top_layer(page) == "alarm"
        assert page.errors == []
    finally:
        browser.close()
        proxy.close()


def test_blocked_sound_is_visible_on_the_alarm(site: Site, chromium: Any) -> None:
    # A tablet's browser refuses sound until the screen is touched, as after a reload. Headless
    # Chromium plays sound regardless of --autoplay-policy, so the browser's side of that rule
    # is played here: a context starts suspended and resumes only after a user activation.
    browser = _launch(chromium)
    try:
        with httpx.Client(base_url=site.url) as client:
            login = {"username": "guard", "password": site.creds["guard"]["password"]}
            client.post("/api/v1/session", json=login).raise_for_status()
            token = client.cookies[SESSION_COOKIE]
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": site.url}])
        context.add_init_script(AUTOPLAY_BLOCKED)
        page = context.new_page()
        page.goto(site.url)  # no click, no key: no user gesture yet
        _state(page, "clear")
        page.wait_for_selector("#sound-warn:not([hidden])")
        alert_store.raise_alert(site.writer.store, _alert("mute-1"))
        _state(page, "alarm")
        page.wait_for_function("() => document.body.dataset.sound === 'blocked'")
        control = page.locator("#alarm-sound")
        assert control.is_visible()
        assert "enable sound" in control.inner_text().lower()
        box = control.bounding_box()
        assert box is not None and box["height"] >= 80 and box["width"] >= 300
        _shot(page, "21-sound-blocked")
        control.click()
        page.wait_for_function("() => document.body.dataset.sound === 'on'", timeout=3000)
        assert control.is_hidden()
        assert page.is_hidden("#sound-warn")
    finally:
        browser.close()


def test_session_ending_mid_alarm_keeps_the_alarm_and_asks_to_sign_in_on_top(
    site: Site, chromium: Any
) -> None:
    browser = _launch(chromium)
    try:
        page = _page(browser, site.url)
        _pin(page, site)
        _state(page, "clear")
        alert_store.raise_alert(site.writer.store, _alert("expiry-1"))
        _state(page, "alarm")
        page.wait_for_function("() => document.body.dataset.sound === 'on'")
        with site.store.write() as conn:
            conn.execute("UPDATE sessions SET expires_ts = 0")
        page.wait_for_selector("#login.over:not([hidden])", timeout=10_000)
        # The alarm is still there, still sounding, under the sign-in.
        assert page.is_visible("#alarm")
        assert page.evaluate("document.body.dataset.sound") == "on"
        assert page.evaluate("document.body.dataset.state") == "alarm"
        assert _top_layer(page) == "login"
        assert "alarm is still sounding" in page.inner_text("#login-over")
        _shot(page, "22-session-ended-mid-alarm")
        _pin(page, site)
        page.wait_for_selector("#login", state="hidden")
        assert _top_layer(page) == "alarm"
        page.click("#alarm-ack")
        _state(page, "acked")
        assert page.evaluate("document.body.dataset.sound") == "off"
        assert page.errors == []
    finally:
        browser.close()


def test_a_radio_that_stops_reporting_shows_degraded_also_during_an_alert(
    site: Site, chromium: Any
) -> None:
    browser = _launch(chromium)
    try:
        page = _page(browser, site.url)
        _pin(page, site)
        _state(page, "clear")
        site.writer.drop("sdr")
        _state(page, "fault", timeout_ms=12_000)
        assert page.inner_text("#banner-word") == "DEGRADED"
        assert "Cellular: not reporting" in page.inner_text("#banner-sub")
        banner = page.eval_on_selector("#banner", "e => getComputedStyle(e).backgroundColor")
        assert banner == "rgb(240, 162, 2)"  # amber, never green
        _shot(page, "23-degraded")
        alert_store.raise_alert(site.writer.store, _alert("deg-1"))
        _state(page, "alarm")
        assert "Cellular: not reporting" in page.inner_text("#alarm-degraded")
        # Silence stops the sound, not the alarm: it stays on screen until acknowledged.
        page.wait_for_function("() => document.body.dataset.sound === 'on'")
        page.click("#alarm-silence")
        page.wait_for_function("() => document.body.dataset.sound === 'off'")
        assert page.is_visible("#alarm") and page.is_visible("#alarm-silenced")
        assert "Sound silenced by guard" in page.inner_text("#alarm-silenced")
        assert page.evaluate("document.activeElement.id") == "alarm-ack"
        page.click("#alarm-ack")
        _state(page, "acked")
        # The banner is the alert's; the amber strip keeps saying the scanner is degraded.
        assert page.is_visible("#degraded")
        assert "Cellular: not reporting" in page.inner_text("#degraded")
        assert page.errors == []
    finally:
        browser.close()


def test_a_dead_core_and_the_siren_test(site: Site, chromium: Any) -> None:
    browser = _launch(chromium)
    try:
        page = _page(browser, site.url)
        _pin(page, site)
        _state(page, "clear")
        # The siren test sounds for a few seconds and is logged.
        page.click("#siren-test")
        page.wait_for_function("() => document.body.dataset.sound === 'on'")
        page.wait_for_function("() => document.body.dataset.sound === 'off'", timeout=6000)
        rows = site.store.query("SELECT actor, action FROM audit WHERE action = 'alarm.test'")
        assert [(r["actor"], r["action"]) for r in rows] == [("guard", "alarm.test")]
        # The core process last wrote its health a minute ago, while running: it died.
        with site.store.write() as conn:
            site.store.set_setting(
                conn,
                RUNTIME_HEALTH_KEY,
                {
                    "core": {
                        "components": {"core": {"state": "running", "restarts": 0}},
                        "updated_ts": time.time() - 60,
                    }
                },
            )
        _state(page, "fault", timeout_ms=12_000)
        assert "the detection core is not running" in page.inner_text("#banner-sub")
        assert page.errors == []
    finally:
        browser.close()


def test_wall_tablet_kiosk_survives_reload_and_sign_out_asks_first(
    site: Site, chromium: Any
) -> None:
    browser = _launch(chromium)
    try:
        page = _page(browser, site.url)
        page.click("#tab-password")
        page.fill("#username", "supervisor")
        page.fill("#password", site.creds["supervisor"]["password"])
        page.click("#login-submit")
        _state(page, "clear")
        page.click("#nav button[data-view='tablets']")
        page.fill("#kiosk-label", "North gate wall")
        _shot(page, "24-wall-tablets")
        page.click("#kiosk-form button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('user').textContent.includes('North gate wall')"
        )
        assert page.evaluate("document.body.dataset.role") == "guard"
        # A reload (power cut, browser update) comes straight back to the monitor.
        page.reload()
        _state(page, "clear")
        assert page.is_hidden("#login")
        # Sign out is never one stray tap.
        page.click("#logout")
        assert page.is_visible("#confirm")
        _shot(page, "25-sign-out-confirm")
        assert "wall screen" in page.inner_text("#confirm-text")
        assert _top_layer(page) == "confirm"
        page.click("#confirm-no")
        assert page.is_hidden("#confirm")
        _state(page, "clear")
        assert page.errors == []
    finally:
        browser.close()


def test_layout_at_three_sizes_with_latched_alarms(site: Site, chromium: Any) -> None:
    browser = _launch(chromium)
    try:
        site.writer.drop("sdr")
        alert_store.raise_alert(site.writer.store, _alert("lay-1", ago_s=95))
        alert_store.raise_alert(site.writer.store, _alert("lay-2", handsets=2, ago_s=40))
        alert_store.resolve_alert(site.writer.store, "lay-1", time.time() - 20, "left_zone", 75)
        for name, size in SIZES.items():
            page = _page(browser, site.url, size)
            _pin(page, site)
            _state(page, "alarm")
            page.wait_for_selector("#alarm-degraded:not([hidden])", timeout=12_000)
            # The oldest first, and it says the phone left, and when; the other is listed.
            assert page.inner_text("#alarm-left").startswith("LEFT at ")
            assert re.search(r"It left \d+\ss ago", page.inner_text("#alarm-meta"))
            _shot(page, f"30-alarm-{name}")
            assert page.locator("#alarm-others-list li").count() == 1
            # Focus on Acknowledge; nothing behind the overlay takes focus.
            assert page.evaluate("document.activeElement.id") == "alarm-ack"
            assert page.evaluate("document.getElementById('app').inert") is True
            for _ in range(12):
                page.keyboard.press("Tab")
                inside = page.evaluate(
                    "() => document.getElementById('alarm').contains(document.activeElement)"
                )
                assert inside
            wide = page.evaluate(
                """w => [...document.querySelectorAll('*')]
                  .filter(e => e.getBoundingClientRect().right > w + 0.5)
                  .map(e => `${e.id || e.className || e.tagName}`)""",
                size[0],
            )
            assert wide == [], (name, wide)
            assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
            overflowing = page.evaluate(
                """() => [...document.querySelectorAll('#alarm *')]
                  .filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1
                          && getComputedStyle(e).overflowX === 'visible'
                          && e.clientWidth > 0)
                  .map(e => e.id || e.className)"""
            )
            assert overflowing == [], (name, overflowing)
            page.click("#alarm-ack")  # the left one: the other alarm is shown next
            page.wait_for_function("() => document.getElementById('alarm').dataset.id === 'lay-2'")
            assert page.inner_text("#alarm-title").startswith("2 phones inside")
            page.context.close()
            with site.store.write() as conn:
                conn.execute(
                    "UPDATE alerts SET acked_ts = NULL, acked_by = NULL, ack_note = NULL "
                    "WHERE id = 'lay-1'"
                )
        page = _page(browser, site.url, SIZES["tablet"])
        _pin(page, site)
        _state(page, "alarm")
        for alert_id in ("lay-1", "lay-2"):
            page.wait_for_function(
                "i => document.getElementById('alarm').dataset.id === i", arg=alert_id
            )
            page.click("#alarm-ack")
        _state(page, "acked")
        for name, size in SIZES.items():
            page.set_viewport_size({"width": size[0], "height": size[1]})
            assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
            _shot(page, f"31-monitor-{name}")
    finally:
        browser.close()


# -- the real core on the bundled scenario -------------------------------------------------
URL_RE = re.compile(r"^\s+open\s+(http://\S+)$")
PIN_RE = re.compile(r"^\s+login\s+guard / \S+\s+\(guard, tablet PIN (\d+)\)")
# The scenario is 360 s; at 5x one pass of its four visitors takes 72 s of the test's time.
SPEED = 5.0
SCENARIO_S = 360.0


@pytest.mark.xfail(
    reason="a guard who acknowledges at once sees six alarms for four visitors: a phone's "
    "radio of another kind first heard inside after its alarm was acknowledged alarms as a new "
    "handset, since a phone with that radio alone (BLE off) walking in looks the same and must "
    "alarm: the first phone's Wi-Fi at 85 s (first heard inside 63 s after its BLE), the "
    "second's at 124 s (18 s after its BLE); the third's rotated address at 222 s no longer "
    "alarms (`checkpoint replay scanner/demo/scenario --fast --ack-after 1`: alarm lines at "
    "22, 85, 106, 124, 207 and 301 s)",
    strict=True,
)
def test_four_visitors_with_an_acknowledgement_after_each_alarm_make_four_alarms(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    demo = Logged(
        [
            sys.executable,
            "-m",
            "scanner.cli.main",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--speed",
            str(SPEED),
        ],
        env=env,
    )
    proc = demo.proc
    started = time.monotonic()
    out, err = demo.stdout, demo.stderr
    browser = _launch(chromium)
    try:
        while time.monotonic() - started < 60 and not any("Press Ctrl+C" in x for x in out):
            time.sleep(0.05)
        url = next((m.group(1) for x in out if (m := URL_RE.match(x))), "")
        pin = next((m.group(1) for x in out if (m := PIN_RE.match(x))), "")
        assert url and pin, f"demo did not start: {out} {err[-20:]}"
        page = _page(browser, url)
        page.wait_for_selector("#login:not([hidden])")
        for digit in pin:
            page.click(f"#login .pinpad button[data-digit='{digit}']")
        page.click("#login-submit")
        page.wait_for_function("() => document.body.dataset.conn === 'live'")
        # One pass of the scenario, from the start of the replay.
        deadline = started + SCENARIO_S / SPEED + 5
        alarms: list[tuple[str, float]] = []
        while time.monotonic() < deadline:
            try:
                page.wait_for_selector("#alarm:not([hidden])", timeout=1000)
            except PlaywrightTimeout:  # no alarm this second
                continue
            alert_id = str(page.get_attribute("#alarm", "data-id"))
            alarms.append((alert_id, time.monotonic() - started))
            page.click("#alarm-ack")
            # A guard acknowledges; the alarm goes, or the next latched one takes its place.
            page.wait_for_function(
                "i => document.getElementById('alarm').hidden"
                " || document.getElementById('alarm').dataset.id !== i",
                arg=alert_id,
                timeout=5000,
            )
        print(f"alarms (alert, s since start at {SPEED}x): {alarms}")
        assert len(alarms) == 4, alarms
        assert page.errors == []
    finally:
        browser.close()
        proc.send_signal(2)
        try:
            proc.wait(timeout=20)
        finally:
            demo.close()
