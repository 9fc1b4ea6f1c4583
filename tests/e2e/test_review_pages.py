"""The supervisor's review pages in real headless Chromium: yesterday's alerts by date, an
alert in full (reasons, devices, history with the guard's note), a device's timeline, the audit
log, and an export from the page whose download verifies. And the store's damage reaching the
guard: flipped bytes in the database file turn the page DEGRADED, naming it. Screenshots at a
tablet's width and at 1280 px go to tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from scanner.export.verify import verify_bundle
from scanner.runtime.components.retention import RetentionSchedule, RetentionTask
from scanner.store import alerts as alert_store
from scanner.store import audit
from scanner.store.alerts import AlertRecord
from scanner.store.db import Store
from scanner.store.devices import upsert_devices
from scanner.store.sightings import write_sightings
from tests.e2e.tablet_support import ARTIFACTS, CHROMIUM, Site
from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.damage import damage_table

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

# A tablet on the wall (portrait) and a supervisor's laptop.
MAC, BLE = "3c:5a:b4:01:02:03", "c1:22:33:44:55:66"
WIDTHS = {"tablet": (800, 1280), "desktop": (1280, 900)}


@pytest.fixture
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Browser, site: Site, size: tuple[int, int]) -> Page:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]  # Page has no such field: ours, added here
    page.goto(site.url)
    return page


def _sign_in(page: Page, site: Site, role: str) -> None:
    page.click("#tab-password")
    page.fill("#username", role)
    page.fill("#password", site.creds[role]["password"])
    page.click("#login-submit")
    page.wait_for_function("() => document.body.dataset.conn === 'live'")


def _shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"review-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _local_midnight(ts: float) -> float:
    d = datetime.fromtimestamp(ts).replace(hour=0, minute=0, second=0, microsecond=0)
    return d.timestamp()


def _history(store: Store, alert_id: str, device_id: str, raised: float, note: str) -> None:
    """An alert's life as the core and a guard write it: raised, acknowledged with a note,
    resolved when the phone left."""
    alert_store.raise_alert(
        store,
        AlertRecord(
            id=alert_id,
            kind="handset",
            state="open",
            title="Active handset inside the zone",
            raised_ts=raised,
            updated_ts=raised,
            confidence=0.91,
            handsets=1,
            sensors=["wifi", "ble"],
            reasons=[
                "Wi-Fi probe requests at -44 dBm (inside threshold -62 dBm)",
                "BLE advertisements from a phone at -49 dBm",
            ],
            device_ids=[device_id],
        ),
    )
    alert_store.acknowledge_alert(store, alert_id, raised + 25, "guard", note)
    audit.record(store, raised + 25, "guard", "alert.ack", {"alert_id": alert_id, "note": note})
    alert_store.resolve_alert(store, alert_id, raised + 300, "left_zone", 300.0)


def _populate(store: Store, now: float) -> tuple[float, float]:
    """A phone seen today and yesterday, an alert each day, minute sightings on two radios."""
    today = _local_midnight(now)
    # Early enough in the day that the test passes at any hour (the alert in the past), and late
    # enough that today's sightings, from 5 minutes before it, all fall on today (in the first
    # minutes after midnight they lie a few minutes ahead, which the pages show all the same).
    t_today = max(today + 360, now - 2 * 3600)
    t_yday = _local_midnight(today - 3600) + 14 * 3600
    upsert_devices(
        store,
        [
            {
                "id": "dev-7",
                "kind": "handset",
                "vendor": "Samsung",
                "first_seen": t_yday - 600,
                "last_seen": t_today + 300,
                "radios": ["wifi", "ble"],
                "identifiers": {"macs": ["3c:5a:b4:01:02:03"], "ble": ["c1:22:33:44:55:66"]},
                "evidence": [],
                "last_rssi": -52.0,
                "in_zone": False,
                "ambient": False,
            }
        ],
    )
    rows = []
    for start in (t_yday - 600, t_today - 300):
        for minute in range(15):
            for radio, sensor, rssi in (("wifi", "wifi", -48.0 - minute), ("ble", "ble", -60.0)):
                rows.append(
                    {
                        "device_id": "dev-7",
                        "radio": radio,
                        "sensor": sensor,
                        "first_ts": start + 60 * minute,
                        "last_ts": start + 60 * minute + 50,
                        "count": 12,
                        "rssi_min": rssi - 6,
                        "rssi_max": rssi,
                        "rssi_mean": rssi - 3,
                        "identifier": "3c:5a:b4:01:02:03"
                        if radio == "wifi"
                        else "c1:22:33:44:55:66",
                    }
                )
    write_sightings(store, rows)
    _history(store, "alert-yday", "dev-7", t_yday, "phone of the plumber, held at the desk")
    _history(store, "alert-today", "dev-7", t_today, "duty officer, checked ID")
    audit.record(store, t_today + 400, "supervisor", "allowlist.replace", {"entries": []})
    return t_today, t_yday


@pytest.mark.parametrize("width", list(WIDTHS))
def test_supervisor_reviews_history_alert_device_audit_and_exports(
    site: Site, browser: Browser, width: str, tmp_path: Path
) -> None:
    now = time.time()
    _populate(site.store, now)
    page = _page(browser, site, WIDTHS[width])
    _sign_in(page, site, "supervisor")

    # -- history: today, then the day before through the date navigation.
    page.click("#nav button[data-view='history']")
    page.wait_for_selector("#hist-list tr[data-alert='alert-today']")
    assert page.locator("#hist-list tr[data-alert='alert-yday']").count() == 0
    page.click("#hist-nav button:has-text('Previous day')")
    page.wait_for_selector("#hist-list tr[data-alert='alert-yday']")
    assert page.locator("#hist-list tr[data-alert='alert-today']").count() == 0
    assert "1 alert on" in page.inner_text("#hist-msg")
    _shot(page, f"{width}-history-yesterday")

    # -- the alert in full: why, the device, and its history with the guard's note.
    page.click("#hist-list tr[data-alert='alert-yday'] button")
    page.wait_for_selector("#alert-history tr.ack-row")
    assert "inside threshold -62 dBm" in page.inner_text("#alert-reasons")
    history = page.inner_text("#alert-history")
    for words in ("Alarm raised", "Acknowledged", "Left the zone", "phone of the plumber"):
        assert words in history
    page.wait_for_function(
        "() => document.querySelector('#alert-devices tr td:nth-child(2)').textContent"
        ".startsWith('handset')"
    )
    _shot(page, f"{width}-alert-detail")

    # -- the device's timeline on that day: bars on both radio lanes and the alert's span.
    page.click("#alert-devices button:has-text('Timeline')")
    page.wait_for_selector("#device-timeline rect.bar-wifi")
    assert page.locator("#device-timeline rect.bar-wifi").count() == 15
    assert page.locator("#device-timeline rect.bar-ble").count() == 15
    assert page.locator("#device-timeline rect.bar-alert").count() == 1
    assert "15 sightings" not in page.inner_text("#device-msg")  # 30: both radios
    assert "30 sightings" in page.inner_text("#device-msg")
    _shot(page, f"{width}-device-timeline")
    page.click("#view-device button[data-back]")
    page.wait_for_selector("#view-alert:not([hidden])")

    # -- the device list.
    page.click("#nav button[data-view='devices']")
    page.wait_for_selector("#dev-list tr[data-device='dev-7']")
    _shot(page, f"{width}-devices")

    # -- the audit log of today: the guard's acknowledgement and the allowlist edit.
    page.click("#nav button[data-view='audit']")
    page.wait_for_selector("#audit-list td[data-action='allowlist.replace']")
    assert "changed the allowlist" in page.inner_text("#audit-list")
    assert "duty officer, checked ID" in page.inner_text("#audit-list")
    page.fill("#audit-actor", "guard")
    page.wait_for_function(
        "() => !document.querySelector(\"#audit-list td[data-action='allowlist.replace']\")"
    )
    _shot(page, f"{width}-audit")

    # -- export from the page: the last 7 days, downloaded, and it verifies.
    page.click("#nav button[data-view='export']")
    page.click("#export-quick button[data-quick='7d']")
    with page.expect_download(timeout=30000) as download_info:
        page.click("#export-go")
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    assert target.name.startswith("checkpoint-export-") and target.name.endswith(".tar.gz")
    page.wait_for_selector("#export-done:not([hidden])")
    assert "checkpoint verify" in page.inner_text("#export-msg")
    assert page.is_hidden("#export-warn")
    _shot(page, f"{width}-export")
    result = verify_bundle(target)
    assert result.ok, result.problems
    assert page.errors == []  # type: ignore[attr-defined]  # set by _page


def test_a_guard_cannot_open_the_review_pages(site: Site, browser: Browser) -> None:
    page = _page(browser, site, WIDTHS["tablet"])
    for digit in site.creds["guard"]["pin"]:
        page.click(f".pinpad button[data-digit='{digit}']")
    page.click("#login-submit")
    page.wait_for_function("() => document.body.dataset.conn === 'live'")
    assert page.is_hidden("#nav")
    with httpx.Client(base_url=site.url) as api:
        api.post("/api/v1/session", json={"pin": site.creds["guard"]["pin"]})
        for path in ("/api/v1/audit", "/api/v1/export?since=-1h&until=now"):
            assert api.get(path).status_code == 403


def test_flipped_bytes_in_the_store_turn_the_guards_page_degraded(
    site: Site, browser: Browser
) -> None:
    # Enough sightings for the table to span many pages, as after a day at a gate.
    now = time.time()
    write_sightings(
        site.store,
        [
            {
                "device_id": f"dev-{i % 40}",
                "radio": "wifi",
                "sensor": "wifi",
                "first_ts": now - 3600 + i,
                "last_ts": now - 3600 + i + 30,
                "count": 3,
                "rssi_min": -80.0,
                "rssi_max": -70.0,
                "rssi_mean": -75.0,
                "identifier": f"02:00:00:00:{i // 256 % 256:02x}:{i % 256:02x}",
            }
            for i in range(3000)
        ],
    )
    page = _page(browser, site, WIDTHS["tablet"])
    for digit in site.creds["guard"]["pin"]:
        page.click(f".pinpad button[data-digit='{digit}']")
    page.click("#login-submit")
    page.wait_for_function("() => document.body.dataset.state === 'clear'")
    # The card flips bits under the running appliance; the core's retention task checks the
    # file on its next run (at start, then on its schedule).
    damage_table(Path(site.store.path), "sightings", pages=2)
    task = RetentionTask("retention", site.store.path, RetentionSchedule.from_mapping({}))
    started = time.monotonic()
    task.run_once()
    task._close_store()
    # With no alert open the banner itself says it (the amber strip is for when an alert holds
    # the banner).
    page.wait_for_function("() => document.body.dataset.state === 'fault'", timeout=60000)
    seen_after = time.monotonic() - started
    assert page.inner_text("#banner-word") == "DEGRADED"
    text = page.inner_text("#banner-sub")
    assert "database damaged: unreadable rows in sightings" in text
    assert seen_after < 60
    assert page.locator(".sensor[data-sensor='store']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "review-guard-store-damaged.png"))
    # The core and the API keep running: the page is still live and the radios still report.
    assert page.evaluate("document.body.dataset.conn") == "live"
    assert page.locator(".sensor[data-sensor='wifi'][data-status='ok']").count() == 1
